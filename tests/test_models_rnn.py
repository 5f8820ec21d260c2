"""helpers.models.rnn: the from-scratch RNN forward pass and BPTT against nn.RNN and autograd."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from helpers.counting import count_params
from helpers.formulas import linear_params, rnn_params
from helpers.models import SimpleRNN
from helpers.models.rnn import (measure_saved_numel, rnn_bptt_manual, rnn_bptt_saved_numel,
                                rnn_forward_manual, rnn_layer_forward)

small = st.integers(1, 5)
configs = st.fixed_dictionaries({
    "T": small, "B": small, "I": small, "H": small, "L": st.integers(1, 3),
    "bidirectional": st.booleans(), "batch_first": st.booleans(), "bias": st.booleans(),
    "nonlinearity": st.sampled_from(["tanh", "relu"]), "seed": st.integers(0, 2**16),
})


@settings(max_examples=40, deadline=None)
@given(configs)
def test_manual_forward_equals_nn_rnn(c: dict) -> None:
    torch.manual_seed(c["seed"])
    rnn = nn.RNN(c["I"], c["H"], num_layers=c["L"], nonlinearity=c["nonlinearity"], bias=c["bias"],
                 batch_first=c["batch_first"], bidirectional=c["bidirectional"]).double()
    D = 2 if c["bidirectional"] else 1
    x = torch.randn((c["B"], c["T"], c["I"]) if c["batch_first"] else (c["T"], c["B"], c["I"]),
                    dtype=torch.double)
    h0 = torch.randn(D * c["L"], c["B"], c["H"], dtype=torch.double)
    for args in ((x,), (x, h0)):
        out, h_n = rnn(*args)
        out_m, h_n_m = rnn_forward_manual(rnn, *args)
        torch.testing.assert_close(out_m, out)
        torch.testing.assert_close(h_n_m, h_n)


@settings(max_examples=40, deadline=None)
@given(configs)
def test_manual_bptt_equals_autograd(c: dict) -> None:
    torch.manual_seed(c["seed"])
    T, B, I, H = c["T"], c["B"], c["I"], c["H"]

    def leaf(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, dtype=torch.double, requires_grad=True)

    x, h0, W_ih, W_hh = leaf(T, B, I), leaf(B, H), leaf(H, I), leaf(H, H)
    b_ih, b_hh = (leaf(H), leaf(H)) if c["bias"] else (None, None)
    hs = rnn_layer_forward(x, h0, W_ih, W_hh, b_ih, b_hh, c["nonlinearity"])
    e = torch.randn(T, B, H, dtype=torch.double)
    e[torch.rand(T) < 0.5] = 0                      # some steps have no loss of their own
    (hs * e).sum().backward()                       # L = Σ_t <e_t, h_t>  ⇒  ∂ℓ_t/∂h_t = e_t
    grads = rnn_bptt_manual(x.detach(), h0.detach(), W_ih.detach(), W_hh.detach(),
                            None if b_ih is None else b_ih.detach(),
                            None if b_hh is None else b_hh.detach(), hs.detach(), e, c["nonlinearity"])
    leaves = {"x": x, "h0": h0, "W_ih": W_ih, "W_hh": W_hh}
    if c["bias"]:
        leaves.update(b_ih=b_ih, b_hh=b_hh)
    else:
        assert "b_ih" not in grads
    for name, tensor in leaves.items():
        torch.testing.assert_close(grads[name], tensor.grad, msg=name)


def test_total_hidden_gradient_matches_retain_grad() -> None:
    torch.manual_seed(0)
    T, B, I, H = 7, 2, 3, 4
    x, h0 = torch.randn(T, B, I), torch.zeros(B, H)
    W_ih, W_hh, b = torch.randn(H, I), torch.randn(H, H, requires_grad=True), torch.randn(H)
    h, hs = h0, []
    for t in range(T):
        h = torch.tanh(x[t] @ W_ih.T + h @ W_hh.T + b)
        h.retain_grad()
        hs.append(h)
    hs[-1].sum().backward()                         # many-to-one: only the last step has a loss
    e = torch.zeros(T, B, H)
    e[-1] = 1
    grads = rnn_bptt_manual(x, h0, W_ih, W_hh.detach(), b, b, torch.stack(hs).detach(), e)
    for t in range(T):
        torch.testing.assert_close(grads["dh"][t], hs[t].grad)


@settings(max_examples=25, deadline=None)
@given(T=small, B=small, I=small, H=small, L=st.integers(1, 3), bidirectional=st.booleans(),
       nonlinearity=st.sampled_from(["tanh", "relu"]))
def test_saved_activation_formula_equals_autograd(T: int, B: int, I: int, H: int, L: int,
                                                  bidirectional: bool, nonlinearity: str) -> None:
    rnn = nn.RNN(I, H, num_layers=L, bidirectional=bidirectional, nonlinearity=nonlinearity)
    measured = measure_saved_numel(rnn, torch.randn(T, B, I))
    assert measured == rnn_bptt_saved_numel(T, B, I, H, L, bidirectional)


def test_saved_activation_grows_linearly_in_time() -> None:
    rnn = nn.RNN(3, 8)
    sizes = [measure_saved_numel(rnn, torch.randn(T, 2, 3)) for T in (4, 8, 12)]
    assert sizes[1] - sizes[0] == sizes[2] - sizes[1] == 4 * 2 * (3 + 8)


@pytest.mark.parametrize("I,H,O,L", [(4, 8, 2, 1), (10, 32, 5, 2), (1, 1, 1, 3)])
def test_simple_rnn_params_and_shapes(I: int, H: int, O: int, L: int) -> None:
    model = SimpleRNN(I, H, O, num_layers=L)
    assert count_params(model) == rnn_params("RNN", I, H, L) + linear_params(H, O)
    x = torch.randn(3, 6, I)                        # batch_first: (B, T, I)
    assert model(x).shape == (3, O)
    out, h_n = model.rnn(x)
    torch.testing.assert_close(out[:, -1], h_n[-1])  # last output == top layer's h_n


def test_simple_rnn_rejects_unknown_nonlinearity() -> None:
    with pytest.raises(ValueError):
        SimpleRNN(2, 3, 1, nonlinearity="sigmoid")
    with pytest.raises(ValueError):
        rnn_bptt_manual(*(torch.zeros(1, 1, 1),) * 2, *(torch.zeros(1, 1),) * 2, None, None,
                        torch.zeros(1, 1, 1), torch.zeros(1, 1, 1), "sigmoid")
