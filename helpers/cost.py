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
from typing import Sequence, Union

from helpers._args import SizeTypeError, as_tuple, require_int
from helpers._text import DTYPES, dtype_bytes, format_bytes  # format_bytes: 3_145_728 → '3.00 MiB'

__all__ = ["BYTES_PER_ELEMENT", "linear_macs", "linear_flops", "conv_macs", "conv_flops", "weight_bytes",
           "TrainingMemory", "training_memory", "OPTIMIZER_STATES", "attention_scores_bytes",
           "kv_cache_bytes", "depthwise_separable_ratio", "format_bytes"]

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


def kv_cache_bytes(n_layer: int, n_head: int, head_dim: int, seq_len: int, batch_size: int = 1,
                   bytes_per_element: float = 2, n_kv_head: int | None = None) -> float:
    """Bytes of the key/value cache of a decoder: ``2·n_layer·n_kv_head·head_dim·T·B·bytes``.

    For every layer, the keys and the values (the factor 2) of every past token are kept, each of
    width n_kv_head·head_dim (= d_model without grouped-query attention, n_kv_head = n_head).
    """
    heads = _count(n_head, "n_head", minimum=1)
    kv = heads if n_kv_head is None else _count(n_kv_head, "n_kv_head", minimum=1)
    if heads % kv:
        raise ValueError(f"n_head={heads} must be divisible by n_kv_head={kv}: grouped-query attention shares "
                         f"each key/value head between the same number of query heads")
    sizes = [_count(v, name) for v, name in ((n_layer, "n_layer"), (head_dim, "head_dim"), (seq_len, "seq_len"),
                                            (batch_size, "batch_size"))]
    return 2 * kv * prod(sizes) * _bytes(bytes_per_element)


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
