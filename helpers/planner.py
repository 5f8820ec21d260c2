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

3-D parallelism (Llama-style models): ``num_gpus`` = t·p·N_d GPUs run ``tensor_parallel`` = t-way
Megatron tensor parallelism, ``pipeline_parallel`` = p stages and ZeRO over the N_d = num_gpus/(t·p)
data-parallel GPUs. Each GPU holds L/p layers split as `helpers.parallelism.tensor_parallel_block_params`
(measured on real gloo ranks in chapter 16: RMSNorm weights replicated, KV heads replicated when
t > num_key_value_heads), embeddings vocab-parallel (or replicated), and the activations of the
micro-batches 1F1B keeps in flight (p − s on stage s) split by `helpers.scale.llama_activation_terms`
(with or without sequence parallelism). The plan is the fullest stage's.

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

from helpers import cost, parallelism, scale

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
    num_local_experts: int = 1
    vocab_size: int | None = None
    tie_word_embeddings: bool | None = None  # None: not stated by the config

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
    tied = _field(config, "tie_word_embeddings", default=False if isinstance(config, Mapping) else None)
    return ModelDims(num_params, hidden, layers, heads, kv, head_dim,
                     _field(config, "intermediate_size") if swiglu else None, k, num_local_experts=experts,
                     vocab_size=_field(config, "vocab_size"), tie_word_embeddings=tied)


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
                weight_bits: float | None = None, tensor_parallel: int = 1, pipeline_parallel: int = 1,
                sequence_parallel: bool = True, vocab_parallel: bool = True) -> MemoryPlan:
    """Per-GPU memory of training (``mode="train"``) or serving (``"inference"``) `model`.

    Args:
        model: an ``nn.Module`` with a ``config``, or a mapping of `decoder_lm_params` arguments.
        precision: "mixed" (bf16/fp16 + fp32 master weights), "bf16" or "fp32".
        optimizer: a key of `helpers.scale.OPTIMIZERS` ("adamw", "adam8bit", "sgd", …).
        zero_stage: 0 (plain data parallel) to 3 (everything sharded) over the N_d data-parallel GPUs.
        num_gpus: all GPUs, t·p·N_d (N_d = num_gpus when t = p = 1).
        micro_batch_size, seq_len: sequences per GPU per step, tokens per sequence.
        recompute: "none", "selective" or "full" (Korthikanti et al. Table 2).
        gpu_memory_gib: the GPU's memory in GiB (an "80 GB" A100/H100 has 80 GiB).
        trainable_params: LoRA/QLoRA adapter parameters, ADDED to the model's and the only ones
            with gradients and optimizer states (the model's own parameters are then frozen);
            default None: the model's own parameters are all trained.
        weight_bits: bits per FROZEN weight (e.g. 4.127 for QLoRA's NF4 + double quantisation);
            trainable weights keep the precision's bytes.
        tensor_parallel: t, Megatron-style (Llama-style models only): q/k/v/gate/up split by output
            rows, o/down by input columns; t must divide num_attention_heads and intermediate_size,
            and divide num_key_value_heads or be a multiple of it.
        pipeline_parallel: p stages of L/p layers (p must divide num_hidden_layers), 1F1B schedule
            with at least p micro-batches: stage s keeps p − s micro-batches' activations.
        sequence_parallel: with t > 1, the RMSNorms' tensors and the column-parallel projections'
            inputs are split along the sequence (Korthikanti et al. §4.2.2), else whole on every GPU.
        vocab_parallel: with t > 1, embed_tokens and lm_head split by vocabulary rows (Megatron's
            VocabParallelEmbedding), else replicated.

    Returns the per-GPU parts of the fullest pipeline stage (the largest total).
    """
    if mode not in ("train", "inference"):
        raise ValueError(f"mode must be 'train' or 'inference', got {mode!r}")
    positive = parallelism._positive  # noqa: SLF001 (the same check as chapter 16's formulas)
    t, pp = positive(tensor_parallel, "tensor_parallel"), positive(pipeline_parallel, "pipeline_parallel")
    num_gpus = positive(num_gpus, "num_gpus")
    if num_gpus % (t * pp):
        raise ValueError(f"num_gpus={num_gpus} must be a multiple of tensor_parallel × pipeline_parallel = "
                         f"{t} × {pp} = {t * pp}: the GPUs form num_gpus/(t·p) data-parallel groups")
    n_d = num_gpus // (t * pp)
    dims = model_dims(model)
    n = dims.num_params
    if trainable_params is not None and trainable_params < 0:
        raise ValueError(f"trainable_params (adapter parameters added to the model) must be >= 0, "
                         f"got {trainable_params}")
    if t * pp > 1:
        if not dims.llama_style:
            raise ValueError("tensor_parallel and pipeline_parallel are planned for Llama-style models (a config "
                             "with intermediate_size and a SiLU hidden_act: the split chapter 16 measures); this "
                             "model is GPT-style")
        if trainable_params is not None:
            raise ValueError("LoRA/QLoRA adapters under tensor or pipeline parallelism are not modelled: "
                             "use tensor_parallel=1 and pipeline_parallel=1 with trainable_params")
        if dims.num_hidden_layers % pp:
            raise ValueError(f"pipeline_parallel={pp} must divide num_hidden_layers={dims.num_hidden_layers}: "
                             "every stage gets the same number of layers")
        stage_params, tied = _stage_params(dims, t, pp, vocab_parallel)
    else:
        stage_params, tied = [n], dims.tie_word_embeddings
    states = scale.model_state_bytes_per_param(precision, optimizer)
    trainable, frozen = (n, 0) if trainable_params is None else (trainable_params, n)
    frozen_bytes = states.param_bytes if weight_bits is None else weight_bits / 8

    def sharded(count: int, *, p: float = 0, g: float = 0, o: float = 0) -> float:
        return scale.zero_model_state_bytes(count, n_d, zero_stage, param_bytes=p, grad_bytes=g,
                                            optimizer_bytes=o)

    s, b, L = seq_len, micro_batch_size, dims.num_hidden_layers
    e = 4 if precision == "fp32" else 2
    candidates = []
    for stage, count in enumerate(stage_params):
        if trainable_params is None:
            trainable = count
        weights = sharded(trainable, p=states.param_bytes) + sharded(frozen, p=frozen_bytes)
        if mode == "train":
            grads = sharded(trainable, g=states.grad_bytes)
            optim = sharded(trainable, o=states.optimizer_bytes)
            activations, how = _activation_bytes(dims, s, b, recompute, e, tensor_parallel=t,
                                                 sequence_parallel=sequence_parallel, layers=L // pp,
                                                 in_flight=pp - stage)
            kv = 0.0
        else:
            grads = optim = activations = 0.0
            kv_heads = parallelism.tensor_parallel_kv_heads(dims.num_key_value_heads, t) if t > 1 \
                else dims.num_key_value_heads
            kv = cost.kv_cache_bytes(L // pp, dims.num_attention_heads // t, dims.head_dim, s, b,
                                     bytes_per_element=states.param_bytes, n_kv_head=kv_heads)
        candidates.append({"weights": weights, "grads": grads, "optimizer": optim, "activations": activations,
                           "kv_cache": kv})
    totals = [sum(c.values()) for c in candidates]
    fullest = totals.index(max(totals))
    parts = candidates[fullest]

    counts = (f"{n:,} parameters, all trainable" if trainable_params is None else
              f"{n:,} frozen parameters + {trainable_params:,} trainable adapter parameters")
    assumptions = [f"{counts}; {L} layers, hidden {dims.hidden_size}, "
                   f"{dims.num_attention_heads} heads ({dims.num_key_value_heads} KV heads)",
                   (f"per parameter: weights {states.param_bytes} B, grads {states.grad_bytes} B, optimizer "
                    f"{states.optimizer_bytes:g} B ({precision}, {optimizer})" if mode == "train"
                    else f"per parameter: weights {states.param_bytes} B ({precision})")
                   + (f"; frozen weights {weight_bits:g} bits" if weight_bits is not None else ""),
                   f"ZeRO stage {zero_stage} ({scale.ZERO_STAGES.get(zero_stage, '?')}) over "
                   + (f"{num_gpus} GPU(s)" if t * pp == 1 else
                      f"the N_d = num_gpus/(t·p) = {num_gpus}/({t}·{pp}) = {n_d} data-parallel GPU(s)")]
    if t * pp > 1:
        assumptions += _parallel_assumptions(dims, t, pp, vocab_parallel, tied, stage_params, fullest, totals)
    if mode == "train":
        tp_how = ""
        if t > 1:
            tp_how = ("; tensor parallel WITH sequence parallelism: the RMSNorm tensors and the q/k/v and gate/up "
                      "inputs split by sequence rows (s/t), attention tensors by heads (KV heads g/t, or 1 when "
                      "t > g), MLP tensors by F/t; RoPE cos/sin whole" if sequence_parallel else
                      "; tensor parallel WITHOUT sequence parallelism: attention tensors by heads, MLP tensors by "
                      "F/t, but the RMSNorm tensors and the q/k/v and gate/up inputs whole on every GPU")
        pp_how = (f"; pipeline: 1F1B with >= p micro-batches, stage s keeps p − s of them in flight (Narayanan "
                  f"et al. §2.2.1; stage 0: p × L/p = L layers' worth, Korthikanti §4.2.3), so stage {fullest} "
                  f"holds {pp - fullest} × {L // pp} layers" if pp > 1 else "")
        assumptions.append(f"activations: {L // pp if pp > 1 else L} layers × {how} (s={s}, b={b}, "
                           f"recompute={recompute}){tp_how}{pp_how}; embeddings, logits and temporary buffers "
                           "not included")
    else:
        assumptions.append(f"inference: KV cache for {b} sequence(s) of {s} tokens in "
                           f"{states.param_bytes}-byte elements"
                           + (f", {L // pp} layers on this stage" if pp > 1 else "")
                           + (f", {dims.num_attention_heads // t} query heads per GPU" if t > 1 else "")
                           + "; no grads, optimizer or saved activations")
    return MemoryPlan(parts, gpu_memory_gib * GIB, dims, assumptions)


