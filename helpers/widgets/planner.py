""""Will it fit?" explorer over `helpers.planner.plan_memory`, with a stacked bar per ZeRO stage.

Three layers, as in `helpers.widgets.attention`:

* `explore_plan(...)` — pure logic (no ipywidgets, no matplotlib): a `PlanExploration` holding
  the `MemoryPlan` of the chosen setting and one per ZeRO stage 0–3 for the bar chart;
* `draw_plan(exploration)` — matplotlib: per-GPU GiB stacked by part (weights, grads, optimizer,
  activations, KV cache), one bar per ZeRO stage, the GPU's memory as a line;
* `planner_explorer(**initial)` — the ipywidgets UI.

Models are `helpers.formulas.decoder_lm_params` configs (Hugging Face field names) of published
checkpoints (`PLANNER_MODELS`); the numbers there are the checkpoints' config.json values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from helpers.planner import GIB, PARTS, MemoryPlan, plan_memory
from helpers.scale import OPTIMIZERS, PRECISIONS, RECOMPUTE
from helpers.widgets._ui import STYLE, assemble, figure_pane, show_figure

__all__ = ["PLANNER_MODELS", "PlanExploration", "explore_plan", "draw_plan", "planner_explorer", "PLANNER_CSS_CLASS"]

PLANNER_CSS_CLASS = "dp-planner-output"

#: decoder_lm_params arguments of a few published checkpoints (their config.json values)
PLANNER_MODELS: dict[str, dict[str, Any]] = {
    "Llama-2-7B": dict(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                       num_attention_heads=32),
    "Llama-2-13B": dict(vocab_size=32000, hidden_size=5120, intermediate_size=13824, num_hidden_layers=40,
                        num_attention_heads=40),
    "Llama-2-70B": dict(vocab_size=32000, hidden_size=8192, intermediate_size=28672, num_hidden_layers=80,
                        num_attention_heads=64, num_key_value_heads=8),
    "Llama-3-8B": dict(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                       num_attention_heads=32, num_key_value_heads=8),
    "Mixtral-8x7B": dict(vocab_size=32000, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                         num_attention_heads=32, num_key_value_heads=8, num_local_experts=8,
                         num_experts_per_tok=2),
}
COLORS = {"weights": "tab:blue", "grads": "tab:orange", "optimizer": "tab:green", "activations": "tab:red",
          "kv_cache": "tab:purple"}


@dataclass(frozen=True)
class PlanExploration:
    """What the explorer shows: the chosen plan, the plans of ZeRO stages 0–3, and text."""

    settings: dict[str, Any]
    plan: Optional[MemoryPlan]
    by_stage: dict[int, MemoryPlan]
    output_text: str
    details: str
    error: Optional[str]


def explore_plan(model: str = "Llama-2-7B", **settings: Any) -> PlanExploration:
    """Everything the planner explorer displays; never raises for a bad setting (see `error`).

    `settings` are `plan_memory` keyword arguments (precision, optimizer, zero_stage, num_gpus,
    micro_batch_size, seq_len, recompute, gpu_memory_gib, mode).
    """
    everything = {"model": model, **settings}
    try:
        config = PLANNER_MODELS[model]
        plan = plan_memory(config, **settings)
        by_stage = {st: plan_memory(config, **{**settings, "zero_stage": st}) for st in range(4)}
    except (KeyError, ValueError) as exc:
        error = f"unknown model {model!r}" if isinstance(exc, KeyError) else str(exc)
        return PlanExploration(everything, None, {}, f"⚠ {error}", "", error)
    verdict = "fits ✔" if plan.fits else "does NOT fit ✘"
    parts = " + ".join(f"{name} {nbytes / GIB:.1f}" for name, nbytes in plan.parts.items() if nbytes)
    text = (f"{model}: {parts} = {plan.total / GIB:.1f} GiB per GPU → {verdict} in "
            f"{plan.gpu_memory_bytes / GIB:.0f} GiB")
    return PlanExploration(everything, plan, by_stage, text, "\n".join(plan.assumptions), None)


def draw_plan(exploration: PlanExploration, ax: Any = None) -> Any:
    """Stacked bars of per-GPU GiB by part for ZeRO stages 0–3; the chosen stage is outlined."""
    import matplotlib.pyplot as plt  # noqa: PLC0415

    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.6))
    stages = sorted(exploration.by_stage)
    bottom = [0.0] * len(stages)
    for part in PARTS:
        heights = [exploration.by_stage[s].parts[part] / GIB for s in stages]
        if any(heights):
            ax.bar([f"stage {s}" for s in stages], heights, bottom=bottom, color=COLORS[part], label=part)
            bottom = [b + h for b, h in zip(bottom, heights)]
    if exploration.plan is not None:
        chosen = exploration.settings.get("zero_stage", 0)
        ax.bar(f"stage {chosen}", bottom[stages.index(chosen)], fill=False, edgecolor="black", linewidth=2)
        ax.axhline(exploration.plan.gpu_memory_bytes / GIB, color="black", linestyle="--", label="GPU memory")
    ax.set(ylabel="GiB per GPU", title=f"{exploration.settings.get('model')}: per-GPU memory by ZeRO stage")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.figure.tight_layout()
    return ax


def planner_explorer(**initial: Any) -> Any:
    """An ipywidgets explorer over `plan_memory`; keyword arguments set the initial values."""
    import ipywidgets as w  # noqa: PLC0415

    def dropdown(name: str, options: list, default: Any) -> Any:
        return w.Dropdown(options=options, value=initial.get(name, default), description=name, style=STYLE)

    controls = {
        "model": dropdown("model", list(PLANNER_MODELS), "Llama-2-7B"),
        "mode": dropdown("mode", ["train", "inference"], "train"),
        "precision": dropdown("precision", list(PRECISIONS), "mixed"),
        "optimizer": dropdown("optimizer", list(OPTIMIZERS), "adamw"),
        "zero_stage": dropdown("zero_stage", [0, 1, 2, 3], 0),
        "num_gpus": dropdown("num_gpus", [2 ** i for i in range(11)], 8),
        "micro_batch_size": dropdown("micro_batch_size", [1, 2, 4, 8, 16, 32], 1),
        "seq_len": dropdown("seq_len", [256, 512, 1024, 2048, 4096, 8192, 32768], 2048),
        "recompute": dropdown("recompute", list(RECOMPUTE), "none"),
        "gpu_memory_gib": dropdown("gpu_memory_gib", [16, 24, 40, 48, 80, 141], 80),
    }
    output_line = w.HTML()
    output_line.add_class(PLANNER_CSS_CLASS)
    details = w.HTML()
    plot = figure_pane()

    def state() -> PlanExploration:
        return explore_plan(**{k: c.value for k, c in controls.items()})

    def refresh(*_: Any) -> None:
        e = state()
        output_line.value = f"<b>{e.output_text}</b>"
        details.value = "<br>".join(f"<code>{line}</code>" for line in e.details.splitlines())
        if e.plan is not None:
            show_figure(plot, draw_plan(e).figure)

    return assemble("Will it fit? — per-GPU memory planner", controls, [output_line, details, plot], refresh, state)
