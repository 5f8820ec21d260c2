"""What came back from one run, sorted into a typed :class:`RunReport` — defensively.

The student's process may send anything: malformed, oversized or missing results become a
``problem`` (the run is then judged ``crashed`` with that reason), never an exception here. Every
event field is checked for its type; an event of the wrong shape is ignored and counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from helpers.checks import protocol
from helpers.grading.sandbox import Completed

__all__ = ["RunReport", "collect"]


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
