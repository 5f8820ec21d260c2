"""Chapter 09/10 exercise questions: every reference answer agrees with real torch modules.

The references in helpers/checks/ch09.py and ch10.py come from the pure arithmetic of
helpers.models.unet / helpers.models.mamba; here they are compared, on the questions' own randomised
cases, with forward passes (meta device) and parameter counts of the torch modules they describe.
"""

import random
import time

import pytest
import torch

from helpers.checks.registry import get, make_cases, questions_for_chapter
from helpers.counting import count_params
from helpers.models import MambaBlock, UNet
from helpers.models.unet import DoubleConv, unet_level_sizes

SEEDS = [0, 1]


def cases_of(qid, seed):
    return make_cases(get(qid), random.Random(seed))








def _forward_side(depth, k, size, padded=False):
    with torch.device("meta"):
        model = UNet(1, 2, 4, depth, k, dim=2, padded=padded, batch_norm=False)
        return model(torch.empty(1, 1, size, size)).shape[-1]


@pytest.mark.parametrize("seed", SEEDS)
def test_unet_output_size_reference_matches_forward(seed):
    q = get("09.unet_output_size")
    for (size, depth), kw in cases_of(q.id, seed)[:8]:
        assert q.reference(size, depth, **kw) == _forward_side(depth, kw.get("kernel_size", 3), size)


@pytest.mark.parametrize("seed", SEEDS)
def test_smallest_valid_input_is_valid_and_minimal(seed):
    q = get("09.smallest_valid_input")
    for (depth,), kw in cases_of(q.id, seed)[:6]:
        k = kw.get("kernel_size", 3)
        n = q.reference(depth, **kw)
        assert _forward_side(depth, k, n) >= 1
        # every smaller size either fails in torch or makes some pooling floor an odd size
        for smaller in range(max(1, n - 3), n):
            try:
                out = _forward_side(depth, k, smaller)
            except RuntimeError:
                continue
            assert any(lv.skip % 2 for lv in unet_level_sizes(smaller, depth, k, strict=False)[:-1]), out


@pytest.mark.parametrize("seed", SEEDS)
def test_level_params_reference_matches_conv_block(seed):
    q = get("09.level_params")
    for (cin, cout), kw in cases_of(q.id, seed):
        with torch.device("meta"):
            block = DoubleConv(cin, cout, kw.get("kernel_size", 3), dim=kw.get("dim", 1),
                              batch_norm=kw.get("batch_norm", True), bias=kw.get("bias", True))
        assert q.reference(cin, cout, **kw) == count_params(block)


@pytest.mark.parametrize("seed", SEEDS)
def test_unet_params_reference_matches_model(seed):
    q = get("09.unet_params")
    for (cin, cout, base, depth), kw in cases_of(q.id, seed):
        with torch.device("meta"):
            model = UNet(cin, cout, base, depth, 3, dim=2, batch_norm=kw.get("batch_norm", False))
        assert q.reference(cin, cout, base, depth, **kw) == count_params(model)


def test_skip_crop_reference_matches_forward_shapes():
    from helpers.trace import summary

    q = get("09.skip_crop")
    for (size, depth, level), _ in cases_of(q.id, 0)[:5]:
        with torch.device("meta"):
            model = UNet(1, 1, 2, depth, 3, dim=1, padded=False, batch_norm=False)
        s = summary(model, input_size=(1, 1, size))
        i = depth - 2 - level
        skip = s[f"encoder.levels.{level}"].output_shapes[-1]
        up = s[f"decoder.ups.{i}"].output_shapes[-1]
        assert q.reference(size, depth, level) == skip - up


@pytest.mark.parametrize("seed", SEEDS)
def test_mamba_references_match_block(seed):
    dims, params, xproj = get("10.inner_dims"), get("10.mamba_block_params"), get("10.x_proj_out_features")
    for (d_model,), kw in cases_of(params.id, seed):
        with torch.device("meta"):
            block = MambaBlock(d_model, **kw)
        assert params.reference(d_model, **kw) == count_params(block)
    for (d_model,), kw in cases_of(dims.id, seed)[:8]:
        with torch.device("meta"):
            block = MambaBlock(d_model, **kw)
        assert tuple(dims.reference(d_model, **kw)) == (block.d_inner, block.dt_rank)
    for (d_model,), kw in cases_of(xproj.id, seed)[:8]:
        with torch.device("meta"):
            block = MambaBlock(d_model, **kw)
        assert xproj.reference(d_model, **kw) == block.x_proj.out_features


@pytest.mark.parametrize("seed", SEEDS)
def test_state_bytes_matches_allocated_cache(seed):
    q = get("10.state_bytes")
    for (batch, n_layer, d_model), kw in cases_of(q.id, seed)[:6]:
        with torch.device("meta"):
            block = MambaBlock(d_model, kw.get("d_state", 16), kw.get("d_conv", 4), kw.get("expand", 2))
            conv_state, ssm_state = block.allocate_inference_cache(batch)
        numel = conv_state.numel() + ssm_state.numel()
        assert q.reference(batch, n_layer, d_model, **kw) == numel * n_layer * kw.get("bytes_per_element", 2)


