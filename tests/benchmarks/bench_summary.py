"""Benchmark of `helpers.trace.summary` (issue 3, part 8), side by side with torchinfo.

Cases, each measured in a FRESH subprocess so that its peak RSS is its own:

* ``summary`` on a GPT-2-small-shaped model (`helpers.models.gpt.GPT`, 124,439,808 params,
  tied head) built on the meta device, input (1, 1024) token ids;
* ``torchinfo.summary`` on the same model and input, also on meta (torchinfo 1.8 runs there);
* ``summary`` on a Llama-2-7B-shaped model (`helpers.models.llama.Llama`, 6,738,415,616 params)
  built on meta, input (1, 4096) token ids.

Times: ``first`` is the first call in the process (what a student waits for), ``best`` the best
of a few more calls; both wall-clock and CPU (process) time are shown, CPU time being the less
noisy one on a shared 2-core machine. Each case runs in ``ROUNDS`` fresh processes, interleaved
with the other cases, and the round with the lower first-call CPU time is reported. Peak RSS (``ru_maxrss``) includes the Python interpreter
and ``import torch`` (shown as ``baseline``).

Issue 12 adds models built on the CPU (real weights): a GPT-2-small-shaped `GPT` and a
ResNet-50-shaped Hugging Face ``ResNetModel`` (transformers' default ResNetConfig is ResNet-50),
each with ``summary`` (default: traced on meta), ``torchinfo.summary`` (runs the CPU forward), and
``summary(..., device="cpu")`` against a plain forward ``model(x)`` of the same input.

Targets: Llama-2-7B summary ≤ 5 s and ≤ 1 GB peak RSS; GPT-2 summary not slower than torchinfo;
first-call summary ≤ torchinfo's first call on the CPU-built GPT-2 and ResNet-50 (ratios printed);
a CPU summary ≤ 1.5 × a plain forward (best of the repeats).

Run: ``make bench`` (all sections) or ``python tests/benchmarks/bench_summary.py``.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
REPEATS = 3  # calls after the first, in the same process
ROUNDS = 2  # fresh processes per case, interleaved (s, t, l, s, t, l); the faster round is kept
CASES = {  # name: (tool, model, T, where the model is built)
    "summary-gpt2": ("summary", "gpt2", 1024, "meta"),
    "torchinfo-gpt2": ("torchinfo", "gpt2", 1024, "meta"),
    "summary-llama7b": ("summary", "llama7b", 4096, "meta"),
    "summary-gpt2-cpu": ("summary", "gpt2", 256, "cpu"),
    "torchinfo-gpt2-cpu": ("torchinfo", "gpt2", 256, "cpu"),
    "summary-resnet50-cpu": ("summary", "resnet50", 224, "cpu"),
    "torchinfo-resnet50-cpu": ("torchinfo", "resnet50", 224, "cpu"),
    "cpusummary-resnet50-cpu": ("cpu-summary", "resnet50", 224, "cpu"),
    "forward-resnet50-cpu": ("forward", "resnet50", 224, "cpu"),
    "cpusummary-gpt2-cpu": ("cpu-summary", "gpt2", 256, "cpu"),
    "forward-gpt2-cpu": ("forward", "gpt2", 256, "cpu"),
}
MODEL_NAMES = {"gpt2": "GPT-2 small", "llama7b": "Llama-2-7B", "resnet50": "ResNet-50"}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def run_case(name: str) -> dict[str, Any]:
    """Executed in the child process: build the model on meta and time the tool."""
    import torch  # noqa: PLC0415

    tool, model_name, T, where = CASES[name]
    if tool == "torchinfo":
        import torchinfo  # noqa: PLC0415,F401
    from helpers.trace import summary  # noqa: PLC0415

    torch.manual_seed(0)
    baseline = _rss_mb()
    w0, c0 = _clock()
    with torch.device(where):
        if model_name == "gpt2":
            from helpers.models.gpt import GPT, GPTConfig  # noqa: PLC0415

            model = GPT(GPTConfig())
        elif model_name == "resnet50":
            from transformers import ResNetConfig, ResNetModel  # noqa: PLC0415

            model = ResNetModel(ResNetConfig())  # the default config is ResNet-50
        else:
            from helpers.models.llama import Llama, LlamaConfig  # noqa: PLC0415

            model = Llama(LlamaConfig())
    model.eval()
    w1, c1 = _clock()
    x = torch.randn(1, 3, T, T) if model_name == "resnet50" else torch.randint(0, 50257, (1, T))

    def once() -> dict[str, Any]:
        if tool in ("summary", "cpu-summary"):
            s = summary(model, example_inputs=x, device="cpu" if tool == "cpu-summary" else "meta")
            return {"params": s.total_params, "flops": s.total_flops, "rows": len(s.rows)}
        if tool == "forward":
            model(x)
            return {"params": sum(p.numel() for p in model.parameters())}
        import torchinfo  # noqa: PLC0415

        s = torchinfo.summary(model, input_data=x.to(where), device=where, verbose=0)
        return {"params": s.total_params, "macs_torchinfo": s.total_mult_adds}

    times = []
    info: dict[str, Any] = {}
    for _ in range(1 + REPEATS):
        a, b = _clock()
        info = once()
        z, y = _clock()
        times.append((z - a, y - b))
    return {"case": name, "tool": tool, "model": model_name, "T": T, "baseline_mb": baseline,
            "build_s": w1 - w0, "build_cpu_s": c1 - c0,
            "first_s": times[0][0], "first_cpu_s": times[0][1],
            "best_s": min(t[0] for t in times[1:]), "best_cpu_s": min(t[1] for t in times[1:]),
            "peak_mb": _rss_mb(), **info}


def measure(name: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--case", name], capture_output=True, text=True,
                         cwd=ROOT, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"case {name} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> bool:
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in CASES}
    for _ in range(ROUNDS):
        for name in CASES:
            runs[name].append(measure(name))
    results = {name: min(rs, key=lambda r: r["first_cpu_s"]) for name, rs in runs.items()}
    for name, rs in runs.items():
        results[name]["peak_mb"] = max(r["peak_mb"] for r in rs)
    header = (f"{'case':<36}{'T':>6}{'build':>8}{'first':>8}{'(cpu)':>8}{'best':>8}{'(cpu)':>8}"
              f"{'peak RSS':>10}{'params':>16}")
    print(f"fresh process per case (best of {ROUNDS} rounds); models built on meta; batch 1; times in s, RSS in MB "
          f"(baseline after imports ≈ {min(r['baseline_mb'] for r in results.values()):.0f} MB)")
    print(header)
    print("-" * len(header))
    for r in results.values():
        label = f"{r['tool']} {MODEL_NAMES[r['model']]} ({CASES[r['case']][3]})"
        print(f"{label:<36}{r['T']:>6}{r['build_s']:>8.2f}{r['first_s']:>8.2f}{r['first_cpu_s']:>8.2f}"
              f"{r['best_s']:>8.2f}{r['best_cpu_s']:>8.2f}{r['peak_mb']:>10.0f}{r['params']:>16,}")
    s, t, big = results["summary-gpt2"], results["torchinfo-gpt2"], results["summary-llama7b"]
    print()
    print(f"summary/torchinfo on GPT-2: first call {s['first_s'] / t['first_s']:.2f}× wall, "
          f"{s['first_cpu_s'] / t['first_cpu_s']:.2f}× cpu; best {s['best_s'] / t['best_s']:.2f}× wall, "
          f"{s['best_cpu_s'] / t['best_cpu_s']:.2f}× cpu   (< 1 = summary faster)")
    print(f"peak RSS summary/torchinfo on GPT-2: {s['peak_mb'] / t['peak_mb']:.2f}×")
    print(f"Llama-2-7B/GPT-2 summary time: {big['first_s'] / s['first_s']:.1f}× "
          f"for {big['params'] / s['params']:.0f}× the parameters and {big['flops'] / s['flops']:.0f}× the FLOPs")
    print(f"params: summary {s['params']:,} (tied head once) vs torchinfo {t['params']:,} "
          f"(counts the tied lm_head/wte matrix twice: +{t['params'] - s['params']:,})")
    print(f"FLOPs GPT-2 (T={s['T']}): summary {s['flops']:,} (= 2·MACs, {s['flops'] // 2:,} MACs); "
          f"torchinfo 'mult-adds' {t['macs_torchinfo']:,}")
    ratios = {}
    for model in ("gpt2", "resnet50"):
        sm, ti = results[f"summary-{model}-cpu"], results[f"torchinfo-{model}-cpu"]
        cs, fw = results[f"cpusummary-{model}-cpu"], results[f"forward-{model}-cpu"]
        # checked on CPU (process) time: wall time on a shared 2-core machine mostly measures the neighbours
        ratios[model] = (sm["first_cpu_s"] / ti["first_cpu_s"], cs["best_cpu_s"] / fw["best_cpu_s"])
        print(f"{MODEL_NAMES[model]} built on CPU: first summary / first torchinfo = {ratios[model][0]:.2f}× cpu "
              f"({sm['first_s'] / ti['first_s']:.2f}× wall); summary(device='cpu') / plain forward = "
              f"{ratios[model][1]:.2f}× cpu ({cs['best_s'] / fw['best_s']:.2f}× wall; best of {REPEATS})")
    checks = [
        ("Llama-2-7B summary ≤ 5 s (first call, wall)", big["first_s"] <= 5.0, f"{big['first_s']:.2f} s"),
        ("Llama-2-7B summary ≤ 1 GB peak RSS", big["peak_mb"] <= 1024, f"{big['peak_mb']:.0f} MB"),
        ("GPT-2 summary not slower than torchinfo (best, cpu)", s["best_cpu_s"] <= t["best_cpu_s"] * 1.05,
         f"{s['best_cpu_s']:.3f} s vs {t['best_cpu_s']:.3f} s"),
        *[(f"{MODEL_NAMES[m]} (CPU-built): first summary ≤ torchinfo's first call (cpu)", r[0] <= 1.0, f"{r[0]:.2f}×")
          for m, r in ratios.items()],
        *[(f"{MODEL_NAMES[m]}: summary(device='cpu') ≤ 1.5 × plain forward (cpu)", r[1] <= 1.5, f"{r[1]:.2f}×")
          for m, r in ratios.items()],
    ]
    print()
    for what, ok, value in checks:
        print(f"[{'PASS' if ok else 'FAIL'}] {what}: {value}")
    return all(ok for _, ok, _ in checks)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--case":
        sys.path.insert(0, str(ROOT))
        print(json.dumps(run_case(sys.argv[2])))
    else:
        sys.path.insert(0, str(ROOT))
        sys.exit(0 if main() else 1)
