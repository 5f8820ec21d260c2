"""`explain`: run a forward pass and, when it fails, say which layer, what shape it got versus
what it expects, and the likely cause — in plain language, never a traceback."""

from __future__ import annotations

import html
import sys
import types
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

import torch
from torch import nn

from helpers._forward import Tracer, as_args, shapes_of, traced_pass
from helpers._text import Shape, _fmt_shape, _format_inputs, format_shapes, times as _times

__all__ = ["explain", "Explanation"]

DeviceLike = Union[str, torch.device]

# --------------------------------------------------------------------------- explain ---------

class Explanation(str):
    """The text returned by `explain` (a ``str``), plus its parts as attributes.

    Attributes: ``ok`` (the forward pass ran), ``layer`` (qualified name of the failing layer,
    ``""`` = the model itself, None when ok), ``layer_type``, ``input_shapes`` (what that layer
    received), ``error`` (torch's one-line message). Renders as text or HTML in notebooks.
    """

    ok: bool
    layer: Optional[str]
    layer_type: Optional[str]
    input_shapes: Any
    error: Optional[str]

    def __new__(cls, text: str, *, ok: bool, layer: Optional[str] = None, layer_type: Optional[str] = None,
                input_shapes: Any = None, error: Optional[str] = None) -> "Explanation":
        obj = super().__new__(cls, text)
        obj.ok, obj.layer, obj.layer_type = ok, layer, layer_type
        obj.input_shapes, obj.error = input_shapes, error
        return obj

    def __repr__(self) -> str:
        return str.__str__(self)

    def _repr_html_(self) -> str:
        colour = "#1a7f37" if self.ok else "#b35900"
        lines = str.__str__(self).split("\n")
        head = f"<b style='color:{colour}'>{html.escape(lines[0])}</b>"
        rest = "".join(f"<li>{html.escape(ln.strip())}</li>" for ln in lines[1:] if ln.strip())
        return f"<div>{head}<ul style='margin-top:0.3em'>{rest}</ul></div>" if rest else f"<div>{head}</div>"


