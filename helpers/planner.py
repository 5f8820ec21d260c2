""""Will it fit?": per-GPU memory of training (or serving) a decoder LM, part by part.

``plan_memory(model_or_config, ...)`` adds up, per GPU:

* **weights**, **grads**, **optimizer** (master copy + states) — bytes per parameter from
  `helpers.scale.model_state_bytes_per_param`, sharded by `helpers.scale.zero_model_state_bytes`
  (ZeRO stage 0–3 over `num_gpus` data-parallel GPUs; FSDP FULL_SHARD = stage 3);
* **activations** — per layer, for a Llama-style model (RMSNorm, RoPE, SDPA attention without
  dropout, SwiGLU: a config mapping, or a module whose config has ``intermediate_size`` and a SiLU
  ``hidden_act``) `helpers.scale.llama_activation_bytes`, measured on Hugging Face's
  ``LlamaDecoderLayer``; for a GPT-style model (``n_embd`` …, GELU MLP, dropout) Korthikanti et al.
  2022, Table 2 (`helpers.scale.transformer_activation_bytes`). × ``num_hidden_layers``; embeddings,
  final norm and logits are not included;
* **kv_cache** (``mode="inference"``) — `helpers.cost.kv_cache_bytes` for `micro_batch_size`
  sequences of `seq_len` tokens (grads, optimizer and activations are then 0).

The model is an ``nn.Module`` (parameters counted by `helpers.counting.count_params`, dimensions
read from its ``config``: Hugging Face names or `helpers.models.gpt.GPTConfig` names) or a mapping
of `helpers.formulas.decoder_lm_params` arguments (Hugging Face config field names). LoRA/QLoRA:
``trainable_params`` adapter parameters are trained ON TOP of the frozen model (peft's count:
total = model + adapters).
Every assumption is listed in ``MemoryPlan.assumptions``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from helpers import cost, scale

__all__ = ["ModelDims", "model_dims", "MemoryPlan", "plan_memory", "PARTS", "GIB"]

GIB = 2 ** 30
PARTS = ("weights", "grads", "optimizer", "activations", "kv_cache")


@dataclass(frozen=True)
class ModelDims:
    """What the planner needs to know about a decoder LM."""

    num_params: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    intermediate_size: int | None = None  # SwiGLU's F for a Llama-style model, None for GPT-style
    num_experts_per_tok: int = 1

    @property
    def llama_style(self) -> bool:
        """RMSNorm + RoPE + SDPA + SwiGLU (activations: `scale.llama_activation_bytes`)."""
        return self.intermediate_size is not None


def _field(config: Any, *names: str, default: Any = None) -> Any:
    for name in names:
        value = config.get(name) if isinstance(config, Mapping) else getattr(config, name, None)
        if value is not None:
            return value
    return default


def model_dims(model: Any) -> ModelDims:
    """Parameters and dimensions of an ``nn.Module`` with a ``config``, or of a config mapping."""
    if isinstance(model, Mapping):
        from helpers.formulas import decoder_lm_params  # noqa: PLC0415 (chapter 12's formula)

        config, num_params = model, int(decoder_lm_params(**model)["total"])
    else:
        from helpers.counting import count_params  # noqa: PLC0415 (torch only when given a module)

        config, num_params = getattr(model, "config", None), count_params(model)
        if config is None:
            raise ValueError("the planner reads hidden size, layers and heads from model.config; "
                             "this model has no config (pass a mapping of decoder_lm_params arguments)")
    hidden = _field(config, "hidden_size", "n_embd")
    layers = _field(config, "num_hidden_layers", "n_layer")
    heads = _field(config, "num_attention_heads", "n_head")
    if None in (hidden, layers, heads):
        raise ValueError("the config needs hidden_size/n_embd, num_hidden_layers/n_layer and "
                         "num_attention_heads/n_head")
    kv = _field(config, "num_key_value_heads", default=heads)
    head_dim = _field(config, "head_dim", default=hidden // heads)
    act = _field(config, "hidden_act", default="silu" if isinstance(config, Mapping) else None)
    swiglu = act in ("silu", "swish") and _field(config, "intermediate_size") is not None
    experts = _field(config, "num_local_experts", "num_experts", default=1)
    k = _field(config, "num_experts_per_tok", default=1) if experts > 1 else 1
    return ModelDims(num_params, hidden, layers, heads, kv, head_dim,
                     _field(config, "intermediate_size") if swiglu else None, k)


@dataclass(frozen=True)
class MemoryPlan:
    """Per-GPU bytes by part, the GPU's memory, and the assumptions behind each number."""

    parts: dict[str, float]
    gpu_memory_bytes: float
    dims: ModelDims
    assumptions: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(self.parts.values())

    @property
    def fits(self) -> bool:
        return self.total <= self.gpu_memory_bytes

    def __str__(self) -> str:
        rows = [f"{name:<12}{nbytes / GIB:>10.2f} GiB" for name, nbytes in self.parts.items()]
        verdict = "fits" if self.fits else "does NOT fit"
        rows.append(f"{'total':<12}{self.total / GIB:>10.2f} GiB  → {verdict} in "
                    f"{self.gpu_memory_bytes / GIB:.0f} GiB")
        return "\n".join(rows)


