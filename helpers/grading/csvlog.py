"""``grades.csv``: one row per submission × question and a ``TOTAL`` row per submission.

Columns (:data:`COLUMNS`): ``submission, question, points, max_points, status, reason, sha256,
sandbox, seconds, hint``. :class:`CsvLog` appends each submission's rows (one write, fsync) as soon
as it is graded, so Ctrl-C or a crash keeps everything graded so far; at the end the file is
rewritten atomically (:func:`write_csv`: a temporary file, then ``os.replace``) in input order.
``--resume`` reads the complete submissions back (:func:`read_csv`, :func:`reports_from_rows`).
TOTAL statuses: ok, cell_errors (some cells raised; grading went on), forbidden_import, memory,
timeout, crashed, invalid_notebook, wrong_notebook. Standard library only.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from helpers.grading.report import QuestionResult, SubmissionReport, points_text

__all__ = ["COLUMNS", "TOTAL", "Row", "rows_of", "reports_from_rows", "write_csv", "read_csv", "CsvLog"]

COLUMNS = ["submission", "question", "points", "max_points", "status", "reason", "sha256", "sandbox", "seconds",
           "hint"]
TOTAL = "TOTAL"


@dataclass
class Row:
    """One row of ``grades.csv`` (a question of a submission, or its TOTAL)."""

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
        return [self.submission, self.question, points_text(self.points), points_text(self.max_points), self.status,
                " ".join(self.reason.split()), self.sha256, self.sandbox, self.seconds, " ".join(self.hint.split())]



def rows_of(report: SubmissionReport, sandbox: str) -> list[Row]:
    """A submission's CSV rows: one per question, then its TOTAL row (at most 3 notes)."""
    rows = [Row(report.submission, q.id, q.points, q.max_points, q.status, q.reason, report.sha256, sandbox,
                hint=q.hint) for q in report.questions]
    notes = report.notes
    shown = notes[:3] + ([f"+{len(notes) - 3} more"] if len(notes) > 3 else [])
    seconds = f"{report.seconds:.1f}" if report.seconds else ""
    return rows + [Row(report.submission, TOTAL, report.points, report.max_points, report.status, "; ".join(shown),
                       report.sha256, sandbox, seconds)]


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
