"""U-Net, 1-D (spectrograms) and 2-D (the original paper), with the size and count arithmetic.

Glossary (dimension letters used in the shape comments):
    B   batch size
    C   channels at the current level (C0 = base_channels, C_l = C0 · 2**l)
    L   length of a 1-D signal (time frames of a spectrogram); (H, W) for 2-D images —
        shape comments write ``*S`` for "the spatial dims", i.e. (L,) in 1-D and (H, W) in 2-D
    l   level index, 0 (full resolution) … depth − 1 (the bottleneck)
    k   kernel_size of the 3×3 (or 3) convolutions; c = 2·(k − 1) positions lost per level
        when the convolutions are unpadded
    K   out_channels of the final 1×1 convolution (classes for segmentation)

What it mirrors:
    O. Ronneberger, P. Fischer, T. Brox, "U-Net: Convolutional Networks for Biomedical Image
    Segmentation", MICCAI 2015, arXiv:1505.04597 — Fig. 1: two unpadded 3×3 convolutions +
    ReLU per level, 2×2 max-pooling (stride 2), channels double on the way down
    (64 → 1024), a 2×2 "up-convolution" halving the channels, concatenation with the
    *cropped* encoder features, a final 1×1 convolution to 2 classes; a 572×572 input tile
    gives a 388×388 output map.
    The course seed's ``UNet1DEncoderBlock`` / ``SimplifiedUNet1DEncoder`` (a 1-D encoder for
    spectrograms: Conv1d + BatchNorm1d + ReLU, twice per level; MaxPool1d(2)).

Deviations and fixes (each one is demonstrated in notebooks/09_unet.ipynb):
    * The seed hard-codes ``padding=1`` while ``kernel_size`` is an argument, so any kernel
      other than 3 silently shrinks the signal. Here ``padded=True`` means
      ``padding = kernel_size // 2`` (odd kernels only), ``padded=False`` means no padding
      (the paper's "valid" convolutions).
    * The seed's ``depth`` counts *levels*, not down-samplings: depth=3 gives channels
      64/128/256 and only 2 poolings (its comment says "3 downsamplings"). ``depth`` keeps the
      seed's meaning: levels including the bottleneck, so the paper's network is depth=5.
    * The seed stops after the encoder; here the deepest encoder level is the bottleneck and a
      decoder (ConvTranspose with kernel 2 / stride 2, skip concatenation, two convolutions)
      and a 1×1 head complete the U.
    * One class serves 1-D and 2-D (``dim``); BatchNorm is optional (``batch_norm``) because the
      2015 paper predates it; the seed keeps the conv bias in front of BatchNorm (redundant: the
      BatchNorm shift absorbs it) and so do we by default, to keep the seed's counts.
    * Skip features are centre-cropped to the decoder's size whenever they are larger (always
      for unpadded convolutions, never for a padded net on a size divisible by 2**(depth−1)).

Pure arithmetic (no torch call, built on helpers.shapes / helpers.formulas):
    ``unet_level_sizes``, ``unet_output_size``, ``unet_valid_input_sizes``,
    ``unet_params_breakdown``, ``unet_params``, ``conv_block_params``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional, Union

import torch
import torch.nn as nn

from helpers import formulas, shapes

__all__ = [
    "DoubleConv", "UNetEncoder", "UNetDecoder", "UNet", "original_unet", "center_crop",
    "conv_block_params", "unet_params_breakdown", "unet_params",
    "UNetLevelSizes", "unet_level_sizes", "unet_output_size", "unet_valid_input_sizes",
]

_CONV = {1: nn.Conv1d, 2: nn.Conv2d}
_CONVT = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d}
_BN = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d}
_POOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d}


def _check_dim(dim: int) -> None:
    if dim not in (1, 2):
        raise ValueError(f"dim must be 1 (Conv1d, signals) or 2 (Conv2d, images), got {dim!r}")


def _padding(kernel_size: int, padded: bool) -> int:
    if not padded:
        return 0
    if kernel_size % 2 == 0:
        raise ValueError(f"a padded U-Net needs an odd kernel_size to keep the size "
                         f"(padding = kernel_size // 2), got {kernel_size}")
    return kernel_size // 2


# --------------------------------------------------------------------------- modules

class DoubleConv(nn.Module):
    """Two (convolution → optional BatchNorm → ReLU) steps: one U-Net level.

    The seed's ``UNet1DEncoderBlock`` with its hard-coded ``padding=1`` replaced by
    ``kernel_size // 2`` (padded) or 0 (the paper's unpadded convolutions).

    Args:
        in_channels, out_channels: C_in → C_out.
        kernel_size: k (odd when padded).
        dim: 1 → Conv1d on (B, C, L); 2 → Conv2d on (B, C, H, W).
        padded: keep the spatial size (True) or lose k − 1 per convolution (False).
        batch_norm: insert BatchNorm after each convolution (the seed) or not (the paper).
        bias: bias of the convolutions (redundant in front of BatchNorm; the seed keeps it).
    Shapes:
        (B, C_in, *S) → (B, C_out, *S') with S' = S (padded) or S − 2·(k − 1) (unpadded).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, *, dim: int = 1,
                 padded: bool = True, batch_norm: bool = True, bias: bool = True) -> None:
        super().__init__()
        _check_dim(dim)
        p = _padding(kernel_size, padded)
        Conv, BN = _CONV[dim], _BN[dim]
        self.conv1 = Conv(in_channels, out_channels, kernel_size, padding=p, bias=bias)
        self.bn1 = BN(out_channels) if batch_norm else nn.Identity()
        self.relu1 = nn.ReLU()
        self.conv2 = Conv(out_channels, out_channels, kernel_size, padding=p, bias=bias)
        self.bn2 = BN(out_channels) if batch_norm else nn.Identity()
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu1(self.bn1(self.conv1(x)))  # (B, C_out, *S − (k−1) if unpadded)
        x = self.relu2(self.bn2(self.conv2(x)))  # (B, C_out, *S − 2(k−1) if unpadded)
        return x


