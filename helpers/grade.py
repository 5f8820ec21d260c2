"""Batch grader: ``python -m helpers.grade SUBMISSIONS… --out grades.csv [--jobs N] [--timeout S]``.

Submissions are untrusted notebooks. The pipeline, one single-purpose step each (nbgrader's spirit):

1. :func:`read_submission` reads the file once (never writes it) into a :class:`Submission`: its
   SHA-256, its parsed cells (a malformed or truncated .ipynb → ``invalid_notebook`` with the
   reason) and its chapter — from the notebook metadata that ``helpers.exercises`` writes, else
   from its check cells, else from the file name (``team12_02_convolution_exercises.ipynb`` is
   chapter 02). A chapter-03 notebook handed in as chapter 02 (by name or ``--chapter``) is
   ``wrong_notebook``.
2. :func:`run_submission` starts ``python -m helpers.grading.runner`` in a fresh **sandbox**
   (:mod:`helpers.grading.sandbox`: bubblewrap, no network, own PID namespace, read-only environment, no
   project files but the graded view of helpers — see :mod:`helpers.checks.graded`) with resource limits;
   it executes the notebook's code cells except the check cells (tagged ``check``, or cells whose
   code only calls ``check(…)``; other ``check(…)`` lines are dropped), then calls each of the
   chapter's functions on inputs drawn at random for THIS run (a fresh seed, not the checker's)
   and sends back only their return values. Wall time is enforced from outside in phases
   (start-up, cells, questions), every read is bounded and the result size capped.
3. :func:`collect` turns what came back into a typed :class:`RunReport` — defensively: malformed,
   oversized or missing results become ``crashed`` with a reason, never an exception here.
4. :func:`session_notes` says what went wrong in the run as a whole (cell errors, timeouts,
   forbidden imports, crashes); :func:`question_row` judges one question HERE, with the
   registry's reference answers computed in the grader's own process (:func:`reference_answers`).
   Printing "✅", editing check cells or monkeypatching ``helpers`` cannot raise a score.

5. :func:`report_submission` gathers it all in a typed :class:`helpers.grading.report.SubmissionReport`;
   :func:`grade_class` returns a :class:`~helpers.grading.report.ClassReport` for the batch, which
   :mod:`helpers.grading.feedback` (``feedback/``), :mod:`helpers.grading.overview` (``grades_overview.html``) and
   :mod:`helpers.grading.gradebook` (``gradebook.csv``, student ids from ``--roster`` / ``--id-pattern``)
   present. The seed is saved in ``grades_run.json``.

Cells are numbered as the student counts them: code cells only, from 1, and quoted by their first
line. A missing function's reason names the cell that defines it and that cell's own error (or
"no cell defines it; … defines `conv_param` — renamed?").

``grades.csv`` has one row per submission × question and a ``TOTAL`` row per submission, with the
columns ``submission, question, points, max_points, status, reason, sha256, sandbox, seconds, hint``. Each
submission's rows are appended (one write, fsync) as soon as it is graded, so Ctrl-C or a crash
keeps everything graded so far; at the end the file is rewritten atomically in input order.
``--resume`` skips submissions whose path and SHA-256 already have a TOTAL row. A question scores
its points only if every case is correct (``--partial``: proportional to the cases passed), so
re-running gives the same scores.

Question statuses: correct, wrong, wrong_type, error (raised), not_attempted, timeout, memory,
missing (no such function), forbidden_import, crashed (the process died or sent garbage),
invalid_notebook, wrong_notebook. TOTAL statuses: ok, cell_errors (some cells raised; grading went
on), forbidden_import, memory, timeout, crashed, invalid_notebook, wrong_notebook.

Without bubblewrap the grader refuses to run; ``--no-sandbox`` grades anyway (faults isolated,
student code NOT contained), and says so in the summary and on every CSV row.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import math
import os
import queue
import random
import re
import signal
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from helpers.checks import protocol
from helpers.checks.protocol import ANSWER_LIMIT_BYTES, not_callable_message
from helpers.checks.registry import Question, all_questions, make_cases, questions_for_chapter
from helpers.checks.protocol import run_cases  # noqa: F401  (re-exported for helpers.grading.overview)
from helpers.checks.verdict import (References, count_passed, is_memory_error, judge, matches, probes,
                                    reference_answers)
from helpers.checks.verdict import module_fault  # noqa: F401  (re-exported for helpers.grading.overview)
from helpers.grading.report import ClassReport, QuestionResult, SubmissionReport, question_points
from helpers.checks.graded import NOTEBOOK_METADATA_KEY, build_view, forbidden_module
from helpers.notebooks import KERNEL_NAME
from helpers.grading.sandbox import Completed, Limits, Sandbox, SandboxUnavailable, run, unavailable_reason

__all__ = ["Row", "GradingPlan", "Submission", "RunReport", "read_submission", "run_submission", "collect",
           "session_notes", "question_result", "question_row", "missing_cause", "code_cells", "cells_to_run",
           "report_submission", "rows_of", "grade", "grade_class", "grade_submission", "write_csv",
           "write_run_info", "main", "COLUMNS"]

COLUMNS = ["submission", "question", "points", "max_points", "status", "reason", "sha256", "sandbox", "seconds",
           "hint"]
ROOT = Path(__file__).resolve().parent.parent
TOTAL = "TOTAL"
GRACE = 2.0  # seconds allowed on top of each phase's own limit (reporting, process exit)
_CHECK_CALL = re.compile(r"(?<![\w.])check\s*\(")
_CHAPTER_IN_NAME = re.compile(r"(?:^|[^0-9])(\d\d)_")
_CHECK_ID = re.compile(r"""check\(\s*["'](\d\d)\.""")
_TOTAL_PRIORITY = ["invalid_notebook", "wrong_notebook", "crashed", "timeout", "memory", "forbidden_import",
                   "cell_errors", "ok"]


@dataclass
class Row:
    submission: str
    question: str
    points: float
    max_points: float
    status: str
    reason: str = ""
    sha256: str = ""
    sandbox: str = ""
    seconds: str = ""  # wall time of the submission's run (TOTAL rows)
    hint: str = ""     # the hint the instant check shows (question rows that lost points)

    def as_csv(self) -> list[str]:
        return [self.submission, self.question, _num(self.points), _num(self.max_points), self.status,
                " ".join(self.reason.split()), self.sha256, self.sandbox, self.seconds, " ".join(self.hint.split())]


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


@dataclass
class GradingPlan:
    """One chapter's questions with this run's random cases and their reference answers."""

    chapter: str
    questions: list[Question]
    cases: dict[str, list]
    references: dict[str, References]

    @classmethod
    def build(cls, chapter: str, seed: int, only: Optional[Sequence[str]] = None) -> "GradingPlan":
        """`only`: grade just these question ids (those of other chapters are ignored here)."""
        questions = questions_for_chapter(chapter)
        if only is not None:
            wanted = set(only)
            questions = [q for q in questions if q.id in wanted]
            if not questions:
                raise ValueError(f"none of the questions to grade ({', '.join(only)}) is in chapter {chapter}; its "
                                 f"questions: {', '.join(q.id for q in questions_for_chapter(chapter))}")
        cases, references = {}, {}
        for q in questions:
            cs = make_cases(q, random.Random(f"grade:{seed}:{q.id}"))
            # JSON round trip: exactly what the student's process will receive
            cases[q.id] = [(tuple(a), dict(k)) for a, k in json.loads(json.dumps(cs))]
            references[q.id] = reference_answers(q, cases[q.id])
            if references[q.id].failure:
                raise RuntimeError(f"question {q.id}: {references[q.id].failure} on this run's inputs; fix {q.module}")
        return cls(chapter, questions, cases, references)

    @property
    def max_points(self) -> float:
        return sum(q.points for q in self.questions)

    def question_seconds(self, settings: "Settings") -> float:
        return sum(settings.limit_for(q) for q in self.questions)


@dataclass
class Settings:
    timeout: float = 60.0           # seconds for the notebook's cells
    question_timeout: Optional[float] = None  # cap on each question's own limit
    memory_mb: int = 2048
    python: str = sys.executable
    startup_slack: float = 15.0     # seconds for the sandboxed process to start (Python, IPython)
    sandbox: Optional[Sandbox] = None  # None: a plain child process (tests of single steps)
    partial: bool = False           # points proportional to the cases passed (--partial)

    def limit_for(self, q: Question) -> float:
        return q.timeout if self.question_timeout is None else min(q.timeout, self.question_timeout)


# --------------------------------------------------------------------------- 1. reading a submission

class InvalidNotebook(ValueError):
    pass


def _parse_notebook(data: bytes) -> dict:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidNotebook(f"not a text file (invalid UTF-8 at byte {exc.start})") from None
    if not text.strip():
        raise InvalidNotebook("the file is empty")
    try:
        nb = json.loads(text)
    except json.JSONDecodeError as exc:
        truncated = not text.rstrip().endswith("}") or exc.pos >= len(text.rstrip()) - 1
        what = "the file is truncated" if truncated else "the file is not valid JSON"
        raise InvalidNotebook(f"{what} ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(nb, dict):
        raise InvalidNotebook("not a notebook (the JSON is not an object)")
    if "worksheets" in nb and "cells" not in nb:  # nbformat 3
        nb = {"cells": [c for ws in nb.get("worksheets", []) for c in ws.get("cells", [])],
              "metadata": nb.get("metadata", {})}
        for c in nb["cells"]:
            if c.get("cell_type") == "code" and "input" in c:
                c["source"] = c["input"]
    cells = nb.get("cells")
    if not isinstance(cells, list):
        raise InvalidNotebook("not a notebook (no list of cells)")
    for i, cell in enumerate(cells):
        if not isinstance(cell, dict) or "cell_type" not in cell:
            raise InvalidNotebook(f"cell {i + 1} is malformed")
        source = cell.get("source", "")
        if isinstance(source, list) and all(isinstance(s, str) for s in source):
            cell["source"] = "".join(source)
        elif not isinstance(source, str):
            raise InvalidNotebook(f"cell {i + 1} has a malformed source")
    return nb


def _is_check_cell(cell: dict) -> bool:
    tags = cell.get("metadata", {}).get("tags", []) if isinstance(cell.get("metadata"), dict) else []
    return isinstance(tags, list) and "check" in tags


def code_cells(nb: dict) -> dict[int, str]:
    """Every code cell's source by its number AS THE STUDENT COUNTS: code cells only, from 1
    (markdown cells are not counted; a message also quotes the cell's first line)."""
    return {number: cell["source"] for number, cell in
            enumerate((c for c in nb["cells"] if c.get("cell_type") == "code"), start=1)}


def ignored_parts(nb: dict) -> list[str]:
    """What the grader does not run: check cells and ``check(…)`` lines (it asks the functions itself)."""
    skipped, trimmed = [], []
    for number, cell in enumerate((c for c in nb["cells"] if c.get("cell_type") == "code"), start=1):
        source = cell["source"]
        kept = [(n, s) for n, s in cells_to_run({"cells": [cell]})]
        if _is_check_cell(cell) or (_CHECK_CALL.search(source) and not kept):
            skipped.append(number)
        elif _CHECK_CALL.search(source):
            trimmed.append(number)
    out = []
    if skipped:
        out.append(f"{len(skipped)} check cell(s) not run (code cells {', '.join(map(str, skipped))}): the grader "
                   f"calls your functions itself, on fresh inputs")
    if trimmed:
        out.append(f"check(…) lines dropped from code cell(s) {', '.join(map(str, trimmed))}")
    return out


def cells_to_run(nb: dict) -> list[tuple[int, str]]:
    """(code-cell number, source) of the code cells the grader executes; code cells are numbered
    from 1 as the student counts them (see :func:`code_cells`).

    Check cells are skipped: tagged ``check``, or containing nothing but ``check(…)`` calls (and
    comments/imports of check). In other cells, top-level lines calling ``check(`` are dropped.
    """
    out = []
    for number, cell in enumerate((c for c in nb["cells"] if c.get("cell_type") == "code"), start=1):
        if _is_check_cell(cell):
            continue
        source = cell["source"]
        if _CHECK_CALL.search(source):
            kept = [line for line in source.split("\n") if not _CHECK_CALL.match(line)]
            meaningful = [l for l in kept if l.strip() and not l.lstrip().startswith("#")
                          and not re.match(r"\s*from\s+helpers\.checks\s+import\s+check\s*$", l)]
            if not meaningful:
                continue
            source = "\n".join(kept)
        if source.strip():
            out.append((number, source))
    return out




def _known_topics(root: Path = ROOT) -> dict[str, str]:
    """``"02_convolution"`` → ``"02"`` for every exercise notebook of the course."""
    names = {p.stem.removesuffix("_exercises") for d in ("solutions", "exercises")
             for p in (root / d).glob("*_exercises.ipynb")}
    return {n: n[:2] for n in names if re.match(r"\d\d_", n)}


def name_chapter(path: Path) -> Optional[str]:
    """The chapter a file name hands the notebook in as: a course topic in it (``…_02_convolution_…``),
    else the first ``NN_``; None if neither."""
    stem = path.name
    for topic, chapter in sorted(_known_topics().items(), key=lambda t: -len(t[0])):
        if re.search(rf"(?:^|[^0-9]){re.escape(topic)}", stem):
            return chapter
    match = _CHAPTER_IN_NAME.search(stem)
    return match.group(1) if match else None


def notebook_chapter(nb: Optional[dict]) -> Optional[str]:
    """The chapter the notebook itself says it is: the metadata ``helpers.exercises`` writes,
    else the question ids its check cells use (most frequent)."""
    if not isinstance(nb, dict):
        return None
    meta = nb.get("metadata")
    info = meta.get(NOTEBOOK_METADATA_KEY) if isinstance(meta, dict) else None
    chapter = info.get("chapter") if isinstance(info, dict) else None
    if isinstance(chapter, str) and re.fullmatch(r"\d\d", chapter):
        return chapter
    ids = [m for c in nb.get("cells", []) if isinstance(c, dict) and isinstance(c.get("source"), str)
           for m in _CHECK_ID.findall(c["source"])]
    return max(sorted(set(ids)), key=ids.count) if ids else None


def infer_chapter(path: Path, nb: Optional[dict]) -> Optional[str]:
    """Chapter of a submission: what the notebook says, else what its file name says."""
    return notebook_chapter(nb) or name_chapter(path)


@dataclass
class Submission:
    """One handed-in file, read once."""

    path: Path
    sha256: str = ""
    nb: Optional[dict] = None
    problem: str = ""               # why it cannot be graded (unreadable, invalid, wrong notebook)
    status: str = ""                # invalid_notebook / wrong_notebook when `problem`
    chapter: Optional[str] = None   # the chapter it is graded as
    student: str = ""               # student id (see helpers.grading.gradebook.student_ids)

    @property
    def name(self) -> str:
        return str(self.path)


def read_submission(path: Path, chapter: Optional[str] = None) -> Submission:
    """Read and parse `path`; `chapter` is the one it is handed in as (``--chapter``), if given."""
    sub = Submission(Path(path))
    try:
        data = sub.path.read_bytes()
    except OSError as exc:
        sub.problem, sub.status = f"cannot read the file: {exc.strerror or exc}", "invalid_notebook"
        return sub
    sub.sha256 = hashlib.sha256(data).hexdigest()
    try:
        sub.nb = _parse_notebook(data)
    except InvalidNotebook as exc:
        sub.problem, sub.status = str(exc), "invalid_notebook"
    declared = chapter or name_chapter(sub.path)
    actual = notebook_chapter(sub.nb)
    sub.chapter = declared or actual
    if sub.chapter is None and not sub.problem:
        sub.problem, sub.status = ("cannot tell which chapter this is (name the file NN_… or pass --chapter NN)",
                                   "invalid_notebook")
    elif declared and actual and declared != actual and not sub.problem:
        sub.problem, sub.status = (f"this is the chapter-{actual} exercise notebook, handed in as chapter "
                                   f"{declared}", "wrong_notebook")
    return sub


# --------------------------------------------------------------------------- 2. running it

def _kernel_python() -> str:
    """The interpreter of the ``dims-params`` Jupyter kernel (the students' environment)."""
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        argv0 = KernelSpecManager().get_kernel_spec(KERNEL_NAME).argv[0]
        if os.path.isabs(argv0) and os.access(argv0, os.X_OK):
            return argv0
    except Exception:
        pass
    return sys.executable


class _Phases:
    """The wall-clock deadline, phase by phase, from the events seen so far: start-up within
    ``startup_slack``; the cells within ``timeout`` (+ grace) of the start; the questions within
    the sum of their limits (+ grace) of the end of the cells."""

    def __init__(self, settings: Settings, question_seconds: float) -> None:
        self.settings, self.question_seconds = settings, question_seconds
        self.begin = time.monotonic()
        self.seen, self.started, self.cells_done = 0, None, None

    def __call__(self, events: list[dict]) -> float:
        now = time.monotonic()
        for event in events[self.seen:]:
            if event["event"] == protocol.START and self.started is None:
                self.started = now
            elif event["event"] == protocol.CELLS_DONE and self.cells_done is None:
                self.cells_done = now
        self.seen = len(events)
        if self.cells_done is not None:
            return self.cells_done + self.question_seconds + GRACE
        if self.started is not None:
            return self.started + self.settings.timeout + GRACE
        return self.begin + self.settings.startup_slack

    @staticmethod
    def bound(settings: Settings, question_seconds: float) -> float:
        """The longest one submission can take (seconds)."""
        return settings.startup_slack + settings.timeout + question_seconds + 2 * GRACE


def limits_for(settings: Settings, question_seconds: float) -> Limits:
    return Limits(memory_mb=settings.memory_mb,
                  cpu_seconds=math.ceil(_Phases.bound(settings, question_seconds)) + 5)


def run_submission(cells: list[tuple[int, str]], plan: GradingPlan, settings: Settings, slot: int = 0) -> Completed:
    """Run the cells and ask for the answers in a fresh sandbox; what came back, unjudged."""
    questions = [{"id": q.id, "answer": q.answer, "cases": plan.cases[q.id], "timeout": settings.limit_for(q),
                  **({} if q.probe is None else {"probes": probes(q, plan.cases[q.id])})} for q in plan.questions]
    seconds = plan.question_seconds(settings)
    job = json.dumps({"cells": cells, "cell_budget": settings.timeout, "questions": questions,
                      "limits": limits_for(settings, seconds).rlimits()}).encode()
    with tempfile.TemporaryDirectory(prefix="grade-") as tmp:
        box = settings.sandbox
        if box is None:  # a single step outside a batch: a plain process
            box = Sandbox(settings.python, Limits(), build_view(Path(tmp) / "view"), enabled=False)
        return run(box.argv(slot), job, env=box.env(tmp), cwd=tmp, deadline=_Phases(settings, seconds),
                   max_bytes=ANSWER_LIMIT_BYTES * (len(questions) + 1) + (1 << 20),
                   max_line=ANSWER_LIMIT_BYTES + (1 << 16), kinds=protocol.EVENTS)


# --------------------------------------------------------------------------- 3. what came back

@dataclass
class RunReport:
    """The events of one run, checked and sorted: nothing here is trusted beyond its type."""

    started: bool = False
    cells_done: bool = False
    done: bool = False
    last_cell: Optional[int] = None
    cell_errors: list[dict] = field(default_factory=list)
    answers: dict[str, dict] = field(default_factory=dict)
    problem: str = ""  # why the report cannot be trusted as complete (oversized, malformed)


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def collect(run: Completed) -> RunReport:
    """Sort the events of `run` into a report, ignoring any event whose fields have the wrong types."""
    report = RunReport()
    ignored = run.malformed
    for event in run.events:
        kind = event.get("event")
        if kind == protocol.START:
            report.started = True
        elif kind == protocol.CELL and _is_int(event.get("index")):
            report.last_cell = event["index"]
        elif kind == protocol.CELL_ERROR and _is_int(event.get("index", 0)):
            report.cell_errors.append({"index": event.get("index", 0), "type": str(event.get("type", "?"))[:100],
                                       "message": str(event.get("message", ""))[:protocol.MESSAGE_LIMIT + 1]})
        elif kind == protocol.CELLS_DONE:
            report.cells_done = True
        elif kind == protocol.ANSWER and isinstance(event.get("id"), str):
            report.answers[event["id"]] = event
        elif kind == protocol.DONE:
            report.done = True
        else:
            ignored += 1
    if run.overflow:
        report.problem = f"the notebook's process sent too much: {run.overflow}"
        report.done = False
    elif ignored and not report.done:
        report.problem = f"the notebook's process sent {ignored} malformed result line(s) and no complete report"
    return report


# --------------------------------------------------------------------------- 4. notes and rows

def _cell_label(number: int, sources: dict[int, str]) -> str:
    """``code cell 7 (`def conv_params(…`)``: numbered as the student counts, quoted by its first line."""
    first = next((l.strip() for l in sources.get(number, "").split("\n") if l.strip()), "")
    if len(first) > 40:
        first = first[:39] + "…"
    return f"code cell {number} (`{first}`)" if first else f"code cell {number}"


def _defining_cells(name: str, sources: dict[int, str]) -> list[int]:
    """Code cells that define `name` (``def name(``, ``class name``, ``name = …``), by their text
    (a cell with a syntax error is found too)."""
    pattern = re.compile(rf"^\s*(?:async\s+def|def|class)\s+{re.escape(name)}\b|^{re.escape(name)}\s*(?::[^=\n]*)?=(?!=)",
                         re.MULTILINE)
    return [n for n, src in sources.items() if pattern.search(src)]


def missing_cause(name: str, report: "RunReport", sources: dict[int, str], session: "Session") -> str:
    """Why the notebook has no function `name` at the end: the error of the cell that defines it,
    a cell never reached, or no cell defining it (with a near name: renamed?)."""
    defining = _defining_cells(name, sources)
    errors = {e["index"]: e for e in report.cell_errors}
    for number in reversed(defining):
        if number in errors:
            err = errors[number]
            text = f": {err['message']}" if err["message"] else ""
            if err["type"] == protocol.CELL_TIMEOUT:
                return f"the cell that defines it, {_cell_label(number, sources)}, was stopped by the time limit"
            return f"the cell that defines it, {_cell_label(number, sources)}, raised {err['type']}{text}"
    if defining:
        number = defining[-1]
        stopped = [e["index"] for e in report.cell_errors if e["type"] == protocol.CELL_TIMEOUT]
        reached = (number < min(stopped)) if stopped else (
            report.cells_done or (report.last_cell is not None and report.last_cell > number))
        if not reached:
            return f"the cell that defines it, {_cell_label(number, sources)}, was never run ({session.first or 'the run stopped'})"
        return (f"{_cell_label(number, sources)} defines it, but it was gone at the end (deleted, or "
                f"redefined under another name?)")
    import difflib

    defined = sorted({m for src in sources.values()
                      for m in re.findall(r"^\s*def\s+([A-Za-z_]\w*)", src, re.MULTILINE)})
    close = difflib.get_close_matches(name, defined, n=1, cutoff=0.6)
    if close:
        number = _defining_cells(close[0], sources)[0]
        return f"no cell defines it; {_cell_label(number, sources)} defines `{close[0]}` — renamed?"
    return "no cell defines it"


def _exit_description(run: Completed) -> str:
    code = run.returncode
    if code is None:
        return "it did not exit"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " — out of memory?" if -code in (signal.SIGKILL, signal.SIGSEGV, signal.SIGABRT) else ""
        return f"killed by {name}{hint}"
    return f"exit code {code}"


@dataclass
class Session:
    """What went wrong in the run as a whole."""

    statuses: set[str] = field(default_factory=lambda: {"ok"})
    notes: list[str] = field(default_factory=list)
    forbidden: list[str] = field(default_factory=list)  # notes naming a forbidden import in a cell
    timed_out: bool = False

    @property
    def first(self) -> str:
        return self.notes[0] if self.notes else ""


def _cell_note(err: dict, label: str, settings: Settings, session: Session) -> None:
    kind, message = err["type"], err["message"]
    if kind == protocol.CELL_TIMEOUT:
        session.timed_out = True
        session.statuses.add("timeout")
        session.notes.append(f"stopped: the cells did not finish within {settings.timeout:g} s — {label} was "
                             f"still running (infinite loop?)")
    elif forbidden_module(kind, message):
        session.statuses.add("forbidden_import")
        note = f"{label}: {message}" if kind == "ForbiddenImport" else (
            f"{label}: {forbidden_module(kind, message)} is not available in graded work ({kind}: {message})")
        session.forbidden.append(note)
        session.notes.append(note)
    elif is_memory_error(kind, message):
        session.statuses.add("memory")
        session.notes.append(f"{label} exceeded the memory limit ({settings.memory_mb} MB): {kind}")
    elif kind == "SystemExit":
        session.statuses.add("cell_errors")
        session.notes.append(f"{label} called {message} (ignored; grading went on)")
    else:
        session.statuses.add("cell_errors")
        if kind == "BlockingIOError" and "temporarily unavailable" in message:
            message += " (the process limit of the sandbox)"
        session.notes.append(f"{label} raised {kind}: {message}" if message else f"{label} raised {kind}")


def session_notes(report: RunReport, run: Completed, sources: dict[int, str], settings: Settings) -> Session:
    """The run's statuses and notes (cell errors, forbidden imports, time, crashes)."""
    session = Session()
    for err in report.cell_errors:
        _cell_note(err, _cell_label(err["index"], sources), settings, session)
    where = _cell_label(report.last_cell, sources) if report.last_cell is not None and not report.cells_done else None
    if report.done:
        return session
    if run.killed_for_time:
        session.statuses.add("timeout")
        session.notes.append("killed after the time limit" + (f" while running {where}" if where else " while answering"))
    elif report.problem:
        session.statuses.add("crashed")
        session.notes.append(report.problem)
    elif not report.started:
        session.statuses.add("crashed")
        session.notes.append(f"the grading process failed to start ({_exit_description(run)})")
    else:
        session.statuses.add("crashed")
        session.notes.append(f"the notebook's process died ({_exit_description(run)})"
                             + (f" while running {where}" if where else " while answering the questions"))
    return session


def _unanswered(q: Question, report: RunReport, run: Completed, session: Session) -> tuple[str, str]:
    if session.timed_out or run.killed_for_time:
        return "timeout", f"not graded: {session.first}"
    if not report.done:
        return "crashed", f"not graded: {session.notes[-1] if session.notes else 'no answer'}"
    return "error", "no answer received"


def _answered(q: Question, event: dict, plan: GradingPlan, session: Session, result: QuestionResult,
              report: RunReport, sources: dict[int, str]) -> tuple[str, str]:
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


def question_row(sub: Submission, q: Question, plan: GradingPlan, report: RunReport, run: Completed,
                 session: Session, sandbox: str, partial: bool = False) -> Row:
    """Judge one question: its CSV row (see :func:`question_result`)."""
    r = question_result(q, plan, report, run, session, partial=partial)
    return Row(sub.name, q.id, r.points, r.max_points, r.status, r.reason, sub.sha256, sandbox, hint=r.hint)


def _unrunnable(sub: Submission, plan: Optional[GradingPlan]) -> SubmissionReport:
    questions = plan.questions if plan is not None else []
    return SubmissionReport(sub.name, sub.student, sub.sha256, sub.chapter, sub.status, [sub.problem], [],
                            [QuestionResult(q.id, q.title, q.answer, sub.status, sub.problem, 0, q.points)
                             for q in questions])


def rows_of(report: SubmissionReport, sandbox: str) -> list[Row]:
    """A submission's CSV rows: one per question, then its TOTAL row (at most 3 notes)."""
    rows = [Row(report.submission, q.id, q.points, q.max_points, q.status, q.reason, report.sha256, sandbox,
                hint=q.hint) for q in report.questions]
    notes = report.notes
    shown = notes[:3] + ([f"+{len(notes) - 3} more"] if len(notes) > 3 else [])
    seconds = f"{report.seconds:.1f}" if report.seconds else ""
    return rows + [Row(report.submission, TOTAL, report.points, report.max_points, report.status, "; ".join(shown),
                       report.sha256, sandbox, seconds)]


def grade_submission(path: Path | Submission, plans: dict[str, GradingPlan], settings: Settings,
                     chapter: Optional[str] = None, seed: int = 0, slot: int = 0) -> list[Row]:
    """Grade one submission: its question rows plus a TOTAL row."""
    sandbox = settings.sandbox.label if settings.sandbox is not None else "NONE (--no-sandbox)"
    return rows_of(report_submission(path, plans, settings, chapter, seed, slot), sandbox)


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
        return _unrunnable(sub, plan if sub.problem and plan and plan.questions else None)
    assert plan is not None and sub.nb is not None
    cells = cells_to_run(sub.nb)
    sources = code_cells(sub.nb)
    run = run_submission(cells, plan, settings, slot)
    report = collect(run)
    session = session_notes(report, run, sources, settings)
    results = [question_result(q, plan, report, run, session, sources, settings.partial) for q in plan.questions]
    inside = [r for r in results if r.status == "forbidden_import" and not session.forbidden]
    if inside:  # imported inside a function: the run as a whole is flagged too
        session.statuses.add("forbidden_import")
        session.notes.insert(0, f"{inside[0].id}: {inside[0].reason}")
    try:
        if hashlib.sha256(sub.path.read_bytes()).hexdigest() != sub.sha256:
            session.notes.append("WARNING: the submission file changed on disk during grading (graded the original bytes)")
    except OSError:
        pass
    status = next(s for s in _TOTAL_PRIORITY if s in session.statuses)
    return SubmissionReport(sub.name, sub.student, sub.sha256, sub.chapter, status, list(session.notes),
                            ignored_parts(sub.nb), results, seconds=run.seconds)


# --------------------------------------------------------------------------- the CSV

def _csv_text(rows: list[Row], header: bool = False) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if header:
        writer.writerow(COLUMNS)
    writer.writerows(r.as_csv() for r in rows)
    return buffer.getvalue()


def write_csv(rows: list[Row], out: Path) -> None:
    """Write `rows` to `out` atomically: a temporary file in the same folder, then os.replace."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(COLUMNS)
            writer.writerows(r.as_csv() for r in rows)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def read_csv(out: Path) -> list[Row]:
    """The complete submissions of an existing grades CSV (a submission whose TOTAL row is missing
    — interrupted mid-write — is dropped); raises ValueError for a CSV of another layout."""
    with Path(out).open(newline="", encoding="utf-8", errors="replace") as f:
        lines = list(csv.reader(f))
    if not lines:
        return []
    if lines[0] != COLUMNS:
        raise ValueError(f"{out} does not have the grader's columns ({', '.join(COLUMNS)}); cannot resume from it")
    rows = []
    for line in lines[1:]:
        if len(line) != len(COLUMNS):
            continue
        try:
            rows.append(Row(line[0], line[1], float(line[2]), float(line[3]), *line[4:]))
        except ValueError:
            continue
    complete = {(r.submission, r.sha256) for r in rows if r.question == TOTAL}
    return [r for r in rows if (r.submission, r.sha256) in complete]


class CsvLog:
    """``grades.csv`` written as grading goes: header (+ the kept rows of a resumed run) first,
    then one appended write per submission, fsync'ed."""

    def __init__(self, out: Path, resume: bool = False) -> None:
        self.out = Path(out)
        self.previous = read_csv(self.out) if resume and self.out.exists() else []
        write_csv(self.previous, self.out)
        self._fd = os.open(self.out, os.O_WRONLY | os.O_APPEND)
        self._lock = threading.Lock()

    def graded(self) -> set[tuple[str, str]]:
        return {(r.submission, r.sha256) for r in self.previous if r.question == TOTAL}

    def append(self, rows: list[Row]) -> None:
        data = _csv_text(rows).encode("utf-8")
        with self._lock:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view):]
            os.fsync(self._fd)

    def finish(self, rows: list[Row]) -> None:
        """Rewrite the file atomically: kept rows of earlier runs, then `rows` (input order)."""
        os.close(self._fd)
        regraded = {r.submission for r in rows}
        write_csv([r for r in self.previous if r.submission not in regraded] + rows, self.out)

    def close(self) -> None:
        try:
            os.close(self._fd)
        except OSError:
            pass


