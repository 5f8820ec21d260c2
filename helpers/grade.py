"""Batch grader: ``python -m helpers.grade SUBMISSIONS… --out grades.csv [--jobs N] [--timeout S]``.

Submissions are untrusted notebooks. This module only orchestrates the steps and holds the CLI;
each step is one module of :mod:`helpers.grading` (read its docstring for the map):
read (:mod:`~helpers.grading.submission`) → plan the run's random cases and reference answers
(:mod:`~helpers.grading.plan`) → run in a fresh sandbox (:mod:`~helpers.grading.run`: a fork server's child,
:mod:`~helpers.grading.warm`, else bubblewrap, :mod:`~helpers.grading.sandbox`) → collect what came back
(:mod:`~helpers.grading.collect`) → notes on the run (:mod:`~helpers.grading.notes`) → judge each question here
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
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional, Sequence

from helpers.checks.graded import build_view
from helpers.grading.collect import collect
from helpers.grading.csvlog import CsvLog, Row, reports_from_rows, rows_of
from helpers.grading.judge import submission_report, unrunnable
from helpers.grading.notes import session_notes
from helpers.grading.output import default_out, private_umask, write_outputs
from helpers.grading.plan import GradingPlan, Settings, check_question_ids
from helpers.grading.report import ClassReport, SubmissionReport
from helpers.grading.run import kernel_python, run_submission
from helpers.grading.pool import grade_all
from helpers.grading.sandbox import Limits, Sandbox, SandboxUnavailable, unavailable_reason
from helpers.grading.submission import Submission, cells_to_run, code_cells, read_submission
from helpers.grading.gradebook import read_class
from helpers.grading.summary import run_seed, summary
from helpers.grading.warm import ForkServers, start_fork_servers

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
    """Grade `paths`; returns (CSV rows in input order, seed used). Options: those of :func:`grade_class`.
    Raises KeyboardInterrupt if the run was interrupted (the rows graded so far are in `out`, if given)."""
    batch = grade_class(paths, **options)
    if batch.interrupted:
        raise KeyboardInterrupt
    return [row for sub in batch.reports for row in rows_of(sub, batch.sandbox)], batch.seed


def grade_class(paths: list[Path], *, jobs: int = 1, timeout: float = 60.0, memory_mb: int = 2048,
                seed: Optional[int] = None, chapter: Optional[str] = None, question_timeout: Optional[float] = None,
                progress: bool = True, sandbox: bool = True, out: Optional[Path] = None, resume: bool = False,
                partial: bool = False, roster: Optional[dict[str, str]] = None, id_pattern: Optional[str] = None,
                questions: Optional[Sequence[str]] = None, allow_duplicates: bool = False,
                fork_server: bool = True) -> ClassReport:
    """Grade `paths` (in parallel with `jobs` sandboxes) into a :class:`ClassReport` (input order).

    With `out`, each submission's rows are appended to that CSV as soon as it is graded (and with
    `resume`, submissions it already grades completely are skipped: their reports are rebuilt from
    its rows). `seed`: see :func:`~helpers.grading.summary.run_seed`. `partial`: points proportional to the cases passed.
    `questions`: grade only these question ids (``--questions``); an unknown id is a ValueError, as
    are two submissions of one chapter for one student id unless `allow_duplicates`. Ctrl-C stops the
    runs under way and returns what was graded (``interrupted``). `fork_server`: one warm sandbox per job
    (:mod:`~helpers.grading.warm`) where it can run, not a fresh one per submission. Raises
    :class:`SandboxUnavailable` when `sandbox` is on and no sandbox can be created here."""
    seed = run_seed(seed, out, resume)
    chapter = None if chapter is None else f"{int(chapter):02d}"
    check_question_ids(questions)
    python = _kernel_python(sandbox)
    subs = read_class(paths, chapter, roster, id_pattern, allow_duplicates)
    view = tempfile.TemporaryDirectory(prefix="graded-view-")
    log: Optional[CsvLog] = None
    servers: Optional[ForkServers] = None
    try:
        box = Sandbox(python, Limits(memory_mb=memory_mb), build_view(Path(view.name)), enabled=sandbox)
        servers = start_fork_servers(box, jobs) if fork_server else None
        settings = Settings(timeout=timeout, question_timeout=question_timeout, memory_mb=memory_mb,
                            python=python, sandbox=box, partial=partial, fork_servers=servers)
        log = CsvLog(out, resume) if out is not None else None
        kept = {(r.submission, r.sha256): r for r in reports_from_rows(log.previous)} if log and resume else {}
        todo = [s for s in subs if (s.name, s.sha256) not in kept]
        plans: dict[str, GradingPlan] = {}
        results: dict[int, SubmissionReport] = {}
        try:
            for sub in subs:  # in this thread, up front (torch imports, reference answers)
                if sub.chapter is not None and sub.chapter not in plans:
                    plans[sub.chapter] = GradingPlan.build(sub.chapter, seed, questions)
            interrupted = grade_all(todo, lambda sub, slot: report_submission(sub, plans, settings, seed=seed, slot=slot),
                                    jobs, progress, log, results, settings.sandbox.label)
        except KeyboardInterrupt:
            interrupted = True
        fresh = {(s.name, s.sha256): results[i] for i, s in enumerate(todo) if i in results}
        reports = [fresh.get((s.name, s.sha256)) or kept.get((s.name, s.sha256)) for s in subs]
        for sub, rep in zip(subs, reports):
            if rep is not None:
                rep.student, rep.name = sub.student, (roster or {}).get(sub.student, "")
        if log is not None:
            log.finish([row for i in sorted(results) for row in rows_of(results[i], box.label)])
            log = None
        batch = _class_report([r for r in reports if r is not None], plans, seed, partial, box.label, roster)
        batch.interrupted, batch.asked = interrupted, len(subs)
        batch.kept = sum(1 for s in subs if (s.name, s.sha256) in kept)
        return batch
    finally:
        if log is not None:
            log.close()
        if servers is not None:
            servers.close()
        view.cleanup()


def _kernel_python(sandbox: bool) -> str:
    """The students' interpreter; raises :class:`SandboxUnavailable` if `sandbox` and none can be created."""
    python = kernel_python()
    problem = unavailable_reason(python) if sandbox else None
    if problem is not None:
        raise SandboxUnavailable(f"{problem}. Pass --no-sandbox to grade WITHOUT isolation (only for code you trust)"
                                 if "--no-sandbox" not in problem else problem)
    return python


