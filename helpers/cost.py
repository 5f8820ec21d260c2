"""Compute and memory cost as pure arithmetic: MACs/FLOPs, weight/training memory, attention, KV cache.

Like `helpers.formulas`, this module never imports torch, so "formula == measurement" is a real
check: chapter 08 and 11 (and tests/test_cost.py) compare every function with FlopCounterMode,
with tensors saved by autograd, with an optimiser's state and with traced shapes.

Conventions
-----------
* **MAC** = one multiply-accumulate ``a·b + c``. **FLOP** = one floating-point operation.
  A MAC is 2 FLOPs, and ``torch.utils.flop_counter.FlopCounterMode`` reports 2·MACs of matrix
  products/convolutions/attention only; bias additions, activations, norms and softmax count 0.
  The ``*_flops`` functions here follow FlopCounterMode's convention (``2·MACs``).
* Bytes per element: fp32 4, bf16/fp16 2, int8 1, int4 0.5 (two weights per byte).
* Sizes are ints; 0 is allowed where torch runs the layer on it (an empty batch costs 0), negative
  sizes and the configurations torch refuses to run (groups=0, a kernel side 0, out_channels=0 in
  a conv) raise ValueError; None, floats and bools as sizes raise `helpers._args.SizeTypeError`
  (a TypeError and a ValueError), naming the argument.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Mapping, Sequence, Union

from helpers._args import SizeTypeError, as_tuple, require_int
from helpers._text import DTYPES, dtype_bytes, format_bytes  # format_bytes: 3_145_728 → '3.00 MiB'

__all__ = ["BYTES_PER_ELEMENT", "linear_macs", "linear_flops", "conv_macs", "conv_flops", "weight_bytes",
           "TrainingMemory", "training_memory", "OPTIMIZER_STATES", "attention_scores_bytes",
           "kv_cache_bytes", "kv_cache_bytes_from_config", "quantized_bytes_per_element",
           "depthwise_separable_ratio", "format_bytes"]

IntOrTuple = Union[int, Sequence[int]]

BYTES_PER_ELEMENT: dict[str, float] = {name: DTYPES[name][1] for name in ("fp64", "fp32", "tf32", "bf16", "fp16", "int8", "int4")}

#: extra fp32 tensors an optimiser keeps per parameter (Adam: exp_avg and exp_avg_sq).
OPTIMIZER_STATES: dict[str, int] = {"sgd": 0, "sgd_momentum": 1, "rmsprop": 1, "adagrad": 1, "adam": 2, "adamw": 2}


def _tuple(x: IntOrTuple, name: str = "kernel_size", minimum: int = 1) -> tuple[int, ...]:
    """`x` as a tuple of ints of at least `minimum` (an int is a 1-tuple)."""
    n = len(x) if isinstance(x, Sequence) and not isinstance(x, str) else 1
    if n == 0:
        raise ValueError(f"{name} must not be an empty tuple")
    return as_tuple(x, n, name, minimum=minimum)


def _count(value: object, name: str, minimum: int = 0) -> int:
    """A size or count: an int, zero or more (an empty batch or sequence costs nothing) by default."""
    return require_int(value, name, minimum=minimum)


def _bytes(value: object, name: str = "bytes_per_element") -> float:
    """A positive number of bytes per element (0.5 for int4 is allowed)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SizeTypeError(f"{name} must be a number such as 4 (fp32), 2 (bf16) or 0.5 (int4), "
                            f"got {value!r} ({type(value).__name__})")
    if not value > 0:
        raise ValueError(f"{name} must be greater than zero, got {value!r}")
    return value


def linear_macs(in_features: int, out_features: int, rows: int = 1) -> int:
    """MACs of ``nn.Linear(in, out)`` applied to `rows` vectors (rows = B, or B·T for sequences).

    Each of the `out` outputs of each row is a dot product of length `in`: ``rows·in·out`` MACs.
    (The bias adds ``rows·out`` additions, which FlopCounterMode does not count.)
    """
    return _count(rows, "rows") * _count(in_features, "in_features") * _count(out_features, "out_features")


