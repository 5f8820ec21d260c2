"""`summary`: a per-layer table of one traced forward pass (shapes, parameters, FLOPs, MACs).

See `helpers.trace` for the conventions (FLOPs = 2 per MAC, rows sum to the totals).
"""

from __future__ import annotations

import html
import sys
import types
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Optional, Union

import torch
from torch import nn

from helpers._forward import Tracer, as_args, make_inputs, shapes_of, traced_pass
from helpers._text import _format_inputs, _wrap, format_bytes, format_shapes, si
from helpers.counting import bytes_for, count_buffers
from helpers.moe import active_params

__all__ = ["summary", "Summary", "LayerRow"]

ShapeSize = Union[Sequence[int], Sequence[Sequence[int]]]
DeviceLike = Union[str, torch.device]

_TABLE_WIDTH = 110
_OUTPUT_NAMES = {"LSTM": ("output", ("h_n", "c_n")), "GRU": ("output", "h_n"), "RNN": ("output", "h_n"),
                 "MultiheadAttention": ("attn_output", "attn_weights")}


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
    active_params: Optional[int] = None  # parameters one token uses (< total for a Mixture of Experts)

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
            out.append((label, r.input_str, r.output_str, params, si(r.flops), si(r.macs)))
        return out

    def _footer(self) -> list[str]:
        fp32, bf16 = self.param_bytes_fp32, self.param_bytes_bf16
        lines = [
            f"Total params: {self.total_params:,}  (tied/shared tensors counted once)"
            + (f"  ·  active per token: {self.active_params:,}"
               if self.active_params is not None and self.active_params != self.total_params else ""),
            f"Trainable params: {self.trainable_params:,}  ·  non-trainable: {self.non_trainable_params:,}"
            f"  ·  buffers: {self.total_buffers:,}",
            f"Total FLOPs: {self.total_flops:,} ({si(self.total_flops)})  ·  MACs = FLOPs/2: "
            f"{self.total_macs:,} ({si(self.total_macs)})",
            f"Param memory: fp32 {format_bytes(fp32)} ({fp32:,} B)  ·  bf16 {format_bytes(bf16)}",
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
        ``param_bytes(dtype)``, ``active_params`` (parameters one token uses: < total for a
        Mixture of Experts, see `helpers.trace`), ``notes`` (fallbacks, uncounted ops, MoE);
        ``str()`` is an aligned text table, ``_repr_html_`` an HTML table.
    """
    if (input_size is None) == (example_inputs is None):
        raise ValueError("pass exactly one of input_size=(…) or example_inputs=…")
    dev = torch.device(device)
    remake = None
    if input_size is not None:
        args, kwargs = make_inputs(model, input_size, dtypes, dev), {}
        remake = lambda d: make_inputs(model, input_size, dtypes, d)  # noqa: E731
    else:
        args, kwargs = as_args(example_inputs)
    run = traced_pass(model, args, kwargs, dev, count_flops=True, remake=remake)
    assert run.counter is not None
    notes = list(run.notes)
    if run.counter.uncounted:
        ops = ", ".join(f"{op} ×{n}" for op, n in sorted(run.counter.uncounted.items()))
        notes.append(f"FLOPs NOT counted (no formula for these ops; the totals miss them): {ops}")
    rows, parents = _build_rows(run.model, run.tracer)
    total = sum(r.new_params for r in rows)  # every tensor once (== count_params, tested)
    trainable = sum(r.trainable_params for r in rows)
    active, moe = active_params(run.model, total)
    if moe:
        notes.append(f"Mixture of Experts: {moe}; active = total − (n − k)/n of each block's expert parameters")
    if depth is not None:
        rows = _collapse(rows, parents, depth)
    return Summary(model_type=type(model).__name__, rows=rows, total_params=total,
                   trainable_params=trainable,
                   total_buffers=count_buffers(run.model), total_flops=run.counter.get_total_flops(),
                   device=str(run.device), input_shapes=tuple(shapes_of(a) for a in run.args),
                   output_shapes=shapes_of(run.output), notes=notes, active_params=active)


def _label(name: str, parent_name: Optional[str]) -> str:
    if parent_name and name.startswith(parent_name + "."):
        return name[len(parent_name) + 1:]
    return name


def _build_rows(model: nn.Module, tracer: Tracer) -> tuple[list[LayerRow], list[int]]:
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


class _CallableModule(types.ModuleType):
    """``helpers.summary`` is both this module and, called, the function: ``from helpers import
    summary`` (which yields the module once it is imported) keeps working as ``summary(…)``."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return summary(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
