"""Batch grader: ``python -m helpers.grade SUBMISSIONS… --out grades.csv [--jobs N] [--timeout S]``.

Submissions are untrusted notebooks. For each one the grader

1. reads the file once (never writes it; a malformed or truncated .ipynb becomes a row with
   status ``invalid_notebook`` and the reason, and grading goes on);
2. starts a fresh process (``python -m helpers._grade_runner`` with the ``dims-params`` kernel's
   interpreter) in an empty temporary directory, with a memory limit (``RLIMIT_AS``, default
   2048 MB), its own process group and a wall-clock limit; it executes the notebook's code cells in
   an IPython shell EXCEPT the check cells (tagged ``check``, or cells whose code only calls
   ``check(…)``; other ``check(…)`` lines are dropped), with output going nowhere;
3. asks that process to call each of the chapter's functions on inputs drawn at random for THIS run
   (a fresh seed, not the checker's), and receives only their return values as JSON;
4. computes every verdict HERE, with the registry's reference answers (helpers' core in the
   grader's own process). Printing "✅", editing check cells or monkeypatching ``helpers`` inside
   the notebook cannot raise a score: nothing computed in the student's process is trusted except
   the values their functions returned for inputs they could not know in advance.

``grades.csv`` has one row per submission × question and a ``TOTAL`` row per submission, with the
columns ``submission, question, points, max_points, status, reason``; it is written atomically
(temporary file + ``os.replace``). A question scores its points only if every case is correct, so
re-running gives the same scores (a correct function is always correct; a wrong one fails on
fresh inputs with overwhelming probability).

Question statuses: correct, wrong, wrong_type, error (raised), not_attempted, timeout, memory,
missing (no such function), crashed (the process died), invalid_notebook.
TOTAL statuses: ok, cell_errors (some cells raised; grading went on), memory, timeout, crashed,
invalid_notebook.

Limits, honestly: this isolates faults (loops, crashes, memory, exits) and makes verdicts
tamper-proof, but it is not a security sandbox: student code runs with the grader's user rights
(files, network). Grade as an unprivileged user, ideally in a container. Running as root also
lets code raise its own RLIMIT_AS.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from helpers.checks.registry import Question, make_cases, questions_for_chapter
from helpers.checks.verdict import is_memory_error, judge, normalise
from helpers.notebooks import KERNEL_NAME

__all__ = ["Row", "GradingPlan", "grade", "grade_submission", "write_csv", "main", "COLUMNS"]

COLUMNS = ["submission", "question", "points", "max_points", "status", "reason"]
ROOT = Path(__file__).resolve().parent.parent
TOTAL = "TOTAL"
_CHECK_CALL = re.compile(r"(?<![\w.])check\s*\(")
_CHAPTER_IN_NAME = re.compile(r"(?:^|[^0-9])(\d\d)_")
_CHECK_ID = re.compile(r"""check\(\s*["'](\d\d)\.""")
_TOTAL_PRIORITY = ["invalid_notebook", "crashed", "timeout", "memory", "cell_errors", "ok"]


@dataclass
class Row:
    submission: str
    question: str
    points: float
    max_points: float
    status: str
    reason: str = ""

    def as_csv(self) -> list[str]:
        return [self.submission, self.question, _num(self.points), _num(self.max_points), self.status,
                " ".join(self.reason.split())]


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


@dataclass
class GradingPlan:
    """One chapter's questions with this run's random cases and the reference answers."""

    chapter: str
    questions: list[Question]
    cases: dict[str, list]
    expected: dict[str, list]
    expected_raw: dict[str, list] = field(default_factory=dict)

    @classmethod
    def build(cls, chapter: str, seed: int) -> "GradingPlan":
        questions = questions_for_chapter(chapter)
        cases, expected, raw = {}, {}, {}
        for q in questions:
            cs = make_cases(q, random.Random(f"grade:{seed}:{q.id}"))
            # JSON round trip: exactly what the student's process will receive
            cases[q.id] = [(tuple(a), dict(k)) for a, k in json.loads(json.dumps(cs))]
            try:
                raw[q.id] = [q.reference(*a, **k) for a, k in cases[q.id]]
                expected[q.id] = [normalise(v) for v in raw[q.id]]
            except Exception as exc:
                raise RuntimeError(f"the reference of question {q.id} failed on this run's inputs "
                                   f"({type(exc).__name__}: {exc}); fix {q.module}") from exc
        return cls(chapter, questions, cases, expected, raw)

    @property
    def max_points(self) -> float:
        return sum(q.points for q in self.questions)


@dataclass
class Settings:
    timeout: float = 60.0           # seconds for the notebook's cells
    question_timeout: Optional[float] = None  # cap on each question's own limit
    memory_mb: int = 2048
    python: str = sys.executable
    startup_slack: float = 15.0     # extra seconds before the hard kill (process start-up)


# --------------------------------------------------------------------------- reading a submission

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


def cells_to_run(nb: dict) -> list[tuple[int, str]]:
    """(1-based cell number, source) of the code cells the grader executes.

    Check cells are skipped: tagged ``check``, or containing nothing but ``check(…)`` calls (and
    comments/imports of check). In other cells, top-level lines calling ``check(`` are dropped.
    """
    out = []
    for number, cell in enumerate(nb["cells"], start=1):
        if cell.get("cell_type") != "code" or _is_check_cell(cell):
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


def infer_chapter(path: Path, nb: Optional[dict]) -> Optional[str]:
    """Chapter of a submission: ``NN_`` in the file name, else the ids its check cells use."""
    match = _CHAPTER_IN_NAME.search(path.name)
    if match:
        return match.group(1)
    if nb is not None:
        ids = [m for c in nb.get("cells", []) if isinstance(c, dict) and isinstance(c.get("source"), str)
               for m in _CHECK_ID.findall(c["source"])]
        if ids:
            return max(set(ids), key=ids.count)
    return None


# --------------------------------------------------------------------------- running it

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


@dataclass
class RunResult:
    events: list[dict] = field(default_factory=list)
    returncode: Optional[int] = None
    killed_for_time: bool = False
    seconds: float = 0.0


def _run(cells: list[tuple[int, str]], plan: GradingPlan, settings: Settings) -> RunResult:
    questions = []
    for q in plan.questions:
        limit = q.timeout if settings.question_timeout is None else min(q.timeout, settings.question_timeout)
        questions.append({"id": q.id, "answer": q.answer, "cases": plan.cases[q.id], "timeout": limit})
    job = json.dumps({"cells": cells, "cell_budget": settings.timeout, "questions": questions}).encode()
    hard_limit = settings.timeout + sum(q["timeout"] for q in questions) + settings.startup_slack
    result = RunResult()
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="grade-") as tmp:
        env = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
                   OPENBLAS_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1", PYTHONNOUSERSITE="1",
                   IPYTHONDIR=os.path.join(tmp, ".ipython"), TMPDIR=tmp,
                   PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
        proc = subprocess.Popen([settings.python, "-m", "helpers._grade_runner", str(settings.memory_mb)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                cwd=tmp, env=env, start_new_session=True)
        try:
            out, _ = proc.communicate(job, timeout=hard_limit)
        except subprocess.TimeoutExpired:
            result.killed_for_time = True
            _kill_group(proc.pid)
            out, _ = proc.communicate()
        finally:
            _kill_group(proc.pid)  # anything the student's code left running
        result.returncode = proc.returncode
    result.seconds = time.monotonic() - start
    for line in out.decode("utf-8", "replace").splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict) and isinstance(event.get("event"), str):
            result.events.append(event)
    return result


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# --------------------------------------------------------------------------- verdicts

