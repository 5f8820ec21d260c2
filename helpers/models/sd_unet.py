"""Stable Diffusion's U-Net counted in closed form (pure arithmetic on helpers.formulas, no module built).

Glossary (the letters of the formulas below):
    C      channels of a level (block_out_channels[l]); C_in those entering a ResNet block
    d_t    time-embedding width = 4 · block_out_channels[0] (1280 for SD 1.x)
    d_c    cross_attention_dim, the width of the text tokens (768: CLIP ViT-L/14 in SD 1.x)
    g      norm_num_groups of every GroupNorm (32)
    n      layers_per_block (2): ResNet blocks per down level; the up levels have n + 1

What it counts: Hugging Face diffusers' ``UNet2DConditionModel`` (``diffusers/models/unets/
unet_2d_condition.py``) in the layout of Stable Diffusion 1.x (Rombach et al., "High-Resolution Image
Synthesis with Latent Diffusion Models", CVPR 2022, arXiv:2112.10752): ``CrossAttnDownBlock2D`` at
every level but the last (``DownBlock2D``), ``UNetMidBlock2DCrossAttn``, ``UpBlock2D`` then
``CrossAttnUpBlock2D``; one ``BasicTransformerBlock`` per ``Transformer2DModel`` with 1×1-conv
projections (``use_linear_projection=False``), biasless q/k/v, a GEGLU feed-forward of width 4C; a
stride-2 3×3 conv to go down, nearest ×2 + 3×3 conv to go up; the time MLP C0 → d_t → d_t.
tests/test_models_sd_unet.py checks every function against diffusers built on meta from random
configurations (the course's chapter 09 uses SD 1.5's: 859,520,964 parameters).

Deviation: only this block layout is counted (no ``class_embed_type``, ``addition_embed_type``,
``transformer_layers_per_block`` > 1, linear projections or dual cross-attention).
"""

from __future__ import annotations

from collections.abc import Sequence

from helpers import formulas

__all__ = ["sd_resnet_block_params", "sd_transformer_block_params", "sd_unet_params_breakdown", "sd_unet_params"]


def sd_resnet_block_params(in_channels: int, out_channels: int, temb_channels: int = 1280,
                           norm_num_groups: int = 32) -> int:
    """``ResnetBlock2D``: GroupNorm → SiLU → 3×3 conv, + Linear(d_t, C) of the time embedding,
    GroupNorm → SiLU → 3×3 conv, and a 1×1 conv shortcut when C_in ≠ C.

    2C_in + (9·C_in·C + C) + (d_t·C + C) + 2C + (9C² + C) [+ C_in·C + C].
    """
    n = (formulas.groupnorm_params(norm_num_groups, in_channels)
         + formulas.conv_params(in_channels, out_channels, 3)
         + formulas.linear_params(temb_channels, out_channels)
         + formulas.groupnorm_params(norm_num_groups, out_channels)
         + formulas.conv_params(out_channels, out_channels, 3))
    if in_channels != out_channels:
        n += formulas.conv_params(in_channels, out_channels, 1)
    return n


def sd_transformer_block_params(channels: int, cross_attention_dim: int = 768, norm_num_groups: int = 32) -> int:
    """``Transformer2DModel`` with one ``BasicTransformerBlock`` on C channels: GroupNorm, 1×1 proj_in,
    LayerNorm + self-attention (q, k, v without bias, out with bias), LayerNorm + cross-attention
    (k, v map d_c → C), LayerNorm + GEGLU feed-forward (C → 2·4C, 4C → C), 1×1 proj_out.

    = 20C² + (2·d_c + 21)·C for g dividing C.
    """
    c, d_c = channels, cross_attention_dim
    self_attn = 3 * formulas.linear_params(c, c, bias=False) + formulas.linear_params(c, c)
    cross_attn = (formulas.linear_params(c, c, bias=False) + 2 * formulas.linear_params(d_c, c, bias=False)
                  + formulas.linear_params(c, c))
    geglu = formulas.linear_params(c, 2 * 4 * c) + formulas.linear_params(4 * c, c)
    return (formulas.groupnorm_params(norm_num_groups, c) + 2 * formulas.conv_params(c, c, 1)
            + 3 * formulas.layernorm_params(c) + self_attn + cross_attn + geglu)


def sd_unet_params_breakdown(block_out_channels: Sequence[int] = (320, 640, 1280, 1280), layers_per_block: int = 2,
                             cross_attention_dim: int = 768, in_channels: int = 4, out_channels: int = 4,
                             norm_num_groups: int = 32) -> dict[str, int]:
    """Parameters of ``UNet2DConditionModel`` part by part (diffusers' module names as keys).

    Down level l (channels C_{l−1} → C_l): n ResNet blocks, n transformer blocks unless it is the
    last level, a stride-2 conv unless it is the last. Mid: 2 ResNet blocks and 1 transformer. Up
    level i (channels reversed): n + 1 ResNet blocks, each fed the previous output concatenated with
    one skip, n + 1 transformers unless it is the first, a ×2 conv unless it is the last.
    """
    chans = list(block_out_channels)
    if not chans or layers_per_block < 1 or any(c < 1 or c % norm_num_groups for c in chans):
        raise ValueError(f"block_out_channels must be positive multiples of norm_num_groups={norm_num_groups} "
                         f"and layers_per_block >= 1, got {chans} and {layers_per_block}")
    n, g, levels = layers_per_block, norm_num_groups, len(chans)
    d_t = 4 * chans[0]
    res = lambda c_in, c: sd_resnet_block_params(c_in, c, d_t, g)  # noqa: E731
    attn = lambda c: sd_transformer_block_params(c, cross_attention_dim, g)  # noqa: E731
    parts = {
        "conv_in": formulas.conv_params(in_channels, chans[0], 3),
        "time_embedding": formulas.linear_params(chans[0], d_t) + formulas.linear_params(d_t, d_t),
    }
    for lvl, c in enumerate(chans):
        c_in, last = (chans[lvl - 1] if lvl else chans[0]), lvl == levels - 1
        parts[f"down_blocks.{lvl}"] = (res(c_in, c) + (n - 1) * res(c, c) + (0 if last else n * attn(c))
                                       + (0 if last else formulas.conv_params(c, c, 3)))
    parts["mid_block"] = 2 * res(chans[-1], chans[-1]) + attn(chans[-1])
    rev = chans[::-1]
    for i, c in enumerate(rev):
        prev, skip_last = rev[max(i - 1, 0)], rev[min(i + 1, levels - 1)]
        total = sum(res((prev if j == 0 else c) + (skip_last if j == n else c), c) for j in range(n + 1))
        total += 0 if i == 0 else (n + 1) * attn(c)
        total += 0 if i == levels - 1 else formulas.conv_params(c, c, 3)
        parts[f"up_blocks.{i}"] = total
    parts["conv_norm_out"] = formulas.groupnorm_params(g, chans[0])
    parts["conv_out"] = formulas.conv_params(chans[0], out_channels, 3)
    return parts


def sd_unet_params(block_out_channels: Sequence[int] = (320, 640, 1280, 1280), layers_per_block: int = 2,
                   cross_attention_dim: int = 768, in_channels: int = 4, out_channels: int = 4,
                   norm_num_groups: int = 32) -> int:
    """Total parameters of ``UNet2DConditionModel`` (sum of `sd_unet_params_breakdown`);
    859,520,964 with SD 1.5's configuration (the defaults)."""
    return sum(sd_unet_params_breakdown(block_out_channels, layers_per_block, cross_attention_dim, in_channels,
                                        out_channels, norm_num_groups).values())
