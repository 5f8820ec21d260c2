"""The ipywidgets plumbing every explorer shares: sliders, a figure pane, wiring and layout.

Each explorer keeps its own pure logic (``explore_*``: what to display, unit-tested without
ipywidgets) and drawing (``draw_*``); this module only turns those into a live widget:
controls on the left, the panes on the right, every control re-rendering the panes.
ipywidgets and matplotlib are imported lazily so the pure logic stays importable without them.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import Any

STYLE = {"description_width": "110px"}


def int_slider(description: str, value: int, lo: int, hi: int, *, step: int = 1, width: str = "340px") -> Any:
    """An IntSlider that updates on release (a re-render per drag step would be wasteful)."""
    import ipywidgets as w  # noqa: PLC0415

    return w.IntSlider(value=value, min=lo, max=hi, step=step, description=description, style=STYLE,
                       layout=w.Layout(width=width), continuous_update=False)


def output_html(css_class: str) -> Any:
    """The explorer's main line: an HTML widget with a stable CSS class (browser tests find it)."""
    import ipywidgets as w  # noqa: PLC0415

    line = w.HTML()
    line.add_class(css_class)
    return line


def html_panes(n: int) -> list[Any]:
    """`n` empty HTML panes (formula lines, counts, tables) for ``refresh`` to fill."""
    import ipywidgets as w  # noqa: PLC0415

    return [w.HTML() for _ in range(n)]


def values(controls: dict[str, Any]) -> dict[str, Any]:
    """The current value of every control, by name (what ``explore_*`` takes as arguments)."""
    return {name: control.value for name, control in controls.items()}


def figure_pane() -> Any:
    """A pane for a matplotlib figure: a PNG Image widget.

    Unlike an Output widget capturing ``plt.show()``, nothing is printed while the explorer is
    built, so executing a notebook headlessly stores no widget output and no stray text.
    """
    import ipywidgets as w  # noqa: PLC0415

    return w.Image(format="png")


def show_figure(pane: Any, fig: Any, *, dpi: int = 80) -> None:
    """Render `fig` into `pane` (from `figure_pane`) and close it."""
    import matplotlib.pyplot as plt  # noqa: PLC0415

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    pane.value = buffer.getvalue()


def assemble(title: str, controls: dict[str, Any], panes: Sequence[Any], refresh: Callable[..., None],
             state: Callable[[], Any] | None = None) -> Any:
    """Wire every control to `refresh`, render once, and lay out the explorer.

    Returns a VBox: the title and controls on the left, the panes on the right. With `state`,
    ``box.explore()`` returns the current exploration (for tests and curious users).
    """
    import ipywidgets as w  # noqa: PLC0415

    for control in controls.values():
        control.observe(refresh, names="value")
    refresh()
    left = w.VBox([w.HTML(f"<h4>{title}</h4>"), *controls.values()])
    box = w.VBox([w.HBox([left, w.VBox(list(panes))])])
    if state is not None:
        box.explore = state
    return box
