"""Gradebook exports an LMS imports as is (``--lms canvas``, ``--lms moodle``): one points column per chapter.

* **Canvas** (``canvas.csv``), the layout Canvas's gradebook importer reads
  (instructure/canvas-lms ``app/models/gradebook_importer.rb``: the header must start with
  ``Student``, ``ID``, then ``SIS User ID``, ``SIS Login ID``, with ``Section`` as the last
  student column; every later column is an assignment — a new title creates the assignment; a row
  whose first cell reads ``Points Possible`` gives the new assignments' points; a student is found
  by the Canvas ``ID``, else by SIS User ID / SIS Login ID, else by name). Written:
  ``Student, ID, SIS User ID, SIS Login ID, Section, <NN_topic>…`` then ``Points Possible`` and one
  row per student: the name (or id), an empty Canvas ID, the student id as both SIS User ID and SIS
  Login ID (so it must be the Canvas login or SIS id of the student: use those as roster ids), an
  empty Section. A chapter the student did not hand in is empty (Canvas leaves the grade as is).
* **Moodle** (``moodle.csv``), for Moodle's "Import grades › CSV file" (docs.moodle.org/311/en/Grade_import:
  a header row, then one row per student; in the preview the instructor maps one column to the user
  identifier — ``username``, ``useridnumber`` or ``useremail`` — and each grade column to a grade
  item, or to a new grade item). Written: ``Identifier, Full name, <NN_topic>…``: map
  ``Identifier`` to whichever of username / ID number / email the roster ids are, ``Full name`` to
  "ignore", each chapter column to its grade item. Empty = not handed in (no grade imported).

Standard library only; reads the typed report only.
"""

from __future__ import annotations

import csv
from pathlib import Path

from helpers.grading.gradebook import best_by_student, students_of
from helpers.grading.report import ClassReport, points_text
from helpers.grading.submission import known_topics

__all__ = ["LMS_FORMATS", "CANVAS_STUDENT_COLUMNS", "canvas_rows", "moodle_rows", "write_lms", "assignment_title"]

CANVAS_STUDENT_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
LMS_FORMATS = ("canvas", "moodle")


def assignment_title(chapter: str) -> str:
    """The LMS assignment (grade item) of a chapter: its notebook topic, ``05_rnn_bptt``."""
    return next((topic for topic, ch in sorted(known_topics().items()) if ch == chapter), f"chapter_{chapter}")


def _points(report: ClassReport) -> list[tuple[str, str, dict[str, str]]]:
    """(student id, name, {chapter: points or ""}) per student, roster order first."""
    best = best_by_student(report)
    out = []
    for sid in students_of(report):
        subs = {ch: best.get((sid, ch)) for ch in report.chapters()}
        name = report.roster.get(sid) or next((s.name for s in subs.values() if s is not None and s.name), "")
        out.append((sid, name, {ch: "" if s is None else points_text(s.points) for ch, s in subs.items()}))
    return out


def canvas_rows(report: ClassReport) -> list[list[str]]:
    """Canvas's gradebook CSV (see the module docstring): header, Points Possible, one row per student."""
    chapters = report.chapters()
    rows = [CANVAS_STUDENT_COLUMNS + [assignment_title(ch) for ch in chapters],
            ["Points Possible", "", "", "", ""] + [points_text(report.chapter_max(ch)) for ch in chapters]]
    for sid, name, points in _points(report):
        rows.append([name or sid, "", sid, sid, ""] + [points[ch] for ch in chapters])
    return rows


def moodle_rows(report: ClassReport) -> list[list[str]]:
    """Moodle's CSV grade import (see the module docstring): header, one row per student."""
    chapters = report.chapters()
    rows = [["Identifier", "Full name"] + [assignment_title(ch) for ch in chapters]]
    for sid, name, points in _points(report):
        rows.append([sid, name] + [points[ch] for ch in chapters])
    return rows


def write_lms(report: ClassReport, kind: str, folder: Path) -> Path:
    """Write ``folder/<kind>.csv`` (``canvas`` or ``moodle``); returns its path."""
    if kind not in LMS_FORMATS:
        raise ValueError(f"unknown LMS format {kind!r} (one of: {', '.join(LMS_FORMATS)})")
    out = Path(folder) / f"{kind}.csv"
    with out.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(canvas_rows(report) if kind == "canvas" else moodle_rows(report))
    return out
