"""Tracing a forward pass: a per-layer `summary` (shapes, parameters, FLOPs) and `explain`.

`summary(model, input_size)` runs ONE forward pass under forward (pre-)hooks inside one
`torch.utils.flop_counter.FlopCounterMode`, and returns a `Summary`: one `LayerRow` per module
*call*, in call order (a module called twice gets two rows, "call 2"), with

* ``input_shapes`` / ``output_shapes`` — shape tuples, nested exactly like the values the module
  received and returned. Tuples are shown whole: ``nn.LSTM`` returns ``output, (h_n, c_n)``, so
  its row reads ``output (L, N, D·H_out), h_n (D·num_layers, N, H_out), c_n (…)``;
* ``params`` — the module's OWN parameters (``module.parameters(recurse=False)``); a tensor
  already counted in an earlier row (a tied embedding/head, a module reused twice) is reported in
  ``shared_params`` as well, so ``sum(row.new_params) == Summary.total_params ==
  helpers.counting.count_params(model)`` (tied tensors counted once);
* ``flops`` — the FLOPs of the operations run by this call itself, *excluding* its child layers'
  calls (for a leaf layer: all of its FLOPs), so ``sum(row.flops) == Summary.total_flops``.
  ``cum_flops`` includes the children. A row's FLOPs are the growth of FlopCounterMode's total
  between the call's entry and exit, so a module reused twice has each call counted separately.

In the text table a ``tied`` after a parameter count marks tensors already counted in an earlier
row (``reused`` for a module's second call), and ``(not called)`` a module that owns parameters
but was not called as a module (e.g. ``nn.MultiheadAttention.out_proj``, whose weight its parent
uses directly). ``depth=d`` folds deeper calls into their ancestor at depth d.

FLOP convention (FlopCounterMode's): a multiply-accumulate counts as **2 FLOPs**, and only
matrix products, convolutions and attention kernels are counted (element-wise ops, norms,
activations, softmax count 0). So, with B·T rows going through the layer::

    nn.Linear(in, out):       FLOPs = 2 · (B·T) · in · out              (bias not counted)
    nn.Conv2d(C_in, C_out, k, groups=g), output (N, C_out, H', W'):
                              FLOPs = 2 · N · C_out · H' · W' · (C_in / g) · k_h · k_w
    attention (SDPA), q/k/v (B, h, T, d):  FLOPs = 2 · 2 · B · h · T · T · d   (QKᵀ and A·V;
                              a causal mask is not discounted)
    MACs = FLOPs / 2

Two gaps of the stock FlopCounterMode are closed so that CPU and meta give the same table: on
CPU, oneDNN runs ``nn.LSTM``/``nn.GRU`` as one fused kernel it cannot see (switched off during
the pass, so they decompose into counted matmuls), and the fused CPU attention kernel has no
formula (counted with FlopCounterMode's own SDPA formula).

Device: by default the pass runs on the ``meta`` device — tensors there have a shape and a dtype
but no storage, so a Llama-2-7B-shaped model is summarised in about a second with no weights
allocated. The model itself is never modified: its parameters and buffers are swapped for
stand-ins only for the duration of the call (`torch.func.functional_call`) — shape-only meta
tensors when ``device="meta"``, the real parameters (and *copies* of the buffers, so BatchNorm's
running statistics are untouched) when the model already lives on ``device``, and ``.to(device)``
copies otherwise. On meta the pass runs under ``torch.no_grad()``; on a real device with autograd
on, which keeps PyTorch's fused inference fast paths (invisible to FlopCounterMode) switched off.
To summarise a model too large for RAM, build it on meta in the first place::

    with torch.device("meta"):
        model = Llama(LlamaConfig())      # shapes only: no memory, no init time
    summary(model, example_inputs=torch.zeros(1, 4096, dtype=torch.long))

Special cases: a model with lazy layers (``nn.LazyLinear``…) is traced on a deep copy (the
forward pass materialises lazy parameters; the original stays uninitialised); and if a model cannot run on meta
(it keeps plain, unregistered tensors on the CPU, or calls ``.item()``), `summary` falls back to
the model's own device and says so in ``Summary.notes``.

`explain(model, example_inputs)` runs the forward pass (on meta by default) and, when it fails,
names the layer that failed (qualified name and type), the shape it received versus what it
expects, and the likely cause, in plain language — never a traceback.
"""

from __future__ import annotations

import copy
import html
import math
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Optional, Union

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from helpers.counting import bytes_for, count_buffers

__all__ = ["summary", "Summary", "LayerRow", "explain", "Explanation", "format_shapes"]

Shape = tuple[int, ...]
ShapeSize = Union[Sequence[int], Sequence[Sequence[int]]]
DeviceLike = Union[str, torch.device]

_TABLE_WIDTH = 110
_OUTPUT_NAMES = {"LSTM": ("output", ("h_n", "c_n")), "GRU": ("output", "h_n"), "RNN": ("output", "h_n"),
                 "MultiheadAttention": ("attn_output", "attn_weights")}


# --------------------------------------------------------------------------- shapes ----------

def _shapes_of(value: Any) -> Any:
    """The shape structure of a value: a tensor → its shape tuple; tuples/lists → tuples of
    their elements' structures; dicts → dicts; anything else → None."""
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    if isinstance(value, (tuple, list)):
        return tuple(_shapes_of(v) for v in value)
    if isinstance(value, Mapping):
        return {k: _shapes_of(v) for k, v in value.items()}
    return None


