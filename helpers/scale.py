"""Training at scale as pure arithmetic: model-state bytes under ZeRO, activation bytes per
transformer layer, training compute, compute-optimal tokens, training time, quantised weights.

Like `helpers.cost` (which re-exports `zero_model_state_bytes` and `transformer_activation_bytes`),
this module never imports torch: chapter 13 and tests/test_scale.py compare every function with
tensors measured in torch, with DeepSpeed's estimators and with the papers' published numbers.

Symbols (the papers' own letters)
---------------------------------
    Ψ   number of parameters (ZeRO paper);  N in Kaplan et al. and Chinchilla
    N_d number of data-parallel GPUs (ZeRO);  here `num_gpus`
    K   optimizer-state bytes per parameter (ZeRO: K = 12 for mixed-precision Adam)
    s   sequence length, b micro-batch size, h hidden size, a attention heads, t tensor-parallel size
    D   training tokens

Sources
-------
* Rajbhandari et al. 2020, "ZeRO: Memory Optimizations Toward Training Trillion Parameter Models",
  arXiv 1910.02054, Section 3.1 (16Ψ bytes for mixed-precision Adam) and Figure 1 (per-GPU bytes
  of the three ZeRO stages).
* Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer Models",
  arXiv 2205.05198, Section 4.1 (the terms of 34 and 5as/h) and Table 2.
* Hugging Face ``transformers`` ``LlamaDecoderLayer`` (``modeling_llama.py``: ``LlamaRMSNorm``
  upcasts to fp32, ``apply_rotary_pos_emb``, ``sdpa_attention_forward``, ``LlamaMLP``): the
  tensors behind `llama_activation_terms`, measured in tests/test_scale.py.
* Kaplan et al. 2020, "Scaling Laws for Neural Language Models", arXiv 2001.08361, Section 2.1,
  Table 1 (C_forward ≈ 2N + 2·n_layer·n_ctx·d_attn, C ≈ 6·N per training token).
* Hoffmann et al. 2022, "Training Compute-Optimal Large Language Models" (Chinchilla),
  arXiv 2203.15556, Table 3 (about 20 tokens per parameter).
* Dettmers et al. 2023, "QLoRA: Efficient Finetuning of Quantized LLMs", arXiv 2305.14314,
  Section 3 "Double Quantization" (NF4, blocks of 64, 8-bit scales in blocks of 256).
* Dettmers et al. 2022, "8-bit Optimizers via Block-wise Quantization", arXiv 2110.02861
  §2.1 (Adam's two moments in 8 bits, block size B = 2048 with one fp32 absmax per block; the
  bitsandbytes default since 0.44.0 is 256).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

__all__ = ["PRECISIONS", "OPTIMIZERS", "ADAM8BIT_BLOCK_SIZE", "ModelStateBytes", "model_state_bytes_per_param",
           "zero_model_state_bytes", "ZERO_STAGES",
           "RECOMPUTE", "transformer_activation_bytes", "transformer_activation_terms",
           "llama_activation_terms", "llama_activation_bytes",
           "training_flops", "kaplan_forward_flops_per_token", "chinchilla_tokens", "training_seconds",
           "quantized_bits_per_param"]

#: precision → (bytes of the weights the GPU computes with, bytes of their gradients, bytes of an
#: fp32 master copy kept by the optimizer). "mixed" = bf16/fp16 compute with fp32 master weights
#: (ZeRO's setting); "bf16" = everything in bf16, no master copy; "fp32" = everything in fp32.
PRECISIONS: dict[str, tuple[int, int, int]] = {"fp32": (4, 4, 0), "mixed": (2, 2, 4), "bf16": (2, 2, 0)}

#: optimizer → number of state tensors per parameter, and bytes per state element (None = same as
#: the master/param dtype). "adam8bit" keeps exp_avg and exp_avg_sq in int8 with one fp32 absmax
#: per block of B elements, i.e. 1 + 4/B bytes per element: B = 2048 in the paper and in bitsandbytes
#: before 0.44.0 ("adam8bit"); bitsandbytes 0.44.0 changed it to 256 (PR #1365, "adam8bit_bnb").
ADAM8BIT_BLOCK_SIZE: dict[str, int] = {"paper (bitsandbytes < 0.44)": 2048, "bitsandbytes >= 0.44": 256}
OPTIMIZERS: dict[str, tuple[int, float | None]] = {
    "sgd": (0, None), "sgd_momentum": (1, None), "adam": (2, None), "adamw": (2, None),
    "adam8bit": (2, 1 + 4 / ADAM8BIT_BLOCK_SIZE["paper (bitsandbytes < 0.44)"]),
    "adam8bit_bnb": (2, 1 + 4 / ADAM8BIT_BLOCK_SIZE["bitsandbytes >= 0.44"]),
}

ZERO_STAGES = {0: "no sharding (plain data parallel)", 1: "P_os: optimizer states sharded",
               2: "P_os+g: + gradients sharded (FSDP SHARD_GRAD_OP)",
               3: "P_os+g+p: + parameters sharded (FSDP FULL_SHARD)"}


@dataclass(frozen=True)
class ModelStateBytes:
    """Bytes per parameter of the three model states (what ZeRO shards)."""

    param_bytes: float
    grad_bytes: float
    optimizer_bytes: float  # master weights (if any) + optimizer states: ZeRO's K

    @property
    def total(self) -> float:
        return self.param_bytes + self.grad_bytes + self.optimizer_bytes


def model_state_bytes_per_param(precision: str = "mixed", optimizer: str = "adamw") -> ModelStateBytes:
    """Bytes per parameter of weights, gradients and optimizer (master copy + states).

    mixed + Adam: 2 + 2 + (4 master + 4 exp_avg + 4 exp_avg_sq) = 16 (ZeRO §3.1, K = 12);
    fp32 + Adam: 4 + 4 + 8 = 16; pure bf16 + Adam: 2 + 2 + 4 = 8; mixed + 8-bit Adam: 2 + 2 + 4 + 2·(1 + 4/2048).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    p, g, master = PRECISIONS[precision]
    n_states, state_bytes = OPTIMIZERS[optimizer]
    per_state = (master or p) if state_bytes is None else state_bytes
    return ModelStateBytes(p, g, master + n_states * per_state)


