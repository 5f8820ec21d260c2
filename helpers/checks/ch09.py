"""Chapter 09 (U-Net) exercise questions.

Reference answers come from helpers' core: the pure size/count arithmetic of
``helpers.models.unet`` (built on ``helpers.shapes`` and ``helpers.formulas``), which
tests/test_models_unet.py checks against real torch forward passes and parameter counts.
"""

from __future__ import annotations

import random

from helpers.checks._gen import budget_for_size, largest_fitting, log_uniform
from helpers.checks.registry import Question, register


def _valid_unpadded(rng: random.Random, depth: int, kernel_size: int) -> int:
    """A random valid input size for an unpadded U-Net: 2**p·b + c·(2**(p+1) − 1)."""
    from helpers.models.unet import unet_level_sizes

    p, c = depth - 1, 2 * (kernel_size - 1)
    while True:
        n = 2 ** p * rng.randint(1, 60) + c * (2 ** (p + 1) - 1)
        try:
            unet_level_sizes(n, depth, kernel_size)
        except ValueError:
            continue
        return n


# --------------------------------------------------------------------------- 1. output size

def unet_output_size_reference(input_size: int, depth: int, kernel_size: int = 3) -> int:
    """Output size (one side) of an unpadded U-Net — helpers.models.unet.unet_output_size."""
    from helpers.models.unet import unet_output_size

    return unet_output_size(input_size, depth, kernel_size)


def _output_cases(rng: random.Random) -> list:
    cases = [((572, 5), {})]  # the paper's tile first
    for i in range(19):
        depth = rng.randint(2, 5)
        k = 3 if i % 3 else 5
        kwargs = {} if k == 3 and rng.random() < 0.5 else {"kernel_size": k}
        cases.append(((_valid_unpadded(rng, depth, k), depth), kwargs))
    return cases


register(Question(
    id="09.unet_output_size",
    title="Predict the output size of an unpadded U-Net (input_size, depth, kernel_size=3)",
    cases=_output_cases,
    reference=unet_output_size_reference,
    hint="each unpadded conv removes kernel_size − 1; a level has two convs. Down: conv, conv, then "
         "halve (except the bottleneck). Up: double (2×2 up-conv), then conv, conv. 572 → 388 for depth 5.",
))


# --------------------------------------------------------------------------- 2. smallest valid input

def smallest_valid_input_reference(depth: int, kernel_size: int = 3) -> int:
    """Smallest input size every pooling of an unpadded U-Net sees as even (strict arithmetic)."""
    from helpers.models.unet import unet_level_sizes

    n = 1
    while True:
        try:
            unet_level_sizes(n, depth, kernel_size, strict=True)
            return n
        except ValueError:
            n += 1


def _smallest_cases(rng: random.Random) -> list:
    cases = [((5,), {})]
    pairs = [(d, k) for d in range(1, 7) for k in (3, 5, 7)]
    cases += [((d,), {"kernel_size": k}) for d, k in rng.sample(pairs, 10)]
    return cases


register(Question(
    id="09.smallest_valid_input",
    title="Find the smallest valid input size of an unpadded U-Net (depth, kernel_size=3)",
    cases=_smallest_cases,
    reference=smallest_valid_input_reference,
    hint="valid = every pooling sees an even size and every size stays ≥ 1 (a conv needs at least "
         "kernel_size positions). Work backwards from the bottleneck output b: input = 2**p·b + "
         "c·(2**(p+1) − 1) with p = depth − 1, c = 2·(kernel_size − 1); then check the decoder sizes.",
))


# --------------------------------------------------------------------------- 3. one level's count

def level_params_reference(in_channels: int, out_channels: int, kernel_size: int = 3, dim: int = 1,
                           batch_norm: bool = True, bias: bool = True) -> int:
    """Parameters of one padded U-Net level — helpers.models.unet.conv_block_params."""
    from helpers.models.unet import conv_block_params

    return conv_block_params(in_channels, out_channels, kernel_size, dim=dim, batch_norm=batch_norm, bias=bias)


