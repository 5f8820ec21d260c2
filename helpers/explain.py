"""`explain`: run a forward pass and, when it fails, say which layer, what shape it got versus
what it expects, and the likely cause — in plain language, never a traceback."""

from __future__ import annotations

import html
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, Optional, Union

import torch
from torch import nn

from helpers._forward import _Tracer, _as_args, _map_tensors, _meta_limitation, _prepare, _real_device, _run, _shapes_of
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


def _describe(tracer: _Tracer, idx: int) -> str:
    c = tracer.calls[idx]
    kind = type(c.module).__name__
    if not c.name:
        return f"the model ({kind})"
    return f"layer {c.name} ({kind})" if c.name.isdigit() else f"{c.name} ({kind})"


def _previous(tracer: _Tracer, before: int, attr: Optional[str] = None) -> Optional[int]:
    """Index of the most recent call that finished before call `before` (optionally of a
    module that has attribute `attr`)."""
    for i in range(before - 1, -1, -1):
        c = tracer.calls[i]
        if c.done and (attr is None or hasattr(c.module, attr)):
            return i
    return None


def _diagnose(tracer: _Tracer, idx: int, exc: BaseException) -> list[str]:
    """Plain-language lines about why call `idx` failed."""
    c = tracer.calls[idx]
    m = c.module
    who = _describe(tracer, idx)
    x = _first_shape(c.args) or _first_shape(c.kwargs)
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    prev = _previous(tracer, idx)
    prev_out = _first_shape(tracer.calls[prev].output) if prev is not None else None

    if isinstance(m, nn.Linear) and x is not None and x[-1] != m.in_features:
        got = x[-1]
        lines = [f"{who} expects {m.in_features} input features (in_features = the last dimension) "
                 f"but got {got} — its input has shape {_fmt_shape(x)}."]
        if len(x) > 2 and prev_out is not None and len(prev_out) >= 3 and prev_out == x:
            lines.append(f"nn.Linear only mixes the LAST dimension, but this is a {len(x)}-D feature map: "
                         f"flatten it first with torch.flatten(x, 1) or nn.Flatten() "
                         f"→ {math.prod(x[1:])} = {_times(x[1:])} features.")
        src = None
        for j in range(idx - 1, -1, -1):  # the multi-dim output that was flattened into x
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
        elif prev is None:
            lines.append(f"Likely cause: the input has {got} features per example but the layer was built for "
                         f"{m.in_features}: use nn.Linear({got}, {m.out_features}), or reshape the input.")
        else:
            lines.append(f"Likely cause: the layer before, {_describe(tracer, prev)}, produces {got} features. "
                         f"Make them agree: nn.Linear({got}, {m.out_features}), or change the previous layer "
                         f"to output {m.in_features}.")
        return lines

    if isinstance(m, nn.modules.conv._ConvNd) and x is not None:
        d = len(m.kernel_size)
        transposed = isinstance(m, nn.modules.conv._ConvTransposeNd)
        cls = type(m).__name__
        sp = ("L",) if d == 1 else ("H", "W") if d == 2 else ("D", "H", "W")
        if len(x) not in (d + 1, d + 2):
            lines = [f"{who} expects a {d + 1}-D (C, {', '.join(sp)}) or {d + 2}-D (N, C, {', '.join(sp)}) "
                     f"input but got a {len(x)}-D tensor of shape {_fmt_shape(x)}."]
            if len(x) == d:
                lines.append("Likely cause: the channel dimension is missing — add it with x.unsqueeze(1) "
                             f"(e.g. grayscale images (N, {', '.join(sp)}) → (N, 1, {', '.join(sp)})).")
            elif len(x) < d:
                lines.append("Likely cause: the tensor was flattened (or came out of a Linear) before this "
                             f"convolution — reshape it back to (N, C, {', '.join(sp)}) or reorder the layers.")
            else:
                lines.append(f"Likely cause: too many dimensions for a {cls} — merge the extra ones into the "
                             f"batch (x.flatten(0, 1)) or use a {d + 1}-d convolution.")
            return lines
        ch = x[-(d + 1)]
        if ch != m.in_channels:
            lines = [f"{who} expects {m.in_channels} input channels (in_channels) but got {ch} — input shape "
                     f"{_fmt_shape(x)}, where channels are dimension {len(x) - d - 1}."]
            pc = _previous(tracer, idx, "out_channels")
            if x[-1] == m.in_channels and len(x) == d + 2:
                lines.append("Likely cause: the input looks channels-last (N, …, C); convolutions want "
                             f"channels first: x.permute(0, {d + 1}, {', '.join(str(i) for i in range(1, d + 1))}).")
            elif pc is not None and tracer.calls[pc].module.out_channels == ch:
                lines.append(f"Likely cause: in_channels of {c.name or cls} must equal out_channels of the "
                             f"previous convolution {_describe(tracer, pc)}, which is {ch}: use "
                             f"nn.{cls}({ch}, {m.out_channels}, …).")
            else:
                lines.append(f"Likely cause: the data (or the layer before) has {ch} channels: use "
                             f"nn.{cls}({ch}, {m.out_channels}, …) or nn.Lazy{cls}({m.out_channels}, …).")
            return lines
        if "kernel size" in msg.lower() or "output size is too small" in msg.lower():
            k = tuple((kk - 1) * dd + 1 for kk, dd in zip(m.kernel_size, m.dilation))
            pad = m.padding if isinstance(m.padding, tuple) else m.padding
            return [f"{who} got spatial size {_times(x[-d:])} (padding {pad}), smaller than its "
                    f"(dilated) kernel {_times(k)}.",
                    "Likely cause: the feature map shrank too much in earlier conv/pool layers — add "
                    "padding, remove a pooling layer or feed a larger input; check the sizes with "
                    "helpers.shapes.conv_output_size / pool_output_size." + ("" if not transposed else "")]

    if isinstance(m, nn.modules.batchnorm._BatchNorm) and x is not None:
        if len(x) >= 2 and x[1] != m.num_features:
            return [f"{who} expects {m.num_features} features/channels (num_features, dimension 1) but got "
                    f"{x[1]} — input shape {_fmt_shape(x)}.",
                    f"Likely cause: num_features must equal the channels of the previous layer: use "
                    f"nn.{type(m).__name__}({x[1]})."]
        return [f"{who} received shape {_fmt_shape(x)}: " + msg,
                "Likely cause: BatchNorm1d wants (N, C) or (N, C, L); BatchNorm2d (N, C, H, W); "
                "BatchNorm3d (N, C, D, H, W)."]

    if isinstance(m, nn.LayerNorm) and x is not None:
        ns = tuple(m.normalized_shape)
        if tuple(x[-len(ns):]) != ns:
            lines = [f"{who} normalizes the last {len(ns)} dimension(s), which must be {_fmt_shape(ns)} "
                     f"(normalized_shape), but the input {_fmt_shape(x)} ends with {_fmt_shape(x[-len(ns):])}."]
            if len(x) == 4 and len(ns) == 1 and x[1] == ns[0]:
                lines.append("Likely cause: an image-like (N, C, H, W) input — LayerNorm(C) needs channels last: "
                             "permute to (N, H, W, C), or use nn.GroupNorm(1, C) / nn.BatchNorm2d(C).")
            else:
                lines.append(f"Likely cause: normalized_shape must be the feature size: nn.LayerNorm({x[-1]}).")
            return lines

    if isinstance(m, nn.GroupNorm) and x is not None and len(x) >= 2 and x[1] != m.num_channels:
        return [f"{who} expects {m.num_channels} channels (num_channels, dimension 1) but got {x[1]} — "
                f"input shape {_fmt_shape(x)}.", f"Likely cause: use nn.GroupNorm({m.num_groups}, {x[1]})."]

    if isinstance(m, nn.RNNBase) and x is not None:
        kind = type(m).__name__
        dims = "(N, L, H_in)" if m.batch_first else "(L, N, H_in)"
        if len(x) not in (2, 3):
            return [f"{who} expects a 2-D (L, H_in) or 3-D {dims} input but got {len(x)}-D {_fmt_shape(x)}.",
                    "Likely cause: a sequence model wants (sequence, features) per example; flatten "
                    "extra dimensions into the feature dimension, or add a batch dimension."]
        if x[-1] != m.input_size:
            lines = [f"{who} expects input_size = {m.input_size} features in the last dimension but got {x[-1]} "
                     f"— input shape {_fmt_shape(x)}, read as {dims} (batch_first={m.batch_first})."]
            pr = _previous(tracer, idx, "hidden_size")
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
        if "hidden" in msg.lower():
            dirs = 2 if m.bidirectional else 1
            n = x[0] if m.batch_first and len(x) == 3 else x[1] if len(x) == 3 else None
            h_out = m.proj_size or m.hidden_size
            want = (dirs * m.num_layers, n, h_out) if n is not None else (dirs * m.num_layers, h_out)
            return [f"{who}: the initial hidden state has the wrong shape ({msg}).",
                    f"Likely cause: h_0 (and c_0) must be (num_layers × directions, N, H_out) = {want} — "
                    "note that batch_first does NOT apply to the hidden state."]

    if isinstance(m, nn.Embedding) and c.args:
        arg = c.args[0]
        if "scalar type" in msg or "indices" in msg.lower():
            return [f"{who} needs integer token ids (torch.long or torch.int), but got floats of shape "
                    f"{_fmt_shape(arg) if isinstance(arg, tuple) else arg}.",
                    "Likely cause: the input went through a float op or was built with torch.randn — use "
                    "x.long(), torch.randint(0, num_embeddings, shape), or summary(..., dtypes=[torch.long])."]

    if isinstance(m, nn.MultiheadAttention) and x is not None and x[-1] != m.embed_dim:
        return [f"{who} expects embed_dim = {m.embed_dim} in the last dimension of the query but got {x[-1]} "
                f"— query shape {_fmt_shape(x)}, read as {'(N, L, E)' if m.batch_first else '(L, N, E)'}.",
                f"Likely cause: the tokens' feature size must equal embed_dim: project them with "
                f"nn.Linear({x[-1]}, {m.embed_dim}) or build nn.MultiheadAttention({x[-1]}, …)."]

    return _generic(tracer, idx, msg, x, prev, type(exc).__name__)


