"""The cookbook table: one row per layer, its text generated from the docstrings of `helpers.formulas` /
`helpers.shapes` (`Entry.formula_text`, `Entry.shape_text`). HTML in Jupyter, aligned text in a terminal."""

from __future__ import annotations

import html
import re
from typing import Sequence

from helpers.course.cookbook.entries import ENTRIES
from helpers.course.cookbook.entry import Entry
from helpers.course.cookbook.render import header_html, link_html, wide_table

__all__ = ["CookbookTable", "table"]


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

        head = header_html(("layer", "parameters", "torch call → count", "shapes", "helpers", "chapter"))
        body = ""
        for e, (title, formula, worked, shape, source, chapter) in zip(self.entries, self.rows()):
            body += (f"<tr id='{re.sub(r'[^a-z0-9]+', '-', title.lower()).strip('-')}'>"
                     f"<td style='text-align:left'><b>{html.escape(title)}</b></td>"
                     f"<td style='text-align:left'>{code(formula)}</td>"
                     f"<td style='text-align:left'><code>{html.escape(worked)}</code></td>"
                     f"<td style='text-align:left'>{code(shape)}</td>"
                     f"<td style='text-align:left'><code>{html.escape(source)}</code></td>"
                     f"<td style='text-align:left'>{link_html(e.link)}</td></tr>")
        return wide_table(head, body)


def table(entries: Sequence[Entry] = ENTRIES) -> CookbookTable:
    """The cookbook table, generated from the docstrings of `helpers.formulas` / `helpers.shapes`."""
    return CookbookTable(entries)
