"""Chapter 02 (Convolution) exercise questions.

Reference answers come from helpers' core (``helpers.formulas.conv_params``,
``helpers.shapes.conv_output_size`` / ``pool_output_size``); tests/test_checks_ch02.py checks every
reference against real torch modules.
"""

from __future__ import annotations

import random

from helpers import formulas, shapes
from helpers.checks._gen import budget_for_size, image_classifier_probe, largest_fitting
from helpers.checks.registry import Question, register

# --------------------------------------------------------------------------- 1. conv_params


def conv_params_reference(in_channels: int, out_channels: int, kernel_size, groups: int = 1,
                          bias: bool = True) -> int:
    """Parameters of nn.Conv1d/2d/3d; an int kernel_size means nn.Conv2d (square kernel)."""
    dim = 2 if isinstance(kernel_size, int) else len(kernel_size)
    return formulas.conv_params(in_channels, out_channels, kernel_size, groups=groups, bias=bias, dim=dim)


def _conv_params_cases(rng: random.Random) -> list:
    cases = []
    for i in range(24):
        groups = rng.choice([1, 1, 1, 2, 4, 8]) if i % 6 else 1
        cin = groups * rng.randint(1, 32)
        cout = groups * rng.randint(1, 32)
        if i % 8 == 7:  # depthwise
            groups, cout = cin, cin * rng.choice([1, 2])
        form = i % 3
        if form == 0:
            kernel = rng.choice([1, 3, 5, 7])
        else:
            kernel = [rng.randint(1, 7) for _ in range(rng.choice([1, 2, 3]))]
        kwargs: dict = {}
        if groups != 1 or rng.random() < 0.3:
            kwargs["groups"] = groups
        if rng.random() < 0.5:
            kwargs["bias"] = rng.random() < 0.5
        cases.append(((cin, cout, kernel), kwargs))
    return cases


register(Question(
    id="02.conv_params",
    title="Implement conv_params(in_channels, out_channels, kernel_size, groups=1, bias=True)",
    cases=_conv_params_cases,
    reference=conv_params_reference,
    hint="weight shape is (out_channels, in_channels // groups, *kernel_size); an int kernel_size k "
         "means k×k (Conv2d), a list means one entry per dimension; bias adds out_channels.",
))


# --------------------------------------------------------------------------- 2. output shape

def conv_output_shape_reference(input_shape: list, out_channels: int, kernel_size: int, stride: int = 1,
                                padding=0, dilation: int = 1) -> tuple:
    """(B, C_out, H_out, W_out) of nn.Conv2d(C, out_channels, kernel_size, stride, padding, dilation)."""
    B, _, H, W = input_shape
    h, w = shapes.conv_output_size((H, W), kernel_size, stride, padding, dilation)
    return (B, out_channels, h, w)


def _shape_cases(rng: random.Random) -> list:
    cases = []
    while len(cases) < 20:
        shape = [rng.randint(1, 64), rng.choice([1, 3, 16, 64]), rng.randint(5, 64), rng.randint(5, 64)]
        k = rng.choice([1, 2, 3, 3, 5, 7])
        kwargs: dict = {}
        if rng.random() < 0.6:
            kwargs["stride"] = rng.choice([1, 2, 3])
        pad = rng.random()
        if pad < 0.15 and kwargs.get("stride", 1) == 1:
            kwargs["padding"] = "same"
        elif pad < 0.25:
            kwargs["padding"] = "valid"
        elif pad < 0.75:
            kwargs["padding"] = rng.randint(0, 3)
        if rng.random() < 0.3:
            kwargs["dilation"] = rng.choice([1, 2, 3])
        args = (shape, rng.choice([8, 16, 32, 128]), k)
        try:
            conv_output_shape_reference(*args, **kwargs)
        except ValueError:  # kernel larger than the padded input: draw again
            continue
        cases.append((args, kwargs))
    return cases


register(Question(
    id="02.conv_output_shape",
    title="Predict the output shape of nn.Conv2d(C, out_channels, kernel_size, stride, padding, dilation)",
    cases=_shape_cases,
    reference=conv_output_shape_reference,
    hint="per side: floor((L + 2·padding − dilation·(kernel_size − 1) − 1) / stride) + 1; "
         "padding='valid' is 0, padding='same' keeps L; the channel dim becomes out_channels.",
))


# --------------------------------------------------------------------------- 3. 'same' padding

def same_padding_reference(kernel_size: int, dilation: int = 1) -> int:
    """Smallest integer padding that keeps the size of a stride-1 conv (found with helpers.shapes).

    Raises ValueError when there is none — d·(k − 1) odd, where torch's padding='same' pads unevenly —
    instead of searching forever (the class overview calls it on variants' cases too)."""
    if dilation * (kernel_size - 1) % 2:
        raise ValueError(f"no integer padding keeps the size: dilation·(kernel_size − 1) = "
                         f"{dilation * (kernel_size - 1)} is odd")
    size = 4 * dilation * kernel_size  # any size large enough for the kernel
    padding = 0
    while shapes.conv_output_size(size, kernel_size, 1, padding, dilation) != size:
        padding += 1
    return padding


