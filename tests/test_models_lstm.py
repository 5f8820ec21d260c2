"""From-scratch LSTM/GRU (helpers.models.lstm) == nn.LSTM / nn.GRU given the same weights.

Random small configurations (hypothesis): input_size, hidden_size, num_layers, bidirectional,
batch_first, bias, proj_size, with and without an initial state. Every comparison is against
the real torch module; the scratch modules load torch's state_dict, so parameter names and
shapes must match exactly for the test even to start.
"""


import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from helpers.counting import count_params
from helpers.formulas import rnn_params
from helpers.models.lstm import GRUCellScratch, GRUScratch, LSTMCellScratch, LSTMScratch

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")

small = st.integers(1, 6)




@st.composite
def configs(draw, lstm: bool):
    hidden = draw(st.integers(1, 6))
    cfg = dict(input_size=draw(small), hidden_size=hidden, num_layers=draw(st.integers(1, 3)),
               bias=draw(st.booleans()), batch_first=draw(st.booleans()),
               bidirectional=draw(st.booleans()))
    if lstm and hidden > 1 and draw(st.booleans()):
        cfg["proj_size"] = draw(st.integers(1, hidden - 1))
    return cfg, draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.booleans()), draw(st.integers(0, 2**16))


def _pair(torch_cls, scratch_cls, cfg, seed):
    torch.manual_seed(seed)
    ref = torch_cls(**cfg)
    mine = scratch_cls(**cfg)
    mine.load_state_dict(ref.state_dict())          # strict: same names, same shapes
    return ref, mine


@settings(max_examples=40)
@given(configs(lstm=True))
def test_lstm_scratch_matches_torch(args):
    cfg, batch, seq_len, with_state, seed = args
    ref, mine = _pair(nn.LSTM, LSTMScratch, cfg, seed)
    assert [(n, p.shape) for n, p in ref.named_parameters()] == [(n, p.shape) for n, p in mine.named_parameters()]
    assert count_params(mine) == count_params(ref) == rnn_params("LSTM", **cfg)
    x = torch.randn((batch, seq_len, cfg["input_size"]) if cfg["batch_first"] else (seq_len, batch, cfg["input_size"]))
    hx = None
    if with_state:
        D = 2 if cfg["bidirectional"] else 1
        h_r = cfg.get("proj_size") or cfg["hidden_size"]
        hx = (torch.randn(D * cfg["num_layers"], batch, h_r), torch.randn(D * cfg["num_layers"], batch, cfg["hidden_size"]))
    out_ref, (h_ref, c_ref) = ref(x, hx)
    out, (h, c) = mine(x, hx)
    torch.testing.assert_close(out, out_ref)
    torch.testing.assert_close(h, h_ref)
    torch.testing.assert_close(c, c_ref)


@settings(max_examples=40)
@given(configs(lstm=False))
def test_gru_scratch_matches_torch(args):
    cfg, batch, seq_len, with_state, seed = args
    ref, mine = _pair(nn.GRU, GRUScratch, cfg, seed)
    assert count_params(mine) == count_params(ref) == rnn_params("GRU", **cfg)
    x = torch.randn((batch, seq_len, cfg["input_size"]) if cfg["batch_first"] else (seq_len, batch, cfg["input_size"]))
    D = 2 if cfg["bidirectional"] else 1
    hx = torch.randn(D * cfg["num_layers"], batch, cfg["hidden_size"]) if with_state else None
    out_ref, h_ref = ref(x, hx)
    out, h = mine(x, hx)
    torch.testing.assert_close(out, out_ref)
    torch.testing.assert_close(h, h_ref)


def test_gradients_match_torch():
    """Backward through the scratch LSTM gives torch's parameter gradients (2 layers, bidirectional)."""
    ref, mine = _pair(nn.LSTM, LSTMScratch, dict(input_size=3, hidden_size=4, num_layers=2, bidirectional=True), 0)
    x = torch.randn(5, 2, 3)
    ref(x)[0].square().sum().backward()
    mine(x)[0].square().sum().backward()
    for (name, p_ref), (_, p) in zip(ref.named_parameters(), mine.named_parameters()):
        torch.testing.assert_close(p.grad, p_ref.grad, msg=name)


@settings(max_examples=30)
@given(small, st.integers(2, 6), st.booleans(), st.integers(0, 2**16))
def test_cells_match_torch_cells(input_size, hidden_size, bias, seed):
    x = torch.randn(3, input_size)
    ref, mine = _pair(nn.LSTMCell, LSTMCellScratch, dict(input_size=input_size, hidden_size=hidden_size, bias=bias), seed)
    hx = (torch.randn(3, hidden_size), torch.randn(3, hidden_size))
    for a, b in zip(ref(x, hx), mine(x, hx)):
        torch.testing.assert_close(b, a)
    ref, mine = _pair(nn.GRUCell, GRUCellScratch, dict(input_size=input_size, hidden_size=hidden_size, bias=bias), seed)
    h = torch.randn(3, hidden_size)
    torch.testing.assert_close(mine(x, h), ref(x, h))
    torch.testing.assert_close(mine(x), ref(x))


def test_gate_order_is_torchs():
    """Zeroing every weight but setting one bias block shows which block is which gate (i, f, g, o)."""
    cell = LSTMCellScratch(1, 1)
    ref = nn.LSTMCell(1, 1)
    with torch.no_grad():
        for p in (*cell.parameters(), *ref.parameters()):
            p.zero_()
        # large input-gate and cell-candidate biases, forget gate shut: c_t = i·g ≈ 1·tanh(10)
        for m in (cell, ref):
            m.bias_ih[:] = torch.tensor([10.0, -20.0, 10.0, 10.0])   # i, f, g, o
    x, h, c = torch.zeros(1, 1), torch.zeros(1, 1), torch.full((1, 1), 5.0)
    h1, c1 = cell(x, (h, c))
    torch.testing.assert_close((h1, c1), ref(x, (h, c)))
    assert abs(c1.item() - 1.0) < 1e-3  # old cell value 5 forgotten, new content ≈ 1 written


def test_proj_size_validation():
    with pytest.raises(ValueError):
        LSTMScratch(3, 4, proj_size=4)


def test_meta_device_shapes():
    """The scratch LSTM runs on the meta device (shape tracing) and gives torch's shapes."""
    cfg = dict(input_size=5, hidden_size=7, num_layers=2, bidirectional=True, proj_size=3, batch_first=True)
    out, (h, c) = LSTMScratch(**cfg, device="meta")(torch.empty(4, 6, 5, device="meta"))
    out_ref, (h_ref, c_ref) = nn.LSTM(**cfg)(torch.zeros(4, 6, 5))
    assert [t.shape for t in (out, h, c)] == [t.shape for t in (out_ref, h_ref, c_ref)]
