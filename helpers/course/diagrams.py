"""Block diagrams with tensor shapes, drawn by matplotlib: one drawing function, three layouts.

Glossary of dimension letters (the same as the chapters and ``helpers.models``):
    B   batch size
    T   sequence length (L in the Mamba chapter)
    I   input features of a recurrent cell (``input_size``)
    H   hidden size of a recurrent cell (``hidden_size``)
    C   model width of a transformer (``n_embd``, D in the Mamba chapter), nh heads of size hs = C / nh
    F   feed-forward width of a transformer (4C in GPT-2)
    D_i inner width of a Mamba block (expand · D), N state size, K conv kernel, R rank of Δ

A diagram is data: a ``Diagram`` of ``Box``es (a label and a position on a grid) and ``Arrow``s
between them (optionally labelled, e.g. with a tensor shape). ``draw_diagram`` is the only
drawing code; ``recurrent_cell_diagram`` (chapter 06), ``transformer_block_diagram`` (chapter 08)
and ``mamba_block_diagram`` (chapter 10) only build the data, from the sizes the chapter
computes, so every shape on the figure is the one the chapter prints. The layouts are pure
arithmetic (no torch); ``tests/test_diagrams.py`` checks their shapes against real torch modules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

__all__ = ["Box", "Arrow", "Diagram", "draw_diagram", "recurrent_cell_diagram",
           "transformer_block_diagram", "mamba_block_diagram", "shape_text"]

# one colour per kind of box, shared by every diagram
COLORS = {"tensor": "#ffffff", "linear": "#cfe2f3", "op": "#fff2cc", "norm": "#d9ead3",
          "state": "#f4cccc", "mix": "#ead1dc"}


def shape_text(*dims: int | str) -> str:
    """A shape as the chapters print it: ``shape_text(2, 'T', 8)`` → ``'(2, T, 8)'``."""
    return "(" + ", ".join(str(d) for d in dims) + ")"


@dataclass(frozen=True)
class Box:
    """One node: `key` (referenced by arrows), a `label` (may hold several lines), its centre
    `(x, y)` in grid units, and a `kind` selecting its colour (a key of ``COLORS``)."""

    key: str
    label: str
    x: float
    y: float
    kind: str = "op"
    width: float = 2.6


@dataclass(frozen=True)
class Arrow:
    """An edge from box `src` to box `dst`, with an optional `label` (usually a tensor shape)."""

    src: str
    dst: str
    label: str = ""
    bypass: bool = False      # drawn as a bracket on the left (a residual / skip connection)


@dataclass(frozen=True)
class Diagram:
    """Boxes and arrows, plus a title; ``draw_diagram`` renders it."""

    title: str
    boxes: tuple[Box, ...]
    arrows: tuple[Arrow, ...]
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        keys = [b.key for b in self.boxes]
        if len(set(keys)) != len(keys):
            raise ValueError(f"duplicate box keys in diagram {self.title!r}: {keys}")
        for arrow in self.arrows:
            for end in (arrow.src, arrow.dst):
                if end not in keys:
                    raise ValueError(f"arrow {arrow.src!r} → {arrow.dst!r} of diagram {self.title!r} "
                                     f"names no box {end!r}; boxes are {keys}")
        for box in self.boxes:
            if box.kind not in COLORS:
                raise ValueError(f"box {box.key!r} has kind {box.kind!r}; use one of {sorted(COLORS)}")

    def box(self, key: str) -> Box:
        """The box with this key."""
        return next(b for b in self.boxes if b.key == key)

    def texts(self) -> list[str]:
        """Every string the figure shows (box labels, arrow labels, notes, title) — for tests."""
        return [self.title, *(b.label for b in self.boxes), *(a.label for a in self.arrows if a.label),
                *self.notes]


def draw_diagram(diagram: Diagram, ax=None, *, scale: float = 0.9):
    """Draw `diagram` on `ax` (a new figure if None) and return the Axes.

    Boxes are rounded rectangles centred on their grid position; arrows run from the bottom of
    the source to the top of the destination (or side to side for boxes on the same row), with
    the label written beside the arrow's middle. Notes are printed under the drawing.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    ys = [b.y for b in diagram.boxes]
    x0 = min(b.x - b.width / 2 for b in diagram.boxes) - (1.6 if any(a.bypass for a in diagram.arrows) else 0.4)
    x1 = max(b.x + b.width / 2 for b in diagram.boxes) + 3.6          # room for the arrow labels
    y0, y1 = min(ys) - 1.0 - 0.45 * len(diagram.notes), max(ys) + 1.0
    if ax is None:
        _, ax = plt.subplots(figsize=(scale * (x1 - x0), scale * (y1 - y0) * 0.75))
    box_h = 0.62
    for b in diagram.boxes:
        lines = b.label.count("\n") + 1
        h = box_h * (1 + 0.45 * (lines - 1))
        ax.add_patch(FancyBboxPatch((b.x - b.width / 2, b.y - h / 2), b.width, h,
                                    boxstyle="round,pad=0.04,rounding_size=0.12", linewidth=1.0,
                                    edgecolor="#444444", facecolor=COLORS[b.kind], zorder=2))
        ax.text(b.x, b.y, b.label, ha="center", va="center", fontsize=8, zorder=3)
    half_heights = {b.key: box_h * (1 + 0.45 * b.label.count("\n")) / 2 for b in diagram.boxes}
    for a in diagram.arrows:
        s, d = diagram.box(a.src), diagram.box(a.dst)
        if a.bypass:                                   # left-edge bracket, label at its middle
            start, end = (s.x - s.width / 2, s.y), (d.x - d.width / 2, d.y)
            bx = min(start[0], end[0]) - 0.5
            ax.plot([start[0], bx, bx], [start[1], start[1], end[1]], color="#888888", lw=1.0, zorder=1)
            ax.annotate("", xy=end, xytext=(bx, end[1]), zorder=1,
                        arrowprops=dict(arrowstyle="-|>", color="#888888", lw=1.0, shrinkA=0, shrinkB=0))
            if a.label:
                ax.text(bx - 0.15, (start[1] + end[1]) / 2, a.label, fontsize=7, color="#555555",
                        ha="right", va="center", rotation=90)
            continue
        if abs(s.y - d.y) < 1e-9:                      # same row: side to side
            sign = 1 if d.x > s.x else -1
            start, end = (s.x + sign * s.width / 2, s.y), (d.x - sign * d.width / 2, d.y)
        else:                                          # vertical flow: bottom/top edges
            sign = 1 if d.y > s.y else -1
            start = (s.x, s.y + sign * half_heights[s.key])
            end = (d.x, d.y - sign * half_heights[d.key])
        ax.annotate("", xy=end, xytext=start, zorder=1,
                    arrowprops=dict(arrowstyle="-|>", color="#555555", lw=1.0, shrinkA=0, shrinkB=0))
        if a.label:
            mx, my = (start[0] + end[0]) / 2, (start[1] + end[1]) / 2
            ax.text(mx + 0.08, my, a.label, fontsize=7, color="#1f4e79", ha="left", va="center",
                    zorder=4, bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.85))
    for i, note in enumerate(diagram.notes):
        ax.text(x0 + 0.2, min(ys) - 1.0 - 0.45 * i, note, fontsize=7.5, ha="left", va="center")
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("auto")
    ax.axis("off")
    ax.set_title(diagram.title, fontsize=10)
    return ax


