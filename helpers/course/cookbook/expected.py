"""The shape rules the cookbook proves: ``(case, input shapes) → the output shape(s)`` torch should return.

Each rule reads the case's constructor arguments as torch binds them (`Case.bound`, defaults applied)
and computes the output with `helpers.shapes` where a closed form lives there (conv, transposed conv,
pooling, recurrent layers), else by the rule the docstring states. Nested like torch's outputs:
``(output, (h_n, c_n))`` for an LSTM. Rows name these by dotted path (`Entry.expected`).
"""

from __future__ import annotations

from typing import Any

from helpers import shapes
from helpers.course.cookbook.entry import Case, Shape

__all__ = ["same", "linear", "conv", "conv_transpose", "pool", "embedding", "recurrent", "mha", "block",
           "rotary"]


def same(case: Case, x: tuple[Shape, ...]) -> Shape:
    """Output shape = the first input's shape (norms, activations, attention blocks)."""
    return x[0]


def linear(case: Case, x: tuple[Shape, ...]) -> Shape:
    """(*, in) → (*, out_features) (nn.Linear, nn.Bilinear on its first input, LoRA)."""
    return (*x[0][:-1], case.bound()["out_features"])


def conv(case: Case, x: tuple[Shape, ...]) -> Shape:
    """(B, C_in, *spatial) → (B, out_channels, *`shapes.conv_output_size`)."""
    a = case.bound()
    spatial = shapes.conv_output_size(tuple(x[0][2:]), a["kernel_size"], a["stride"], a["padding"], a["dilation"])
    return (x[0][0], a["out_channels"], *spatial)


def conv_transpose(case: Case, x: tuple[Shape, ...]) -> Shape:
    """(B, C_in, *spatial) → (B, out_channels, *`shapes.conv_transpose_output_size`)."""
    a = case.bound()
    spatial = shapes.conv_transpose_output_size(tuple(x[0][2:]), a["kernel_size"], a["stride"], a["padding"],
                                                a["output_padding"], a["dilation"])
    return (x[0][0], a["out_channels"], *spatial)


def pool(case: Case, x: tuple[Shape, ...]) -> Shape:
    """(B, C, *spatial) → (B, C, *`shapes.pool_output_size`), max or average by the class name."""
    a = case.bound()
    kind = "avg" if case.cls.startswith("Avg") else "max"
    spatial = shapes.pool_output_size(tuple(x[0][2:]), a["kernel_size"], a["stride"], a["padding"],
                                      a.get("dilation", 1), a["ceil_mode"], kind=kind)
    return (*x[0][:2], *spatial)


def embedding(case: Case, x: tuple[Shape, ...]) -> Shape:
    """Token ids (*) → (*, embedding_dim)."""
    return (*x[0], case.bound()["embedding_dim"])


def recurrent(case: Case, x: tuple[Shape, ...]) -> Any:
    """(output, h_n) for RNN/GRU, (output, (h_n, c_n)) for LSTM, from `shapes.rnn_shapes`."""
    a = case.bound()
    T, B = (x[0][1], x[0][0]) if a["batch_first"] else (x[0][0], x[0][1])
    s = shapes.rnn_shapes(case.cls, a["input_size"], a["hidden_size"], a["num_layers"], seq_len=T, batch=B,
                          batch_first=a["batch_first"], bidirectional=a["bidirectional"],
                          proj_size=a.get("proj_size", 0))
    return (s["output"], (s["h_n"], s["c_n"]) if case.cls == "LSTM" else s["h_n"])


def mha(case: Case, x: tuple[Shape, ...]) -> Any:
    """nn.MultiheadAttention(query, key, value) → (output like query with embed_dim, weights (B, T, S))."""
    a = case.bound()
    q, k = x[0], x[1]
    if a["batch_first"]:
        B, T, S = q[0], q[1], k[1]
    else:
        T, B, S = q[0], q[1], k[0]
    # add_bias_kv appends one learned key/value, add_zero_attn one zero key/value: S grows by 1 each
    S += int(a["add_bias_kv"]) + int(a["add_zero_attn"])
    return (q[:-1] + (a["embed_dim"],), (B, T, S))


def block(case: Case, x: tuple[Shape, ...]) -> Shape:
    """A residual block: its 3×3 conv (padding 1, stride s) sets H', W'; C_out = out_channels or e·planes."""
    a = case.bound()
    out = a["out_channels"] if "out_channels" in a else a["planes"] * case.target().expansion
    return (x[0][0], out, *shapes.conv_output_size(tuple(x[0][2:]), 3, a["stride"], 1))


def rotary(case: Case, x: tuple[Shape, ...]) -> Any:
    """RoPE's (x, position_ids (B, T)) → cos, sin (B, T, d) each, d = hidden_size // num_attention_heads."""
    a = case.bound()
    d = a["hidden_size"] // a["num_attention_heads"]
    return ((*x[1], d), (*x[1], d))  # cos and sin, (B, T, d) each
