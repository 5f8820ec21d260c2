"""Chapter 06 exercise questions: reference answers agree with real torch modules, and the
typical wrong answers (one bias vector, batch_first h_n, the 4/3 rule of thumb, …) are rejected."""

import random
import time

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from helpers.checks import run_cases
from helpers.checks.registry import get, make_cases, questions_for_chapter
from helpers.counting import count_params
from helpers.checks.verdict import probes

SEEDS = [0, 1]
QIDS = [q.id for q in questions_for_chapter("06")]




def cases_of(qid, seed):
    return make_cases(get(qid), random.Random(seed))


def all_correct(qid, fn, seed=0):
    q = get(qid)
    cases = cases_of(qid, seed)
    for (args, kwargs) in cases:
        expected = q.reference(*args, **kwargs)
        got = fn(*args, **kwargs)
        if [list(x) if isinstance(x, tuple) else x for x in (got if isinstance(got, tuple) else [got])] != \
           [list(x) if isinstance(x, tuple) else x for x in (expected if isinstance(expected, tuple) else [expected])]:
            return False
    return True


def test_at_least_four_questions():
    assert len(QIDS) >= 4





@pytest.mark.parametrize("seed", SEEDS)
def test_lstm_params_reference_is_torch(seed):
    q = get("06.lstm_params")
    for args, kwargs in cases_of(q.id, seed):
        assert q.reference(*args, **kwargs) == count_params(nn.LSTM(*args, **kwargs, device="meta"))


@pytest.mark.parametrize("seed", SEEDS)
def test_lstm_shapes_reference_is_a_real_forward(seed):
    q = get("06.lstm_shapes")
    for args, _ in cases_of(q.id, seed):
        batch, T, I, H, L, bidir, batch_first, proj = args
        lstm = nn.LSTM(I, H, L, batch_first=batch_first, bidirectional=bidir, proj_size=proj)
        out, (h, c) = lstm(torch.randn((batch, T, I) if batch_first else (T, batch, I)))
        assert q.reference(*args) == (tuple(out.shape), tuple(h.shape), tuple(c.shape))


@pytest.mark.parametrize("seed", SEEDS)
def test_budget_answers_are_tight(seed):
    q = get("06.largest_hidden_size")
    for (I, L, bidir, budget), _ in cases_of(q.id, seed):
        h = q.reference(I, L, bidir, budget)
        if h:
            assert count_params(nn.LSTM(I, h, L, bidirectional=bidir, device="meta")) <= budget
        assert count_params(nn.LSTM(I, h + 1, L, bidirectional=bidir, device="meta")) > budget


@pytest.mark.parametrize("seed", SEEDS)
def test_gru_matching_is_tight(seed):
    q = get("06.gru_matching_hidden_size")
    for (I, H, L), _ in cases_of(q.id, seed):
        g = q.reference(I, H, L)
        budget = count_params(nn.LSTM(I, H, L, device="meta"))
        assert count_params(nn.GRU(I, g, L, device="meta")) <= budget < count_params(nn.GRU(I, g + 1, L, device="meta"))


@pytest.mark.parametrize("seed", SEEDS)
def test_second_layer_input_size_makes_the_stack_run(seed):
    q = get("06.second_lstm_input_size")
    for (H, bidir, proj), _ in cases_of(q.id, seed)[:6]:
        first = nn.LSTM(3, H, batch_first=True, bidirectional=bidir, proj_size=proj)
        second = nn.LSTM(q.reference(H, bidir, proj), 4, batch_first=True)
        out, _ = first(torch.randn(2, 3, 3))
        second(out)                        # runs: the fixed input_size is right
        if q.reference(H, bidir, proj) != H:
            with pytest.raises(RuntimeError):
                nn.LSTM(H, 4, batch_first=True)(out)   # the student's bug


@pytest.mark.parametrize("seed", SEEDS)
def test_packed_batch_sizes_reference(seed):
    q = get("06.packed_batch_sizes")
    for (lengths,), _ in cases_of(q.id, seed):
        x = torch.randn(len(lengths), max(lengths), 2)
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        assert q.reference(lengths) == packed.batch_sizes.tolist()
        assert sum(q.reference(lengths)) == packed.data.shape[0] == sum(lengths)


def test_typical_wrong_answers_fail():
    def one_bias(I, H, num_layers=1, bias=True, bidirectional=False):
        D = 2 if bidirectional else 1
        return sum(D * 4 * (H * (I if k == 0 else D * H) + H * H + (H if bias else 0)) for k in range(num_layers))

    def same_width_upper_layers(I, H, num_layers=1, bias=True, bidirectional=False):
        D = 2 if bidirectional else 1
        return sum(D * 4 * (H * (I if k == 0 else H) + H * H + (2 * H if bias else 0)) for k in range(num_layers))

    def hn_batch_first(batch, T, I, H, L, bidir, batch_first, proj):
        D, H_r = 2 if bidir else 1, proj or H
        out = (batch, T, D * H_r) if batch_first else (T, batch, D * H_r)
        state = (batch, D * L) if batch_first else (D * L, batch)
        return out, (*state, H_r), (*state, H)

    def four_thirds(I, H, L):
        return (4 * H) // 3

    assert not all_correct("06.lstm_params", one_bias)
    assert not all_correct("06.lstm_params", same_width_upper_layers)
    assert not all_correct("06.lstm_shapes", hn_batch_first)
    assert not all_correct("06.gru_matching_hidden_size", four_thirds)
    assert not all_correct("06.second_lstm_input_size", lambda H, bidir, proj: 2 * H if bidir else H)
    assert not all_correct("06.packed_batch_sizes", lambda lengths: sorted(lengths, reverse=True))


def test_run_cases_accepts_the_reference_itself():
    for qid in QIDS:
        q = get(qid)
        cases = cases_of(qid, 3)
        outcomes = run_cases(q.reference, cases, timeout=30, probes=probes(q, cases) if q.probe else None)
        assert len(outcomes) == len(cases_of(qid, 3))


@pytest.mark.parametrize("seed", SEEDS)
def test_recurrent_chain_reference_is_a_real_chained_forward(seed):
    q = get("06.recurrent_chain")
    for (B, T, I, layers), _ in cases_of(q.id, seed):
        x, total = torch.zeros(B, T, I), 0
        with torch.no_grad():
            for layer in layers:
                kwargs = {k: v for k, v in layer.items() if k not in ("mode", "hidden_size")}
                module = getattr(nn, layer["mode"])(x.shape[-1], layer["hidden_size"], batch_first=True, **kwargs)
                total += count_params(module)
                x = module(x)[0]
        assert q.reference(B, T, I, layers) == [tuple(x.shape), total]


def _chain_student(batch, seq_len, input_size, layers, project_next=True):
    features, total = input_size, 0
    for layer in layers:
        H, L, P = layer["hidden_size"], layer["num_layers"], layer.get("proj_size", 0)
        D, gates = (2 if layer["bidirectional"] else 1), {"RNN": 1, "GRU": 3, "LSTM": 4}[layer["mode"]]
        H_r = P or H
        for k in range(L):
            layer_in = features if k == 0 else D * H_r
            total += D * (gates * (H * layer_in + H * H_r + 2 * H) + P * H)
        features = D * (H_r if project_next else H)
    return [(batch, seq_len, features), total]


def test_recurrent_chain_right_passes_and_ignoring_proj_size_downstream_fails():
    assert all_correct("06.recurrent_chain", _chain_student)
    assert not all_correct("06.recurrent_chain", lambda *a: _chain_student(*a, project_next=False))