def _class_report(reports: list[SubmissionReport], plans: dict[str, GradingPlan], seed: int, partial: bool,
                  label: str, roster: Optional[dict[str, str]]) -> ClassReport:
    return ClassReport(reports, seed, partial, label,
                       questions={q.id: q for plan in plans.values() for q in plan.questions},
                       cases={qid: c for plan in plans.values() for qid, c in plan.cases.items()},
                       references={qid: r.normalised for plan in plans.values() for qid, r in plan.references.items()},
                       roster=dict(roster or {}))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m helpers.grade",
                                     description="Grade exercise notebooks (untrusted) into a CSV, per-student "
                                                 "feedback, a class overview and a gradebook.")
    add = parser.add_argument
    add("submissions", nargs="+", type=Path, help="submitted .ipynb files")
    add("--out", type=Path, help="CSV to write; every other output goes beside it (default: "
                                 "grading/<chapters>/grades.csv, git-ignored; files 0600, folders 0700)")
    add("--jobs", "-j", type=int, default=1, help="submissions graded in parallel")
    add("--timeout", type=float, default=60.0, help="seconds for running one notebook's cells (default 60)")
    add("--question-timeout", type=float, default=None,
        help="cap on each question's own time limit (default: the question's, 10 s)")
    add("--memory-mb", type=int, default=2048, help="memory limit per submission (default 2048)")
    add("--chapter", help="grade every submission as this chapter (default: from the notebook)")
    add("--seed", type=int, help="random inputs' seed (default: the one recorded in <out>_run.json by an earlier "
                                 "run into the same folder, else a fresh one, recorded there)")
    add("--questions", type=lambda text: [q.strip() for q in text.split(",") if q.strip()],
        help="grade only these question ids, comma-separated (e.g. the ones you assigned); "
             "default: every question of the chapter")
    add("--partial", action="store_true",
        help="partial credit: a question's points proportional to the cases passed (default: all or nothing)")
    add("--roster", type=Path, help="CSV of students (id column, optional name): ids matched in file names")
    add("--id-pattern", help="regex on the file name giving the student id (group 'id' or 1)")
    add("--allow-duplicates", action="store_true",
        help="grade two submissions of one chapter mapping to one student id (default: refused); keeps the best")
    add("--lms", action="append", choices=["canvas", "moodle"], default=[],
        help="also write canvas.csv / moodle.csv for that LMS's gradebook import (repeatable)")
    add("--no-reports", action="store_true", help="only the CSV (no feedback/, overview or gradebook)")
    add("--resume", action="store_true",
        help="keep --out's rows and skip submissions (same path and SHA-256) it already grades")
    add("--no-fork-server", action="store_true", help="start a fresh sandbox per submission (slower; same isolation)")
    add("--no-sandbox", action="store_true", help="grade without bubblewrap (NOT isolated: only for code you trust)")
    add("--quiet", action="store_true", help="no progress bar")
    return parser