def recurrent_cell_diagram(input_size: int, hidden_size: int, batch_size: int = 1,
                           mode: str = "LSTM") -> Diagram:
    """One step of ``nn.LSTMCell`` / ``nn.GRUCell`` with every tensor's shape.

    LSTM: gates = x W_ihᵀ + b_ih + h W_hhᵀ + b_hh, (B, 4H), split into i, f, g, o (B, H) each;
    c_t = f ⊙ c_{t-1} + i ⊙ g; h_t = o ⊙ tanh(c_t). Parameters 4(H·I + H² + 2H).
    GRU: (B, 3H) from each side, split into r, z, n; n = tanh(x_n + r ⊙ h_n);
    h_t = (1 − z) ⊙ n + z ⊙ h_{t-1}. Parameters 3(H·I + H² + 2H).
    """
    if mode not in ("LSTM", "GRU"):
        raise ValueError(f"mode must be 'LSTM' or 'GRU', got {mode!r}")
    if min(input_size, hidden_size, batch_size) < 1:
        raise ValueError("input_size, hidden_size and batch_size must be ≥ 1")
    B, I, H = batch_size, input_size, hidden_size
    g = 4 if mode == "LSTM" else 3
    params = g * (H * I + H * H + 2 * H)
    bh = shape_text(B, H)
    boxes = [
        Box("x", f"x_t {shape_text(B, I)}", 0, 6, "tensor"),
        Box("h0", f"h_(t-1) {bh}", 4, 6, "tensor"),
        Box("wih", f"x W_ihᵀ + b_ih\nW_ih {shape_text(g * H, I)}", 0, 4.6, "linear", 3.0),
        Box("whh", f"h W_hhᵀ + b_hh\nW_hh {shape_text(g * H, H)}", 4, 4.6, "linear", 3.0),
    ]
    arrows = [Arrow("x", "wih", shape_text(B, I)), Arrow("h0", "whh", bh)]
    if mode == "LSTM":
        boxes += [
            Box("gates", "sum, split into 4 gates", 2, 3.2, "op", 3.0),
            Box("gate_fns", "i, f, o = σ(·)   g = tanh(·)", 2, 2.0, "op", 3.4),
            Box("c0", f"c_(t-1) {bh}", 6.2, 2.0, "tensor"),
            Box("c", f"c_t = f⊙c_(t-1) + i⊙g\n{bh}", 2, 0.6, "state", 3.4),
            Box("h", f"h_t = o⊙tanh(c_t)\n{bh}", 2, -0.9, "tensor", 3.4),
        ]
        arrows += [Arrow("wih", "gates", shape_text(B, 4 * H)), Arrow("whh", "gates", shape_text(B, 4 * H)),
                   Arrow("gates", "gate_fns", f"4 × {bh}"), Arrow("gate_fns", "c", "i, f, g"),
                   Arrow("c0", "c", bh), Arrow("c", "h", bh)]
        title = f"nn.LSTMCell({I}, {H}): one time step, batch {B}"
    else:
        boxes += [
            Box("gates", "r, z = σ(x_r + h_r), σ(x_z + h_z)", 2, 3.2, "op", 3.6),
            Box("n", "n = tanh(x_n + r ⊙ h_n)", 2, 2.0, "op", 3.4),
            Box("h", f"h_t = (1 − z)⊙n + z⊙h_(t-1)\n{bh}", 2, 0.6, "state", 3.8),
        ]
        arrows += [Arrow("wih", "gates", shape_text(B, 3 * H)), Arrow("whh", "gates", shape_text(B, 3 * H)),
                   Arrow("gates", "n", f"r, z: 2 × {bh}"), Arrow("n", "h", bh)]
        title = f"nn.GRUCell({I}, {H}): one time step, batch {B}"
    notes = (f"parameters {g}·(H·I + H² + 2H) = {params:,} (W_ih, W_hh, b_ih, b_hh)",)
    return Diagram(title, tuple(boxes), tuple(arrows), notes)


