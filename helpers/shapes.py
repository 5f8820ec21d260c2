"""Output-size arithmetic for convolution and pooling, and `check_shape` — pure Python, no torch.

All size functions take the input's spatial size first (an int, or a tuple with one entry per
spatial dimension) and then the layer's arguments with torch's names. They return an int for an
int input and a tuple otherwise, and raise `ValueError` with a student-readable message exactly
where torch's forward pass raises: among others a spatial size or a kernel side below 1 (torch
runs an empty batch or channel dim, never an empty spatial one), a 1-element kernel tuple for a
2-d or 3-d conv (torch builds ``nn.Conv2d(1, 1, (3,))`` but no input can run through it), more
than 3 spatial dims. A size that is not an int (None, 2.0, True, "3") raises
`helpers._args.SizeTypeError`, a TypeError that is also a ValueError, naming the argument.

Formulas, per spatial dimension (L = input size, k = kernel, s = stride, p = padding, d = dilation)::

    conv:            floor((L + 2p − d·(k−1) − 1) / s) + 1
    conv transpose:  (L − 1)·s − 2p + d·(k−1) + output_padding + 1
    pool:            floor or ceil((L + 2p − d·(k−1) − 1) / s) + 1, and with ceil_mode the last
                     window must start inside the input or the left padding:
                     if (out − 1)·s ≥ L + p then out −= 1  (the rule torch's docs leave out)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Optional, Union

from helpers._args import IntOrTuple, SizeTypeError, as_tuple, is_int, require_int

__all__ = ["conv_output_size", "conv_transpose_output_size", "pool_output_size", "rnn_shapes", "check_shape",
           "ShapeError"]

Size = Union[int, tuple[int, ...]]


def _dims(input_size: IntOrTuple, *args: object) -> tuple[int, tuple[int, ...], bool]:
    """Number of spatial dims, the input as a tuple, and whether to return a plain int.

    Every spatial size must be at least 1: torch only allows the batch or channel dim to be 0.
    """
    if is_int(input_size):
        n = 1
        for a in args:
            if isinstance(a, Sequence) and not isinstance(a, str):
                n = len(a)
                break
        sizes: tuple[object, ...] = (input_size,) * n
    elif isinstance(input_size, Sequence) and not isinstance(input_size, str) and len(input_size):
        sizes = tuple(input_size)
    else:
        raise SizeTypeError(f"input_size should be an int or a tuple of ints (the spatial sizes), got "
                            f"{input_size!r} ({type(input_size).__name__})")
    why = (" (torch accepts an empty batch or channel dimension, never an empty spatial one: "
           "there would be nothing to slide the kernel over)")
    if len(sizes) > 3:
        raise ValueError(f"torch's conv and pool layers have 1, 2 or 3 spatial dims, got {len(sizes)} "
                         f"(input_size={input_size!r}; an int input takes its dims from the first tuple argument)")
    checked = tuple(require_int(v, "input_size", minimum=1, why=why) for v in sizes)
    return len(checked), checked, is_int(input_size) and len(checked) == 1


def _result(values: list[int], scalar: bool) -> Size:
    return values[0] if scalar else tuple(values)


def _check_common(stride: tuple[int, ...], padding: tuple[int, ...], dilation: tuple[int, ...]) -> None:
    if any(s <= 0 for s in stride):
        raise ValueError(f"stride must be at least 1 (non-positive stride is not supported), got {stride}")
    if any(p < 0 for p in padding):
        raise ValueError(f"padding must not be negative, got {padding}")
    if any(d <= 0 for d in dilation):
        raise ValueError(f"dilation must be at least 1, got {dilation}")


def conv_output_size(input_size: IntOrTuple, kernel_size: IntOrTuple, stride: IntOrTuple = 1,
                     padding: Union[IntOrTuple, str] = 0, dilation: IntOrTuple = 1) -> Size:
    """Spatial output size of ``nn.Conv1d/2d/3d``: ``floor((L + 2p − d·(k−1) − 1)/s) + 1``.

    padding='valid' means 0; padding='same' keeps L (requires stride 1; torch pads the extra
    element on the right when d·(k−1) is odd).

    Args:
        input_size: L, or (H, W), or (D, H, W) — the spatial part of (B, C, *spatial).
    Returns:
        the spatial part of the output (B, C_out, *spatial_out), int if input_size was an int.
    Raises:
        ValueError: where torch raises — e.g. the dilated kernel is larger than the padded input.

    >>> conv_output_size(28, kernel_size=3, padding=1)
    28
    >>> conv_output_size((32, 32), kernel_size=5, stride=2)
    (14, 14)
    """
    n, sizes, scalar = _dims(input_size, kernel_size, stride, padding, dilation)
    ks = as_tuple(kernel_size, n, "kernel_size", minimum=1, broadcast_one=False)
    st = as_tuple(stride, n, "stride")
    dl = as_tuple(dilation, n, "dilation")
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise ValueError(f"padding must be an int, a tuple, 'same' or 'valid', got {padding!r}")
        if padding == "same":
            if any(s != 1 for s in st):
                raise ValueError("padding='same' is not supported for strided convolutions (stride must be 1)")
            _check_common(st, (0,) * n, dl)
            return _result(list(sizes), scalar)
        pd: tuple[int, ...] = (0,) * n
    else:
        pd = as_tuple(padding, n, "padding")
    _check_common(st, pd, dl)
    out = []
    for L, k, s, p, d in zip(sizes, ks, st, pd, dl):
        span = d * (k - 1) + 1
        if L + 2 * p < span:
            raise ValueError(
                f"kernel larger than the input: the padded input has {L + 2 * p} positions "
                f"(size {L} + 2·padding {p}) but the kernel spans {span} "
                f"(kernel_size {k}, dilation {d}); use a smaller kernel, more padding, or a larger input")
        out.append((L + 2 * p - span) // s + 1)
    return _result(out, scalar)


def conv_transpose_output_size(input_size: IntOrTuple, kernel_size: IntOrTuple, stride: IntOrTuple = 1,
                               padding: IntOrTuple = 0, output_padding: IntOrTuple = 0,
                               dilation: IntOrTuple = 1) -> Size:
    """Spatial output size of ``nn.ConvTranspose1d/2d/3d``:
    ``(L − 1)·s − 2p + d·(k−1) + output_padding + 1``.

    output_padding resolves the ambiguity of a strided conv (several inputs map to one output
    size) and must be smaller than stride or dilation.

    >>> conv_transpose_output_size(14, kernel_size=2, stride=2)   # U-Net up-convolution doubles
    28
    """
    n, sizes, scalar = _dims(input_size, kernel_size, stride, padding, output_padding, dilation)
    ks = as_tuple(kernel_size, n, "kernel_size", minimum=1, broadcast_one=False)
    st = as_tuple(stride, n, "stride")
    pd = as_tuple(padding, n, "padding")
    op = as_tuple(output_padding, n, "output_padding")
    dl = as_tuple(dilation, n, "dilation")
    _check_common(st, pd, dl)
    out = []
    for L, k, s, p, o, d in zip(sizes, ks, st, pd, op, dl):
        if o < 0 or (o >= s and o >= d):
            raise ValueError(f"output_padding must be smaller than either stride or dilation, got "
                             f"output_padding={o}, stride={s}, dilation={d}")
        size = (L - 1) * s - 2 * p + d * (k - 1) + o + 1
        if size < 1:
            raise ValueError(f"output size is too small: input {L} gives {size} "
                             f"(padding {p} removes more than the kernel adds)")
        out.append(size)
    return _result(out, scalar)


def pool_output_size(input_size: IntOrTuple, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
                     padding: IntOrTuple = 0, dilation: IntOrTuple = 1, ceil_mode: bool = False, *,
                     kind: str = "max") -> Size:
    """Spatial output size of ``nn.MaxPool{1,2,3}d`` (kind='max') or ``nn.AvgPool{1,2,3}d`` ('avg').

    ``out = floor((L + 2p − d·(k−1) − 1)/s) + 1`` — with ceil_mode, ceil instead of floor, then
    torch drops a last window that would start in the right padding:
    ``if (out − 1)·s ≥ L + p: out −= 1``. This second rule is missing from the formula in torch's
    docs. stride defaults to kernel_size (not 1, unlike conv). Average pooling has no dilation.

    Raises ValueError where torch raises: padding larger than half the kernel (``p > k // 2``,
    whatever the dilation), or an output smaller than 1.

    >>> pool_output_size(28, kernel_size=2)
    14
    >>> pool_output_size(5, kernel_size=2, stride=2, ceil_mode=True)
    3
    """
    if kind not in ("max", "avg"):
        raise ValueError(f"kind must be 'max' or 'avg', got {kind!r}")
    n, sizes, scalar = _dims(input_size, kernel_size, stride, padding, dilation)
    ks = as_tuple(kernel_size, n, "kernel_size")
    no_stride = stride is None or (isinstance(stride, Sequence) and not isinstance(stride, str) and len(stride) == 0)
    st = ks if no_stride else as_tuple(stride, n, "stride")
    pd = as_tuple(padding, n, "padding")
    dl = as_tuple(dilation, n, "dilation")
    if kind == "avg" and any(d != 1 for d in dl):
        raise ValueError("average pooling has no dilation argument")
    if any(k <= 0 for k in ks):
        raise ValueError(f"kernel_size must be at least 1, got {ks}")
    _check_common(st, pd, dl)
    if kind == "avg" and n == 3 and any(L < k for L, k in zip(sizes, ks)):
        # avg_pool3d alone checks the *unpadded* input against the kernel
        raise ValueError(f"input {sizes} is smaller than the kernel {ks}: AvgPool3d needs every input side "
                         f"at least as large as the kernel, even with padding")
    out = []
    for L, k, s, p, d in zip(sizes, ks, st, pd, dl):
        effective = d * (k - 1) + 1
        if p > k // 2:
            raise ValueError(f"padding should be at most half of the kernel size: got padding={p} for "
                             f"kernel_size={k} (at most {k // 2}); padding is meant to let windows "
                             f"reach the border, not to pool over padding alone")
        numerator = L + 2 * p - effective
        size = (-(-numerator // s) if ceil_mode else numerator // s) + 1
        if ceil_mode and (size - 1) * s >= L + p:
            size -= 1
        if size < 1:
            raise ValueError(f"output size is too small: input {L} with padding {p} is shorter than "
                             f"the pooling window {effective}")
        out.append(size)
    return _result(out, scalar)


class ShapeError(ValueError):
    """A tensor's shape does not match the expected pattern; the message names the dimension."""


