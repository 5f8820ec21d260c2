"""Who handed in what, and the gradebook: one row per student, importable into an LMS.

* :func:`read_roster` reads a ``--roster`` CSV (a header row; the id column is ``id``,
  ``student_id``, ``username``, ``login`` or ``email``, else the first column; ``name`` if any).
* :func:`student_id` names the student of a submission file: the roster id that appears in the
  file name (or in the folder that names the student) as a whole token (longest first), else the
  ``--id-pattern`` regex (its ``id`` group, or group 1), else the folder layout
  (:func:`folder_student`: nbgrader's ``submitted/<student>/<assignment>/<nb>.ipynb``, or
  ``<student>/<nb>.ipynb`` when the file is named just like the notebook), else the file name before
  its chapter (``alice_02_convolution_exercises.ipynb`` → ``alice``), else the whole stem.
  :func:`refuse_duplicates`: two submissions of one chapter mapping to one id is an error (unless
  ``--allow-duplicates``).
* :func:`gradebook_rows` / :func:`write_gradebook` write ``gradebook.csv``: ``student_id, name``, then
  one column group per chapter graded — ``NN total, NN max_points, <question id>…, NN status,
  NN submission`` — one row per student (their best submission of each chapter if several; a
  chapter a student did not hand in is empty with status ``no_submission``, never 0).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Optional

from helpers.grading.submission import Submission, known_topics, read_submission
from helpers.grading.report import ClassReport, SubmissionReport, points_text

__all__ = ["read_roster", "read_class", "student_id", "folder_student", "duplicate_ids", "refuse_duplicates", "gradebook_rows", "write_gradebook", "best_by_student", "students_of",
           "chapter_columns"]

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


def _is_notebook_name(stem: str) -> bool:
    """Whether `stem` is just a course notebook's name (``05_rnn_bptt_exercises``, ``05_rnn_bptt``):
    nothing in it names a student."""
    return stem.removesuffix("_exercises") in known_topics()


def folder_student(path: Path | str) -> Optional[str]:
    """The student a folder layout names: nbgrader's ``…/submitted/<student>/<assignment>/<nb>.ipynb``,
    else ``<student>/<nb>.ipynb`` or ``<student>/<NN_topic>/<nb>.ipynb`` when the file name is just the
    notebook's name; None when the file name itself must say who it is."""
    parts = Path(path).parts
    if len(parts) >= 4 and parts[-4] == "submitted":
        return parts[-3]
    stem = Path(path).name.removesuffix(".ipynb")
    if not _is_notebook_name(stem) or len(parts) < 2:
        return None
    folders = [p for p in parts[:-1] if p not in ("/", "")]
    while folders and re.match(r"\d\d[a-z]?_", folders[-1]):  # an assignment folder (05_rnn_bptt/)
        folders.pop()
    return folders[-1] if folders else None


def student_id(path: Path | str, roster: Optional[dict[str, str]] = None, pattern: Optional[str] = None) -> str:
    """The student a submission belongs to (see the module docstring for the order of rules)."""
    stem = Path(path).name.removesuffix(".ipynb")
    folder = folder_student(path)
    if roster:
        for text in (stem, folder or ""):
            found = [sid for sid in roster
                     if re.search(rf"(?<![A-Za-z0-9]){re.escape(sid)}(?![A-Za-z0-9])", text, re.IGNORECASE)]
            if found:
                return max(found, key=len)
    if pattern:
        match = re.search(pattern, stem)
        if match:
            return (match.groupdict().get("id") or (match.group(1) if match.groups() else match.group(0))).strip()
    if folder:
        return folder
    before = re.split(r"[_\-. ]*\d\d_", stem, maxsplit=1)[0].strip("_-. ")
    return before or stem