class UNetEncoder(nn.Module):
    """The contracting path: ``depth`` levels, channels double, size halves between levels.

    The seed's ``SimplifiedUNet1DEncoder`` fixed (no hard-coded padding, no print in
    ``__init__``, dim-generic). Level l has C0·2**l channels; the last level (l = depth − 1) is
    the bottleneck and is not pooled, so there are depth − 1 poolings.

    Returns ``(x, skips)``: x (B, C0·2**(depth−1), *S_bottleneck) and the depth − 1 feature maps
    saved before each pooling (the bottleneck output is not a skip).
    """

    def __init__(self, in_channels: int = 1, base_channels: int = 64, depth: int = 3,
                 kernel_size: int = 3, *, dim: int = 1, padded: bool = True,
                 batch_norm: bool = True, bias: bool = True) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth (number of levels) must be at least 1, got {depth}")
        self.levels = nn.ModuleList()
        channels = in_channels
        for level in range(depth):
            out = base_channels * 2 ** level
            self.levels.append(DoubleConv(channels, out, kernel_size, dim=dim, padded=padded,
                                         batch_norm=batch_norm, bias=bias))
            channels = out
        self.pool = _POOL[dim](2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        skips = []
        for level, block in enumerate(self.levels):
            x = block(x)  # (B, C0·2**level, *S_level)
            if level < len(self.levels) - 1:  # the bottleneck is not pooled
                skips.append(x)  # saved for the decoder's concatenation
                x = self.pool(x)  # (B, C0·2**level, *S_level // 2)
        return x, skips


def center_crop(x: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """Crop the trailing spatial dims of ``x`` (B, C, *S) to ``size``, centred (offset = diff // 2).

    This is the paper's "cropping of the feature map from the contracting path (necessary due to
    the loss of border pixels in every convolution)".
    """
    slices = [slice(None), slice(None)]
    for have, want in zip(x.shape[2:], size):
        if want > have:
            raise ValueError(f"cannot crop a skip of size {have} to the larger size {want}")
        start = (have - want) // 2
        slices.append(slice(start, start + want))
    return x[tuple(slices)]


class UNetDecoder(nn.Module):
    """The expanding path: up-convolution (halves C, doubles S), concatenate the cropped skip,
    then a DoubleConv (2·C/2 → C/2 channels), once per pooling of the encoder.
    """

    def __init__(self, base_channels: int = 64, depth: int = 3, kernel_size: int = 3, *,
                 dim: int = 1, padded: bool = True, batch_norm: bool = True,
                 bias: bool = True) -> None:
        super().__init__()
        ConvT = _CONVT[dim]
        self.ups = nn.ModuleList()
        self.levels = nn.ModuleList()
        for level in reversed(range(depth - 1)):  # from just below the bottleneck up to level 0
            c = base_channels * 2 ** level  # channels of the encoder skip at this level
            self.ups.append(ConvT(2 * c, c, kernel_size=2, stride=2))
            self.levels.append(DoubleConv(2 * c, c, kernel_size, dim=dim, padded=padded,
                                         batch_norm=batch_norm, bias=bias))

    def forward(self, x: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        for up, block, skip in zip(self.ups, self.levels, reversed(skips)):
            x = up(x)  # (B, C, 2·S)         C = channels of the skip at this level
            skip = center_crop(skip, tuple(x.shape[2:]))  # (B, C, 2·S)  cropped skip
            x = torch.cat([skip, x], dim=1)  # (B, 2·C, 2·S)
            x = block(x)  # (B, C, 2·S − 2(k−1) if unpadded)
        return x


class UNet(nn.Module):
    """A complete U-Net: encoder (bottleneck included) → decoder → 1×1 convolution head.

    Args:
        in_channels: input channels (1 for a mono spectrogram or a grey-scale image).
        out_channels: K, channels of the output map (classes, or 1 for a mask).
        base_channels: C0, channels of level 0 (the paper and the seed: 64).
        depth: number of levels including the bottleneck (paper: 5, seed: 3).
        kernel_size: k of the level convolutions (paper: 3).
        dim: 1 (signals, (B, C, L)) or 2 (images, (B, C, H, W)).
        padded: True keeps sizes (output size = input size when the input is divisible by
            2**(depth−1)); False is the paper's unpadded net (572 → 388).
        batch_norm: BatchNorm after each convolution (seed) or none (paper).
        bias: bias of the level convolutions.
    Shapes:
        x (B, in_channels, *S) → (B, out_channels, *S_out); see `unet_output_size`.
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 1, base_channels: int = 64,
                 depth: int = 3, kernel_size: int = 3, *, dim: int = 1, padded: bool = True,
                 batch_norm: bool = True, bias: bool = True) -> None:
        super().__init__()
        _check_dim(dim)
        _padding(kernel_size, padded)  # validate early
        self.config = dict(in_channels=in_channels, out_channels=out_channels,
                           base_channels=base_channels, depth=depth, kernel_size=kernel_size,
                           dim=dim, padded=padded, batch_norm=batch_norm, bias=bias)
        common = dict(dim=dim, padded=padded, batch_norm=batch_norm, bias=bias)
        self.encoder = UNetEncoder(in_channels, base_channels, depth, kernel_size, **common)
        self.decoder = UNetDecoder(base_channels, depth, kernel_size, **common)
        self.head = _CONV[dim](base_channels, out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, skips = self.encoder(x)  # (B, C0·2**(depth−1), *S_bottleneck), depth − 1 skips
        x = self.decoder(x, skips)  # (B, C0, *S_out)
        return self.head(x)  # (B, K, *S_out)


def original_unet(in_channels: int = 1, out_channels: int = 2, *, padded: bool = False,
                  batch_norm: bool = False) -> UNet:
    """The network of Ronneberger et al. (2015), Fig. 1: 2-D, 64 base channels, 5 levels,
    unpadded 3×3 convolutions with bias, no BatchNorm, 2 output classes.
    ``padded=True`` gives the common "same-size" variant (output size = input size).
    """
    return UNet(in_channels, out_channels, base_channels=64, depth=5, kernel_size=3, dim=2,
                padded=padded, batch_norm=batch_norm, bias=True)


# --------------------------------------------------------------------------- counts (pure)

def conv_block_params(in_channels: int, out_channels: int, kernel_size: int = 3, *, dim: int = 1,
                      batch_norm: bool = True, bias: bool = True) -> int:
    """Parameters of one `DoubleConv` (padding never changes a count):

        C_out·C_in·k^dim + C_out·C_out·k^dim  (+ 2·C_out conv biases) (+ 2·2·C_out BatchNorm)
    """
    _check_dim(dim)
    ks = (kernel_size,) * dim
    total = (formulas.conv_params(in_channels, out_channels, ks, bias=bias)
             + formulas.conv_params(out_channels, out_channels, ks, bias=bias))
    if batch_norm:
        total += 2 * formulas.batchnorm_params(out_channels)
    return total


def unet_params_breakdown(in_channels: int = 1, out_channels: int = 1, base_channels: int = 64,
                          depth: int = 3, kernel_size: int = 3, *, dim: int = 1,
                          padded: bool = True, batch_norm: bool = True,
                          bias: bool = True) -> dict[str, int]:
    """Parameters of `UNet` per sub-module, keyed by the module names of ``named_modules()``:
    ``encoder.levels.<l>``, ``decoder.ups.<i>``, ``decoder.levels.<i>``, ``head``.

    Pure arithmetic from helpers.formulas (no module is built). `padded` is accepted so a
    UNet config dict can be passed whole; it does not change any count.
    """
    _check_dim(dim)
    parts: dict[str, int] = {}
    channels = in_channels
    for level in range(depth):
        c = base_channels * 2 ** level
        parts[f"encoder.levels.{level}"] = conv_block_params(channels, c, kernel_size, dim=dim,
                                                             batch_norm=batch_norm, bias=bias)
        channels = c
    for i, level in enumerate(reversed(range(depth - 1))):
        c = base_channels * 2 ** level
        parts[f"decoder.ups.{i}"] = formulas.conv_transpose_params(2 * c, c, (2,) * dim, stride=2)
        parts[f"decoder.levels.{i}"] = conv_block_params(2 * c, c, kernel_size, dim=dim,
                                                         batch_norm=batch_norm, bias=bias)
    parts["head"] = formulas.conv_params(base_channels, out_channels, (1,) * dim)
    return parts


def unet_params(in_channels: int = 1, out_channels: int = 1, base_channels: int = 64,
                depth: int = 3, kernel_size: int = 3, *, dim: int = 1, padded: bool = True,
                batch_norm: bool = True, bias: bool = True) -> int:
    """Total parameters of `UNet` with this configuration (sum of `unet_params_breakdown`)."""
    return sum(unet_params_breakdown(in_channels, out_channels, base_channels, depth, kernel_size,
                                     dim=dim, padded=padded, batch_norm=batch_norm,
                                     bias=bias).values())


# --------------------------------------------------------------------------- sizes (pure)

@dataclass(frozen=True)
class UNetLevelSizes:
    """Spatial sizes (one dimension) at one level of a U-Net.

    encoder_in: size entering the level's DoubleConv on the way down;
    skip: size after it (what is saved, and what is pooled — None at the bottleneck);
    up: size after the decoder's up-convolution at this level (None at the bottleneck);
    crop: positions removed from the skip in total (split left/right) before concatenation;
    decoder_out: size after the decoder's DoubleConv (the bottleneck: its own output).
    """

    level: int
    channels: int
    encoder_in: int
    skip: Optional[int]
    up: Optional[int]
    crop: Optional[int]
    decoder_out: int


def unet_level_sizes(input_size: int, depth: int = 5, kernel_size: int = 3, *,
                     padded: bool = False, base_channels: int = 64,
                     strict: bool = True) -> list[UNetLevelSizes]:
    """Trace one spatial dimension through a U-Net, level by level (pure arithmetic).

    Uses helpers.shapes for every step: conv_output_size (twice per level), pool_output_size
    (2, stride 2, floor as torch), conv_transpose_output_size (2, stride 2).

    Args:
        input_size: L (or H, or W — the dimensions are independent).
        strict: raise ValueError when a 2×2 pooling meets an odd size — the paper's rule
            ("all 2×2 max-pooling operations are applied to a layer with an even x- and y-size"):
            torch would silently drop the last row/column, and the output would no longer be
            aligned with the centre of the input. strict=False follows torch (floor).
    Returns:
        one `UNetLevelSizes` per level, level 0 first. The output size is
        ``result[0].decoder_out`` (or the bottleneck's when depth == 1).
    Raises:
        ValueError: if a convolution gets fewer positions than its kernel (torch raises too),
            or (strict) a pooling meets an odd size.
    """
    p = _padding(kernel_size, padded)

    def double_conv(size: int, level: int, way: str) -> int:
        """Size after a DoubleConv (two k×k convs), with the U-Net level named on failure."""
        try:
            return shapes.conv_output_size(shapes.conv_output_size(size, kernel_size, padding=p),
                                           kernel_size, padding=p)
        except ValueError as exc:
            raise ValueError(f"input size {input_size} is too small for a depth-{depth} U-Net: "
                             f"at level {level} ({way}) {exc}") from None

    size = input_size
    down: list[tuple[int, int]] = []  # (encoder_in, block_out) per level
    for level in range(depth):
        out = double_conv(size, level, "down")
        down.append((size, out))
        if level < depth - 1:
            if strict and out % 2:
                raise ValueError(f"input size {input_size} is not valid for an unpadded depth-{depth} "
                                 f"U-Net: level {level} pools an odd size {out} (2×2 pooling needs "
                                 f"even sizes to keep the output aligned with the input)"
                                 if not padded else
                                 f"input size {input_size}: level {level} pools an odd size {out}; "
                                 f"a padded U-Net needs sizes divisible by {2 ** (depth - 1)}")
            size = shapes.pool_output_size(out, 2, 2)
    x = down[-1][1]
    levels = [UNetLevelSizes(depth - 1, base_channels * 2 ** (depth - 1), down[-1][0], None, None,
                             None, x)]
    for level in reversed(range(depth - 1)):
        up = shapes.conv_transpose_output_size(x, 2, stride=2)
        skip = down[level][1]
        x = double_conv(up, level, "up")
        levels.append(UNetLevelSizes(level, base_channels * 2 ** level, down[level][0], skip, up,
                                     skip - up, x))
    return sorted(levels, key=lambda s: s.level)


def unet_output_size(input_size: Union[int, Sequence[int]], depth: int = 5, kernel_size: int = 3, *,
                     padded: bool = False, strict: bool = True) -> Union[int, tuple[int, ...]]:
    """Spatial output size of a `UNet` (pure arithmetic, see `unet_level_sizes`).

    int in → int out; tuple (H, W) in → tuple out (each dimension independently).

    >>> unet_output_size(572)              # the paper's tile, 5 levels, unpadded 3×3
    388
    >>> unet_output_size((572, 572))
    (388, 388)
    >>> unet_output_size(256, depth=3, padded=True)
    256
    """
    if isinstance(input_size, (tuple, list)):
        return tuple(unet_output_size(s, depth, kernel_size, padded=padded, strict=strict)
                     for s in input_size)
    return unet_level_sizes(input_size, depth, kernel_size, padded=padded, strict=strict)[0].decoder_out


def unet_valid_input_sizes(max_size: int, depth: int = 5, kernel_size: int = 3, *,
                           padded: bool = False) -> list[int]:
    """All input sizes ≤ max_size that `unet_output_size` accepts in strict mode.

    Closed form for the unpadded net (p = depth − 1 poolings, c = 2·(k − 1) lost per level):
    input = 2**p · b + c·(2**(p+1) − 1) where b is the bottleneck's output size, and
    output = 2**p · b − c·(2**p − 1); e.g. b = 28 → 572 → 388 for the paper's net.
    """
    valid = []
    for n in range(1, max_size + 1):
        try:
            unet_level_sizes(n, depth, kernel_size, padded=padded, strict=True)
        except ValueError:
            continue
        valid.append(n)
    return valid

