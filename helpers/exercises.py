"""Build ``exercises/`` from ``solutions/`` — the solutions notebooks are the single source.

    python -m helpers.exercises                  # regenerate every out-of-date exercise notebook
    python -m helpers.exercises solutions/01_linear_exercises.ipynb   # just these
    python -m helpers.exercises --force          # re-execute even the up-to-date ones
    python -m helpers.exercises --check          # exit 1 (with a diff) if exercises/ is stale

For every ``solutions/NN_topic_exercises.ipynb`` it writes ``exercises/NN_topic_exercises.ipynb``:

* each region from a ``### BEGIN SOLUTION`` line to the matching ``### END SOLUTION`` line
  (inclusive) becomes ``raise NotImplementedError("<function>: replace this line with your code")``
  at the marker's indentation. Regions must sit inside a function body (so running the cell only
  defines the function); a region at top level is refused with a clear error;
* cell ids, cell order, markdown and tags are copied from the source (stable ids: the diff of a
  regenerated notebook shows only real changes); no timestamps, no execution timing;
* a "How this notebook is graded" markdown cell (id ``graded-work``, text from
  :func:`helpers.checks.graded.header_markdown`, the one source of what graded work may import) is
  inserted after the title cell, or replaces a cell with that id;
* the notebook metadata records its chapter (``metadata.dims_params.chapter``, e.g. ``"02"``): the
  grader reads it, so a renamed file is still graded as the right chapter and a notebook handed in
  for another chapter is ``wrong_notebook``;
* the notebook is then EXECUTED in the ``dims-params`` kernel, so its committed outputs show what a
  student sees first — every check cell prints "⏳ … not attempted yet". A cell that raises while
  executing stops generation (tag it ``raises-exception`` if that is intended).

``--check`` does not start a kernel (it must be fast, and it runs in ``make test``): it rebuilds the
unexecuted notebook and compares cell types, ids, sources, tags and the kernelspec with the
committed file, and verifies that the committed file was executed (every code cell has an
execution count, every check cell prints "not attempted"). Whether the committed outputs are what
execution produces is checked by ``make test``: tests/test_exercises.py runs every ``exercises/`` notebook
with nbval's checks (one kernel for all of them: tests/_one_kernel.py).
Exercise notebooks without a solutions source are reported as warnings.
"""

from __future__ import annotations

import argparse
import copy
import difflib
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import nbformat

from helpers.checks.graded import HEADER_CELL_ID, NOTEBOOK_METADATA_KEY, header_markdown
from helpers.course.notebooks import KERNEL_NAME

__all__ = ["ExerciseError", "strip_solutions", "build_exercise", "exercise_path_for", "compare_notebooks",
           "check_all", "generate", "main", "BEGIN", "END"]

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
ROOT = Path(__file__).resolve().parent.parent
KERNELSPEC = {"name": KERNEL_NAME, "display_name": "Python (dims-params)", "language": "python"}
_DEF_RE = re.compile(r"^\s*(?:async\s+)?def\s+([A-Za-z_]\w*)")
_CHECK_TAG = "check"


class ExerciseError(ValueError):
    """A solutions notebook cannot be turned into an exercise (bad markers, failing cell, …)."""


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _enclosing_function(lines: list[str], index: int) -> Optional[str]:
    """Name of the innermost ``def`` whose body contains line `index`, or None at top level."""
    threshold = len(_indent(lines[index]).expandtabs())
    for line in reversed(lines[:index]):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        width = len(_indent(line).expandtabs())
        if width < threshold:
            match = _DEF_RE.match(line)
            if match:
                return match.group(1)
            threshold = width
            if width == 0:
                return None
    return None


