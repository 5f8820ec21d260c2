"""The cookbook table: every layer's parameter formula and shape rule, generated and proven.

The text of the table is not written here: it is the first paragraph of each formula's docstring
in `helpers.formulas` (and its ``Shapes:`` paragraph) and of each output-size function in
`helpers.shapes`. What IS written here is, per layer, a few configurations to prove it on:
`prove()` builds each real ``torch.nn`` module on the CPU, compares the formula with
`helpers.counting.count_params`, runs one forward pass and compares the output shape with the
shape rule (computed with `helpers.shapes` for conv/pool, by the docstring's rule otherwise).

    >>> from helpers.cookbook import table, prove
    >>> table()            # HTML in Jupyter, aligned text in a terminal
    >>> proofs = prove()   # one row per configuration; proofs.ok is True when all agree

One row per layer, titled "nn.LSTM parameters and shapes" etc., so Ctrl-F "LSTM parameters" finds it.
"""

from __future__ import annotations

import html
import inspect
import re
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

from helpers import formulas, shapes

__all__ = ["Case", "Entry", "ENTRIES", "first_paragraph", "shapes_paragraph", "table", "prove",
           "CookbookTable", "Proof", "ProofTable", "call_text"]

Shape = tuple[int, ...]


def first_paragraph(obj: Any, *, formula: bool = False, paragraphs: int = 1) -> str:
    """The first paragraph(s) of `obj`'s docstring, joined into one line.

    With ``formula=True``, when the first paragraph states no formula (no ``…`` literal), the
    next one is added (never a "Shapes" paragraph or a doctest): "Parameters of nn.GRU." alone
    says nothing. `paragraphs` > 1 takes that many prose paragraphs.
    """
    doc = inspect.getdoc(obj) or ""
    prose = [" ".join(p.split()) for p in doc.split("\n\n")
             if p.strip() and not p.lstrip().startswith((">>>", "Shapes", "Args", "Returns", "Raises"))]
    if not prose:
        return ""
    n = paragraphs
    if formula and n == 1 and not re.search(r"``[^`]*[·+*/×⌊][^`]*``", prose[0]) and len(prose) > 1:
        n = 2
    return " ".join(prose[:n])


def shapes_paragraph(obj: Any) -> Optional[str]:
    """The paragraph of `obj`'s docstring that starts with "Shapes", joined into one line."""
    for para in (inspect.getdoc(obj) or "").split("\n\n"):
        if para.lstrip().startswith("Shapes"):
            return " ".join(para.split())
    return None


def call_text(name: str, args: Sequence[Any] = (), kwargs: Optional[dict[str, Any]] = None) -> str:
    """``name(arg, …, key=value)`` as Python source."""
    parts = [*map(repr, args), *(f"{k}={v!r}" for k, v in (kwargs or {}).items())]
    return f"{name}({', '.join(parts)})"


@dataclass(frozen=True)
class Case:
    """One configuration: ``cls(*args, **kwargs)`` run on inputs of `inputs` shapes.

    formula_args/formula_kwargs: how the formula is called (default: the same as the module, which
    works because `helpers.formulas` names and orders its arguments like torch's constructors).
    dtype: "float" or "long" (token ids) for the inputs.
    """

    cls: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)
    inputs: tuple[Shape, ...] = ()
    formula_args: Optional[tuple[Any, ...]] = None
    formula_kwargs: Optional[dict[str, Any]] = None
    dtype: str = "float"

    @property
    def module_text(self) -> str:
        return call_text(f"nn.{self.cls}", self.args, self.kwargs)

    def bound(self) -> dict[str, Any]:
        """The constructor's arguments by name, defaults applied (as torch sees them)."""
        import torch.nn as nn  # noqa: PLC0415

        sig = inspect.signature(getattr(nn, self.cls))
        args = self.args
        if any(p.kind is p.VAR_POSITIONAL for p in sig.parameters.values()):
            # nn.RNN/GRU/LSTM take (*args, **kwargs): use the formula's torch-named signature
            sig, args = inspect.signature(formulas.rnn_params), (self.cls, *self.args)
        b = sig.bind(*args, **self.kwargs)
        b.apply_defaults()
        return dict(b.arguments)


