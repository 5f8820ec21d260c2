"""Counting a module's parameters and buffers, with tied (shared) tensors counted once.

`count_params` is what ``sum(p.numel() for p in model.parameters())`` computes — torch's
`parameters()` already yields a shared Parameter once — but `param_table` also shows *where*
each tensor lives and which names alias it, which is what naive counting over
``state_dict()`` or per-layer sums gets wrong (a tied embedding/head is counted twice there).

Works on any device, including ``meta`` (only shapes are read).
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Union

import torch
from torch import nn

from helpers._text import dtype_bytes

__all__ = ["count_params", "count_buffers", "param_table", "ParamTable", "ParamRow", "bytes_for"]


def count_params(module: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of learnable scalars in `module`; a tensor shared by several layers counts once.

    Args:
        module: any nn.Module (any device, meta included).
        trainable_only: count only tensors with ``requires_grad=True`` (frozen layers excluded).
    """
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def count_buffers(module: nn.Module) -> int:
    """Number of scalars in registered buffers (e.g. BatchNorm's running_mean, running_var,
    num_batches_tracked): saved in the state_dict, not trained. Shared buffers count once."""
    return sum(b.numel() for b in module.buffers())


def bytes_for(numel: int, dtype: Union[torch.dtype, str] = torch.float32) -> int:
    """Bytes taken by `numel` elements of `dtype` (a torch dtype or a name of `helpers._text.DTYPES`:
    "fp32", "bf16", "int4", …): ``numel × bytes per element`` (fp32: 4, bf16: 2, int8: 1, int4: ½,
    rounded up to whole bytes)."""
    try:
        return math.ceil(numel * dtype_bytes(dtype))
    except ValueError:
        if isinstance(dtype, str):
            raise
        return numel * torch.empty((), dtype=dtype, device="meta").element_size()  # e.g. complex64


@dataclass(frozen=True)
class ParamRow:
    """One parameter tensor: its first qualified name, shape, size and any other names (ties)."""

    name: str
    shape: tuple[int, ...]
    numel: int
    trainable: bool
    tied_with: tuple[str, ...] = ()


@dataclass
class ParamTable:
    """One row per distinct parameter tensor; ``sum(row.numel) == total == count_params(module)``."""

    rows: list[ParamRow] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(r.numel for r in self.rows)

    @property
    def trainable(self) -> int:
        return sum(r.numel for r in self.rows if r.trainable)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.rows)

    def _cells(self) -> list[tuple[str, str, str, str, str]]:
        return [(r.name, "×".join(map(str, r.shape)) or "scalar", f"{r.numel:,}",
                 "yes" if r.trainable else "no", ", ".join(r.tied_with)) for r in self.rows]

    def __str__(self) -> str:
        header = ("name", "shape", "numel", "trainable", "tied with")
        cells = self._cells()
        footer = ("total", "", f"{self.total:,}", f"{self.trainable:,}", "")
        widths = [max(len(row[i]) for row in [header, footer, *cells]) for i in range(5)]
        right = {2}

        def line(row: tuple[str, ...]) -> str:
            return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                             for i, (c, w) in enumerate(zip(row, widths))).rstrip()

        rule = "-" * len(line(header))
        return "\n".join([line(header), rule, *map(line, cells), rule, line(footer)])

    __repr__ = __str__

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{h}</th>" for h in ("name", "shape", "numel", "trainable", "tied with"))
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                       for row in self._cells())
        foot = (f"<tr><th>total</th><td></td><th>{self.total:,}</th>"
                f"<td>{self.trainable:,} trainable</td><td></td></tr>")
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}{foot}</tbody></table>"

    def to_dataframe(self):  # type: ignore[no-untyped-def]
        """The rows as a pandas DataFrame (pandas is optional and imported only here)."""
        import pandas as pd  # noqa: PLC0415

        return pd.DataFrame([r.__dict__ for r in self.rows])


def param_table(module: nn.Module) -> ParamTable:
    """A table with one row per distinct parameter tensor of `module`.

    A tensor reachable under several names (weight tying, a layer reused twice) is one row,
    under its first name, with the other names in `tied_with` — so the rows sum to
    `count_params(module)`, not to the inflated sum over every name.
    """
    names: dict[int, list[str]] = {}
    tensors: dict[int, nn.Parameter] = {}
    for name, p in module.named_parameters(remove_duplicate=False):
        names.setdefault(id(p), []).append(name)
        tensors[id(p)] = p
    rows = [ParamRow(name=ns[0], shape=tuple(tensors[key].shape), numel=tensors[key].numel(),
                     trainable=tensors[key].requires_grad, tied_with=tuple(ns[1:]))
            for key, ns in names.items()]
    return ParamTable(rows)
