"""Benchmark of the grader's fork server (issue 24 item 11): seconds per submission, before and after.

30 copies of the full ``solutions/05_rnn_bptt_exercises.ipynb`` (its cells import torch, and one
question's answer is an ``nn.Module``), 2 jobs, bubblewrap, graded once with a fresh sandbox per
submission (*before*: Python + IPython + torch started for each) and once with one fork server per
job (*after*: each submission a fresh child in namespaces of its own). The machine is shared, so the
two modes alternate in rounds of 15 copies (before, after, before, after) and each mode's time is
the sum of its rounds, start-up of the batch included (reference answers, the servers' imports).
Every copy must score full marks in both modes.

Target: ≤ 0.6 s per submission with the fork server.

Run: ``make bench`` (all sections) or ``python tests/benchmarks/bench_grade_forkserver.py [N] [JOBS]``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TARGET_SECONDS = 0.6
ROUND = 15


def main(copies: int = 30, jobs: int = 2) -> bool:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import os

    from helpers import grade as grader
    from helpers.grading.run import kernel_python
    from helpers.grading.sandbox import unavailable_reason

    reason = unavailable_reason(kernel_python()) or (None if os.geteuid() == 0 else "the grader does not run as root")
    if reason is not None:
        print(f"skipped: no fork server here ({reason})")
        return True
    from tests.benchmarks._alternate import alternate, copies_of

    def full_marks(fork_server: bool, batch: list[Path]) -> int:
        reports = grader.grade_class(batch, jobs=jobs, progress=False, fork_server=fork_server).reports
        return sum(1 for r in reports if r.status == "ok" and r.points == r.max_points)

    with tempfile.TemporaryDirectory(prefix="bench-forkserver-") as tmp:
        paths = copies_of(ROOT / "solutions" / "05_rnn_bptt_exercises.ipynb", copies, Path(tmp))
        seconds, full = alternate(paths, ROUND, (False, True), full_marks)
    for fork_server, label in ((False, "before: a fresh sandbox each"), (True, "after: fork server")):
        print(f"{label:>29}: {copies} copies, {jobs} jobs in {seconds[fork_server]:6.1f} s "
              f"({seconds[fork_server] / copies:.2f} s per submission), full marks {full[fork_server]}/{copies}")
    after = seconds[True] / copies
    ok = after <= TARGET_SECONDS and full[True] == full[False] == copies
    print(f"ratio after/before: {seconds[True] / seconds[False]:.2f}; after {after:.2f} s per submission, "
          f"target ≤ {TARGET_SECONDS} s: {'ok' if ok else 'MISSED'}")
    return ok


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    sys.exit(0 if main(*args) else 1)