def zero_model_state_bytes(num_params: int, num_gpus: int, stage: int, *, param_bytes: float = 2,
                           grad_bytes: float = 2, optimizer_bytes: float = 12) -> float:
    """Per-GPU bytes of weights + gradients + optimizer states under ZeRO stage 0–3.

    ZeRO paper (arXiv 1910.02054) Figure 1, with Ψ = num_params, N_d = num_gpus, K = optimizer_bytes::

        stage 0 (baseline)   (2 + 2 + K)·Ψ
        stage 1 (P_os)       (2 + 2)·Ψ + K·Ψ/N_d
        stage 2 (P_os+g)     2·Ψ + (2 + K)·Ψ/N_d
        stage 3 (P_os+g+p)   (2 + 2 + K)·Ψ/N_d

    (2 = param_bytes, 2 = grad_bytes). PyTorch FSDP's FULL_SHARD is stage 3, SHARD_GRAD_OP stage 2.
    Ignores temporary buffers (gathered layers, communication buckets) and activations.
    """
    if stage not in ZERO_STAGES:
        raise ValueError(f"ZeRO stage must be 0, 1, 2 or 3, got {stage!r}")
    if num_gpus < 1 or num_params < 0:
        raise ValueError(f"need num_gpus >= 1 and num_params >= 0, got {num_gpus} and {num_params}")
    sharded = {0: (), 1: ("o",), 2: ("o", "g"), 3: ("o", "g", "p")}[stage]
    total = Fraction(0)
    for part, nbytes in (("p", param_bytes), ("g", grad_bytes), ("o", optimizer_bytes)):
        part_bytes = Fraction(nbytes) * num_params
        total += part_bytes / num_gpus if part in sharded else part_bytes
    return float(total)


# --------------------------------------------------------------------------- activations

RECOMPUTE = ("none", "selective", "full")


