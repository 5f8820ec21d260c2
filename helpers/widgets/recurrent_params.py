"""Gated-RNN explorer (chapter 06): mode (RNN / GRU / LSTM), sizes, layers, directions and
``proj_size`` → every parameter tensor with its shape and count, the totals of the three modes
side by side, and the shapes of ``output``, ``h_n`` and ``c_n``.

Two layers, so each can be used (and tested) alone:

* `explore_recurrent(...)` — pure logic (no ipywidgets): a `RecurrentExploration` whose numbers
  come from `helpers.formulas.rnn_params_breakdown` and the shape rules of the torch docs.
  Invalid settings (``proj_size >= hidden_size``, ``proj_size`` on a GRU, …) give a friendly
  ``error`` sentence, never an exception.
* `recurrent_explorer(**initial)` — the ipywidgets UI. The shapes line is an ``HTML`` widget with
  the CSS class ``dp-recurrent-output`` (stable, for browser tests).

Example::

    >>> e = explore_recurrent("LSTM", seq_len=5, batch=2, input_size=3, hidden_size=4,
    ...                       num_layers=2, bidirectional=True, proj_size=2)
    >>> e.output_shape, e.h_n_shape, e.c_n_shape, e.params
    ((5, 2, 4), (4, 2, 2), (4, 2, 4), 512)
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any, Optional

from helpers import formulas, shapes
from helpers.widgets._recurrent import RecurrentInput, configuration, sequence_error
from helpers.widgets._ui import STYLE, assemble, int_slider, output_html, values

__all__ = ["RecurrentExploration", "TensorRow", "explore_recurrent", "recurrent_explorer"]

OUTPUT_CSS_CLASS = "dp-recurrent-output"
_MODES = ("RNN", "GRU", "LSTM")


@dataclass(frozen=True)
class TensorRow:
    """One parameter tensor: torch's name, its shape and its number of elements."""

    name: str
    shape: tuple[int, ...]
    numel: int


@dataclass(frozen=True, kw_only=True)
class RecurrentExploration(RecurrentInput):
    """What the explorer displays for one ``nn.RNN`` / ``nn.GRU`` / ``nn.LSTM`` configuration.

    Attributes (besides the configuration and shapes of `RecurrentInput`, with H_r = P or H):
        mode, proj_size: "RNN", "GRU" or "LSTM", and P (0 = no projection).
        c_n_shape: (D·L, B, H) for LSTM, else None.
        rows: every parameter tensor in ``named_parameters()`` order, with shape and numel.
        params: the total (= sum of rows = `formulas.rnn_params`).
        params_by_mode: {"RNN": …, "GRU": …, "LSTM": …} for the same sizes (without proj_size).
        error: a sentence explaining why the configuration is invalid ("" if valid).
    """

    mode: str
    proj_size: int
    c_n_shape: Optional[tuple[int, ...]] = None
    rows: tuple[TensorRow, ...] = field(default_factory=tuple)
    params: Optional[int] = None
    params_by_mode: dict[str, int] = field(default_factory=dict)
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error

    @property
    def output_text(self) -> str:
        """One line: the call and the shapes it returns (or the error)."""
        if self.error:
            return f"⚠ {self.error}"
        state = f"(h_n {self.h_n_shape}, c_n {self.c_n_shape})" if self.c_n_shape else f"h_n {self.h_n_shape}"
        return f"input {self.input_shape} → output {self.output_shape}, {state}"

    def table_text(self) -> str:
        """Plain-text table of the tensors (name, shape, numel) with the total."""
        if self.error:
            return self.output_text
        width = max(len(r.name) for r in self.rows)
        lines = [f"{r.name:<{width}}  {str(r.shape):>12}  {r.numel:>12,}" for r in self.rows]
        return "\n".join(lines + [f"{'total':<{width}}  {'':>12}  {self.params:>12,}"])


def _shape_rows(mode: str, input_size: int, hidden_size: int, num_layers: int, bias: bool,
                bidirectional: bool, proj_size: int) -> list[TensorRow]:
    G, H, D, P = formulas.RNN_GATES[mode], hidden_size, 2 if bidirectional else 1, proj_size
    h_r = P or H
    rows = []
    for layer in range(num_layers):
        layer_in = input_size if layer == 0 else D * h_r
        for sfx in ("", "_reverse")[:D]:
            shapes = [(f"weight_ih_l{layer}{sfx}", (G * H, layer_in)), (f"weight_hh_l{layer}{sfx}", (G * H, h_r))]
            if bias:
                shapes += [(f"bias_ih_l{layer}{sfx}", (G * H,)), (f"bias_hh_l{layer}{sfx}", (G * H,))]
            if P:
                shapes.append((f"weight_hr_l{layer}{sfx}", (P, H)))
            for name, shape in shapes:
                numel = 1
                for s in shape:
                    numel *= s
                rows.append(TensorRow(name, shape, numel))
    return rows


