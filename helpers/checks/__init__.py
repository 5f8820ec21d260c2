"""Instant feedback for the exercise notebooks: ``check("01.linear_params", linear_params)``.

``check`` calls your function on about twenty randomised inputs (so a hard-coded number cannot
pass), compares every result with the reference answer computed by helpers' core, and prints one
short line (the references are computed only once your function returned a value: a function not
written yet is reported "not attempted" at the cost of one call):

    ✅ 01.linear_params: 20/20 cases correct
    ❌ 01.linear_params: linear_params(37, 5, bias=False) returned 190, expected 185.
       Hint: …
    ⏳ 01.linear_params: not attempted yet — replace the `raise NotImplementedError` …

A question whose answer is an ``nn.Module`` (``Question.probe``) builds your module on the meta
device and compares its description (parameter shapes, count, output shape, a few output values on
fixed weights: :mod:`helpers.checks.module_answer`) with the reference module's.

A function that uses a helpers module the grader refuses (``helpers.formulas``, …: the one rule
is :func:`helpers.checks.graded.refused_name`) is told so next to its ✅ — "this function uses
helpers.formulas, which the grader refuses — it will score 0" (:mod:`helpers.checks.refusal`).

The inputs are seeded from the question id, so a notebook's output is the same on every run.
Under nbgrader's autograder or validator (``NBGRADER_EXECUTION=autograde`` or ``validate``, see
:mod:`helpers.grading.nbgrader`) the inputs are fresh every run and a check that does not pass raises ``AssertionError`` (so the
test cell scores 0); there a function using a refused module does not pass either, and neither
does any check of a notebook that is not the nbgrader release (``exercises/``: its first,
locked cell is missing).
The batch grader (``python -m helpers.grade``) does NOT trust this output: it draws fresh inputs
every run and computes its verdicts in its own process.
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Callable

from helpers.checks.protocol import not_callable_message, run_cases
from helpers.checks.refusal import NOT_THE_RELEASE, autograding, is_nbgrader_release, refusal_warning, refused_use
from helpers.checks.registry import Question, UnknownQuestion, all_questions, get, make_cases
from helpers.checks.verdict import Verdict, judge, probes

__all__ = ["check", "CheckResult", "Question", "get", "all_questions", "run_cases", "checker_rng"]


class CheckResult:
    """What ``check`` returns: truthy when every case is correct.

    It prints nothing more in Jupyter (the line was already printed), so a check cell's output is
    exactly that line. Attributes: ``question_id``, ``status``, ``correct``, ``total``, ``message``.
    """

    def __init__(self, verdict: Verdict) -> None:
        self.verdict = verdict
        self.question_id = verdict.question_id
        self.status = verdict.status
        self.correct = verdict.correct
        self.total = verdict.total
        self.message = verdict.line()

    def __bool__(self) -> bool:
        return self.verdict.passed

    def __repr__(self) -> str:
        return self.message

    def _ipython_display_(self) -> None:  # the printed line is the display
        pass


def checker_rng(question_id: str) -> random.Random:
    """The checker's rng: seeded from the question id, so notebook outputs are stable."""
    return random.Random(f"helpers.checks:{question_id}")


def check(question_id: str, answer: Callable) -> CheckResult:
    """Check your function `answer` for the exercise `question_id` and print one friendly line.

    Returns a :class:`CheckResult`, truthy when all cases are correct.
    """
    try:
        question = get(question_id)
    except UnknownQuestion as exc:
        verdict = Verdict(str(question_id), "unknown_question", 0, 0, str(exc.args[0]))
        print(verdict.line())
        return CheckResult(verdict)
    autograde = autograding()
    rng = random.Random(random.SystemRandom().randrange(2**32)) if autograde else checker_rng(question.id)
    cases = make_cases(question, rng)
    try:
        refused = refused_use(answer) if callable(answer) else None
    except Exception:  # an object too strange to read: the grader will say what it does
        refused = None
    if autograde and not is_nbgrader_release():
        verdict = Verdict(question.id, "wrong_notebook", 0, len(cases), NOT_THE_RELEASE)
    elif not callable(answer):
        verdict = Verdict(question.id, "wrong_type", 0, len(cases),
                          not_callable_message(question.answer, type(answer).__name__))
    elif refused and autograde:  # what helpers.grade gives it: forbidden_import, 0 points
        verdict = Verdict(question.id, "forbidden_import", 0, len(cases), refusal_warning(refused))
    else:
        outcomes = run_cases(answer, cases, question.timeout, probes=probes(question, cases))
        verdict = judge(question, cases, outcomes)  # references only if a value must be compared
        if refused:
            verdict = replace(verdict, warning=refusal_warning(refused))
    print(verdict.line())
    if autograde and not verdict.passed:  # nbgrader scores a test cell by whether it raises
        raise AssertionError(verdict.line())
    return CheckResult(verdict)