def strip_solutions(source: str, *, where: str = "cell") -> str:
    """Replace every BEGIN/END SOLUTION region of `source` with ``raise NotImplementedError(…)``.

    Raises :class:`ExerciseError` (naming `where` and the line) for an unmatched or nested marker,
    mismatched indentation, or a region outside a function body.
    """
    lines = source.split("\n")
    out: list[str] = []
    begin: Optional[int] = None
    for i, line in enumerate(lines):
        marker = line.strip()
        if marker == BEGIN:
            if begin is not None:
                raise ExerciseError(f"{where}, line {i + 1}: '{BEGIN}' inside another solution region "
                                    f"(opened on line {begin + 1}); regions cannot nest")
            begin = i
            function = _enclosing_function(lines, i)
            if function is None:
                raise ExerciseError(
                    f"{where}, line {i + 1}: a solution region at top level would raise NotImplementedError "
                    f"as soon as the student runs the cell; put it inside a function body "
                    f"(the student writes a function, the check cell calls it)")
            indent = _indent(line)
            out.append(f'{indent}raise NotImplementedError("{function}: replace this line with your code")')
        elif marker == END:
            if begin is None:
                raise ExerciseError(f"{where}, line {i + 1}: '{END}' without a '{BEGIN}' before it")
            if _indent(line) != _indent(lines[begin]):
                raise ExerciseError(f"{where}, lines {begin + 1}-{i + 1}: BEGIN and END markers must have "
                                    f"the same indentation")
            begin = None
        elif BEGIN in line or END in line:
            raise ExerciseError(f"{where}, line {i + 1}: a solution marker must be alone on its line")
        elif begin is None:
            out.append(line)
    if begin is not None:
        raise ExerciseError(f"{where}, line {begin + 1}: '{BEGIN}' is never closed by '{END}'")
    return "\n".join(out)


def exercise_path_for(solution: Path, exercises_dir: Optional[Path] = None) -> Path:
    """``solutions/01_linear_exercises.ipynb`` → ``exercises/01_linear_exercises.ipynb``."""
    base = exercises_dir if exercises_dir is not None else solution.resolve().parent.parent / "exercises"
    return base / solution.name


def _tags(cell: dict) -> list:
    return list(cell.get("metadata", {}).get("tags", []))


def _chapter_metadata(source_name: str) -> dict:
    """``{"dims_params": {"chapter": "02", "exercise": "02_convolution_exercises"}}`` for a
    ``02_convolution_exercises.ipynb`` source, ``{}`` if the name carries no chapter number."""
    match = re.match(r"(\d\d)[a-z]?_", Path(source_name).name)
    if not match:
        return {}
    return {NOTEBOOK_METADATA_KEY: {"chapter": match.group(1), "exercise": Path(source_name).stem}}


def _with_header(cells: list) -> list:
    """`cells` with the graded-work note after the title (replacing an earlier copy)."""
    cells = [c for c in cells if c.get("id") != HEADER_CELL_ID]
    header = nbformat.v4.new_markdown_cell(header_markdown(), id=HEADER_CELL_ID)
    at = 1 if cells and cells[0].cell_type == "markdown" else 0
    return cells[:at] + [header] + cells[at:]


def build_exercise(solution_nb: nbformat.NotebookNode, *, source_name: str = "solutions notebook") -> nbformat.NotebookNode:
    """The unexecuted exercise notebook for a solutions notebook (a new object; input untouched)."""
    cells = []
    seen: set[str] = set()
    for index, cell in enumerate(solution_nb.cells):
        where = f"{source_name}, cell {index} (id {cell.get('id', '?')!r})"
        cell_id = cell.get("id")
        if not cell_id:
            raise ExerciseError(f"{where}: the cell has no id; save the notebook with nbformat >= 4.5 "
                                f"(stable ids keep regenerated exercises diff-free)")
        if cell_id in seen:
            raise ExerciseError(f"{where}: duplicate cell id {cell_id!r}")
        seen.add(cell_id)
        source = cell.source
        if cell.cell_type == "code":
            source = strip_solutions(source, where=where)
            new = nbformat.v4.new_code_cell(source, id=cell_id)
        elif cell.cell_type == "markdown":
            if BEGIN in source or END in source:
                raise ExerciseError(f"{where}: solution markers belong in code cells (inside a function)")
            new = nbformat.v4.new_markdown_cell(source, id=cell_id)
        else:
            new = nbformat.v4.new_raw_cell(source, id=cell_id)
        metadata = {k: copy.deepcopy(v) for k, v in cell.get("metadata", {}).items()
                    if k not in ("execution", "collapsed", "scrolled", "ExecuteTime")}
        new.metadata.update(metadata)
        if "attachments" in cell:
            new["attachments"] = copy.deepcopy(cell["attachments"])
        cells.append(new)
    metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"},
                **_chapter_metadata(source_name)}
    return nbformat.v4.new_notebook(cells=_with_header(cells), metadata=metadata)


