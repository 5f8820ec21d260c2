"""Benchmark of the command line (issue 12, part 8): ``python -m helpers summary`` on a small LSTM.

Target: the wall time of ::

    python -m helpers summary "nn.LSTM(20, 64, num_layers=2)" --input 5,2,20

at most 1.5 × the wall time of ``python -c "import torch"`` (what any torch command pays first).

Every command runs in a fresh process, ``ROUNDS`` times, interleaved (torch, CLI, torch, CLI, …),
and the fastest run of each is kept: on a shared 2-core machine the minimum is the least noisy
estimate. To say where the time goes, one more fresh process times the CLI's steps in-process
(import torch, import the CLI and `helpers.trace`, the ``main`` call) and records the modules that
``main`` imported; a last one times ``import sympy`` then ``import torch._dynamo`` after
``import torch`` — the lazy imports torch's meta decompositions trigger on the first traced call
(``torch._prims_common.elementwise_dtypes`` imports sympy, ``torch._compile`` imports torch._dynamo).

Run: ``make bench`` (all sections) or ``python tests/benchmarks/bench_cli.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
ROUNDS = 3
TARGET = 1.5
EXPRESSION, SHAPE = "nn.LSTM(20, 64, num_layers=2)", "5,2,20"
COMMANDS = {
    "import torch": [sys.executable, "-c", "import torch"],
    "CLI small LSTM": [sys.executable, "-m", "helpers", "summary", EXPRESSION, "--input", SHAPE],
    "CLI --help": [sys.executable, "-m", "helpers", "summary", "--help"],
}
HEAVY = ("torch._dynamo", "sympy", "transformers", "matplotlib", "ipywidgets", "pandas", "IPython")


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=_env(), check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return elapsed


def steps() -> dict[str, Any]:
    """Executed in a child process: the CLI's steps, timed in-process."""
    import contextlib  # noqa: PLC0415
    import io  # noqa: PLC0415

    t0 = time.perf_counter()
    import torch  # noqa: PLC0415,F401

    t1 = time.perf_counter()
    from helpers import cli, trace  # noqa: PLC0415,F401

    t2 = time.perf_counter()
    before = set(sys.modules)
    with contextlib.redirect_stdout(io.StringIO()):
        code = cli.main(["summary", EXPRESSION, "--input", SHAPE])
    t3 = time.perf_counter()
    new = set(sys.modules) - before
    with contextlib.redirect_stdout(io.StringIO()):
        cli.main(["summary", EXPRESSION, "--input", SHAPE])  # again: everything it needs is imported now
    t4 = time.perf_counter()
    return {"import_torch": t1 - t0, "import_cli": t2 - t1, "main": t3 - t2, "main_warm": t4 - t3, "code": code,
            "heavy_in_main": sorted(h for h in HEAVY if h in new),
            "heavy_at_import": sorted(h for h in HEAVY if h in before), "new_modules": len(new)}


def lazy_imports() -> dict[str, float]:
    """Executed in a child process: what the lazy imports of the first traced call cost."""
    import torch  # noqa: PLC0415,F401

    t0 = time.perf_counter()
    import sympy  # noqa: PLC0415,F401 - first, as in the traced call (torch._prims_common imports it)

    t1 = time.perf_counter()
    import torch._dynamo  # noqa: PLC0415,F401

    return {"sympy": t1 - t0, "dynamo": time.perf_counter() - t1}


def child(what: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, f"--{what}"], cwd=ROOT, capture_output=True, text=True,
                         env=_env(), check=False)
    if out.returncode != 0:
        raise RuntimeError(f"bench_cli --{what} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> bool:
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(ROUNDS):
        for name, cmd in COMMANDS.items():
            times[name].append(wall(cmd))
    best = {name: min(ts) for name, ts in times.items()}
    parts = min((child("steps") for _ in range(2)), key=lambda r: r["import_torch"] + r["import_cli"] + r["main"])
    lazy = min((child("lazy") for _ in range(2)), key=lambda r: r["dynamo"] + r["sympy"])

    print(f"fresh process per command, best of {ROUNDS} interleaved rounds; wall-clock seconds; "
          f"OMP_NUM_THREADS={_env()['OMP_NUM_THREADS']}")
    for name, ts in times.items():
        print(f"  {name:<16}{best[name]:>7.2f} s   (runs: {', '.join(f'{t:.2f}' for t in ts)})")
    ratio = best["CLI small LSTM"] / best["import torch"]
    print(f"\nCLI small LSTM / import torch: {ratio:.2f}×   (target ≤ {TARGET}×)")
    print(f"CLI --help / import torch: {best['CLI --help'] / best['import torch']:.2f}×   "
          f"(torch is not imported for --help or argument errors)")
    print("\nwhere the CLI's time goes (one more fresh process, timed in-process):")
    print(f"  import torch                      {parts['import_torch']:6.2f} s")
    print(f"  import helpers.cli, helpers.trace {parts['import_cli']:6.2f} s   "
          f"heavy modules loaded by then: {', '.join(parts['heavy_at_import']) or 'none'}")
    print(f"  cli.main (parse, build, summary)  {parts['main']:6.2f} s   "
          f"imported {parts['new_modules']} modules, heavy: {', '.join(parts['heavy_in_main']) or 'none'}")
    print(f"  cli.main again, same process      {parts['main_warm']:6.2f} s   (what the CLI itself does: parse, "
          f"build on meta, trace, print)")
    lazy_cost = parts["main"] - parts["main_warm"]
    print(f"  → the first call's one-time cost: {lazy_cost:.2f} s, the lazy import of {parts['new_modules']} modules, "
          f"among them sympy {lazy['sympy']:.2f} s and "
          f"torch._dynamo {lazy['dynamo']:.2f} s (each timed alone after import torch), pulled in by torch's meta "
          f"decompositions during the trace (helpers.trace), not by the CLI")
    without = (best["CLI small LSTM"] - lazy_cost) / best["import torch"]
    print(f"  → without them the ratio would be ≈ {without:.2f}×")
    ok = ratio <= TARGET
    print(f"\n[{'PASS' if ok else 'FAIL'}] CLI small-LSTM wall time ≤ {TARGET} × import torch: {ratio:.2f}×")
    return ok


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    if len(sys.argv) == 2 and sys.argv[1] in ("--steps", "--lazy"):
        print(json.dumps(steps() if sys.argv[1] == "--steps" else lazy_imports()))
    else:
        sys.exit(0 if main() else 1)
