"""The cookbook table: every layer's parameter formula and shape rule, generated and proven.

The text of the table is not written here: it is the first paragraph of each formula's docstring
in `helpers.formulas` (and its ``Shapes:`` paragraph) and of each output-size function in
`helpers.shapes`. What IS written here is, per layer, a few configurations to prove it on:
`prove()` builds each real ``torch.nn`` module on the CPU, compares the formula with
`helpers.counting.count_params`, runs one forward pass and compares the output shape with the
shape rule (computed with `helpers.shapes` for conv/pool, by the docstring's rule otherwise).
Layers that are not one ``torch.nn`` call (chapters 12–14: GQA attention, SwiGLU, MoE, ResNet and
MobileNetV2 blocks, LoRA, RoPE) name what builds them (`Case.factory`, by dotted path: a course class
of `helpers.models`, or a recipe below around peft / Hugging Face) and, where the formula is not the
plain parameter count, what it is compared with (`Case.count`: LoRA's trainable, MoE's routed).

    >>> from helpers.course.cookbook import table, prove
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

__all__ = ["Case", "Entry", "ENTRIES", "swiglu_moe", "routed_params", "lora_linear", "trainable_params",
           "hf_rotary_embedding", "first_paragraph", "shapes_paragraph", "heading_anchor", "table",
           "prove", "CookbookTable", "Proof", "ProofTable", "call_text", "Famous", "FAMOUS", "famous_models",
           "FamousTable", "active_params", "LLAMA_3_2_1B"]

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


def heading_anchor(heading: str) -> str:
    """The anchor JupyterLab gives a markdown heading: its rendered text, spaces → ``-``.

    >>> heading_anchor("3 · Exact parameter counts for `nn.RNN`")
    '3-·-Exact-parameter-counts-for-nn.RNN'
    """
    text = re.sub(r"[`*]", "", heading).strip()
    return text.replace(" ", "-")


def _section_link(chapter: Optional[tuple[str, str]]) -> Optional[tuple[str, str]]:
    """(text, href) for a (notebook stem, heading) pair, or None."""
    if chapter is None:
        return None
    notebook, heading = chapter
    return f"{notebook[:2]} § {heading}", f"{notebook}.ipynb#{heading_anchor(heading)}"


def _link_html(link: Optional[tuple[str, str]]) -> str:
    return f"<a href='{html.escape(link[1], quote=True)}'>{html.escape(link[0])}</a>" if link else "—"


def _header_html(columns: Sequence[str]) -> str:
    return "<tr>" + "".join(f"<th style='text-align:left'>{html.escape(c)}</th>" for c in columns) + "</tr>"


#: cells wrap (long ``code`` names too: overflow-wrap anywhere), the table takes the output's width
#: with its columns sized by content (JupyterLab's default ``table-layout: fixed`` and unbreakable
#: names cut the last columns), and what still does not fit scrolls sideways inside its own box.
_WRAP_CELL = "text-align:left; vertical-align:top; white-space:normal; overflow-wrap:anywhere"


def _wide_table(head: str, body: str) -> str:
    """A table that shows every column: cells wrap, and a scroll bar of its own where they cannot."""
    body = body.replace("<td style='text-align:left'>", f"<td style='{_WRAP_CELL}'>")
    return (f"<div class='dp-wide-table' style='overflow-x:auto; max-width:100%'>"
            f"<table style='table-layout:auto; width:100%; min-width:60em'>{head}{body}</table></div>")


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


def _resolve(path: str) -> Any:
    """The object named by a dotted path: ``"helpers.models.resnet.Bottleneck"`` (imported lazily, so
    this module never imports torch or a reference library at import time)."""
    import importlib  # noqa: PLC0415

    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class Case:
    """One configuration: ``cls(*args, **kwargs)`` run on inputs of `inputs` shapes.

    formula_args/formula_kwargs: how the formula is called (default: the same as the module, which
    works because `helpers.formulas` names and orders its arguments like torch's constructors).
    dtype: "float" or "long" (token ids) for the inputs, or one of those per input.
    factory: dotted path of what builds the module when it is not ``torch.nn.<cls>`` (a course
        model class of `helpers.models`, or a recipe of this module around an independent
        reference such as peft); `cls` is then the name shown. None: ``getattr(torch.nn, cls)``.
    config: dotted path of a config class (``helpers.models.llama.LlamaConfig``): args/kwargs
        build it and the factory receives it, shown as ``Cls(Config(…))``.
    count: dotted path of ``(module, inputs) → int``, what the formula is compared with
        (default `helpers.counting.count_params`), e.g. the parameters one token really uses.
    """

    cls: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)
    inputs: tuple[Shape, ...] = ()
    formula_args: Optional[tuple[Any, ...]] = None
    formula_kwargs: Optional[dict[str, Any]] = None
    dtype: str | tuple[str, ...] = "float"
    factory: Optional[str] = None
    config: Optional[str] = None
    count: Optional[str] = None

    @property
    def module_text(self) -> str:
        name = f"nn.{self.cls}" if self.factory is None else self.cls
        if self.config is not None:
            return f"{name}({call_text(self.config.rpartition('.')[2], self.args, self.kwargs)})"
        return call_text(name, self.args, self.kwargs)

    def target(self) -> Callable[..., Any]:
        """The class or function that builds the module (``torch.nn.<cls>`` unless `factory`)."""
        if self.factory is None:
            import torch.nn as nn  # noqa: PLC0415
            return getattr(nn, self.cls)
        return _resolve(self.factory)

    def build(self) -> Any:
        """The module of this configuration, on the current default device."""
        if self.config is not None:
            return self.target()(_resolve(self.config)(*self.args, **self.kwargs))
        return self.target()(*self.args, **self.kwargs)

    def counted(self, module: Any, inputs: Sequence[Any]) -> int:
        """What the formula is compared with: `count` of (module, inputs), else ``count_params(module)``."""
        if self.count is not None:
            return _resolve(self.count)(module, inputs)
        from helpers.counting import count_params  # noqa: PLC0415
        return count_params(module)

    def dtypes(self) -> tuple[str, ...]:
        """One dtype name per input."""
        return (self.dtype,) * len(self.inputs) if isinstance(self.dtype, str) else self.dtype

    def bound(self) -> dict[str, Any]:
        """The constructor's arguments by name, defaults applied (as torch sees them)."""
        target = _resolve(self.config) if self.config is not None else self.target()
        sig = inspect.signature(target)
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
    chapter: Optional[tuple[str, str]] = None

    @property
    def title(self) -> str:
        return f"{self.layer} parameters and shapes"

    @property
    def formula_text(self) -> str:
        if self.formula is None:
            return f"0 — nothing to learn; {self.note}" if self.note else "0 — nothing to learn (no parameters, no buffers)."
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
    def worked(self) -> str:
        """The first case as a worked count: ``nn.LSTM(20, 64) → 21,504 parameters`` (formula only;
        `prove` checks the same number against torch)."""
        case = self.cases[0]
        if self.formula is None:
            return f"{case.module_text} → 0 parameters"
        f_args = case.args if case.formula_args is None else case.formula_args
        f_kwargs = case.kwargs if case.formula_kwargs is None else case.formula_kwargs
        return f"{case.module_text} → {self.formula(*f_args, **f_kwargs):,} parameters"

    @property
    def link(self) -> Optional[tuple[str, str]]:
        """(text, href) of the chapter section that derives this row, e.g.
        ``("06 § 3 · Exact parameter counts …", "06_lstm_gru.ipynb#3-·-Exact-…")``, or None."""
        return _section_link(self.chapter)

    @property
    def sources(self) -> str:
        names = []
        if self.formula is not None:
            names.append(f"formulas.{self.formula.__name__}")
        if self.shape_doc is not None and self.shape_doc is not self.formula:
            names.append(f"{self.shape_doc.__module__.removeprefix('helpers.')}.{self.shape_doc.__name__}")
        names += dict.fromkeys(c.factory.removeprefix("helpers.") for c in self.cases if c.factory)
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
          formula_kwargs: Optional[dict[str, Any]] = None, dtype: str | tuple[str, ...] = "float",
          factory: Optional[str] = None, config: Optional[str] = None, count: Optional[str] = None,
          **kwargs: Any) -> Case:
    return Case(cls, tuple(args), kwargs, tuple(tuple(s) for s in inputs), formula_args, formula_kwargs, dtype,
                factory, config, count)


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