def _level_cases(rng: random.Random) -> list:
    cases = [((1, 64), {}), ((64, 128), {"dim": 2, "batch_norm": False})]
    for _ in range(18):
        cin = rng.choice([1, 3, 16, 32, 64, 128, 256, 512])
        cout = rng.choice([16, 32, 64, 128, 256, 512, 1024])
        cases.append(((cin, cout), {"kernel_size": rng.choice([3, 5, 7]), "dim": rng.choice([1, 2]),
                                    "batch_norm": rng.random() < 0.5, "bias": rng.random() < 0.7}))
    return cases


register(Question(
    id="09.level_params",
    title="Count one padded U-Net level: two convs (+ BatchNorm) "
          "(in_channels, out_channels, kernel_size=3, dim=1, batch_norm=True, bias=True)",
    cases=_level_cases,
    reference=level_params_reference,
    hint="conv1: out·in·k^dim (+ out bias); conv2: out·out·k^dim (+ out bias); each BatchNorm has "
         "2·out parameters (γ, β). Padding never changes a count.",
))


# --------------------------------------------------------------------------- 4. whole U-Net count

def unet_params_reference(in_channels: int, out_channels: int, base_channels: int, depth: int,
                          batch_norm: bool = False) -> int:
    """Parameters of a 2-D U-Net with 3×3 convs — helpers.models.unet.unet_params."""
    from helpers.models.unet import unet_params

    return unet_params(in_channels, out_channels, base_channels, depth, 3, dim=2,
                       batch_norm=batch_norm)


def _unet_cases(rng: random.Random) -> list:
    cases = [((1, 2, 64, 5), {})]  # the paper
    for _ in range(15):
        cases.append(((rng.choice([1, 3]), rng.randint(1, 10), rng.choice([8, 16, 32, 64]),
                       rng.randint(1, 6)), {"batch_norm": rng.random() < 0.5}))
    return cases


register(Question(
    id="09.unet_params",
    title="Count a whole 2-D U-Net with 3×3 convs (in_channels, out_channels, base_channels, depth, "
          "batch_norm=False)",
    cases=_unet_cases,
    reference=unet_params_reference,
    hint="levels l = 0…depth−1 have base·2**l channels (the last is the bottleneck). Per pooling, the "
         "decoder has ConvTranspose2d(2C, C, 2, stride=2) = 2C·C·4 + C and a level 2C → C → C; "
         "the head is a 1×1 conv base → out_channels. The original U-Net (1, 2, 64, 5) has 31,030,658.",
))


# --------------------------------------------------------------------------- 5. crop

def skip_crop_reference(input_size: int, depth: int, level: int) -> int:
    """Positions removed (both sides together) from the level's skip before concatenation."""
    from helpers.models.unet import unet_level_sizes

    return unet_level_sizes(input_size, depth)[level].crop


def _crop_cases(rng: random.Random) -> list:
    cases = [((572, 5, 0), {})]
    for _ in range(15):
        depth = rng.randint(2, 5)
        cases.append(((_valid_unpadded(rng, depth, 3), depth, rng.randint(0, depth - 2)), {}))
    return cases


register(Question(
    id="09.skip_crop",
    title="How many positions must be cropped from a skip (input_size, depth, level) in an unpadded "
          "3×3 U-Net?",
    cases=_crop_cases,
    reference=skip_crop_reference,
    hint="crop = (encoder size after the level's two convs) − (decoder size right after the up-conv at "
         "that level). For 572 and level 0: 568 − 392 = 176.",
))


# --------------------------------------------------------------------------- 6. two limits on depth

def _is_valid(input_size: int, depth: int) -> bool:
    """`input_size` is valid for an unpadded 3×3 U-Net of this depth (helpers.models.unet, strict)."""
    from helpers.models.unet import unet_level_sizes

    try:
        unet_level_sizes(input_size, depth, 3, strict=True)
    except ValueError:
        return False
    return True


def deepest_unet_reference(input_size: int, in_channels: int, out_channels: int, base_channels: int,
                           budget: int) -> int:
    """Largest depth whose unpadded 3×3 2-D U-Net accepts `input_size` (every pooling sees an even size,
    every conv fits) AND has at most `budget` parameters (no BatchNorm); 0 if depth 1 breaks one.

    The parameter count grows with depth (largest_fitting); validity is checked on each depth up to
    that limit and the answer is the deepest depth meeting both."""
    by_params = largest_fitting(lambda d: unet_params_reference(in_channels, out_channels, base_channels, d),
                                budget)
    return max((d for d in range(1, by_params + 1) if _is_valid(input_size, d)), default=0)