def transformer_activation_terms(seq_len: int, batch_size: int, hidden_size: int,
                                 num_heads: int) -> dict[str, int]:
    """Korthikanti et al. §4.1: the bytes one transformer layer keeps for backward, term by term.

    16-bit activations (2 bytes) and 1-byte dropout masks; s = seq_len, b = batch_size,
    h = hidden_size, a = num_heads. Sums to ``sbh·(34 + 5as/h) = 34·sbh + 5·as²b``.
    """
    s, b, h, a = seq_len, batch_size, hidden_size, num_heads
    sbh, as2b = s * b * h, a * s * s * b
    return {
        "ln1 input (2sbh)": 2 * sbh,
        "QKV projection input (2sbh)": 2 * sbh,
        "Q and K for QKᵀ (4sbh)": 4 * sbh,
        "softmax output (2as²b)": 2 * as2b,
        "attention dropout mask (as²b)": as2b,
        "dropout output for ·V (2as²b)": 2 * as2b,
        "V for ·V (2sbh)": 2 * sbh,
        "output projection input (2sbh)": 2 * sbh,
        "attention residual dropout mask (sbh)": sbh,
        "ln2 input (2sbh)": 2 * sbh,
        "MLP first linear input (2sbh)": 2 * sbh,
        "GeLU input (8sbh)": 8 * sbh,
        "MLP second linear input (8sbh)": 8 * sbh,
        "MLP dropout mask (sbh)": sbh,
    }


def transformer_activation_bytes(seq_len: int, batch_size: int, hidden_size: int, num_heads: int, *,
                                 tensor_parallel: int = 1, sequence_parallel: bool = False,
                                 recompute: str = "none") -> float:
    """Activation bytes one transformer layer keeps for backward (Korthikanti et al. 2022, Table 2).

    With s = seq_len, b = batch_size, h = hidden_size, a = num_heads, t = tensor_parallel::

        no parallelism                      sbh·(34 + 5as/h)
        tensor parallel                     sbh·(10 + 24/t + 5as/(ht))
        tensor + sequence parallel          sbh·(34/t + 5as/(ht))
        tensor parallel + selective recomp. sbh·(10 + 24/t)
        tensor + sequence + selective       sbh·34/t
        full recomputation                  sbh·2   (only the layer's input is kept)

    "selective" recomputes the attention core (softmax, its dropout, ·V), dropping the 5as/h term.
    The 10 in the tensor-parallel rows is what is not split: the two LayerNorm inputs, the two
    inputs of the column-parallel linears and the two residual dropout masks.
    """
    if recompute not in RECOMPUTE:
        raise ValueError(f"recompute must be one of {', '.join(RECOMPUTE)}, got {recompute!r}")
    t = tensor_parallel
    if t < 1 or hidden_size % num_heads:
        raise ValueError(f"need tensor_parallel >= 1 and hidden_size divisible by num_heads, got t={t}, "
                         f"h={hidden_size}, a={num_heads}")
    s, b, h, a = seq_len, batch_size, hidden_size, num_heads
    sbh = Fraction(s * b * h)
    if recompute == "full":
        return float(2 * sbh)
    attention = 0 if recompute == "selective" else Fraction(5 * a * s, h * t)
    per_unit = Fraction(34, t) if sequence_parallel else 10 + Fraction(24, t)
    return float(sbh * (per_unit + attention))