def _cell_label(number: int, sources: dict[int, str]) -> str:
    first = next((l.strip() for l in sources.get(number, "").split("\n") if l.strip()), "")
    if len(first) > 40:
        first = first[:39] + "…"
    return f"cell {number} (`{first}`)" if first else f"cell {number}"


def _exit_description(run: RunResult) -> str:
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


def grade_submission(path: Path, plans: dict[str, GradingPlan], settings: Settings,
                     chapter: Optional[str] = None, seed: int = 0) -> list[Row]:
    """Grade one submission: its question rows plus a TOTAL row."""
    name = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        return [Row(name, TOTAL, 0, 0, "invalid_notebook", f"cannot read the file: {exc.strerror or exc}")]
    digest = hashlib.sha256(data).hexdigest()
    nb: Optional[dict] = None
    invalid = ""
    try:
        nb = _parse_notebook(data)
    except InvalidNotebook as exc:
        invalid = str(exc)
    chapter = chapter or infer_chapter(path, nb)
    if chapter is None:
        return [Row(name, TOTAL, 0, 0, "invalid_notebook",
                    invalid or "cannot tell which chapter this is (name the file NN_… or pass --chapter NN)")]
    if chapter not in plans:
        plans[chapter] = GradingPlan.build(chapter, seed)
    plan = plans[chapter]
    if not plan.questions:
        return [Row(name, TOTAL, 0, 0, "invalid_notebook", f"chapter {chapter} has no exercise questions")]
    if invalid:
        rows = [Row(name, q.id, 0, q.points, "invalid_notebook", invalid) for q in plan.questions]
        return rows + [Row(name, TOTAL, 0, plan.max_points, "invalid_notebook", invalid)]

    assert nb is not None
    cells = cells_to_run(nb)
    sources = dict(cells)
    run = _run(cells, plan, settings)

    last_cell: Optional[int] = None
    cell_errors: list[dict] = []
    answers: dict[str, dict] = {}
    cells_done = done = started = False
    for event in run.events:
        kind = event["event"]
        if kind == "start":
            started = True
        elif kind == "cell":
            last_cell = event.get("index")
        elif kind == "cell_error":
            cell_errors.append(event)
        elif kind == "cells_done":
            cells_done = True
        elif kind == "answer" and isinstance(event.get("id"), str):
            answers[event["id"]] = event
        elif kind == "done":
            done = True

    notes: list[str] = []
    statuses = {"ok"}
    cell_timed_out = False
    for err in cell_errors:
        label = _cell_label(err.get("index", 0), sources)
        kind, message = str(err.get("type", "?")), str(err.get("message", ""))
        if kind == "Timeout":
            cell_timed_out = True
            statuses.add("timeout")
            notes.append(f"stopped: the cells did not finish within {settings.timeout:g} s — {label} was still "
                         f"running (infinite loop?)")
        elif is_memory_error(kind, message):
            statuses.add("memory")
            notes.append(f"{label} exceeded the memory limit ({settings.memory_mb} MB): {kind}")
        elif kind == "SystemExit":
            statuses.add("cell_errors")
            notes.append(f"{label} called {message} (ignored; grading went on)")
        else:
            statuses.add("cell_errors")
            notes.append(f"{label} raised {kind}: {message}" if message else f"{label} raised {kind}")
    where = _cell_label(last_cell, sources) if last_cell is not None and not cells_done else None
    if not done:
        if run.killed_for_time:
            statuses.add("timeout")
            notes.append(f"killed after the time limit" + (f" while running {where}" if where else " while answering"))
        elif not started:
            statuses.add("crashed")
            notes.append(f"the grading process failed to start ({_exit_description(run)})")
        else:
            statuses.add("crashed")
            notes.append(f"the notebook's process died ({_exit_description(run)})"
                         + (f" while running {where}" if where else " while answering the questions"))
    first_error = next((n for n in notes), "")

    rows: list[Row] = []
    for q in plan.questions:
        event = answers.get(q.id)
        if event is None:
            if cell_timed_out or run.killed_for_time:
                status, reason = "timeout", f"not graded: {first_error}"
            elif not done:
                status, reason = "crashed", f"not graded: {notes[-1] if notes else 'no answer'}"
            else:
                status, reason = "error", "no answer received"
            rows.append(Row(name, q.id, 0, q.points, status, reason))
            continue
        if event.get("missing"):
            reason = f"the notebook does not define a function named `{q.answer}`"
            if first_error:
                reason += f" (maybe because {first_error})"
            rows.append(Row(name, q.id, 0, q.points, "missing", reason))
            continue
        if "not_callable" in event:
            rows.append(Row(name, q.id, 0, q.points, "wrong_type",
                            f"`{q.answer}` is a {event['not_callable']}, not a function"))
            continue
        outcomes = event.get("outcomes")
        if not isinstance(outcomes, list) or not all(isinstance(o, dict) for o in outcomes):
            rows.append(Row(name, q.id, 0, q.points, "crashed", "the notebook's process sent a malformed answer"))
            continue
        verdict = judge(q, plan.cases[q.id], outcomes, expected=plan.expected[q.id],
                        expected_raw=plan.expected_raw.get(q.id))
        reason = "" if verdict.passed else verdict.message
        rows.append(Row(name, q.id, q.points if verdict.passed else 0, q.points, verdict.status, reason))

    try:
        if hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            notes.append("WARNING: the submission file changed on disk during grading (graded the original bytes)")
    except OSError:
        pass
    total_status = next(s for s in _TOTAL_PRIORITY if s in statuses)
    shown = notes[:3] + ([f"+{len(notes) - 3} more"] if len(notes) > 3 else [])
    rows.append(Row(name, TOTAL, sum(r.points for r in rows), plan.max_points, total_status, "; ".join(shown)))
    return rows