def _has_tensor(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return True
    if isinstance(value, (tuple, list)):
        return any(_has_tensor(v) for v in value)
    if isinstance(value, Mapping):
        return any(_has_tensor(v) for v in value.values())
    return False


def _fmt_shape(shape: Shape) -> str:
    return "(" + ", ".join(map(str, shape)) + ")" if len(shape) != 1 else f"({shape[0]},)"


def format_shapes(structure: Any, names: Any = None) -> str:
    """Render a shape structure from `LayerRow` as text.

    A shape is ``(2, 10)``; a tuple of values is ``[(2, 10), (2, 5)]`` (square brackets so a
    structure is never confused with a shape); a dict is ``{key: (…)}``; ``None`` is ``None``.
    `names` (same nesting as `structure`, top level unbracketed) labels the elements, e.g. LSTM:
    ``output (5, 2, 64), h_n (2, 2, 64), c_n (2, 2, 64)``.
    """
    if structure is None:
        return "None"
    if isinstance(structure, Mapping):
        return "{" + ", ".join(f"{k}: {format_shapes(v)}" for k, v in structure.items()) + "}"
    if isinstance(structure, tuple) and all(isinstance(v, int) for v in structure):
        return _fmt_shape(structure)
    if names is not None and isinstance(names, tuple) and len(names) == len(structure):
        parts = []
        for n, s in zip(names, structure):
            parts.append(format_shapes(s, n) if isinstance(n, tuple) else f"{n} {format_shapes(s)}")
        return ", ".join(parts)
    return "[" + ", ".join(format_shapes(v) for v in structure) + "]"


def _format_inputs(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
    parts = [format_shapes(a) for a in args]
    parts += [f"{k}={format_shapes(v)}" for k, v in kwargs.items()]
    return ", ".join(parts)


# --------------------------------------------------------------------------- rows ------------

@dataclass(frozen=True)
class LayerRow:
    """One call of one module during the traced forward pass.

    Attributes:
        name: qualified name as in ``model.named_modules()`` (``""`` for the model itself).
        type: class name, e.g. ``"Linear"``.
        depth: nesting depth of the call (the model is 0, its direct children 1, …).
        input_shapes: shape structure of each positional argument that holds a tensor.
        input_kwargs: shape structure of each keyword argument that holds a tensor.
        output_shapes: shape structure of the return value (``(N, C, H, W)``; LSTM:
            ``((L, N, H), ((layers, N, H), (layers, N, H)))``).
        params: scalars in the module's own parameters (recursive when `collapsed`).
        shared_params: the part of `params` already counted in an earlier row (tied weights, a
            module called a second time); `new_params` = params − shared_params.
        trainable_params: trainable scalars among `new_params`.
        flops: FLOPs run by this call, excluding child rows shown separately (2 per MAC).
        cum_flops: FLOPs run by this call including all of its children.
        call: 1 for a module's first call, 2 for its second, …; 0 if never called.
        collapsed: True when `depth` hid this row's children and their counts are included.
        tied_with: names of the tensors, counted in earlier rows, that `shared_params` alias.
        label: the name shown in the table (relative to the parent row).
    """

    name: str
    type: str
    depth: int
    input_shapes: tuple[Any, ...]
    input_kwargs: dict[str, Any]
    output_shapes: Any
    params: int
    shared_params: int
    trainable_params: int
    flops: int
    cum_flops: int
    call: int = 1
    collapsed: bool = False
    tied_with: tuple[str, ...] = ()
    label: str = ""

    @property
    def macs(self) -> int:
        """Multiply-accumulates: FLOPs / 2."""
        return self.flops // 2

    @property
    def new_params(self) -> int:
        """Parameters first counted in this row (the column that sums to the total)."""
        return self.params - self.shared_params

    @property
    def called(self) -> bool:
        return self.call > 0

    @property
    def input_str(self) -> str:
        return _format_inputs(self.input_shapes, self.input_kwargs) if self.called else "(not called)"

    @property
    def output_str(self) -> str:
        if not self.called:
            return ""
        return format_shapes(self.output_shapes, _OUTPUT_NAMES.get(self.type))


def _si(n: int) -> str:
    """Compact number: 577024 → '577K', 1605632 → '1.61M'."""
    if n == 0:
        return "--"
    for value, suffix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= value:
            x = n / value
            return f"{x:.3g}{suffix}" if x < 1000 else f"{x:.0f}{suffix}"
    return str(n)


def _human_bytes(n: int) -> str:
    for value, suffix in ((1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if n >= value:
            return f"{n / value:.2f} {suffix}"
    return f"{n} B"


def _pieces(text: str, paren: bool) -> list[str]:
    """Break points of a cell: after each top-level ', ' (not inside brackets), and with
    `paren` also before a top-level ' (' (between a layer name and its type)."""
    out, cur, level = [], "", 0
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in "([{":
            if paren and level == 0 and ch == "(" and cur.endswith(" ") and cur.strip():
                out.append(cur)
                cur = ""
            level += 1
        elif ch in ")]}":
            level -= 1
        cur += ch
        if ch == "," and level == 0 and text[i + 1:i + 2] == " ":
            out.append(cur + " ")
            cur = ""
            i += 1
        i += 1
    return [*out, cur] if cur else out


def _wrap(text: str, width: int, *, paren: bool = False) -> list[str]:
    """Split a cell into lines of at most `width` chars at top-level ', ' (and, with `paren`,
    ' (') boundaries; only a single piece longer than the column is hard-cut. A leading indent
    is kept, and continuation lines are indented two more spaces."""
    if len(text) <= width:
        return [text]
    indent = len(text) - len(text.lstrip(" "))
    if indent:
        inner = _wrap(text[indent:], max(8, width - indent - 2), paren=paren)
        return [" " * indent + inner[0], *(" " * (indent + 2) + ln for ln in inner[1:])]
    lines: list[str] = []
    cur = ""
    for piece in _pieces(text, paren):
        if len(cur) + len(piece.rstrip()) <= width:
            cur += piece
            continue
        if cur.strip():
            lines.append(cur.rstrip())
        piece = piece.lstrip()
        if len(piece.rstrip()) > width and not paren and " (" in piece:  # "name (shape)": break at the space
            head, tail = _wrap(piece, width, paren=True)[:-1], _wrap(piece, width, paren=True)[-1]
            lines.extend(head)
            piece = tail
        while len(piece.rstrip()) > width:
            lines.append(piece[:width])
            piece = piece[width:]
        cur = piece
    if cur.strip():
        lines.append(cur.rstrip())
    return lines


@dataclass
class Summary:
    """Result of `summary`: ``rows`` (`LayerRow`, call order) and totals.

    Invariants (tested): ``sum(r.new_params for r in rows) == total_params ==
    helpers.counting.count_params(model)`` and ``sum(r.flops for r in rows) == total_flops``.
    """

    model_type: str
    rows: list[LayerRow]
    total_params: int
    trainable_params: int
    total_buffers: int
    total_flops: int
    device: str
    input_shapes: tuple[Any, ...] = ()
    output_shapes: Any = None
    notes: list[str] = field(default_factory=list)

    @property
    def total_macs(self) -> int:
        return self.total_flops // 2

    @property
    def non_trainable_params(self) -> int:
        return self.total_params - self.trainable_params

    def param_bytes(self, dtype: torch.dtype = torch.float32) -> int:
        """Bytes needed to store the parameters in `dtype` (params × element size)."""
        return bytes_for(self.total_params, dtype)

    @property
    def param_bytes_fp32(self) -> int:
        return self.param_bytes(torch.float32)

    @property
    def param_bytes_bf16(self) -> int:
        return self.param_bytes(torch.bfloat16)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[LayerRow]:
        return iter(self.rows)

    def __getitem__(self, name: str) -> LayerRow:
        """The first row whose qualified name is `name` (``""`` is the model itself)."""
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(name)

    # ---- rendering ----
    def _cells(self) -> list[tuple[str, ...]]:
        out = []
        for r in self.rows:
            label = "  " * r.depth + (r.label or r.name or r.type)
            if r.name or r.depth:
                label += f" ({r.type})"
            if r.call > 1:
                label += f" call {r.call}"
            params = f"{r.params:,}" if r.params else "--"
            if r.shared_params:
                params += " tied" if r.shared_params < r.params or r.call <= 1 else " reused"
            out.append((label, r.input_str, r.output_str, params, _si(r.flops), _si(r.macs)))
        return out

    def _footer(self) -> list[str]:
        fp32, bf16 = self.param_bytes_fp32, self.param_bytes_bf16
        lines = [
            f"Total params: {self.total_params:,}  (tied/shared tensors counted once)",
            f"Trainable params: {self.trainable_params:,}  ·  non-trainable: {self.non_trainable_params:,}"
            f"  ·  buffers: {self.total_buffers:,}",
            f"Total FLOPs: {self.total_flops:,} ({_si(self.total_flops)})  ·  MACs = FLOPs/2: "
            f"{self.total_macs:,} ({_si(self.total_macs)})",
            f"Param memory: fp32 {_human_bytes(fp32)} ({fp32:,} B)  ·  bf16 {_human_bytes(bf16)}",
            f"Traced on: {self.device}" + (" (shapes only, no weights allocated)" if self.device == "meta" else ""),
        ]
        lines += [f"Note: {n}" for n in self.notes]
        return lines

    def __str__(self) -> str:
        header = ("Layer (type)", "Input shape", "Output shape", "Params", "FLOPs", "MACs")
        cells = self._cells()
        widths = [max(len(row[i]) for row in [header, *cells]) for i in range(6)]
        gap = 2
        # shrink the widest of name/input/output until the table fits
        floors = {0: min(widths[0], 34), 1: 20, 2: 24}
        while sum(widths) + gap * 5 > _TABLE_WIDTH:
            i = max(floors, key=lambda j: widths[j] - floors[j])
            if widths[i] <= floors[i]:
                break
            widths[i] -= 1
        right = {3, 4, 5}

        def lines_of(row: tuple[str, ...]) -> list[str]:
            wrapped = [_wrap(c, w, paren=i == 0) if i in (0, 1, 2) else [c]
                       for i, (c, w) in enumerate(zip(row, widths))]
            height = max(map(len, wrapped))
            out = []
            for k in range(height):
                parts = []
                for i, (col, w) in enumerate(zip(wrapped, widths)):
                    c = col[k] if k < len(col) else ""
                    parts.append(c.rjust(w) if i in right else c.ljust(w))
                out.append((" " * gap).join(parts).rstrip())
            return out

        rule = "=" * min(_TABLE_WIDTH, sum(widths) + gap * 5)
        thin = "-" * len(rule)
        body = [ln for row in cells for ln in lines_of(row)]
        return "\n".join([rule, *lines_of(header), thin, *body, rule, *self._footer(), rule])

    __repr__ = __str__

    def to_dataframe(self):  # type: ignore[no-untyped-def]
        """The rows as a pandas DataFrame (pandas is optional and imported only here)."""
        import pandas as pd  # noqa: PLC0415

        return pd.DataFrame([{**r.__dict__, "macs": r.macs, "new_params": r.new_params,
                              "input": r.input_str, "output": r.output_str} for r in self.rows])

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{h}</th>" for h in
                       ("Layer", "Type", "Input shape", "Output shape", "Params", "FLOPs", "MACs"))
        body = []
        for r, cell in zip(self.rows, self._cells()):
            name = html.escape(r.name or r.type) + (f" <i>(call {r.call})</i>" if r.call > 1 else "")
            params = html.escape(cell[3])
            tip = f' title="shares {html.escape(", ".join(r.tied_with))}"' if r.tied_with else ""
            body.append(
                f'<tr><td style="text-align:left;padding-left:{0.3 + 1.2 * r.depth:.1f}em">{name}</td>'
                f"<td style='text-align:left'>{html.escape(r.type)}</td>"
                f"<td style='text-align:left'>{html.escape(r.input_str)}</td>"
                f"<td style='text-align:left'>{html.escape(r.output_str)}</td>"
                f"<td{tip}>{params}</td><td title='{r.flops:,}'>{cell[4]}</td>"
                f"<td title='{r.macs:,}'>{cell[5]}</td></tr>")
        foot = "<br>".join(html.escape(line) for line in self._footer())
        return (f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody>"
                f"<tfoot><tr><td colspan='7' style='text-align:left'>{foot}</td></tr></tfoot></table>")


# --------------------------------------------------------------------------- running ---------

@dataclass
class _Call:
    module: nn.Module
    name: str
    depth: int
    parent: int
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    call: int
    flops_start: int = 0
    cum_flops: int = 0
    child_flops: int = 0
    output: Any = None
    done: bool = False


def _as_args(example_inputs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if isinstance(example_inputs, torch.Tensor):
        return (example_inputs,), {}
    if isinstance(example_inputs, Mapping):
        return (), dict(example_inputs)
    if isinstance(example_inputs, (tuple, list)):
        return tuple(example_inputs), {}
    raise TypeError("example_inputs must be a tensor, a tuple/list of positional inputs or a dict "
                    f"of keyword inputs, got {type(example_inputs).__name__}")


def _map_tensors(value: Any, fn: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, tuple):
        return tuple(_map_tensors(v, fn) for v in value)
    if isinstance(value, list):
        return [_map_tensors(v, fn) for v in value]
    if isinstance(value, Mapping):
        return {k: _map_tensors(v, fn) for k, v in value.items()}
    return value


def _model_dtype(model: nn.Module) -> torch.dtype:
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


def _make_inputs(model: nn.Module, input_size: Any, dtypes: Any,
                 device: torch.device) -> tuple[Any, ...]:
    sizes: list[tuple[int, ...]]
    if isinstance(input_size, torch.Size) or (
            isinstance(input_size, (tuple, list)) and all(isinstance(v, int) for v in input_size)):
        sizes = [tuple(input_size)]
    elif isinstance(input_size, (tuple, list)) and all(isinstance(v, (tuple, list, torch.Size)) for v in input_size):
        sizes = [tuple(s) for s in input_size]
    else:
        raise TypeError(f"input_size must be a shape tuple like (2, 3, 32, 32) or a list of shapes, got {input_size!r}")
    if dtypes is None:
        dtypes = [_model_dtype(model)] * len(sizes)
    elif isinstance(dtypes, torch.dtype):
        dtypes = [dtypes] * len(sizes)
    if len(dtypes) != len(sizes):
        raise ValueError(f"dtypes has {len(dtypes)} entries but input_size describes {len(sizes)} inputs")
    # zeros: valid token ids for an Embedding on a real device; free on meta
    return tuple(torch.zeros(s, dtype=dt, device=device) for s, dt in zip(sizes, dtypes))


def _has_lazy(model: nn.Module) -> bool:
    from torch.nn.parameter import UninitializedParameter, UninitializedBuffer  # noqa: PLC0415

    return any(isinstance(t, (UninitializedParameter, UninitializedBuffer))
               for t in [*model.parameters(), *model.buffers()])


def _stand_ins(model: nn.Module, device: torch.device) -> Optional[dict[str, torch.Tensor]]:
    """Tensors to run `model` with on `device` without touching the model's own tensors
    (None: the model is entirely on meta and `device` is meta, so it can run as it is)."""
    if device.type == "meta" and all(t.device.type == "meta" for t in [*model.parameters(), *model.buffers()]):
        return None
    if _has_lazy(model):  # only ever our own deep copy (see _prepare): run it as it is
        return None
    mapping: dict[str, torch.Tensor] = {}
    for name, p in model.named_parameters():
        if device.type == "meta":
            mapping[name] = p if p.device.type == "meta" else torch.empty_like(p, device="meta")
        elif p.device == device or (device.index is None and p.device.type == device.type):
            mapping[name] = p
        else:
            mapping[name] = p.detach().to(device).requires_grad_(p.requires_grad)
    for name, b in model.named_buffers():
        if device.type == "meta":
            mapping[name] = b if b.device.type == "meta" else torch.empty_like(b, device="meta")
        else:
            mapping[name] = b.detach().to(device, copy=True)  # running stats stay untouched
    return mapping


@contextmanager
def _no_mkldnn(device: torch.device) -> Iterator[None]:
    """On CPU, oneDNN runs nn.LSTM as one fused kernel that FlopCounterMode cannot see (it would
    count 0 FLOPs); with it off, the LSTM decomposes into matmuls and is counted like on meta."""
    if device.type != "cpu":
        yield
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ctx = torch.backends.mkldnn.flags(enabled=False)
        ctx.__enter__()
    try:
        yield
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            ctx.__exit__(None, None, None)


def _meta_limitation(exc: BaseException) -> bool:
    """True when a forward pass failed because of the meta device rather than the model
    (a CPU tensor the model keeps outside its parameters/buffers, or an op that needs values)."""
    if isinstance(exc, NotImplementedError):
        return True
    msg = str(exc).lower()
    return "meta" in msg and any(s in msg for s in (
        "device", "data-dependent", "item()", "_local_scalar_dense", "storage", "copy out of"))


def _real_device(model: nn.Module) -> Optional[torch.device]:
    for t in [*model.parameters(), *model.buffers()]:
        if t.device.type != "meta":
            return t.device
    return None


try:  # torch is pinned (==2.13); if this private class moves, the plain FlopCounterMode is used
    from torch.utils.flop_counter import _FlopCounterMode
except ImportError:  # pragma: no cover
    _FlopCounterMode = None  # type: ignore[assignment,misc]

_aten = torch.ops.aten
# ops FlopCounterMode hands back untouched (tensor metadata queries), kept on its own path
_METADATA_OPS = frozenset({_aten.sym_is_contiguous, _aten.is_contiguous, _aten.is_strides_like_format,
                           _aten.is_non_overlapping_and_dense, _aten.size, _aten.sym_size, _aten.stride,
                           _aten.sym_stride, _aten.storage_offset, _aten.sym_storage_offset, _aten.numel,
                           _aten.sym_numel, _aten.dim, torch.ops.prim.layout, torch.ops.prim.device})

if _FlopCounterMode is not None:
    class _LeanDispatch(_FlopCounterMode):  # type: ignore[misc,valid-type]
        """FlopCounterMode's dispatch mode with a fast path for the ~99% of ops that need
        nothing special: a plain OpOverload that is either in the FLOP registry or has no
        CompositeImplicitAutograd decomposition is run once and counted with the SAME registry
        formula. Everything else (decomposable ops, higher-order ops, metadata queries) goes
        through FlopCounterMode's own code. Saves the per-op decomposition attempt (a mode
        re-entry) and the torch.compile guard around each call (~15% of a GPT-2 pass)."""

        @classmethod
        def _should_skip_dynamo(cls) -> bool:  # no torch._disable_dynamo wrapper per op
            return False

        def __init__(self, counter: FlopCounterMode) -> None:
            super().__init__(counter)
            self._plain: dict[Any, bool] = {}
            self._global = counter.flop_counts["Global"]

        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            plain = self._plain.get(func)
            if plain is None:
                plain = self._plain[func] = (
                    isinstance(func, torch._ops.OpOverload) and func._overloadpacket not in _METADATA_OPS
                    and (func._overloadpacket in self.counter.flop_registry or
                         not torch._C._dispatch_has_kernel_for_dispatch_key(
                             func.name(), torch._C.DispatchKey.CompositeImplicitAutograd)))
            if not plain:
                return super().__torch_dispatch__(func, types, args, kwargs)
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            formula = self.counter.flop_registry.get(func._overloadpacket)
            if formula is not None:
                raw = getattr(formula, "__wrapped__", None)  # formula on shapes (shape_wrapper)
                if raw is not None:
                    flops = raw(*_shape_args(args), out_shape=_shape_args(out),
                                **{k: _shape_args(v) for k, v in kwargs.items()})
                else:
                    flops = formula(*args, **kwargs, out_val=out)
                self._global[func._overloadpacket] += flops
            return out

    def _shape_args(value: Any) -> Any:
        """What FlopCounterMode's shape_wrapper passes to a formula: tensors → shapes."""
        if isinstance(value, torch.Tensor):
            return value.shape
        if isinstance(value, list):
            return [_shape_args(v) for v in value]
        if isinstance(value, tuple):
            return tuple(_shape_args(v) for v in value)
        return value


def _sdpa_cpu_flop(query_shape: Any, key_shape: Any, value_shape: Any, *args: Any, out_shape: Any = None,
                   **kwargs: Any) -> int:
    """CPU's fused attention kernel, counted with FlopCounterMode's own SDPA formula."""
    from torch.utils.flop_counter import sdpa_flop_count  # noqa: PLC0415

    return sdpa_flop_count(query_shape, key_shape, value_shape)


# Stock FlopCounterMode has no formula for the kernel F.scaled_dot_product_attention uses on CPU
# (it would count attention as 0 FLOPs on CPU, but count it on meta, where SDPA decomposes).
_EXTRA_FORMULAS: dict[Any, Any] = {}
if hasattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu"):
    _EXTRA_FORMULAS[torch.ops.aten._scaled_dot_product_flash_attention_for_cpu] = _sdpa_cpu_flop


class _GlobalOnly:
    """Stand-in for FlopCounterMode's ModuleTracker: every FLOP goes to "Global" only."""

    parents = frozenset({"Global"})

    def __enter__(self) -> "_GlobalOnly":
        return self

    def __exit__(self, *exc: Any) -> None:
        return None


class _FlopCounter(FlopCounterMode):
    """`FlopCounterMode` — same FLOP formulas (its registry), same totals — minus its
    module-name tracker, with a faster dispatch path (`_LeanDispatch`).

    FlopCounterMode attributes FLOPs to module *names* through a ModuleTracker (global hooks on
    every module call); a module called twice then gets one merged entry. `summary` attributes
    FLOPs to each *call* with its own hooks instead (difference of ``get_total_flops()`` before
    and after the call), so the tracker is pure overhead (~20% of a GPT-2 pass on meta)."""

    def __init__(self) -> None:
        super().__init__(display=False, custom_mapping=_EXTRA_FORMULAS)
        self.mod_tracker = _GlobalOnly()  # type: ignore[assignment]

    def __enter__(self) -> "_FlopCounter":
        if _FlopCounterMode is None:  # pragma: no cover
            return super().__enter__()  # type: ignore[return-value]
        self.flop_counts.clear()
        self.mode = _LeanDispatch(self)
        self.mode.__enter__()
        return self

    def __exit__(self, *args: Any) -> Any:
        if _FlopCounterMode is None:  # pragma: no cover
            return super().__exit__(*args)
        mode, self.mode = self.mode, None
        assert mode is not None
        return mode.__exit__(*args)


class _Tracer:
    """Hooks that record one `_Call` per call of a submodule of `model`.

    ``per_module=False`` (summary, the fast path): two process-wide module hooks for the duration
    of the pass instead of two hooks on every submodule; input shapes are read when the call
    returns (global pre-hooks do not see keyword arguments). ``per_module=True`` (explain): hooks
    on each submodule, input shapes read on entry, so a call that raises still has them."""

    def __init__(self, model: nn.Module, counter: Optional[FlopCounterMode],
                 check: Any = None, *, per_module: bool = False) -> None:
        self.model = model
        self.counter = counter
        self.check = check  # optional pre-call validator (explain)
        self.per_module = per_module
        self.calls: list[_Call] = []
        self.stack: list[int] = []
        self.names: dict[int, str] = {}
        self.ncalls: dict[int, int] = {}
        self.handles: list[Any] = []

    def _flops(self) -> int:
        return self.counter.get_total_flops() if self.counter is not None else 0

    def __enter__(self) -> "_Tracer":
        self.names = {id(module): name for name, module in self.model.named_modules()}
        if self.per_module:
            for module in self.model.modules():
                self.handles.append(module.register_forward_pre_hook(self._pre, with_kwargs=True))
                self.handles.append(module.register_forward_hook(self._post, with_kwargs=True))
        else:
            from torch.nn.modules.module import (  # noqa: PLC0415
                register_module_forward_hook, register_module_forward_pre_hook)

            self.handles.append(register_module_forward_pre_hook(self._pre_global))
            self.handles.append(register_module_forward_hook(self._post, with_kwargs=True))
        return self

    def __exit__(self, *exc: Any) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()

    def _pre_global(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        if id(module) in self.names:
            self._pre(module, args, None)

    def _pre(self, module: nn.Module, args: tuple[Any, ...], kwargs: Optional[dict[str, Any]]) -> None:
        key = id(module)
        n = self.ncalls[key] = self.ncalls.get(key, 0) + 1
        call = _Call(module=module, name=self.names.get(key, ""), depth=len(self.stack),
                     parent=self.stack[-1] if self.stack else -1, args=(), kwargs={},
                     call=n, flops_start=self._flops())
        if kwargs is not None:
            call.args = tuple(_shapes_of(a) for a in args if _has_tensor(a))
            call.kwargs = {k: _shapes_of(v) for k, v in kwargs.items() if _has_tensor(v)}
        self.calls.append(call)
        self.stack.append(len(self.calls) - 1)
        if self.check is not None:
            self.check(self, module, args, kwargs or {})

    def _post(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
        if not self.stack or self.calls[self.stack[-1]].module is not module:
            return  # not one of ours (a global hook sees every module in the process)
        idx = self.stack.pop()
        call = self.calls[idx]
        call.cum_flops = self._flops() - call.flops_start
        if not self.per_module:
            call.args = tuple(_shapes_of(a) for a in args if _has_tensor(a))
            call.kwargs = {k: _shapes_of(v) for k, v in kwargs.items() if _has_tensor(v)}
        call.output = _shapes_of(output)
        call.done = True
        if call.parent >= 0:
            self.calls[call.parent].child_flops += call.cum_flops


def _run(model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], device: torch.device,
         *, count_flops: bool, check: Any = None, per_module: bool = False) -> tuple[_Tracer, Any, Optional[FlopCounterMode]]:
    """One forward pass of `model` on `device` under hooks (and FlopCounterMode).

    Returns the tracer, the output and the counter. Exceptions from the forward pass propagate
    (with the tracer attached as ``exc._trace``)."""
    mapping = _stand_ins(model, device)
    counter = _FlopCounter() if count_flops else None
    tracer = _Tracer(model, counter, check, per_module=per_module)
    with ExitStack() as stack:
        stack.enter_context(_no_mkldnn(device))
        stack.enter_context(tracer)
        if counter is not None:
            stack.enter_context(counter)
        if device.type == "meta":
            stack.enter_context(torch.no_grad())  # nothing to differentiate without storage
        try:
            if mapping is None:
                out = model(*args, **kwargs)  # already shapes-only on meta: nothing to swap
            else:
                out = torch.func.functional_call(model, mapping, args, kwargs, strict=False, tie_weights=True)
        except BaseException as exc:  # noqa: BLE001 — re-raised with the trace attached
            exc._trace = tracer  # type: ignore[attr-defined]
            raise
    return tracer, out, counter


def _lazy_copy(model: nn.Module, device: torch.device) -> nn.Module:
    """A deep copy of a model with lazy layers, its tensors on `device` (ties kept), the lazy
    ones still uninitialised (``Module.to`` would turn them into empty tensors)."""
    from torch.nn.parameter import UninitializedBuffer, UninitializedParameter  # noqa: PLC0415

    clone = copy.deepcopy(model)
    memo: dict[int, Any] = {}

    def moved(t: Any, param: bool) -> Any:
        if id(t) not in memo:
            if isinstance(t, UninitializedParameter):
                memo[id(t)] = UninitializedParameter(device=device, requires_grad=t.requires_grad)
            elif isinstance(t, UninitializedBuffer):
                memo[id(t)] = UninitializedBuffer(device=device)
            elif device.type == "meta":
                new = torch.empty_like(t, device="meta")
                memo[id(t)] = nn.Parameter(new, requires_grad=t.requires_grad) if param else new
            else:
                new = t.detach().to(device)
                memo[id(t)] = nn.Parameter(new, requires_grad=t.requires_grad) if param else new
        return memo[id(t)]

    for module in clone.modules():
        for key, t in module._parameters.items():
            if t is not None:
                module._parameters[key] = moved(t, True)
        for key, t in module._buffers.items():
            if t is not None:
                module._buffers[key] = moved(t, False)
    return clone


def _prepare(model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any],
             device: torch.device) -> tuple[nn.Module, tuple[Any, ...], dict[str, Any], list[str]]:
    notes: list[str] = []
    if _has_lazy(model):
        model = _lazy_copy(model, device)
        notes.append("the model has lazy layers: a deep copy was traced (the original stays uninitialised)")
    to_dev = (lambda t: t.to("meta")) if device.type == "meta" else (lambda t: t.to(device))
    return model, _map_tensors(args, to_dev), _map_tensors(kwargs, to_dev), notes


# --------------------------------------------------------------------------- summary ---------

def summary(model: nn.Module, input_size: Optional[Union[ShapeSize, torch.Size]] = None, *,
            example_inputs: Any = None, device: DeviceLike = "meta",
            dtypes: Optional[Union[torch.dtype, Sequence[torch.dtype]]] = None,
            depth: Optional[int] = None) -> Summary:
    """Trace one forward pass and tabulate every layer call: shapes, parameters, FLOPs, MACs.

    Args:
        model: any nn.Module, on any device (built on meta for huge models).
        input_size: shape of the input, e.g. ``(2, 1, 28, 28)``, or a list of shapes for several
            positional inputs. Tensors of zeros are created on `device` with the model's floating
            dtype (or `dtypes`, e.g. ``[torch.long]`` for token ids going into an Embedding).
        example_inputs: instead of `input_size`: a tensor, a tuple/list of positional inputs, or
            a dict of keyword inputs. They are moved to `device` (on meta only shapes survive).
        device: where to run the pass; ``"meta"`` (default) allocates no weights.
        dtypes: dtype per input of `input_size` (one dtype applies to all), e.g. ``[torch.long]``.
        depth: show rows down to this nesting depth only (the model is depth 0); deeper calls
            are folded into their ancestor row, whose params and FLOPs then include them.

    Returns:
        `Summary` with ``rows`` (`LayerRow`, call order), ``total_params`` (== `count_params`),
        ``trainable_params``, ``total_buffers``, ``total_flops``/``total_macs`` (FLOPs = 2·MACs),
        ``param_bytes(dtype)``; ``str()`` is an aligned text table, ``_repr_html_`` an HTML table.
    """
    if (input_size is None) == (example_inputs is None):
        raise ValueError("pass exactly one of input_size=(…) or example_inputs=…")
    dev = torch.device(device)
    if input_size is not None:
        args, kwargs = _make_inputs(model, input_size, dtypes, dev), {}
    else:
        args, kwargs = _as_args(example_inputs)
    traced, args, kwargs, notes = _prepare(model, args, kwargs, dev)
    try:
        tracer, out, counter = _run(traced, args, kwargs, dev, count_flops=True)
    except Exception as exc:
        real = _real_device(traced)
        if dev.type != "meta" or real is None or not _meta_limitation(exc):
            raise
        notes.append(f"cannot run on meta ({str(exc).splitlines()[0][:80]}); traced on {real} instead")
        dev = real
        args, kwargs = _map_tensors(args, lambda t: torch.zeros_like(t, device=real)), \
            _map_tensors(kwargs, lambda t: torch.zeros_like(t, device=real))
        tracer, out, counter = _run(traced, args, kwargs, dev, count_flops=True)
    assert counter is not None
    rows, parents = _build_rows(traced, tracer)
    total = sum(r.new_params for r in rows)  # every tensor once (== count_params, tested)
    trainable = sum(r.trainable_params for r in rows)
    if depth is not None:
        rows = _collapse(rows, parents, depth)
    return Summary(model_type=type(model).__name__, rows=rows, total_params=total,
                   trainable_params=trainable,
                   total_buffers=count_buffers(traced), total_flops=counter.get_total_flops(),
                   device=str(dev), input_shapes=tuple(_shapes_of(a) for a in args),
                   output_shapes=_shapes_of(out), notes=notes)


def _label(name: str, parent_name: Optional[str]) -> str:
    if parent_name and name.startswith(parent_name + "."):
        return name[len(parent_name) + 1:]
    return name


def _build_rows(model: nn.Module, tracer: _Tracer) -> tuple[list[LayerRow], list[int]]:
    """Rows in display order and, for each, the index of its parent row (-1 for the model).

    Modules that own parameters but were never called as modules (e.g. the ``out_proj`` of
    nn.MultiheadAttention, whose weight its parent uses functionally, or a spare layer) get a
    row with ``call == 0`` at the end of their nearest called ancestor's block, so that the rows
    still sum to the total."""
    first_name: dict[int, str] = {}  # tensor id → "module.param" where first counted

    def own_counts(module: nn.Module, name: str) -> tuple[int, int, int, tuple[str, ...]]:
        total = shared = trainable = 0
        tied: list[str] = []
        for pname, p in module._parameters.items():
            if p is None:
                continue
            n = p.numel()
            total += n
            key = id(p)
            if key in first_name:
                shared += n
                tied.append(first_name[key])
            else:
                first_name[key] = f"{name}.{pname}" if name else pname
                trainable += n if p.requires_grad else 0
        return total, shared, trainable, tuple(dict.fromkeys(tied))

    called: list[LayerRow] = []
    first_row: dict[str, int] = {}
    for i, c in enumerate(tracer.calls):
        total, shared, trainable, tied = own_counts(c.module, c.name)
        parent_name = tracer.calls[c.parent].name if c.parent >= 0 else None
        first_row.setdefault(c.name, i)
        called.append(LayerRow(
            name=c.name, type=type(c.module).__name__, depth=c.depth, input_shapes=c.args,
            input_kwargs=c.kwargs, output_shapes=c.output, params=total, shared_params=shared,
            trainable_params=trainable, flops=c.cum_flops - c.child_flops, cum_flops=c.cum_flops,
            call=c.call, tied_with=tied, label=_label(c.name, parent_name) if c.depth else ""))

    def block_end(i: int) -> int:  # last row of row i's subtree (rows are in pre-order)
        j = i
        while j + 1 < len(called) and called[j + 1].depth > called[i].depth:
            j += 1
        return j

    extra: dict[int, list[tuple[LayerRow, int]]] = {}
    for name, module in model.named_modules():
        if not any(p is not None and id(p) not in first_name for p in module._parameters.values()):
            continue
        parts = name.split(".")
        anchor = next((first_row[".".join(parts[:k])] for k in range(len(parts) - 1, -1, -1)
                       if ".".join(parts[:k]) in first_row), None)
        total, shared, trainable, tied = own_counts(module, name)
        base = called[anchor] if anchor is not None else None
        depth = (base.depth + len(parts) - (base.name.count(".") + 1 if base.name else 0)) if base else len(parts)
        row = LayerRow(name=name, type=type(module).__name__, depth=depth, input_shapes=(), input_kwargs={},
                       output_shapes=None, params=total, shared_params=shared, trainable_params=trainable,
                       flops=0, cum_flops=0, call=0, tied_with=tied,
                       label=_label(name, base.name if base else None))
        extra.setdefault(block_end(anchor) if anchor is not None else len(called) - 1, []).append(
            (row, anchor if anchor is not None else -1))

    rows: list[LayerRow] = []
    parents: list[int] = []
    new_index: dict[int, int] = {}
    for i, row in enumerate(called):
        new_index[i] = len(rows)
        parent = tracer.calls[i].parent
        rows.append(row)
        parents.append(new_index[parent] if parent >= 0 else -1)
        for extra_row, anchor in extra.get(i, []):
            rows.append(extra_row)
            parents.append(new_index[anchor] if anchor >= 0 else -1)
    return rows, parents


def _collapse(rows: list[LayerRow], parents: list[int], depth: int) -> list[LayerRow]:
    """Fold rows deeper than `depth` into their ancestor at `depth` (sums stay exact)."""
    keep: list[Optional[LayerRow]] = list(rows)
    for i in range(len(rows) - 1, -1, -1):  # children come after parents: fold bottom-up
        r = keep[i]
        assert r is not None
        if r.depth <= depth or parents[i] < 0:
            continue
        p = keep[parents[i]]
        assert p is not None
        keep[parents[i]] = replace(p, params=p.params + r.params, shared_params=p.shared_params + r.shared_params,
                                   trainable_params=p.trainable_params + r.trainable_params,
                                   flops=p.flops + r.flops, collapsed=True,
                                   tied_with=tuple(dict.fromkeys(p.tied_with + r.tied_with)))
        keep[i] = None
    return [r for r in keep if r is not None]


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


def _times(shape: Sequence[int]) -> str:
    return "×".join(map(str, shape))


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