def _llama_dims(hidden_size: int, num_attention_heads: int, num_key_value_heads: int | None,
                head_dim: int | None) -> tuple[int, int]:
    a = num_attention_heads
    g = a if num_key_value_heads is None else num_key_value_heads
    if a < 1 or g < 1 or a % g or (head_dim is None and hidden_size % a):
        raise ValueError(f"need num_attention_heads a multiple of num_key_value_heads and hidden_size divisible "
                         f"by num_attention_heads (or head_dim), got h={hidden_size}, a={a}, g={g}")
    return g, (hidden_size // a if head_dim is None else head_dim)


def llama_activation_terms(seq_len: int, batch_size: int, hidden_size: int, num_attention_heads: int,
                           num_key_value_heads: int | None = None, intermediate_size: int | None = None, *,
                           head_dim: int | None = None, bytes_per_element: int = 2, tensor_parallel: int = 1,
                           sequence_parallel: bool = False) -> dict[str, int]:
    """The bytes one Llama decoder layer keeps for backward, term by term (Hugging Face's
    ``LlamaDecoderLayer``: RMSNorm, RoPE, SDPA attention without dropout, SwiGLU MLP, no biases).

    s = seq_len, b = batch_size, h = hidden_size, a = num_attention_heads, g = num_key_value_heads,
    d_h = head_dim (h/a unless set), F = intermediate_size (default 4h), e = bytes_per_element (2:
    a bf16 model; 4: fp32). Each RMSNorm computes in fp32 (its input upcast: 4sbh bytes, for e = 2
    a copy, for e = 4 the input itself) and keeps 1/rms (4sb) and the normalised x (e·sbh) for its
    weight's gradient. SDPA (flash kernel, no (s, s) matrix) keeps q, k, v, its output — the same
    memory as ``o_proj``'s input — and one fp32 log-sum-exp per query row and head::

        2·(4 + e)·sbh + 8sb                       two RMSNorms
        e·sbh + e·sbh                             q/k/v_proj input, gate/up_proj input
        e·sb·(2a + 2g)·d_h + 4asb                 q, k (after RoPE), v, output; log-sum-exp
        2e·s·d_h                                  RoPE cos and sin, (1, 1, s, d_h) each
        4e·sbF                                    SiLU input and output, up_proj output, down_proj input

    For Llama-2-7B (e = 2, g = a, F/h = 2.6875) that is ≈ 45.7·sbh at s = 2048, vs Korthikanti's
    GPT layer sbh·(34 + 5as/h) = 114·sbh (softmax and dropout tensors of (s, s) per head).

    ``tensor_parallel`` = t > 1 gives what ONE rank of a Megatron-style tensor-parallel layer keeps
    (q/k/v/gate/up column-parallel, o/down row-parallel; Korthikanti et al. §4.2): the attention
    tensors hold a/t query heads and ``helpers.parallelism.tensor_parallel_kv_heads(g, t)`` KV heads
    (g/t, or 1 when t > g: the KV heads are replicated), the MLP tensors F/t features. The two
    RMSNorms' tensors and the inputs of the column-parallel projections are whole on every rank,
    unless ``sequence_parallel`` (Korthikanti §4.2.2), which splits them along the sequence: s/t rows
    (t must divide s). RoPE's cos/sin stay whole. At t = 1 nothing changes.
    """
    g, hd = _llama_dims(hidden_size, num_attention_heads, num_key_value_heads, head_dim)
    s, b, h, a, e = seq_len, batch_size, hidden_size, num_attention_heads, bytes_per_element
    F = 4 * h if intermediate_size is None else intermediate_size
    t = tensor_parallel
    if isinstance(t, bool) or not isinstance(t, int) or t < 1:
        raise ValueError(f"tensor_parallel must be a positive int, got {t!r}")
    if t > 1:
        from helpers.parallelism import tensor_parallel_kv_heads  # noqa: PLC0415 (the rule, defined once)

        if a % t or F % t:
            raise ValueError(f"tensor_parallel={t} must divide num_attention_heads={a} and intermediate_size={F}")
        if sequence_parallel and s % t:
            raise ValueError(f"sequence parallelism splits the sequence t ways: tensor_parallel={t} must divide "
                             f"seq_len={s}")
        a, g, F = a // t, tensor_parallel_kv_heads(g, t), F // t  # heads and MLP features of one rank
    rows = s // t if sequence_parallel else s  # sequence rows of the norm tensors and projection inputs
    sb, nb = s * b, rows * b
    norm = {"fp32 input (4sbh)": 4 * nb * h, "1/rms (4sb)": 4 * nb, "normalised x (e·sbh)": e * nb * h}
    return {
        **{f"input_layernorm {k}": v for k, v in norm.items()},
        "q/k/v_proj input (e·sbh)": e * nb * h,
        "RoPE cos, sin (2e·s·d_h)": 2 * e * s * hd,
        "q after RoPE (e·sb·a·d_h)": e * sb * a * hd,
        "k after RoPE (e·sb·g·d_h)": e * sb * g * hd,
        "v (e·sb·g·d_h)": e * sb * g * hd,
        "attention output = o_proj input (e·sb·a·d_h)": e * sb * a * hd,
        "log-sum-exp (4asb)": 4 * a * sb,
        **{f"post_attention_layernorm {k}": v for k, v in norm.items()},
        "gate/up_proj input (e·sbh)": e * nb * h,
        "SiLU input = gate_proj output (e·sbF)": e * sb * F,
        "SiLU output (e·sbF)": e * sb * F,
        "up_proj output (e·sbF)": e * sb * F,
        "down_proj input (e·sbF)": e * sb * F,
    }


def llama_activation_bytes(seq_len: int, batch_size: int, hidden_size: int, num_attention_heads: int,
                           num_key_value_heads: int | None = None, intermediate_size: int | None = None, *,
                           head_dim: int | None = None, bytes_per_element: int = 2,
                           recompute: str = "none", tensor_parallel: int = 1, sequence_parallel: bool = False) -> int:
    """Activation bytes one Llama decoder layer keeps for backward: the sum of `llama_activation_terms`.

    ``recompute="selective"`` (Korthikanti's attention-core recomputation) changes nothing here:
    SDPA's flash kernel already recomputes the (s, s) scores in backward and keeps only q, k, v,
    the output and the log-sum-exp. ``"full"`` keeps the layer's input, e·sbh (RoPE's cos/sin are
    computed once per model and passed to every layer); under tensor parallelism with
    ``sequence_parallel`` a rank keeps its s/t rows of it, without it the whole input.
    ``tensor_parallel``, ``sequence_parallel``: one rank's share, as in `llama_activation_terms`.
    """
    if recompute not in RECOMPUTE:
        raise ValueError(f"recompute must be one of {', '.join(RECOMPUTE)}, got {recompute!r}")
    terms = llama_activation_terms(seq_len, batch_size, hidden_size, num_attention_heads, num_key_value_heads,
                                   intermediate_size, head_dim=head_dim, bytes_per_element=bytes_per_element,
                                   tensor_parallel=tensor_parallel, sequence_parallel=sequence_parallel)
    if recompute == "full":
        rows = seq_len // tensor_parallel if sequence_parallel else seq_len
        return bytes_per_element * rows * batch_size * hidden_size
    return sum(terms.values())


# --------------------------------------------------------------------------- compute and time

def kaplan_forward_flops_per_token(num_params: int, n_layer: int, n_ctx: int, d_attn: int) -> int:
    """Kaplan et al. Table 1: forward FLOPs per token ``2N + 2·n_layer·n_ctx·d_attn``.

    N = non-embedding parameters. The second term (Table 1, "Attention: Mask") is half of what QKᵀ
    and ·V cost when computed in full (2·n_ctx·d_attn per token each); the paper gives no derivation,
    and one reading is that it counts only the causal (unmasked) half, which chapter 11 measures by
    counting the mask's entries. A dense FlopCounterMode measurement shows ``4·n_layer·n_ctx·d_attn``.
    """
    return 2 * num_params + 2 * n_layer * n_ctx * d_attn


def training_flops(num_params: int, num_tokens: int) -> int:
    """C ≈ 6·N·D (Kaplan et al. §2.1): 2N per token forward + 4N backward (grads of inputs and weights)."""
    return 6 * num_params * num_tokens


def chinchilla_tokens(num_params: int, tokens_per_param: float = 20) -> float:
    """Compute-optimal training tokens, D ≈ 20·N (Hoffmann et al. 2022: Table 3 gives 20.2B tokens for
    1B parameters; Chinchilla itself has 70B parameters trained on 1.4T tokens)."""
    return num_params * tokens_per_param


def training_seconds(num_flops: float, num_gpus: int, peak_flops_per_gpu: float, mfu: float) -> float:
    """Wall-clock seconds: ``C / (num_gpus · peak · MFU)``; MFU = model FLOPs utilisation (0–1]."""
    if not 0 < mfu <= 1:
        raise ValueError(f"mfu is a fraction of the peak in (0, 1], got {mfu}")
    return num_flops / (num_gpus * peak_flops_per_gpu * mfu)


# --------------------------------------------------------------------------- quantisation

def quantized_bits_per_param(bits: int = 4, block_size: int = 64, scale_bits: int = 32, *,
                             double_quant: bool = False, second_block_size: int = 256,
                             second_scale_bits: int = 32) -> float:
    """Average bits per weight of block-wise quantisation: ``bits + scale_bits / block_size``.

    Each block of `block_size` weights shares one scale (absmax). With double quantisation
    (QLoRA §3) the scales themselves are stored in 8 bits, with one `second_scale_bits` scale per
    `second_block_size` scales: ``bits + 8/block_size + second_scale_bits/(block_size·second_block_size)``.
    NF4, blocks of 64, fp32 absmax: 4.5 bits; with double quantisation ≈ 4.127 bits (QLoRA §3).
    """
    if double_quant:
        return bits + 8 / block_size + second_scale_bits / (block_size * second_block_size)
    return bits + scale_bits / block_size
