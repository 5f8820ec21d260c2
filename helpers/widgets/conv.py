"""Conv / pool output-size explorer: sliders → output size, the formula with numbers, the
parameter count, and a drawing of where the sliding window lands.

Three layers, so each can be used (and tested) alone:

* `explore_conv(...)` — pure logic, no ipywidgets, no matplotlib: returns a `ConvExploration` with the
  output size, the formula text with the numbers plugged in, the parameter count (conv), the
  window positions per dimension, and any error as a friendly sentence (never an exception).
  Sizes come from `helpers.shapes`, counts from `helpers.formulas`.
* `draw_conv(exploration, ax=None)` — matplotlib only: the (padded) input with the windows drawn
  (1-D: one bar per output position; 2-D: how many windows read each cell, first/last outlined).
* `conv_explorer(kind="conv"|"pool", **initial)` — the ipywidgets UI around the two. The output
  size line is an ``HTML`` widget with the CSS class ``dp-conv-output`` (stable, for browser tests).

Example::

    >>> explore_conv("conv", input_size=28, kernel_size=3, padding=1).output_size
    (28,)
    >>> explore_conv("pool", input_size=5, kernel_size=2, ceil_mode=True).output_text
    'output size: 3'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Union

from helpers import formulas, shapes
from helpers._args import as_tuple, is_int
from helpers.widgets._ui import (STYLE, assemble, figure_pane, html_panes, int_slider,
                                 output_html, show_figure, values)

__all__ = ["ConvExploration", "explore_conv", "window_starts", "coverage", "draw_conv", "conv_explorer",
           "CONV_OUTPUT_CSS_CLASS"]

CONV_OUTPUT_CSS_CLASS = OUTPUT_CSS_CLASS = "dp-conv-output"
IntOrTuple = Union[int, tuple[int, ...]]


@dataclass(frozen=True)
class ConvExploration:
    """Everything the explorer displays for one configuration.

    Attributes:
        kind: "conv" or "pool".
        input_size: spatial input size, one entry per dimension (1 or 2 entries).
        kernel_size, stride, dilation: per dimension (stride already defaulted for pooling).
        padding_left, padding_right: zeros added before/after the input, per dimension
            (they differ only for conv padding='same' with an even effective kernel).
        output_size: spatial output size per dimension, or None if the configuration is invalid.
        output_text: one line, e.g. "output size: 14 × 14", or "⚠ …" explaining the error.
        formula: the formula with the numbers plugged in, one line per distinct dimension.
        params: learnable parameters (conv: `formulas.conv_params`; pool: 0); None if invalid.
        params_text: a sentence about the count.
        windows: per dimension, the start index of every window, in input coordinates
            (negative = inside the left padding). Window i reads start + j·dilation, j < kernel.
        error: the friendly error text, or None.
    """

    kind: str
    input_size: tuple[int, ...]
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    padding_left: tuple[int, ...]
    padding_right: tuple[int, ...]
    output_size: Optional[tuple[int, ...]]
    output_text: str
    formula: str
    params: Optional[int]
    params_text: str
    windows: tuple[tuple[int, ...], ...] = field(default=())
    error: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def __str__(self) -> str:
        return "\n".join([self.output_text, self.formula, self.params_text])


def window_starts(output_size: int, stride: int, padding_left: int) -> tuple[int, ...]:
    """Start index (input coordinates) of each of the `output_size` windows: ``i·s − p``."""
    return tuple(i * stride - padding_left for i in range(output_size))


def _fmt_size(size: tuple[int, ...]) -> str:
    return " × ".join(map(str, size))


def _formula_line(kind: str, L: int, k: int, s: int, pl: int, pr: int, d: int, ceil_mode: bool,
                  out: int) -> str:
    """'⌊(L + p_l + p_r − d·(k−1) − 1) / s⌋ + 1 = out' with the numbers of one dimension."""
    pad = f"2·{pl}" if pl == pr else f"{pl} + {pr}"
    numerator = L + pl + pr - d * (k - 1) - 1
    left, right = ("⌈", "⌉") if ceil_mode else ("⌊", "⌋")
    text = (f"{left}({L} + {pad} − {d}·({k}−1) − 1) / {s}{right} + 1 = "
            f"{left}{numerator}/{s}{right} + 1")
    raw = (-(-numerator // s) if ceil_mode else numerator // s) + 1
    if ceil_mode and raw != out:
        text += (f" = {raw}, but the last window would start at {(raw - 1) * s - pl} "
                 f"(inside the right padding), so torch drops it: {out}")
    else:
        text += f" = {out}"
    return text


def explore_conv(kind: str = "conv", input_size: IntOrTuple = 28, kernel_size: IntOrTuple = 3,
            stride: Optional[IntOrTuple] = None, padding: Union[IntOrTuple, str] = 0,
            dilation: IntOrTuple = 1, *, ceil_mode: bool = False, pool: str = "max",
            in_channels: int = 1, out_channels: int = 1, groups: int = 1,
            bias: bool = True) -> ConvExploration:
    """Compute what the explorer shows for one configuration (never raises for bad values).

    Args:
        kind: "conv" (nn.ConvNd) or "pool" (nn.MaxPoolNd / nn.AvgPoolNd, see `pool`).
        input_size: L, or (H, W); the number of entries sets 1-D or 2-D.
        kernel_size, stride, padding, dilation: as torch's constructors take them. stride=None
            means 1 for conv and kernel_size for pool (torch's defaults). padding may be
            'same' or 'valid' for conv.
        ceil_mode, pool: pooling only ("max" or "avg").
        in_channels, out_channels, groups, bias: conv only; they set the parameter count.
    """
    if kind not in ("conv", "pool"):
        raise ValueError(f"kind must be 'conv' or 'pool', got {kind!r}")
    n = 1 if is_int(input_size) else len(tuple(input_size))  # type: ignore[arg-type]
    sizes = (int(input_size),) if is_int(input_size) else tuple(int(v) for v in input_size)  # type: ignore[union-attr,arg-type]
    ks = as_tuple(kernel_size, n, "kernel_size")
    st = as_tuple(stride if stride is not None else (1 if kind == "conv" else kernel_size), n, "stride")
    dl = as_tuple(dilation, n, "dilation")
    spatial = sizes if n > 1 else sizes[0]
    if isinstance(padding, str) and kind == "conv":
        if padding == "same":
            total = tuple(d * (k - 1) for k, d in zip(ks, dl))
            pl = tuple(t // 2 for t in total)
            pr = tuple(t - t // 2 for t in total)
        else:
            pl = pr = (0,) * n
    elif isinstance(padding, str):
        pl = pr = (0,) * n  # pooling has no string padding; shapes raises below
    else:
        pl = pr = as_tuple(padding, n, "padding")
    common: dict[str, Any] = dict(kind=kind, input_size=sizes, kernel_size=ks, stride=st,
                                  dilation=dl, padding_left=pl, padding_right=pr)
    try:
        if kind == "conv":
            out = shapes.conv_output_size(spatial, ks if n > 1 else ks[0], st if n > 1 else st[0],
                                          padding if isinstance(padding, str) else (pl if n > 1 else pl[0]),
                                          dl if n > 1 else dl[0])
            params = formulas.conv_params(in_channels, out_channels, ks, groups=groups, bias=bias,
                                          dim=n, padding=padding if isinstance(padding, str) else 0,
                                          stride=st)
        else:
            if isinstance(padding, str):
                raise ValueError(f"pooling takes a number for padding, not {padding!r}")
            out = shapes.pool_output_size(spatial, ks if n > 1 else ks[0], st if n > 1 else st[0],
                                          pl if n > 1 else pl[0], dl if n > 1 else dl[0],
                                          ceil_mode, kind=pool)
            params = 0
    except ValueError as exc:
        msg = f"⚠ {exc}"
        return ConvExploration(**common, output_size=None, output_text=msg, formula="", params=None,
                           params_text="", windows=(), error=str(exc))
    out_t = (out,) if is_int(out) else tuple(out)  # type: ignore[arg-type]
    lines = []
    seen = set()
    for L, k, s, a, b, d, o in zip(sizes, ks, st, pl, pr, dl, out_t):
        line = _formula_line(kind, L, k, s, a, b, d, ceil_mode and kind == "pool", o)
        if line not in seen:
            seen.add(line)
            lines.append(line)
    if kind == "conv":
        k_text = "·".join(map(str, ks))
        params_text = (f"parameters: {out_channels}·({in_channels}/{groups})·{k_text}"
                       + (f" + {out_channels}" if bias else "") + f" = {params:,} "
                       f"(stride, padding, dilation and the input size never change it)")
    else:
        params_text = f"parameters: 0 ({pool} pooling has nothing to learn)"
    windows = tuple(window_starts(o, s, a) for o, s, a in zip(out_t, st, pl))
    return ConvExploration(**common, output_size=out_t, output_text=f"output size: {_fmt_size(out_t)}",
                       formula="\n".join(lines), params=params, params_text=params_text,
                       windows=windows, error=None)


def coverage(exploration: ConvExploration) -> list[list[int]]:
    """How many windows read each cell of the padded input, as rows × columns (padding
    included; a 1-D exploration is one row). Cells a strided or floored window never reads are 0."""
    e = exploration

    def taps(axis: int) -> tuple[int, list[list[int]]]:
        size = e.input_size[axis] + e.padding_left[axis] + e.padding_right[axis]
        return size, [[start + j * e.dilation[axis] + e.padding_left[axis]
                       for j in range(e.kernel_size[axis])] for start in e.windows[axis]]

    width, col_taps = taps(-1)
    height, row_taps = taps(0) if len(e.input_size) == 2 else (1, [[0]])
    grid = [[0] * width for _ in range(height)]
    for rows in row_taps:
        for cols in col_taps:
            for r in rows:
                for c in cols:
                    if 0 <= r < height and 0 <= c < width:
                        grid[r][c] += 1
    return grid


def draw_conv(exploration: ConvExploration, ax: Any = None) -> Any:
    """Draw the padded input and the windows; returns the matplotlib Figure.

    1-D: the input cells (padding hatched) and one bar per window showing the cells it reads.
    2-D: each padded-input cell coloured by how many windows read it, the first window outlined
    in red and the last in blue. An invalid configuration draws its error message.
    """
    import matplotlib.pyplot as plt  # noqa: PLC0415
    from matplotlib.patches import Rectangle  # noqa: PLC0415

    e = exploration
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 3.2 if len(e.input_size) == 1 else 4.5))
    fig = ax.figure
    ax.set_axis_off()
    if not e.ok:
        ax.text(0.5, 0.5, "\n".join(_wrap(e.output_text, 70)), ha="center", va="center",
                fontsize=11, color="firebrick", transform=ax.transAxes)
        return fig
    if len(e.input_size) == 1:
        _draw_1d(e, ax, Rectangle)
    else:
        _draw_2d(e, ax, Rectangle)
    return fig


def _wrap(text: str, width: int) -> list[str]:
    words, lines, line = text.split(), [], ""
    for w in words:
        if len(line) + len(w) + 1 > width:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    return lines + [line]


def _draw_1d(e: ConvExploration, ax: Any, Rectangle: Any) -> None:
    L, pl, pr = e.input_size[0], e.padding_left[0], e.padding_right[0]
    k, d = e.kernel_size[0], e.dilation[0]
    starts = e.windows[0]
    shown = starts if len(starts) <= 12 else starts[:6] + starts[-6:]
    for x in range(-pl, L + pr):
        pad = x < 0 or x >= L
        ax.add_patch(Rectangle((x, 0), 1, 1, facecolor="0.92" if pad else "white", edgecolor="0.4",
                               hatch="//" if pad else None))
        if not pad and L <= 40:
            ax.text(x + 0.5, 0.5, str(x), ha="center", va="center", fontsize=7)
    for row, start in enumerate(shown, start=1):
        y = -row * 0.8
        taps = [start + j * d for j in range(k)]
        ax.plot([taps[0] + 0.5, taps[-1] + 0.5], [y + 0.3, y + 0.3], color="0.7", lw=1)
        for t in taps:
            ax.add_patch(Rectangle((t + 0.1, y), 0.8, 0.6, facecolor="tab:orange", alpha=0.8))
        i = starts.index(start)
        ax.text(-pl - 0.6, y + 0.3, f"out[{i}]", ha="right", va="center", fontsize=7)
    if len(shown) < len(starts):
        ax.text(-pl - 0.6, -6.5 * 0.8, "⋮", ha="right", va="center")
    ax.set_xlim(-pl - 4, L + pr + 1 + max(0, max(shown, default=0) + (k - 1) * d - (L + pr) + 1))
    ax.set_ylim(-(len(shown) + 1) * 0.8, 1.6)
    ax.set_title(f"{e.kind}: input {L} (padding hatched) → output {e.output_size[0]}; "
                 f"orange = cells each output reads", fontsize=9)


def coverage_vmax(grid: list[list[int]]) -> float:
    """Top of the colour scale for a coverage grid: 1.5 × the largest count (at least 1.5).

    Scaling to the largest count itself paints a uniform coverage (stride = kernel: every cell read
    once) in the darkest colour, one solid square; with the headroom the counts stay mid-tones and
    cells read by no window (0, white) remain visible next to them."""
    return 1.5 * max(1, max(map(max, grid)))


def cell_label_fontsize(cell_points: float, max_digits: int) -> float | None:
    """Font size for the count printed in each cell, or None when cells are too small to read one.

    `cell_points` is a cell's side in typographic points (1/72 inch); a digit is about 0.6 em wide,
    so the label needs ``0.6·fontsize·max_digits`` plus a margin; below 5 pt it is unreadable."""
    size = min(7.0, 0.8 * cell_points / (0.6 * max_digits + 0.4))
    return size if size >= 5.0 else None


def _cell_points(ax: Any, rows: int, cols: int) -> float:
    """Side of one grid cell in points, as drawn (imshow keeps cells square)."""
    bbox = ax.get_window_extent().transformed(ax.figure.dpi_scale_trans.inverted())   # inches
    return 72 * min(bbox.width / cols, bbox.height / rows)


def _draw_2d(e: ConvExploration, ax: Any, Rectangle: Any) -> None:
    grid = coverage(e)
    H, W = len(grid), len(grid[0])
    vmax = coverage_vmax(grid)
    ax.imshow(grid, cmap="Oranges", vmin=0, vmax=vmax)
    pt, pl = e.padding_left[0], e.padding_left[1]
    fontsize = cell_label_fontsize(_cell_points(ax, H, W), len(str(max(map(max, grid)))))
    for r in range(H):
        for c in range(W):
            pad = not (pt <= r < pt + e.input_size[0] and pl <= c < pl + e.input_size[1])
            if pad:
                ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, hatch="//",
                                       edgecolor="0.6", lw=0))
            if fontsize is not None:
                ax.text(c, r, str(grid[r][c]), ha="center", va="center", fontsize=fontsize,
                        color="white" if grid[r][c] > vmax / 2 else "0.2")
    for (wi, color) in ((0, "red"), (-1, "blue")):
        r0 = e.windows[0][wi] + pt
        c0 = e.windows[1][wi] + pl
        span_r = (e.kernel_size[0] - 1) * e.dilation[0] + 1
        span_c = (e.kernel_size[1] - 1) * e.dilation[1] + 1
        ax.add_patch(Rectangle((c0 - 0.5, r0 - 0.5), span_c, span_r, fill=False, edgecolor=color, lw=2))
    ax.add_patch(Rectangle((pl - 0.5, pt - 0.5), e.input_size[1], e.input_size[0], fill=False,
                           edgecolor="black", lw=1.2))
    ax.set_title(f"{e.kind}: input {_fmt_size(e.input_size)} → output {_fmt_size(e.output_size or ())}"
                 f"\nnumber = windows reading that cell (hatched: padding; red: first window, "
                 f"blue: last)", fontsize=9)


def conv_explorer(kind: str = "conv", **initial: Any) -> Any:
    """An ipywidgets explorer of conv (kind="conv") or pooling (kind="pool") output sizes.

    Keyword arguments set the initial slider values: input_size, kernel_size, stride, padding
    (conv: also "same"/"valid"), dilation, dims (1 or 2), and for conv in_channels,
    out_channels, groups, bias; for pool ceil_mode and pool ("max"/"avg").
    Returns the widget (a VBox); display it or leave it as a cell's last expression.
    """
    import ipywidgets as w  # noqa: PLC0415

    if kind not in ("conv", "pool"):
        raise ValueError(f"kind must be 'conv' or 'pool', got {kind!r}")

    def slider(name: str, value: int, lo: int, hi: int) -> Any:
        return int_slider(name, value, lo, hi, width="360px")

    pad0 = initial.get("padding", 0)
    stride0 = initial.get("stride", 1 if kind == "conv" else initial.get("kernel_size", 2))
    controls: dict[str, Any] = {
        "dims": w.ToggleButtons(options=[("1-D", 1), ("2-D", 2)], value=int(initial.get("dims", 2)),
                                description="input", style=STYLE),
        "input_size": slider("input size", int(initial.get("input_size", 8)), 1, 64),
        "kernel_size": slider("kernel_size", int(initial.get("kernel_size", 3 if kind == "conv" else 2)), 1, 11),
        "stride": slider("stride", int(stride0), 1, 8),
        "padding": slider("padding", pad0 if isinstance(pad0, int) else 0, 0, 8),
        "dilation": slider("dilation", int(initial.get("dilation", 1)), 1, 6),
    }
    if kind == "conv":
        controls["padding_mode"] = w.ToggleButtons(
            options=["number", "same", "valid"], description="padding as",
            value=pad0 if isinstance(pad0, str) else "number", style=STYLE)
        controls["in_channels"] = slider("in_channels", int(initial.get("in_channels", 3)), 1, 64)
        controls["out_channels"] = slider("out_channels", int(initial.get("out_channels", 16)), 1, 128)
        controls["groups"] = slider("groups", int(initial.get("groups", 1)), 1, 64)
        controls["bias"] = w.Checkbox(value=bool(initial.get("bias", True)), description="bias")
    else:
        controls["pool"] = w.ToggleButtons(options=["max", "avg"], value=initial.get("pool", "max"),
                                           description="pool", style=STYLE)
        controls["ceil_mode"] = w.Checkbox(value=bool(initial.get("ceil_mode", False)),
                                           description="ceil_mode")
    output_line = output_html(OUTPUT_CSS_CLASS)
    formula, params = html_panes(2)
    plot = figure_pane()

    def state() -> ConvExploration:
        v = values(controls)
        n = v.pop("dims")
        size = v.pop("input_size")
        kwargs: dict[str, Any] = dict(input_size=size if n == 1 else (size, size),
                                      kernel_size=v.pop("kernel_size"), stride=v.pop("stride"),
                                      dilation=v.pop("dilation"))
        pad = v.pop("padding")
        if kind == "conv":
            mode = v.pop("padding_mode")
            kwargs["padding"] = pad if mode == "number" else mode
            kwargs.update(v)
        else:
            kwargs["padding"] = pad
            kwargs["ceil_mode"] = v.pop("ceil_mode")
            kwargs["pool"] = v.pop("pool")
            if kwargs["pool"] == "avg":  # AvgPool has no dilation argument
                kwargs["dilation"] = 1
        return explore_conv(kind, **kwargs)

    def refresh(*_: Any) -> None:
        e = state()
        if kind == "pool":
            controls["dilation"].disabled = controls["pool"].value == "avg"
        if kind == "conv":
            controls["padding"].disabled = controls["padding_mode"].value != "number"
        output_line.value = f"<b>{e.output_text}</b>"
        formula.value = "<br>".join(f"<code>{line}</code>" for line in e.formula.splitlines())
        params.value = e.params_text
        show_figure(plot, draw_conv(e))

    title = "Conv output-size explorer" if kind == "conv" else "Pooling output-size explorer"
    return assemble(title, controls, [output_line, formula, params, plot], refresh, state)


# short aliases inside this module: helpers.widgets.conv.explore / .draw
explore = explore_conv
draw = draw_conv
Exploration = ConvExploration
