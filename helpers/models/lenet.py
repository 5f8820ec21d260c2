"""LeNet-5, the classic small convolutional network, in its common modern form.

Glossary of dimension letters:
    B   batch size
    C   channels (1 for the grayscale digits)
    H, W  height and width (32×32 input; 28×28 MNIST digits are padded by 2 in the original)
    K   classes (10 digits)

Mirrors LeCun, Bottou, Bengio & Haffner (1998), "Gradient-based learning applied to document
recognition", Fig. 2: C1 conv 6@5×5 → S2 subsample 2×2 → C3 conv 16@5×5 → S4 subsample 2×2 →
C5 120 units → F6 84 units → 10 outputs, with tanh. Modern re-implementations (and this one)
differ in three ways that change the count, so state them:

* C3 connects every one of its 16 maps to all 6 S2 maps (2,416 parameters); the paper used a
  sparse connection table (60 of the 96 map pairs: 1,516 parameters);
* S2/S4 are parameter-free average pools; the paper's subsampling layers had one trainable
  coefficient and bias per map (12 and 32 parameters);
* the output is ``nn.Linear(84, 10)`` (850 parameters); the paper used fixed Euclidean RBF units.

Hence 61,706 parameters here versus the paper's 60,000 trainable ones.
"""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["LeNet5"]


class LeNet5(nn.Module):
    """LeNet-5: (B, 1, 32, 32) → (B, 10) logits.

    Args:
        in_channels: C (1 for grayscale digits).
        num_classes: K.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5),  # C1: (B, 6, 28, 28)
            nn.Tanh(),
            nn.AvgPool2d(2),  # S2: (B, 6, 14, 14)
            nn.Conv2d(6, 16, kernel_size=5),  # C3: (B, 16, 10, 10)
            nn.Tanh(),
            nn.AvgPool2d(2),  # S4: (B, 16, 5, 5)
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),  # (B, 400)
            nn.Linear(16 * 5 * 5, 120),  # C5: (B, 120)
            nn.Tanh(),
            nn.Linear(120, 84),  # F6: (B, 84)
            nn.Tanh(),
            nn.Linear(84, num_classes),  # output: (B, K)
        )

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)  # (B, 16, 5, 5)
        return self.classifier(x)  # (B, K)
