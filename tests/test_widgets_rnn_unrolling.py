"""helpers.widgets.rnn_unrolling: the explorer's pure logic against real nn.RNN modules."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from torch import nn  # noqa: E402

from helpers.counting import count_params  # noqa: E402
from helpers.models.rnn import measure_saved_numel  # noqa: E402
from helpers.widgets.rnn_unrolling import OUTPUT_CSS_CLASS, draw_unrolled, explore_rnn, rnn_explorer  # noqa: E402


@settings(max_examples=30, deadline=None)
@given(T=st.integers(1, 6), B=st.integers(1, 4), I=st.integers(1, 5), H=st.integers(1, 5),
       L=st.integers(1, 3), bidirectional=st.booleans(), batch_first=st.booleans())
def test_shapes_and_params_match_torch(T: int, B: int, I: int, H: int, L: int,
                                       bidirectional: bool, batch_first: bool) -> None:
    e = explore_rnn(T, B, I, H, L, bidirectional, batch_first)
    assert e.ok
    rnn = nn.RNN(I, H, num_layers=L, bidirectional=bidirectional, batch_first=batch_first)
    x = torch.randn(*e.input_shape)
    out, h_n = rnn(x)
    assert e.output_shape == tuple(out.shape)
    assert e.h_n_shape == tuple(h_n.shape)
    assert e.params == count_params(rnn)
    if not batch_first:  # time-first input: the count is exact (see rnn_bptt_saved_numel)
        assert e.saved_numel == measure_saved_numel(rnn, x)


def test_truncated_window_memory_equals_a_short_sequence() -> None:
    rnn = nn.RNN(3, 8, num_layers=2)
    e = explore_rnn(seq_len=100, batch=4, input_size=3, hidden_size=8, num_layers=2, tbptt_k=10)
    assert e.tbptt_saved_numel == measure_saved_numel(rnn, torch.randn(10, 4, 3))
    assert e.tbptt_saved_numel < e.saved_numel
    assert explore_rnn(seq_len=5, tbptt_k=50).tbptt_k == 5  # clipped to T


def test_bytes_follow_dtype() -> None:
    full = explore_rnn(seq_len=10, batch=2, dtype="float32")
    half = explore_rnn(seq_len=10, batch=2, dtype="bfloat16")
    assert full.saved_bytes == 4 * full.saved_numel == 2 * half.saved_bytes


@pytest.mark.parametrize("kwargs", [dict(seq_len=0), dict(batch=-1), dict(hidden_size=0),
                                    dict(num_layers=0), dict(tbptt_k=0), dict(dtype="int3")])
def test_invalid_values_give_an_error_sentence(kwargs: dict) -> None:
    e = explore_rnn(**kwargs)
    assert not e.ok and e.output_text.startswith("⚠") and e.params is None
    if "hidden_size" in kwargs or "num_layers" in kwargs:
        with pytest.raises(ValueError):  # torch refuses the same configuration
            nn.RNN(3, kwargs.get("hidden_size", 4), num_layers=kwargs.get("num_layers", 1))


def test_draw_and_widget_build() -> None:
    import matplotlib.pyplot as plt

    for e in (explore_rnn(seq_len=20, num_layers=3, bidirectional=True, tbptt_k=4), explore_rnn(seq_len=0)):
        fig = draw_unrolled(e)
        assert fig.axes
        plt.close(fig)
    box = rnn_explorer(seq_len=7, hidden_size=5, bidirectional=True, num_layers=2)
    assert box.explore().output_shape == (7, 2, 10)
    classes = [c for child in box.children[0].children[1].children for c in child._dom_classes]
    assert OUTPUT_CSS_CLASS in classes
    plt.close("all")
