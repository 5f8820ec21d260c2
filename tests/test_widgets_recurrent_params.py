"""helpers.widgets.recurrent_params: the explorer's pure logic against real nn.RNN / nn.GRU / nn.LSTM."""

from __future__ import annotations

import doctest

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import helpers.widgets.recurrent_params as recurrent
from helpers.counting import count_params
from helpers.widgets.recurrent_params import OUTPUT_CSS_CLASS, explore_recurrent, recurrent_explorer

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")

CLASSES = {"RNN": nn.RNN, "GRU": nn.GRU, "LSTM": nn.LSTM}




@settings(max_examples=40)
@given(mode=st.sampled_from(list(CLASSES)), T=st.integers(1, 5), B=st.integers(1, 3), I=st.integers(1, 5),
       H=st.integers(1, 6), L=st.integers(1, 3), bidirectional=st.booleans(), batch_first=st.booleans(),
       bias=st.booleans(), proj=st.integers(0, 5))
def test_matches_torch(mode, T, B, I, H, L, bidirectional, batch_first, bias, proj):
    e = explore_recurrent(mode, T, B, I, H, L, bidirectional, batch_first, proj, bias)
    kwargs = dict(num_layers=L, bidirectional=bidirectional, batch_first=batch_first, bias=bias)
    if proj:
        kwargs["proj_size"] = proj
    try:
        module = CLASSES[mode](I, H, **kwargs)
    except ValueError:
        assert not e.ok and e.error          # invalid exactly where torch refuses
        return
    assert e.ok, e.error
    out, state = module(torch.randn(*e.input_shape))
    h_n, c_n = state if mode == "LSTM" else (state, None)
    assert e.output_shape == tuple(out.shape)
    assert e.h_n_shape == tuple(h_n.shape)
    assert e.c_n_shape == (tuple(c_n.shape) if c_n is not None else None)
    assert [(r.name, r.shape, r.numel) for r in e.rows] == \
        [(n, tuple(p.shape), p.numel()) for n, p in module.named_parameters()]
    assert e.params == count_params(module)
    for m, cls in CLASSES.items():
        assert e.params_by_mode[m] == count_params(cls(I, H, L, bias=bias, bidirectional=bidirectional, device="meta"))


def test_errors_are_sentences_not_exceptions():
    assert "only for nn.LSTM" in explore_recurrent("GRU", proj_size=2).error
    assert "smaller than hidden_size" in explore_recurrent("LSTM", hidden_size=4, proj_size=4).error
    assert explore_recurrent("TRANSFORMER").error
    assert explore_recurrent(seq_len=0).error
    assert explore_recurrent(hidden_size=0).error
    assert explore_recurrent(seq_len=0).output_text.startswith("⚠")


def test_docstring_example():
    assert doctest.testmod(recurrent).failed == 0


def test_widget_builds_and_updates():
    box = recurrent_explorer(mode="GRU", hidden_size=8, num_layers=2)
    assert box.explore().mode == "GRU" and box.explore().params == count_params(nn.GRU(10, 8, 2, device="meta"))
    html_widgets = [c for c in box.children[0].children[1].children]
    assert OUTPUT_CSS_CLASS in html_widgets[0]._dom_classes
    controls = box.children[0].children[0].children[1:]
    controls[0].value = "LSTM"                       # the mode toggle
    assert "c_n" in html_widgets[0].value and box.explore().mode == "LSTM"
