"""Memory of a built model: KV cache forms, training and inference per GPU, fits / the largest that fits.

* decoder LMs train with `helpers.planner.plan_memory` (its weights, grads, optimizer and activations
  parts, its assumptions); everything else with the same building blocks of `helpers.scale`
  (`model_state_bytes_per_param`, `zero_model_state_bytes`) plus the traced activations;
* the KV cache in every form chapter 15 counts comes from `helpers.cost.kv_cache_bytes_from_config`;
* DeepSpeed's accounting of model states (``estimate_zero2/3_model_states_mem_needs``: 18 bytes per
  parameter sharded, 2 not; ZeRO-3 plus 4 bytes per parameter of the largest layer) is kept apart
  from ours (ZeRO paper §3.1: 16 bytes) so the two can be compared number for number.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from helpers import cost, scale
from helpers.planner import GIB, plan_memory
from helpers.report.schema import KVForm, MemoryEstimate

__all__ = ["kv_forms", "deepspeed_model_states", "decoder_training", "other_training", "decoder_inference",
           "other_inference", "largest_fitting", "precision_of"]

MAX_SEARCH = 2 ** 30  # the largest batch or context the search tries


def precision_of(dtype: str) -> str:
    """The planner's precision for a --dtype: fp32 → "fp32", 16-bit → "mixed" (16-bit compute, fp32 master)."""
    return "fp32" if dtype == "fp32" else "mixed"


def largest_fitting(fits: Callable[[int], bool], start: int = 1) -> int:
    """The largest n ≥ 1 with fits(n) (fits must be monotone), 0 if not even `start`, capped at MAX_SEARCH."""
    if not fits(start):
        return 0
    lo, hi = start, start * 2
    while hi <= MAX_SEARCH and fits(hi):
        lo, hi = hi, hi * 2
    hi = min(hi, MAX_SEARCH + 1)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


def kv_forms(config: dict[str, Any], seq_len: int, batch: int, bytes_per_element: float) -> list[KVForm]:
    """The KV cache as configured, then quantised (int8, int4), paged, and the forms the config avoids."""
    def kv(t: int, b: int, cfg: dict[str, Any] = config, **kw: Any) -> float:
        kw.setdefault("bytes_per_element", bytes_per_element)
        return cost.kv_cache_bytes_from_config(cfg, t, b, **kw)

    heads = config.get("num_attention_heads") or config.get("n_head")
    kv_heads = config.get("num_key_value_heads") or heads
    forms = [("as configured", {}),
             ("int8 (one fp16 scale per 64)", {"bytes_per_element": cost.quantized_bytes_per_element(8, 64)}),
             ("int4 (fp16 scale + zero-point per 32, KIVI)",
              {"bytes_per_element": cost.quantized_bytes_per_element(4, 32, zero_point=True)}),
             ("paged, blocks of 16 tokens (vLLM)", {"block_size": 16})]
    rows = [KVForm(name, kv(1, 1, **kw), kv(seq_len, batch, **kw)) for name, kw in forms]
    if config.get("kv_lora_rank"):
        rows.append(KVForm("MLA decompressed (per-head keys and values)", kv(1, 1, mla="decompressed"),
                           kv(seq_len, batch, mla="decompressed")))
    if kv_heads != heads:
        mha = {**config, "num_key_value_heads": heads}
        rows.append(KVForm(f"without GQA ({heads} KV heads, not {kv_heads})", kv(1, 1, mha), kv(seq_len, batch, mha)))
    if config.get("sliding_window") and config.get("use_sliding_window", True) is not False:
        full = {**config, "sliding_window": None, "layer_types": None}
        rows.append(KVForm("without sliding windows (every layer full)", kv(1, 1, full), kv(seq_len, batch, full)))
    return rows


def deepspeed_model_states(num_params: int, largest_layer: int, gpus: int) -> dict[str, float]:
    """Per-GPU model states as DeepSpeed's estimators count them (no offload), from our counts."""
    zero2 = scale.zero_model_state_bytes(num_params, gpus, 2, param_bytes=2, grad_bytes=6, optimizer_bytes=12)
    zero3 = scale.zero_model_state_bytes(num_params, gpus, 3, param_bytes=2, grad_bytes=4, optimizer_bytes=12)
    return {"zero2": float(math.floor(zero2)), "zero3": float(4 * largest_layer + math.floor(zero3))}


def _estimate(parts: dict[str, float], memory: float, **largest: int | None) -> MemoryEstimate:
    total = sum(parts.values())
    return MemoryEstimate(dict(parts), total, total <= memory, **largest)


