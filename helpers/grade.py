"""Batch grader: ``python -m helpers.grade SUBMISSIONS… --out grades.csv [--jobs N] [--timeout S]``.

Submissions are untrusted notebooks. This module only orchestrates the steps and holds the CLI;
each step is one module of :mod:`helpers.grading` (read its docstring for the map):
read (:mod:`~helpers.grading.submission`) → plan the run's random cases and reference answers
(:mod:`~helpers.grading.plan`) → run in a fresh bubblewrap sandbox (:mod:`~helpers.grading.run`,
:mod:`~helpers.grading.sandbox`) → collect what came back (:mod:`~helpers.grading.collect`) →
notes on the run (:mod:`~helpers.grading.notes`) → judge each question here
(:mod:`~helpers.grading.judge`) → ``grades.csv`` (:mod:`~helpers.grading.csvlog`), then the
feedback pages, class overview and gradebook, and the printed summary.

A question scores its points only if every case is correct (``--partial``: proportional to the
cases passed), so re-running with the same ``--seed`` gives the same scores. Without bubblewrap
the grader refuses to run; ``--no-sandbox`` grades anyway (faults isolated, student code NOT
contained), and says so in the summary and on every CSV row. Run it with the course environment
(``.venv/bin/python -m helpers.grade`` or ``make grade``): it needs torch for the reference answers.
"""

from __future__ import annotations

import argparse
import importlib.util
import queue
import random
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Optional, Sequence

from helpers.checks.graded import build_view
from helpers.grading.collect import collect
from helpers.grading.csvlog import CsvLog, Row, reports_from_rows, rows_of
from helpers.grading.judge import submission_report, unrunnable
from helpers.grading.notes import session_notes
from helpers.grading.plan import GradingPlan, Settings, check_question_ids
from helpers.grading.report import ClassReport, SubmissionReport
from helpers.grading.run import kernel_python, run_submission
from helpers.grading.sandbox import Limits, Sandbox, SandboxUnavailable, unavailable_reason
from helpers.grading.submission import Submission, cells_to_run, code_cells, read_submission
from helpers.grading.summary import summary, write_run_info

__all__ = ["grade", "grade_class", "grade_submission", "report_submission", "main"]

NO_TORCH = ("torch is not installed in this Python ({python}): run it with the course environment: "
            ".venv/bin/python -m helpers.grade or make grade")


def report_submission(path: Path | Submission, plans: dict[str, GradingPlan], settings: Settings,
                      chapter: Optional[str] = None, seed: int = 0, slot: int = 0) -> SubmissionReport:
    """Grade one submission: its typed report (read → run → collect → notes → one result per question)."""
    sub = path if isinstance(path, Submission) else read_submission(Path(path), chapter)
    plan = None
    if sub.chapter is not None:
        if sub.chapter not in plans:
            plans[sub.chapter] = GradingPlan.build(sub.chapter, seed)
        plan = plans[sub.chapter]
        if not plan.questions and not sub.problem:
            sub.problem, sub.status = f"chapter {sub.chapter} has no exercise questions", "invalid_notebook"
    if sub.problem:
        return unrunnable(sub, plan if plan and plan.questions else None)
    assert plan is not None and sub.nb is not None
    sources = code_cells(sub.nb)
    run = run_submission(cells_to_run(sub.nb), plan, settings, slot)
    report = collect(run)
    session = session_notes(report, run, sources, settings)
    return submission_report(sub, plan, report, run, session, sources, settings.partial)


def grade_submission(path: Path | Submission, plans: dict[str, GradingPlan], settings: Settings,
                     chapter: Optional[str] = None, seed: int = 0, slot: int = 0) -> list[Row]:
    """Grade one submission: its question rows plus a TOTAL row."""
    sandbox = settings.sandbox.label if settings.sandbox is not None else "NONE (--no-sandbox)"
    return rows_of(report_submission(path, plans, settings, chapter, seed, slot), sandbox)


def grade(paths: list[Path], **options: Any) -> tuple[list[Row], int]:
    """Grade `paths`; returns (CSV rows in input order, seed used). Options: those of :func:`grade_class`."""
    batch = grade_class(paths, **options)
    return [row for sub in batch.reports for row in rows_of(sub, batch.sandbox)], batch.seed


