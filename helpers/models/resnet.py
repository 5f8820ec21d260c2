"""ResNet: basic and bottleneck residual blocks, ResNet-18 and ResNet-50.

Glossary of dimension letters (used in the shape comments below):
    B      batch size
    C_in   channels entering a block            C_out  channels leaving it (= P·expansion)
    P      "planes": the block's inner width (64, 128, 256, 512 in stages 1–4)
    e      expansion: C_out / P — 1 for the basic block, 4 for the bottleneck
    H, W   spatial size entering a block
    H', W' spatial size leaving it: ceil(H / s) for stride s (3×3 conv, padding 1)
    s      stride of the block (2 in the first block of stages 2–4, else 1)
    K      classes (num_classes)

Shapes through ResNet at a 224×224 input (e = 1 for ResNet-18, 4 for ResNet-50)::

    (B, 3, 224, 224) → stem conv 7×7/2 → (B, 64, 112, 112) → max-pool 3×3/2 → (B, 64, 56, 56)
    → layer1 (B, 64e, 56, 56) → layer2 (B, 128e, 28, 28) → layer3 (B, 256e, 14, 14)
    → layer4 (B, 512e, 7, 7) → global average pool (B, 512e) → fc (B, K)

What it mirrors:
    K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image Recognition", CVPR 2016,
    arXiv:1512.03385 — Table 1 (the 18/34/50/101/152-layer architectures: stem, four stages of
    [2, 2, 2, 2] basic or [3, 4, 6, 3] bottleneck blocks, global average pool, 1000-way fc),
    Fig. 5 (basic block: two 3×3 convs; bottleneck: 1×1 reduce → 3×3 → 1×1 expand ×4) and §3.3
    option (B): a 1×1 projection shortcut only where the shape changes, identity elsewhere.
    The reference implementation is torchvision's ``torchvision/models/resnet.py``
    (``BasicBlock``, ``Bottleneck``, ``ResNet``, ``resnet18``, ``resnet50``): parameter names,
    shapes and order are the same, so ``resnet18().state_dict()`` has torchvision's keys.
    Its published counts (torchvision model docs, "ResNet18_Weights.IMAGENET1K_V1" /
    "ResNet50_Weights.IMAGENET1K_V1"): 11,689,512 and 25,557,032 parameters.

Deviations:
    * Like torchvision ("ResNet V1.5"), the bottleneck puts the stride on its 3×3 convolution;
      the paper puts it on the first 1×1. Same count, different MACs in stages 2–4.
    * Every convolution has ``bias=False``: each is followed by BatchNorm, which subtracts the
      per-channel batch mean, so a conv bias would cancel out (C_out wasted parameters per conv);
      BatchNorm's own shift β plays its role. Only the final fc has a bias.
    * No ``groups`` / ``width_per_group`` (ResNeXt, Wide ResNet), no dilation, no
      ``zero_init_residual``, ``norm_layer`` is always BatchNorm2d. Initialisation follows
      torchvision (Kaiming-normal fan-out convolutions, BatchNorm γ = 1 and β = 0).
    * A block builds its own projection shortcut (``downsample``) when C_in ≠ C_out or s ≠ 1,
      instead of receiving it from the network as torchvision's blocks do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import torch
from torch import Tensor, nn

__all__ = ["BasicBlock", "Bottleneck", "ResNet", "resnet18", "resnet50"]


def _shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module | None:
    """The 1×1 projection (option B of §3.3): Conv2d(C_in, C_out, 1, stride=s, bias=False) + BN,
    only where the identity does not fit (C_in ≠ C_out or s ≠ 1); None means identity."""
    if in_channels == out_channels and stride == 1:
        return None
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                         nn.BatchNorm2d(out_channels))


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with a residual connection (ResNet-18/34), e = 1.

    Args:
        in_channels: C_in.
        planes: P = C_out (expansion 1).
        stride: s, applied by the first 3×3 conv (and the projection shortcut).

    Shapes: (B, C_in, H, W) → (B, P, H', W').
    Parameters: 9·C_in·P + 9·P² (convs, no bias) + 2·2P (two BatchNorms)
    [+ C_in·P + 2P for the projection when C_in ≠ P or s ≠ 1].
    """

    expansion = 1

    def __init__(self, in_channels: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_channels, planes * self.expansion, stride)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)  # (B, P, H', W')
        out = self.relu(self.bn1(self.conv1(x)))  # (B, P, H', W')
        out = self.bn2(self.conv2(out))           # (B, P, H', W')
        return self.relu(out + identity)          # (B, P, H', W')