@dataclass(frozen=True)
class Entry:
    """One table row: a layer, its formula, its shape rule, and the cases that prove them.

    formula: the `helpers.formulas` function (None: the layer has no parameters).
    shape_doc: the function whose docstring states the shape rule (a `helpers.shapes` function,
        or the formula itself when its docstring has a "Shapes:" paragraph), or None.
    shape_rule: a fallback one-line rule when no docstring states it ("output shape = input shape").
    expected: (case, input shapes) → the output shape(s) the rule predicts (nested like torch's).
    """

    layer: str
    formula: Optional[Callable[..., int]]
    shape_doc: Optional[Callable[..., Any]]
    expected: Callable[[Case, tuple[Shape, ...]], Any]
    cases: tuple[Case, ...]
    shape_rule: Optional[str] = None
    note: str = ""
    paragraphs: int = 1
    shape_rule_note: str = ""

    @property
    def title(self) -> str:
        return f"{self.layer} parameters and shapes"

    @property
    def formula_text(self) -> str:
        if self.formula is None:
            return "0 — nothing to learn (no parameters, no buffers)."
        text = first_paragraph(self.formula, formula=True, paragraphs=self.paragraphs)
        return f"{text} {self.note}".strip()

    @property
    def shape_text(self) -> str:
        if self.shape_doc is not None:
            para = (shapes_paragraph(self.shape_doc) if self.shape_doc is self.formula
                    else first_paragraph(self.shape_doc, formula=True))
            if para:
                return f"{para} {self.shape_rule_note}".strip()
        return f"{self.shape_rule or ''} {self.shape_rule_note}".strip()

    @property
    def sources(self) -> str:
        names = []
        if self.formula is not None:
            names.append(f"formulas.{self.formula.__name__}")
        if self.shape_doc is not None and self.shape_doc is not self.formula:
            names.append(f"shapes.{self.shape_doc.__name__}")
        return ", ".join(names)


# ------------------------------------------------------------------------------ expected shapes
def _same(case: Case, x: tuple[Shape, ...]) -> Shape:
    return x[0]


def _linear(case: Case, x: tuple[Shape, ...]) -> Shape:
    return (*x[0][:-1], case.bound()["out_features"])


def _bilinear(case: Case, x: tuple[Shape, ...]) -> Shape:
    return (*x[0][:-1], case.bound()["out_features"])


def _conv(case: Case, x: tuple[Shape, ...]) -> Shape:
    a = case.bound()
    spatial = shapes.conv_output_size(tuple(x[0][2:]), a["kernel_size"], a["stride"], a["padding"], a["dilation"])
    return (x[0][0], a["out_channels"], *spatial)


def _conv_t(case: Case, x: tuple[Shape, ...]) -> Shape:
    a = case.bound()
    spatial = shapes.conv_transpose_output_size(tuple(x[0][2:]), a["kernel_size"], a["stride"], a["padding"],
                                                a["output_padding"], a["dilation"])
    return (x[0][0], a["out_channels"], *spatial)


def _pool(case: Case, x: tuple[Shape, ...]) -> Shape:
    a = case.bound()
    kind = "avg" if case.cls.startswith("Avg") else "max"
    spatial = shapes.pool_output_size(tuple(x[0][2:]), a["kernel_size"], a["stride"], a["padding"],
                                      a.get("dilation", 1), a["ceil_mode"], kind=kind)
    return (*x[0][:2], *spatial)


def _embedding(case: Case, x: tuple[Shape, ...]) -> Shape:
    return (*x[0], case.bound()["embedding_dim"])


def _recurrent(case: Case, x: tuple[Shape, ...]) -> Any:
    a = case.bound()
    T, B = (x[0][1], x[0][0]) if a["batch_first"] else (x[0][0], x[0][1])
    s = shapes.rnn_shapes(case.cls, a["input_size"], a["hidden_size"], a["num_layers"], seq_len=T, batch=B,
                          batch_first=a["batch_first"], bidirectional=a["bidirectional"],
                          proj_size=a.get("proj_size", 0))
    return (s["output"], (s["h_n"], s["c_n"]) if case.cls == "LSTM" else s["h_n"])