def transformer_block_diagram(batch_size: int, seq_len: int, n_embd: int, n_head: int,
                              d_ff: Optional[int] = None, params: Optional[int] = None) -> Diagram:
    """A pre-LayerNorm GPT block (nanoGPT's ``Block``) with the shape of every tensor.

    x → ln_1 → c_attn (B, T, 3C) → q, k, v (B, nh, T, hs) → scores (B, nh, T, T) → y (B, T, C)
    → c_proj → + x → ln_2 → c_fc (B, T, F) → GELU → c_proj (B, T, C) → + residual.
    `params` (if given, e.g. from ``count_params``) is written under the drawing.
    """
    if n_embd % n_head:
        raise ValueError(f"n_embd ({n_embd}) must be divisible by n_head ({n_head})")
    if min(batch_size, seq_len, n_embd, n_head) < 1:
        raise ValueError("batch_size, seq_len, n_embd and n_head must be ≥ 1")
    B, T, C, nh = batch_size, seq_len, n_embd, n_head
    hs, F = C // nh, 4 * n_embd if d_ff is None else d_ff
    btc = shape_text(B, T, C)
    boxes = (
        Box("x", f"x {btc}", 0, 10, "tensor"),
        Box("ln1", "ln_1 (LayerNorm)", 0, 8.8, "norm"),
        Box("qkv", f"c_attn: Linear(C, 3C)\nweight {shape_text(3 * C, C)}", 0, 7.6, "linear", 3.0),
        Box("att", f"softmax(q kᵀ/√hs) v\nscores {shape_text(B, nh, T, T)}", 0, 6.2, "mix", 3.2),
        Box("proj", f"c_proj: Linear(C, C)\nweight {shape_text(C, C)}", 0, 4.8, "linear", 3.0),
        Box("add1", "+ residual", 0, 3.7, "op", 2.0),
        Box("ln2", "ln_2 (LayerNorm)", 0, 2.7, "norm"),
        Box("fc", f"c_fc: Linear(C, {F})  → GELU", 0, 1.6, "linear", 3.0),
        Box("proj2", f"c_proj: Linear({F}, C)", 0, 0.5, "linear", 3.0),
        Box("add2", f"+ residual → {btc}", 0, -0.6, "op", 3.0),
    )
    arrows = (
        Arrow("x", "ln1", btc), Arrow("ln1", "qkv", btc),
        Arrow("qkv", "att", f"{shape_text(B, T, 3 * C)} → q, k, v {shape_text(B, nh, T, hs)}"),
        Arrow("att", "proj", f"heads merged {btc}"), Arrow("proj", "add1", btc),
        Arrow("add1", "ln2", btc), Arrow("ln2", "fc", btc), Arrow("fc", "proj2", shape_text(B, T, F)),
        Arrow("proj2", "add2", btc),
        Arrow("x", "add1", "residual", bypass=True), Arrow("add1", "add2", "residual", bypass=True),
    )
    notes = [f"C = {C}, nh = {nh} heads of hs = {hs}, F = {F}"]
    if params is not None:
        notes.append(f"parameters of the block: {params:,}")
    return Diagram(f"GPT block (pre-LN), batch {B}, {T} tokens", boxes, arrows, tuple(notes))


