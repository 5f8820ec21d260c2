"""Benchmark of ``python -m helpers report`` (issue 28, item 5) on Llama-3-70B's config, against accelerate.

Target: the wall time of ::

    python -m helpers report examples/llama-3-70b/config.json

at most ``TARGET_SECONDS`` (3 s) on the course's 2-core machine, built on meta, and printed next to
``accelerate estimate-memory``'s own meta build of the same config. accelerate's CLI asks the Hub
for the repository's metadata first (``verify_on_hub`` → ``huggingface_hub.model_info``), so the
peer runs its own ``accelerate.commands.estimate.estimate_command`` with only that call replaced by
the local config's contents (library "transformers"): ``AutoConfig.from_pretrained`` on the local
folder, ``AutoModel.from_config`` under ``init_empty_weights``, ``calculate_maximum_sizes``, its
table — everything else is accelerate's code, unchanged, offline.

Every command runs in a fresh process, ``ROUNDS`` times, interleaved, and the fastest run of each
is kept (on a shared machine the minimum is the least noisy estimate). Two floors are timed the same
way: ``import torch`` and ``import torch`` + transformers' Llama classes (what any tool that builds a
transformers model pays before its first line of work). A last fresh process times the report's own
steps in-process, to say where the time goes.

Run: ``make bench`` (all sections) or ``python tests/benchmarks/bench_report.py``.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
ROUNDS = 3
TARGET_SECONDS = 3.0
CONFIG_DIR = ROOT / "examples" / "llama-3-70b"
CONFIG = CONFIG_DIR / "config.json"
COMMANDS = {
    "import torch": [sys.executable, "-c", "import torch"],
    "import torch + transformers' Llama": [sys.executable, "-c",
                                           "import torch, transformers; transformers.LlamaForCausalLM"],
    "ours: helpers report": [sys.executable, "-m", "helpers", "report", str(CONFIG.relative_to(ROOT))],
    "ours, --build-with-transformers": [sys.executable, "-m", "helpers", "report", str(CONFIG.relative_to(ROOT)),
                                        "--build-with-transformers"],
    "accelerate estimate-memory": [sys.executable, __file__, "--accelerate"],
}


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), "HF_HUB_OFFLINE": "1"}


def run(cmd: list[str]) -> tuple[float, float, str]:
    """Wall-clock seconds of `cmd` in a fresh process, its CPU seconds (user + sys: what a loaded machine
    inflates least), and its stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=_env(), check=False)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu, proc.stdout


def accelerate_estimate() -> None:
    """Executed in a child process: ``accelerate estimate-memory``'s own code on the local config.

    Only ``verify_on_hub`` (a Hub request) is replaced, by what the Hub would answer for this
    config: library "transformers" and the config's contents."""
    import argparse  # noqa: PLC0415
    import types  # noqa: PLC0415

    from accelerate.commands import estimate  # noqa: PLC0415

    config = json.loads(CONFIG.read_text())
    estimate.verify_on_hub = lambda repo, token=None: types.SimpleNamespace(library_name="transformers",
                                                                            config=config)
    args = argparse.Namespace(model_name=str(CONFIG_DIR), library_name="transformers", trust_remote_code=False,
                              dtypes=["float32", "float16", "int8", "int4"])
    estimate.estimate_command(args)


def steps() -> dict[str, Any]:
    """Executed in a child process: the report's steps, timed in-process."""
    t0 = time.perf_counter()
    import torch  # noqa: PLC0415,F401

    t1 = time.perf_counter()
    from helpers import cli  # noqa: PLC0415,F401
    from helpers.report import build, render, source  # noqa: PLC0415

    t2 = time.perf_counter()
    built = source.build_model(str(CONFIG))
    t3 = time.perf_counter()
    report = build.make_report(built, build.Options())
    t4 = time.perf_counter()
    render.render(report)
    t5 = time.perf_counter()
    assert not any(m.startswith("transformers") for m in sys.modules), "the mirror route imported transformers"
    import transformers  # noqa: PLC0415 - what the mirror saves: transformers' own build of the same config

    transformers.LlamaForCausalLM  # noqa: B018 - the lazy import of the modeling stack
    t6 = time.perf_counter()
    source.build_model(str(CONFIG), mirror=False)
    t7 = time.perf_counter()
    return {"steps": {"import torch": t1 - t0, "import helpers (cli, report)": t2 - t1,
                      "build on meta (80 layers, helpers.report.mirror)": t3 - t2,
                      "make_report (counts, FLOPs, memory, fit)": t4 - t3, "render": t5 - t4},
            "saved": {"import transformers' Llama stack": t6 - t5, "transformers' build on meta": t7 - t6},
            "params": report.params["total"], "weights_fp32": report.weight_bytes["fp32"]}


