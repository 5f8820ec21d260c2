"""RNN unrolling explorer: sequence length, batch, sizes, layers, directions → the shapes of
``output`` and ``h_n``, the parameter count, the activations BPTT must keep, and a drawing
of the unrolled chain.

Three layers, so each can be used (and tested) alone:

* `explore_rnn(...)` — pure logic (no ipywidgets, no matplotlib): an `RNNExploration` with
  the shapes torch's ``nn.RNN`` returns, `formulas.rnn_params`, and the activation memory from
  `helpers.models.rnn.rnn_bptt_saved_numel` for full BPTT and for truncated BPTT over k steps.
  Invalid values give a friendly ``error`` sentence, never an exception.
* `draw_unrolled(exploration, ax=None)` — matplotlib only: one box per (layer, time step),
  arrows for the recurrence (both directions when bidirectional) and between layers.
* `rnn_explorer(**initial)` — the ipywidgets UI. The shapes line is an ``HTML`` widget with
  the CSS class ``dp-rnn-output`` (stable, for browser tests).

Example::

    >>> e = explore_rnn(seq_len=5, batch=2, input_size=3, hidden_size=4, num_layers=2,
    ...                 bidirectional=True, batch_first=True)
    >>> e.output_shape, e.h_n_shape
    ((2, 5, 8), (4, 2, 4))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from helpers import formulas, shapes
from helpers.widgets._recurrent import RecurrentInput, configuration, sequence_error
from helpers.widgets._ui import (STYLE, assemble, figure_pane, html_panes, int_slider,
                                 output_html, show_figure, values)

__all__ = ["RNNExploration", "explore_rnn", "draw_unrolled", "rnn_explorer"]

OUTPUT_CSS_CLASS = "dp-rnn-output"
_DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2, "float64": 8}


@dataclass(frozen=True, kw_only=True)
class RNNExploration(RecurrentInput):
    """What the explorer displays for one ``nn.RNN`` configuration and input.

    Attributes (besides the configuration and shapes of `RecurrentInput`):
        params: `formulas.rnn_params("RNN", …)` — independent of T and B.
        saved_numel: activations autograd keeps for full BPTT over T steps.
        tbptt_k: truncation window (None = full BPTT); tbptt_saved_numel: the same for k steps.
        dtype: element type used for the byte counts ("float32", "bfloat16", …).
        error: a friendly sentence if the configuration is invalid, else None.
    """

    params: Optional[int] = None
    saved_numel: Optional[int] = None
    tbptt_k: Optional[int] = None
    tbptt_saved_numel: Optional[int] = None
    dtype: str = "float32"
    error: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def saved_bytes(self) -> Optional[int]:
        return None if self.saved_numel is None else self.saved_numel * _DTYPE_BYTES[self.dtype]

    @property
    def tbptt_saved_bytes(self) -> Optional[int]:
        n = self.tbptt_saved_numel
        return None if n is None else n * _DTYPE_BYTES[self.dtype]

    @property
    def output_text(self) -> str:
        if not self.ok:
            return f"⚠ {self.error}"
        return (f"input {self.input_shape} → output {self.output_shape}, "
                f"h_n {self.h_n_shape}")

    @property
    def memory_text(self) -> str:
        if not self.ok:
            return ""
        text = (f"BPTT keeps {self.saved_numel:,} activation numbers "
                f"= {_human(self.saved_bytes)} at {self.dtype} (grows linearly with T)")
        if self.tbptt_k is not None:
            text += (f"; truncated to k={self.tbptt_k} steps: {self.tbptt_saved_numel:,} "
                     f"= {_human(self.tbptt_saved_bytes)}")
        return text

    @property
    def params_text(self) -> str:
        if not self.ok:
            return ""
        return (f"parameters: {self.params:,} (the same for every T and B: "
                f"one set of weights is reused at every step)")

    def __str__(self) -> str:
        return "\n".join(line for line in (self.output_text, self.params_text, self.memory_text) if line)


def _human(nbytes: Optional[int]) -> str:
    if nbytes is None:
        return "?"
    value = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def explore_rnn(seq_len: int = 6, batch: int = 2, input_size: int = 3, hidden_size: int = 4,
                num_layers: int = 1, bidirectional: bool = False, batch_first: bool = False,
                tbptt_k: Optional[int] = None, dtype: str = "float32") -> RNNExploration:
    """Compute what the explorer shows (never raises for bad sizes: see ``.error``).

    Args:
        seq_len, batch: T and B of the input.
        input_size, hidden_size, num_layers, bidirectional, batch_first: as ``nn.RNN`` takes them.
        tbptt_k: a truncation window for truncated BPTT (clipped to seq_len), or None.
        dtype: "float32", "bfloat16", "float16" or "float64" for the byte counts.
    """
    base = dict(configuration(seq_len, batch, input_size, hidden_size, num_layers, bidirectional, batch_first),
                dtype=dtype)
    if dtype not in _DTYPE_BYTES:
        return RNNExploration(**base, error=f"dtype must be one of {sorted(_DTYPE_BYTES)}, got {dtype!r}")
    error = sequence_error(seq_len, batch)
    if error:
        return RNNExploration(**base, error=error)
    if tbptt_k is not None and (not isinstance(tbptt_k, int) or tbptt_k < 1):
        return RNNExploration(**base, error=f"the truncation window k must be a positive integer, got {tbptt_k!r}")
    try:
        params = formulas.rnn_params("RNN", input_size, hidden_size, num_layers,
                                     bidirectional=bidirectional)
    except ValueError as exc:
        return RNNExploration(**base, error=str(exc))
    tensors = shapes.rnn_shapes("RNN", input_size, hidden_size, num_layers, seq_len=seq_len, batch=batch,
                                batch_first=batch_first, bidirectional=bidirectional)
    from helpers.models.rnn import rnn_bptt_saved_numel  # torch: only once a configuration is explored

    T, B, H, L = seq_len, batch, hidden_size, num_layers
    k = None if tbptt_k is None else min(tbptt_k, T)
    return RNNExploration(
        **base,
        input_shape=tensors["input"],
        output_shape=tensors["output"],
        h_n_shape=tensors["h_n"],
        params=params,
        saved_numel=rnn_bptt_saved_numel(T, B, input_size, H, L, bidirectional),
        tbptt_k=k,
        tbptt_saved_numel=None if k is None else rnn_bptt_saved_numel(k, B, input_size, H, L, bidirectional),
    )


def draw_unrolled(exploration: RNNExploration, ax: Any = None, max_steps: int = 8) -> Any:
    """Draw the unrolled RNN: a box h[l, t] per layer l and step t, x_t below, output above.

    Right arrows: the forward recurrence h_{t-1} → h_t; left arrows (bidirectional): the reverse
    direction. Up arrows: a layer's output is the next layer's input. Long sequences show the
    first and last steps with an ellipsis. Returns the matplotlib Figure.
    """
    import matplotlib.pyplot as plt  # noqa: PLC0415
    from matplotlib.patches import FancyBboxPatch  # noqa: PLC0415

    e = exploration
    if ax is None:
        fig, ax = plt.subplots(figsize=(8, 1.6 + 1.1 * (e.num_layers if e.ok else 1)))
    fig = ax.figure
    ax.set_axis_off()
    if not e.ok:
        ax.text(0.5, 0.5, e.output_text, ha="center", va="center", color="firebrick",
                fontsize=10, wrap=True, transform=ax.transAxes)
        return fig
    T, L, D = e.seq_len, e.num_layers, e.directions
    steps = list(range(T)) if T <= max_steps else list(range(max_steps // 2)) + [-1] + \
        list(range(T - max_steps // 2, T))
    arrow = dict(arrowstyle="->", color="0.35", lw=1)
    in_window = set(range(T - e.tbptt_k, T)) if e.tbptt_k is not None else set(range(T))
    for col, t in enumerate(steps):
        x = col * 1.6
        if t == -1:
            for l in range(L):
                ax.text(x + 0.5, l * 1.2 + 0.35, "…", ha="center", va="center", fontsize=14)
            continue
        ax.text(x + 0.5, -0.75, f"x[{t}]", ha="center", va="center", fontsize=8)
        ax.annotate("", (x + 0.5, -0.02), (x + 0.5, -0.55), arrowprops=arrow)
        for l in range(L):
            y = l * 1.2
            face = "#fde0c5" if t in in_window else "#eeeeee"
            ax.add_patch(FancyBboxPatch((x, y), 1.0, 0.7, boxstyle="round,pad=0.02",
                                        facecolor=face, edgecolor="0.3"))
            ax.text(x + 0.5, y + 0.35, f"h{l},{t}" + ("⇄" if D == 2 else ""), ha="center",
                    va="center", fontsize=8)
            if l + 1 < L:
                ax.annotate("", (x + 0.5, y + 1.2), (x + 0.5, y + 0.72), arrowprops=arrow)
            if col + 1 < len(steps) and steps[col + 1] != -1:
                ax.annotate("", (x + 1.6, y + 0.45), (x + 1.0, y + 0.45), arrowprops=arrow)
                if D == 2:
                    ax.annotate("", (x + 1.0, y + 0.22), (x + 1.6, y + 0.22),
                                arrowprops=dict(arrow, color="tab:blue"))
        top = (L - 1) * 1.2 + 0.72
        ax.annotate("", (x + 0.5, top + 0.45), (x + 0.5, top), arrowprops=arrow)
        ax.text(x + 0.5, top + 0.6, f"out[{t}]", ha="center", va="center", fontsize=8)
    last_x = (len(steps) - 1) * 1.6 + 1.0
    ax.text(last_x + 0.25, (L - 1) * 0.6 + 0.35, f"h_n\n{e.h_n_shape}", ha="left", va="center",
            fontsize=8, color="tab:red")
    ax.set_xlim(-0.3, last_x + 1.8)
    ax.set_ylim(-1.0, (L - 1) * 1.2 + 1.6)
    title = f"nn.RNN unrolled over T={T}: {e.output_text}"
    if e.tbptt_k is not None:
        title += f"\norange: the last k={e.tbptt_k} steps, the window truncated BPTT backpropagates through"
    ax.set_title(title, fontsize=9)
    return fig


def rnn_explorer(**initial: Any) -> Any:
    """An ipywidgets explorer of ``nn.RNN`` shapes, parameters and BPTT memory.

    Keyword arguments set the initial values: seq_len, batch, input_size, hidden_size,
    num_layers, bidirectional, batch_first, tbptt_k (0 = full BPTT), dtype.
    Returns the widget (a VBox); ``box.explore()`` gives the current `RNNExploration`.
    """
    import ipywidgets as w  # noqa: PLC0415

    controls: dict[str, Any] = {
        "seq_len": int_slider("seq_len T", int(initial.get("seq_len", 6)), 1, 512),
        "batch": int_slider("batch B", int(initial.get("batch", 2)), 1, 256),
        "input_size": int_slider("input_size I", int(initial.get("input_size", 3)), 1, 512),
        "hidden_size": int_slider("hidden_size H", int(initial.get("hidden_size", 4)), 1, 1024),
        "num_layers": int_slider("num_layers L", int(initial.get("num_layers", 1)), 1, 4),
        "tbptt_k": int_slider("TBPTT k (0=full)", int(initial.get("tbptt_k") or 0), 0, 512),
        "bidirectional": w.Checkbox(value=bool(initial.get("bidirectional", False)), description="bidirectional"),
        "batch_first": w.Checkbox(value=bool(initial.get("batch_first", False)), description="batch_first"),
        "dtype": w.ToggleButtons(options=["float32", "bfloat16"], value=initial.get("dtype", "float32"),
                                 description="dtype", style=STYLE),
    }
    output_line = output_html(OUTPUT_CSS_CLASS)
    params, memory = html_panes(2)
    plot = figure_pane()

    def state() -> RNNExploration:
        v = values(controls)
        v["tbptt_k"] = v["tbptt_k"] or None
        return explore_rnn(**v)

    def refresh(*_: Any) -> None:
        e = state()
        output_line.value = f"<b>{e.output_text}</b>"
        params.value = e.params_text
        memory.value = e.memory_text
        show_figure(plot, draw_unrolled(e))

    return assemble("RNN unrolling explorer", controls, [output_line, params, memory, plot], refresh, state)