def _block(case: Case, x: tuple[Shape, ...]) -> Shape:
    """A residual block: its 3×3 conv (padding 1, stride s) sets H', W'; C_out = out_channels or e·planes."""
    a = case.bound()
    out = a["out_channels"] if "out_channels" in a else a["planes"] * case.target().expansion
    return (x[0][0], out, *shapes.conv_output_size(tuple(x[0][2:]), 3, a["stride"], 1))


def _rotary(case: Case, x: tuple[Shape, ...]) -> Any:
    a = case.bound()
    d = a["hidden_size"] // a["num_attention_heads"]
    return ((*x[1], d), (*x[1], d))  # cos and sin, (B, T, d) each


# -------------------------------------------------------- recipes: modules that are not one torch.nn call
def swiglu_moe(hidden_size: int, intermediate_size: int, num_local_experts: int, num_experts_per_tok: int) -> Any:
    """Mixtral's sparse MoE block: ``SparseMoE(D, E, k, lambda: LlamaMLP(LlamaConfig(dim=D,
    intermediate_size=F)))`` (`helpers.models.moe.SparseMoE` of `helpers.models.llama.LlamaMLP`)."""
    from helpers.models.llama import LlamaConfig, LlamaMLP  # noqa: PLC0415
    from helpers.models.moe import SparseMoE  # noqa: PLC0415

    config = LlamaConfig(dim=hidden_size, intermediate_size=intermediate_size, n_heads=1)
    return SparseMoE(hidden_size, num_local_experts, num_experts_per_tok, lambda: LlamaMLP(config))


def routed_params(moe: Any, inputs: Sequence[Any]) -> int:
    """Parameters the first token of ``inputs[0]`` really uses in a `SparseMoE`: the router plus the
    experts it is routed to (found by running the router, not by a formula)."""
    from helpers.counting import count_params  # noqa: PLC0415

    token = inputs[0].reshape(-1, inputs[0].shape[-1])[:1]  # (1, D)
    _, experts = moe.route(token)  # (1, k)
    return count_params(moe.gate) + sum(count_params(moe.experts[e]) for e in experts[0].tolist())


