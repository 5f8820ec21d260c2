"""The attention-heads explorer's pure logic, checked against real torch modules and tensors."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from helpers.counting import count_params
from helpers.models.attention import scaled_dot_product_attention
from helpers.widgets.attention import ATTENTION_CSS_CLASS, explore_heads, valid_num_heads


@settings(max_examples=40)
@given(head_dim=st.integers(1, 8), num_heads=st.integers(1, 6), T=st.integers(1, 12), B=st.integers(1, 3),
       dtype=st.sampled_from(["float32", "bfloat16", "float64"]), bias=st.booleans())
def test_explore_heads_matches_torch(head_dim, num_heads, T, B, dtype, bias):
    E = head_dim * num_heads
    e = explore_heads(E, num_heads, T, B, dtype=dtype, bias=bias)
    assert e.error is None
    assert e.params == count_params(nn.MultiheadAttention(E, num_heads, bias=bias, device="meta"))
    tdt = getattr(torch, dtype)
    q = torch.empty(B, T, E, device="meta", dtype=tdt).view(B, T, num_heads, E // num_heads).transpose(1, 2)
    y, att = scaled_dot_product_attention(q, q, q, need_weights=True)
    assert e.qkv_shape == tuple(q.shape) and e.scores_shape == tuple(att.shape)
    assert e.scores_bytes == att.numel() * att.element_size()
    assert e.head_dim == E // num_heads == q.size(-1)


def test_params_do_not_depend_on_heads_but_memory_does():
    rows = [explore_heads(768, h, 512) for h in valid_num_heads(768, 64)]
    assert len({r.params for r in rows}) == 1
    assert len({r.scores_flops for r in rows}) == 1
    mem = [r.scores_bytes for r in rows]
    assert mem == sorted(mem) and mem[-1] == mem[0] * rows[-1].num_heads


@pytest.mark.parametrize("E,h", [(768, 5), (10, 4), (64, 0), (0, 2)])
def test_invalid_configs_are_explained_like_torch_refuses_them(E, h):
    e = explore_heads(E, h, 16)
    assert e.error and e.output_text.startswith("⚠") and e.params is None
    with pytest.raises((AssertionError, ValueError)):
        nn.MultiheadAttention(E, h)


def test_valid_num_heads_are_exactly_the_constructible_ones():
    for E in (12, 30, 64):
        ok = []
        for h in range(1, E + 1):
            try:
                nn.MultiheadAttention(E, h, device="meta")
                ok.append(h)
            except AssertionError:
                pass
        assert valid_num_heads(E) == ok


def test_unknown_dtype_is_an_error_not_an_exception():
    assert "unknown dtype" in explore_heads(64, 4, 8, dtype="int3").error


def test_widget_builds_with_stable_css_class():
    pytest.importorskip("ipywidgets")
    import matplotlib

    matplotlib.use("Agg")
    from helpers.widgets.attention import attention_explorer

    box = attention_explorer(embed_dim=256, num_heads=8, seq_len=64)
    controls, panes = box.children[0].children[0].children, box.children[0].children[1].children
    html = [c for c in panes if ATTENTION_CSS_CLASS in getattr(c, "_dom_classes", ())]
    assert len(html) == 1 and "head_dim = 256 / 8 = 32" in html[0].value
    png = panes[-1].value
    assert png[:4] == b"\x89PNG"  # the figure, rendered to an Image widget
    slider = {c.description: c for c in controls if hasattr(c, "description")}["num_heads"]
    slider.value = 3  # invalid split: the line explains it instead of raising
    assert html[0].value.startswith("<b>⚠")
    slider.value = 4
    assert "head_dim = 256 / 4 = 64" in html[0].value and panes[-1].value != png
    assert box.explore().head_dim == 64