def mamba_block_diagram(batch_size: int, seq_len: int, d_model: int, d_inner: int, d_state: int,
                        d_conv: int, dt_rank: int, params: Optional[int] = None) -> Diagram:
    """A Mamba block (mamba-minimal's ``MambaBlock``) with the shape of every tensor.

    x (B, L, D) → in_proj (B, L, 2·D_i) → x, z (B, L, D_i) each; x → causal depthwise conv1d (K)
    → SiLU → x_proj → Δ (B, L, R), B and C (B, L, N) → dt_proj Δ (B, L, D_i) → selective scan
    with state (B, D_i, N) → y (B, L, D_i) ⊙ SiLU(z) → out_proj (B, L, D).
    """
    if min(batch_size, seq_len, d_model, d_inner, d_state, d_conv, dt_rank) < 1:
        raise ValueError("every size must be ≥ 1")
    B, L, D, Di, N, K, R = batch_size, seq_len, d_model, d_inner, d_state, d_conv, dt_rank
    bld = shape_text(B, L, Di)
    boxes = (
        Box("x", f"x {shape_text(B, L, D)}", 1.5, 10, "tensor"),
        Box("in", f"in_proj: Linear(D, 2·D_i)\nweight {shape_text(2 * Di, D)}", 1.5, 8.7, "linear", 3.2),
        Box("conv", f"conv1d: depthwise, K = {K}, causal\nweight {shape_text(Di, 1, K)}", 0, 7.2, "op", 3.4),
        Box("silu1", "SiLU", 0, 6.1, "op", 1.6),
        Box("xproj", f"x_proj: Linear(D_i, R + 2N)\nweight {shape_text(R + 2 * N, Di)}", 0, 4.9, "linear", 3.4),
        Box("dt", f"dt_proj: Linear(R, D_i) → softplus\nΔ {bld}", 0, 3.5, "linear", 3.6),
        Box("scan", f"selective scan, A {shape_text(Di, N)}\nstate h {shape_text(B, Di, N)}", 0, 2.0, "state", 3.6),
        Box("siluz", "SiLU(z)", 3.6, 3.5, "op", 1.8),
        Box("mul", f"y ⊙ SiLU(z)  {bld}", 1.5, 0.7, "op", 3.2),
        Box("out", f"out_proj: Linear(D_i, D) → {shape_text(B, L, D)}", 1.5, -0.5, "linear", 3.8),
    )
    arrows = (
        Arrow("x", "in", shape_text(B, L, D)), Arrow("in", "conv", f"x {bld}"), Arrow("in", "siluz", f"z {bld}"),
        Arrow("conv", "silu1", bld), Arrow("silu1", "xproj", bld),
        Arrow("xproj", "dt", f"Δ {shape_text(B, L, R)}"), Arrow("dt", "scan", f"Δ {bld}"),
        Arrow("xproj", "scan", f"B, C {shape_text(B, L, N)}", bypass=True),
        Arrow("scan", "mul", f"y {bld}"), Arrow("siluz", "mul", bld), Arrow("mul", "out", bld),
    )
    notes = [f"D = {D}, D_i = {Di}, N = {N}, K = {K}, R = {R}; the scan state is D_i·N = {Di * N:,} numbers per sequence"]
    if params is not None:
        notes.append(f"parameters of the block: {params:,}")
    return Diagram(f"Mamba block, batch {B}, length {L}", boxes, arrows, tuple(notes))
