"""Small convolutional models used by chapters 02–04 and 11.

Glossary of dimension letters (used in every shape comment below)::

    B   batch size
    C   input channels (3 for RGB)           O   filters = output channels of a conv
    H   input height                         W   input width
    Hc  height after the conv                Wc  width after the conv
    Hp  height after the pooling             Wp  width after the pooling
    D   flattened features = O · Hp · Wp    U   hidden units of the first Linear
    K   classes (logits)

Source: `SimpleNet` mirrors the "Understanding the number of parameters in a convolutional
layer" seed notebook (``shared/seeds/001``): Conv2d(3, 16, 3, padding=1) → tanh → MaxPool2d(2)
→ Linear(16·16·16, 32) → tanh → Linear(32, 2), 131,618 parameters for a 3×32×32 input.
Deviations, each a fix of the seed:

* the seed's forward calls ``F.tanh`` without ``import torch.nn.functional as F``
  (NameError on the first forward pass); here `F` is imported;
* the seed hard-codes the flatten size ``16 * 16 * 16``, which silently assumes a 32×32 input
  and uses ``view(-1, 4096)``: any other input size either raises or, worse, reshapes the batch
  into the wrong number of rows. Here the flatten size is computed from ``input_size`` with
  `helpers.shapes` and the forward pass flattens per sample (``flatten(1)``), so a wrong input
  size raises a clear error instead of mixing samples;
* channels, classes and hidden width are arguments (defaults = the seed's values).

`DepthwiseSeparableConv2d` is the MobileNet block (Howard et al. 2017, "MobileNets",
arXiv:1704.04861): a depthwise ``Conv2d(C, C, k, groups=C)`` followed by a pointwise
``Conv2d(C, O, 1)``; unlike the paper there is no BatchNorm/ReLU between them, so the block's
parameters are exactly the two convolutions'.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from helpers.shapes import conv_output_size, pool_output_size

__all__ = ["SimpleNet", "DepthwiseSeparableConv2d"]


class SimpleNet(nn.Module):
    """One conv layer, one max-pool, two Linear layers (the seed's SimpleNet, fixed).

    Args:
        in_channels: C, channels of the input image (3 for RGB).
        num_classes: K, size of the output (logits).
        input_size: (H, W) of the images the model will see; fixes fc1's in_features.
        conv_channels: O, filters of conv1.
        hidden: U, units of fc1.

    Shapes:
        input (B, C, H, W) → output (B, K).
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 2,
                 input_size: tuple[int, int] = (32, 32), conv_channels: int = 16,
                 hidden: int = 32) -> None:
        super().__init__()
        self.input_size = tuple(input_size)
        self.conv1 = nn.Conv2d(in_channels, conv_channels, kernel_size=3, padding=1)
        self.pool = nn.MaxPool2d(2)
        # spatial size after conv1 and pool, computed (not typed) from the input size
        conv_hw = conv_output_size(self.input_size, kernel_size=3, padding=1)  # (Hc, Wc)
        pool_hw = pool_output_size(conv_hw, kernel_size=2)                      # (Hp, Wp)
        self.flatten_features = conv_channels * pool_hw[0] * pool_hw[1]         # D = O·Hp·Wp
        self.fc1 = nn.Linear(self.flatten_features, hidden)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != self.input_size:
            raise ValueError(f"SimpleNet was built for input_size={self.input_size} but got an "
                             f"input of spatial size {tuple(x.shape[-2:])}; build it with "
                             f"SimpleNet(input_size={tuple(x.shape[-2:])})")
        x = self.pool(F.tanh(self.conv1(x)))  # (B, O, Hp, Wp)
        x = x.flatten(1)                      # (B, D): one row per sample, never view(-1, …)
        x = F.tanh(self.fc1(x))               # (B, U)
        return self.fc2(x)                    # (B, K)


class DepthwiseSeparableConv2d(nn.Module):
    """Depthwise conv (one k×k kernel per input channel) then a 1×1 pointwise conv.

    Args:
        in_channels: C.
        out_channels: O.
        kernel_size, stride, padding, dilation: of the depthwise conv (as nn.Conv2d).
        bias: whether both convs have a bias.

    Shapes:
        input (B, C, H, W) → output (B, O, Hc, Wc), the same as
        ``nn.Conv2d(C, O, kernel_size, stride, padding, dilation)`` would give.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int] = 3,
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] | str = 0,
                 dilation: int | tuple[int, int] = 1, bias: bool = True) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, kernel_size, stride=stride,
                                   padding=padding, dilation=dilation, groups=in_channels, bias=bias)
        self.pointwise = nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.depthwise(x)      # (B, C, Hc, Wc): each channel filtered on its own
        return self.pointwise(x)   # (B, O, Hc, Wc): channels mixed, 1×1 per position
