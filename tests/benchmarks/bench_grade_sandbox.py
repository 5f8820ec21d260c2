"""Benchmark of the grader's sandbox (issue 11, part 5): throughput with and without bubblewrap.

30 copies of the full ``solutions/01_linear_exercises.ipynb`` (it imports torch, as a real
submission would), 2 jobs, graded once in a bubblewrap sandbox each and once with
``--no-sandbox``. The machine is shared, so the two modes alternate in rounds of 10 copies
(sandbox, none, sandbox, none, …) and each mode's time is the sum of its rounds: drift in the
background load hits both alike. Every copy must score full marks in both modes.

Target: sandbox overhead ≤ 20 % per submission (sandboxed time / plain time − 1).

Run: ``make bench`` (all sections) or ``python tests/benchmarks/bench_grade_sandbox.py [N] [JOBS]``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TARGET_OVERHEAD = 0.20
ROUND = 10


def main(copies: int = 30, jobs: int = 2) -> bool:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from helpers import grade as grader
    from helpers.grading.csvlog import TOTAL
    from helpers.grading.run import kernel_python
    from helpers.grading.sandbox import unavailable_reason

    reason = unavailable_reason(kernel_python())
    if reason is not None:
        print(f"skipped: no sandbox can be created here ({reason})")
        return True
    from tests.benchmarks._alternate import alternate, copies_of

    def full_marks(sandbox: bool, batch: list[Path]) -> int:
        # a fresh sandbox per submission, as the docstring says: the fork server has its own bench
        rows, _ = grader.grade(batch, jobs=jobs, progress=False, sandbox=sandbox, fork_server=False)
        return sum(1 for r in rows if r.question == TOTAL and r.status == "ok" and r.points == r.max_points)

    with tempfile.TemporaryDirectory(prefix="bench-sandbox-") as tmp:
        paths = copies_of(ROOT / "solutions" / "01_linear_exercises.ipynb", copies, Path(tmp))
        seconds, full = alternate(paths, ROUND, (True, False), full_marks)
    overhead = seconds[True] / seconds[False] - 1
    for sandbox in (True, False):
        print(f"{'bubblewrap' if sandbox else 'no sandbox':>10}: {copies} copies, {jobs} jobs in {seconds[sandbox]:6.1f} s "
              f"({seconds[sandbox] / copies:.2f} s per submission), full marks {full[sandbox]}/{copies}")
    ok = overhead <= TARGET_OVERHEAD and full[True] == full[False] == copies
    print(f"sandbox overhead: {100 * overhead:+.1f} % per submission (ratio {seconds[True] / seconds[False]:.2f}); "
          f"target ≤ {100 * TARGET_OVERHEAD:.0f} %: {'ok' if ok else 'MISSED'}")
    return ok


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    sys.exit(0 if main(*args) else 1)
