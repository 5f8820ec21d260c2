"""The torch-code questions of chapters 11, 13 and 14 (11.widest_mlp, 13.lora_linear,
14.fixed_basic_block): each reference against an independent build (plain torch layers written out
here, peft's LoraModel, Hugging Face's ResNetBasicLayer), the notebook's broken module and plausible
wrong fixes failing with the right words, and the solutions passing ``check``."""

from __future__ import annotations

import random
from collections import Counter

import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn

from helpers.checks import check
from tests._feedback import assert_friendly_failure
from helpers.checks.module_answer import build_and_describe, describe_module
from helpers.checks.registry import get, make_cases

WIDEST, LORA, BLOCK = get("11.widest_mlp"), get("13.lora_linear"), get("14.fixed_basic_block")
SEEDS = [0, 1]


def cases_of(question, seed):
    return make_cases(question, random.Random(seed))


def shapes(desc_or_module):
    if isinstance(desc_or_module, dict):
        return Counter(tuple(s) for _, s in desc_or_module["parameters"])
    return Counter(tuple(p.shape) for p in desc_or_module.parameters())


def assert_fails(capsys, question_id, answer, words):
    assert_friendly_failure(capsys, question_id, answer, "wrong", words)


# --------------------------------------------------------------------------- 11.widest_mlp

def mlp(fin, h, fout):
    return nn.Sequential(nn.Linear(fin, h), nn.ReLU(), nn.Linear(h, fout))


def meta_count(module_fn):
    with torch.device("meta"):
        return sum(p.numel() for p in module_fn().parameters())


@pytest.mark.parametrize("seed", SEEDS)
def test_widest_mlp_reference_is_the_largest_torch_mlp_under_the_budget(seed):
    for (fin, fout, budget), _ in cases_of(WIDEST, seed):
        want = build_and_describe(WIDEST.reference, (fin, fout, budget), {}, WIDEST.probe(fin, fout, budget))
        h = want["parameters"][0][1][0]  # the first Linear's weight is (h, in)
        assert meta_count(lambda: mlp(fin, h, fout)) == want["count"] <= budget < meta_count(lambda: mlp(fin, h + 1, fout))
        with torch.device("meta"):
            real = mlp(fin, h, fout)
        assert describe_module(real, WIDEST.probe(fin, fout, budget)) == want
        assert want["output"] == [3, fout] and want["names"] is False


@settings(max_examples=8, deadline=None)
@given(st.integers(1, 300), st.integers(1, 50), st.integers(1, 10 ** 6))
def test_widest_mlp_reference_on_random_budgets(fin, fout, budget):
    want = build_and_describe(WIDEST.reference, (fin, fout, budget), {}, {"input": [3, fin], "names": False})
    fits = [h for h in range(1, budget + 1) if meta_count(lambda: mlp(fin, h, fout)) <= budget] if budget < 200 else None
    h = want["parameters"][0][1][0] if want["parameters"][0][1] else 0
    if fits is not None and fits:  # small budgets: brute force over every width
        assert h == max(fits)
    if h:
        assert meta_count(lambda: mlp(fin, h, fout)) <= budget < meta_count(lambda: mlp(fin, h + 1, fout))


