"""Shared text formatting for `summary`, `explain`, `counting`, `cost` and the widgets.

ONE byte formatter (`format_bytes`: binary units, 1 KiB = 1024 B, as torch.cuda memory reports
and `nvidia-smi` use) and ONE dtype-name table (`DTYPES`: short name → (torch dtype name, bytes
per element); `dtype_name`, `dtype_bytes` accept a short name, a torch name or a torch.dtype).
Also the shape formatting shared by the summary table and explain's messages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Union

__all__ = ["format_bytes", "format_shapes", "si", "DTYPES", "dtype_name", "dtype_bytes"]

Shape = tuple[int, ...]

def _fmt_shape(shape: Shape) -> str:
    return "(" + ", ".join(map(str, shape)) + ")" if len(shape) != 1 else f"({shape[0]},)"


def format_shapes(structure: Any, names: Any = None) -> str:
    """Render a shape structure from `LayerRow` as text.

    A shape is ``(2, 10)``; a tuple of values is ``[(2, 10), (2, 5)]`` (square brackets so a
    structure is never confused with a shape); a dict is ``{key: (…)}``; ``None`` is ``None``.
    `names` (same nesting as `structure`, top level unbracketed) labels the elements, e.g. LSTM:
    ``output (5, 2, 64), h_n (2, 2, 64), c_n (2, 2, 64)``.
    """
    if structure is None:
        return "None"
    if isinstance(structure, Mapping):
        return "{" + ", ".join(f"{k}: {format_shapes(v)}" for k, v in structure.items()) + "}"
    if isinstance(structure, tuple) and all(isinstance(v, int) for v in structure):
        return _fmt_shape(structure)
    if names is not None and isinstance(names, tuple) and len(names) == len(structure):
        parts = []
        for n, s in zip(names, structure):
            parts.append(format_shapes(s, n) if isinstance(n, tuple) else f"{n} {format_shapes(s)}")
        return ", ".join(parts)
    return "[" + ", ".join(format_shapes(v) for v in structure) + "]"


def _format_inputs(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
    parts = [format_shapes(a) for a in args]
    parts += [f"{k}={format_shapes(v)}" for k, v in kwargs.items()]
    return ", ".join(parts)


def si(n: int) -> str:
    """Compact number: 577024 → '577K', 1605632 → '1.61M'."""
    if n == 0:
        return "--"
    for value, suffix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= value:
            x = n / value
            return f"{x:.3g}{suffix}" if x < 1000 else f"{x:.0f}{suffix}"
    return str(n)


#: short name → (torch dtype name, bytes per element). tf32 is stored as fp32; int4 packs two
#: weights per byte. The torch names ("float32", "bfloat16", …) are accepted as aliases.
DTYPES: dict[str, tuple[str, float]] = {
    "fp64": ("float64", 8), "fp32": ("float32", 4), "tf32": ("float32", 4), "bf16": ("bfloat16", 2),
    "fp16": ("float16", 2), "int64": ("int64", 8), "int32": ("int32", 4), "int8": ("int8", 1),
    "uint8": ("uint8", 1), "bool": ("bool", 1), "int4": ("int4", 0.5),
}
_ALIASES = {torch_name: short for short, (torch_name, _) in reversed(list(DTYPES.items()))}


def dtype_name(dtype: Any) -> str:
    """The short name of a dtype: ``torch.float32``, ``"float32"`` or ``"fp32"`` → ``"fp32"``.

    Raises ValueError for an unknown name."""
    name = str(dtype).removeprefix("torch.")
    if name in DTYPES:
        return name
    if name in _ALIASES:
        return _ALIASES[name]
    raise ValueError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")


def dtype_bytes(dtype: Any) -> float:
    """Bytes per element: fp32 4, bf16/fp16 2, int8 1, int4 0.5 (names or torch dtypes)."""
    return DTYPES[dtype_name(dtype)][1]


def format_bytes(n: Union[int, float]) -> str:
    """Bytes in binary units (1 KiB = 1024 B): 512 → '512 B', 3_145_728 → '3.00 MiB'."""
    for power, suffix in ((4, "TiB"), (3, "GiB"), (2, "MiB"), (1, "KiB")):
        if abs(n) >= 1024 ** power:
            return f"{n / 1024 ** power:.2f} {suffix}"
    return f"{n:g} B" if isinstance(n, float) else f"{n} B"


def _pieces(text: str, paren: bool) -> list[str]:
    """Break points of a cell: after each top-level ', ' (not inside brackets), and with
    `paren` also before a top-level ' (' (between a layer name and its type)."""
    out, cur, level = [], "", 0
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in "([{":
            if paren and level == 0 and ch == "(" and cur.endswith(" ") and cur.strip():
                out.append(cur)
                cur = ""
            level += 1
        elif ch in ")]}":
            level -= 1
        cur += ch
        if ch == "," and level == 0 and text[i + 1:i + 2] == " ":
            out.append(cur + " ")
            cur = ""
            i += 1
        i += 1
    return [*out, cur] if cur else out


def _wrap(text: str, width: int, *, paren: bool = False) -> list[str]:
    """Split a cell into lines of at most `width` chars at top-level ', ' (and, with `paren`,
    ' (') boundaries; only a single piece longer than the column is hard-cut. A leading indent
    is kept, and continuation lines are indented two more spaces."""
    if len(text) <= width:
        return [text]
    indent = len(text) - len(text.lstrip(" "))
    if indent:
        inner = _wrap(text[indent:], max(8, width - indent - 2), paren=paren)
        return [" " * indent + inner[0], *(" " * (indent + 2) + ln for ln in inner[1:])]
    lines: list[str] = []
    cur = ""
    for piece in _pieces(text, paren):
        if len(cur) + len(piece.rstrip()) <= width:
            cur += piece
            continue
        if cur.strip():
            lines.append(cur.rstrip())
        piece = piece.lstrip()
        if len(piece.rstrip()) > width and not paren and " (" in piece:  # "name (shape)": break at the space
            head, tail = _wrap(piece, width, paren=True)[:-1], _wrap(piece, width, paren=True)[-1]
            lines.extend(head)
            piece = tail
        while len(piece.rstrip()) > width:
            lines.append(piece[:width])
            piece = piece[width:]
        cur = piece
    if cur.strip():
        lines.append(cur.rstrip())
    return lines



def times(shape: Sequence[int]) -> str:
    return "×".join(map(str, shape))