def _structure(nb: nbformat.NotebookNode) -> tuple[dict, list[tuple]]:
    spec = {"kernelspec": dict(nb.metadata.get("kernelspec", {})),
            NOTEBOOK_METADATA_KEY: dict(nb.metadata.get(NOTEBOOK_METADATA_KEY, {}))}
    return spec, [(c.cell_type, c.get("id"), c.source, _tags(c)) for c in nb.cells]


def _output_text(cell: dict) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        elif out.get("output_type") in ("execute_result", "display_data"):
            parts.append(out.get("data", {}).get("text/plain", ""))
        elif out.get("output_type") == "error":
            parts.append(f"{out.get('ename')}: {out.get('evalue')}")
    return "".join(parts)


def compare_notebooks(expected: nbformat.NotebookNode, actual: nbformat.NotebookNode, *, name: str,
                      executed: bool = True) -> list[str]:
    """Readable differences between the freshly built (unexecuted) exercise and the committed one.

    With `executed`, also require that the committed notebook was executed (execution counts) and
    that every check cell reports "not attempted".
    """
    problems: list[str] = []
    exp_spec, exp_cells = _structure(expected)
    act_spec, act_cells = _structure(actual)
    if exp_spec != act_spec:
        problems.append(f"{name}: metadata (kernelspec, chapter) is {act_spec}, expected {exp_spec}")
    exp_ids = [c[1] for c in exp_cells]
    act_ids = [c[1] for c in act_cells]
    if exp_ids != act_ids:
        diff = "\n".join(difflib.unified_diff(act_ids, exp_ids, "committed cell ids", "generated cell ids", lineterm="", n=1))
        problems.append(f"{name}: cells differ (added, removed or reordered):\n{diff}")
    act_by_id = {c[1]: (i, c) for i, c in enumerate(act_cells)}
    for i, (ctype, cid, source, tags) in enumerate(exp_cells):
        if cid not in act_by_id:
            continue
        j, (a_type, _, a_source, a_tags) = act_by_id[cid]
        if a_type != ctype:
            problems.append(f"{name}: cell {cid!r} is a {a_type} cell, expected {ctype}")
        if a_source != source:
            diff = list(difflib.unified_diff(a_source.splitlines(), source.splitlines(),
                                             "committed", "generated", lineterm="", n=1))
            shown = "\n".join(diff[:24]) + ("\n    …" if len(diff) > 24 else "")
            problems.append(f"{name}: cell {cid!r} source differs:\n{shown}")
        if a_tags != tags:
            problems.append(f"{name}: cell {cid!r} tags are {a_tags}, expected {tags}")
    if executed and not problems:
        for cell in actual.cells:
            if cell.cell_type != "code" or not cell.source.strip():
                continue
            if cell.get("execution_count") is None:
                problems.append(f"{name}: cell {cell.get('id')!r} was never executed; run `python -m helpers.exercises`")
                break
            if _CHECK_TAG in _tags(cell) and "not attempted" not in _output_text(cell):
                problems.append(f"{name}: check cell {cell.get('id')!r} should print '⏳ … not attempted yet', "
                                f"got {_output_text(cell).strip()[:120]!r}")
    return problems


@dataclass
class SyncReport:
    problems: list[str]
    warnings: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def _solutions(solutions_dir: Path) -> list[Path]:
    return sorted(solutions_dir.glob("*_exercises.ipynb"))


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _check_one(solution: Path, exercises_dir: Path) -> list[str]:
    target = exercise_path_for(solution, exercises_dir)
    name = str(target.relative_to(exercises_dir.parent)) if exercises_dir.parent in target.parents else str(target)
    try:
        expected = build_exercise(_read(solution), source_name=solution.name)
    except ExerciseError as exc:
        return [str(exc)]
    if not target.exists():
        return [f"{name}: missing; run `python -m helpers.exercises`"]
    try:
        actual = _read(target)
    except Exception as exc:  # unreadable committed file
        return [f"{name}: cannot be read ({exc})"]
    return compare_notebooks(expected, actual, name=name)


