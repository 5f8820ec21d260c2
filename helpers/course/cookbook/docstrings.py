"""The cookbook's text, read from docstrings: a function's first paragraph(s), its ``Shapes:`` paragraph,
and a call written as Python source (pure Python, no torch)."""

from __future__ import annotations

import inspect
import re
from typing import Any, Optional, Sequence

__all__ = ["first_paragraph", "shapes_paragraph", "call_text"]


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