def decoder_training(model: Any, o: Any, trainable: int, weight_bits: float | None) -> tuple[MemoryEstimate, list[str], dict[str, Any]]:
    """plan_memory at the options, the largest micro-batch that fits, its assumptions and activations.

    `trainable` is LoRA's adapter parameters when ``o.lora_rank`` is set (the planner adds them to the
    frozen model), else the model's own parameters, all trained (the planner's default)."""
    adapters = trainable if o.lora_rank else None

    def plan(batch: int) -> Any:
        return plan_memory(model, precision=precision_of(o.dtype), optimizer=o.optimizer, zero_stage=o.zero,
                           num_gpus=o.gpus, micro_batch_size=batch, seq_len=o.seq_len, recompute=o.recompute,
                           gpu_memory_gib=o.gpu_memory_bytes / GIB, trainable_params=adapters, weight_bits=weight_bits)

    p = plan(o.batch)
    largest = largest_fitting(lambda b: plan(b).fits)
    L = p.dims.num_hidden_layers
    formula = next((a for a in p.assumptions if a.startswith("activations")), "helpers.planner's activations")
    acts = {"per_layer_bytes": p.parts["activations"] / L if L else 0.0, "layers": L,
            "total_bytes": p.parts["activations"], "formula": f"helpers.planner.plan_memory — {formula}"}
    parts = {k: v for k, v in p.parts.items() if k != "kv_cache"}
    return _estimate(parts, o.gpu_memory_bytes, largest_batch=largest), list(p.assumptions), acts


def other_training(num_params: int, trainable: int, frozen_bits: float | None, activations: float, o: Any
                   ) -> tuple[MemoryEstimate, list[str]]:
    """Model states sharded by ZeRO (as the planner shards them) + activations linear in the batch."""
    states = scale.model_state_bytes_per_param(precision_of(o.dtype), o.optimizer)
    frozen = num_params - trainable

    def sharded(count: int, **kw: float) -> float:
        return scale.zero_model_state_bytes(count, o.gpus, o.zero, **{"param_bytes": 0, "grad_bytes": 0,
                                                                       "optimizer_bytes": 0, **kw})

    weights = sharded(trainable, param_bytes=states.param_bytes) + sharded(
        frozen, param_bytes=states.param_bytes if frozen_bits is None else frozen_bits / 8)
    fixed = {"weights": weights, "grads": sharded(trainable, grad_bytes=states.grad_bytes),
             "optimizer": sharded(trainable, optimizer_bytes=states.optimizer_bytes)}
    per_sample = activations / o.batch
    largest = largest_fitting(lambda b: sum(fixed.values()) + b * per_sample <= o.gpu_memory_bytes)
    assumptions = [f"per parameter: weights {states.param_bytes} B, grads {states.grad_bytes} B, optimizer "
                   f"{states.optimizer_bytes:g} B ({precision_of(o.dtype)}, {o.optimizer}); {trainable:,} of "
                   f"{num_params:,} parameters trainable",
                   f"ZeRO stage {o.zero} ({scale.ZERO_STAGES[o.zero]}) over {o.gpus} GPU(s)",
                   "activations: the traced pass's leaf outputs, linear in the batch; not sharded"]
    return _estimate({**fixed, "activations": activations}, o.gpu_memory_bytes, largest_batch=largest), assumptions


def decoder_inference(weights: float, config: dict[str, Any], o: Any, bytes_per_element: float
                      ) -> tuple[MemoryEstimate, list[str]]:
    """Weights + the KV cache as configured; the largest batch at seq_len and context at batch."""
    def total(t: int, b: int) -> float:
        return (weights + cost.kv_cache_bytes_from_config(config, t, b, bytes_per_element=bytes_per_element)) / o.gpus

    largest_batch = largest_fitting(lambda b: total(o.seq_len, b) <= o.gpu_memory_bytes)
    largest_context = largest_fitting(lambda t: total(t, o.batch) <= o.gpu_memory_bytes)
    kv = cost.kv_cache_bytes_from_config(config, o.seq_len, o.batch, bytes_per_element=bytes_per_element)
    parts = {"weights": weights / o.gpus, "kv_cache": kv / o.gpus}
    assumptions = [f"inference: weights + KV cache of {o.batch} sequence(s) × {o.seq_len} tokens in "
                   f"{bytes_per_element:g}-byte elements" + (f", split evenly over {o.gpus} GPUs (tensor parallel)"
                                                            if o.gpus > 1 else "")
                   + "; activations of one decode step and the framework's workspace not included"]
    limit = config.get("max_position_embeddings")
    if limit and largest_context > limit:
        assumptions.append(f"the largest context that fits in memory ({largest_context:,}) exceeds the model's "
                           f"max_position_embeddings ({limit:,})")
    return _estimate(parts, o.gpu_memory_bytes, largest_batch=largest_batch, largest_context=largest_context), assumptions


def other_inference(weights: float, peak_activation: float, o: Any) -> tuple[MemoryEstimate, list[str]]:
    """Weights + the largest layer output twice (its input and output alive at once), linear in the batch."""
    live = 2 * peak_activation
    per_sample = live / o.batch
    largest = largest_fitting(lambda b: (weights + b * per_sample) / o.gpus <= o.gpu_memory_bytes)
    parts = {"weights": weights / o.gpus, "activations": live / o.gpus}
    return _estimate(parts, o.gpu_memory_bytes, largest_batch=largest), [
        "inference: weights + 2 × the largest layer output (its input and output alive together), no grads"]