def lora_linear(in_features: int, out_features: int, r: int) -> Any:
    """peft's LoRA on one linear layer: ``get_peft_model(nn.Sequential(nn.Linear(in, out)),
    LoraConfig(r=r, target_modules=["0"]))`` (the independent reference; W frozen, A and B trained)."""
    import peft  # noqa: PLC0415
    import torch.nn as nn  # noqa: PLC0415

    return peft.get_peft_model(nn.Sequential(nn.Linear(in_features, out_features)),
                               peft.LoraConfig(r=r, target_modules=["0"]))


def trainable_params(module: Any, inputs: Sequence[Any]) -> int:
    """``count_params(module, trainable_only=True)``: what an optimizer updates."""
    from helpers.counting import count_params  # noqa: PLC0415

    return count_params(module, trainable_only=True)


def hf_rotary_embedding(hidden_size: int, num_attention_heads: int) -> Any:
    """Hugging Face's ``LlamaRotaryEmbedding(LlamaConfig(hidden_size=D, num_attention_heads=h))``:
    (x, position_ids (B, T)) → cos, sin (B, T, d), d = D // h."""
    from transformers import LlamaConfig  # noqa: PLC0415
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding  # noqa: PLC0415

    return LlamaRotaryEmbedding(LlamaConfig(hidden_size=hidden_size, num_attention_heads=num_attention_heads))


_LLAMA = "helpers.models.llama."
_CH12, _CH14 = "12_modern_llms", "14_vision_backbones"
_LLAMA_CONFIG = _LLAMA + "LlamaConfig"

