"""The "typical CNN block": convolution → BatchNorm → ReLU → pooling → dropout.

Glossary of dimension letters (used in the shape comments below):
    B     batch size
    C_in  input channels            C_out  output channels (= number of filters)
    H, W  input height and width
    H1,W1 after the convolution: floor((H + 2·padding − kernel_size) / 1) + 1 (= H when padding=(k−1)/2)
    H2,W2 after pooling:         floor(H1 / pool) (stride defaults to the pool window)

Two variants, both used by chapter 04 (normalization, dropout, activations) and its exercises:

* `seed_cnn_block()` — the block exactly as the course's seed notes print it::

      nn.Sequential(nn.Conv2d(1, 16, 3), nn.ReLU(), nn.MaxPool2d(2), nn.BatchNorm2d(16), nn.Dropout(0.5))

  (BatchNorm *after* pooling, and the convolution has no padding, so 28×28 becomes 26×26.)

* `ConvBlock` — the conventional order conv → BN → ReLU → pool → dropout, as in Ioffe & Szegedy,
  "Batch Normalization" (2015, BN inserted before the nonlinearity) and torchvision's VGG-BN
  (`torchvision/models/vgg.py`, `make_layers(batch_norm=True)`: Conv2d → BatchNorm2d → ReLU,
  then MaxPool2d). Deviations from torchvision: one conv per block, and a Dropout at the end of the
  block (torchvision's VGG only uses dropout in the classifier). Like torchvision's ResNet, the
  convolution has ``bias=False`` by default: BatchNorm subtracts the per-channel mean right after it,
  which cancels any per-channel bias, so that bias would be ``C_out`` wasted parameters.
"""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["ConvBlock", "seed_cnn_block"]


class ConvBlock(nn.Module):
    """conv → BatchNorm → ReLU → MaxPool → Dropout, with the conventional ordering.

    Args:
        in_channels: C_in.
        out_channels: C_out, the number of filters (and of BatchNorm channels).
        kernel_size: convolution kernel (square).
        padding: convolution padding; the default ``kernel_size // 2`` keeps H and W for odd kernels.
        pool: MaxPool2d window (and stride); 1 disables the downsampling.
        p: dropout probability.
        conv_bias: give the convolution a bias (redundant before BatchNorm, hence False by default).

    Shapes: input (B, C_in, H, W) → output (B, C_out, H2, W2).
    Parameters: C_out·C_in·k² (+ C_out with conv_bias) for the conv, 2·C_out for BatchNorm (γ, β);
    buffers: 2·C_out + 1 (running_mean, running_var, num_batches_tracked).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 padding: int | None = None, pool: int = 2, p: float = 0.5, conv_bias: bool = False) -> None:
        super().__init__()
        padding = kernel_size // 2 if padding is None else padding
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, bias=conv_bias)
        self.bn = nn.BatchNorm2d(out_channels)
        self.act = nn.ReLU()
        self.pool = nn.MaxPool2d(pool)
        self.drop = nn.Dropout(p)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)  # (B, C_out, H1, W1)
        x = self.bn(x)    # (B, C_out, H1, W1)  per-channel normalise, then γ·x̂ + β
        x = self.act(x)   # (B, C_out, H1, W1)
        x = self.pool(x)  # (B, C_out, H2, W2)
        x = self.drop(x)  # (B, C_out, H2, W2)  identity in eval mode
        return x


def seed_cnn_block() -> nn.Sequential:
    """The seed notes' "typical CNN layer block", verbatim (order: conv, ReLU, pool, BN, dropout).

    Shapes: (B, 1, H, W) → conv (B, 16, H−2, W−2) → pool (B, 16, (H−2)//2, (W−2)//2) → same.
    For the seed's MNIST-sized batch (64, 1, 28, 28) → (64, 16, 13, 13), not 14×14: the convolution
    has no padding.
    """
    return nn.Sequential(
        nn.Conv2d(1, 16, 3),   # (B, 16, H−2, W−2)
        nn.ReLU(),             # (B, 16, H−2, W−2)
        nn.MaxPool2d(2),       # (B, 16, (H−2)//2, (W−2)//2)
        nn.BatchNorm2d(16),    # (B, 16, (H−2)//2, (W−2)//2)
        nn.Dropout(0.5),       # (B, 16, (H−2)//2, (W−2)//2)
    )
