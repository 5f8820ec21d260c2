"""Chapter 03/04 exercise questions: every reference answer agrees with real torch modules.

The references in helpers/checks/ch03.py and ch04.py come from helpers' core; here each one is
compared, on the question's own randomised cases (two rng seeds), with a forward pass or count of the
torch module it describes — plus properties that make the questions worth asking (the ceil_mode rule
actually occurs among the pooling cases, the budget answers are tight).
"""

import math
import random

import pytest
import torch
from torch import nn

from helpers import formulas
from helpers.checks import check
from helpers.checks.registry import get, make_cases, questions_for_chapter
from helpers.counting import count_buffers, count_params
from tests._limits import binding_limit

SEEDS = [0, 1]


def cases_of(qid, seed):
    return make_cases(get(qid), random.Random(seed))








@pytest.mark.parametrize("seed", SEEDS)
def test_pool_output_size_reference_matches_maxpool1d(seed):
    q = get("03.pool_output_size")
    doc_formula_wrong = 0
    for (L, k), kw in cases_of(q.id, seed):
        layer = nn.MaxPool1d(k, kw.get("stride"), kw.get("padding", 0), kw.get("dilation", 1),
                             ceil_mode=kw.get("ceil_mode", False))
        size = layer(torch.zeros(1, 1, L)).shape[-1]
        assert q.reference(L, k, **kw) == size
        s, p, d = kw.get("stride") or k, kw.get("padding", 0), kw.get("dilation", 1)
        rounding = math.ceil if kw.get("ceil_mode") else math.floor
        doc_formula_wrong += rounding((L + 2 * p - d * (k - 1) - 1) / s) + 1 != size
    assert doc_formula_wrong >= 3  # the question really tests the rule the docs leave out


@pytest.mark.parametrize("seed", SEEDS)
def test_conv_pool_shape_reference_matches_forward(seed):
    q = get("03.conv_pool_shape")
    for (shape, layers), kw in cases_of(q.id, seed):
        mods, channels = [], shape[1]
        for layer in layers:
            args = {key: v for key, v in layer.items() if key != "layer"}
            if layer["layer"] == "Conv2d":
                mods.append(nn.Conv2d(channels, **args))
                channels = layer["out_channels"]
            else:
                mods.append(nn.MaxPool2d(**args))
        with torch.no_grad():
            out = nn.Sequential(*mods)(torch.zeros(1, *shape[1:]))
        assert q.reference(shape, layers) == (shape[0], *out.shape[1:])


@pytest.mark.parametrize("seed", SEEDS)
def test_head_params_reference(seed):
    q = get("03.head_params")
    for (C, H, W, K), kw in cases_of(q.id, seed):
        expected = formulas.linear_params(C if kw["gap"] else C * H * W, K)
        assert q.reference(C, H, W, K, **kw) == expected


@pytest.mark.parametrize("seed", SEEDS)
def test_max_map_size_reference_is_tight(seed):
    q = get("03.max_map_size")
    answers = []
    for (C, K, budget), _ in cases_of(q.id, seed):
        s = q.reference(C, K, budget)
        answers.append(s)
        head = lambda side: count_params(nn.Linear(C * side * side, K, device="meta"))  # noqa: E731
        assert s == 0 or head(s) <= budget
        assert head(s + 1) > budget
    assert 0 in answers and max(answers) > 1


@pytest.mark.parametrize("seed", SEEDS)
def test_fixed_fc1_reference_matches_simplenet(seed):
    from helpers.models import SimpleNet

    q = get("03.fixed_fc1_in_features")
    for (C, H, W), _ in cases_of(q.id, seed):
        model = SimpleNet(conv_channels=C, input_size=(H, W))
        assert q.reference(C, H, W) == model.fc1.in_features
        model(torch.zeros(2, 3, H, W))  # the fixed model runs


@pytest.mark.parametrize("seed", SEEDS)
def test_batchnorm_counts_reference(seed):
    q = get("04.batchnorm_counts")
    for (C,), kw in cases_of(q.id, seed):
        assert q.reference(C, **kw) == [formulas.batchnorm_params(C, **kw), formulas.batchnorm_buffers(C, **kw)]


@pytest.mark.parametrize("seed", SEEDS)
def test_norm_params_reference(seed):
    q = get("04.norm_params")
    expected = {"batch": lambda C, H, W, G: formulas.batchnorm_params(C),
                "layer": lambda C, H, W, G: formulas.layernorm_params((C, H, W)),
                "group": lambda C, H, W, G: formulas.groupnorm_params(G, C),
                "instance": lambda C, H, W, G: count_params(nn.InstanceNorm2d(C))}
    kinds = set()
    for (kind, C, H, W, G), _ in cases_of(q.id, seed):
        kinds.add(kind)
        assert q.reference(kind, C, H, W, G) == expected[kind](C, H, W, G)
    assert kinds == {"batch", "layer", "group", "instance"}
    assert count_params(nn.InstanceNorm2d(8)) == 0  # torch's default affine=False is the trap


@pytest.mark.parametrize("seed", SEEDS)
def test_dropout_stats_reference_matches_sampling(seed):
    q = get("04.dropout_stats")
    for (n, value, p), _ in cases_of(q.id, seed)[:6]:
        zeros, survivor, mean = q.reference(n, value, p)
        torch.manual_seed(seed)
        y = nn.Dropout(p).train()(torch.full((200_000,), value, dtype=torch.float64))
        assert math.isclose(zeros / n, float((y == 0).double().mean()), abs_tol=0.01)
        assert math.isclose(survivor, value / (1 - p), rel_tol=1e-12)
        assert math.isclose(mean, float(y.mean()), abs_tol=0.05 * abs(value) / (1 - p))