ENTRIES: tuple[Entry, ...] = (
    Entry("nn.Linear", formulas.linear_params, formulas.linear_params, _linear, (
        _case("Linear", 10, 5, inputs=[(4, 10)]),
        _case("Linear", 784, 128, inputs=[(2, 3, 784)], bias=False),
    ), chapter=("01_linear", "3. Counting the parameters")),
    Entry("nn.Bilinear", formulas.bilinear_params, None, _bilinear, (
        _case("Bilinear", 4, 6, 3, inputs=[(2, 4), (2, 6)]),
    ), shape_rule="input1 (*, in1_features), input2 (*, in2_features) → output (*, out_features)."),
    Entry("nn.Conv1d / nn.Conv2d / nn.Conv3d", formulas.conv_params, shapes.conv_output_size, _conv, (
        _case("Conv2d", 3, 16, 3, inputs=[(1, 3, 32, 32)], padding=1),
        _case("Conv2d", 8, 16, (3, 5), inputs=[(2, 8, 17, 20)], stride=2, dilation=(1, 2), groups=4, bias=False),
        _case("Conv1d", 12, 64, 3, inputs=[(2, 12, 50)], padding="same", formula_kwargs=dict(padding="same", dim=1)),
        _case("Conv3d", 2, 4, 3, inputs=[(1, 2, 6, 7, 8)], stride=(1, 2, 2), formula_kwargs=dict(dim=3)),
    ), chapter=("02_convolution", "3. Every argument of `nn.Conv2d` / `nn.Conv1d`")),
    Entry("nn.ConvTranspose1d / 2d / 3d", formulas.conv_transpose_params, shapes.conv_transpose_output_size,
          _conv_t, (
              _case("ConvTranspose2d", 16, 8, 2, inputs=[(1, 16, 14, 14)], stride=2),
              _case("ConvTranspose1d", 6, 9, 4, inputs=[(2, 6, 11)], stride=3, padding=1, output_padding=2,
                    groups=3, formula_kwargs=dict(stride=3, padding=1, output_padding=2, groups=3, dim=1)),
          ), chapter=("09_unet", "3 · Completing the U: bottleneck, decoder, skips")),
    Entry("nn.MaxPool1d / 2d / 3d", None, shapes.pool_output_size, _pool, (
        _case("MaxPool2d", 2, inputs=[(1, 3, 28, 28)]),
        _case("MaxPool2d", 3, inputs=[(1, 2, 10, 11)], stride=2, padding=1, ceil_mode=True),
        _case("MaxPool1d", 2, inputs=[(1, 1, 5)], stride=2, padding=1, ceil_mode=True),
        _case("MaxPool1d", 2, inputs=[(1, 1, 8)], stride=1, dilation=3),
    ), shape_rule_note="Max pooling: padding counts as −∞ (a padded position never wins); `dilation` allowed "
                       "(window span d·(k−1)+1); padding ≤ kernel_size // 2 whatever the dilation; the "
                       "docstring's formula omits the ceil_mode rule (stated in its note only).",
        chapter=("03_pooling", "3 · The output-size formula")),
    Entry("nn.AvgPool1d / 2d / 3d", None, shapes.pool_output_size, _pool, (
        _case("AvgPool2d", 3, inputs=[(1, 3, 13, 9)], stride=2, padding=1, ceil_mode=True),
        _case("AvgPool1d", 2, inputs=[(1, 1, 5)], padding=1, count_include_pad=False),
    ), shape_rule_note="Average pooling: zero padding, counted in the divisor unless count_include_pad=False; "
                       "no `dilation` argument; padding ≤ kernel_size // 2 (its docstring states the limit "
                       "and, under the formula, the ceil_mode rule).",
        chapter=("03_pooling", "Padding: max pooling does **not** pad with zeros")),
    Entry("nn.Embedding", formulas.embedding_params, formulas.embedding_params, _embedding, (
        _case("Embedding", 1000, 64, inputs=[(2, 16)], dtype="long"),
        _case("Embedding", 50, 8, inputs=[(7,)], dtype="long", padding_idx=0),
    ), chapter=("07_embeddings", "1 · The lookup: $(B, T) \\to (B, T, D)$, $V \\cdot D$ parameters")),
    Entry("nn.BatchNorm1d / 2d / 3d", formulas.batchnorm_params, None, _same, (
        _case("BatchNorm2d", 64, inputs=[(2, 64, 5, 5)]),
        _case("BatchNorm1d", 10, inputs=[(4, 10)], affine=False),
    ), shape_rule="output shape = input shape (B, C, *); statistics per channel C.",
        note=f"Buffers: {first_paragraph(formulas.batchnorm_buffers)}",
        chapter=("04_normalization_dropout_activations", "1 · BatchNorm: two parameters and three buffers per layer")),
    Entry("nn.LayerNorm", formulas.layernorm_params, None, _same, (
        _case("LayerNorm", 768, inputs=[(2, 5, 768)]),
        _case("LayerNorm", (5, 6), inputs=[(3, 5, 6)], bias=False),
    ), shape_rule="output shape = input shape (*, *normalized_shape); statistics over normalized_shape.",
        chapter=("04_normalization_dropout_activations", "2 · LayerNorm: statistics per sample, over the trailing dimensions")),
    Entry("nn.GroupNorm", formulas.groupnorm_params, None, _same, (
        _case("GroupNorm", 8, 64, inputs=[(2, 64, 4, 4)]),
    ), shape_rule="output shape = input shape (B, C, *); statistics per group of C/num_groups channels.",
        chapter=("04_normalization_dropout_activations", "3 · GroupNorm: channels in groups, per sample")),
    Entry("nn.PReLU", formulas.prelu_params, None, _same, (
        _case("PReLU", inputs=[(2, 3, 4)]),
        _case("PReLU", 3, inputs=[(2, 3, 4)]),
    ), shape_rule="output shape = input shape; the slopes broadcast over dim 1 (channels).",
        chapter=("04_normalization_dropout_activations", "5 · Activations: no parameters (except PReLU)")),
    Entry("nn.RNN", formulas.rnn_params, formulas.rnn_params, _recurrent, _rnn_cases("RNN"),
          note="Here G = 1: one block, h_t = tanh(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh) (or relu); no proj_size.",
          shape_rule_note="Returns (output, h_n): no cell state.",
          chapter=("05_rnn_bptt", "2 · What `nn.RNN` returns: `output` vs `h_n`")),
    Entry("nn.GRU", formulas.rnn_params, formulas.rnn_params, _recurrent, _rnn_cases("GRU"),
          note="Here G = 3 (reset r, update z, candidate n, stacked in that order); b_hn sits inside the reset "
               "gate, so the two bias vectors are not redundant; no proj_size.",
          shape_rule_note="Returns (output, h_n): one state, no cell state.",
          chapter=("06_lstm_gru", "2 · The GRU: three blocks, one state")),
    Entry("nn.LSTM", formulas.rnn_params, formulas.rnn_params, _recurrent, _rnn_cases("LSTM"),
          note="Here G = 4 (input i, forget f, cell g, output o, stacked in that order); proj_size P > 0 adds "
               "weight_hr (P, H) per layer and direction and makes W_hh (4H, P).",
          shape_rule_note="Returns (output, (h_n, c_n)); with proj_size P, output and h_n have P features, "
                          "c_n keeps H.",
          chapter=("06_lstm_gru", "3 · Exact parameter counts for `nn.RNN`, `nn.GRU`, `nn.LSTM`")),
    Entry("nn.MultiheadAttention", formulas.mha_params, formulas.mha_params, _mha, paragraphs=2,
          shape_rule_note="With add_bias_kv (one learned key/value) and add_zero_attn (one zero key/value) "
                          "the weights' last dim is S + 1 for each.", cases=(
        _case("MultiheadAttention", 16, 4, inputs=[(2, 5, 16)] * 3, batch_first=True),
        _case("MultiheadAttention", 12, 3, inputs=[(5, 2, 12), (7, 2, 6), (7, 2, 10)], kdim=6, vdim=10),
        _case("MultiheadAttention", 8, 2, inputs=[(3, 1, 8)] * 3, add_bias_kv=True, bias=False),
        _case("MultiheadAttention", 8, 4, inputs=[(2, 3, 8), (2, 4, 8), (2, 4, 8)], batch_first=True,
              add_bias_kv=True, add_zero_attn=True),
    ), chapter=("08_attention_transformers", "3. How many parameters does multi-head attention have?")),
    Entry("nn.TransformerEncoderLayer / DecoderLayer", formulas.transformer_layer_params, None, _same, (
        _case("TransformerEncoderLayer", 32, 4, inputs=[(6, 2, 32)], dim_feedforward=64),
        _case("TransformerEncoderLayer", 16, 2, inputs=[(2, 6, 16)], dim_feedforward=48, batch_first=True,
              norm_first=True, bias=False),
        _case("TransformerDecoderLayer", 16, 2, inputs=[(6, 2, 16), (9, 2, 16)], dim_feedforward=32,
              formula_kwargs=dict(dim_feedforward=32, decoder=True)),
    ), shape_rule="output shape = input (target) shape (T, B, d_model), or (B, T, d_model) with batch_first.",
        chapter=("08_attention_transformers", "4. The feed-forward network and the transformer block")),
    # ------------------------------------------------------------------ chapters 12–14
    Entry("nn.RMSNorm", formulas.rmsnorm_params, formulas.rmsnorm_params, _same, (
        _case("RMSNorm", 64, inputs=[(2, 5, 64)]),
        _case("RMSNorm", (4, 8), inputs=[(3, 4, 8)], elementwise_affine=False),
        _case("RMSNorm", 32, inputs=[(2, 3, 32)], factory=_LLAMA + "RMSNorm"),
    ), chapter=(_CH12, "2 · RMSNorm: $d$ parameters instead of $2d$")),
    Entry("RoPE (rotary position embedding)", None, None, _rotary, (
        _case("hf_rotary_embedding", 64, 4, inputs=[(2, 5, 64), (2, 5)], dtype=("float", "long"),
              factory="helpers.course.cookbook.hf_rotary_embedding"),
        _case("hf_rotary_embedding", 96, 3, inputs=[(1, 7, 96), (1, 7)], dtype=("float", "long"),
              factory="helpers.course.cookbook.hf_rotary_embedding"),
    ), note="the rotation angles are fixed functions of the position (Su et al. 2021, arXiv:2104.09864). "
            "The course's `apply_rotary` computes cos/sin in forward (no buffer); Hugging Face keeps "
            "``inv_freq`` (d/2 values) as a non-persistent buffer, outside the state_dict.",
        shape_rule="cos, sin: (B, T, d) each from position_ids (B, T), d = D // h; applied to q (B, h, T, d) and "
                   "k (B, g, T, d), whose shapes do not change.",
        chapter=(_CH12, "3 · RoPE: positions without parameters")),
    Entry("GQA attention (LlamaAttention)", formulas.gqa_attention_params, formulas.gqa_attention_params, _same, (
        _case("LlamaAttention", inputs=[(2, 5, 64)], factory=_LLAMA + "LlamaAttention", config=_LLAMA_CONFIG,
              dim=64, n_heads=8, n_kv_heads=2,
              formula_kwargs=dict(hidden_size=64, num_attention_heads=8, num_key_value_heads=2)),
        _case("LlamaAttention", inputs=[(1, 3, 48)], factory=_LLAMA + "LlamaAttention", config=_LLAMA_CONFIG,
              dim=48, n_heads=4, n_kv_heads=1, head_dim=16,
              formula_kwargs=dict(hidden_size=48, num_attention_heads=4, num_key_value_heads=1, head_dim=16)),
        _case("LlamaAttention", inputs=[(1, 4, 32)], factory=_LLAMA + "LlamaAttention", config=_LLAMA_CONFIG,
              dim=32, n_heads=4, formula_kwargs=dict(hidden_size=32, num_attention_heads=4)),
    ), chapter=(_CH12, "1 · Grouped-query and multi-query attention")),
    Entry("SwiGLU MLP (LlamaMLP)", formulas.swiglu_params, formulas.swiglu_params, _same, (
        _case("LlamaMLP", inputs=[(2, 5, 64)], factory=_LLAMA + "LlamaMLP", config=_LLAMA_CONFIG,
              dim=64, intermediate_size=172, formula_kwargs=dict(hidden_size=64, intermediate_size=172)),
        _case("LlamaMLP", inputs=[(3, 128)], factory=_LLAMA + "LlamaMLP", config=_LLAMA_CONFIG,
              dim=128, intermediate_size=40, formula_kwargs=dict(hidden_size=128, intermediate_size=40)),
    ), chapter=(_CH12, "4 · SwiGLU: three matrices, and why Llama-3-8B has `intermediate_size` 14336")),
    Entry("MoE FFN (SparseMoE, total vs active)", formulas.moe_params, formulas.moe_params, _same, (
        _case("swiglu_moe", 64, 96, 4, 2, inputs=[(2, 5, 64)], factory="helpers.course.cookbook.swiglu_moe"),
        _case("swiglu_moe", 64, 96, 4, 2, inputs=[(2, 5, 64)], factory="helpers.course.cookbook.swiglu_moe",
              count="helpers.course.cookbook.routed_params", formula_kwargs=dict(active=True)),
        _case("swiglu_moe", 32, 48, 8, 1, inputs=[(1, 6, 32)], factory="helpers.course.cookbook.swiglu_moe",
              count="helpers.course.cookbook.routed_params", formula_kwargs=dict(active=True)),
    ), shape_rule_note="Active: `routed_params` runs the router on one token and counts the router plus the "
                       "experts it picked.",
        chapter=(_CH12, "8 · Mixture of experts: total vs active parameters")),
    Entry("LoRA-adapted nn.Linear (peft)", formulas.lora_params, None, _linear, (
        _case("lora_linear", 64, 32, inputs=[(2, 64)], factory="helpers.course.cookbook.lora_linear",
              count="helpers.course.cookbook.trainable_params", r=8),
        _case("lora_linear", 20, 50, inputs=[(3, 4, 20)], factory="helpers.course.cookbook.lora_linear",
              count="helpers.course.cookbook.trainable_params", r=2),
    ), note="Trainable only: the frozen W (out·in + out) still counts in the total.",
        shape_rule="input (*, in_features) → output (*, out_features), like the Linear it adapts.",
        chapter=("13_training_at_scale", "5. Fine-tuning: LoRA and QLoRA")),
    Entry("ViT patch embedding (nn.Conv2d, kernel = stride = patch)", formulas.conv_params,
          shapes.conv_output_size, _conv, (
              _case("Conv2d", 3, 768, 16, inputs=[(1, 3, 224, 224)], stride=16),
              _case("Conv2d", 3, 64, 8, inputs=[(2, 3, 32, 48)], stride=8),
          ), note="With kernel_size = stride = p: C·p²·D + D.",
        shape_rule_note="Then ``flatten(2).transpose(1, 2)``: (B, D, H/p, W/p) → (B, N, D), N = (H/p)·(W/p) "
                        "tokens (`VisionTransformer.patchify`; +1 [CLS] token).",
        chapter=(_CH14, "4 · ViT: an image as 197 tokens")),
    Entry("ResNet basic block", formulas.basic_block_params, formulas.basic_block_params, _block, (
        _case("BasicBlock", 64, 64, inputs=[(2, 64, 8, 8)], factory="helpers.models.resnet.BasicBlock"),
        _case("BasicBlock", 64, 128, 2, inputs=[(1, 64, 9, 9)], factory="helpers.models.resnet.BasicBlock"),
    ), chapter=(_CH14, "1 · Residual blocks")),
    Entry("ResNet bottleneck", formulas.bottleneck_params, formulas.bottleneck_params, _block, (
        _case("Bottleneck", 256, 64, inputs=[(1, 256, 8, 8)], factory="helpers.models.resnet.Bottleneck"),
        _case("Bottleneck", 64, 64, inputs=[(2, 64, 6, 6)], factory="helpers.models.resnet.Bottleneck"),
        _case("Bottleneck", 256, 128, 2, inputs=[(1, 256, 7, 7)], factory="helpers.models.resnet.Bottleneck"),
    ), chapter=(_CH14, "1 · Residual blocks")),
    Entry("MobileNetV2 inverted residual", formulas.inverted_residual_params, formulas.inverted_residual_params,
          _block, (
              _case("InvertedResidual", 24, 24, 1, 6, inputs=[(1, 24, 8, 8)],
                    factory="helpers.models.mobilenet.InvertedResidual"),
              _case("InvertedResidual", 32, 16, 1, 1, inputs=[(2, 32, 6, 6)],
                    factory="helpers.models.mobilenet.InvertedResidual"),
              _case("InvertedResidual", 16, 24, 2, 6, inputs=[(1, 16, 9, 9)],
                    factory="helpers.models.mobilenet.InvertedResidual"),
              _case("InvertedResidual", 8, 8, 1, 6, inputs=[(1, 8, 5, 5)], depthwise=False,
                    factory="helpers.models.mobilenet.InvertedResidual"),
          ), chapter=(_CH14, "3 · MobileNetV2: the inverted residual")),
)


