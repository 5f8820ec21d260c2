"""helpers.models.embedding and nn.Embedding facts taught in chapter 07, against real torch."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from helpers.counting import count_buffers, count_params, param_table
from helpers.formulas import embedding_params, layernorm_params
from helpers.models import SinusoidalPositionalEncoding, TinyLM
from helpers.models.embedding import sinusoidal_table


@settings(max_examples=40, deadline=None)
@given(V=st.integers(1, 50), D=st.integers(1, 16), P=st.integers(1, 20), tie=st.booleans(),
       positional=st.sampled_from(["learned", "sinusoidal", None]))
def test_tinylm_counts(V: int, D: int, P: int, tie: bool, positional: str | None) -> None:
    model = TinyLM(V, D, max_len=P, tie_weights=tie, positional=positional)
    expected = (embedding_params(V, D) + (embedding_params(P, D) if positional == "learned" else 0)
                + layernorm_params(D) + (0 if tie else V * D))
    assert count_params(model) == expected == param_table(model).total
    assert model.tied is tie
    assert count_buffers(model) == (P * D if positional == "sinusoidal" else 0)
    naive_state_dict = sum(t.numel() for t in model.state_dict().values())
    assert naive_state_dict == expected + (V * D if tie else 0) + count_buffers(model)
    per_layer = sum(count_params(m) for m in model.children())
    assert per_layer == expected + (V * D if tie else 0)
    rows = {r.name: r for r in param_table(model)}
    assert ("lm_head.weight" in rows["tok_emb.weight"].tied_with) is tie
    idx = torch.randint(0, V, (2, min(P, 5)))
    assert model(idx).shape == (2, min(P, 5), V)


def test_tied_weight_receives_both_gradients() -> None:
    torch.manual_seed(0)
    model = TinyLM(11, 6, max_len=4, tie_weights=True)
    idx = torch.randint(0, 11, (3, 4))
    model(idx).sum().backward()
    tied_grad = model.tok_emb.weight.grad.clone()
    untied = TinyLM(11, 6, max_len=4, tie_weights=False)
    untied.load_state_dict({**model.state_dict()})
    untied(idx).sum().backward()
    torch.testing.assert_close(tied_grad, untied.tok_emb.weight.grad + untied.lm_head.weight.grad)


def test_too_long_and_bad_positional() -> None:
    with pytest.raises(ValueError):
        TinyLM(5, 4, max_len=3)(torch.zeros(1, 4, dtype=torch.long))
    with pytest.raises(ValueError):
        TinyLM(5, 4, positional="rotary")


@pytest.mark.parametrize("P,D", [(10, 8), (7, 5), (1, 1)])
def test_sinusoidal_table_matches_the_paper(P: int, D: int) -> None:
    table = sinusoidal_table(P, D)
    for p in range(P):
        for j in range(D):
            angle = p / 10000 ** ((j - j % 2) / D)
            assert table[p, j].item() == pytest.approx(math.sin(angle) if j % 2 == 0 else math.cos(angle), abs=1e-5)
    module = SinusoidalPositionalEncoding(P, D)
    assert count_params(module) == 0 and count_buffers(module) == P * D
    assert "pe" in module.state_dict()


@settings(max_examples=30, deadline=None)
@given(V=st.integers(1, 30), D=st.integers(1, 8), B=st.integers(1, 3), T=st.integers(1, 5),
       seed=st.integers(0, 1000))
def test_embedding_is_one_hot_times_weight(V: int, D: int, B: int, T: int, seed: int) -> None:
    torch.manual_seed(seed)
    emb = nn.Embedding(V, D)
    idx = torch.randint(0, V, (B, T))
    out = emb(idx)
    assert out.shape == (B, T, D)
    torch.testing.assert_close(out, F.one_hot(idx, V).float() @ emb.weight)
    assert count_params(emb) == embedding_params(V, D)


def test_padding_idx_row_is_zero_and_gets_no_gradient() -> None:
    emb = nn.Embedding(6, 3, padding_idx=0)
    assert torch.count_nonzero(emb.weight[0]) == 0
    assert count_params(emb) == embedding_params(6, 3, padding_idx=0) == 18
    emb(torch.tensor([[0, 1, 0, 2]])).sum().backward()
    assert torch.count_nonzero(emb.weight.grad[0]) == 0
    assert torch.count_nonzero(emb.weight.grad[1]) == 3


def test_max_norm_renormalises_looked_up_rows_in_place() -> None:
    torch.manual_seed(0)
    emb = nn.Embedding(5, 4, max_norm=1.0)
    with torch.no_grad():
        emb.weight.mul_(10)
    before = emb.weight.detach().clone()
    emb(torch.tensor([1, 3]))
    norms = emb.weight.detach().norm(dim=1)
    assert norms[1] <= 1.0 + 1e-5 and norms[3] <= 1.0 + 1e-5
    torch.testing.assert_close(emb.weight.detach()[[0, 2, 4]], before[[0, 2, 4]])  # untouched rows
    assert count_params(emb) == embedding_params(5, 4, max_norm=1.0) == 20
