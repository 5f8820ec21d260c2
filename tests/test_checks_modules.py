"""Questions whose answer is an ``nn.Module`` (01.fixed_mlp, 02.fixed_cnn): the description of
:mod:`helpers.checks.module_answer` against real torch, the verdicts on wrong modules, and the
sandboxed grader on a module that loops or allocates in ``__init__``."""

from __future__ import annotations

import copy
import csv
import random
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn

from helpers import grade as grader
from helpers.checks import check, checker_rng
from tests._feedback import assert_friendly_failure
from tests._grader_fixtures import sharing
from helpers.checks.module_answer import VALUES_MAX_PARAMS, build_and_describe, describe_module, module_summary
from helpers.checks.protocol import run_cases
from helpers.checks.registry import get, make_cases
from helpers.grading.overview import question_patterns
from helpers.checks.verdict import judge, module_difference, module_fault, probes, reference_answers
from helpers.grading.run import kernel_python
from helpers.grading.sandbox import unavailable_reason
from tests.grade_submissions import base_submission, set_source, write_submissions

MLP, CNN = get("01.fixed_mlp"), get("02.fixed_cnn")


class BrokenMLP(nn.Module):  # the notebook's broken module
    def __init__(self, in_features, hidden, out_features, relu=True):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden)
        self.fc2 = nn.Linear(in_features, out_features)
        self.relu = relu

    def forward(self, x):
        h = self.fc1(x)
        return self.fc2(torch.relu(h) if self.relu else h)


def repaired_mlp(in_features, hidden, out_features, relu=True):
    model = BrokenMLP(in_features, hidden, out_features, relu)
    model.fc2 = nn.Linear(hidden, out_features)
    return model


class BrokenCNN(nn.Module):
    def __init__(self, channels, height, width, classes):
        super().__init__()
        self.conv = nn.Conv2d(channels, 8, kernel_size=5)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(8 * (height - 4) * (width - 4), classes)

    def forward(self, x):
        return self.fc(self.pool(torch.relu(self.conv(x))).flatten(1))


# --------------------------------------------------------------------------- references == real torch

@settings(max_examples=8, deadline=None)
@given(st.integers(1, 64), st.integers(1, 64), st.integers(1, 16))
def test_fixed_mlp_reference_is_the_real_module(fin, hidden, fout):
    want = build_and_describe(MLP.reference, (fin, hidden, fout), {}, MLP.probe(fin, hidden, fout))
    real = repaired_mlp(fin, hidden, fout)  # on the CPU: an independent build and forward
    assert want["parameters"] == [[n, list(p.shape)] for n, p in real.named_parameters()]
    assert want["count"] == sum(p.numel() for p in real.parameters())
    assert want["output"] == list(real(torch.zeros(want["input"])).shape) == [3, fout]
    assert describe_module(real, MLP.probe(fin, hidden, fout)) == want  # same fixed weights → same values


@settings(max_examples=8, deadline=None)
@given(st.sampled_from([1, 3]), st.integers(6, 40), st.integers(6, 40), st.integers(2, 20))
def test_fixed_cnn_reference_fc_matches_the_real_feature_map(c, h, w, k):
    want = build_and_describe(CNN.reference, (c, h, w, k), {}, CNN.probe(c, h, w, k))
    broken = BrokenCNN(c, h, w, k)
    features = broken.pool(torch.relu(broken.conv(torch.zeros(2, c, h, w)))).flatten(1).shape[1]
    assert dict(want["parameters"])["fc.weight"] == [k, features]
    assert want["output"] == [2, k] and "forward_error" not in want
    broken.fc = nn.Linear(features, k)
    assert describe_module(broken, CNN.probe(c, h, w, k)) == want


# --------------------------------------------------------------------------- verdicts

def test_the_repaired_modules_pass(capsys):
    assert check("01.fixed_mlp", repaired_mlp)
    assert check("02.fixed_cnn", lambda c, h, w, k: _fixed_cnn(c, h, w, k))


