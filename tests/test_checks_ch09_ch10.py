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