def linear_flops(in_features: int, out_features: int, rows: int = 1) -> int:
    """FLOPs of ``nn.Linear`` as FlopCounterMode counts them: ``2·rows·in·out`` (= 2·MACs)."""
    return 2 * linear_macs(in_features, out_features, rows)


def conv_macs(in_channels: int, out_channels: int, kernel_size: IntOrTuple, output_size: IntOrTuple,
              groups: int = 1, batch_size: int = 1) -> int:
    """MACs of a convolution: every output value is a dot product over (in/groups)·∏kernel inputs.

    ``MACs = B · out_channels · ∏output_size · (in_channels / groups) · ∏kernel_size``.
    `output_size` is the spatial size of the OUTPUT (see `helpers.shapes.conv_output_size`).
    An int kernel_size or output_size applies to every spatial dim (as torch reads kernel_size=3);
    tuples of different lengths are an error. Refused as torch refuses to run the layer: kernel
    or output sides below 1, out_channels or groups below 1, channels not divisible by groups.
    """
    k, o = _tuple(kernel_size), _tuple(output_size, "output_size")
    if isinstance(kernel_size, int) and len(o) > 1:
        k = k * len(o)
    if isinstance(output_size, int) and len(k) > 1:
        o = o * len(k)
    if len(k) != len(o):
        raise ValueError(f"kernel_size {k} and output_size {o} have different numbers of dimensions")
    if len(k) > 3:
        raise ValueError(f"a convolution has 1, 2 or 3 spatial dims (Conv1d/2d/3d), got kernel_size {k}")
    cin = _count(in_channels, "in_channels")
    cout = _count(out_channels, "out_channels", minimum=1)  # torch builds 0 filters but cannot run them
    g = _count(groups, "groups", minimum=1)
    batch = _count(batch_size, "batch_size")
    if cin % g or cout % g:
        raise ValueError(f"in_channels={cin} and out_channels={cout} must be divisible by groups={g}")
    return batch * cout * prod(o) * (cin // g) * prod(k)


def conv_flops(in_channels: int, out_channels: int, kernel_size: IntOrTuple, output_size: IntOrTuple,
               groups: int = 1, batch_size: int = 1) -> int:
    """FLOPs of a convolution as FlopCounterMode counts them: 2·`conv_macs`."""
    return 2 * conv_macs(in_channels, out_channels, kernel_size, output_size, groups, batch_size)


def weight_bytes(num_params: int, dtype: str = "fp32") -> float:
    """Bytes to store `num_params` weights in `dtype` ("fp32", "bf16", "int8", "int4", …).

    int4 packs two weights per byte (quantisation scales/zero-points are ignored here).
    """
    return _count(num_params, "num_params") * dtype_bytes(dtype)


@dataclass(frozen=True)
class TrainingMemory:
    """Bytes held during one training step (fp32 by default), by category."""

    params: int
    grads: int
    optimizer_state: int
    activations: int

    @property
    def total(self) -> int:
        return self.params + self.grads + self.optimizer_state + self.activations

    def as_dict(self) -> dict[str, int]:
        return {"params": self.params, "grads": self.grads, "optimizer_state": self.optimizer_state,
                "activations": self.activations, "total": self.total}


def training_memory(num_params: int, activation_numel: int = 0, optimizer: str = "adam",
                    bytes_per_element: int = 4) -> TrainingMemory:
    """Memory of a training step: weights + gradients + optimiser state + saved activations.

    ``params = grads = P·bytes``; ``optimizer_state = k·P·bytes`` with k = 2 for Adam/AdamW
    (exp_avg, exp_avg_sq), 1 for SGD with momentum, 0 for plain SGD (see `OPTIMIZER_STATES`);
    ``activations = activation_numel·bytes`` (the tensors autograd saves for the backward pass).
    So with Adam in fp32: ``16·P`` bytes before activations. (torch's Adam also keeps one scalar
    ``step`` tensor per parameter tensor — a few bytes, ignored here.)
    """
    if optimizer not in OPTIMIZER_STATES:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZER_STATES)}")
    num_params, activation_numel = _count(num_params, "num_params"), _count(activation_numel, "activation_numel")
    p = num_params * _bytes(bytes_per_element)
    return TrainingMemory(params=p, grads=p, optimizer_state=OPTIMIZER_STATES[optimizer] * p,
                          activations=activation_numel * bytes_per_element)