def _fixed_cnn(c, h, w, k):
    model = BrokenCNN(c, h, w, k)
    model.fc = nn.Linear(8 * ((h - 4) // 2) * ((w - 4) // 2), k)
    return model


@pytest.mark.parametrize("question, answer, status, words", [
    ("01.fixed_mlp", BrokenMLP, "wrong", "returned a module, but parameter fc2.weight has shape"),
    ("01.fixed_mlp", lambda i, h, o: repaired_mlp(i, h, o, relu=False), "wrong",
     "on fixed weights its forward gives different values"),
    ("01.fixed_mlp", lambda i, h, o: nn.Sequential(nn.Linear(i, h), nn.ReLU(), nn.Linear(h, o)), "wrong",
     "keep the original layer names"),
    ("01.fixed_mlp", lambda i, h, o: i * h + h, "wrong_type", "return the nn.Module itself"),
    ("01.fixed_mlp", lambda i, h, o: BrokenMLP, "wrong_type", "not its class"),
    ("02.fixed_cnn", BrokenCNN, "wrong", "parameter fc.weight has shape"),
])
def test_a_wrong_module_gets_friendly_feedback(capsys, question, answer, status, words):
    assert_friendly_failure(capsys, question, answer, status, words)


def test_a_module_whose_forward_still_fails_is_named_with_its_error():
    class Half(nn.Module):  # right parameters, forward multiplies the wrong tensors
        def __init__(self, i, h, o):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(i, h), nn.Linear(h, o)

        def forward(self, x):
            return self.fc2(x)

    cases = [((5, 7, 2), {})]
    outcomes = run_cases(Half, cases, 5.0, probes=probes(MLP, cases))
    verdict = judge(MLP, cases, outcomes, reference_answers(MLP, cases))
    assert verdict.status == "wrong"
    assert "its forward on an input of shape (3, 5) fails: RuntimeError" in verdict.message


def test_a_huge_module_is_described_on_meta_and_refused_for_values():
    cases = [((100_000, 100_000, 2), {})]  # 10^10 parameters: free on the meta device
    out = run_cases(repaired_mlp, cases, 5.0, probes=probes(MLP, cases))[0]
    assert out["raised"] == "ValueError" and f"at most {VALUES_MAX_PARAMS:,}" in out["message"]


def test_an_init_that_loops_forever_times_out():
    class Loops(nn.Module):
        def __init__(self, *sizes):
            super().__init__()
            while True:
                pass

    cases = make_cases(MLP, checker_rng(MLP.id))
    outcomes = run_cases(Loops, cases, 0.3, probes=probes(MLP, cases))
    assert outcomes == [{"timeout": 0.3}]
    assert judge(MLP, cases, outcomes).status == "timeout"


# --------------------------------------------------------------------------- modules the student designs

class Named(nn.Module):  # the same layers as nn.Sequential(Linear, ReLU, Linear), under other names
    def __init__(self, i, h, o):
        super().__init__()
        self.first, self.second = nn.Linear(i, h), nn.Linear(h, o)

    def forward(self, x):
        return self.second(torch.relu(self.first(x)))


@settings(max_examples=8, deadline=None)
@given(st.integers(1, 32), st.integers(1, 32), st.integers(1, 8))
def test_a_designed_module_is_compared_by_its_shapes_not_its_names(i, h, o):
    probe = {"input": [2, i], "names": False}
    want = describe_module(nn.Sequential(nn.Linear(i, h), nn.ReLU(), nn.Linear(h, o)), probe)
    assert "values" not in want and want["names"] is False
    assert module_difference(want, describe_module(Named(i, h, o), probe)) is None
    other = describe_module(nn.Sequential(nn.Linear(i, h + 1), nn.Linear(h + 1, o)), probe)
    assert f"no parameter of shape ({h}, {i})" in module_difference(want, other)
    assert module_fault(want, other) == "wrong parameter shapes"
    strict = {"input": [2, i]}  # without names=False the names count: Named is "missing layer 0.weight"
    assert module_fault(describe_module(nn.Sequential(nn.Linear(i, h), nn.ReLU(), nn.Linear(h, o)), strict),
                        describe_module(Named(i, h, o), strict)) == "missing layer (0.weight)"


@settings(max_examples=6, deadline=None)
@given(st.integers(2, 50), st.integers(1, 8), st.integers(1, 6))
def test_a_token_model_is_probed_with_integer_ids(vocab, d, t):
    model = nn.Sequential(nn.Embedding(vocab, d), nn.Linear(d, vocab))
    desc = describe_module(model, {"input": [2, t], "ids": vocab, "values": 4})
    assert desc["output"] == [2, t, vocab]
    g = torch.Generator().manual_seed(0)  # the documented recipe: parameters, then the ids
    for p in model.parameters():
        p.data = torch.rand(p.shape, generator=g) - 0.5
    ids = torch.randint(0, vocab, (2, t), generator=g)
    assert desc["values"] == pytest.approx(model(ids).reshape(-1)[:4].tolist())
    with pytest.raises(Exception):  # what the probe avoids: an Embedding refuses float input
        model(torch.rand(2, t))


def test_frozen_parameters_are_part_of_the_description():
    base = nn.Linear(6, 4)
    lora = nn.ModuleDict({"base": base, "a": nn.Linear(6, 2, bias=False), "b": nn.Linear(2, 4, bias=False)})
    lora.forward = lambda x: lora["base"](x) + lora["b"](lora["a"](x))
    probe = {"input": [3, 6]}
    unfrozen = describe_module(lora, probe)
    base.requires_grad_(False)
    frozen = describe_module(lora, probe)
    real = sum(p.numel() for p in lora.parameters() if p.requires_grad)
    assert (frozen["count"], frozen["trainable"], unfrozen["trainable"]) == (28 + 12 + 8, real, 28 + 12 + 8)
    assert module_fault(frozen, unfrozen) == "wrong parameters frozen"
    assert f"{unfrozen['trainable']} of its parameters are trainable" in module_difference(frozen, unfrozen)
    assert module_summary(frozen) == f"48 parameters ({real} trainable), output (3, 4)"


def test_a_wrong_module_verdict_summarises_expected_and_got():
    cases = [((5, 7, 2), {})]
    verdict = judge(MLP, cases, run_cases(BrokenMLP, cases, 5.0, probes=probes(MLP, cases)))
    real = repaired_mlp(5, 7, 2)
    assert verdict.expected == f"{sum(p.numel() for p in real.parameters())} parameters, output (3, 2)"
    assert verdict.got.startswith(f"{sum(p.numel() for p in BrokenMLP(5, 7, 2).parameters())} parameters, forward fails")


# --------------------------------------------------------------------------- the sandboxed grader

REASON = unavailable_reason(kernel_python())

_HEAD = "import torch\nfrom torch import nn\n\nclass BrokenMLP(nn.Module):\n    def __init__(self, *sizes):\n"
_MODULE_ATTACKS = {
    # the class the student repairs loops in __init__ / asks for 256 GiB on the CPU (meta is free)
    "module_loops": _HEAD + "        super().__init__()\n        while True:\n            pass\n",
    "module_allocates": _HEAD + "        super().__init__()\n        self.big = torch.zeros(2 ** 36, device='cpu')\n",
}
_MODULE_MISTAKES = {  # ex6-solution as students get it wrong: the class overview names each fault
    "not_repaired": "def fixed_mlp(in_features, hidden, out_features):\n"
                    "    return BrokenMLP(in_features, hidden, out_features)\n",
    "forgot_relu": "def fixed_mlp(in_features, hidden, out_features):\n"
                   "    model = BrokenMLP(in_features, hidden, out_features)\n"
                   "    model.fc2 = nn.Linear(hidden, out_features)\n"
                   "    model.forward = lambda x: model.fc2(model.fc1(x))\n"
                   "    return model\n",
}


@pytest.mark.skipif(REASON is not None, reason=f"no sandbox can be created here: {REASON}")
def test_the_sandboxed_grader_grades_module_answers(tmp_path, fork_servers):
    base = base_submission()  # the solution passes: tests/test_grade.py ("correct")
    cases = {}
    for name, source in _MODULE_ATTACKS.items():
        nb = copy.deepcopy(base)
        set_source(nb, "ex6-broken", source)
        cases[name] = nb
    for name, source in _MODULE_MISTAKES.items():
        nb = copy.deepcopy(base)
        set_source(nb, "ex6-solution", source)
        cases[name] = nb
    paths = write_submissions(tmp_path / "in", cases)
    out = tmp_path / "grades.csv"
    with sharing(fork_servers):  # the worker's warm fork servers (tests/_grader_fixtures.py), not two new ones
        batch = grader.grade_class(list(paths.values()), jobs=2, timeout=20, question_timeout=3, out=out,
                                   progress=False)
    patterns = question_patterns(batch)["01.fixed_mlp"]
    assert patterns["wrong parameter shape (fc2.weight)"] == 1 and patterns["right shapes, different forward"] == 1
    results = {Path(sub.submission).stem.split("01_")[-1]: {q.id: q for q in sub.questions} for sub in batch.reports}
    relu = results["forgot_relu"]["01.fixed_mlp"]
    # same count and output shape, only values differ: the feedback says so instead of two identical lines
    assert relu.got.startswith("same shapes and count; outputs differ on fixed weights (max |Δ| = ")
    assert " parameters, output (" in relu.expected
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    status = {(r["submission"].split("01_")[-1].removesuffix(".ipynb"), r["question"]): r for r in rows}
    assert status[("module_loops", "01.fixed_mlp")]["status"] == "timeout"
    allocates = status[("module_allocates", "01.fixed_mlp")]
    assert allocates["status"] == "memory", allocates
    for name in cases:  # the other questions are unharmed
        assert status[(name, "01.linear_params")]["status"] == "correct"