def _stage_params(dims: ModelDims, t: int, p: int, vocab_parallel: bool) -> tuple[list[int], bool]:
    """Parameters ONE GPU of each of the p pipeline stages holds under t-way tensor parallelism, and
    whether the embeddings are tied.

    Per layer `parallelism.tensor_parallel_block_params` (E experts: E × its MLP share, the router's
    E·D replicated); embed_tokens on stage 0 and lm_head + final norm on stage p − 1, ⌈V/t⌉·D each
    when vocab-parallel, V·D otherwise (tied with p > 1: the last stage keeps its own copy). The
    unsplit pieces must add up to the model's parameter count (biases are not modelled).
    """
    D, L, E, V = dims.hidden_size, dims.num_hidden_layers, dims.num_local_experts, dims.vocab_size
    if V is None:
        raise ValueError("tensor/pipeline parallel planning needs vocab_size in the model's config")
    assert dims.intermediate_size is not None  # llama_style, checked by the caller

    def layer(tp: int) -> int:
        block = parallelism.tensor_parallel_block_params(D, dims.intermediate_size, dims.num_attention_heads,
                                                         dims.num_key_value_heads, dims.head_dim, tp)
        return (block["q_proj + o_proj"] + block["k_proj + v_proj"] + E * block["mlp"]
                + block["norms (replicated)"] + (E * D if E > 1 else 0))

    whole = {tied: V * D + L * layer(1) + D + (0 if tied else V * D) for tied in (False, True)}
    options = [dims.tie_word_embeddings] if dims.tie_word_embeddings is not None else [False, True]
    matching = [tied for tied in options if whole[tied] == dims.num_params]
    if not matching:
        expected = " or ".join(f"{whole[tied]:,}" for tied in options)
        raise ValueError(f"cannot split this model's {dims.num_params:,} parameters: a bias-free Llama-family model "
                         f"with these dimensions has {expected} (V·D embeddings + L layers + final norm + V·D "
                         "lm_head unless tied); biases and other extras are not modelled under tensor or "
                         "pipeline parallelism")
    tied = matching[0]
    table = -(-V // t) * D if vocab_parallel else V * D
    stages = [L // p * layer(t)] * p
    stages[0] += table
    stages[-1] += D + (table if (not tied or p > 1) else 0)
    return stages, tied


def _parallel_assumptions(dims: ModelDims, t: int, p: int, vocab_parallel: bool, tied: bool,
                          stage_params: list[int], fullest: int, totals: list[float]) -> list[str]:
    """What the tensor/pipeline split of `_stage_params` assumes, in words (with this model's numbers)."""
    g = dims.num_key_value_heads
    kv = parallelism.tensor_parallel_kv_heads(g, t)
    out = []
    if t > 1:
        out.append(f"tensor parallel t={t} (Megatron-style): q/k/v/gate/up split by output rows, o/down by input "
                   f"columns — {dims.num_attention_heads // t} query heads and {kv} KV head(s) per GPU"
                   + (f" (t > {g} KV heads: each replicated on t/g = {t // g} GPUs)" if t > g else "")
                   + f", {dims.intermediate_size // t} MLP features"
                   + (f" of each of {dims.num_local_experts} experts" if dims.num_local_experts > 1 else "")
                   + "; replicated on every tensor-parallel GPU: the RMSNorm weights (2 per layer + the final one)"
                   + (", the router" if dims.num_local_experts > 1 else "")
                   + ("; embed_tokens and lm_head vocab-parallel (⌈V/t⌉ rows per GPU)" if vocab_parallel else
                      "; embed_tokens and lm_head replicated (vocab_parallel=False)"))
    if p > 1:
        out.append(f"pipeline parallel p={p}: {dims.num_hidden_layers // p} layers per stage; embed_tokens on stage 0, "
                   "the final norm and lm_head on the last stage"
                   + (" (tied embeddings: the last stage keeps its own copy, as Megatron-LM does)" if tied else ""))
    out.append(f"parameters per GPU by stage: {', '.join(f'{c:,}' for c in stage_params)}; this plan is stage "
               f"{fullest} of {p}, the fullest ({totals[fullest] / GIB:.2f} GiB)")
    return out


def _activation_bytes(dims: ModelDims, s: int, b: int, recompute: str, e: int, *, tensor_parallel: int = 1,
                      sequence_parallel: bool = True, layers: int | None = None,
                      in_flight: int = 1) -> tuple[float, str]:
    """Saved activations of `layers` layers (default all) × `in_flight` micro-batches on one GPU, and how
    they were estimated (for the assumptions). Tensor parallelism only for Llama-style models."""
    L, h, a = dims.num_hidden_layers if layers is None else layers, dims.hidden_size, dims.num_attention_heads
    if not dims.llama_style:
        per_layer = scale.transformer_activation_bytes(s, b, h, a, recompute=recompute) * e / 2
        return in_flight * L * per_layer, ("Korthikanti Table 2 (GPT layer: LayerNorm, GELU MLP, dropout, attention "
                                           "matrix kept)" + (", ×2 for fp32" if e == 4 else ", 16-bit"))
    if recompute not in scale.RECOMPUTE:
        raise ValueError(f"recompute must be one of {', '.join(scale.RECOMPUTE)}, got {recompute!r}")
    tp = dict(tensor_parallel=tensor_parallel, sequence_parallel=sequence_parallel and tensor_parallel > 1)
    terms = scale.llama_activation_terms(s, b, h, a, dims.num_key_value_heads, dims.intermediate_size,
                                         head_dim=dims.head_dim, bytes_per_element=e, **tp)
    k = dims.num_experts_per_tok
    if k > 1:  # each token passes through k experts: k × the MLP's per-token tensors
        terms = {name: v * k if ("sbF" in name or "gate/up" in name) else v for name, v in terms.items()}
    rope = terms["RoPE cos, sin (2e·s·d_h)"]  # computed once per forward, passed to every layer
    if recompute == "full":
        per_batch = L * scale.llama_activation_bytes(s, b, h, a, dims.num_key_value_heads, dims.intermediate_size,
                                                     head_dim=dims.head_dim, bytes_per_element=e,
                                                     recompute="full", **tp)
    else:
        per_batch = L * (sum(terms.values()) - rope) + rope
    how = (f"the Llama layer formula (RMSNorm in fp32, RoPE, SDPA without dropout, SwiGLU F={dims.intermediate_size}; "
           f"{e}-byte activations; helpers.scale.llama_activation_terms)"
           + (f"; MoE: MLP tensors × top-{k} (an estimate: routing tensors not counted)" if k > 1 else ""))
    return in_flight * per_batch, how