# ------------------------------------------------------------------------------------ the table
class CookbookTable:
    """The table: one row per layer. HTML in Jupyter (`_repr_html_`), aligned text otherwise."""

    def __init__(self, entries: Sequence[Entry]) -> None:
        self.entries = list(entries)

    def rows(self) -> list[tuple[str, str, str, str, str, str]]:
        """(title, parameter formula, worked count, shape rule, helpers, chapter section) per layer."""
        return [(e.title, e.formula_text, e.worked, e.shape_text, e.sources, e.link[0] if e.link else "—")
                for e in self.entries]

    def __str__(self) -> str:
        blocks = []
        for title, formula, worked, shape, source, chapter in self.rows():
            blocks.append(f"{title}\n  parameters: {formula}\n  worked:     {worked}\n  shapes:     {shape}"
                          f"\n  from:       {source}\n  chapter:    {chapter}")
        return "\n\n".join(blocks)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        def code(text: str) -> str:  # ``x`` (reST literal) → <code>x</code>
            return re.sub(r"``(.+?)``", r"<code>\1</code>", html.escape(text))

        head = _header_html(("layer", "parameters", "torch call → count", "shapes", "helpers", "chapter"))
        body = ""
        for e, (title, formula, worked, shape, source, chapter) in zip(self.entries, self.rows()):
            link = _link_html(e.link)
            body += (f"<tr id='{re.sub(r'[^a-z0-9]+', '-', title.lower()).strip('-')}'>"
                     f"<td style='text-align:left'><b>{html.escape(title)}</b></td>"
                     f"<td style='text-align:left'>{code(formula)}</td>"
                     f"<td style='text-align:left'><code>{html.escape(worked)}</code></td>"
                     f"<td style='text-align:left'>{code(shape)}</td>"
                     f"<td style='text-align:left'><code>{html.escape(source)}</code></td>"
                     f"<td style='text-align:left'>{link}</td></tr>")
        return _wide_table(head, body)


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
                 ", ".join(map(str, p.inputs)), _shape_text(p.expected_shape), "✓" if p.ok else "✗ MISMATCH")
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
                e(_shape_text(p.expected_shape)) + ("" if p.expected_shape == p.torch_shape
                                                    else f" ≠ {e(_shape_text(p.torch_shape))}"),
                "✓" if p.ok else "<b style='color:#b00'>✗ mismatch</b>")) + "</tr>"
            for p in self)
        foot = f"<p>{sum(p.ok for p in self)}/{len(self)} configurations: {html.escape(_AGREE)}</p>"
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

    torch.manual_seed(seed)
    proofs = ProofTable()
    for entry in entries:
        for case in entry.cases:
            module = case.build().eval()
            f_args = case.args if case.formula_args is None else case.formula_args
            f_kwargs = case.kwargs if case.formula_kwargs is None else case.formula_kwargs
            if entry.formula is None:
                formula_value, formula_call = 0, "0"
            else:
                formula_value = entry.formula(*f_args, **f_kwargs)
                formula_call = call_text(entry.formula.__name__, f_args, f_kwargs)
            xs = [torch.randint(0, 8, s) if dtype == "long" else torch.randn(s)
                  for s, dtype in zip(case.inputs, case.dtypes())]
            with torch.no_grad(), warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*not supported with oneDNN")
                out = module(*xs)
            if isinstance(module, nn.MultiheadAttention):
                out = (out[0], out[1])
            proofs.append(Proof(entry.layer, case.module_text, formula_call, formula_value, case.counted(module, xs),
                                case.inputs, entry.expected(case, case.inputs), _shapes_of(out)))
    return proofs