def duplicate_ids(subs: list) -> dict[tuple[str, str], list[str]]:
    """{(student, chapter): [paths]} for every student id that two or more submissions of one chapter map to."""
    groups: dict[tuple[str, str], list[str]] = {}
    for sub in subs:
        groups.setdefault((sub.student, sub.chapter or "??"), []).append(str(sub.path))
    return {key: paths for key, paths in groups.items() if len(paths) > 1}


def refuse_duplicates(subs: list) -> None:
    """Raise ValueError naming the submissions that map to one student id (``--allow-duplicates`` skips this)."""
    dups = duplicate_ids(subs)
    if dups:
        (sid, chapter), paths = next(iter(dups.items()))
        more = f" (and {len(dups) - 1} more student id(s))" if len(dups) > 1 else ""
        raise ValueError(f"{len(paths)} submissions of chapter {chapter} map to the student id `{sid}`: "
                         f"{', '.join(paths[:3])}{more}. Put the student's id in each file name "
                         f"(alice_{chapter}_….ipynb), use nbgrader's submitted/<student>/<assignment>/ layout, "
                         f"--roster or --id-pattern; or pass --allow-duplicates to grade them all and keep each "
                         f"student's best")


def read_class(paths: list[Path], chapter: Optional[str], roster: Optional[dict[str, str]], id_pattern: Optional[str],
              allow_duplicates: bool) -> list[Submission]:
    """Every submission read, with its student id; two of one chapter for one id refused unless allowed."""
    subs = [read_submission(Path(p), chapter) for p in paths]
    for sub in subs:
        sub.student = student_id(sub.path, roster, id_pattern)
    if not allow_duplicates:
        refuse_duplicates(subs)
    return subs


def best_by_student(report: ClassReport) -> dict[tuple[str, str], SubmissionReport]:
    """Each (student, chapter)'s best-scoring submission (the first of equals, in input order)."""
    best: dict[tuple[str, str], SubmissionReport] = {}
    for sub in report.reports:
        key = (sub.student, sub.chapter or "??")
        if key not in best or sub.points > best[key].points:
            best[key] = sub
    return best


def students_of(report: ClassReport) -> list[str]:
    """Roster order first, then the students not on it (sorted)."""
    handed_in = {sub.student for sub in report.reports}
    return list(report.roster) + sorted(s for s in handed_in if s not in report.roster)


def chapter_columns(report: ClassReport, chapter: str) -> list[str]:
    """One chapter's column group: ``NN total, NN max_points, <question id>…, NN status, NN submission``."""
    return [f"{chapter} total", f"{chapter} max_points", *report.chapter_questions(chapter), f"{chapter} status",
            f"{chapter} submission"]


def _chapter_cells(report: ClassReport, chapter: str, sub: Optional[SubmissionReport]) -> list[str]:
    qids = report.chapter_questions(chapter)
    if sub is None:  # absent: empty (not 0: "no answer" is not "wrong answer")
        return ["", points_text(report.chapter_max(chapter)), *[""] * len(qids), "no_submission", ""]
    points = {q.id: q.points for q in sub.questions}
    return [points_text(sub.points), points_text(report.chapter_max(chapter)),
            *[points_text(points[q]) if q in points else "" for q in qids], sub.status, sub.submission]


def gradebook_rows(report: ClassReport) -> list[list[str]]:
    """Header + one row per student (roster order first): ``student_id, name``, then one column
    group per chapter (:func:`chapter_columns`; a chapter the student did not hand in is empty)."""
    best = best_by_student(report)
    chapters = report.chapters()
    rows = [["student_id", "name", *[c for ch in chapters for c in chapter_columns(report, ch)]]]
    for sid in students_of(report):
        subs = {ch: best.get((sid, ch)) for ch in chapters}
        name = report.roster.get(sid) or next((s.name for s in subs.values() if s is not None and s.name), "")
        rows.append([sid, name, *[c for ch in chapters for c in _chapter_cells(report, ch, subs[ch])]])
    return rows


def write_gradebook(report: ClassReport, out: Path) -> Path:
    out = Path(out)
    with out.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(gradebook_rows(report))
    return out
