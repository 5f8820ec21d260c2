"""Who handed in what, and the gradebook: one row per student, importable into an LMS.

* :func:`read_roster` reads a ``--roster`` CSV (a header row; the id column is ``id``,
  ``student_id``, ``username``, ``login`` or ``email``, else the first column; ``name`` if any).
* :func:`student_id` names the student of a submission file: the roster id that appears in the
  file name as a whole token (longest first), else the ``--id-pattern`` regex (its ``id`` group,
  or group 1), else the file name before its chapter (``alice_02_convolution_exercises.ipynb`` →
  ``alice``), else the whole stem.
* :func:`gradebook_rows` / :func:`write_gradebook` write ``gradebook.csv``:
  ``student_id, name, total, max_points, <question id>…, status, submission`` — one row per
  student (their best submission if several; roster students without one get 0 and
  ``no_submission``).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Optional

from helpers.grading.report import ClassReport, SubmissionReport, points_text

__all__ = ["read_roster", "student_id", "gradebook_rows", "write_gradebook", "best_by_student"]

_ID_COLUMNS = ("id", "student_id", "username", "login", "email")


def read_roster(path: Path) -> dict[str, str]:
    """{student id: name} from a CSV with a header row (ValueError if it has no rows or ids)."""
    with Path(path).open(newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"roster {path} has no students (a header row, then one row per student)")
    columns = {c.strip().lower(): c for c in rows[0] if c}
    id_col = next((columns[c] for c in _ID_COLUMNS if c in columns), next(iter(rows[0])))
    name_col = columns.get("name")
    roster = {}
    for row in rows:
        sid = (row.get(id_col) or "").strip()
        if sid:
            roster[sid] = (row.get(name_col) or "").strip() if name_col else ""
    if not roster:
        raise ValueError(f"roster {path}: no student ids in column {id_col!r}")
    return roster


def student_id(path: Path | str, roster: Optional[dict[str, str]] = None, pattern: Optional[str] = None) -> str:
    """The student a submission belongs to (see the module docstring for the order of rules)."""
    stem = Path(path).name.removesuffix(".ipynb")
    if roster:
        found = [sid for sid in roster
                 if re.search(rf"(?<![A-Za-z0-9]){re.escape(sid)}(?![A-Za-z0-9])", stem, re.IGNORECASE)]
        if found:
            return max(found, key=len)
    if pattern:
        match = re.search(pattern, stem)
        if match:
            return (match.groupdict().get("id") or (match.group(1) if match.groups() else match.group(0))).strip()
    before = re.split(r"[_\-. ]*\d\d_", stem, maxsplit=1)[0].strip("_-. ")
    return before or stem


def best_by_student(report: ClassReport) -> dict[str, SubmissionReport]:
    """Each student's best-scoring submission (the first of equals, in input order)."""
    best: dict[str, SubmissionReport] = {}
    for sub in report.reports:
        if sub.student not in best or sub.points > best[sub.student].points:
            best[sub.student] = sub
    return best


def gradebook_rows(report: ClassReport) -> list[list[str]]:
    """Header + one row per student (roster order first, then students not on it)."""
    qids = list(report.questions)
    best = best_by_student(report)
    students = list(report.roster) + sorted(s for s in best if s not in report.roster)
    maximum = sum(q.points for q in report.questions.values())
    rows = [["student_id", "name", "total", "max_points", *qids, "status", "submission"]]
    for sid in students:
        sub = best.get(sid)
        if sub is None:
            rows.append([sid, report.roster.get(sid, ""), "0", points_text(maximum), *["0"] * len(qids), "no_submission", ""])
            continue
        points = {q.id: q.points for q in sub.questions}
        rows.append([sid, report.roster.get(sid, sub.name), points_text(sub.points), points_text(maximum),
                     *[points_text(points.get(q, 0)) for q in qids], sub.status, sub.submission])
    return rows


def write_gradebook(report: ClassReport, out: Path) -> Path:
    out = Path(out)
    with out.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(gradebook_rows(report))
    return out
