"""nbval's checks on every solutions/ notebook (each check cell prints ✅ for the reference answers),
all of them in one kernel (tests/_one_kernel.py) instead of one kernel each."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests._one_kernel import assert_reproduces, run_in_one_kernel

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("*_exercises.ipynb"))


def test_there_are_solutions():
    assert len(SOLUTIONS) >= 16


@pytest.fixture(scope="module")
def executed_solutions() -> dict[str, list[list[dict]]]:
    return run_in_one_kernel(SOLUTIONS)


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_solutions_notebook_runs_and_prints_its_committed_outputs(executed_solutions, path):
    assert_reproduces(path, executed_solutions[path.name])


def test_the_one_kernel_run_fails_on_a_changed_output_an_error_and_a_leftover_name(tmp_path):
    """The runner is as strict as nbval, and `%reset -f` leaves nothing of one notebook to the next."""
    import nbformat  # noqa: PLC0415

    def notebook(name: str, cells: list[tuple[str, str, list]]) -> Path:
        nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "dims-params", "display_name": "x",
                                                                "language": "python"}})
        for source, printed, tags in cells:
            cell = nbformat.v4.new_code_cell(source, metadata={"tags": tags})
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=printed)] if printed else []
            nb.cells.append(cell)
        path = tmp_path / name
        nbformat.write(nb, path)
        return path

    first = notebook("a.ipynb", [("x = 1\nprint('at 0x7f00deadbeef')", "at 0x7f00cafe0000\n", []),
                                 ("print(x + 1)", "3\n", []), ("print('timing 0.1 s')", "timing 9 s\n",
                                                               ["nbval-ignore-output"])])
    second = notebook("b.ipynb", [("print(x)", "", []), ("1 / 0", "", ["raises-exception"])])
    fresh = run_in_one_kernel([first, second])
    with pytest.raises(AssertionError, match="code cell 1 .* differs"):  # 2 printed, 3 committed; the address sanitised
        assert_reproduces(first, fresh["a.ipynb"])
    with pytest.raises(AssertionError, match="code cell 0 .* raised"):  # NameError: x did not survive %reset -f
        assert_reproduces(second, fresh["b.ipynb"])
    assert [o["ename"] for o in fresh["b.ipynb"][1]] == ["ZeroDivisionError"]  # allowed by its tag