class _Explained(Exception):
    """Raised from a pre-hook when explain spots a problem the meta device cannot (index values)."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__(lines[0])
        self.lines = lines


def _first_shape(structure: Any) -> Optional[Shape]:
    if isinstance(structure, tuple) and all(isinstance(v, int) for v in structure):
        return structure
    if isinstance(structure, tuple):
        for s in structure:
            found = _first_shape(s)
            if found is not None:
                return found
    if isinstance(structure, Mapping):
        for s in structure.values():
            found = _first_shape(s)
            if found is not None:
                return found
    return None


def _describe(tracer: Tracer, idx: int) -> str:
    c = tracer.calls[idx]
    kind = type(c.module).__name__
    if not c.name:
        return f"the model ({kind})"
    return f"layer {c.name} ({kind})" if c.name.isdigit() else f"{c.name} ({kind})"


def _previous(tracer: Tracer, before: int, attr: Optional[str] = None) -> Optional[int]:
    """Index of the most recent call that finished before call `before` (optionally of a
    module that has attribute `attr`)."""
    for i in range(before - 1, -1, -1):
        c = tracer.calls[i]
        if c.done and (attr is None or hasattr(c.module, attr)):
            return i
    return None


# ------------------------------------------------------------------- per-layer diagnosers ----

@dataclass
class Failure:
    """What a diagnoser knows about the failed call: the tracer, the call's index, the module,
    a description (``fc1 (Linear)``), its first input shape `x`, torch's one-line message and the
    call that finished just before (index and output shape)."""

    tracer: Tracer
    idx: int
    module: nn.Module
    who: str
    x: Optional[Shape]
    msg: str
    prev: Optional[int]
    prev_out: Optional[Shape]


Diagnoser = Callable[[Failure], Optional[list[str]]]
_DIAGNOSERS: dict[type, Diagnoser] = {}


def diagnoses(*types: type) -> Callable[[Diagnoser], Diagnoser]:
    """Register `fn(failure) -> lines | None` as the diagnoser of these module types (in the style
    of torch's flop_counter registry). The most specific registered class in the module's MRO
    wins; None falls back to the generic message reading."""
    def register(fn: Diagnoser) -> Diagnoser:
        for t in types:
            _DIAGNOSERS[t] = fn
        return fn
    return register


def _diagnose(tracer: Tracer, idx: int, exc: BaseException) -> list[str]:
    """Plain-language lines about why call `idx` failed."""
    c = tracer.calls[idx]
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    prev = _previous(tracer, idx)
    f = Failure(tracer, idx, c.module, _describe(tracer, idx), _first_shape(c.args) or _first_shape(c.kwargs), msg,
                prev, _first_shape(tracer.calls[prev].output) if prev is not None else None)
    for cls in type(c.module).__mro__:
        fn = _DIAGNOSERS.get(cls)
        if fn is not None and f.x is not None:
            lines = fn(f)
            if lines:
                return lines
            break
    return _generic(tracer, idx, msg, f.x, prev, type(exc).__name__)


@diagnoses(nn.Linear)
def _linear(f: Failure) -> Optional[list[str]]:
    m, x, tracer = f.module, f.x, f.tracer
    assert x is not None
    if x[-1] == m.in_features:
        return None
    got = x[-1]
    lines = [f"{f.who} expects {m.in_features} input features (in_features = the last dimension) "
             f"but got {got} — its input has shape {_fmt_shape(x)}."]
    if len(x) > 2 and math.prod(x[1:]) == m.in_features:
        return [*lines, f"nn.Linear only mixes the LAST dimension: flatten the {len(x)}-D input first with "
                        f"torch.flatten(x, 1) or nn.Flatten() → {m.in_features} = {_times(x[1:])} "
                        "features, which is what the layer was built for."]
    if len(x) > 2 and f.prev_out is not None and len(f.prev_out) >= 3 and f.prev_out == x:
        return [*lines, f"nn.Linear only mixes the LAST dimension, but this is a {len(x)}-D feature map "
                        f"{_fmt_shape(x)}: flatten it first with torch.flatten(x, 1) or nn.Flatten() → "
                        f"{math.prod(x[1:])} = {_times(x[1:])} features, then use "
                        f"nn.Linear({math.prod(x[1:])}, {m.out_features}) (or nn.LazyLinear({m.out_features}))."]
    src = None
    for j in range(f.idx - 1, -1, -1):  # the multi-dim output that was flattened into x
        s = _first_shape(tracer.calls[j].output) if tracer.calls[j].done else None
        if s is not None and len(s) >= 3 and math.prod(s[1:]) == got and s[0] == x[0]:
            src = (j, s)
            break
    if src is not None and len(x) == 2:
        j, s = src
        lines.append(f"{got} = {_times(s[1:])}: the flattened output {_fmt_shape(s)} of {_describe(tracer, j)}.")
        lines.append(f"Likely cause: the flatten size after conv/pool is wrong — use "
                     f"nn.Linear({'*'.join(map(str, s[1:]))}, {m.out_features}) (= {got} inputs), or "
                     f"nn.LazyLinear({m.out_features}), or compute it with helpers.shapes "
                     f"(conv_output_size / pool_output_size).")
        if len(s) == 4 and m.in_features % s[1] == 0:
            side = math.isqrt(m.in_features // s[1])
            if side * side * s[1] == m.in_features:
                lines.append(f"({m.in_features} = {s[1]}×{side}×{side} would fit {side}×{side} feature maps, "
                             f"but after the conv/pool layers they are {s[2]}×{s[3]}.)")
    elif f.prev is None:
        lines.append(f"Likely cause: the input has {got} features per example but the layer was built for "
                     f"{m.in_features}: use nn.Linear({got}, {m.out_features}), or reshape the input.")
    else:
        lines.append(f"Likely cause: the layer before, {_describe(tracer, f.prev)}, produces {got} features. "
                     f"Make them agree: nn.Linear({got}, {m.out_features}), or change the previous layer "
                     f"to output {m.in_features}.")
    return lines


@diagnoses(nn.modules.conv._ConvNd)
def _conv(f: Failure) -> Optional[list[str]]:
    m, x, tracer = f.module, f.x, f.tracer
    assert x is not None
    d = len(m.kernel_size)
    cls = type(m).__name__
    sp = ("L",) if d == 1 else ("H", "W") if d == 2 else ("D", "H", "W")
    spatial = ", ".join(sp)
    if len(x) not in (d + 1, d + 2):
        lines = [f"{f.who} expects a {d + 1}-D (C, {spatial}) or {d + 2}-D (N, C, {spatial}) "
                 f"input but got a {len(x)}-D tensor of shape {_fmt_shape(x)}."]
        flat = f.prev is not None and (isinstance(tracer.calls[f.prev].module, (nn.Flatten, nn.Linear))
                                       and f.prev_out == x)
        if len(x) < d + 1 and flat:
            assert f.prev is not None
            lines.append(f"Likely cause: it was flattened — {_describe(tracer, f.prev)} turned the feature map "
                         f"into {_fmt_shape(x)} before this convolution: move the Flatten (and Linear layers) after "
                         f"the convolutions, or reshape back to (N, C, {spatial}).")
        elif len(x) == d:
            lines.append("Likely cause: the channel dimension is missing — add it with x.unsqueeze(1) "
                         f"(e.g. grayscale images (N, {spatial}) → (N, 1, {spatial})).")
        elif len(x) < d:
            lines.append("Likely cause: the tensor was flattened (or came out of a Linear) before this "
                         f"convolution — reshape it back to (N, C, {spatial}) or reorder the layers.")
        else:
            lines.append(f"Likely cause: too many dimensions for a {cls} — merge the extra ones into the "
                         f"batch (x.flatten(0, 1)) or use a {d + 1}-d convolution.")
        return lines
    ch = x[-(d + 1)]
    if ch != m.in_channels:
        if len(x) == d + 1:  # unbatched
            lines = [f"{f.who} got a {d + 1}-D input {_fmt_shape(x)}, which torch reads as ONE unbatched example "
                     f"(C, {spatial}) with C = {ch} channels, but the layer expects in_channels = {m.in_channels}."]
            lines.append(f"Likely cause: a batch of {x[0]} single-channel examples without the channel dimension — "
                         f"add it with x.unsqueeze(1) → {_fmt_shape((x[0], m.in_channels, *x[1:]))}"
                         if m.in_channels == 1 else
                         f"Likely cause: the batch (or channel) dimension is missing: a batch is "
                         f"(N, C, {spatial}) with C = {m.in_channels}; add the missing dimension with unsqueeze.")
            return lines
        lines = [f"{f.who} expects {m.in_channels} input channels (in_channels) but got {ch} — input shape "
                 f"{_fmt_shape(x)}, where channels are dimension {len(x) - d - 1}."]
        pc = _previous(tracer, f.idx, "out_channels")
        if x[-1] == m.in_channels:
            lines.append("Likely cause: the input looks channels-last (N, …, C); convolutions want "
                         f"channels first: x.permute(0, {d + 1}, {', '.join(str(i) for i in range(1, d + 1))}).")
        elif pc is not None and tracer.calls[pc].module.out_channels == ch:
            lines.append(f"Likely cause: in_channels of {tracer.calls[f.idx].name or cls} must equal out_channels of "
                         f"the previous convolution {_describe(tracer, pc)}, which is {ch}: use "
                         f"nn.{cls}({ch}, {m.out_channels}, …).")
        else:
            lines.append(f"Likely cause: the data (or the layer before) has {ch} channels: use "
                         f"nn.{cls}({ch}, {m.out_channels}, …) or nn.Lazy{cls}({m.out_channels}, …).")
        return lines
    if "kernel size" in f.msg.lower() or "output size is too small" in f.msg.lower():
        k = tuple((kk - 1) * dd + 1 for kk, dd in zip(m.kernel_size, m.dilation))
        return [f"{f.who} got spatial size {_times(x[-d:])} (padding {m.padding}), smaller than its "
                f"(dilated) kernel {_times(k)}.",
                "Likely cause: the feature map shrank too much in earlier conv/pool layers — add "
                "padding, remove a pooling layer or feed a larger input; check the sizes with "
                "helpers.shapes.conv_output_size / pool_output_size."]
    return None


@diagnoses(nn.modules.batchnorm._BatchNorm)
def _batchnorm(f: Failure) -> Optional[list[str]]:
    m, x = f.module, f.x
    assert x is not None
    cls = type(m).__name__
    if len(x) >= 2 and x[1] != m.num_features:
        lines = [f"{f.who} expects {m.num_features} features/channels (num_features, dimension 1) but got "
                 f"{x[1]} — input shape {_fmt_shape(x)}."]
        if x[-1] == m.num_features and len(x) >= 3:
            order = (0, len(x) - 1, *range(1, len(x) - 1))
            lines.append(f"Likely cause: channels-last input — {cls} normalises dimension 1, so a (N, L, C) "
                         f"sequence must be (N, C, L): x.transpose(1, 2)" if len(x) == 3 else
                         f"Likely cause: channels-last input — {cls} normalises dimension 1: x.permute{order}.")
        else:
            lines.append(f"Likely cause: num_features must equal the channels of the previous layer: use "
                         f"nn.{cls}({x[1]}).")
        return lines
    if "more than 1 value per channel" in f.msg:
        return [f"{f.who} is in training mode and got {_fmt_shape(x)}: only one value per channel, so the batch "
                "statistics (mean and variance over the batch) cannot be computed.",
                "Likely cause: a batch of 1 in train mode — use a batch of at least 2, or call model.eval() "
                "to use the running statistics (inference)."]
    return [f"{f.who} received shape {_fmt_shape(x)}: " + f.msg,
            "Likely cause: BatchNorm1d wants (N, C) or (N, C, L); BatchNorm2d (N, C, H, W); "
            "BatchNorm3d (N, C, D, H, W)."]


@diagnoses(nn.LayerNorm)
def _layernorm(f: Failure) -> Optional[list[str]]:
    m, x = f.module, f.x
    assert x is not None
    ns = tuple(m.normalized_shape)
    if tuple(x[-len(ns):]) == ns:
        return None
    lines = [f"{f.who} normalizes the last {len(ns)} dimension(s), which must be {_fmt_shape(ns)} "
             f"(normalized_shape), but the input {_fmt_shape(x)} ends with {_fmt_shape(x[-len(ns):])}."]
    if len(x) == 4 and len(ns) == 1 and x[1] == ns[0]:
        lines.append("Likely cause: an image-like (N, C, H, W) input — LayerNorm(C) needs channels last: "
                     "permute to (N, H, W, C), or use nn.GroupNorm(1, C) / nn.BatchNorm2d(C).")
    else:
        lines.append(f"Likely cause: normalized_shape must be the feature size: nn.LayerNorm({x[-1]}).")
    return lines


@diagnoses(nn.GroupNorm)
def _groupnorm(f: Failure) -> Optional[list[str]]:
    m, x = f.module, f.x
    assert x is not None
    if len(x) < 2 or x[1] == m.num_channels:
        return None
    return [f"{f.who} expects {m.num_channels} channels (num_channels, dimension 1) but got {x[1]} — "
            f"input shape {_fmt_shape(x)}.", f"Likely cause: use nn.GroupNorm({m.num_groups}, {x[1]})."]


@diagnoses(nn.RNNBase)
def _rnn(f: Failure) -> Optional[list[str]]:
    m, x, tracer = f.module, f.x, f.tracer
    assert x is not None
    kind = type(m).__name__
    dims = "(N, L, H_in)" if m.batch_first else "(L, N, H_in)"
    if len(x) not in (2, 3):
        return [f"{f.who} expects a 2-D (L, H_in) or 3-D {dims} input but got {len(x)}-D {_fmt_shape(x)}.",
                "Likely cause: a sequence model wants (sequence, features) per example; flatten "
                "extra dimensions into the feature dimension, or add a batch dimension."]
    if x[-1] != m.input_size:
        lines = [f"{f.who} expects input_size = {m.input_size} features in the last dimension but got {x[-1]} "
                 f"— input shape {_fmt_shape(x)}, read as {dims} (batch_first={m.batch_first})."]
        pr = _previous(tracer, f.idx, "hidden_size")
        if m.input_size in x[:-1]:
            lines.append(f"Likely cause: the dimensions are in the wrong order — {m.input_size} appears at "
                         f"dimension {x.index(m.input_size)}; transpose/permute the input, or check batch_first.")
        elif pr is not None and isinstance(tracer.calls[pr].module, nn.RNNBase):
            p = tracer.calls[pr].module
            width = (p.proj_size or p.hidden_size) * (2 if p.bidirectional else 1)
            lines.append(f"Likely cause: stacked recurrent layers — the next layer's input_size must be the "
                         f"previous layer's output width, {width} (= {'proj_size' if p.proj_size else 'hidden_size'}"
                         f"{' × 2 directions' if p.bidirectional else ''} of {_describe(tracer, pr)}).")
        else:
            lines.append(f"Likely cause: input_size is the number of features per time step: use "
                         f"nn.{kind}({x[-1]}, {m.hidden_size}, …).")
        return lines
    if "hidden" in f.msg.lower():
        dirs = 2 if m.bidirectional else 1
        n = x[0] if m.batch_first and len(x) == 3 else x[1] if len(x) == 3 else None
        h_out = m.proj_size or m.hidden_size
        want = (dirs * m.num_layers, n, h_out) if n is not None else (dirs * m.num_layers, h_out)
        return [f"{f.who}: the initial hidden state has the wrong shape ({f.msg}).",
                f"Likely cause: h_0 (and c_0) must be (num_layers × directions, N, H_out) = {want} — "
                "note that batch_first does NOT apply to the hidden state."]
    return None


@diagnoses(nn.Embedding)
def _embedding(f: Failure) -> Optional[list[str]]:
    if "scalar type" in f.msg or "indices" in f.msg.lower():
        return [f"{f.who} needs integer token ids (torch.long or torch.int), but got floats of shape "
                f"{_fmt_shape(f.x) if f.x is not None else '?'}.",
                "Likely cause: the input went through a float op or was built with torch.randn — use "
                "x.long(), torch.randint(0, num_embeddings, shape), or summary(..., dtypes=[torch.long])."]
    return None


@diagnoses(nn.MultiheadAttention)
def _mha(f: Failure) -> Optional[list[str]]:
    m, x = f.module, f.x
    assert x is not None
    if x[-1] == m.embed_dim:
        return None
    return [f"{f.who} expects embed_dim = {m.embed_dim} in the last dimension of the query but got {x[-1]} "
            f"— query shape {_fmt_shape(x)}, read as {'(N, L, E)' if m.batch_first else '(L, N, E)'}.",
            f"Likely cause: the tokens' feature size must equal embed_dim: project them with "
            f"nn.Linear({x[-1]}, {m.embed_dim}) or build nn.MultiheadAttention({x[-1]}, …)."]


def _generic(tracer: Tracer, idx: int, msg: str, x: Optional[Shape], prev: Optional[int],
             kind: str = "Error") -> list[str]:
    c = tracer.calls[idx]
    who = _describe(tracer, idx)
    lines: list[str] = []
    done_children = [i for i in range(idx + 1, len(tracer.calls)) if tracer.calls[i].done]
    children_ran = bool(done_children)
    prev = done_children[-1] if done_children else prev
    where = (f"{who} failed in its own forward code (not inside a child layer)" if children_ran
             else f"{who} failed")
    lines.append(f"{where}; its input shape was {_format_inputs(c.args, c.kwargs) or '()'}.")
    if children_ran:
        p = tracer.calls[prev]
        lines.append(f"The last layer that finished was {_describe(tracer, prev)} with output "
                     f"{format_shapes(p.output)}.")
    mm = re.search(r"shape '\[([-\d, ]+)\]' is invalid for input of size (\d+)", msg)
    if mm:
        want = [int(v) for v in mm.group(1).split(",")]
        size = int(mm.group(2))
        lines.append(f"A view/reshape asked for {want}, which is not possible for a tensor of {size:,} elements"
                     + (f" (= {_times(tracer.calls[prev].output)})" if children_ran and
                        isinstance(tracer.calls[prev].output, tuple) and
                        math.prod(tracer.calls[prev].output) == size else "") + ".")
        lines.append("Likely cause: a hard-coded flatten size — use x.flatten(1) or x.view(x.size(0), -1).")
        return lines
    mm = (re.search(r"\((\d+)x(\d+) and (\d+)x(\d+)\)", msg) or
          re.search(r"\[(\d+), (\d+)\] X \[(\d+), (\d+)\]", msg))
    if mm:
        a, b, cc, d = (int(v) for v in mm.groups())
        lines.append(f"A matrix product (F.linear or @) multiplies a {a}×{b} by a {cc}×{d} matrix: the inner "
                     f"sizes {b} and {cc} must be equal.")
        return lines
    mm = re.search(r"size of tensor a \((\d+)\) must match the size of tensor b \((\d+)\) at non-singleton "
                   r"dimension (\d+)", msg)
    if mm:
        lines.append(f"Element-wise op / broadcasting: sizes {mm.group(1)} and {mm.group(2)} differ at dimension "
                     f"{mm.group(3)} (counting from the right-aligned end), and neither is 1.")
        return lines
    if "Sizes of tensors must match except in dimension" in msg:
        lines.append("torch.cat/stack: all tensors must have equal sizes except along the concatenation dimension.")
        return lines
    lines.append(f"Error (not recognised as a shape mismatch): {kind}: {msg}")
    return lines


# ------------------------------------------------------------------- pre-call checks ---------
# What the meta device cannot see (meta tensors carry no values, and meta kernels do not compare
# dtypes): checked before each call, on any device, so meta and CPU give the same verdict.

_WEIGHTED = (nn.Linear, nn.Bilinear, nn.modules.conv._ConvNd, nn.RNNBase, nn.MultiheadAttention)


def _dtype_problem(module: nn.Module, args: tuple[Any, ...]) -> Optional[list[str]]:
    weight = next((p for p in module.parameters(recurse=False) if p.is_floating_point()), None)
    x = args[0] if args and isinstance(args[0], torch.Tensor) else None
    if weight is None or x is None or x.dtype == weight.dtype:
        return None
    kind = type(module).__name__
    if not x.is_floating_point():
        return [f"{kind} multiplies its input by {weight.dtype} weights, but the input is {x.dtype} "
                f"(shape {_fmt_shape(tuple(x.shape))}) — integer tensors cannot go into a {kind}.",
                "Likely cause: token ids or labels fed to a layer that wants features — embed the ids first "
                f"(nn.Embedding), or convert with x.float() / x.to({weight.dtype})."]
    return [f"{kind} has {weight.dtype} weights but its input is {x.dtype} (shape {_fmt_shape(tuple(x.shape))}): "
            "torch refuses to mix dtypes in a matrix product.",
            f"Likely cause: the input was built in another precision — use x.to({weight.dtype}), or convert the "
            f"model with model.to({x.dtype})."]


def _pre_check(tracer: Tracer, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Before each call: dtypes of weighted layers, and token ids against each Embedding's
    num_embeddings (the caller's tensors hold the values when the pass runs on meta)."""
    if isinstance(module, _WEIGHTED):
        problem = _dtype_problem(module, args)
        if problem:
            raise _Explained([f"{_describe(tracer, len(tracer.calls) - 1)}: " + problem[0], *problem[1:]])
    if (not isinstance(module, nn.Embedding) or type(module).forward is not nn.Embedding.forward
            or not args or not isinstance(args[0], torch.Tensor)):
        return  # (a subclass with its own forward, e.g. a positional table, may not take token ids)
    ids = args[0] if not args[0].is_meta else tracer.originals.get(id(args[0]))
    if ids is None:
        tracer.unchecked.append(len(tracer.calls) - 1)  # ids computed inside forward, on meta
        return
    if ids.is_floating_point() or ids.is_meta or ids.numel() == 0:
        return
    lo, hi = int(ids.min()), int(ids.max())
    who = _describe(tracer, len(tracer.calls) - 1)
    if lo < 0:
        raise _Explained([
            f"{who} looks up rows by token id, so ids must be in [0, {module.num_embeddings - 1}], but the "
            f"input contains {lo} — a negative id.",
            "Likely cause: a padding or 'ignore' marker (-1, -100 is CrossEntropyLoss's ignore_index for "
            "LABELS) fed to the embedding — replace it with a real padding id (nn.Embedding(…, padding_idx=0)) "
            "before the lookup."])
    if hi >= module.num_embeddings:
        raise _Explained([
            f"{who} has num_embeddings = {module.num_embeddings} rows, so token ids must be in "
            f"[0, {module.num_embeddings - 1}], but the input contains {hi}.",
            "Likely cause: the vocabulary is larger than the embedding table — build "
            f"nn.Embedding({hi + 1}, {module.embedding_dim}) (vocab size = max id + 1), or remap/clip the ids."])


def explain(model: nn.Module, example_inputs: Any, *, device: DeviceLike = "meta") -> Explanation:
    """Run ``model(example_inputs)`` and explain a failure in plain language.

    Returns an `Explanation` (a str): ``"ran fine: output shape (2, 10)"`` when the pass works,
    otherwise which layer failed (qualified name and type), the input shape it received versus
    what it expects, and the likely cause, e.g. ``fc1 (Linear) expects 4096 input features … but
    got 3136 … 3136 = 16×14×14 …``. The pass runs on `device` (meta: free, no weights needed) on a
    stand-in of the model (never modified); dtypes of weighted layers and token ids against each
    Embedding's ``num_embeddings`` are checked too (meta kernels see neither). Never raises for an
    error inside the forward pass.

    Args:
        model: the module to run (not modified).
        example_inputs: a tensor, a tuple/list of positional inputs or a dict of keyword inputs.
        device: ``"meta"`` (default) or a real device.
    """
    args, kwargs = as_args(example_inputs)
    try:
        run = traced_pass(model, args, kwargs, torch.device(device), count_flops=True, check=_pre_check,
                          per_module=True)
    except Exception as exc:  # noqa: BLE001 — turned into an explanation, never a traceback
        return _failed(exc)
    text = f"✓ ran fine: output shape {format_shapes(shapes_of(run.output))}"
    unchecked = sorted({_describe(run.tracer, i) for i in run.tracer.unchecked})
    if unchecked:
        text += (f"\n  (on meta, the token ids that {', '.join(unchecked)} received were computed inside forward, "
                 "so their values could not be checked: run explain(..., device='cpu') to check them)")
    return Explanation(text, ok=True, input_shapes=tuple(shapes_of(a) for a in run.args))


def _failed(exc: BaseException) -> Explanation:
    tracer: Optional[Tracer] = getattr(exc, "_trace", None)
    idx = tracer.failed_call(exc) if tracer is not None else None
    error = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, _Explained):
        lines = exc.lines
    elif tracer is None or idx is None:
        lines = [f"the forward pass failed before any layer ran: {error}"]
    else:
        lines = _diagnose(tracer, idx, exc)
    c = tracer.calls[idx] if tracer is not None and idx is not None else None
    if tracer is None or idx is None:
        head = "✗ The forward pass failed:"
    elif lines[-1].startswith("Error (not recognised"):
        head = f"✗ The forward pass failed in {_describe(tracer, idx)}:"
    else:
        head = f"✗ Shape problem in {_describe(tracer, idx)}:" if not isinstance(exc, _Explained) or \
            "dtype" not in lines[0] else f"✗ Dtype problem in {_describe(tracer, idx)}:"
    text = "\n".join([head, *("  " + ln for ln in lines),
                      *([f"  (torch's message: {error})"]
                        if not isinstance(exc, _Explained) and not lines[-1].startswith("Error (not") else [])])
    return Explanation(text, ok=False, layer=c.name if c else None,
                       layer_type=type(c.module).__name__ if c else None,
                       input_shapes=c.args if c else None, error=error)


class _CallableModule(types.ModuleType):
    """``helpers.explain`` is both this module and, called, the function: ``from helpers import
    explain`` (which yields the module once it is imported) keeps working as ``explain(…)``."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return explain(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