@pytest.mark.parametrize("seed", SEEDS)
def test_largest_d_model_is_tight(seed):
    q = get("10.largest_d_model")
    for (budget,), kw in cases_of(q.id, seed):
        d = q.reference(budget, **kw)
        m, n = kw.get("multiple", 16), kw.get("d_state", 16)
        assert d % m == 0
        with torch.device("meta"):
            if d:
                assert count_params(MambaBlock(d, n)) <= budget
            assert count_params(MambaBlock(d + m, n)) > budget


def _valid_in_torch(size, depth):
    """An unpadded 3×3 2-D U-Net of this depth runs on size×size AND every pooling sees an even size."""
    with torch.device("meta"):
        model = UNet(1, 1, 2, depth, 3, dim=2, padded=False, batch_norm=False)
    odd = []
    pools = [m for m in model.modules() if isinstance(m, torch.nn.MaxPool2d)]
    hooks = [m.register_forward_pre_hook(lambda m, args: odd.append(args[0].shape[-1] % 2)) for m in pools]
    try:
        model(torch.empty(1, 1, size, size, device="meta"))
    except RuntimeError:
        return False
    finally:
        for h in hooks:
            h.remove()
    return not any(odd)


@pytest.mark.parametrize("seed", SEEDS)
def test_deepest_unet_is_valid_fits_and_no_deeper_one_does(seed):
    q = get("09.deepest_unet")
    binding = set()
    for (size, cin, cout, base, budget), _ in cases_of(q.id, seed)[:10]:
        d = q.reference(size, cin, cout, base, budget)

        def params(depth):
            with torch.device("meta"):
                return count_params(UNet(cin, cout, base, depth, 3, dim=2, padded=False, batch_norm=False))

        if d:
            assert _valid_in_torch(size, d) and params(d) <= budget
        for deeper in range(d + 1, 8):
            if params(deeper) > budget:
                binding.add("budget")
                break
            assert not _valid_in_torch(size, deeper)
            binding.add("validity")
    assert binding == {"budget", "validity"}


def _deepest_unet_student(input_size, in_channels, out_channels, base_channels, budget, check_pooling=True):
    def valid(depth):
        size = input_size
        for level in range(depth):
            size -= 4
            if size < 1:
                return False
            if level < depth - 1:
                if size % 2 and check_pooling:
                    return False
                size //= 2
        for _ in range(depth - 1):
            size = 2 * size - 4
            if size < 1:
                return False
        return True

    def params(depth):
        total, c = 0, in_channels
        for level in range(depth):
            o = base_channels * 2 ** level
            total += (c * o * 9 + o) + (o * o * 9 + o)
            c = o
        for level in range(depth - 1):
            o = base_channels * 2 ** level
            total += (2 * o * o * 4 + o) + (2 * o * o * 9 + o) + (o * o * 9 + o)
        return total + base_channels * out_channels + out_channels

    best = 0
    for depth in range(1, 12):
        if params(depth) > budget:
            break
        if valid(depth):
            best = depth
    return best


def test_deepest_unet_right_passes_and_ignoring_odd_poolings_fails(capsys):
    from helpers.checks import check

    assert check("09.deepest_unet", _deepest_unet_student)
    assert not check("09.deepest_unet", lambda *a: _deepest_unet_student(*a, check_pooling=False))
    assert "❌" in capsys.readouterr().out


@pytest.mark.parametrize("seed", SEEDS)
def test_kv_crossover_compares_real_cache_tensors(seed):
    q = get("10.kv_crossover")
    for (d_model, attn_layers, mamba_layers), kw in cases_of(q.id, seed)[:8]:
        T = q.reference(d_model, attn_layers, mamba_layers, **kw)
        with torch.device("meta"):
            block = MambaBlock(d_model, kw.get("d_state", 16), kw.get("d_conv", 4), kw.get("expand", 2))
            state = mamba_layers * sum(t.numel() for t in block.allocate_inference_cache(1))
            c_attn = torch.nn.Linear(d_model, 3 * d_model)  # a GPT layer's fused q, k, v projection

            def cache(seq_len):
                k, v = c_attn(torch.empty(1, seq_len, d_model)).split(d_model, dim=2)[1:]
                return attn_layers * (k.numel() + v.numel())

            assert cache(T) > state
            if T > 1:
                assert cache(T - 1) <= state


def test_kv_crossover_right_passes_and_keys_only_fails(capsys):
    from helpers.checks import check

    def crossover(d_model, attn_layers, mamba_layers, d_state=16, d_conv=4, expand=2, factor=2):
        state = mamba_layers * expand * d_model * (d_state + d_conv)
        return state // (factor * attn_layers * d_model) + 1

    assert check("10.kv_crossover", crossover)
    assert not check("10.kv_crossover", lambda *a, **k: crossover(*a, **k, factor=1))
    assert "❌" in capsys.readouterr().out