def _mha(case: Case, x: tuple[Shape, ...]) -> Any:
    a = case.bound()
    q, k = x[0], x[1]
    if a["batch_first"]:
        B, T, S = q[0], q[1], k[1]
    else:
        T, B, S = q[0], q[1], k[0]
    # add_bias_kv appends one learned key/value, add_zero_attn one zero key/value: S grows by 1 each
    S += int(a["add_bias_kv"]) + int(a["add_zero_attn"])
    return (q[:-1] + (a["embed_dim"],), (B, T, S))


def _case(cls: str, *args: Any, inputs: Sequence[Shape], formula_args: Optional[tuple[Any, ...]] = None,
          formula_kwargs: Optional[dict[str, Any]] = None, dtype: str = "float", **kwargs: Any) -> Case:
    return Case(cls, tuple(args), kwargs, tuple(tuple(s) for s in inputs), formula_args, formula_kwargs, dtype)


def _rnn_cases(mode: str) -> tuple[Case, ...]:
    extra = {"proj_size": 8} if mode == "LSTM" else {}
    return (
        _case(mode, 20, 64, inputs=[(5, 2, 20)], formula_args=(mode, 20, 64)),
        _case(mode, 20, 64, inputs=[(2, 5, 20)], formula_args=(mode, 20, 64), num_layers=2,
              bidirectional=True, batch_first=True,
              formula_kwargs=dict(num_layers=2, bidirectional=True, batch_first=True)),
        _case(mode, 7, 12, inputs=[(4, 3, 7)], formula_args=(mode, 7, 12), num_layers=3, bias=False,
              formula_kwargs=dict(num_layers=3, bias=False, **extra), **extra),
    )