def attention_scores_bytes(batch_size: int, num_heads: int, seq_len: int, bytes_per_element: float = 4,
                           kv_len: int | None = None) -> float:
    """Bytes of ONE layer's attention matrix (B, h, T, S): ``B·h·T·S·bytes`` — O(T²) for S = T."""
    t = _count(seq_len, "seq_len")
    s = t if kv_len is None else _count(kv_len, "kv_len")
    return _count(batch_size, "batch_size") * _count(num_heads, "num_heads") * t * s * _bytes(bytes_per_element)


def _layer_is_sliding(n_layer: int, sliding_window: int | None, layer_types: Sequence[str] | None,
                      sliding_window_pattern: int | None) -> list[bool]:
    """Which of the n_layer layers keep only a window of keys/values (Hugging Face's conventions).

    ``layer_types`` (Gemma-2/3, Qwen2, … in transformers ≥ 4.53) names every layer "sliding_attention" or
    "full_attention"; ``sliding_window_pattern = p`` (Gemma-3) makes layer i global iff (i + 1) % p == 0,
    i.e. p − 1 local layers then one global; a ``sliding_window`` alone applies to every layer (Mistral-7B v0.1).
    """
    if layer_types is not None:
        if sliding_window_pattern is not None:
            raise ValueError("give layer_types or sliding_window_pattern, not both")
        types = list(layer_types)
        if len(types) != n_layer:
            raise ValueError(f"layer_types has {len(types)} entries but n_layer={n_layer}")
        unknown = sorted({t for t in types} - {"full_attention", "sliding_attention"})
        if unknown:
            raise ValueError(f"layer_types entries must be 'full_attention' or 'sliding_attention', got {unknown}")
        sliding = [t == "sliding_attention" for t in types]
    elif sliding_window_pattern is not None:
        p = _count(sliding_window_pattern, "sliding_window_pattern", minimum=1)
        sliding = [(i + 1) % p != 0 for i in range(n_layer)]
    else:
        sliding = [sliding_window is not None] * n_layer
    if any(sliding) and sliding_window is None:
        raise ValueError("sliding layers need a sliding_window (the number of past tokens they keep)")
    return sliding