# --------------------------------------------------------------------------- the batch

def grade(paths: list[Path], *, jobs: int = 1, timeout: float = 60.0, memory_mb: int = 2048,
          seed: Optional[int] = None, chapter: Optional[str] = None, question_timeout: Optional[float] = None,
          progress: bool = True) -> tuple[list[Row], int]:
    """Grade `paths` (in parallel with `jobs` processes); returns (rows in input order, seed used)."""
    if seed is None:
        seed = random.SystemRandom().randrange(2**32)
    if chapter is not None:
        chapter = f"{int(chapter):02d}"
    settings = Settings(timeout=timeout, question_timeout=question_timeout, memory_mb=memory_mb,
                        python=_kernel_python())
    plans: dict[str, GradingPlan] = {}
    # build the plans up front, in this thread (torch imports, reference answers)
    for path in paths:
        ch = chapter or infer_chapter(Path(path), None)
        if ch is not None and ch not in plans:
            plans[ch] = GradingPlan.build(ch, seed)
    results: dict[int, list[Row]] = {}
    from tqdm import tqdm

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool, \
            tqdm(total=len(paths), desc="grading", unit="nb", disable=not progress, file=sys.stderr) as bar:
        futures = {pool.submit(grade_submission, Path(p), plans, settings, chapter, seed): i
                   for i, p in enumerate(paths)}
        for future in as_completed(futures):
            i = futures[future]
            try:
                results[i] = future.result()
            except Exception as exc:  # a grader bug must not lose the other submissions
                results[i] = [Row(str(paths[i]), TOTAL, 0, 0, "crashed", f"grader error: {type(exc).__name__}: {exc}")]
            bar.update(1)
    return [row for i in range(len(paths)) for row in results[i]], seed


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