# --------------------------------------------------------------------------- the batch

def grade(paths: list[Path], *, jobs: int = 1, timeout: float = 60.0, memory_mb: int = 2048,
          seed: Optional[int] = None, chapter: Optional[str] = None, question_timeout: Optional[float] = None,
          progress: bool = True, sandbox: bool = True, out: Optional[Path] = None,
          resume: bool = False, partial: bool = False,
          questions: Optional[Sequence[str]] = None) -> tuple[list[Row], int]:
    """Grade `paths`; returns (CSV rows in input order, seed used). See :func:`grade_class`."""
    batch = grade_class(paths, jobs=jobs, timeout=timeout, memory_mb=memory_mb, seed=seed, chapter=chapter,
                        question_timeout=question_timeout, progress=progress, sandbox=sandbox, out=out,
                        resume=resume, partial=partial, questions=questions)
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

    if seed is None:
        seed = random.SystemRandom().randrange(2**32)
    if chapter is not None:
        chapter = f"{int(chapter):02d}"
    if questions is not None:
        known = {q.id for q in all_questions()}
        unknown = [qid for qid in questions if qid not in known]
        if unknown:
            raise ValueError(f"unknown question id(s): {', '.join(unknown)} (ids look like 05.rnn_shapes: "
                             f"the names in each exercise notebook's check cells)")
    python = _kernel_python()
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
        label = box.label
        log = CsvLog(out, resume) if out is not None else None
        subs = [read_submission(Path(p), chapter) for p in paths]
        for sub in subs:
            sub.student = student_id(sub.path, roster, id_pattern)
        kept: dict[tuple[str, str], SubmissionReport] = {}
        if log is not None and resume:
            kept = {(r.submission, r.sha256): r for r in reports_from_rows(log.previous)}
            todo = [s for s in subs if (s.name, s.sha256) not in kept]
            if len(todo) < len(subs):
                print(f"--resume: {len(subs) - len(todo)} submission(s) already graded in {out}, skipped",
                      file=sys.stderr)
        else:
            todo = subs
        plans: dict[str, GradingPlan] = {}
        for sub in subs:  # in this thread, up front (torch imports, reference answers)
            if sub.chapter is not None and sub.chapter not in plans:
                plans[sub.chapter] = GradingPlan.build(sub.chapter, seed, questions)
        results = _grade_all(todo, plans, settings, seed, jobs, progress, log)
        fresh = {(s.name, s.sha256): results[i] for i, s in enumerate(todo)}
        reports = []
        for sub in subs:
            rep = fresh.get((sub.name, sub.sha256)) or kept[(sub.name, sub.sha256)]
            rep.student, rep.name = sub.student, (roster or {}).get(sub.student, "")
            reports.append(rep)
        if log is not None:
            log.finish([row for i in range(len(todo)) for row in rows_of(results[i], label)])
            log = None
        return ClassReport(reports, seed, partial, label,
                           questions={q.id: q for plan in plans.values() for q in plan.questions},
                           cases={qid: c for plan in plans.values() for qid, c in plan.cases.items()},
                           references={qid: r.normalised for plan in plans.values() for qid, r in plan.references.items()},
                           roster=dict(roster or {}))
    finally:
        if log is not None:
            log.close()
        view.cleanup()


