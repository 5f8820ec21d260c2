"""MobileNetV2: the inverted residual block (1×1 expand → 3×3 depthwise → 1×1 linear projection).

Glossary of dimension letters (used in the shape comments below):
    B      batch size
    C_in   channels entering a block         C_out  channels leaving it (the "bottleneck" width)
    t      expansion ratio (1 for the first block, 6 for the others)
    M      expanded width t·C_in, where the depthwise 3×3 works (M ≫ C_in: "inverted")
    H, W   spatial size entering a block
    H', W' spatial size leaving it: ceil(H / s) for stride s (3×3, padding 1)
    s      stride of the block's depthwise conv (1 or 2)
    K      classes (num_classes)

Shapes through MobileNetV2 at 224×224 (width_mult = 1): (B, 3, 224, 224) → stem 3×3/2 →
(B, 32, 112, 112) → 17 inverted residuals → (B, 320, 7, 7) → 1×1 conv (B, 1280, 7, 7) →
global average pool (B, 1280) → dropout → fc (B, K).

What it mirrors:
    M. Sandler, A. Howard, M. Zhu, A. Zhmoginov, L.-C. Chen, "MobileNetV2: Inverted Residuals
    and Linear Bottlenecks", CVPR 2018, arXiv:1801.04381 — Table 1 (block: 1×1 conv + ReLU6,
    3×3 depthwise + ReLU6, 1×1 conv with NO activation, the "linear bottleneck"), Table 2 (the
    network: rows t, c, n, s below) and §3.4 / Fig. 4 (residual only when stride 1 and
    C_in = C_out). The reference implementation is torchvision's
    ``torchvision/models/mobilenetv2.py`` (``InvertedResidual``, ``MobileNetV2``,
    ``_make_divisible``): same parameter names, shapes and order, so ``state_dict()`` keys are
    torchvision's. Its published count (``MobileNet_V2_Weights.IMAGENET1K_V1``): 3,504,872.

Deviations:
    * ``depthwise=False`` (not in torchvision) replaces every depthwise 3×3 by a full 3×3 conv
      over all M channels (groups = 1): the network MobileNetV2 would be without depthwise
      convolutions, to measure what they save across the whole network.
    * The ``inverted_residual_setting`` / ``norm_layer`` / ``block`` arguments are not exposed;
      ``width_mult`` and ``round_nearest`` are (as in torchvision).
    * Every conv has ``bias=False`` (each is followed by BatchNorm, whose β replaces the bias).
    * `helpers.models.cnn.DepthwiseSeparableConv2d` is the bare MobileNetV1 pair (no BN, no
      activation); here the depthwise and the projection are separated by BN + ReLU6 and
      preceded by the 1×1 expansion, so the block is built from plain convolutions instead.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

__all__ = ["make_divisible", "InvertedResidual", "MobileNetV2", "MOBILENET_V2_SETTING"]

# Table 2 of arXiv:1801.04381, after the 3×3/2 stem with 32 channels: one row per stage,
# (t expansion, c output channels, n repeats, s stride of the first repeat).
MOBILENET_V2_SETTING: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def make_divisible(value: float, divisor: int = 8, min_value: Optional[int] = None) -> int:
    """Round a channel count to the nearest multiple of ``divisor`` (never below 90 % of it).

    torchvision's ``_make_divisible`` (from the TensorFlow reference): used for ``width_mult``.
    """
    min_value = divisor if min_value is None else min_value
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:  # rounding down must not remove more than 10 %
        new_value += divisor
    return new_value


def _conv_bn_relu6(in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                   groups: int = 1) -> nn.Sequential:
    """Conv2d (no bias) → BatchNorm2d → ReLU6, torchvision's ``Conv2dNormActivation`` layout."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, (kernel_size - 1) // 2,
                  groups=groups, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    """1×1 expand (C_in → M) → 3×3 depthwise (M, groups = M) → 1×1 linear projection (M → C_out).

    Args:
        in_channels: C_in.
        out_channels: C_out.
        stride: s of the depthwise conv (1 or 2).
        expand_ratio: t; M = round(t·C_in). With t = 1 there is no expansion conv.
        depthwise: False makes the 3×3 a full conv (groups = 1) — for comparison only.

    Shapes: (B, C_in, H, W) → (B, M, H, W) → (B, M, H', W') → (B, C_out, H', W');
    the input is added back when s = 1 and C_in = C_out.
    Parameters (depthwise, t > 1): C_in·M + 2M (expand + BN) + 9·M + 2M (depthwise + BN)
    + M·C_out + 2·C_out (projection + BN); a full 3×3 would cost 9·M² instead of 9·M.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, expand_ratio: int,
                 *, depthwise: bool = True) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"an inverted residual has stride 1 or 2, got {stride}")
        hidden = int(round(in_channels * expand_ratio))  # M
        self.stride = stride
        self.use_res_connect = stride == 1 and in_channels == out_channels
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(_conv_bn_relu6(in_channels, hidden, kernel_size=1))  # C_in → M
        layers += [
            _conv_bn_relu6(hidden, hidden, stride=stride, groups=hidden if depthwise else 1),  # M → M
            nn.Conv2d(hidden, out_channels, 1, bias=False),  # M → C_out, linear: no ReLU6 after
            nn.BatchNorm2d(out_channels),
        ]
        self.conv = nn.Sequential(*layers)
        self.out_channels = out_channels

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv(x)  # (B, C_in, H, W) → (B, M, H, W) → (B, M, H', W') → (B, C_out, H', W')
        return x + out if self.use_res_connect else out  # (B, C_out, H', W')


class MobileNetV2(nn.Module):
    """MobileNetV2 for K classes: ``features`` (stem, 17 inverted residuals, 1×1 conv) → pool → classifier.

    Args:
        num_classes: K.
        width_mult: multiplies every width (rounded by `make_divisible` to ``round_nearest``);
            the last 1×1 conv keeps 1280 channels unless width_mult > 1.
        round_nearest: the divisor of the rounding (8).
        dropout: probability of the dropout before the classifier (0.2, as torchvision).
        depthwise: False replaces every depthwise 3×3 by a full 3×3 (a comparison network).

    Shapes: (B, 3, H, W) → (B, K); parameters 3,504,872 at K = 1000, width_mult = 1.
    """

    def __init__(self, num_classes: int = 1000, width_mult: float = 1.0, round_nearest: int = 8,
                 dropout: float = 0.2, *, depthwise: bool = True) -> None:
        super().__init__()
        if width_mult <= 0:
            raise ValueError(f"width_mult must be positive, got {width_mult}")
        in_channels = make_divisible(32 * width_mult, round_nearest)
        self.last_channel = make_divisible(1280 * max(1.0, width_mult), round_nearest)
        features: list[nn.Module] = [_conv_bn_relu6(3, in_channels, stride=2)]  # (B, 32, H/2, W/2)
        for t, c, n, s in MOBILENET_V2_SETTING:
            out_channels = make_divisible(c * width_mult, round_nearest)
            for i in range(n):
                features.append(InvertedResidual(in_channels, out_channels, s if i == 0 else 1, t,
                                                 depthwise=depthwise))
                in_channels = out_channels
        features.append(_conv_bn_relu6(in_channels, self.last_channel, kernel_size=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(self.last_channel, num_classes))
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)  # (B, 1280, H/32, W/32)
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, (1, 1)), 1)  # (B, 1280)
        return self.classifier(x)  # (B, K)