# ------------------------------------------------------------------ how many parameters does X have?
@dataclass(frozen=True)
class Famous:
    """A famous model: how to build it (from ``helpers.models``, on the meta device), what the
    published figure says (with its source), and the chapter that counts it layer by layer."""

    name: str
    build: Callable[[], Any]
    published: str
    chapter: Optional[tuple[str, str]] = None
    count: Optional[Callable[[Any], int]] = None  # default: helpers.counting.count_params

    @property
    def link(self) -> Optional[tuple[str, str]]:
        return _section_link(self.chapter)


def _gpt2(n_layer: int, n_head: int, n_embd: int) -> Callable[[], Any]:
    def build() -> Any:
        from helpers.models import GPT, GPTConfig  # noqa: PLC0415
        return GPT(GPTConfig(n_layer=n_layer, n_head=n_head, n_embd=n_embd))
    return build


def _model(name: str, *args: Any, config: Optional[str] = None) -> Callable[[], Any]:
    def build() -> Any:
        import helpers.models as models  # noqa: PLC0415
        if config is not None:
            return getattr(models, name)(getattr(models, config)())
        return getattr(models, name)(*args)
    return build


def _llama(hf_config: Optional[dict[str, Any]] = None, planner: Optional[str] = None) -> Callable[[], Any]:
    """The course's Llama from a Hugging Face config dict (or a `PLANNER_MODELS` entry by name)."""
    def build() -> Any:
        from helpers.models import Llama, LlamaConfig  # noqa: PLC0415
        config = hf_config
        if planner is not None:
            from helpers.widgets.planner import PLANNER_MODELS  # noqa: PLC0415
            config = PLANNER_MODELS[planner]
        return Llama(LlamaConfig.from_hf(config))
    return build


