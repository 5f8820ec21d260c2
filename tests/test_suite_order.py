"""The root conftest.py's file order for `make test` (longest files first, so 2 workers finish together)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
# the repository's root conftest.py, by path (`import conftest` would find tests/conftest.py)
_spec = importlib.util.spec_from_file_location("root_conftest", ROOT / "conftest.py")
suite = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(suite)


def test_every_listed_file_exists_once():
    missing = [p for p in suite.LONGEST_FIRST if not (ROOT / p).is_file()]
    assert not missing, f"renamed or removed: update LONGEST_FIRST in conftest.py: {missing}"
    assert len(set(suite.LONGEST_FIRST)) == len(suite.LONGEST_FIRST)


def test_listed_files_first_then_chapters_then_tests_then_exercises():
    files = ["exercises/01_linear_exercises.ipynb", "solutions/01_linear_exercises.ipynb", "tests/test_shapes.py",
             "notebooks/01_linear.ipynb", suite.LONGEST_FIRST[1], suite.LONGEST_FIRST[0], "README.md"]
    assert sorted(files, key=suite.file_rank) == [
        suite.LONGEST_FIRST[0], suite.LONGEST_FIRST[1], "notebooks/01_linear.ipynb", "tests/test_shapes.py",
        "solutions/01_linear_exercises.ipynb", "exercises/01_linear_exercises.ipynb", "README.md"]


def test_xdist_reordering_by_test_count_is_turned_off():
    config = SimpleNamespace(option=SimpleNamespace(loadscopereorder=True))
    suite.pytest_configure(config)
    assert config.option.loadscopereorder is False
    bare = SimpleNamespace(option=SimpleNamespace())  # without xdist: nothing to turn off, no error
    suite.pytest_configure(bare)
    assert not hasattr(bare.option, "loadscopereorder")


def test_items_are_sorted_by_file_and_keep_their_order_within_a_file():
    items = [SimpleNamespace(path=ROOT / p, name=n) for p, n in [
        ("tests/test_shapes.py", "a"), ("notebooks/01_linear.ipynb", "c0"), ("tests/test_shapes.py", "b"),
        (suite.LONGEST_FIRST[0], "x"), ("notebooks/01_linear.ipynb", "c1"), ("/elsewhere/test_y.py", "y")]]
    suite.pytest_collection_modifyitems(None, items)
    assert [i.name for i in items] == ["x", "c0", "c1", "a", "b", "y"]