def plan_memory(model: Any, *, precision: str = "mixed", optimizer: str = "adamw", zero_stage: int = 0,
                num_gpus: int = 1, micro_batch_size: int = 1, seq_len: int = 2048, recompute: str = "none",
                gpu_memory_gib: float = 80, mode: str = "train", trainable_params: int | None = None,
                weight_bits: float | None = None) -> MemoryPlan:
    """Per-GPU memory of training (``mode="train"``) or serving (``"inference"``) `model`.

    Args:
        model: an ``nn.Module`` with a ``config``, or a mapping of `decoder_lm_params` arguments.
        precision: "mixed" (bf16/fp16 + fp32 master weights), "bf16" or "fp32".
        optimizer: a key of `helpers.scale.OPTIMIZERS` ("adamw", "adam8bit", "sgd", …).
        zero_stage: 0 (plain data parallel) to 3 (everything sharded) over `num_gpus` GPUs.
        micro_batch_size, seq_len: sequences per GPU per step, tokens per sequence.
        recompute: "none", "selective" or "full" (Korthikanti et al. Table 2).
        gpu_memory_gib: the GPU's memory in GiB (an "80 GB" A100/H100 has 80 GiB).
        trainable_params: LoRA/QLoRA adapter parameters, ADDED to the model's and the only ones
            with gradients and optimizer states (the model's own parameters are then frozen);
            default None: the model's own parameters are all trained.
        weight_bits: bits per FROZEN weight (e.g. 4.127 for QLoRA's NF4 + double quantisation);
            trainable weights keep the precision's bytes.
    """
    if mode not in ("train", "inference"):
        raise ValueError(f"mode must be 'train' or 'inference', got {mode!r}")
    dims = model_dims(model)
    states = scale.model_state_bytes_per_param(precision, optimizer)
    n = dims.num_params
    if trainable_params is not None and trainable_params < 0:
        raise ValueError(f"trainable_params (adapter parameters added to the model) must be >= 0, "
                         f"got {trainable_params}")
    trainable, frozen = (n, 0) if trainable_params is None else (trainable_params, n)
    frozen_bytes = states.param_bytes if weight_bits is None else weight_bits / 8

    def sharded(count: int, *, p: float = 0, g: float = 0, o: float = 0) -> float:
        return scale.zero_model_state_bytes(count, num_gpus, zero_stage, param_bytes=p, grad_bytes=g,
                                            optimizer_bytes=o)

    weights = sharded(trainable, p=states.param_bytes) + sharded(frozen, p=frozen_bytes)
    s, b, L = seq_len, micro_batch_size, dims.num_hidden_layers
    counts = (f"{n:,} parameters, all trainable" if trainable_params is None else
              f"{n:,} frozen parameters + {trainable:,} trainable adapter parameters")
    assumptions = [f"{counts}; {L} layers, hidden {dims.hidden_size}, "
                   f"{dims.num_attention_heads} heads ({dims.num_key_value_heads} KV heads)",
                   (f"per parameter: weights {states.param_bytes} B, grads {states.grad_bytes} B, optimizer "
                    f"{states.optimizer_bytes:g} B ({precision}, {optimizer})" if mode == "train"
                    else f"per parameter: weights {states.param_bytes} B ({precision})")
                   + (f"; frozen weights {weight_bits:g} bits" if weight_bits is not None else ""),
                   f"ZeRO stage {zero_stage} ({scale.ZERO_STAGES.get(zero_stage, '?')}) over {num_gpus} GPU(s)"]
    if mode == "train":
        grads = sharded(trainable, g=states.grad_bytes)
        optim = sharded(trainable, o=states.optimizer_bytes)
        activations, how = _activation_bytes(dims, s, b, recompute, 4 if precision == "fp32" else 2)
        kv = 0.0
        assumptions.append(f"activations: {L} layers × {how} (s={s}, b={b}, recompute={recompute}); "
                           "embeddings, logits and temporary buffers not included")
    else:
        grads = optim = activations = 0.0
        kv = cost.kv_cache_bytes(L, dims.num_attention_heads, dims.head_dim, s, b,
                                 bytes_per_element=states.param_bytes, n_kv_head=dims.num_key_value_heads)
        assumptions.append(f"inference: KV cache for {b} sequence(s) of {s} tokens in "
                           f"{states.param_bytes}-byte elements; no grads, optimizer or saved activations")
    parts = {"weights": weights, "grads": grads, "optimizer": optim, "activations": activations, "kv_cache": kv}
    return MemoryPlan(parts, gpu_memory_gib * GIB, dims, assumptions)