def grade_class(paths: list[Path], *, jobs: int = 1, timeout: float = 60.0, memory_mb: int = 2048,
                seed: Optional[int] = None, chapter: Optional[str] = None, question_timeout: Optional[float] = None,
                progress: bool = True, sandbox: bool = True, out: Optional[Path] = None, resume: bool = False,
                partial: bool = False, roster: Optional[dict[str, str]] = None,
                id_pattern: Optional[str] = None, questions: Optional[Sequence[str]] = None) -> ClassReport:
    """Grade `paths` (in parallel with `jobs` sandboxes) into a :class:`ClassReport` (input order).

    With `out`, each submission's rows are appended to that CSV as soon as it is graded (and with
    `resume`, submissions it already grades completely are skipped: their reports are rebuilt from
    its rows). `partial`: points proportional to the cases passed. `questions`: grade only these
    question ids (e.g. the ones assigned; ``--questions``); an unknown id is a ValueError. Raises
    :class:`SandboxUnavailable` when `sandbox` is on and no sandbox can be created here.
    """
    from helpers.grading.gradebook import student_id

    seed = random.SystemRandom().randrange(2**32) if seed is None else seed
    chapter = None if chapter is None else f"{int(chapter):02d}"
    check_question_ids(questions)
    python = kernel_python()
    problem = unavailable_reason(python) if sandbox else None
    if problem is not None:
        raise SandboxUnavailable(f"{problem}. Pass --no-sandbox to grade WITHOUT isolation (only for code you trust)"
                                 if "--no-sandbox" not in problem else problem)
    view = tempfile.TemporaryDirectory(prefix="graded-view-")
    log: Optional[CsvLog] = None
    try:
        box = Sandbox(python, Limits(memory_mb=memory_mb), build_view(Path(view.name)), enabled=sandbox)
        settings = Settings(timeout=timeout, question_timeout=question_timeout, memory_mb=memory_mb,
                            python=python, sandbox=box, partial=partial)
        log = CsvLog(out, resume) if out is not None else None
        subs = [read_submission(Path(p), chapter) for p in paths]
        for sub in subs:
            sub.student = student_id(sub.path, roster, id_pattern)
        kept = {(r.submission, r.sha256): r for r in reports_from_rows(log.previous)} if log and resume else {}
        todo = [s for s in subs if (s.name, s.sha256) not in kept]
        if len(todo) < len(subs):
            print(f"--resume: {len(subs) - len(todo)} submission(s) already graded in {out}, skipped", file=sys.stderr)
        plans: dict[str, GradingPlan] = {}
        for sub in subs:  # in this thread, up front (torch imports, reference answers)
            if sub.chapter is not None and sub.chapter not in plans:
                plans[sub.chapter] = GradingPlan.build(sub.chapter, seed, questions)
        results = _grade_all(todo, plans, settings, seed, jobs, progress, log)
        fresh = {(s.name, s.sha256): results[i] for i, s in enumerate(todo)}
        reports = [fresh.get((s.name, s.sha256)) or kept[(s.name, s.sha256)] for s in subs]
        for sub, rep in zip(subs, reports):
            rep.student, rep.name = sub.student, (roster or {}).get(sub.student, "")
        if log is not None:
            log.finish([row for i in range(len(todo)) for row in rows_of(results[i], box.label)])
            log = None
        return _class_report(reports, plans, seed, partial, box.label, roster)
    finally:
        if log is not None:
            log.close()
        view.cleanup()


def _class_report(reports: list[SubmissionReport], plans: dict[str, GradingPlan], seed: int, partial: bool,
                  label: str, roster: Optional[dict[str, str]]) -> ClassReport:
    return ClassReport(reports, seed, partial, label,
                       questions={q.id: q for plan in plans.values() for q in plan.questions},
                       cases={qid: c for plan in plans.values() for qid, c in plan.cases.items()},
                       references={qid: r.normalised for plan in plans.values() for qid, r in plan.references.items()},
                       roster=dict(roster or {}))