def test_dropout_reference_leaves_global_rng_alone():
    q = get("04.dropout_stats")
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    q.reference(10, 1.0, 0.5)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("seed", SEEDS)
def test_conv_block_counts_reference(seed):
    q = get("04.conv_block_counts")
    for (cin, cout, k, bias), _ in cases_of(q.id, seed):
        assert q.reference(cin, cout, k, bias) == [
            formulas.conv_params(cin, cout, k, bias=bias) + formulas.batchnorm_params(cout),
            formulas.batchnorm_buffers(cout)]


@pytest.mark.parametrize("seed", SEEDS)
def test_fixed_model_counts_reference_runs_and_counts(seed):
    from helpers.checks.ch04 import fixed_norm_model

    q = get("04.fixed_model_counts")
    for (cin, F, H, W, K), _ in cases_of(q.id, seed):
        params, buffers = q.reference(cin, F, H, W, K)
        assert params == (formulas.conv_params(cin, F, 3) + formulas.batchnorm_params(F)
                          + formulas.linear_params(F * (H // 2) * (W // 2), K))
        assert buffers == formulas.batchnorm_buffers(F)
        model = fixed_norm_model(cin, F, H, W, K).to_empty(device="cpu")
        with torch.no_grad():
            assert tuple(model.eval()(torch.zeros(2, cin, H, W)).shape) == (2, K)
        assert count_buffers(model) == buffers


def _torch_stack(cin, base, padding, blocks):
    """The real stack of 03.deepest_stack on meta: Conv2d(c, base·2**i, 3, padding) → ReLU → MaxPool2d(2)."""
    layers, c = [], cin
    for i in range(blocks):
        layers += [nn.Conv2d(c, base * 2 ** i, 3, padding=padding, device="meta"), nn.ReLU(), nn.MaxPool2d(2)]
        c = base * 2 ** i
    return nn.Sequential(*layers)


def _torch_side(model, cin, size):
    """Side of the output map, or 0 when torch refuses the input (a layer larger than its map)."""
    try:
        return model(torch.empty(1, cin, size, size, device="meta")).shape[-1]
    except RuntimeError:
        return 0


@pytest.mark.parametrize("seed", SEEDS)
def test_deepest_stack_meets_both_limits_in_torch_and_one_more_block_breaks_one(seed):
    q = get("03.deepest_stack")
    params_only, side_only = 0, 0
    for (size, cin, base, padding, budget, min_side), _ in cases_of(q.id, seed):
        n = q.reference(size, cin, base, padding, budget, min_side)
        if n:
            model = _torch_stack(cin, base, padding, n)
            assert count_params(model) <= budget and _torch_side(model, cin, size) >= min_side
        deeper = _torch_stack(cin, base, padding, n + 1)
        too_many = count_params(deeper) > budget
        too_small = _torch_side(deeper, cin, size) < min_side
        assert too_many or too_small
        params_only += too_many and not too_small  # only the budget stops the stack
        side_only += too_small and not too_many    # only the map size stops it
    assert params_only and side_only  # both limits matter


def _deepest_stack_student(size, in_channels, base_channels, padding, budget, min_side, use_side=True):
    n, params, c, side = 0, 0, in_channels, size
    while True:
        out = base_channels * 2 ** n
        params += out * c * 9 + out
        side = (side + 2 * padding - 2) // 2
        if params > budget or (use_side and side < min_side):
            return n
        n, c = n + 1, out


def test_deepest_stack_right_passes_and_budget_only_fails(capsys):
    assert check("03.deepest_stack", _deepest_stack_student)
    assert not check("03.deepest_stack", lambda *a: _deepest_stack_student(*a, use_side=False))
    assert "❌" in capsys.readouterr().out


@pytest.mark.parametrize("seed", SEEDS)
def test_widest_block_meets_both_limits_in_torch(seed):
    from helpers.models import ConvBlock

    q = get("04.widest_block")
    binding = set()
    for (cin, H, W, B, state, output), _ in cases_of(q.id, seed):
        F = q.reference(cin, H, W, B, state, output)

        def measured(filters):
            with torch.device("meta"):
                block = ConvBlock(cin, filters, 3)
                y = block(torch.empty(B, cin, H, W))
            return {"state": count_params(block) + count_buffers(block), "output": y.numel()}

        binding.add(binding_limit(F, measured, {"state": state, "output": output}))
    assert binding == {"state", "output"}


def _widest_block_student(in_channels, height, width, batch, state_budget, activation_budget, buffers=True):
    F = 0
    while True:
        f = F + 1
        state = f * in_channels * 9 + 2 * f + ((2 * f + 1) if buffers else 0)
        if state > state_budget or batch * f * (height // 2) * (width // 2) > activation_budget:
            return F
        F = f


def test_widest_block_right_passes_and_forgetting_buffers_fails(capsys):
    assert check("04.widest_block", _widest_block_student)
    assert not check("04.widest_block", lambda *a: _widest_block_student(*a, buffers=False))
    assert "❌" in capsys.readouterr().out