ENTRIES: tuple[Entry, ...] = (
    Entry("nn.Linear", formulas.linear_params, formulas.linear_params, _linear, (
        _case("Linear", 10, 5, inputs=[(4, 10)]),
        _case("Linear", 784, 128, inputs=[(2, 3, 784)], bias=False),
    )),
    Entry("nn.Bilinear", formulas.bilinear_params, None, _bilinear, (
        _case("Bilinear", 4, 6, 3, inputs=[(2, 4), (2, 6)]),
    ), shape_rule="input1 (*, in1_features), input2 (*, in2_features) → output (*, out_features)."),
    Entry("nn.Conv1d / nn.Conv2d / nn.Conv3d", formulas.conv_params, shapes.conv_output_size, _conv, (
        _case("Conv2d", 3, 16, 3, inputs=[(1, 3, 32, 32)], padding=1),
        _case("Conv2d", 8, 16, (3, 5), inputs=[(2, 8, 17, 20)], stride=2, dilation=(1, 2), groups=4, bias=False),
        _case("Conv1d", 12, 64, 3, inputs=[(2, 12, 50)], padding="same", formula_kwargs=dict(padding="same", dim=1)),
        _case("Conv3d", 2, 4, 3, inputs=[(1, 2, 6, 7, 8)], stride=(1, 2, 2), formula_kwargs=dict(dim=3)),
    )),
    Entry("nn.ConvTranspose1d / 2d / 3d", formulas.conv_transpose_params, shapes.conv_transpose_output_size,
          _conv_t, (
              _case("ConvTranspose2d", 16, 8, 2, inputs=[(1, 16, 14, 14)], stride=2),
              _case("ConvTranspose1d", 6, 9, 4, inputs=[(2, 6, 11)], stride=3, padding=1, output_padding=2,
                    groups=3, formula_kwargs=dict(stride=3, padding=1, output_padding=2, groups=3, dim=1)),
          )),
    Entry("nn.MaxPool1d / 2d / 3d", None, shapes.pool_output_size, _pool, (
        _case("MaxPool2d", 2, inputs=[(1, 3, 28, 28)]),
        _case("MaxPool2d", 3, inputs=[(1, 2, 10, 11)], stride=2, padding=1, ceil_mode=True),
        _case("MaxPool1d", 2, inputs=[(1, 1, 5)], stride=2, padding=1, ceil_mode=True),
    )),
    Entry("nn.AvgPool1d / 2d / 3d", None, shapes.pool_output_size, _pool, (
        _case("AvgPool2d", 3, inputs=[(1, 3, 13, 9)], stride=2, padding=1, ceil_mode=True),
    )),
    Entry("nn.Embedding", formulas.embedding_params, formulas.embedding_params, _embedding, (
        _case("Embedding", 1000, 64, inputs=[(2, 16)], dtype="long"),
        _case("Embedding", 50, 8, inputs=[(7,)], dtype="long", padding_idx=0),
    )),
    Entry("nn.BatchNorm1d / 2d / 3d", formulas.batchnorm_params, None, _same, (
        _case("BatchNorm2d", 64, inputs=[(2, 64, 5, 5)]),
        _case("BatchNorm1d", 10, inputs=[(4, 10)], affine=False),
    ), shape_rule="output shape = input shape (B, C, *); statistics per channel C.",
        note=f"Buffers: {first_paragraph(formulas.batchnorm_buffers)}"),
    Entry("nn.LayerNorm", formulas.layernorm_params, None, _same, (
        _case("LayerNorm", 768, inputs=[(2, 5, 768)]),
        _case("LayerNorm", (5, 6), inputs=[(3, 5, 6)], bias=False),
    ), shape_rule="output shape = input shape (*, *normalized_shape); statistics over normalized_shape."),
    Entry("nn.GroupNorm", formulas.groupnorm_params, None, _same, (
        _case("GroupNorm", 8, 64, inputs=[(2, 64, 4, 4)]),
    ), shape_rule="output shape = input shape (B, C, *); statistics per group of C/num_groups channels."),
    Entry("nn.PReLU", formulas.prelu_params, None, _same, (
        _case("PReLU", inputs=[(2, 3, 4)]),
        _case("PReLU", 3, inputs=[(2, 3, 4)]),
    ), shape_rule="output shape = input shape; the slopes broadcast over dim 1 (channels)."),
    Entry("nn.RNN", formulas.rnn_params, formulas.rnn_params, _recurrent, _rnn_cases("RNN"),
          note="Here G = 1."),
    Entry("nn.GRU", formulas.rnn_params, formulas.rnn_params, _recurrent, _rnn_cases("GRU"),
          note="Here G = 3 (reset, update, new)."),
    Entry("nn.LSTM", formulas.rnn_params, formulas.rnn_params, _recurrent, _rnn_cases("LSTM"),
          note="Here G = 4 (input, forget, cell, output)."),
    Entry("nn.MultiheadAttention", formulas.mha_params, formulas.mha_params, _mha, paragraphs=2,
          shape_rule_note="With add_bias_kv (one learned key/value) and add_zero_attn (one zero key/value) "
                          "the weights' last dim is S + 1 for each.", cases=(
        _case("MultiheadAttention", 16, 4, inputs=[(2, 5, 16)] * 3, batch_first=True),
        _case("MultiheadAttention", 12, 3, inputs=[(5, 2, 12), (7, 2, 6), (7, 2, 10)], kdim=6, vdim=10),
        _case("MultiheadAttention", 8, 2, inputs=[(3, 1, 8)] * 3, add_bias_kv=True, bias=False),
        _case("MultiheadAttention", 8, 4, inputs=[(2, 3, 8), (2, 4, 8), (2, 4, 8)], batch_first=True,
              add_bias_kv=True, add_zero_attn=True),
    )),
    Entry("nn.TransformerEncoderLayer / DecoderLayer", formulas.transformer_layer_params, None, _same, (
        _case("TransformerEncoderLayer", 32, 4, inputs=[(6, 2, 32)], dim_feedforward=64),
        _case("TransformerEncoderLayer", 16, 2, inputs=[(2, 6, 16)], dim_feedforward=48, batch_first=True,
              norm_first=True, bias=False),
        _case("TransformerDecoderLayer", 16, 2, inputs=[(6, 2, 16), (9, 2, 16)], dim_feedforward=32,
              formula_kwargs=dict(dim_feedforward=32, decoder=True)),
    ), shape_rule="output shape = input (target) shape (T, B, d_model), or (B, T, d_model) with batch_first."),
)