def _grade_all(subs: list[Submission], plans: dict[str, GradingPlan], settings: Settings, seed: int, jobs: int,
               progress: bool, log: Optional[CsvLog]) -> dict[int, SubmissionReport]:
    """Each submission's report by its index in `subs`, `jobs` at a time (one sandbox slot each)."""
    from tqdm import tqdm

    slots: "queue.Queue[int]" = queue.Queue()
    for slot in range(max(1, jobs)):
        slots.put(slot)

    def one(sub: Submission) -> SubmissionReport:
        slot = slots.get()
        try:
            return report_submission(sub, plans, settings, seed=seed, slot=slot)
        finally:
            slots.put(slot)

    label = settings.sandbox.label if settings.sandbox else ""
    results: dict[int, SubmissionReport] = {}
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool, \
            tqdm(total=len(subs), desc="grading", unit="nb", disable=not progress, file=sys.stderr) as bar:
        futures = {pool.submit(one, sub): i for i, sub in enumerate(subs)}
        for future in as_completed(futures):
            i = futures[future]
            try:
                results[i] = future.result()
            except Exception as exc:  # a grader bug must not lose the other submissions
                results[i] = SubmissionReport(subs[i].name, subs[i].student, subs[i].sha256, subs[i].chapter,
                                              "crashed", [f"grader error: {type(exc).__name__}: {exc}"])
            if log is not None:
                log.append(rows_of(results[i], label))
            bar.update(1)
    return results


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m helpers.grade",
                                     description="Grade exercise notebooks (untrusted) into a CSV, per-student "
                                                 "feedback, a class overview and a gradebook.")
    add = parser.add_argument
    add("submissions", nargs="+", type=Path, help="submitted .ipynb files")
    add("--out", type=Path, default=Path("grades.csv"), help="CSV to write (default grades.csv)")
    add("--jobs", "-j", type=int, default=1, help="submissions graded in parallel")
    add("--timeout", type=float, default=60.0, help="seconds for running one notebook's cells (default 60)")
    add("--question-timeout", type=float, default=None,
        help="cap on each question's own time limit (default: the question's, 10 s)")
    add("--memory-mb", type=int, default=2048, help="memory limit per submission (default 2048)")
    add("--chapter", help="grade every submission as this chapter (default: from the notebook)")
    add("--seed", type=int, help="random inputs' seed (default: fresh each run; saved in <out>_run.json)")
    add("--questions", type=lambda text: [q.strip() for q in text.split(",") if q.strip()],
        help="grade only these question ids, comma-separated (e.g. the ones you assigned); "
             "default: every question of the chapter")
    add("--partial", action="store_true",
        help="partial credit: a question's points proportional to the cases passed (default: all or nothing)")
    add("--roster", type=Path, help="CSV of students (id column, optional name): ids matched in file names")
    add("--id-pattern", help="regex on the file name giving the student id (group 'id' or 1)")
    add("--no-reports", action="store_true", help="only the CSV (no feedback/, overview or gradebook)")
    add("--resume", action="store_true",
        help="keep --out's rows and skip submissions (same path and SHA-256) it already grades")
    add("--no-sandbox", action="store_true", help="grade without bubblewrap (NOT isolated: only for code you trust)")
    add("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    args = _parser().parse_args(argv)
    if importlib.util.find_spec("torch") is None:  # before anything needs it (the reference answers)
        print(f"error: {NO_TORCH.format(python=sys.executable)}", file=sys.stderr)
        return 2
    start = time.monotonic()
    try:
        roster = None
        if args.roster is not None:
            from helpers.grading.gradebook import read_roster

            roster = read_roster(args.roster)
        batch = grade_class(args.submissions, jobs=args.jobs, timeout=args.timeout, memory_mb=args.memory_mb,
                            seed=args.seed, chapter=args.chapter, question_timeout=args.question_timeout,
                            progress=not args.quiet, sandbox=not args.no_sandbox, out=args.out,
                            resume=args.resume, partial=args.partial, roster=roster, id_pattern=args.id_pattern,
                            questions=args.questions)
    except (SandboxUnavailable, ValueError, OSError) as exc:  # also --resume from a CSV of another layout …
        print(f"error: {exc}", file=sys.stderr)
        return 2
    write_run_info(batch, args.out, list(sys.argv[1:] if argv is None else argv))
    text = summary(batch, time.monotonic() - start, batch.seed, args.jobs, args.out, sandboxed=not args.no_sandbox)
    if not args.no_reports:
        from helpers.grading.feedback import write_feedback
        from helpers.grading.gradebook import write_gradebook
        from helpers.grading.overview import write_overview

        folder = write_feedback(batch, args.out.parent / "feedback")
        book = write_gradebook(batch, args.out.with_name("gradebook.csv"))
        page = write_overview(batch, args.out.with_name(args.out.stem + "_overview.html"))
        text += f"\n  feedback: {folder}/ · overview: {page} · gradebook: {book}"
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
