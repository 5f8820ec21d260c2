"""helpers.models.unet: counts (pure formula vs torch), sizes (pure arithmetic vs a real forward)."""

import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers.counting import count_params
from helpers.models.unet import (DoubleConv, UNet, UNetEncoder, center_crop, conv_block_params,
                                 original_unet, unet_level_sizes, unet_output_size, unet_params,
                                 unet_params_breakdown, unet_valid_input_sizes)

configs = st.fixed_dictionaries({
    "in_channels": st.integers(1, 4),
    "out_channels": st.integers(1, 4),
    "base_channels": st.integers(1, 8),
    "depth": st.integers(1, 4),
    "kernel_size": st.sampled_from([1, 3, 5]),
    "dim": st.sampled_from([1, 2]),
    "padded": st.booleans(),
    "batch_norm": st.booleans(),
    "bias": st.booleans(),
})


@given(configs)
@settings(max_examples=60)
def test_unet_params_formula_equals_torch(cfg):
    model = UNet(**cfg)
    assert unet_params(**cfg) == count_params(model)
    # and module by module, under torch's own module names
    modules = dict(model.named_modules())
    for name, n in unet_params_breakdown(**cfg).items():
        assert count_params(modules[name]) == n, name


@given(st.integers(1, 16), st.integers(1, 16), st.sampled_from([1, 3, 5, 7]), st.sampled_from([1, 2]),
       st.booleans(), st.booleans())
@settings(max_examples=40)
def test_conv_block_params(cin, cout, k, dim, bn, bias):
    assert conv_block_params(cin, cout, k, dim=dim, batch_norm=bn, bias=bias) == count_params(
        DoubleConv(cin, cout, k, dim=dim, batch_norm=bn, bias=bias))


def _forward_size(model, size, dim):
    with torch.device("meta"):
        x = torch.empty((1, model.config["in_channels"]) + (size,) * dim)
        return model(x).shape[2]


@given(st.integers(1, 3), st.integers(2, 4), st.sampled_from([3, 5]), st.integers(1, 200), st.booleans())
@settings(max_examples=80)
def test_output_size_matches_forward(base, depth, k, size, padded):
    """Pure size arithmetic (strict=False follows torch's floor pooling) == a real forward."""
    with torch.device("meta"):
        model = UNet(1, 2, base, depth, k, dim=1, padded=padded, batch_norm=False)
    try:
        predicted = unet_output_size(size, depth, k, padded=padded, strict=False)
    except ValueError:
        with pytest.raises(RuntimeError):
            _forward_size(model, size, 1)
        return
    assert _forward_size(model, size, 1) == predicted


@given(st.integers(2, 5), st.integers(1, 600))
@settings(max_examples=100)
def test_strict_rejects_exactly_odd_poolings(depth, size):
    """strict mode raises iff some pooling meets an odd size (or the net runs out of positions)."""
    try:
        levels = unet_level_sizes(size, depth, strict=False)
    except ValueError:
        with pytest.raises(ValueError):
            unet_level_sizes(size, depth, strict=True)
        return
    odd = any(lv.skip % 2 for lv in levels if lv.skip is not None)
    if odd:
        with pytest.raises(ValueError, match="odd"):
            unet_level_sizes(size, depth, strict=True)
    else:
        assert unet_level_sizes(size, depth, strict=True) == levels


def test_paper_572_to_388_on_meta():
    with torch.device("meta"):
        model = original_unet()
        y = model(torch.empty(1, 1, 572, 572))
    assert tuple(y.shape) == (1, 2, 388, 388)
    assert unet_output_size((572, 572)) == (388, 388)
    crops = {lv.level: (lv.skip, lv.up) for lv in unet_level_sizes(572)}
    assert crops[0] == (568, 392) and crops[3] == (64, 56)  # Fig. 1 of the paper


def test_valid_sizes_closed_form():
    valid = unet_valid_input_sizes(1000)
    # 2**4 · b + 4·31 for every bottleneck size b that keeps every decoder size positive
    assert valid == [16 * b + 124 for b in range(4, 100) if 16 * b + 124 <= 1000]
    assert 572 in valid and 571 not in valid


def test_padded_keeps_size_and_counts_like_unpadded():
    assert count_params(original_unet(padded=True)) == count_params(original_unet())
    with torch.device("meta"):
        y = original_unet(padded=True)(torch.empty(1, 1, 96, 128))
    assert tuple(y.shape) == (1, 2, 96, 128)
    assert unet_output_size((96, 128), padded=True) == (96, 128)


def test_seed_encoder_count_and_shapes():
    """Our encoder reproduces the seed's SimplifiedUNet1DEncoder(1, 64, depth=3) layer by layer."""
    enc = UNetEncoder(1, 64, 3)
    seed_like = []
    c = 1
    for i in range(3):
        o = 64 * 2 ** i
        seed_like += [nn.Conv1d(c, o, 3, padding=1), nn.BatchNorm1d(o), nn.Conv1d(o, o, 3, padding=1),
                      nn.BatchNorm1d(o)]
        c = o
    assert count_params(enc) == count_params(nn.ModuleList(seed_like))
    x, skips = enc(torch.randn(2, 1, 100))
    assert [tuple(s.shape) for s in skips] == [(2, 64, 100), (2, 128, 50)]
    assert tuple(x.shape) == (2, 256, 25)  # only 2 poolings for depth=3


def test_kernel_size_keeps_length_when_padded():
    block = DoubleConv(2, 4, 5)
    assert tuple(block(torch.randn(1, 2, 30)).shape) == (1, 4, 30)
    with pytest.raises(ValueError, match="odd kernel_size"):
        DoubleConv(2, 4, 4)


def test_center_crop():
    x = torch.arange(10.0).view(1, 1, 10)
    assert center_crop(x, (6,)).flatten().tolist() == [2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    with pytest.raises(ValueError):
        center_crop(x, (11,))


def test_unet_1d_trains_one_step():
    torch.manual_seed(0)
    model = UNet(1, 1, 4, 3)
    x = torch.randn(2, 1, 32)
    loss = (model(x) - x).pow(2).mean()
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