def check_all(root: Path = ROOT) -> SyncReport:
    """Compare every ``exercises/`` notebook with what ``solutions/`` generates (no kernel)."""
    solutions_dir, exercises_dir = root / "solutions", root / "exercises"
    problems: list[str] = []
    sources = _solutions(solutions_dir)
    for solution in sources:
        problems += _check_one(solution, exercises_dir)
    names = {s.name for s in sources}
    warnings = [f"exercises/{p.name} has no source solutions/{p.name} (edit solutions/, never exercises/)"
                for p in sorted(exercises_dir.glob("*.ipynb")) if p.name not in names]
    return SyncReport(problems, warnings)


def _execute(nb: nbformat.NotebookNode, path: Path, timeout: int) -> None:
    from nbclient.exceptions import CellExecutionError

    from helpers.course.notebooks import execute

    try:
        execute(nb, path.parent, timeout=timeout)
    except CellExecutionError as exc:
        raise ExerciseError(f"{path.name}: a cell raised while executing the generated exercise "
                            f"(only check cells should call the students' functions; tag a cell "
                            f"'raises-exception' if the error is intended):\n{str(exc)[-1500:]}") from None


def generate(solutions: Optional[list[Path]] = None, *, root: Path = ROOT, force: bool = False,
             timeout: int = 600, log=print) -> list[Path]:
    """Regenerate (build + execute + write) the exercise notebooks that are out of date.

    Returns the paths written. Up-to-date ones (``--check`` would pass) are skipped unless `force`.
    """
    exercises_dir = root / "exercises"
    exercises_dir.mkdir(exist_ok=True)
    written = []
    for solution in (solutions if solutions is not None else _solutions(root / "solutions")):
        solution = Path(solution)
        target = exercise_path_for(solution, exercises_dir)
        if not force and target.exists() and not _check_one(solution, exercises_dir):
            log(f"up to date: {target.name}")
            continue
        nb = build_exercise(_read(solution), source_name=solution.name)
        _execute(nb, target, timeout)
        text = nbformat.writes(nb) + "\n"
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            tmp = target.with_suffix(".ipynb.tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(target)
        written.append(target)
        log(f"generated: {target.relative_to(root) if root in target.parents else target}")
    return written


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.exercises",
                                     description="Build exercises/ from solutions/ (single source).")
    parser.add_argument("solutions", nargs="*", type=Path, help="solutions notebooks (default: all)")
    parser.add_argument("--check", action="store_true", help="do not write; exit 1 if exercises/ is out of date")
    parser.add_argument("--force", action="store_true", help="re-execute even up-to-date notebooks")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell when executing")
    parser.add_argument("--nbgrader", type=Path, metavar="DIR",
                        help="write an nbgrader course into DIR (nbgrader_config.py, source/NN_topic/…) and stop")
    args = parser.parse_args(argv)
    if args.nbgrader is not None:
        from helpers.checks.registry import get
        from helpers.grading.nbgrader import export_course

        written = export_course(args.nbgrader, lambda qid: get(qid).points, args.solutions or None)
        print(f"nbgrader course: {args.nbgrader} ({len(written)} assignment(s) in source/)")
        return 0
    if args.check:
        report = check_all()
        for warning in report.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        if report.ok:
            print(f"exercises/ is in sync with solutions/ ({len(_solutions(ROOT / 'solutions'))} notebooks)")
            return 0
        print("exercises/ is OUT OF SYNC with solutions/ — run `make exercises` and commit the result:\n",
              file=sys.stderr)
        for problem in report.problems:
            print(f"- {problem}\n", file=sys.stderr)
        return 1
    try:
        generate(args.solutions or None, force=args.force, timeout=args.timeout)
    except ExerciseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for warning in check_all().warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
