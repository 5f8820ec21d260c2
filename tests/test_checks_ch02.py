"""Chapter 02 questions: every reference answer agrees with real torch modules, and cases are valid."""

import random
import warnings

import pytest
import torch
from torch import nn

from helpers.checks import checker_rng
from helpers.checks.registry import get, questions_for_chapter
from helpers.counting import count_params

CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}


def _cases(qid, seed=None):
    q = get(qid)
    return q, q.cases(checker_rng(qid) if seed is None else random.Random(seed))


def test_chapter_has_at_least_four_questions():
    assert len(questions_for_chapter("02")) >= 4


@pytest.mark.parametrize("seed", [None, 1, 2])
def test_conv_params_reference_matches_torch(seed):
    q, cases = _cases("02.conv_params", seed)
    for (cin, cout, k), kw in cases:
        dim = 2 if isinstance(k, int) else len(k)
        layer = CONV[dim](cin, cout, k, device="meta", **kw)
        assert q.reference(cin, cout, k, **kw) == count_params(layer)


@pytest.mark.parametrize("seed", [None, 1, 2])
def test_conv_output_shape_reference_matches_torch(seed):
    q, cases = _cases("02.conv_output_shape", seed)
    for (shape, cout, k), kw in cases:
        layer = nn.Conv2d(shape[1], cout, k, device="meta", **kw)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # 'same' with an even kernel warns about a padded copy
            out = layer(torch.empty(shape, device="meta"))
        assert q.reference(shape, cout, k, **kw) == tuple(out.shape)


@pytest.mark.parametrize("seed", [None, 1, 2])
def test_same_padding_reference_keeps_the_size_in_torch(seed):
    q, cases = _cases("02.same_padding", seed)
    for (k,), kw in cases:
        p = q.reference(k, **kw)
        d = kw.get("dilation", 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            same = nn.Conv1d(1, 1, k, padding="same", dilation=d, device="meta")
        x = torch.empty(1, 1, 40, device="meta")
        assert nn.Conv1d(1, 1, k, padding=p, dilation=d, device="meta")(x).shape == same(x).shape == x.shape
        if p:  # and it is the smallest such padding
            assert nn.Conv1d(1, 1, k, padding=p - 1, dilation=d, device="meta")(x).shape != x.shape


@pytest.mark.parametrize("k, d", [(2, 1), (4, 3), (1, 1), (3, 2)])
def test_same_padding_reference_refuses_when_no_integer_padding_keeps_the_size(k, d):
    """d·(k − 1) odd: no padding p keeps a stride-1 conv's size in torch either (p − 1 shrinks it, p grows
    it), so the reference raises at once instead of searching forever (it used to: the class overview's
    variants call it on such cases and each burnt the variant's whole time limit)."""
    x = torch.empty(1, 1, 40, device="meta")
    keeps = [p for p in range(d * k + 1) if nn.Conv1d(1, 1, k, padding=p, dilation=d, device="meta")(x).shape == x.shape]
    if d * (k - 1) % 2:
        assert keeps == []
        with pytest.raises(ValueError, match="odd"):
            get("02.same_padding").reference(k, dilation=d)
    else:
        assert get("02.same_padding").reference(k, dilation=d) == keeps[0]


@pytest.mark.parametrize("seed", [None, 1, 2])
def test_max_out_channels_reference_is_the_largest_fitting(seed):
    q, cases = _cases("02.max_out_channels", seed)
    saw_zero = False
    for (cin, k, budget), kw in cases:
        g = kw.get("groups", 1)
        out = q.reference(cin, k, budget, **kw)
        assert out % g == 0
        if out:
            assert count_params(nn.Conv2d(cin, out, k, groups=g, device="meta")) <= budget
        else:
            saw_zero = True
        assert count_params(nn.Conv2d(cin, out + g, k, groups=g, device="meta")) > budget
    assert saw_zero or seed is not None


def _tiny_cnn(h, w, fc_in):
    return nn.Sequential(nn.Conv2d(1, 8, 5), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(fc_in, 10)).to("meta")


@pytest.mark.parametrize("seed", [None, 1, 2])
def test_tiny_cnn_reference_runs_in_torch(seed):
    q, cases = _cases("02.tiny_cnn_fc_in_features", seed)
    for (h, w), _ in cases:
        fc_in = q.reference(h, w)
        assert tuple(_tiny_cnn(h, w, fc_in)(torch.empty(2, 1, h, w, device="meta")).shape) == (2, 10)


def test_the_bug_is_real_for_28x28():
    """The exercise's buggy model (16*5*5) fails on a 28×28 input; the reference size works."""
    q = get("02.tiny_cnn_fc_in_features")
    with pytest.raises(RuntimeError):
        _tiny_cnn(28, 28, 16 * 5 * 5)(torch.empty(2, 1, 28, 28, device="meta"))
    assert q.reference(28, 28) != 16 * 5 * 5