def active_params(model: Any) -> int:
    """Parameters one token uses in a Mixtral-style `Llama`: everything minus, per MoE layer, the
    E − k experts it is not routed to (counted from the model's own expert tensors)."""
    from helpers.counting import count_params  # noqa: PLC0415

    unused = sum((m.num_experts - m.top_k) * count_params(m.experts[0]) for m in model.modules()
                 if hasattr(m, "experts") and hasattr(m, "top_k"))
    return count_params(model) - unused


def _sd15_unet() -> Any:
    from diffusers import UNet2DConditionModel  # noqa: PLC0415
    return UNet2DConditionModel(cross_attention_dim=768)  # SD 1.5: CLIP ViT-L/14 text tokens of width 768


#: Llama-3.2-1B's config.json (meta-llama/Llama-3.2-1B): head_dim 64 = 2048 / 32, tied embeddings
LLAMA_3_2_1B: dict[str, Any] = dict(vocab_size=128256, hidden_size=2048, intermediate_size=8192,
                                    num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8,
                                    head_dim=64, tie_word_embeddings=True)


def _transformer_base() -> Any:
    import torch.nn as nn  # noqa: PLC0415
    return nn.Transformer(batch_first=True)


_CH11_FAMOUS = ("11_capacity_and_cost", "6. Famous models, counted from code")
FAMOUS: tuple[Famous, ...] = (
    Famous("LeNet-5 (modern form)", _model("LeNet5"),
           "≈ 60,000 trainable (LeCun et al. 1998, §II.B; sparse C3, trainable pooling, fixed RBF output)",
           _CH11_FAMOUS),
    Famous("ResNet-18", _model("resnet18"), "11,689,512 (torchvision ResNet18_Weights.IMAGENET1K_V1)"),
    Famous("ResNet-50", _model("resnet50"), "25,557,032 (torchvision ResNet50_Weights.IMAGENET1K_V1)",
           ("11_capacity_and_cost", "2. FLOPs vs MACs")),
    Famous("U-Net (original, 2 classes)", _model("original_unet"),
           "architecture of Ronneberger et al. 2015, arXiv:1505.04597, Fig. 1",
           ("09_unet", "7 · How many parameters does the original U-Net have?")),
    Famous("nn.Transformer() (base, no embeddings)", _transformer_base,
           "65M with embeddings (Vaswani et al. 2017, arXiv:1706.03762, Table 3, base)",
           ("08_attention_transformers", "4. The feed-forward network and the transformer block")),
    Famous("BERT-base", _model("Bert", config="BertConfig"),
           "110M (Devlin et al. 2018, arXiv:1810.04805, §3)", _CH11_FAMOUS),
    Famous("GPT-2 small", _gpt2(12, 12, 768), "117M in Radford et al. 2019, Table 2; 124M on the Hugging Face hub",
           ("08_attention_transformers", "5. GPT-2 small from a config: 124,439,808 parameters")),
    Famous("GPT-2 medium", _gpt2(24, 16, 1024), "345M (Radford et al. 2019, Table 2)"),
    Famous("GPT-2 large", _gpt2(36, 20, 1280), "762M (Radford et al. 2019, Table 2)"),
    Famous("GPT-2 XL", _gpt2(48, 25, 1600), "1542M (Radford et al. 2019, Table 2)"),
    Famous("Llama-2-7B", _model("Llama", config="LlamaConfig"),
           "7B (Touvron et al. 2023, arXiv:2307.09288, Table 1)", _CH11_FAMOUS),
    Famous("Llama-3-8B", _llama(planner="Llama-3-8B"), "8B (Llama Team 2024, arXiv:2407.21783, Table 3)",
           (_CH12, "6 · Exact counts: closed form == Hugging Face == the course's Llama")),
    Famous("Llama-3.2-1B", _llama(LLAMA_3_2_1B), "1.23B (Meta's Llama 3.2 model card, meta-llama/Llama-3.2-1B)",
           (_CH12, "5 · Tied vs untied embeddings")),
    Famous("Mixtral-8x7B (total)", _llama(planner="Mixtral-8x7B"),
           "47B (Jiang et al. 2024, arXiv:2401.04088, abstract); 46.7B in Mistral AI's announcement",
           (_CH12, "8 · Mixture of experts: total vs active parameters")),
    Famous("Mixtral-8x7B (active per token)", _llama(planner="Mixtral-8x7B"),
           "13B (Jiang et al. 2024, arXiv:2401.04088, abstract); 12.9B in Mistral AI's announcement",
           (_CH12, "8 · Mixture of experts: total vs active parameters"), count=active_params),
    Famous("ViT-B/16", _model("vit_b_16"),
           "86,567,656 (torchvision ViT_B_16_Weights.IMAGENET1K_V1); 86M in Dosovitskiy et al. 2020, "
           "arXiv:2010.11929, Table 1", (_CH14, "4 · ViT: an image as 197 tokens")),
    Famous("MobileNetV2", _model("MobileNetV2"),
           "3,504,872 (torchvision MobileNet_V2_Weights.IMAGENET1K_V1); 3.4M in Sandler et al. 2018, "
           "arXiv:1801.04381, Table 4", (_CH14, "3 · MobileNetV2: the inverted residual")),
    Famous("Stable Diffusion 1.5 U-Net (diffusers)", _sd15_unet,
           "860M (CompVis/stable-diffusion README: \"a 860M UNet and 123M text encoder\"; the model of "
           "Rombach et al. 2022, arXiv:2112.10752)",
           ("09_unet", "8 · A modern U-Net: Stable Diffusion 1.5's denoiser")),
)