def summary(rows: list[Row], seconds: float, seed: int, jobs: int, out: Path) -> str:
    totals = [r for r in rows if r.question == TOTAL]
    full = sum(1 for r in totals if r.max_points and r.points == r.max_points)
    lines = [f"Graded {len(totals)} submission(s) in {seconds:.1f} s with {jobs} job(s) (seed {seed}) → {out}"]
    if totals:
        scored = [r.points / r.max_points for r in totals if r.max_points]
        mean = 100 * sum(scored) / len(scored) if scored else 0.0
        lines.append(f"  full marks: {full}/{len(totals)} · mean score {mean:.0f}% of the maximum")
    problems = [r for r in totals if r.status != "ok"]
    if problems:
        lines.append(f"  {len(problems)} submission(s) need a look:")
        for r in problems:
            lines.append(f"  - {r.submission}: {_num(r.points)}/{_num(r.max_points)} [{r.status}] {r.reason[:160]}")
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.grade",
                                     description="Grade exercise notebooks (untrusted) into a CSV.")
    parser.add_argument("submissions", nargs="+", type=Path, help="submitted .ipynb files")
    parser.add_argument("--out", type=Path, default=Path("grades.csv"), help="CSV to write (default grades.csv)")
    parser.add_argument("--jobs", "-j", type=int, default=1, help="submissions graded in parallel")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds for running one notebook's cells (default 60)")
    parser.add_argument("--question-timeout", type=float, default=None,
                        help="cap on each question's own time limit (default: the question's, 10 s)")
    parser.add_argument("--memory-mb", type=int, default=2048, help="memory limit per submission (default 2048)")
    parser.add_argument("--chapter", help="grade every submission as this chapter (default: from the file name)")
    parser.add_argument("--seed", type=int, help="random inputs' seed (default: fresh each run)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    start = time.monotonic()
    rows, seed = grade(args.submissions, jobs=args.jobs, timeout=args.timeout, memory_mb=args.memory_mb,
                       seed=args.seed, chapter=args.chapter, question_timeout=args.question_timeout,
                       progress=not args.quiet)
    write_csv(rows, args.out)
    print(summary(rows, time.monotonic() - start, seed, args.jobs, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
