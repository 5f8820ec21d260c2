"""helpers.course.diagrams: every shape a diagram shows is the shape of the real tensor.

The layouts are pure arithmetic; here each is compared with the real module on random small
configurations (hypothesis): nn.LSTMCell / nn.GRUCell (torch), the GPT block and the Mamba block
of helpers.models (themselves tested equal to nanoGPT-style / Hugging Face references), run on the
meta device. Invalid sizes must fail in the layout exactly where the module refuses them.
"""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from helpers.counting import count_params
from helpers.course.diagrams import (Arrow, Box, Diagram, draw_diagram, mamba_block_diagram, recurrent_cell_diagram,
                              shape_text, transformer_block_diagram)
from helpers.models import MambaBlock
from helpers.models.gpt import GPTBlock, GPTConfig

small = st.integers(1, 9)


def _labels(diagram):
    return "\n".join(diagram.texts())


@settings(max_examples=25, deadline=None)
@given(small, small, st.integers(1, 4), st.sampled_from(["LSTM", "GRU"]))
def test_recurrent_cell_shapes_are_torchs(input_size, hidden_size, batch, mode):
    cell = (nn.LSTMCell if mode == "LSTM" else nn.GRUCell)(input_size, hidden_size)
    x = torch.randn(batch, input_size)
    out = cell(x)
    h = out[0] if mode == "LSTM" else out
    d = recurrent_cell_diagram(input_size, hidden_size, batch, mode)
    text = _labels(d)
    assert f"W_ih {shape_text(*cell.weight_ih.shape)}" in text
    assert f"W_hh {shape_text(*cell.weight_hh.shape)}" in text
    assert shape_text(*h.shape) in d.box("h").label
    assert f"= {count_params(cell):,}" in text
    if mode == "LSTM":
        assert shape_text(*out[1].shape) in d.box("c").label


def test_recurrent_cell_rejects_what_torch_rejects():
    with pytest.raises(ValueError, match="mode"):
        recurrent_cell_diagram(3, 4, mode="RNN")
    with pytest.raises(ValueError):
        recurrent_cell_diagram(3, 0)


@settings(max_examples=8, deadline=None)
@given(st.integers(1, 4), st.integers(1, 6), st.integers(1, 12), st.integers(1, 3))
def test_transformer_block_shapes_are_the_models(n_head, head_size, seq_len, batch):
    n_embd = n_head * head_size
    with torch.device("meta"):
        block = GPTBlock(GPTConfig(n_embd=n_embd, n_head=n_head, block_size=16, vocab_size=8))
        seen = {}

        def keep(name):
            def hook(module, args, output):
                seen[name] = output.shape                  # returns None: the output is unchanged
            return hook

        block.attn.c_attn.register_forward_hook(keep("qkv"))
        block.mlp.c_fc.register_forward_hook(keep("fc"))
        y = block(torch.empty(batch, seq_len, n_embd))
    d = transformer_block_diagram(batch, seq_len, n_embd, n_head, params=count_params(block))
    text = _labels(d)
    assert f"weight {shape_text(*block.attn.c_attn.weight.shape)}" in text
    assert shape_text(*seen["qkv"]) in text and shape_text(*seen["fc"]) in text
    assert shape_text(batch, n_head, seq_len, seq_len) in text           # the score matrix
    assert shape_text(*y.shape) in d.box("add2").label
    assert f"{count_params(block):,}" in text


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 4), st.integers(2, 5))
def test_transformer_block_rejects_what_the_model_rejects(n_head, n_embd):
    if n_embd % n_head == 0:
        n_embd += 1 if n_head > 1 else 0
    if n_head == 1:
        return                                             # every width is divisible by 1 head
    with pytest.raises(ValueError):
        GPTBlock(GPTConfig(n_embd=n_embd, n_head=n_head))
    with pytest.raises(ValueError, match="divisible"):
        transformer_block_diagram(1, 4, n_embd, n_head)


@settings(max_examples=15, deadline=None)
@given(st.integers(2, 24), st.integers(1, 8), st.integers(2, 4), st.sampled_from([1, 2]), st.integers(1, 6))
def test_mamba_block_shapes_are_the_models(d_model, d_state, d_conv, expand, seq_len):
    with torch.device("meta"):
        block = MambaBlock(d_model, d_state=d_state, d_conv=d_conv, expand=expand)
        y = block(torch.empty(2, seq_len, d_model))
    d = mamba_block_diagram(2, seq_len, d_model, block.d_inner, d_state, d_conv, block.dt_rank,
                            params=count_params(block))
    text = _labels(d)
    for layer in (block.in_proj, block.x_proj, block.conv1d):
        assert f"weight {shape_text(*layer.weight.shape)}" in text
    assert f"A {shape_text(*block.A_log.shape)}" in text
    assert shape_text(*y.shape) in d.box("out").label
    assert f"{count_params(block):,}" in text


def test_diagram_validates_its_arrows_and_kinds():
    a, b = Box("a", "A", 0, 1), Box("b", "B", 0, 0)
    with pytest.raises(ValueError, match="names no box 'c'"):
        Diagram("t", (a, b), (Arrow("a", "c"),))
    with pytest.raises(ValueError, match="duplicate"):
        Diagram("t", (a, a), ())
    with pytest.raises(ValueError, match="kind"):
        Diagram("t", (Box("a", "A", 0, 0, kind="nope"),), ())


@pytest.mark.parametrize("diagram", [recurrent_cell_diagram(3, 5, 2), recurrent_cell_diagram(3, 5, 2, "GRU"),
                                     transformer_block_diagram(1, 8, 16, 4, params=123),
                                     mamba_block_diagram(1, 8, 16, 32, 4, 4, 1)])
def test_draw_writes_every_label(diagram):
    ax = draw_diagram(diagram)
    try:
        drawn = {t.get_text() for t in ax.texts} | {ax.get_title()}
        assert set(diagram.texts()) <= drawn
        assert len(ax.patches) == len(diagram.boxes)
    finally:
        plt.close(ax.figure)