class FamousTable(list):
    """Rows (name, parameters, published figure, chapter link); text or HTML."""

    def __str__(self) -> str:
        width = max(len(r[0]) for r in self)
        lines = [f"{'model':{width}}  {'parameters':>15}  published"]
        lines += [f"{name:{width}}  {n:>15,}  {published}" for name, n, published, _ in self]
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        e = html.escape
        head = _header_html(("model", "parameters (count_params, built on meta)", "published", "chapter"))
        body = "".join(
            f"<tr><td style='text-align:left'><b>{e(name)}</b></td><td style='text-align:right'>{n:,}</td>"
            f"<td style='text-align:left'>{e(published)}</td><td style='text-align:left'>{_link_html(link)}</td></tr>"
            for name, n, published, link in self)
        return f"<table>{head}{body}</table>"


def famous_models(models: Sequence[Famous] = FAMOUS) -> FamousTable:
    """Build every model of `models` on the meta device (no memory, no weights) and count it with
    `helpers.counting.count_params` (tied tensors once)."""
    import torch  # noqa: PLC0415

    from helpers.counting import count_params  # noqa: PLC0415

    rows = FamousTable()
    for famous in models:
        with torch.device("meta"):
            model = famous.build()
        rows.append((famous.name, (famous.count or count_params)(model), famous.published, famous.link))
    return rows
