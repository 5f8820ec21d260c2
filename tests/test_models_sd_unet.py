"""helpers.models.sd_unet (pure arithmetic) vs diffusers' UNet2DConditionModel built on meta.

Random SD-1.x-style configurations (levels, widths, blocks per level, text width, channels): every
part of the breakdown equals the parameters of diffusers' sub-module of the same name; widths that
GroupNorm(32) cannot split are refused by both.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers.counting import count_params
from helpers.models.sd_unet import (sd_resnet_block_params, sd_transformer_block_params, sd_unet_params,
                                    sd_unet_params_breakdown)

diffusers = pytest.importorskip("diffusers")  # a dev dependency


def sd_like(block_out_channels, **kw):
    levels = len(block_out_channels)
    with torch.device("meta"):
        return diffusers.UNet2DConditionModel(
            block_out_channels=tuple(block_out_channels),
            down_block_types=("CrossAttnDownBlock2D",) * (levels - 1) + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * (levels - 1), **kw)


@settings(max_examples=6, deadline=None)
@given(widths=st.lists(st.integers(1, 3), min_size=1, max_size=3), layers=st.integers(1, 3),
       text=st.integers(1, 64), cin=st.integers(1, 5), cout=st.integers(1, 5))
def test_breakdown_equals_diffusers_part_by_part(widths, layers, text, cin, cout):
    chans = [32 * w for w in widths]
    model = sd_like(chans, layers_per_block=layers, cross_attention_dim=text, in_channels=cin, out_channels=cout)
    parts = sd_unet_params_breakdown(chans, layers, text, cin, cout)
    assert parts == {name: count_params(model.get_submodule(name)) for name in parts}
    assert sd_unet_params(chans, layers, text, cin, cout) == count_params(model)


def test_every_block_of_stable_diffusion_1_5():
    model = sd_like([320, 640, 1280, 1280], cross_attention_dim=768)
    for m in model.modules():
        if type(m).__name__ == "ResnetBlock2D":
            assert count_params(m) == sd_resnet_block_params(m.in_channels, m.out_channels)
        elif type(m).__name__ == "Transformer2DModel":
            assert count_params(m) == sd_transformer_block_params(m.in_channels, 768)
    assert sd_unet_params() == count_params(model)


def test_widths_groupnorm_cannot_split_fail_in_both():
    with pytest.raises(ValueError):
        sd_like([48, 96])
    with pytest.raises(ValueError):
        sd_unet_params([48, 96])


def test_output_has_the_input_shape_on_meta():
    model = sd_like([32, 64], layers_per_block=1, cross_attention_dim=16, in_channels=3, out_channels=3)
    with torch.device("meta"):
        out = model(torch.empty(2, 3, 16, 16), torch.tensor(10), encoder_hidden_states=torch.empty(2, 7, 16)).sample
    assert tuple(out.shape) == (2, 3, 16, 16)
