"""Module answers of chapters 03–06 (03.fixed_pool_cnn, 04.fixed_conv_bn_block, 05.fixed_rnn_classifier,
06.fixed_bilstm_tagger): each reference against an independent build written out here with real torch
layers, the notebook's broken module and a plausible wrong fix failing with the right words, and the
repaired module passing ``check``."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn

from helpers.checks import check, checker_rng
from helpers.checks.module_answer import build_and_describe, describe_module
from helpers.checks.registry import get, make_cases
from helpers.checks.verdict import module_fault

POOL, BN, RNN, TAGGER = (get(q) for q in ("03.fixed_pool_cnn", "04.fixed_conv_bn_block",
                                         "05.fixed_rnn_classifier", "06.fixed_bilstm_tagger"))
sizes = st.integers(1, 24)


# --------------------------------------------------------------------------- the notebooks' modules, written out

class PoolCNN(nn.Module):
    """03: conv → ReLU → pool, twice, then fc; ``features`` is the fc's in_features, ``pools`` how many run."""

    def __init__(self, channels, features, classes, pools=2):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(features, classes)
        self.pools = pools

    def forward(self, x):
        x = self.pool(torch.relu(self.conv1(x)))
        x = torch.relu(self.conv2(x))
        if self.pools == 2:
            x = self.pool(x)
        return self.fc(x.flatten(1))


class ConvBN(nn.Module):
    """04: conv → norm → ReLU with the norm layer and the conv bias given."""

    def __init__(self, cin, cout, norm, bias):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=bias)
        self.bn = norm

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))


class RNNClassifier(nn.Module):
    """05: nn.RNN → the last step → Linear; ``batch_first`` and ``last`` ("[:, -1]" or "[-1]") given."""

    def __init__(self, i, h, k, batch_first=True, last="[:, -1]"):
        super().__init__()
        self.rnn = nn.RNN(i, h, batch_first=batch_first)
        self.fc = nn.Linear(h, k)
        self.last = last

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.fc(out[:, -1] if self.last == "[:, -1]" else out[-1])


class Tagger(nn.Module):
    """06: nn.LSTM(batch_first) → Linear per step."""

    def __init__(self, i, h, tags, bidirectional=True, head_in=None):
        super().__init__()
        self.lstm = nn.LSTM(i, h, batch_first=True, bidirectional=bidirectional)
        self.fc = nn.Linear(head_in or 2 * h, tags)

    def forward(self, x):
        return self.fc(self.lstm(x)[0])


def _assert_same(question, args, real):
    """The reference's description equals the real module's: shapes, count, output and values."""
    probe = question.probe(*args)
    want = build_and_describe(question.reference, args, {}, probe)
    assert want["parameters"] == [[n, list(p.shape)] for n, p in real.named_parameters()]
    assert want["count"] == sum(p.numel() for p in real.parameters())
    assert want["output"] == list(real(torch.zeros(probe["input"])).shape)
    assert describe_module(real, probe) == want  # same fixed weights → same values
    return want


# --------------------------------------------------------------------------- references == real torch

@settings(max_examples=5, deadline=None)
@given(st.sampled_from([1, 3]), st.integers(4, 40), st.integers(4, 40), st.integers(2, 20))
def test_fixed_pool_cnn_reference_is_the_real_two_pool_cnn(c, h, w, k):
    probe_net = PoolCNN(c, 1, k)
    x = probe_net.pool(torch.relu(probe_net.conv1(torch.zeros(2, c, h, w))))
    x = probe_net.pool(torch.relu(probe_net.conv2(x)))
    want = _assert_same(POOL, (c, h, w, k), PoolCNN(c, x.flatten(1).shape[1], k))  # features from torch's map
    assert want["output"] == [2, k]


@settings(max_examples=5, deadline=None)
@given(sizes, sizes)
def test_fixed_conv_bn_block_reference_is_conv_without_bias_then_batchnorm(cin, cout):
    real = ConvBN(cin, cout, nn.BatchNorm2d(cout), bias=False)
    want = _assert_same(BN, (cin, cout), real)
    with_bias = ConvBN(cin, cout, nn.BatchNorm2d(cout), bias=True)
    assert sum(p.numel() for p in with_bias.parameters()) - want["count"] == cout  # the dropped bias


@settings(max_examples=5, deadline=None)
@given(sizes, sizes, st.integers(2, 20))
def test_fixed_rnn_classifier_reference_reads_time_on_axis_1(i, h, k):
    _assert_same(RNN, (i, h, k), RNNClassifier(i, h, k))
    probe = RNN.probe(i, h, k)
    assert probe["input"][0] != probe["input"][1]  # B ≠ T: a batch/time mix-up is visible