_TOKEN = re.compile(r"^(\.\.\.|\*|\d+|[A-Za-z_][A-Za-z0-9_]*)$")


def check_shape(tensor: Any, pattern: str, **known: int) -> dict[str, int]:
    """Check a tensor's shape against a pattern like ``"B C H W"`` and return the bound sizes.

    Pattern tokens: a name binds a size (the same name must have the same size everywhere, and
    a keyword argument fixes it: ``check_shape(x, "B C H W", C=3)``), an integer must match
    exactly, ``*`` matches any single dim, ``...`` matches any number of leading/middle dims.

    Raises:
        ShapeError (a ValueError): naming the dimension, its axis, expected and actual size.

    >>> import types; t = types.SimpleNamespace(shape=(64, 1, 28, 28))
    >>> check_shape(t, "B C H W", C=1)
    {'B': 64, 'C': 1, 'H': 28, 'W': 28}
    """
    shape = tuple(int(s) for s in getattr(tensor, "shape", tensor))
    for name, size in known.items():
        if not is_int(size):
            hint = f" — write {name}={size.strip()}, without quotes" if isinstance(size, str) and \
                size.strip().isdigit() else ""
            raise SizeTypeError(f"the known size {name}={size!r} must be an integer, got a "
                                f"{type(size).__name__}{hint}")
    known = {name: int(size) for name, size in known.items()}
    tokens = pattern.replace(",", " ").split()
    for tok in tokens:
        if not _TOKEN.match(tok):
            raise ValueError(f"cannot read {tok!r} in shape pattern {pattern!r}: use names, integers, * or ...")
    if tokens.count("...") > 1:
        raise ValueError(f"shape pattern {pattern!r} may contain '...' at most once")
    shown = f"shape {shape} against pattern '{pattern}'"
    if "..." in tokens:
        i = tokens.index("...")
        head, tail = tokens[:i], tokens[i + 1:]
        if len(shape) < len(head) + len(tail):
            raise ShapeError(f"expected at least {len(head) + len(tail)} dims but the tensor has "
                             f"{len(shape)}: {shown}")
        pairs = list(zip(head, shape[:len(head)], range(len(head))))
        offset = len(shape) - len(tail)
        pairs += list(zip(tail, shape[offset:], range(offset, len(shape))))
    else:
        if len(shape) != len(tokens):
            raise ShapeError(f"expected {len(tokens)} dims ({' '.join(tokens)}) but the tensor has "
                             f"{len(shape)}: {shown}")
        pairs = list(zip(tokens, shape, range(len(shape))))
    bound: dict[str, int] = {}
    for tok, size, axis in pairs:
        if tok == "*":
            continue
        if tok.isdigit():
            if size != int(tok):
                raise ShapeError(f"axis {axis} should be {tok} but is {size}: {shown}")
            continue
        if tok in known and size != known[tok]:
            raise ShapeError(f"dimension {tok} (axis {axis}) should be {known[tok]} but is {size}: {shown}")
        if tok in bound and size != bound[tok]:
            raise ShapeError(f"dimension {tok} appears twice with different sizes: {bound[tok]} and "
                             f"{size} (axis {axis}): {shown}")
        bound[tok] = size
    unknown = set(known) - set(bound)
    if unknown:
        raise ValueError(f"{sorted(unknown)} given as known sizes but not in pattern {pattern!r}")
    return bound