def _deepest_cases(rng: random.Random) -> list:
    cases = []
    for i in range(14):
        cin, cout, base = rng.choice([1, 3]), rng.randint(1, 10), rng.choice([4, 8, 16, 32, 64])
        size = _valid_unpadded(rng, rng.randint(1, 6), 3) + (1 if i % 5 == 4 else 0)  # sometimes odd
        depth = rng.randint(1, 6)  # the answer of the parameter limit; validity may cut it further
        budget = budget_for_size(rng, lambda d: unet_params_reference(cin, cout, base, d), depth,
                                 "exact" if i % 4 == 0 else "between")
        cases.append(((size, cin, cout, base, budget), {}))
    return cases


register(Question(
    id="09.deepest_unet",
    title="Deepest unpadded 3×3 2-D U-Net that accepts a given input size AND fits a parameter budget",
    cases=_deepest_cases,
    reference=deepest_unet_reference,
    hint="check each depth 1, 2, 3, …: is the input valid (walk the sizes down: −4 per level, halve between "
         "levels and only even sizes may be halved; then up: ×2, −4 — nothing may drop below 1) and does "
         "your unet_params(in, out, base, depth) stay within the budget? Return the deepest depth that "
         "passes both (0 if none does).",
))


# --------------------------------------------------------------------------- 7. repair a module

def fixed_unet_level_reference(in_channels: int, channels: int):
    """One padded U-Net level with its skip connection: x (B, in, H, W) → (B, C, H, W), H and W even.

    enc conv (in → C) + ReLU = the skip; MaxPool2d(2); bottleneck conv (C → 2C) + ReLU;
    ConvTranspose2d(2C → C, 2, stride 2); torch.cat([up, skip], dim=1) has C + C = 2C channels;
    decoder conv (2C → C) + ReLU. The broken decoder took C input channels.
    Built under ``torch.device("meta")`` by the caller."""
    import torch
    from torch import nn

    C = channels

    class UNetLevel(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.enc = nn.Conv2d(in_channels, C, 3, padding=1)        # (B, in, H, W) → (B, C, H, W)
            self.pool = nn.MaxPool2d(2)                                # → (B, C, H/2, W/2)
            self.mid = nn.Conv2d(C, 2 * C, 3, padding=1)               # → (B, 2C, H/2, W/2)
            self.up = nn.ConvTranspose2d(2 * C, C, 2, stride=2)        # → (B, C, H, W)
            self.dec = nn.Conv2d(2 * C, C, 3, padding=1)               # cat: (B, 2C, H, W) → (B, C, H, W)

        def forward(self, x):
            skip = torch.relu(self.enc(x))                  # (B, C, H, W)
            h = torch.relu(self.mid(self.pool(skip)))       # (B, 2C, H/2, W/2)
            h = torch.cat([self.up(h), skip], dim=1)        # (B, 2C, H, W)
            return torch.relu(self.dec(h))                  # (B, C, H, W)

    return UNetLevel()


def _fixed_unet_level_cases(rng: random.Random) -> list:
    return [((rng.choice([1, 3, 4, log_uniform(rng, 1, 16)]), log_uniform(rng, 2, 96)), {}) for _ in range(7)]


def _fixed_unet_level_probe(in_channels: int, channels: int) -> dict:
    """A batch of 3 images of 8 × 12 (even, H ≠ W); 6 output values on fixed weights."""
    return {"input": [3, in_channels, 8, 12], "values": 6}


register(Question(
    id="09.fixed_unet_level",
    title="Repair a broken nn.Module: return the fixed U-Net level",
    cases=_fixed_unet_level_cases,
    reference=fixed_unet_level_reference,
    probe=_fixed_unet_level_probe,
    hint="torch.cat([up, skip], dim=1) stacks the channels: C from the up-sampling plus C from the skip = 2·channels. "
         "The decoder conv's in_channels must be 2·channels (its out_channels stay channels). Keep the names "
         "enc/pool/mid/up/dec.",
))