def kv_cache_bytes(n_layer: int, n_head: int, head_dim: int, seq_len: int, batch_size: int = 1,
                   bytes_per_element: float = 2, n_kv_head: int | None = None, *,
                   num_key_value_heads: int | None = None, sliding_window: int | None = None,
                   layer_types: Sequence[str] | None = None, sliding_window_pattern: int | None = None,
                   kv_lora_rank: int | None = None, qk_rope_head_dim: int | None = None,
                   block_size: int | None = None) -> float:
    """Bytes of the key/value cache of a decoder after `seq_len` tokens, in every modern form.

    Plain multi-head attention: ``2·n_layer·n_head·head_dim·T·B·bytes`` — for every layer the keys and the
    values (the factor 2) of every past token, each n_head·head_dim wide. The keyword arguments use
    Hugging Face config field names:

    * ``num_key_value_heads`` (= the older ``n_kv_head``; GQA, Ainslie et al. 2023, arXiv:2305.13245;
      MQA = 1): ``2·n_kv·head_dim`` elements per token per layer; n_head must be a multiple of it.
    * ``sliding_window`` = W: a sliding layer keeps only the last ``min(T, W)`` tokens (Mistral-7B's rolling
      buffer, arXiv:2310.06825 §2; transformers' StaticSlidingWindowLayer — its DynamicSlidingWindowLayer
      keeps W − 1). Which layers slide: ``layer_types`` (a list of "sliding_attention"/"full_attention",
      Gemma-2's alternation) or ``sliding_window_pattern`` = p (Gemma-3: p − 1 local layers, then a global
      one); with neither, every layer slides.
    * ``kv_lora_rank`` + ``qk_rope_head_dim`` (MLA, DeepSeek-V2 arXiv:2405.04434 §2.1.2–2.1.3, DeepSeek-V3):
      the cache is the compressed latent c_KV (kv_lora_rank) plus the shared decoupled RoPE key
      (qk_rope_head_dim) — ``kv_lora_rank + qk_rope_head_dim`` elements per token per layer, no factor 2,
      no heads (512 + 64 = 576 for DeepSeek-V2/V3). n_head and head_dim are then unused.
    * ``bytes_per_element`` may include quantisation scales (see `quantized_bytes_per_element`).
    * ``block_size`` (PagedAttention, Kwon et al. 2023, arXiv:2309.06180 §4.1–4.2): memory is handed out in
      blocks of block_size tokens per sequence and layer, so each layer's T tokens occupy
      ``ceil(T / block_size)·block_size`` slots (the waste is in the last block only, < block_size tokens).

    Returns ``B · Σ_layers slots(layer) · width · bytes`` with width = 2·n_kv·head_dim (or
    kv_lora_rank + qk_rope_head_dim) and slots = T (or min(T, W) on a sliding layer), rounded up to blocks.
    """
    layers = _count(n_layer, "n_layer")
    if n_kv_head is not None and num_key_value_heads is not None and n_kv_head != num_key_value_heads:
        raise ValueError(f"n_kv_head={n_kv_head} and num_key_value_heads={num_key_value_heads} are the same "
                         f"argument (the old and the Hugging Face name); give one")
    kv_heads = num_key_value_heads if num_key_value_heads is not None else n_kv_head
    t = _count(seq_len, "seq_len")
    b = _count(batch_size, "batch_size")
    bpe = _bytes(bytes_per_element)
    if (kv_lora_rank is None) != (qk_rope_head_dim is None):
        raise ValueError("MLA needs both kv_lora_rank (the latent) and qk_rope_head_dim (the RoPE key)")
    if kv_lora_rank is not None:
        width = _count(kv_lora_rank, "kv_lora_rank", minimum=1) + _count(qk_rope_head_dim, "qk_rope_head_dim")
    else:
        heads = _count(n_head, "n_head", minimum=1)
        kv = heads if kv_heads is None else _count(kv_heads, "num_key_value_heads", minimum=1)
        if heads % kv:
            raise ValueError(f"n_head={heads} must be divisible by num_key_value_heads={kv}: grouped-query "
                             f"attention shares each key/value head between the same number of query heads")
        width = 2 * kv * _count(head_dim, "head_dim")
    window = None if sliding_window is None else _count(sliding_window, "sliding_window", minimum=1)
    block = None if block_size is None else _count(block_size, "block_size", minimum=1)
    slots = 0
    for sliding in _layer_is_sliding(layers, window, layer_types, sliding_window_pattern):
        kept = min(t, window) if sliding else t  # type: ignore[type-var]
        slots += -(-kept // block) * block if block else kept
    return b * slots * width * bpe


def quantized_bytes_per_element(bits: float, group_size: int | None = None, scale_bytes: float = 2,
                                zero_point: bool = False) -> float:
    """Bytes per cached element when keys/values are stored in `bits` bits with one scale per group.

    ``bits/8 + (scale_bytes [+ scale_bytes for a zero-point]) / group_size``; group_size None = a
    per-tensor scale (transformers' fp8 cache: negligible, counted as 0 here). int8 with an fp16 scale
    per 64 elements: 1 + 2/64 = 1.03125; int4 (KIVI-style, arXiv:2402.02750) with fp16 scale and
    zero-point per 32: 0.5 + 4/32 = 0.625.
    """
    per = _bytes(bits, "bits") / 8
    if group_size is None:
        return per
    g = _count(group_size, "group_size", minimum=1)
    return per + _bytes(scale_bytes, "scale_bytes") * (2 if zero_point else 1) / g


def _config_get(config: object, name: str, default: object = None) -> object:
    if isinstance(config, Mapping):
        return config.get(name, default)
    return getattr(config, name, default)


def kv_cache_bytes_from_config(config: object, seq_len: int, batch_size: int = 1, *,
                               bytes_per_element: float | None = None, block_size: int | None = None,
                               mla: str = "latent") -> float:
    """`kv_cache_bytes` of a Hugging Face config (a ``PretrainedConfig`` or its ``to_dict()`` mapping).

    Reads ``num_hidden_layers``, ``num_attention_heads``, ``num_key_value_heads``, ``head_dim`` (else
    hidden_size // num_attention_heads), ``sliding_window`` (ignored when ``use_sliding_window`` is False, as
    Qwen2 does), ``layer_types``, ``sliding_window_pattern`` / ``_sliding_window_pattern``, ``kv_lora_rank``,
    ``qk_rope_head_dim``; a multimodal config's ``text_config``. bytes_per_element defaults to the config's
    ``torch_dtype``/``dtype`` (2 when unset). ``mla="latent"`` counts DeepSeek's compressed cache (what the
    paper keeps, and what transformers' DeepseekV3Attention caches: a 1-head kv_lora_rank "key" and a 1-head
    qk_rope_head_dim "value"); ``mla="decompressed"`` counts the per-head keys of
    num_heads·(qk_nope_head_dim + qk_rope_head_dim) and values of num_heads·v_head_dim that a cache without
    MLA would hold (the comparison of arXiv:2405.04434 Table 1).
    """
    text = _config_get(config, "text_config")
    if text is not None and _config_get(config, "num_hidden_layers") is None:
        config = text
    get = lambda name, default=None: _config_get(config, name, default)  # noqa: E731
    layers, heads = get("num_hidden_layers"), get("num_attention_heads")
    head_dim = get("head_dim") or get("hidden_size") // heads  # type: ignore[operator]
    if bytes_per_element is None:
        dtype = get("torch_dtype") or get("dtype")
        name = str(dtype).replace("torch.", "") if dtype is not None else "bfloat16"
        bytes_per_element = {"float32": 4, "float64": 8, "float16": 2, "bfloat16": 2, "float8_e4m3fn": 1,
                             "float8_e5m2": 1}.get(name, 2)
    window = get("sliding_window") if get("use_sliding_window", True) is not False else None
    layer_types = get("layer_types")
    pattern = None if layer_types else (get("sliding_window_pattern") or get("_sliding_window_pattern"))
    if layer_types is None and pattern is None and window is not None and get("model_type") in ("gemma2",):
        pattern = 2  # old Gemma-2 configs without layer_types alternate local/global
    kw: dict = dict(sliding_window=window, layer_types=layer_types if window is not None else None,
                    sliding_window_pattern=pattern if window is not None else None, block_size=block_size)
    rank = get("kv_lora_rank")
    if rank is not None and mla == "latent":
        kw.update(kv_lora_rank=rank, qk_rope_head_dim=get("qk_rope_head_dim"))
    elif rank is not None and mla == "decompressed":
        k_width = get("qk_nope_head_dim") + get("qk_rope_head_dim")  # type: ignore[operator]
        per_kv = kv_cache_bytes(layers, heads, 1, seq_len, batch_size, bytes_per_element, **kw) / 2  # type: ignore[arg-type]
        return per_kv * (k_width + get("v_head_dim"))  # type: ignore[operator]
    elif rank is not None:
        raise ValueError(f"mla must be 'latent' or 'decompressed', got {mla!r}")
    return kv_cache_bytes(layers, heads, head_dim, seq_len, batch_size, bytes_per_element,  # type: ignore[arg-type]
                          num_key_value_heads=get("num_key_value_heads") or heads, **kw)


def depthwise_separable_ratio(in_channels: int, out_channels: int, kernel_size: IntOrTuple,
                              bias: bool = False) -> float:
    """Weights of depthwise (C·k²) + pointwise (C·O) divided by a standard conv (C·O·k²).

    Without biases the ratio is exactly ``1/O + 1/k²`` (Howard et al. 2017, MobileNets, eq. 5).
    """
    k = _tuple(kernel_size)
    kk = prod(k) if isinstance(kernel_size, Sequence) else k[0] ** 2  # an int k means a k×k kernel
    c, o = _count(in_channels, "in_channels", minimum=1), _count(out_channels, "out_channels", minimum=1)
    separable = c * kk + c * o + ((c + o) if bias else 0)
    standard = c * o * kk + (o if bias else 0)
    return separable / standard


# chapter 13 (training at scale) lives in helpers.scale; its two fixed API names are re-exported here
from helpers.scale import transformer_activation_bytes, zero_model_state_bytes  # noqa: E402

__all__ += ["zero_model_state_bytes", "transformer_activation_bytes"]