def _batch(args: argparse.Namespace, out: Path) -> ClassReport:
    roster = None
    if args.roster is not None:
        from helpers.grading.gradebook import read_roster

        roster = read_roster(args.roster)
    return grade_class(args.submissions, jobs=args.jobs, timeout=args.timeout, memory_mb=args.memory_mb,
                       seed=args.seed, chapter=args.chapter, question_timeout=args.question_timeout,
                       progress=not args.quiet, sandbox=not args.no_sandbox, out=out, resume=args.resume,
                       partial=args.partial, roster=roster, id_pattern=args.id_pattern, questions=args.questions,
                       allow_duplicates=args.allow_duplicates, fork_server=not args.no_fork_server)


def main(argv: Optional[list[str]] = None) -> int:
    args = _parser().parse_args(argv)
    if importlib.util.find_spec("torch") is None:  # before anything needs it (the reference answers)
        print(f"error: {NO_TORCH.format(python=sys.executable)}", file=sys.stderr)
        return 2
    start = time.monotonic()
    out = args.out or default_out([read_submission(p, args.chapter).chapter or "" for p in args.submissions])
    with private_umask():  # student data: every file 0600, every folder 0700
        try:
            batch = _batch(args, out)
        except (SandboxUnavailable, ValueError, OSError) as exc:  # also --resume from a CSV of another layout …
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:  # before any submission was graded (reading, torch's import)
            print(f"interrupted: 0 of {len(args.submissions)} graded, run again with --resume", file=sys.stderr)
            return 130
        written = write_outputs(batch, out, list(sys.argv[1:] if argv is None else argv),
                                reports=not args.no_reports, lms=args.lms)
    text = summary(batch, time.monotonic() - start, batch.seed, args.jobs, out, sandboxed=not args.no_sandbox)
    if not args.no_reports:
        text += f"\n  feedback: {written[2]}/ · overview: {written[4]} · gradebook: {written[3]}"
        text += "".join(f" · {kind}: {path}" for kind, path in zip(args.lms, written[-len(args.lms):] if args.lms else []))
    print(text)
    if batch.interrupted:
        print(f"interrupted: {len(batch.reports)} of {batch.asked} graded, run again with --resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