def child(flag: str) -> dict[str, Any]:
    _, _, out = run([sys.executable, __file__, flag])
    return json.loads(out.strip().splitlines()[-1])


def main() -> bool:
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    cpu: dict[str, list[float]] = {name: [] for name in COMMANDS}
    outputs: dict[str, str] = {}
    for _ in range(ROUNDS):
        for name, cmd in COMMANDS.items():
            elapsed, seconds, outputs[name] = run(cmd)
            times[name].append(elapsed)
            cpu[name].append(seconds)
    best = {name: min(ts) for name, ts in times.items()}
    run_steps = min((child("--steps") for _ in range(2)), key=lambda r: sum(r["steps"].values()))
    parts = run_steps["steps"]
    ours, peer = best["ours: helpers report"], best["accelerate estimate-memory"]
    floor = best["import torch + transformers' Llama"]

    print(f"Llama-3-70B ({CONFIG.relative_to(ROOT)}); fresh process per command, best of {ROUNDS} interleaved "
          f"rounds; wall-clock seconds; OMP_NUM_THREADS={_env()['OMP_NUM_THREADS']}; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for name, ts in times.items():
        print(f"  {name:<36}{best[name]:>7.2f} s   (runs: {', '.join(f'{t:.2f}' for t in ts)}; "
              f"least CPU, user + sys: {min(cpu[name]):.2f} s)")
    print(f"\nours / accelerate estimate-memory: {ours / peer:.2f}×   (accelerate builds AutoModel, without the "
          f"LM head, and prints weights only; the report adds FLOPs, KV cache, activations, training, fit)")
    least_cpu = {name: min(values) for name, values in cpu.items()}
    print(f"the same ratio in CPU seconds (user + sys, least of {ROUNDS}): "
          f"{least_cpu['ours: helpers report'] / least_cpu['accelerate estimate-memory']:.2f}×")
    print(f"ours − (import torch + transformers' Llama): {ours - floor:+.2f} s   "
          f"(accelerate: {peer - floor:+.2f} s)")
    print("\nwhere the report's time goes (one more fresh process, timed in-process):")
    for name, seconds in parts.items():
        print(f"  {name:<44}{seconds:6.2f} s")
    own = sum(v for k, v in parts.items() if k != "import torch")
    print(f"  → import torch {parts['import torch']:.2f} s, the report's own work {own:.2f} s "
          f"({run_steps['params']:,} parameters, {run_steps['weights_fp32'] / 2**30:.2f} GiB in fp32)")
    print("  what --build-with-transformers adds (the same process, afterwards): " + ", ".join(
        f"{name} {seconds:.2f} s" for name, seconds in run_steps["saved"].items()))
    slow = best["ours, --build-with-transformers"]
    print(f"  mirror / --build-with-transformers: {ours / slow:.2f}× ({ours:.2f} s vs {slow:.2f} s; the reports "
          f"are equal: tests/test_report_mirror.py)")
    acc_line = next((line for line in outputs["accelerate estimate-memory"].splitlines() if "float32" in line), "")
    print(f"  accelerate's fp32 row, for the record: {acc_line.strip()}")
    ok = ours <= TARGET_SECONDS
    print(f"\n[{'PASS' if ok else 'FAIL'}] report on Llama-3-70B ≤ {TARGET_SECONDS:g} s wall: {ours:.2f} s "
          f"(import torch alone takes {best['import torch']:.2f} s here, torch + transformers' Llama {floor:.2f} s)")
    return ok


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    if len(sys.argv) == 2 and sys.argv[1] == "--steps":
        print(json.dumps(steps()))
    elif len(sys.argv) == 2 and sys.argv[1] == "--accelerate":
        accelerate_estimate()
    else:
        sys.exit(0 if main() else 1)