def rnn_shapes(mode: str, input_size: int, hidden_size: int, num_layers: int = 1, *, seq_len: int,
               batch: Optional[int] = None, batch_first: bool = False, bidirectional: bool = False,
               proj_size: int = 0) -> dict[str, tuple[int, ...]]:
    """Shapes of the tensors ``nn.RNN`` / ``nn.GRU`` / ``nn.LSTM`` take and return.

    With D = 2 if bidirectional else 1, L = num_layers, H_r = proj_size or hidden_size::

        input   (T, B, input_size)      (B, T, input_size) with batch_first; (T, input_size) if batch is None
        output  (T, B, D·H_r)           the last layer's h_t at every step (batch_first: (B, T, D·H_r))
        h_n     (D·L, B, H_r)           the last step of every layer and direction — never batch-first
        c_n     (D·L, B, hidden_size)   LSTM only: the cell state is not projected

    Raises ValueError for the configurations torch rejects (see `formulas.rnn_params`).

    >>> rnn_shapes("LSTM", 20, 64, 2, seq_len=5, batch=3, bidirectional=True)["h_n"]
    (4, 3, 64)
    """
    from helpers.formulas import rnn_params_breakdown  # noqa: PLC0415 - validates like torch

    rnn_params_breakdown(mode, input_size, hidden_size, num_layers, bidirectional=bidirectional,
                         proj_size=proj_size)
    require_int(seq_len, "seq_len", minimum=1, why=" (torch: expected sequence length to be larger than 0)")
    if batch is not None:
        require_int(batch, "batch", minimum=0, why=" (an empty batch, 0, is allowed as in torch)")
    d = 2 if bidirectional else 1
    h_r = proj_size or hidden_size
    T, L = int(seq_len), int(num_layers)

    def batched(*inner: int) -> tuple[int, ...]:
        if batch is None:
            return (T, *inner)
        return (int(batch), T, *inner) if batch_first else (T, int(batch), *inner)

    state = (d * L, h_r) if batch is None else (d * L, int(batch), h_r)
    shapes = {"input": batched(int(input_size)), "output": batched(d * h_r), "h_n": state}
    if str(mode).upper() == "LSTM":
        shapes["c_n"] = (*state[:-1], int(hidden_size))
    return shapes
