"""The cookbook's proof: every configuration of every row built as the real torch module (CPU), counted
and run once; its formula compared with the count, its shape rule with the output's shape."""

from __future__ import annotations

import html
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

from helpers.course.cookbook.docstrings import call_text
from helpers.course.cookbook.entries import ENTRIES
from helpers.course.cookbook.entry import Entry, Shape
from helpers.course.cookbook.render import shape_text

__all__ = ["Proof", "ProofTable", "prove"]


@dataclass(frozen=True)
class Proof:
    """One configuration's verdict: the formula's value vs torch's count, the rule's shape vs torch's."""

    layer: str
    module: str
    formula_call: str
    formula: int
    torch: int
    inputs: tuple[Shape, ...]
    expected_shape: Any
    torch_shape: Any

    @property
    def ok(self) -> bool:
        return self.formula == self.torch and self.expected_shape == self.torch_shape


_AGREE = ("formula == count_params(module) (LoRA: trainable only; MoE active: router + the experts one token "
          "is routed to) and shape rule == the module's forward pass")


class ProofTable(list):
    """A list of `Proof`; prints as an aligned table; `.ok` when every row agrees."""

    @property
    def ok(self) -> bool:
        return all(p.ok for p in self)

    def __str__(self) -> str:
        header = ("torch module", "formula", "= formula", "= torch", "input", "shape rule → output", "")
        rows = [(p.module, p.formula_call, f"{p.formula:,}", f"{p.torch:,}",
                 ", ".join(map(str, p.inputs)), shape_text(p.expected_shape), "✓" if p.ok else "✗ MISMATCH")
                for p in self]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        lines = ["  ".join(c.ljust(w) if i != 2 and i != 3 else c.rjust(w)
                           for i, (c, w) in enumerate(zip(r, widths))).rstrip() for r in [header, *rows]]
        lines.insert(1, "-" * len(lines[0]))
        lines.append(f"{sum(p.ok for p in self)}/{len(self)} configurations: {_AGREE}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        e = html.escape
        head = "".join(f"<th style='text-align:left'>{h}</th>" for h in
                       ("torch module", "formula", "formula = count_params(torch)", "input shape(s)",
                        "shape rule = torch's output", ""))
        body = "".join(
            "<tr>" + "".join(f"<td style='text-align:left'>{c}</td>" for c in (
                f"<code>{e(p.module)}</code>", f"<code>{e(p.formula_call)}</code>",
                f"{p.formula:,} = {p.torch:,}", e(", ".join(map(str, p.inputs))),
                e(shape_text(p.expected_shape)) + ("" if p.expected_shape == p.torch_shape
                                                   else f" ≠ {e(shape_text(p.torch_shape))}"),
                "✓" if p.ok else "<b style='color:#b00'>✗ mismatch</b>")) + "</tr>"
            for p in self)
        foot = f"<p>{sum(p.ok for p in self)}/{len(self)} configurations: {html.escape(_AGREE)}</p>"
        return f"<table><tr>{head}</tr>{body}</table>{foot}"


def _shapes_of(value: Any) -> Any:
    """The shape of a tensor output, or the nested shapes of a tuple of them."""
    import torch  # noqa: PLC0415

    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    return tuple(_shapes_of(v) for v in value)


def prove(entries: Sequence[Entry] = ENTRIES, *, seed: int = 0) -> ProofTable:
    """Build every case's real torch module (CPU), count it, run it; compare with the formulas.

    Returns a `ProofTable` (never raises on a mismatch: check ``.ok``; the notebook asserts it).
    """
    import torch  # noqa: PLC0415
    import torch.nn as nn  # noqa: PLC0415

    torch.manual_seed(seed)
    proofs = ProofTable()
    for entry in entries:
        formula = entry.formula_function()
        for case in entry.cases:
            module = case.build().eval()
            f_args, f_kwargs = case.formula_call()
            if formula is None:
                formula_value, formula_call = 0, "0"
            else:
                formula_value = formula(*f_args, **f_kwargs)
                formula_call = call_text(formula.__name__, f_args, f_kwargs)
            xs = [torch.randint(0, 8, s) if dtype == "long" else torch.randn(s)
                  for s, dtype in zip(case.inputs, case.dtypes())]
            with torch.no_grad(), warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*not supported with oneDNN")
                out = module(*xs)
            if isinstance(module, nn.MultiheadAttention):
                out = (out[0], out[1])
            proofs.append(Proof(entry.layer, case.module_text, formula_call, formula_value, case.counted(module, xs),
                                case.inputs, entry.expected_shape(case, case.inputs), _shapes_of(out)))
    return proofs
