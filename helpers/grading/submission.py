"""Reading one handed-in notebook: bytes → :class:`Submission` (parsed cells, SHA-256, chapter).

The file is read once and never written. A malformed or truncated .ipynb is ``invalid_notebook``
with the reason (:class:`InvalidNotebook`); nbformat 3 is converted. The chapter comes from the
notebook metadata that ``helpers.exercises`` writes, else from its check cells, else from the file
name (``team12_02_convolution_exercises.ipynb`` is chapter 02); a chapter-03 notebook handed in as
chapter 02 (by name or ``--chapter``) is ``wrong_notebook``.

Cells are numbered as the student counts them: code cells only, from 1. The grader runs every code
cell except the check cells (tagged ``check``, or cells whose code only calls ``check(…)``; other
``check(…)`` lines are dropped): it calls the functions itself, on fresh inputs.
Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from helpers.checks.graded import NOTEBOOK_METADATA_KEY

__all__ = ["InvalidNotebook", "Submission", "read_submission", "parse_notebook", "code_cells", "cells_to_run",
           "ignored_parts", "known_topics", "name_chapter", "notebook_chapter", "infer_chapter", "ROOT"]

ROOT = Path(__file__).resolve().parents[2]
_CHECK_CALL = re.compile(r"(?<![\w.])check\s*\(")
_CHAPTER_IN_NAME = re.compile(r"(?:^|[^0-9])(\d\d)_")
_CHECK_ID = re.compile(r"""check\(\s*["'](\d\d)\.""")


class InvalidNotebook(ValueError):
    """The file is not a readable notebook (the message says why, for the student)."""


def parse_notebook(data: bytes) -> dict:
    """The notebook in `data` with every cell's source as one string (nbformat 3 converted);
    raises :class:`InvalidNotebook` naming what is wrong (not UTF-8, empty, truncated, malformed)."""
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


def known_topics(root: Path = ROOT) -> dict[str, str]:
    """``"02_convolution"`` → ``"02"`` for every exercise notebook of the course."""
    names = {p.stem.removesuffix("_exercises") for d in ("solutions", "exercises")
             for p in (root / d).glob("*_exercises.ipynb")}
    return {n: n[:2] for n in names if re.match(r"\d\d_", n)}


def name_chapter(path: Path) -> Optional[str]:
    """The chapter a file name hands the notebook in as: a course topic in it (``…_02_convolution_…``),
    else the first ``NN_``; None if neither."""
    stem = path.name
    for topic, chapter in sorted(known_topics().items(), key=lambda t: -len(t[0])):
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

    def changed_on_disk(self) -> bool:
        """Whether the file no longer holds the bytes graded (an unreadable file: not known, False)."""
        try:
            return hashlib.sha256(self.path.read_bytes()).hexdigest() != self.sha256
        except OSError:
            return False


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
        sub.nb = parse_notebook(data)
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
