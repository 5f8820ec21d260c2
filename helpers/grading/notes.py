"""What went wrong in a run as a whole (:func:`session_notes`: cell errors, timeouts, forbidden
imports, crashes) and why a function is missing at the end (:func:`missing_cause`).

Cells are named as the student counts them — ``code cell 7 (`def conv_params(…`)``: code cells
only, from 1, quoted by their first line. A missing function's reason names the cell that defines
it and that cell's own error, a cell never reached, or "no cell defines it; … defines
`conv_param` — renamed?".
"""

from __future__ import annotations

import difflib
import re
import signal
from dataclasses import dataclass, field

from helpers.checks import protocol
from helpers.checks.graded import forbidden_module
from helpers.checks.verdict import is_memory_error
from helpers.grading.collect import RunReport
from helpers.grading.plan import Settings
from helpers.grading.sandbox import Completed

__all__ = ["Session", "session_notes", "missing_cause", "cell_label"]


def cell_label(number: int, sources: dict[int, str]) -> str:
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


def missing_cause(name: str, report: RunReport, sources: dict[int, str], session: Session) -> str:
    """Why the notebook has no function `name` at the end: the error of the cell that defines it,
    a cell never reached, or no cell defining it (with a near name: renamed?)."""
    defining = _defining_cells(name, sources)
    errors = {e["index"]: e for e in report.cell_errors}
    for number in reversed(defining):
        if number in errors:
            err = errors[number]
            text = f": {err['message']}" if err["message"] else ""
            if err["type"] == protocol.CELL_TIMEOUT:
                return f"the cell that defines it, {cell_label(number, sources)}, was stopped by the time limit"
            return f"the cell that defines it, {cell_label(number, sources)}, raised {err['type']}{text}"
    if defining:
        number = defining[-1]
        stopped = [e["index"] for e in report.cell_errors if e["type"] == protocol.CELL_TIMEOUT]
        reached = (number < min(stopped)) if stopped else (
            report.cells_done or (report.last_cell is not None and report.last_cell > number))
        if not reached:
            return f"the cell that defines it, {cell_label(number, sources)}, was never run ({session.first or 'the run stopped'})"
        return (f"{cell_label(number, sources)} defines it, but it was gone at the end (deleted, or "
                f"redefined under another name?)")
    defined = sorted({m for src in sources.values()
                      for m in re.findall(r"^\s*def\s+([A-Za-z_]\w*)", src, re.MULTILINE)})
    close = difflib.get_close_matches(name, defined, n=1, cutoff=0.6)
    if close:
        number = _defining_cells(close[0], sources)[0]
        return f"no cell defines it; {cell_label(number, sources)} defines `{close[0]}` — renamed?"
    return "no cell defines it"


def _exit_description(run: Completed) -> str:
    """How the process ended: ``exit code 1``, ``killed by SIGKILL — out of memory?``, ``it did not exit``."""
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
    """Add one cell error to `session`: its status and a note naming the cell."""
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
        _cell_note(err, cell_label(err["index"], sources), settings, session)
    where = cell_label(report.last_cell, sources) if report.last_cell is not None and not report.cells_done else None
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
