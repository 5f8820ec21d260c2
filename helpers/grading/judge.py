"""Judging: each question's result HERE, from the values the run sent back and the plan's
reference answers (computed in the grader's own process), and one submission's typed report.

Printing "✅", editing check cells or monkeypatching ``helpers`` cannot raise a score: only the
returned values reach this module, and :func:`helpers.checks.verdict.judge` compares them.
Question statuses: correct, wrong, wrong_type, error (raised), not_attempted, timeout, memory,
missing (no such function), forbidden_import, crashed (the process died or sent garbage),
invalid_notebook, wrong_notebook. A submission's status is the most serious of its run's
(:data:`TOTAL_PRIORITY`).
"""

from __future__ import annotations

import ast
from typing import Optional

from helpers.checks.protocol import not_callable_message
from helpers.checks.registry import Question
from helpers.checks.verdict import count_passed, judge
from helpers.grading.collect import RunReport
from helpers.grading.notes import Session, missing_cause
from helpers.grading.plan import GradingPlan
from helpers.grading.report import QuestionResult, SubmissionReport, question_points
from helpers.grading.sandbox import Completed
from helpers.grading.submission import Submission, ignored_parts

__all__ = ["TOTAL_PRIORITY", "attribute_root_causes", "question_result", "submission_report", "unrunnable"]

#: TOTAL statuses, most serious first
TOTAL_PRIORITY = ["invalid_notebook", "wrong_notebook", "crashed", "timeout", "memory", "forbidden_import",
                  "cell_errors", "ok"]


def _unanswered(q: Question, report: RunReport, run: Completed, session: Session) -> tuple[str, str]:
    """(status, reason) of a question the run sent no answer for."""
    if session.timed_out or run.killed_for_time:
        return "timeout", f"not graded: {session.first}"
    if not report.done:
        return "crashed", f"not graded: {session.notes[-1] if session.notes else 'no answer'}"
    return "error", "no answer received"


def _answered(q: Question, event: dict, plan: GradingPlan, session: Session, result: QuestionResult,
              report: RunReport, sources: dict[int, str]) -> tuple[str, str]:
    """(status, reason) of an answered question; fills `result`'s passed count, call and values."""
    if event.get("missing"):
        reason = f"the notebook does not define a function named `{q.answer}`"
        cause = missing_cause(q.answer, report, sources, session)
        if session.timed_out and "was never run" in cause:  # the time ran out before its cell
            return "timeout", f"not graded: {cause}"
        return "missing", f"{reason}: {cause}"
    if "not_callable" in event:
        return "wrong_type", not_callable_message(q.answer, str(event["not_callable"])[:60])
    outcomes = event.get("outcomes")
    if not isinstance(outcomes, list) or not all(isinstance(o, dict) for o in outcomes):
        return "crashed", "the notebook's process sent a malformed answer"
    try:
        verdict = judge(q, plan.cases[q.id], outcomes, plan.references[q.id])
        result.passed = count_passed(q, outcomes, plan.references[q.id])
    except Exception as exc:  # values of unexpected types: the report is not trusted
        return "crashed", f"the notebook's process sent an answer that cannot be read ({type(exc).__name__})"
    result.call, result.expected, result.got = verdict.call, verdict.expected, verdict.got
    result.values = [o.get("value") if "value" in o else None for o in outcomes]
    return verdict.status, "" if verdict.passed else verdict.message


def question_result(q: Question, plan: GradingPlan, report: RunReport, run: Completed, session: Session,
                    sources: Optional[dict[int, str]] = None, partial: bool = False) -> QuestionResult:
    """Judge one question (`sources`: every code cell by its number, to name a missing function's cause)."""
    result = QuestionResult(q.id, q.title, q.answer, "", "", 0, q.points, cases=len(plan.cases[q.id]))
    event = report.answers.get(q.id)
    status, reason = (_answered(q, event, plan, session, result, report, sources or {}) if event is not None
                      else _unanswered(q, report, run, session))
    if status not in ("correct", "forbidden_import") and session.forbidden:
        status, reason = "forbidden_import", f"{session.forbidden[0]} — so: {reason}"
    if status == "correct":
        result.passed = result.cases
    result.status, result.reason = status, reason
    result.hint = q.hint if status != "correct" else ""
    result.points = question_points(q.points, status, result.passed, result.cases, partial)
    return result



#: statuses of a function that answers wrongly (a caller of it fails because of it)
_WRONG = ("wrong", "wrong_type", "error")


def _called(sources: dict[int, str], name: str) -> set[str]:
    """Names the student's ``def name`` calls directly (its last definition), read from the source."""
    calls: set[str] = set()
    for number in sorted(sources):
        try:
            tree = ast.parse(sources[number])
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
                calls = {n.func.id for n in ast.walk(node) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    return calls


def attribute_root_causes(results: list[QuestionResult], sources: dict[int, str]) -> None:
    """Mark each wrong answer whose function calls another question's wrong function: told once, as
    that one's consequence ("fix that first"), in the feedback, the overview and "need a look"."""
    wrong = {r.answer: r for r in results if r.status in _WRONG}
    for r in results:
        if r.status not in _WRONG:
            continue
        causes = [wrong[n] for n in sorted(_called(sources, r.answer)) if n in wrong and wrong[n] is not r]
        if causes:
            cause = causes[0]
            while cause.root_cause:  # the first link of the chain
                cause = next(c for c in results if c.id == cause.root_cause)
            r.root_cause = cause.id
    for r in results:
        if r.root_cause:
            root = next(c for c in results if c.id == r.root_cause)
            r.reason = (f"follows from {root.id}: `{r.answer}` calls `{root.answer}`, which is wrong — fix that "
                        f"first ({r.reason})")


def unrunnable(sub: Submission, plan: Optional[GradingPlan]) -> SubmissionReport:
    """The report of a submission that cannot be run (``sub.problem``): every question 0, that reason."""
    questions = plan.questions if plan is not None else []
    return SubmissionReport(sub.name, sub.student, sub.sha256, sub.chapter, sub.status, [sub.problem], [],
                            [QuestionResult(q.id, q.title, q.answer, sub.status, sub.problem, 0, q.points)
                             for q in questions])



def submission_report(sub: Submission, plan: GradingPlan, report: RunReport, run: Completed, session: Session,
                      sources: dict[int, str], partial: bool = False) -> SubmissionReport:
    """One run's typed report: a result per question of `plan`, the run's status and notes."""
    results = [question_result(q, plan, report, run, session, sources, partial) for q in plan.questions]
    attribute_root_causes(results, sources)
    inside = [r for r in results if r.status == "forbidden_import" and not session.forbidden]
    if inside:  # imported inside a function: the run as a whole is flagged too
        session.statuses.add("forbidden_import")
        session.notes.insert(0, f"{inside[0].id}: {inside[0].reason}")
    if sub.changed_on_disk():
        session.notes.append("WARNING: the submission file changed on disk during grading (graded the original bytes)")
    status = next(s for s in TOTAL_PRIORITY if s in session.statuses)
    assert sub.nb is not None
    return SubmissionReport(sub.name, sub.student, sub.sha256, sub.chapter, status, list(session.notes),
                            ignored_parts(sub.nb), results, seconds=run.seconds)
