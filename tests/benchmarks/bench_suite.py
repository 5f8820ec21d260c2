"""Benchmark of the suite's exercise notebooks (issue 22, item 7): the "not attempted" check path.

Every check cell of ``exercises/`` calls ``check(question_id, stub)`` on a stub that raises
``NotImplementedError``. The old path built every reference answer (and, for a module answer,
paid torch's one-off meta set-up, which imports ``torch._dynamo``) before finding out; the new
path calls the stub once and stops. Per chapter, one fresh process (one exercise notebook's
kernel) checks a stub of each of its questions, once the old way (``run_cases`` after
``warm_up``, then ``reference_answers``, then ``judge``: what ``check`` did) and once the new way
(``check``); the CPU seconds of each process are compared. Fresh processes, fastest of
``ROUNDS``: on a shared 2-core machine the minimum is the least noisy estimate.

Target: the new path costs at most half the old one over all chapters.

Run: ``make bench`` (all sections) or ``python tests/benchmarks/bench_suite.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROUNDS = 1
TARGET = 0.5
CHAPTERS: tuple[str, ...] | None = None  # None: every chapter; `make bench` (quick) measures a few

CHILD = r"""
import contextlib, io, json, resource, sys
import torch
from helpers.checks import check, checker_rng
from helpers.checks.registry import make_cases, questions_for_chapter
from helpers.checks.protocol import run_cases
from helpers.checks.verdict import judge, probes, reference_answers
from helpers.checks.module_answer import warm_up

def stub(*args, **kwargs):
    raise NotImplementedError("replace this line with your code")

def old(q):  # what check() did before: warm-up, every reference, then the verdict
    cases = make_cases(q, checker_rng(q.id))
    pr = probes(q, cases)
    if pr is not None:
        warm_up()
    outcomes = run_cases(stub, cases, q.timeout, probes=pr)
    return judge(q, cases, outcomes, reference_answers(q, cases)).status

def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime

way, chapter = sys.argv[1], sys.argv[2]
start = cpu()
statuses = []
with contextlib.redirect_stdout(io.StringIO()):
    for q in questions_for_chapter(chapter):
        statuses.append(old(q) if way == "old" else check(q.id, stub).status)
print(json.dumps({"cpu": cpu() - start, "statuses": sorted(set(statuses)), "n": len(statuses)}))
"""


def _run(way: str, chapter: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", CHILD, way, chapter], cwd=ROOT, capture_output=True,
                          text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{way} {chapter} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> bool:
    sys.path.insert(0, str(ROOT))
    from helpers.checks.registry import chapters  # noqa: PLC0415

    total = {"old": 0.0, "new": 0.0}
    print(f"{'chapter':>7} {'questions':>9} {'old CPU s':>10} {'new CPU s':>10} {'new/old':>8}")
    for chapter in CHAPTERS or chapters():
        best = {}
        for way in ("old", "new"):
            runs = [_run(way, chapter) for _ in range(ROUNDS)]
            if any(r["statuses"] != ["not_attempted"] for r in runs):
                print(f"{chapter}: a stub was not reported 'not attempted' ({way}): {runs}")
                return False
            best[way] = min(r["cpu"] for r in runs)
            total[way] += best[way]
        print(f"{chapter:>7} {runs[0]['n']:>9} {best['old']:>10.2f} {best['new']:>10.2f} "
              f"{best['new'] / best['old']:>8.2f}")
    ratio = total["new"] / total["old"]
    measured = len(CHAPTERS) if CHAPTERS else len(chapters())
    print(f"suite ({measured} of {len(chapters())} chapters): exercises' check cells, "
          f"new/old CPU = {total['new']:.1f} s / {total['old']:.1f} s = {ratio:.2f} "
          f"(target ≤ {TARGET}; CPU time of the checks only, after `import torch`)")
    return ratio <= TARGET


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
