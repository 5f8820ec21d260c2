"""helpers.exercises: solutions/ → exercises/ generation, and the sync check `make test` relies on."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from helpers import exercises as ex
from helpers.checks.graded import HEADER_CELL_ID, NOTEBOOK_METADATA_KEY, header_markdown
from tests._one_kernel import assert_reproduces, run_in_one_kernel

ROOT = Path(__file__).resolve().parent.parent


def test_exercises_are_in_sync_with_solutions():
    report = ex.check_all()
    assert report.ok, "exercises/ is stale — run `make exercises`:\n" + "\n".join(report.problems)


def test_every_solutions_notebook_has_an_exercise():
    for solution in sorted((ROOT / "solutions").glob("*_exercises.ipynb")):
        assert (ROOT / "exercises" / solution.name).exists(), solution.name


def test_check_cli_exit_code(capsys):
    assert ex.main(["--check"]) == 0
    assert "in sync" in capsys.readouterr().out


# --------------------------------------------------------------------------- marker replacement

def test_region_becomes_raise_at_its_indentation():
    src = ("import math\n\n"
           "def f(x):\n"
           '    """Doc."""\n'
           "    ### BEGIN SOLUTION\n"
           "    y = x + 1\n"
           "    return y\n"
           "    ### END SOLUTION\n"
           "\n"
           "class A:\n"
           "    def g(self):\n"
           "        if True:\n"
           "            ### BEGIN SOLUTION\n"
           "            return 2\n"
           "            ### END SOLUTION\n"
           "        return 3\n")
    out = ex.strip_solutions(src)
    assert out == ("import math\n\n"
                   "def f(x):\n"
                   '    """Doc."""\n'
                   '    raise NotImplementedError("f: replace this line with your code")\n'
                   "\n"
                   "class A:\n"
                   "    def g(self):\n"
                   "        if True:\n"
                   '            raise NotImplementedError("g: replace this line with your code")\n'
                   "        return 3\n")
    compile(out, "<exercise>", "exec")


def test_source_without_markers_is_unchanged():
    assert ex.strip_solutions("x = 1\n# ### BEGIN nothing\n") == "x = 1\n# ### BEGIN nothing\n"


@pytest.mark.parametrize("src, message", [
    ("### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n", "top level"),
    ("if True:\n    ### BEGIN SOLUTION\n    x = 1\n    ### END SOLUTION\n", "top level"),
    ("def f():\n    ### BEGIN SOLUTION\n    return 1\n", "never closed"),
    ("def f():\n    return 1\n    ### END SOLUTION\n", "without"),
    ("def f():\n    ### BEGIN SOLUTION\n    ### BEGIN SOLUTION\n    ### END SOLUTION\n", "cannot nest"),
    ("def f():\n    ### BEGIN SOLUTION\n    return 1\n  ### END SOLUTION\n", "same indentation"),
    ("def f():\n    ### BEGIN SOLUTION\n    return 1  ### END SOLUTION\n    ### END SOLUTION\n", "alone"),
])
def test_bad_markers_are_refused_with_a_clear_error(src, message):
    with pytest.raises(ex.ExerciseError, match=message):
        ex.strip_solutions(src, where="nb, cell 3")


# --------------------------------------------------------------------------- notebooks

def _solution_nb(extra_cells=()) -> nbformat.NotebookNode:
    cells = [
        nbformat.v4.new_markdown_cell("# Tiny", id="intro"),
        nbformat.v4.new_code_cell("from helpers.checks import check", id="setup"),
        nbformat.v4.new_code_cell("def linear_params(in_features, out_features, bias=True):\n"
                                  "    ### BEGIN SOLUTION\n"
                                  "    return in_features * out_features + (out_features if bias else 0)\n"
                                  "    ### END SOLUTION", id="solution"),
        nbformat.v4.new_code_cell('check("01.linear_params", linear_params)', id="check",
                                  metadata={"tags": ["check"]}),
        *extra_cells,
    ]
    nb = nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": dict(ex.KERNELSPEC)})
    nb.cells[2].outputs = [nbformat.v4.new_output("stream", text="stale")]
    nb.cells[2].execution_count = 7
    return nb


def _by_id(nb, cell_id: str):
    return next(c for c in nb.cells if c.id == cell_id)


def test_build_copies_ids_and_tags_and_clears_outputs():
    built = ex.build_exercise(_solution_nb())
    assert [c.id for c in built.cells] == ["intro", HEADER_CELL_ID, "setup", "solution", "check"]
    assert _by_id(built, "check").metadata["tags"] == ["check"]
    assert all(c.outputs == [] and c.execution_count is None for c in built.cells if c.cell_type == "code")
    solution = _by_id(built, "solution").source
    assert "NotImplementedError" in solution and "BEGIN" not in solution
    assert built.metadata["kernelspec"]["name"] == "dims-params"


def test_build_inserts_the_graded_work_note_once_and_records_the_chapter():
    nb = _solution_nb()
    nb.cells.insert(2, nbformat.v4.new_markdown_cell("an old copy of the note", id=HEADER_CELL_ID))
    built = ex.build_exercise(nb, source_name="07_tiny_exercises.ipynb")
    assert [c.id for c in built.cells].count(HEADER_CELL_ID) == 1
    assert built.cells[1].id == HEADER_CELL_ID and built.cells[1].source == header_markdown()
    assert built.metadata[NOTEBOOK_METADATA_KEY] == {"chapter": "07", "exercise": "07_tiny_exercises"}
    assert NOTEBOOK_METADATA_KEY not in ex.build_exercise(_solution_nb(), source_name="tiny.ipynb").metadata


def test_every_committed_exercise_states_what_graded_work_may_import():
    for path in sorted((ROOT / "exercises").glob("*_exercises.ipynb")):
        nb = nbformat.read(path, as_version=4)
        assert _by_id(nb, HEADER_CELL_ID).source == header_markdown(), path.name
        assert nb.metadata[NOTEBOOK_METADATA_KEY]["chapter"] == path.name[:2], path.name


def test_no_cell_we_hand_out_imports_what_the_grader_refuses():
    """A provided cell (the course's, not the student's) importing a refused module would flag every
    submission of the chapter ``forbidden_import`` (chapter 11's demo cell once imported helpers.counting)."""
    import ast

    from helpers.checks.graded import refused_name

    found = []
    for path in sorted((ROOT / "exercises").glob("*_exercises.ipynb")):
        for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
            if cell.cell_type != "code":
                continue
            for node in ast.walk(ast.parse(cell.source)):
                names = ([refused_name(a.name) for a in node.names] if isinstance(node, ast.Import) else
                         [refused_name(node.module, a.name) for a in node.names]
                         if isinstance(node, ast.ImportFrom) and node.module else [])
                found += [f"{path.name} cell {index}: {n}" for n in names if n]
    assert not found, found


def test_build_refuses_missing_ids_and_markdown_markers():
    nb = _solution_nb()
    del nb.cells[1]["id"]
    with pytest.raises(ex.ExerciseError, match="no id"):
        ex.build_exercise(nb)
    nb = _solution_nb([nbformat.v4.new_markdown_cell("### BEGIN SOLUTION", id="md")])
    with pytest.raises(ex.ExerciseError, match="code cells"):
        ex.build_exercise(nb)


def _write(path: Path, nb) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """A tiny project: one solutions notebook, generated (and executed) once."""
    root = tmp_path_factory.mktemp("project")
    _write(root / "solutions" / "01_tiny_exercises.ipynb", _solution_nb())
    written = ex.generate(root=root, log=lambda *_: None)
    return root, written


def test_generate_executes_and_check_passes(generated):
    root, written = generated
    assert written == [root / "exercises" / "01_tiny_exercises.ipynb"]
    nb = nbformat.read(written[0], as_version=4)
    check_cell = next(c for c in nb.cells if c.id == "check")
    assert check_cell.outputs[0]["text"].startswith("⏳ 01.linear_params: not attempted yet")
    text = written[0].read_text(encoding="utf-8")
    assert '"execution"' not in text and "iopub" not in text, "no execution timing metadata"
    assert ex.check_all(root).ok
    assert ex.generate(root=root, log=lambda *_: None) == [], "up-to-date notebooks are not re-executed"


def test_sync_check_reports_edits_readably(generated, tmp_path):
    root, _ = generated
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    target = copy / "exercises" / "01_tiny_exercises.ipynb"
    nb = nbformat.read(target, as_version=4)
    solution = _by_id(nb, "solution")
    solution.source = solution.source.replace("replace this line", "REPLACE THIS LINE")
    _by_id(nb, "check").outputs = [nbformat.v4.new_output("stream", text="✅ 01.linear_params: 20/20 cases correct\n")]
    _write(target, nb)
    problems = ex.check_all(copy).problems
    assert len(problems) == 1 and "cell 'solution' source differs" in problems[0]
    assert "-    raise NotImplementedError(\"linear_params: REPLACE" in problems[0]

    solution.source = solution.source.replace("REPLACE THIS LINE", "replace this line")
    _write(target, nb)
    problems = ex.check_all(copy).problems
    assert len(problems) == 1 and "should print '⏳" in problems[0]

    nb.metadata[NOTEBOOK_METADATA_KEY] = {"chapter": "02", "exercise": "01_tiny_exercises"}
    _write(target, nb)
    assert "metadata (kernelspec, chapter)" in ex.check_all(copy).problems[0]
    nb.metadata[NOTEBOOK_METADATA_KEY] = {"chapter": "01", "exercise": "01_tiny_exercises"}

    del nb.cells[0]
    _write(target, nb)
    assert "cells differ" in ex.check_all(copy).problems[0]

    (copy / "exercises" / "99_orphan_exercises.ipynb").write_text("{}", encoding="utf-8")
    target.unlink()
    report = ex.check_all(copy)
    assert "missing" in report.problems[0]
    assert report.warnings == ["exercises/99_orphan_exercises.ipynb has no source solutions/99_orphan_exercises.ipynb "
                               "(edit solutions/, never exercises/)"]


def test_unexecuted_exercise_is_reported(tmp_path):
    nb = ex.build_exercise(_solution_nb())
    problems = ex.compare_notebooks(nb, nb, name="x.ipynb")
    assert problems and "never executed" in problems[0]


def test_generation_stops_on_a_cell_that_raises(tmp_path):
    calls = nbformat.v4.new_code_cell("linear_params(3, 4)", id="demo")
    _write(tmp_path / "solutions" / "01_bad_exercises.ipynb", _solution_nb([calls]))
    with pytest.raises(ex.ExerciseError, match="raises-exception"):
        ex.generate(root=tmp_path, log=lambda *_: None)
    assert not (tmp_path / "exercises" / "01_bad_exercises.ipynb").exists()


def test_committed_exercises_have_no_solutions_left():
    for path in sorted((ROOT / "exercises").glob("*.ipynb")):
        text = path.read_text(encoding="utf-8")
        assert ex.BEGIN not in text and ex.END not in text, path.name
        json.loads(text)


# --------------------------------------------------------------------------- executing exercises/
# nbval's checks on every exercises/ notebook, all of them in one kernel (tests/_one_kernel.py): sixteen
# kernels each paying `import torch` cost more than running every notebook's cells.
EXERCISES = sorted((ROOT / "exercises").glob("*_exercises.ipynb"))


@pytest.fixture(scope="module")
def executed_exercises() -> dict[str, list[list[dict]]]:
    return run_in_one_kernel(EXERCISES)


@pytest.mark.parametrize("path", EXERCISES, ids=lambda p: p.stem)
def test_exercise_notebook_runs_and_prints_its_committed_outputs(executed_exercises, path):
    assert_reproduces(path, executed_exercises[path.name])