def explore_recurrent(mode: str = "LSTM", seq_len: int = 6, batch: int = 2, input_size: int = 10,
                      hidden_size: int = 16, num_layers: int = 1, bidirectional: bool = False,
                      batch_first: bool = False, proj_size: int = 0, bias: bool = True) -> RecurrentExploration:
    """Compute what the explorer shows (never raises for bad settings: see ``.error``)."""
    mode = str(mode).upper()
    base = dict(configuration(seq_len, batch, input_size, hidden_size, num_layers, bidirectional, batch_first),
                mode=mode, proj_size=proj_size)
    if mode not in _MODES:
        return RecurrentExploration(**base, error=f"mode must be one of {', '.join(_MODES)}, got {mode!r}")
    error = sequence_error(seq_len, batch)
    if error:
        return RecurrentExploration(**base, error=error)
    if proj_size and mode != "LSTM":
        return RecurrentExploration(**base, error=f"proj_size exists only for nn.LSTM; nn.{mode} has no projection "
                                                  f"(set proj_size to 0)")
    try:
        breakdown = formulas.rnn_params_breakdown(mode, input_size, hidden_size, num_layers, bias,
                                                  bidirectional=bidirectional, proj_size=proj_size)
    except ValueError as exc:
        return RecurrentExploration(**base, error=str(exc))
    rows = _shape_rows(mode, input_size, hidden_size, num_layers, bias, bidirectional, proj_size)
    assert {r.name: r.numel for r in rows} == breakdown  # shapes and the core formula agree
    H, L = hidden_size, num_layers
    tensors = shapes.rnn_shapes(mode, input_size, H, L, seq_len=seq_len, batch=batch, batch_first=batch_first,
                                bidirectional=bidirectional, proj_size=proj_size)
    return RecurrentExploration(
        **base,
        input_shape=tensors["input"],
        output_shape=tensors["output"],
        h_n_shape=tensors["h_n"],
        c_n_shape=tensors.get("c_n"),
        rows=tuple(rows),
        params=sum(breakdown.values()),
        params_by_mode={m: formulas.rnn_params(m, input_size, H, L, bias, bidirectional=bidirectional)
                        for m in _MODES},
    )


def _table_html(e: RecurrentExploration) -> str:
    if e.error:
        return ""
    body = "".join(f"<tr><td><code>{html.escape(r.name)}</code></td><td>{r.shape}</td>"
                   f"<td style='text-align:right'>{r.numel:,}</td></tr>" for r in e.rows)
    foot = f"<tr><th>total</th><td></td><th style='text-align:right'>{e.params:,}</th></tr>"
    modes = " · ".join(f"nn.{m}: {n:,}" for m, n in e.params_by_mode.items())
    return (f"<table><thead><tr><th>parameter</th><th>shape</th><th>numel</th></tr></thead>"
            f"<tbody>{body}{foot}</tbody></table><p>Same sizes, no projection — {modes}</p>")


def recurrent_explorer(**initial: Any) -> Any:
    """An ipywidgets explorer of ``nn.RNN`` / ``nn.GRU`` / ``nn.LSTM`` parameters and shapes.

    Keyword arguments set the initial values (see `explore_recurrent`). Returns the widget (a
    VBox); ``box.explore()`` gives the current `RecurrentExploration`.
    """
    import ipywidgets as w  # noqa: PLC0415

    controls: dict[str, Any] = {
        "mode": w.ToggleButtons(options=list(_MODES), value=str(initial.get("mode", "LSTM")).upper(),
                                description="mode", style=STYLE),
        "seq_len": int_slider("seq_len T", int(initial.get("seq_len", 6)), 1, 512),
        "batch": int_slider("batch B", int(initial.get("batch", 2)), 1, 256),
        "input_size": int_slider("input_size I", int(initial.get("input_size", 10)), 1, 1024),
        "hidden_size": int_slider("hidden_size H", int(initial.get("hidden_size", 16)), 1, 1024),
        "num_layers": int_slider("num_layers L", int(initial.get("num_layers", 1)), 1, 6),
        "proj_size": int_slider("proj_size P", int(initial.get("proj_size", 0)), 0, 1023),
        "bidirectional": w.Checkbox(value=bool(initial.get("bidirectional", False)), description="bidirectional"),
        "batch_first": w.Checkbox(value=bool(initial.get("batch_first", False)), description="batch_first"),
        "bias": w.Checkbox(value=bool(initial.get("bias", True)), description="bias"),
    }
    output_line = output_html(OUTPUT_CSS_CLASS)
    table = w.HTML()

    def state() -> RecurrentExploration:
        return explore_recurrent(**values(controls))

    def refresh(*_: Any) -> None:
        e = state()
        output_line.value = f"<b>{html.escape(e.output_text)}</b>"
        table.value = _table_html(e)

    return assemble("RNN / GRU / LSTM explorer", controls, [output_line, table], refresh, state)
