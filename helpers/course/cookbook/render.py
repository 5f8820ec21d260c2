"""HTML pieces the cookbook's tables share: chapter links (JupyterLab's heading anchors), header rows,
a wide table that shows every column, and nested output shapes as text."""

from __future__ import annotations

import html
import re
from typing import Any, Optional, Sequence

__all__ = ["heading_anchor", "section_link", "link_html", "header_html", "wide_table", "shape_text"]


def heading_anchor(heading: str) -> str:
    """The anchor JupyterLab gives a markdown heading: its rendered text, spaces → ``-``.

    >>> heading_anchor("3 · Exact parameter counts for `nn.RNN`")
    '3-·-Exact-parameter-counts-for-nn.RNN'
    """
    text = re.sub(r"[`*]", "", heading).strip()
    return text.replace(" ", "-")


def section_link(chapter: Optional[tuple[str, str]]) -> Optional[tuple[str, str]]:
    """(text, href) for a (notebook stem, heading) pair, or None."""
    if chapter is None:
        return None
    notebook, heading = chapter
    return f"{notebook[:2]} § {heading}", f"{notebook}.ipynb#{heading_anchor(heading)}"


def link_html(link: Optional[tuple[str, str]]) -> str:
    """``<a href=…>text</a>`` for a (text, href) pair, "—" for None."""
    return f"<a href='{html.escape(link[1], quote=True)}'>{html.escape(link[0])}</a>" if link else "—"


def header_html(columns: Sequence[str]) -> str:
    """One ``<tr>`` of left-aligned ``<th>`` cells."""
    return "<tr>" + "".join(f"<th style='text-align:left'>{html.escape(c)}</th>" for c in columns) + "</tr>"


#: cells wrap (long ``code`` names too: overflow-wrap anywhere), the table takes the output's width
#: with its columns sized by content (JupyterLab's default ``table-layout: fixed`` and unbreakable
#: names cut the last columns), and what still does not fit scrolls sideways inside its own box.
_WRAP_CELL = "text-align:left; vertical-align:top; white-space:normal; overflow-wrap:anywhere"


def wide_table(head: str, body: str) -> str:
    """A table that shows every column: cells wrap, and a scroll bar of its own where they cannot."""
    body = body.replace("<td style='text-align:left'>", f"<td style='{_WRAP_CELL}'>")
    return (f"<div class='dp-wide-table' style='overflow-x:auto; max-width:100%'>"
            f"<table style='table-layout:auto; width:100%; min-width:60em'>{head}{body}</table></div>")


def shape_text(value: Any) -> str:
    """``(2, 5, 64)`` for one shape; nested shapes (an LSTM's output, (h_n, c_n)) joined by ", "."""
    if isinstance(value, tuple) and all(isinstance(v, int) for v in value):
        return str(value)
    return ", ".join(shape_text(v) for v in value)