def reports_from_rows(rows: list[Row]) -> list[SubmissionReport]:
    """Reports rebuilt from a grades CSV (``--resume``): statuses, reasons and points, no values."""
    by_sub: dict[tuple[str, str], SubmissionReport] = {}
    for r in rows:
        key = (r.submission, r.sha256)
        rep = by_sub.setdefault(key, SubmissionReport(r.submission, "", r.sha256, None, "ok"))
        if r.question == TOTAL:
            rep.status, rep.notes = r.status, [n for n in r.reason.split("; ") if n]
            rep.seconds = float(r.seconds) if r.seconds.replace(".", "", 1).isdigit() else 0.0
        else:
            rep.chapter = r.question[:2]
            rep.questions.append(QuestionResult(r.question, r.question, "", r.status, r.reason, r.points,
                                                r.max_points, hint=r.hint))
    return list(by_sub.values())


def _grade_all(subs: list[Submission], plans: dict[str, GradingPlan], settings: Settings, seed: int, jobs: int,
               progress: bool, log: Optional[CsvLog]) -> dict[int, SubmissionReport]:
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


def write_run_info(batch: ClassReport, out: Path, argv: list[str]) -> Path:
    """``<out stem>_run.json`` beside the CSV: the seed (``--seed`` re-draws the same inputs),
    partial credit, the sandbox and the command line."""
    path = Path(out).with_name(Path(out).stem + "_run.json")
    path.write_text(json.dumps({"seed": batch.seed, "partial": batch.partial, "sandbox": batch.sandbox,
                                "chapters": sorted({q[:2] for q in batch.questions}),
                                "submissions": len(batch.reports),
                                "graded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                "argv": argv}, indent=1) + "\n", encoding="utf-8")
    return path


def summary(rows: list[Row] | ClassReport, seconds: float, seed: int, jobs: int, out: Path, sandboxed: bool = True) -> str:
    """The text printed at the end: counts, the seed, and every submission that needs a look
    (a non-ok run or any wrong answer)."""
    batch = rows if isinstance(rows, ClassReport) else ClassReport(reports_from_rows(rows), seed)
    totals = batch.reports
    full = sum(1 for r in totals if r.max_points and r.points == r.max_points)
    lines = [f"Graded {len(totals)} submission(s) in {seconds:.1f} s with {jobs} job(s) (seed {seed}) → {out}"]
    lines.append("  sandbox: bubblewrap (no network, own PID namespace, read-only environment, no answers)"
                 if sandboxed else "  WARNING: graded WITHOUT a sandbox (--no-sandbox): the students' code ran "
                                   "with your rights and could read the solutions")
    if totals:
        scored = [r.points / r.max_points for r in totals if r.max_points]
        mean = 100 * sum(scored) / len(scored) if scored else 0.0
        lines.append(f"  full marks: {full}/{len(totals)} · mean score {mean:.0f}% of the maximum"
                     + (" (partial credit)" if batch.partial else ""))
    problems = [(r, r.look_reasons()) for r in totals if r.look_reasons()]
    if problems:
        lines.append(f"  {len(problems)} submission(s) need a look:")
        for r, reasons in problems:
            lines.append(f"  - {r.submission}: {_num(r.points)}/{_num(r.max_points)} [{r.status}] "
                         f"{'; '.join(reasons)[:160]}")
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.grade",
                                     description="Grade exercise notebooks (untrusted) into a CSV, per-student "
                                                 "feedback, a class overview and a gradebook.")
    parser.add_argument("submissions", nargs="+", type=Path, help="submitted .ipynb files")
    parser.add_argument("--out", type=Path, default=Path("grades.csv"), help="CSV to write (default grades.csv)")
    parser.add_argument("--jobs", "-j", type=int, default=1, help="submissions graded in parallel")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds for running one notebook's cells (default 60)")
    parser.add_argument("--question-timeout", type=float, default=None,
                        help="cap on each question's own time limit (default: the question's, 10 s)")
    parser.add_argument("--memory-mb", type=int, default=2048, help="memory limit per submission (default 2048)")
    parser.add_argument("--chapter", help="grade every submission as this chapter (default: from the notebook)")
    parser.add_argument("--seed", type=int, help="random inputs' seed (default: fresh each run; saved in <out>_run.json)")
    parser.add_argument("--questions", type=lambda text: [q.strip() for q in text.split(",") if q.strip()],
                        help="grade only these question ids, comma-separated (e.g. the ones you assigned); "
                             "default: every question of the chapter")
    parser.add_argument("--partial", action="store_true",
                        help="partial credit: a question's points proportional to the cases passed "
                             "(default: all or nothing)")
    parser.add_argument("--roster", type=Path, help="CSV of students (id column, optional name): ids matched in file names")
    parser.add_argument("--id-pattern", help="regex on the file name giving the student id (group 'id' or 1)")
    parser.add_argument("--no-reports", action="store_true",
                        help="only the CSV (no feedback/, overview or gradebook)")
    parser.add_argument("--resume", action="store_true",
                        help="keep --out's rows and skip submissions (same path and SHA-256) it already grades")
    parser.add_argument("--no-sandbox", action="store_true",
                        help="grade without bubblewrap (NOT isolated: only for code you trust)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
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
    except SandboxUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, OSError) as exc:  # e.g. --resume from a CSV of another layout, an unreadable roster
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
