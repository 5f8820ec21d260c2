"""Suite-wide pytest set-up (tests/, and nbval on notebooks/, solutions/, exercises/): the order files run in.

`make test` runs ``pytest -n 2 --dist loadfile``: each file is one unit of work, handed to whichever of
the 2 workers is free. The wall time is set by the last unit to finish, so the longest files must
start first and the short ones fill in at the end (longest-processing-time-first scheduling).
pytest-xdist's own order puts the files with the most tests first — the browser test (3 tests, the
longest file) then starts near the end and runs alone on one worker while the other sits idle.

So here: :data:`LONGEST_FIRST` (the files that take ≥ 5 s, longest first, measured with ``--junitxml``),
then the chapter notebooks (5–10 s each), then every other test file, then solutions/ and exercises/
if nbval is asked to run them (1–4 s each; `make test` runs them in tests/_one_kernel.py); collection order within each group and within each file is kept. xdist's re-ordering by
test count is turned off so that this order is the one its scheduler sees. A file missing from the list
only runs later than it should: nothing is skipped, the suite is just slower than it could be.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent

# Measured 2026-12-07 17:31 UTC (seconds per file on one worker of 2, junit, fresh clone's `make test`, warm kernels;
# import torch 1.6 s): grade_forkserver 40, browser 27, nbgrader 14, site 14, grade 13, lab_setup 13, checks 12, … ≥ 4.5 s.
LONGEST_FIRST = [
    "tests/test_grade_forkserver.py", "tests/test_browser.py", "tests/test_nbgrader.py", "tests/test_site.py",
    "tests/test_grade.py", "tests/test_lab_setup.py", "tests/test_checks.py", "tests/test_solutions_run.py",
    "tests/test_parallelism.py", "tests/test_warm_kernel.py", "tests/test_distributed.py",
    "notebooks/16_parallelism.ipynb", "tests/test_report.py", "notebooks/11_capacity_and_cost.ipynb",
    "tests/test_grade_sandbox.py", "notebooks/15_inference.ipynb", "tests/test_exercises.py",
    "notebooks/13_training_at_scale.ipynb", "notebooks/09_unet.ipynb", "notebooks/14_vision_backbones.ipynb",
    "notebooks/99_cookbook.ipynb", "tests/test_dependencies.py", "notebooks/12_modern_llms.ipynb",
]
# after the list: the remaining chapter notebooks, then other tests, then the short exercise notebooks
GROUPS = ["notebooks/", "tests/", "solutions/", "exercises/"]


def file_rank(relpath: str) -> tuple[int, int]:
    """Sort key of a file (path relative to the repository, with ``/``): the listed files first, in
    the list's order, then by folder group (:data:`GROUPS`), anything else last."""
    if relpath in LONGEST_FIRST:
        return (0, LONGEST_FIRST.index(relpath))
    group = next((i for i, g in enumerate(GROUPS) if relpath.startswith(g)), len(GROUPS))
    return (1 + group, 0)


def pytest_configure(config: pytest.Config) -> None:
    # xdist would otherwise sort the files by their number of tests, undoing the order below
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


# ------------------------------------------------------------------ warm kernels (tests/_warm_kernel.py)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Each process that runs tests (each xdist worker) starts its zygote: the kernels it starts from now
    on are forked from an interpreter that has imported torch, instead of importing it each."""
    if session.items and not hasattr(session.config, "_warm_zygote"):
        from tests import _warm_kernel  # noqa: PLC0415

        zygote = session.config._warm_zygote = _warm_kernel.start()
        if zygote is not None:
            zygote.install()


def pytest_unconfigure(config: pytest.Config) -> None:
    zygote = getattr(config, "_warm_zygote", None)
    if zygote is not None:
        zygote.stop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def key(item: pytest.Item) -> tuple[int, int]:
        try:
            rel = Path(item.path).resolve().relative_to(ROOT).as_posix()
        except ValueError:  # a file outside the repository
            return (1 + len(GROUPS), 0)
        return file_rank(rel)

    items.sort(key=key)  # stable: collection order is kept within a group and within a file