def _activation_bytes(dims: ModelDims, s: int, b: int, recompute: str, e: int) -> tuple[float, str]:
    """All layers' saved activations and how they were estimated (for the assumptions)."""
    L, h, a = dims.num_hidden_layers, dims.hidden_size, dims.num_attention_heads
    if not dims.llama_style:
        per_layer = scale.transformer_activation_bytes(s, b, h, a, recompute=recompute) * e / 2
        return L * per_layer, ("Korthikanti Table 2 (GPT layer: LayerNorm, GELU MLP, dropout, attention matrix "
                               "kept)" + (", ×2 for fp32" if e == 4 else ", 16-bit"))
    if recompute not in scale.RECOMPUTE:
        raise ValueError(f"recompute must be one of {', '.join(scale.RECOMPUTE)}, got {recompute!r}")
    terms = scale.llama_activation_terms(s, b, h, a, dims.num_key_value_heads, dims.intermediate_size,
                                         head_dim=dims.head_dim, bytes_per_element=e)
    k = dims.num_experts_per_tok
    if k > 1:  # each token passes through k experts: k × the MLP's per-token tensors
        terms = {name: v * k if ("sbF" in name or "gate/up" in name) else v for name, v in terms.items()}
    rope = terms["RoPE cos, sin (2e·s·d_h)"]  # computed once, passed to every layer
    if recompute == "full":
        total = L * e * s * b * h
    else:
        total = L * (sum(terms.values()) - rope) + rope
    how = (f"the Llama layer formula (RMSNorm in fp32, RoPE, SDPA without dropout, SwiGLU F={dims.intermediate_size}; "
           f"{e}-byte activations; helpers.scale.llama_activation_terms)"
           + (f"; MoE: MLP tensors × top-{k} (an estimate: routing tensors not counted)" if k > 1 else ""))
    return total, how