@settings(max_examples=5, deadline=None)
@given(sizes, sizes, st.integers(2, 20))
def test_fixed_bilstm_tagger_reference_is_bidirectional_with_a_2h_head(i, h, tags):
    want = _assert_same(TAGGER, (i, h, tags), Tagger(i, h, tags))
    assert want["output"] == TAGGER.probe(i, h, tags)["input"][:2] + [tags]


# --------------------------------------------------------------------------- verdicts

def _repaired_pool(c, h, w, k):
    return PoolCNN(c, 16 * ((h // 2) // 2) * ((w // 2) // 2), k)


def test_the_repaired_modules_pass(capsys):
    assert check("03.fixed_pool_cnn", _repaired_pool)
    assert check("04.fixed_conv_bn_block", lambda i, o: ConvBN(i, o, nn.BatchNorm2d(o), bias=False))
    assert check("05.fixed_rnn_classifier", RNNClassifier)
    assert check("06.fixed_bilstm_tagger", Tagger)


@pytest.mark.parametrize("question, answer, words", [
    # the notebooks' broken modules
    ("03.fixed_pool_cnn", lambda c, h, w, k: PoolCNN(c, 16 * (h // 2) * (w // 2), k),
     "parameter fc.weight has shape"),
    ("04.fixed_conv_bn_block", lambda i, o: ConvBN(i, o, nn.BatchNorm2d(i), bias=True), "(conv.bias should not be there)"),
    ("05.fixed_rnn_classifier", lambda i, h, k: RNNClassifier(i, h, k, batch_first=False),
     "on fixed weights its forward gives different values"),
    ("06.fixed_bilstm_tagger", lambda i, h, t: Tagger(i, h, t, head_in=h), "parameter fc.weight has shape"),
    # plausible wrong fixes
    ("03.fixed_pool_cnn", lambda c, h, w, k: PoolCNN(c, 16 * (h // 2) * (w // 2), k, pools=1),
     "parameter fc.weight has shape"),
    ("03.fixed_pool_cnn", lambda c, h, w, k: PoolCNN(c, 16 * round(h * w / 16), k),
     "parameter fc.weight has shape"),
    ("04.fixed_conv_bn_block", lambda i, o: ConvBN(i, o, nn.BatchNorm2d(o), bias=True), "conv.bias"),
    ("04.fixed_conv_bn_block", lambda i, o: ConvBN(i, o, nn.BatchNorm1d(o), bias=False), "fails"),
    ("05.fixed_rnn_classifier", lambda i, h, k: RNNClassifier(i, h, k, last="[-1]"), "gives shape (5, "),
    ("06.fixed_bilstm_tagger", lambda i, h, t: Tagger(i, h, t, bidirectional=False, head_in=h),
     "missing lstm.weight_ih_l0_reverse"),
])
def test_broken_modules_and_wrong_fixes_fail_on_every_case(capsys, question, answer, words):
    result = check(question, answer)
    out = capsys.readouterr().out
    assert result.status == "wrong" and words in out, out
    assert "Traceback" not in out and "Hint:" in out
    q = get(question)
    for args, kwargs in make_cases(q, checker_rng(q.id)):  # every case, not just the first shown
        probe = q.probe(*args, **kwargs)
        want = build_and_describe(q.reference, args, kwargs, probe)
        assert module_fault(want, build_and_describe(answer, args, kwargs, probe)) is not None, args


def test_the_broken_rnn_has_the_right_shape_and_wrong_values():
    torch.manual_seed(0)
    x = torch.randn(3, 5, 4)  # (B, T, I), B ≠ T
    right = RNNClassifier(4, 6, 2)
    wrong = RNNClassifier(4, 6, 2, batch_first=False)
    wrong.load_state_dict(right.state_dict())
    assert right(x).shape == wrong(x).shape == (3, 2)
    assert not torch.allclose(right(x), wrong(x))


def test_sequence_model_cases_cover_small_and_large_sizes():
    import random

    from helpers.checks._gen import sequence_model_cases

    cases = sequence_model_cases(random.Random(0), 200, max_size=64, max_outputs=20)
    sizes = [s for (i, h, _), _ in cases for s in (i, h)]
    assert len(cases) == 200 and min(sizes) == 1 and max(sizes) == 64
    assert {k for (_, _, k), _ in cases} == set(range(2, 21)) and all(kw == {} for _, kw in cases)