# ------------------------------------------------------------------------------------ the table
class CookbookTable:
    """The table: one row per layer. HTML in Jupyter (`_repr_html_`), aligned text otherwise."""

    def __init__(self, entries: Sequence[Entry]) -> None:
        self.entries = list(entries)

    def rows(self) -> list[tuple[str, str, str, str]]:
        return [(e.title, e.formula_text, e.shape_text, e.sources) for e in self.entries]

    def __str__(self) -> str:
        blocks = []
        for title, formula, shape, source in self.rows():
            blocks.append(f"{title}\n  parameters: {formula}\n  shapes:     {shape}\n  from:       {source}")
        return "\n\n".join(blocks)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        def code(text: str) -> str:  # ``x`` (reST literal) → <code>x</code>
            return re.sub(r"``(.+?)``", r"<code>\1</code>", html.escape(text))

        head = ("<tr><th style='text-align:left'>layer</th><th style='text-align:left'>parameters</th>"
                "<th style='text-align:left'>shapes</th><th style='text-align:left'>helpers</th></tr>")
        body = "".join(
            f"<tr id='{re.sub(r'[^a-z0-9]+', '-', title.lower()).strip('-')}'>"
            f"<td style='text-align:left'><b>{html.escape(title)}</b></td>"
            f"<td style='text-align:left'>{code(formula)}</td><td style='text-align:left'>{code(shape)}</td>"
            f"<td style='text-align:left'><code>{html.escape(source)}</code></td></tr>"
            for title, formula, shape, source in self.rows())
        return f"<table>{head}{body}</table>"


def table(entries: Sequence[Entry] = ENTRIES) -> CookbookTable:
    """The cookbook table, generated from the docstrings of `helpers.formulas` / `helpers.shapes`."""
    return CookbookTable(entries)


# ------------------------------------------------------------------------------------- the proof
@dataclass(frozen=True)
class Proof:
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


class ProofTable(list):
    """A list of `Proof`; prints as an aligned table; `.ok` when every row agrees."""

    @property
    def ok(self) -> bool:
        return all(p.ok for p in self)

    def __str__(self) -> str:
        header = ("torch module", "formula", "= formula", "= torch", "input", "shape rule → output", "")
        rows = [(p.module, p.formula_call, f"{p.formula:,}", f"{p.torch:,}",
                 ", ".join(map(str, p.inputs)), _shape_text(p.expected_shape), "✓" if p.ok else "✗ MISMATCH")
                for p in self]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        lines = ["  ".join(c.ljust(w) if i != 2 and i != 3 else c.rjust(w)
                           for i, (c, w) in enumerate(zip(r, widths))).rstrip() for r in [header, *rows]]
        lines.insert(1, "-" * len(lines[0]))
        lines.append(f"{sum(p.ok for p in self)}/{len(self)} configurations: formula == count_params(torch) "
                     f"and shape rule == torch's forward pass")
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
                e(_shape_text(p.expected_shape)) + ("" if p.expected_shape == p.torch_shape
                                                    else f" ≠ {e(_shape_text(p.torch_shape))}"),
                "✓" if p.ok else "<b style='color:#b00'>✗ mismatch</b>")) + "</tr>"
            for p in self)
        foot = (f"<p>{sum(p.ok for p in self)}/{len(self)} configurations: formula == count_params(torch) "
                f"and shape rule == torch's forward pass</p>")
        return f"<table><tr>{head}</tr>{body}</table>{foot}"


def _shape_text(value: Any) -> str:
    if isinstance(value, tuple) and all(isinstance(v, int) for v in value):
        return str(value)
    return ", ".join(_shape_text(v) for v in value)


def _shapes_of(value: Any) -> Any:
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

    from helpers.counting import count_params  # noqa: PLC0415

    torch.manual_seed(seed)
    proofs = ProofTable()
    for entry in entries:
        for case in entry.cases:
            module = getattr(nn, case.cls)(*case.args, **case.kwargs).eval()
            f_args = case.args if case.formula_args is None else case.formula_args
            f_kwargs = case.kwargs if case.formula_kwargs is None else case.formula_kwargs
            if entry.formula is None:
                formula_value, formula_call = 0, "0"
            else:
                formula_value = entry.formula(*f_args, **f_kwargs)
                formula_call = call_text(entry.formula.__name__, f_args, f_kwargs)
            dtype = torch.long if case.dtype == "long" else torch.float32
            xs = [torch.randint(0, 8, s) if dtype == torch.long else torch.randn(s) for s in case.inputs]
            with torch.no_grad(), warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*not supported with oneDNN")
                out = module(*xs)
            if isinstance(module, nn.MultiheadAttention):
                out = (out[0], out[1])
            proofs.append(Proof(entry.layer, case.module_text, formula_call, formula_value, count_params(module),
                                case.inputs, entry.expected(case, case.inputs), _shapes_of(out)))
    return proofs
