"""Attention-heads explorer: how num_heads splits embed_dim, and what it does (and does not) change.

Moving the ``num_heads`` slider of an ``nn.MultiheadAttention(embed_dim, num_heads)`` shows:

* ``head_dim = embed_dim / num_heads`` shrinks as heads grow (and invalid splits are explained);
* the parameter count does **not** change: heads are a reshape of the same E×E projections;
* the per-head tensors ``(B, h, T, d_k)`` and the score matrix ``(B, h, T, T)``;
* the memory of the attention matrix, ``B·h·T²·bytes``, grows linearly with heads and
  quadratically with T, while the FLOPs of ``Q Kᵀ`` (``2·B·h·T²·d_k = 2·B·T²·E``) do not move.

Three layers, as in `helpers.widgets.conv`:

* `explore_heads(...)` — pure logic (no ipywidgets, no matplotlib), returns a `HeadsExploration`.
  Counts come from `helpers.formulas.mha_params`; bytes per element from the dtype name.
* `draw_heads(embed_dim, seq_len, ...)` — matplotlib: params and attention memory vs num_heads.
* `attention_explorer(**initial)` — the ipywidgets UI; the result line is an ``HTML`` widget with
  the stable CSS class ``dp-attention-output`` (`ATTENTION_CSS_CLASS`), for browser tests.

Example::

    >>> e = explore_heads(embed_dim=768, num_heads=12, seq_len=1024)
    >>> e.head_dim, e.params, e.scores_shape
    (64, 2362368, (1, 12, 1024, 1024))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from helpers import formulas
from helpers._text import dtype_bytes, format_bytes as _human_bytes
from helpers.widgets._ui import STYLE, assemble, figure_pane, int_slider, show_figure

__all__ = ["HeadsExploration", "explore_heads", "valid_num_heads", "draw_heads", "attention_explorer",
           "ATTENTION_CSS_CLASS", "DTYPE_BYTES"]

ATTENTION_CSS_CLASS = "dp-attention-output"
DTYPE_BYTES = {name: int(dtype_bytes(name)) for name in ("float32", "bfloat16", "float16", "float64")}


@dataclass(frozen=True)
class HeadsExploration:
    """What the explorer shows for one (embed_dim, num_heads, seq_len, batch_size, dtype).

    Attributes:
        head_dim: d_k = embed_dim // num_heads, or None if the split is invalid.
        params: parameters of nn.MultiheadAttention(embed_dim, num_heads, bias=bias), or None.
        qkv_shape: (B, h, T, d_k) of q, k and v after the head split, or None.
        scores_shape: (B, h, T, T) of the attention matrix, or None.
        scores_bytes: bytes of one attention matrix B·h·T²·bytes (one layer), or None.
        scores_flops: FLOPs of Q Kᵀ, 2·B·h·T²·d_k (= 2·B·T²·E, independent of h), or None.
        output_text: one line for the output widget (or a "⚠ …" sentence when invalid).
        details: a few more lines (formulas with the numbers plugged in).
        error: friendly error text, or None.
    """

    embed_dim: int
    num_heads: int
    seq_len: int
    batch_size: int
    dtype: str
    bias: bool
    head_dim: Optional[int]
    params: Optional[int]
    qkv_shape: Optional[tuple[int, int, int, int]]
    scores_shape: Optional[tuple[int, int, int, int]]
    scores_bytes: Optional[int]
    scores_flops: Optional[int]
    output_text: str
    details: str
    error: Optional[str]


def valid_num_heads(embed_dim: int, max_heads: Optional[int] = None) -> list[int]:
    """Head counts that split embed_dim evenly (its divisors), up to max_heads."""
    if embed_dim <= 0:
        return []
    top = embed_dim if max_heads is None else min(embed_dim, max_heads)
    return [h for h in range(1, top + 1) if embed_dim % h == 0]


def explore_heads(embed_dim: int, num_heads: int, seq_len: int, batch_size: int = 1,
                  dtype: str = "float32", bias: bool = True) -> HeadsExploration:
    """Everything the heads explorer displays; never raises for a bad combination (see `error`)."""
    base = dict(embed_dim=embed_dim, num_heads=num_heads, seq_len=seq_len, batch_size=batch_size,
                dtype=dtype, bias=bias)
    error = None
    if dtype not in DTYPE_BYTES:
        error = f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPE_BYTES)}"
    elif min(embed_dim, num_heads, seq_len, batch_size) <= 0:
        error = "embed_dim, num_heads, seq_len and batch_size must all be positive"
    elif embed_dim % num_heads:
        near = [h for h in valid_num_heads(embed_dim) if abs(h - num_heads) <= max(4, num_heads)]
        error = (f"embed_dim={embed_dim} cannot be split into {num_heads} heads of equal size "
                 f"({embed_dim}/{num_heads} = {embed_dim / num_heads:.2f}); torch raises here. "
                 f"Valid nearby choices: {', '.join(map(str, near))}")
    if error is not None:
        return HeadsExploration(**base, head_dim=None, params=None, qkv_shape=None, scores_shape=None,
                                scores_bytes=None, scores_flops=None, output_text=f"⚠ {error}",
                                details="", error=error)
    d_k = embed_dim // num_heads
    B, h, T = batch_size, num_heads, seq_len
    params = formulas.mha_params(embed_dim, num_heads, bias=bias)
    scores_bytes = B * h * T * T * DTYPE_BYTES[dtype]
    flops = 2 * B * h * T * T * d_k
    output_text = (f"head_dim = {embed_dim} / {h} = {d_k} · q, k, v: (B, h, T, d_k) = {(B, h, T, d_k)} · "
                   f"scores: {(B, h, T, T)} = {_human_bytes(scores_bytes)} ({dtype}) · params: {params:,}")
    bias_terms = f" + 4·{embed_dim} = {params:,}" if bias else f" = {params:,}"
    details = "\n".join([
        f"params = 4·E² {'+ 4·E ' if bias else ''}= 4·{embed_dim}²{bias_terms}  (the same for every num_heads)",
        f"attention matrix = B·h·T² = {B}·{h}·{T}² = {B * h * T * T:,} numbers = {_human_bytes(scores_bytes)}",
        f"FLOPs of Q·Kᵀ = 2·B·h·T²·d_k = 2·B·T²·E = {flops:,}  (the same for every num_heads)",
    ])
    return HeadsExploration(**base, head_dim=d_k, params=params, qkv_shape=(B, h, T, d_k),
                            scores_shape=(B, h, T, T), scores_bytes=scores_bytes, scores_flops=flops,
                            output_text=output_text, details=details, error=None)


def draw_heads(embed_dim: int, seq_len: int, batch_size: int = 1, dtype: str = "float32",
               current: Optional[int] = None, ax: Any = None, max_heads: int = 64) -> Any:
    """Two bar charts over every valid num_heads: MHA parameters (flat) and attention-matrix MiB."""
    import matplotlib.pyplot as plt  # noqa: PLC0415

    heads = valid_num_heads(embed_dim, max_heads)
    rows = [explore_heads(embed_dim, h, seq_len, batch_size, dtype) for h in heads]
    if ax is None:
        _, ax = plt.subplots(1, 2, figsize=(10, 3.2))
    labels = [str(h) for h in heads]
    colors = ["tab:orange" if h == current else "tab:blue" for h in heads]
    ax[0].bar(labels, [r.params for r in rows], color=colors)
    ax[0].set(title=f"MHA parameters (E={embed_dim})", xlabel="num_heads", ylabel="parameters")
    ax[1].bar(labels, [r.scores_bytes / 2**20 for r in rows], color=colors)
    ax[1].set(title=f"attention matrix, B={batch_size}, T={seq_len}, {dtype}", xlabel="num_heads", ylabel="MiB")
    for a in ax:
        a.tick_params(axis="x", labelrotation=90 if len(heads) > 12 else 0)
    ax[0].figure.tight_layout()
    return ax


def attention_explorer(**initial: Any) -> Any:
    """An ipywidgets explorer: embed_dim, num_heads, seq_len, batch_size, dtype → shapes, params, memory.

    Keyword arguments set the initial values (embed_dim=768, num_heads=12, seq_len=1024,
    batch_size=1, dtype="float32"). Returns the widget (a VBox).
    """
    import ipywidgets as w  # noqa: PLC0415

    controls = {
        "embed_dim": w.Dropdown(options=[64, 128, 256, 512, 768, 1024, 2048, 4096],
                                value=int(initial.get("embed_dim", 768)), description="embed_dim", style=STYLE),
        "num_heads": int_slider("num_heads", int(initial.get("num_heads", 12)), 1, 64, width="380px"),
        "seq_len": int_slider("seq_len T", int(initial.get("seq_len", 1024)), 16, 8192, step=16, width="380px"),
        "batch_size": int_slider("batch B", int(initial.get("batch_size", 1)), 1, 64, width="380px"),
        "dtype": w.ToggleButtons(options=list(DTYPE_BYTES), value=initial.get("dtype", "float32"),
                                 description="dtype", style=STYLE),
    }
    output_line = w.HTML()
    output_line.add_class(ATTENTION_CSS_CLASS)
    details = w.HTML()
    plot = figure_pane()

    def state() -> Any:
        return explore_heads(**{k: c.value for k, c in controls.items()})

    def refresh(*_: Any) -> None:
        v = {k: c.value for k, c in controls.items()}
        e = explore_heads(**v)
        output_line.value = f"<b>{e.output_text}</b>"
        details.value = "<br>".join(f"<code>{line}</code>" for line in e.details.splitlines())
        ax = draw_heads(v["embed_dim"], v["seq_len"], v["batch_size"], v["dtype"], current=v["num_heads"])
        show_figure(plot, ax[0].figure)

    return assemble("Attention heads explorer", controls, [output_line, details, plot], refresh, state)