def _generic(tracer: _Tracer, idx: int, msg: str, x: Optional[Shape], prev: Optional[int],
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


def _embedding_check(originals: dict[int, torch.Tensor]) -> Any:
    """Pre-hook check: token ids out of range (meta tensors carry no values, so look at the
    caller's original tensors)."""
    def check(tracer: _Tracer, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if not isinstance(module, nn.Embedding) or not args or not isinstance(args[0], torch.Tensor):
            return
        ids = originals.get(id(args[0]))
        if ids is None or ids.is_floating_point() or ids.device.type == "meta" or ids.numel() == 0:
            return
        lo, hi = int(ids.min()), int(ids.max())
        if lo < 0 or hi >= module.num_embeddings:
            who = _describe(tracer, len(tracer.calls) - 1)
            bad = hi if hi >= module.num_embeddings else lo
            raise _Explained([
                f"{who} has num_embeddings = {module.num_embeddings} rows, so token ids must be in "
                f"[0, {module.num_embeddings - 1}], but the input contains {bad}.",
                "Likely cause: the vocabulary is larger than the embedding table — build "
                f"nn.Embedding({hi + 1 if hi >= module.num_embeddings else module.num_embeddings}, "
                f"{module.embedding_dim}) (vocab size = max id + 1), or remap/clip the ids."])
    return check


def explain(model: nn.Module, example_inputs: Any, *, device: DeviceLike = "meta") -> Explanation:
    """Run ``model(example_inputs)`` and explain a failure in plain language.

    Returns an `Explanation` (a str): ``"ran fine: output shape (2, 10)"`` when the pass works,
    otherwise which layer failed (qualified name and type), the input shape it received versus
    what it expects, and the likely cause, e.g. ``fc1 (Linear) expects 4096 input features … but
    got 3136 … 3136 = 16×14×14 …``. The pass runs on `device` (meta: free, no weights needed);
    token ids are also checked against each Embedding's ``num_embeddings``. Never raises for an
    error inside the forward pass.

    Args:
        model: the module to run (not modified).
        example_inputs: a tensor, a tuple/list of positional inputs or a dict of keyword inputs.
        device: ``"meta"`` (default) or a real device.
    """
    dev = torch.device(device)
    args, kwargs = _as_args(example_inputs)
    originals: dict[int, torch.Tensor] = {}

    def remember(t: torch.Tensor) -> torch.Tensor:
        moved = t.to("meta") if dev.type == "meta" else t.to(dev)
        originals[id(moved)] = t
        return moved

    traced, _, _, _ = _prepare(model, (), {}, dev)
    margs, mkwargs = _map_tensors(args, remember), _map_tensors(kwargs, remember)
    out: Any = None
    try:
        try:
            _, out, _ = _run(traced, margs, mkwargs, dev, count_flops=False, check=_embedding_check(originals),
                            per_module=True)
        except Exception as exc:
            real = _real_device(traced)
            if dev.type != "meta" or real is None or not _meta_limitation(exc):
                raise
            dev = real
            margs, mkwargs = _map_tensors(args, remember), _map_tensors(kwargs, remember)
            _, out, _ = _run(traced, margs, mkwargs, dev, count_flops=False, check=_embedding_check(originals),
                            per_module=True)
    except Exception as exc:  # noqa: BLE001 — turned into an explanation, never a traceback
        tracer: Optional[_Tracer] = getattr(exc, "_trace", None)
        idx = tracer.stack[-1] if tracer is not None and tracer.stack else None
        if isinstance(exc, _Explained):
            lines = exc.lines
        elif tracer is None or idx is None:
            lines = [f"the forward pass failed before any layer ran: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"]
        else:
            lines = _diagnose(tracer, idx, exc)
        error = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        c = tracer.calls[idx] if tracer is not None and idx is not None else None
        if tracer is None or idx is None:
            head = "✗ The forward pass failed:"
        elif lines[-1].startswith("Error (not recognised"):
            head = f"✗ The forward pass failed in {_describe(tracer, idx)}:"
        else:
            head = f"✗ Shape problem in {_describe(tracer, idx)}:"
        text = "\n".join([head, *("  " + ln for ln in lines),
                          *([f"  (torch's message: {error})"]
                            if not isinstance(exc, _Explained) and not lines[-1].startswith("Error (not") else [])])
        return Explanation(text, ok=False, layer=c.name if c else None,
                           layer_type=type(c.module).__name__ if c else None,
                           input_shapes=c.args if c else None, error=error)
    shapes = _shapes_of(out)
    return Explanation(f"✓ ran fine: output shape {format_shapes(shapes)}", ok=True,
                       input_shapes=tuple(_shapes_of(a) for a in margs))
