"""The four RNN architectures of chapter 06 (helpers.models.seq2seq): shapes, counts, semantics."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import formulas
from helpers.counting import count_params
from helpers.models.seq2seq import AlignedManyToManyLSTM, EncoderDecoderLSTM, ManyToOneLSTM, OneToManyLSTM

dims = st.integers(1, 6)




@settings(max_examples=15)
@given(dims, dims, dims, dims, dims, st.integers(1, 3), st.booleans())
def test_shapes_and_counts(B, T, I, H, C, L, bidir):
    D = 2 if bidir else 1
    m = OneToManyLSTM(I, H, C, steps=T)
    assert m(torch.randn(B, I)).shape == (B, T, C)
    assert count_params(m) == formulas.rnn_params("LSTM", I, H) + formulas.linear_params(H, C)
    m = ManyToOneLSTM(I, H, C, num_layers=L, bidirectional=bidir)
    assert m(torch.randn(B, T, I)).shape == (B, C)
    assert count_params(m) == formulas.rnn_params("LSTM", I, H, L, bidirectional=bidir) + formulas.linear_params(D * H, C)
    m = AlignedManyToManyLSTM(I, H, C, num_layers=L, bidirectional=bidir)
    assert m(torch.randn(B, T, I)).shape == (B, T, C)
    assert count_params(m) == formulas.rnn_params("LSTM", I, H, L, bidirectional=bidir) + formulas.linear_params(D * H, C)
    m = EncoderDecoderLSTM(I, C, H, num_layers=L)
    assert m(torch.randn(B, T + 2, I), torch.randn(B, T, C)).shape == (B, T, C)
    assert count_params(m) == (formulas.rnn_params("LSTM", I, H, L) + formulas.rnn_params("LSTM", C, H, L)
                               + formulas.linear_params(H, C))


def test_many_to_one_uses_final_states_of_both_directions():
    torch.manual_seed(0)
    m = ManyToOneLSTM(3, 4, 2, num_layers=2, bidirectional=True)
    x = torch.randn(2, 5, 3)
    out, _ = m.lstm(x)                                          # (B, T, 2H)
    summary_vec = torch.cat([out[:, -1, :4], out[:, 0, 4:]], dim=1)   # forward ends at T−1, backward at 0
    torch.testing.assert_close(m(x), m.head(summary_vec))


def test_one_to_many_repeats_the_input():
    torch.manual_seed(0)
    m = OneToManyLSTM(3, 4, 2, steps=5)
    x = torch.randn(2, 3)
    out, _ = m.lstm(x[:, None].repeat(1, 5, 1))
    torch.testing.assert_close(m(x), m.head(out))


def test_decoder_depends_on_source_only_through_final_state():
    torch.manual_seed(0)
    m = EncoderDecoderLSTM(3, 2, 4, num_layers=2)
    src, tgt = torch.randn(1, 6, 3), torch.randn(1, 4, 2)
    _, state = m.encoder(src)
    out, _ = m.decoder(tgt, state)
    torch.testing.assert_close(m(src, tgt), m.head(out))
    # a different source changes the prediction (the state does carry information)
    assert not torch.allclose(m(src, tgt), m(torch.randn(1, 6, 3), tgt))