class Bottleneck(nn.Module):
    """1×1 reduce → 3×3 → 1×1 expand (ResNet-50/101/152), e = 4.

    Args:
        in_channels: C_in.
        planes: P, the width of the 3×3 convolution; C_out = 4·P.
        stride: s, applied by the 3×3 conv (torchvision's V1.5) and the projection shortcut.

    Shapes: (B, C_in, H, W) → (B, 4P, H', W').
    Parameters: C_in·P + 9·P² + P·4P (convs, no bias) + 2·(P + P + 4P) (three BatchNorms)
    [+ C_in·4P + 2·4P for the projection when C_in ≠ 4P or s ≠ 1].
    """

    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out_channels = planes * self.expansion
        self.conv1 = nn.Conv2d(in_channels, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_channels, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_channels, out_channels, stride)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)  # (B, 4P, H', W')
        out = self.relu(self.bn1(self.conv1(x)))    # (B, P, H, W)    1×1 reduce
        out = self.relu(self.bn2(self.conv2(out)))  # (B, P, H', W')  3×3, stride s
        out = self.bn3(self.conv3(out))             # (B, 4P, H', W') 1×1 expand
        return self.relu(out + identity)            # (B, 4P, H', W')


Block = Union[type[BasicBlock], type[Bottleneck]]


class ResNet(nn.Module):
    """Stem, four stages of residual blocks, global average pool, fc.

    Args:
        block: `BasicBlock` or `Bottleneck`.
        layers: blocks per stage, e.g. [2, 2, 2, 2] (ResNet-18) or [3, 4, 6, 3] (ResNet-50).
        num_classes: K.
        in_channels: channels of the image (3).
        widths: P of each stage (64, 128, 256, 512); stage i outputs widths[i]·e channels.

    Shapes: (B, in_channels, H, W) → (B, K); any H, W ≥ 1 works (the pool is adaptive).
    """

    def __init__(self, block: Block, layers: Sequence[int], num_classes: int = 1000, *,
                 in_channels: int = 3, widths: Sequence[int] = (64, 128, 256, 512)) -> None:
        super().__init__()
        if len(layers) != len(widths) or any(n < 1 for n in layers):
            raise ValueError(f"layers must give a positive number of blocks for each of the {len(widths)} "
                             f"stages, got {list(layers)}")
        self.conv1 = nn.Conv2d(in_channels, widths[0], kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        channels = widths[0]
        for i, (planes, n) in enumerate(zip(widths, layers)):
            stride = 1 if i == 0 else 2  # stage 1 keeps 56×56 (the max-pool already halved it)
            stage = [block(channels, planes, stride)]
            channels = planes * block.expansion
            stage += [block(channels, planes) for _ in range(n - 1)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*stage))
        self.num_stages = len(layers)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(channels, num_classes)
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (B, 64, H/4, W/4)
        for i in range(self.num_stages):
            x = getattr(self, f"layer{i + 1}")(x)  # (B, P_i·e, H/2^(i+2), W/2^(i+2))
        x = torch.flatten(self.avgpool(x), 1)  # (B, 512e)
        return self.fc(x)                      # (B, K)


def resnet18(num_classes: int = 1000) -> ResNet:
    """ResNet-18 (Table 1 of arXiv:1512.03385): basic blocks, [2, 2, 2, 2]; 11,689,512 params at K = 1000."""
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes)


def resnet50(num_classes: int = 1000) -> ResNet:
    """ResNet-50 (Table 1 of arXiv:1512.03385): bottleneck blocks, [3, 4, 6, 3]; 25,557,032 params at K = 1000."""
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes)