def _same_cases(rng: random.Random) -> list:
    cases = []
    while len(cases) < 16:
        k = rng.randint(1, 11)
        d = rng.choice([1, 1, 2, 3, 4])
        if d * (k - 1) % 2:  # no integer padding keeps the size (torch's 'same' pads unevenly)
            continue
        cases.append(((k,), {"dilation": d} if d != 1 or rng.random() < 0.3 else {}))
    return cases


register(Question(
    id="02.same_padding",
    title="Find the integer padding that keeps the output size (stride 1), for any kernel and dilation",
    cases=_same_cases,
    reference=same_padding_reference,
    hint="the output size is L + 2p − d·(k − 1) at stride 1; it equals L when 2p = d·(k − 1).",
))


# --------------------------------------------------------------------------- 4. budget

def max_out_channels_reference(in_channels: int, kernel_size: int, budget: int, groups: int = 1) -> int:
    """Largest out_channels (a multiple of groups) such that nn.Conv2d(in, out, k, groups=groups)
    has at most `budget` parameters; 0 if not even out_channels = groups fits."""
    return largest_fitting(lambda out: formulas.conv_params(in_channels, out, kernel_size, groups=groups),
                           budget, step=groups)


def _budget_cases(rng: random.Random) -> list:
    cases = []
    for i in range(16):
        groups = rng.choice([1, 1, 2, 4]) if i % 4 else 1
        cin = groups * rng.randint(1, 64)
        k = rng.choice([1, 3, 5])

        def count(out: int) -> int:
            return formulas.conv_params(cin, out, k, groups=groups)

        # a third of the budgets are met exactly, the others fall between two multiples of groups
        budget = budget_for_size(rng, count, groups * rng.randint(1, 64), "exact" if i % 3 == 0 else "between",
                                 step=groups)
        if i == 7:
            budget = count(groups) - 1  # nothing fits
        cases.append(((cin, k, budget), {"groups": groups} if groups != 1 else {}))
    return cases


register(Question(
    id="02.max_out_channels",
    title="Find the most filters (out_channels) a Conv2d can have within a parameter budget",
    cases=_budget_cases,
    reference=max_out_channels_reference,
    hint="each filter costs (in_channels // groups)·k·k weights + 1 bias; out_channels must be a "
         "multiple of groups; return 0 if not even out_channels = groups fits.",
))


# --------------------------------------------------------------------------- 5. spot the bug

def tiny_cnn_fc_in_features_reference(height: int, width: int) -> int:
    """in_features of the Linear after Conv2d(C, 8, 5) → MaxPool2d(2) → Conv2d(8, 16, 3, padding=1)
    → MaxPool2d(2) → Flatten, for an (H, W) input — from helpers.shapes."""
    size = shapes.conv_output_size((height, width), kernel_size=5)
    size = shapes.pool_output_size(size, kernel_size=2)
    size = shapes.conv_output_size(size, kernel_size=3, padding=1)
    h, w = shapes.pool_output_size(size, kernel_size=2)
    return 16 * h * w


def _tiny_cases(rng: random.Random) -> list:
    return [((28, 28), {})] + [((rng.randint(8, 96), rng.randint(8, 96)), {}) for _ in range(15)]


register(Question(
    id="02.tiny_cnn_fc_in_features",
    answer="fc_in_features",
    title="Spot the bug: TinyCNN's Linear(16 * 5 * 5, 10) — compute the flatten size for any input",
    cases=_tiny_cases,
    reference=tiny_cnn_fc_in_features_reference,
    hint="follow one side through the stack: the 5×5 conv without padding removes 4, each MaxPool2d(2) "
         "halves rounding down, the 3×3 conv with padding=1 keeps the size; multiply by the 16 channels.",
))


# --------------------------------------------------------------------------- 6. repair a CNN

def fixed_cnn_reference(channels: int, height: int, width: int, classes: int):
    """The repaired CNN of the exercise: conv 5×5 (no padding) → ReLU → 2×2 max-pool → Linear, with
    the Linear's in_features 8·⌊(H−4)/2⌋·⌊(W−4)/2⌋. Built under ``torch.device("meta")`` by the caller."""
    import torch
    from torch import nn

    class CNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(channels, 8, kernel_size=5)                      # (B, 8, H-4, W-4)
            self.pool = nn.MaxPool2d(2)                                            # (B, 8, (H-4)//2, (W-4)//2)
            self.fc = nn.Linear(8 * ((height - 4) // 2) * ((width - 4) // 2), classes)  # (B, classes)

        def forward(self, x):
            x = self.pool(torch.relu(self.conv(x)))
            return self.fc(x.flatten(1))

    return CNN()


def _fixed_cnn_cases(rng: random.Random) -> list:
    return [((rng.choice([1, 3]), rng.randint(6, 40), rng.randint(6, 40), rng.randint(2, 20)), {})
            for _ in range(8)]


register(Question(
    id="02.fixed_cnn",
    title="Repair a broken CNN: return the module with the right Linear in_features",
    cases=_fixed_cnn_cases,
    reference=fixed_cnn_reference,
    probe=image_classifier_probe,
    hint="follow the shape: a 5×5 conv without padding makes H → H − 4, the 2×2 max-pool halves it "
         "rounding down, and flatten gives 8·⌊(H−4)/2⌋·⌊(W−4)/2⌋ features.",
))
