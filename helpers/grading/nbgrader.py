"""Export the course as an nbgrader course: ``python -m helpers.exercises --nbgrader DIR``.

Writes ``DIR/nbgrader_config.py`` and ``DIR/source/<NN_topic>/<NN_topic>_exercises.ipynb`` for
each solutions notebook, with nbgrader cell metadata (schema 3):

* a cell holding ``### BEGIN SOLUTION`` (nbgrader's own markers) is a *solution* cell;
* a check cell (tagged ``check``) is a locked *autograded test* worth the question's points
  (``grade_id`` = the question id with ``.`` → ``_``);
* a locked read-only cell is added before the first code cell (:data:`RELEASE_CELL_ID`): it
  calls :func:`helpers.checks.refusal.nbgrader_release`;
* every other cell is left as is; outputs are cleared.

So ``nbgrader generate_assignment``, ``autograde`` and ``generate_feedback`` work on it
unchanged. Under ``autograde`` nbgrader sets ``NBGRADER_EXECUTION=autograde`` in the kernel; then
``check`` draws fresh inputs and raises on a wrong answer (see ``check``), so a test cell
scores the question's points exactly when the batch grader would (all or nothing). The release
cell makes the kernel refuse what the grader's sandbox refuses (an import of ``helpers.formulas``
by the notebook's code raises the grader's ``ForbiddenImport``; a check whose function uses a
refused module fails), so nbgrader and ``helpers.grade`` give the same score.

**For an nbgrader course the release notebook (``release/NN_topic/…``, made by ``nbgrader
generate_assignment`` from this export) is the only handout.** ``exercises/`` carries no nbgrader
metadata: nbgrader cannot grade it (it would score 0 whatever the answers). A student who submits
it anyway is told why: under autograde every check of a notebook without the release cell fails
with "this is not the nbgrader release of the notebook — download the release from your course",
which nbgrader's feedback shows. (``helpers.grade`` grades both notebooks alike.)
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Optional

import nbformat

__all__ = ["nbgrader_notebook", "export_course", "release_cell", "CONFIG", "RELEASE_CELL_ID"]

BEGIN = "### BEGIN SOLUTION"
_CHECK_ID = re.compile(r"""check\(\s*["'](\d\d\.\w+)["']""")
#: the id (and nbgrader grade_id) of the locked cell that marks the nbgrader release
RELEASE_CELL_ID = "nbgrader-release"

CONFIG = '''# Hand out release/NN_topic/ (nbgrader generate_assignment NN_topic): the only notebook nbgrader
# can grade. The course's exercises/ notebooks carry no nbgrader metadata: submitted, they score 0
# (their checks say "this is not the nbgrader release of the notebook").
c = get_config()  # noqa: F821 (nbgrader's config loader defines it)
c.CourseDirectory.course_id = "dims-params"
c.ClearSolutions.code_stub = {"python": "raise NotImplementedError"}
c.ExecutePreprocessor.timeout = 120
'''


def release_cell(chapter: str) -> nbformat.NotebookNode:
    """The locked read-only cell that marks the nbgrader release of chapter `chapter` (first code cell)."""
    cell = nbformat.v4.new_code_cell(
        f"# The nbgrader release of chapter {chapter}: keep this cell (it is locked). When graded it makes\n"
        f"# the notebook refuse what the grader refuses (helpers.formulas, …), as helpers.grade does.\n"
        f"from helpers.checks.refusal import nbgrader_release\n\n"
        f"nbgrader_release({chapter!r})")
    cell["id"] = RELEASE_CELL_ID
    cell.metadata["nbgrader"] = {"grade": False, "solution": False, "locked": True, "grade_id": RELEASE_CELL_ID,
                                 "schema_version": 3}
    return cell


def nbgrader_notebook(solution: nbformat.NotebookNode, points: Callable[[str], float]) -> nbformat.NotebookNode:
    """The solutions notebook with nbgrader cell metadata and the release cell (see the module
    docstring); `points(question_id)` gives a check cell's points (the registry's, passed in by
    helpers.exercises)."""
    nb = nbformat.from_dict(solution)
    nb.cells = [c for c in nb.cells if c.get("id") != RELEASE_CELL_ID]
    chapters = [m.group(1)[:2] for c in nb.cells if c.cell_type == "code" for m in [_CHECK_ID.search(c.source)] if m]
    if chapters:
        first_code = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
        nb.cells.insert(first_code, release_cell(chapters[0]))
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        if cell.get("id") == RELEASE_CELL_ID:
            continue
        cell.metadata.pop("nbgrader", None)
        source = cell.source
        if BEGIN in source:
            cell.metadata["nbgrader"] = {"grade": False, "solution": True, "locked": False,
                                         "grade_id": f"solution-{cell.get('id', len(source))}", "schema_version": 3}
        elif cell.cell_type == "code" and "check" in cell.metadata.get("tags", []):
            match = _CHECK_ID.search(source)
            if match:
                qid = match.group(1)
                cell.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True,
                                             "points": points(qid), "grade_id": qid.replace(".", "_"),
                                             "schema_version": 3}
    return nb


def export_course(dest: Path, points: Callable[[str], float], solutions: Optional[list[Path]] = None,
                  root: Optional[Path] = None) -> list[Path]:
    """Write the nbgrader course into `dest`; returns the source notebooks written."""
    root = root or Path(__file__).resolve().parent.parent
    dest = Path(dest)
    (dest / "source").mkdir(parents=True, exist_ok=True)
    (dest / "nbgrader_config.py").write_text(CONFIG, encoding="utf-8")
    written = []
    for path in solutions or sorted((root / "solutions").glob("*_exercises.ipynb")):
        topic = Path(path).name.removesuffix("_exercises.ipynb")
        target = dest / "source" / topic / Path(path).name
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nbgrader_notebook(nbformat.read(path, as_version=4), points), target)
        written.append(target)
    return written
