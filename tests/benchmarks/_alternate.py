"""Shared by the grader's A/B benchmarks (bench_grade_sandbox, bench_grade_forkserver): copies of one
notebook graded under two modes that alternate in rounds, so drift in a shared machine's background
load hits both alike. Not a section: ``run.py`` only runs ``bench_*.py``."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Callable, Hashable, Sequence


def copies_of(notebook: Path, count: int, folder: Path) -> list[Path]:
    """`count` copies of `notebook` in `folder`, named ``<chapter>_student_<i>.ipynb``."""
    paths = []
    for i in range(count):
        path = folder / f"{notebook.name[:2]}_student_{i:02d}.ipynb"
        shutil.copyfile(notebook, path)
        paths.append(path)
    return paths


def alternate(paths: list[Path], round_size: int, modes: Sequence[Hashable],
              full_marks: Callable[[Hashable, list[Path]], int]) -> tuple[dict, dict]:
    """Grade `paths` in rounds of `round_size`, each round once per mode in `modes`' order;
    ``full_marks(mode, batch)`` grades a batch and returns how many scored full marks.
    Returns (seconds per mode, summed over its rounds; full marks per mode)."""
    seconds = dict.fromkeys(modes, 0.0)
    full = dict.fromkeys(modes, 0)
    for start in range(0, len(paths), round_size):
        batch = paths[start:start + round_size]
        for mode in modes:
            began = time.perf_counter()
            full[mode] += full_marks(mode, batch)
            seconds[mode] += time.perf_counter() - began
    return seconds, full
