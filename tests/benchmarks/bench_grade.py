"""Benchmark of the batch grader (issue 4, part 6): grade 30 copies of the chapter-01 solution.

Each copy is the full committed ``solutions/01_linear_exercises.ipynb`` (it imports torch in its
demo cell, as a real submission would), graded exactly like ``python -m helpers.grade`` does:
one fresh process per submission, time and memory limits, verdicts in the grader, 2 jobs.
Kernel start-up (Python + IPython + torch import) dominates; nothing is reused across
submissions (isolation).

Target: ≤ 180 s on 2 cores, every copy 5/5.

A second, untimed pass grades every chapter's ``solutions/`` and ``exercises/`` notebook once:
each solution must score full marks and each untouched exercise zero (all "not attempted"),
which checks that the grader works for every chapter's questions, not just chapter 01's.

Run: ``make bench`` (all sections) or ``python tests/benchmarks/bench_grade.py [N] [JOBS]``.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TARGET_SECONDS = 180.0


def main(copies: int = 30, jobs: int = 2) -> bool:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from helpers import grade as grader
    from helpers.grading.csvlog import TOTAL, write_csv

    solution = ROOT / "solutions" / "01_linear_exercises.ipynb"
    with tempfile.TemporaryDirectory(prefix="bench-grade-") as tmp:
        paths = []
        for i in range(copies):
            path = Path(tmp) / f"01_student_{i:02d}.ipynb"
            shutil.copyfile(solution, path)
            paths.append(path)
        start = time.perf_counter()
        rows, seed = grader.grade(paths, jobs=jobs, progress=True)
        write_csv(rows, Path(tmp) / "grades.csv")
        seconds = time.perf_counter() - start
    totals = [r for r in rows if r.question == TOTAL]
    full = sum(1 for r in totals if r.points == r.max_points and r.status == "ok")
    print(f"graded {copies} copies of {solution.name} with {jobs} jobs in {seconds:.1f} s "
          f"({seconds / copies:.2f} s per submission); full marks: {full}/{copies}; "
          f"target ≤ {TARGET_SECONDS:.0f} s: {'ok' if seconds <= TARGET_SECONDS else 'MISSED'}")
    if full != copies:
        for r in totals:
            if r.points != r.max_points:
                print(f"  {r.submission}: {r.points}/{r.max_points} {r.status} {r.reason}")
    return seconds <= TARGET_SECONDS and full == copies and every_chapter(jobs)


def every_chapter(jobs: int = 2) -> bool:
    from helpers import grade as grader
    from helpers.grading.csvlog import TOTAL

    solutions = sorted((ROOT / "solutions").glob("*_exercises.ipynb"))
    exercises = [ROOT / "exercises" / p.name for p in solutions]
    start = time.perf_counter()
    rows, _ = grader.grade(solutions + exercises, jobs=jobs, progress=False)
    ok = True
    for r in rows:
        if r.question != TOTAL:
            continue
        is_solution = Path(r.submission).parent.name == "solutions"
        good = r.status == "ok" and r.points == (r.max_points if is_solution else 0)
        if not good:
            ok = False
            print(f"  UNEXPECTED {r.submission}: {r.points}/{r.max_points} {r.status} {r.reason}")
    bad_exercise_rows = [r for r in rows if r.question != TOTAL and Path(r.submission).parent.name == "exercises"
                         and r.status != "not_attempted"]
    for r in bad_exercise_rows:
        ok = False
        print(f"  UNEXPECTED {r.submission} {r.question}: {r.status} {r.reason}")
    print(f"every chapter: {len(solutions)} solutions notebooks at full marks and their exercises at zero: "
          f"{'ok' if ok else 'FAILED'} ({time.perf_counter() - start:.1f} s)")
    return ok


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    sys.exit(0 if main(*args) else 1)