def widest_mlp(fin, fout, budget):
    return mlp(fin, (budget - fout) // (fin + fout + 1), fout)


def test_widest_mlp_solution_passes_and_off_by_one_widths_fail(capsys):
    assert check("11.widest_mlp", widest_mlp)
    assert_fails(capsys, "11.widest_mlp", lambda i, o, b: mlp(i, (b - o) // (i + o + 1) + 1, o), "parameter")
    assert_fails(capsys, "11.widest_mlp", lambda i, o, b: mlp(i, (b - o) // (i + o + 1) - 1, o), "parameter")
    assert_fails(capsys, "11.widest_mlp", lambda i, o, b: mlp(i, b // (i + o), o), "parameter")  # forgot the biases
    # the names are the student's: the same shapes under other names pass
    assert check("11.widest_mlp", lambda i, o, b: nn.Sequential(
        nn.Sequential(nn.Linear(i, (b - o) // (i + o + 1))), nn.ReLU(), nn.Linear((b - o) // (i + o + 1), o)))


# --------------------------------------------------------------------------- 13.lora_linear

class BrokenLoRALinear(nn.Module):  # the notebook's starting point
    def __init__(self, in_features, out_features, rank, alpha=16):
        super().__init__()
        self.base = nn.Linear(in_features, out_features)
        self.lora_A = nn.Linear(rank, out_features, bias=False)
        self.lora_B = nn.Linear(in_features, rank, bias=False)
        self.scaling = alpha / rank

    def forward(self, x):
        return self.base(x) + self.lora_B(self.lora_A(x)) * self.scaling


def lora_linear(fin, fout, r, *, freeze=True, alpha=16):
    model = BrokenLoRALinear(fin, fout, r, alpha)
    model.lora_A = nn.Linear(fin, r, bias=False)
    model.lora_B = nn.Linear(r, fout, bias=False)
    if freeze:
        model.base.requires_grad_(False)
    return model


def test_lora_linear_reference_equals_peft():
    peft = pytest.importorskip("peft")

    class One(nn.Module):
        def __init__(self, fin, fout):
            super().__init__()
            self.base = nn.Linear(fin, fout)

        def forward(self, x):
            return self.base(x)

    for (fin, fout, r), _ in cases_of(LORA, 0)[:4]:
        probe = LORA.probe(fin, fout, r)
        want = build_and_describe(LORA.reference, (fin, fout, r), {}, probe)
        model = peft.get_peft_model(One(fin, fout), peft.LoraConfig(r=r, lora_alpha=16, target_modules=["base"]))
        layer = model.base_model.model.base
        assert layer.scaling["default"] == 16 / r
        assert shapes(want) == shapes(model)
        assert want["count"] == sum(p.numel() for p in model.parameters())
        assert want["trainable"] == sum(p.numel() for p in model.parameters() if p.requires_grad) == r * (fin + fout)
        # peft's parameters come in the same order (base weight, bias, A, B): same fixed weights, same values
        got = describe_module(model.base_model.model, probe)
        assert [s for _, s in got["parameters"]] == [s for _, s in want["parameters"]]
        assert {k: got[k] for k in ("count", "output", "values")} == {k: want[k] for k in ("count", "output", "values")}


@settings(max_examples=8, deadline=None)
@given(st.integers(1, 64), st.integers(1, 64), st.integers(1, 16))
def test_lora_linear_reference_is_the_written_out_module(fin, fout, r):
    probe = LORA.probe(fin, fout, r)
    want = build_and_describe(LORA.reference, (fin, fout, r), {}, probe)
    real = lora_linear(fin, fout, r)
    assert want["parameters"] == [[n, list(p.shape)] for n, p in real.named_parameters()]
    assert want["trainable"] == r * (fin + fout) and want["count"] == fin * fout + fout + r * (fin + fout)
    assert want["output"] == list(real(torch.zeros(want["input"])).shape) == [3, 5, fout]
    assert describe_module(real, probe) == want


def test_lora_linear_solution_passes_and_wrong_fixes_fail(capsys):
    assert check("13.lora_linear", lora_linear)
    assert_fails(capsys, "13.lora_linear", BrokenLoRALinear, "parameter lora_A.weight has shape")
    assert_fails(capsys, "13.lora_linear", lambda i, o, r: lora_linear(i, o, r, freeze=False),
                 "of its parameters are trainable")
    assert_fails(capsys, "13.lora_linear", lambda i, o, r: lora_linear(i, o, r, alpha=r),  # no scaling
                 "on fixed weights its forward gives different values")


# --------------------------------------------------------------------------- 14.fixed_basic_block

class BrokenBasicBlock(nn.Module):  # the notebook's starting point: no projection shortcut
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


def fixed_block(cin, cout, stride, *, always=False):
    block = BrokenBasicBlock(cin, cout, stride)
    if always or stride != 1 or cin != cout:
        block.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
    return block


@settings(max_examples=8, deadline=None)
@given(st.integers(1, 32), st.integers(1, 32), st.sampled_from([1, 2]))
def test_fixed_basic_block_reference_is_the_written_out_block(cin, cout, stride):
    probe = BLOCK.probe(cin, cout, stride)
    want = build_and_describe(BLOCK.reference, (cin, cout, stride), {}, probe)
    real = fixed_block(cin, cout, stride).eval()
    assert want["parameters"] == [[n, list(p.shape)] for n, p in real.named_parameters()]
    side = (6 + 2 - 3) // stride + 1
    assert want["output"] == list(real(torch.zeros(want["input"])).shape) == [2, cout, side, side]
    assert describe_module(real, probe) == want


@pytest.mark.parametrize("seed", SEEDS)
def test_fixed_basic_block_reference_has_hugging_faces_shapes(seed):
    hf_resnet = pytest.importorskip("transformers.models.resnet.modeling_resnet")
    cases = cases_of(BLOCK, seed)
    assert any(cin == cout and s == 1 for (cin, cout, s), _ in cases)  # identity cases
    assert any(s == 2 for (cin, cout, s), _ in cases) and any(s == 1 and cin != cout for (cin, cout, s), _ in cases)
    for (cin, cout, stride), _ in cases:
        want = build_and_describe(BLOCK.reference, (cin, cout, stride), {}, BLOCK.probe(cin, cout, stride))
        with torch.device("meta"):
            layer = hf_resnet.ResNetBasicLayer(cin, cout, stride=stride)
        assert shapes(want) == shapes(layer)
        assert want["count"] == sum(p.numel() for p in layer.parameters())


def test_fixed_basic_block_solution_passes_and_wrong_fixes_fail(capsys):
    assert check("14.fixed_basic_block", fixed_block)
    assert_fails(capsys, "14.fixed_basic_block", BrokenBasicBlock, "missing downsample.0.weight")
    assert_fails(capsys, "14.fixed_basic_block", lambda i, o, s: fixed_block(i, o, s, always=True),
                 "downsample.0.weight should not be there")
