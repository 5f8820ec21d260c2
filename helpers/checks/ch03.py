"""Chapter 03 (Pooling) exercise questions.

Reference answers come from helpers' core (``helpers.shapes``, ``helpers.formulas``,
``helpers.counting``) or from torch modules built in the checking process; tests/test_checks_ch03_ch04.py
checks every reference against torch's forward pass.
"""

from __future__ import annotations

import random

from helpers import formulas, shapes
from helpers.checks._gen import budget_for_size, image_classifier_probe, largest_fitting, largest_fitting_all, log_uniform
from helpers.checks.registry import Question, register


# --------------------------------------------------------------------------- 1. pool_output_size

def pool_output_size_reference(input_size: int, kernel_size: int, stride=None, padding: int = 0,
                               dilation: int = 1, ceil_mode: bool = False) -> int:
    """Output length of nn.MaxPool1d — helpers.shapes.pool_output_size."""
    return shapes.pool_output_size(input_size, kernel_size, stride, padding, dilation, ceil_mode)


def _valid_pool_config(rng: random.Random, want_extra_rule: bool) -> tuple[tuple, dict]:
    """A random valid MaxPool1d config; with want_extra_rule, one where the last window is dropped."""
    while True:
        k = rng.randint(1, 6)
        s = rng.randint(1, 6)
        p = rng.randint(0, k // 2)
        d = rng.choice([1, 1, 1, 2, 3])
        L = rng.randint(1, 40)
        ceil_mode = want_extra_rule or rng.random() < 0.5
        span = d * (k - 1) + 1
        if L + 2 * p < span:
            continue
        naive_ceil = -(-(L + 2 * p - span) // s) + 1
        if want_extra_rule != (ceil_mode and (naive_ceil - 1) * s >= L + p):
            continue
        kwargs: dict = {"ceil_mode": ceil_mode}
        if s != k or rng.random() < 0.5:
            kwargs["stride"] = s
        if p or rng.random() < 0.3:
            kwargs["padding"] = p
        if d != 1:
            kwargs["dilation"] = d
        return (L, k), kwargs


def _pool_cases(rng: random.Random) -> list:
    cases = [((28, 2), {}), ((5, 2), {"ceil_mode": True})]  # the defaults first: stride = kernel
    cases += [_valid_pool_config(rng, want_extra_rule=(i % 4 == 3)) for i in range(22)]
    return cases


register(Question(
    id="03.pool_output_size",
    title="Implement pool_output_size(input_size, kernel_size, stride=None, padding=0, dilation=1, "
          "ceil_mode=False) for nn.MaxPool1d",
    cases=_pool_cases,
    reference=pool_output_size_reference,
    hint="stride=None means stride = kernel_size. out = floor or ceil((L + 2p − d·(k−1) − 1)/s) + 1; "
         "with ceil_mode, if the last window would start in the right padding ((out−1)·s ≥ L + p), "
         "torch drops it (out −= 1). Use integer arithmetic: -(-a // b) is ceil(a/b).",
))


# --------------------------------------------------------------------------- 2. conv → pool stack shape

def conv_pool_shape_reference(input_shape: list, layers: list) -> tuple:
    """Shape after a stack of Conv2d / MaxPool2d layers, from helpers.shapes (channels tracked by hand)."""
    B, C, H, W = input_shape
    for layer in layers:
        args = {k: v for k, v in layer.items() if k not in ("layer", "out_channels")}
        if layer["layer"] == "Conv2d":
            H, W = shapes.conv_output_size((H, W), **args)
            C = layer["out_channels"]
        else:
            H, W = shapes.pool_output_size((H, W), **args)
    return (B, C, H, W)


def _stack_cases(rng: random.Random) -> list:
    cases = []
    while len(cases) < 16:
        shape = [rng.randint(1, 64), rng.choice([1, 3]), rng.randint(16, 96), rng.randint(16, 96)]
        layers: list = []
        for _ in range(rng.randint(1, 3)):
            k = rng.choice([1, 3, 5, 7])
            layers.append({"layer": "Conv2d", "out_channels": rng.choice([8, 16, 32, 64]), "kernel_size": k,
                           "stride": rng.choice([1, 1, 1, 2]), "padding": rng.choice([0, k // 2])})
            pool = {"layer": "MaxPool2d", "kernel_size": rng.choice([2, 2, 3])}
            if rng.random() < 0.3:
                pool["stride"] = rng.choice([1, 2])
            if rng.random() < 0.3:
                pool["ceil_mode"] = True
            layers.append(pool)
        try:
            conv_pool_shape_reference(shape, layers)
        except ValueError:  # a map shrank below the window: draw again
            continue
        cases.append(((shape, layers), {}))
    return cases


register(Question(
    id="03.conv_pool_shape",
    title="Predict the output shape (B, C, H, W) of a stack of Conv2d and MaxPool2d layers",
    cases=_stack_cases,
    reference=conv_pool_shape_reference,
    hint="Conv2d: H → floor((H + 2p − k)/s) + 1 and C → out_channels; MaxPool2d: same formula with "
         "stride defaulting to kernel_size (ceil instead of floor with ceil_mode) and C unchanged. "
         "Missing keys take torch's defaults.",
))


# --------------------------------------------------------------------------- 3. head params

def head_params_reference(channels: int, height: int, width: int, num_classes: int, gap: bool) -> int:
    """Build the head on the meta device and count it with helpers.counting."""
    from torch import nn

    from helpers.counting import count_params

    if gap:
        head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes, device="meta"))
    else:
        head = nn.Sequential(nn.Flatten(), nn.Linear(channels * height * width, num_classes, device="meta"))
    return count_params(head)


def _head_cases(rng: random.Random) -> list:
    return [((rng.choice([16, 64, 128, 256, 512, 2048]), hw, hw, rng.choice([2, 10, 100, 1000])),
             {"gap": i % 2 == 0})
            for i, hw in enumerate(rng.randint(1, 14) for _ in range(16))]


register(Question(
    id="03.head_params",
    title="Parameters of a classifier head: flatten → Linear, or global average pooling → Linear",
    cases=_head_cases,
    reference=head_params_reference,
    hint="Flatten gives C·H·W features, GAP gives C (pooling itself has no parameters); "
         "a Linear(n, K) has n·K + K parameters.",
))


# --------------------------------------------------------------------------- 4. budget

def max_map_size_reference(channels: int, num_classes: int, budget: int) -> int:
    """Largest square map side s such that flatten → Linear(C·s·s, K) fits the budget (0 if none)."""
    return largest_fitting(lambda side: formulas.linear_params(channels * side * side, num_classes), budget)


def _budget_cases(rng: random.Random) -> list:
    cases = []
    for i in range(16):
        C, K = rng.choice([8, 32, 64, 256, 512]), rng.choice([2, 10, 100, 1000])

        def count(side: int) -> int:
            return formulas.linear_params(C * side * side, K)

        budget = budget_for_size(rng, count, rng.randint(1, 20), "exact" if i % 3 == 0 else "between")
        if i == 5:
            budget = count(1) - 1  # not even a 1×1 map fits
        cases.append(((C, K, budget), {}))
    return cases


register(Question(
    id="03.max_map_size",
    title="Find the largest final feature map (s×s) whose flatten → Linear head fits a parameter budget",
    cases=_budget_cases,
    reference=max_map_size_reference,
    hint="the head has C·s²·K + K parameters; find the largest s with that ≤ budget (return 0 if even "
         "s = 1 is too big). A loop is exact; with a square root, check the neighbours of your guess.",
))


# --------------------------------------------------------------------------- 5. spot the bug

def fixed_fc1_in_features_reference(conv_channels: int, height: int, width: int) -> int:
    """Run Conv2d(3, C, 3, padding=1) → MaxPool2d(2) → Flatten on a (1, 3, H, W) input with torch."""
    import torch
    from torch import nn

    features = nn.Sequential(nn.Conv2d(3, conv_channels, 3, padding=1), nn.MaxPool2d(2), nn.Flatten())
    with torch.no_grad():
        return int(features(torch.zeros(1, 3, height, width)).shape[1])


def _fc1_cases(rng: random.Random) -> list:
    return [((rng.choice([4, 8, 16, 32]), rng.randint(2, 64), rng.randint(2, 64)), {}) for _ in range(16)]


register(Question(
    id="03.fixed_fc1_in_features",
    title="Spot the bug: SimpleNet's hard-coded 16*16*16 only fits 32×32 images — compute fc1's in_features",
    cases=_fc1_cases,
    reference=fixed_fc1_in_features_reference,
    hint="conv1 (3×3, padding=1) keeps H×W; MaxPool2d(2) halves each side, rounding DOWN (odd sizes lose "
         "their last row/column); flatten multiplies channels × height × width.",
))


# --------------------------------------------------------------------------- 6. two limits on depth

def _stack_params(in_channels: int, base_channels: int, blocks: int) -> int:
    """Parameters of `blocks` blocks Conv2d(c, base·2**i, 3, padding) → ReLU → MaxPool2d(2)."""
    total, c = 0, in_channels
    for i in range(blocks):
        total += formulas.conv_params(c, base_channels * 2 ** i, 3)
        c = base_channels * 2 ** i
    return total


def _stack_side(size: int, padding: int, blocks: int) -> int:
    """Side of the square map after `blocks` blocks (0 once a layer no longer fits its input)."""
    for _ in range(blocks):
        if size + 2 * padding < 3:
            return 0
        size = shapes.conv_output_size(size, 3, padding=padding)
        if size < 2:
            return 0
        size = shapes.pool_output_size(size, 2)
    return size


def deepest_stack_reference(size: int, in_channels: int, base_channels: int, padding: int, budget: int,
                            min_side: int) -> int:
    """Most blocks such that the conv parameters fit `budget` AND the final map keeps side >= min_side.

    Both limits are monotone in the number of blocks (the count grows, the side shrinks), so the
    answer is the smaller of the two largest_fitting answers (0 if not even one block meets both).
    """
    return largest_fitting_all((lambda n: _stack_params(in_channels, base_channels, n), budget),
                               (lambda n: -_stack_side(size, padding, n), -min_side))


def _deepest_cases(rng: random.Random) -> list:
    cases = []
    for i in range(16):
        cin, base, padding = rng.choice([1, 3]), rng.choice([4, 8, 16, 32, 64]), rng.choice([0, 1])
        size, min_side = rng.randint(8, 512), rng.randint(1, 8)
        depth = rng.randint(1, 7)  # where the parameter limit binds (between depth and depth + 1 blocks)
        budget = budget_for_size(rng, lambda n: _stack_params(cin, base, n), depth,
                                 "exact" if i % 4 == 0 else "between")
        if i == 3:
            budget = _stack_params(cin, base, 1) - 1  # not even one block fits
        cases.append(((size, cin, base, padding, budget, min_side), {}))
    return cases


register(Question(
    id="03.deepest_stack",
    title="How many blocks Conv2d(3×3) → ReLU → MaxPool2d(2) (channels doubling) fit both a parameter "
          "budget and a minimum final map size?",
    cases=_deepest_cases,
    reference=deepest_stack_reference,
    hint="two limits, each monotone in the number of blocks n: the conv parameters grow with n (block i "
         "maps its input channels to base·2**i, 3×3 kernels with bias), the side shrinks "
         "(conv: s + 2p − 2, pool: halve rounding down). Add blocks while BOTH still hold; the answer "
         "is the last n that met both (0 if the first block already breaks one).",
))


# --------------------------------------------------------------------------- 7. repair a two-pool CNN

def fixed_pool_cnn_reference(channels: int, height: int, width: int, classes: int):
    """The repaired CNN of the exercise: two blocks Conv2d(3×3, padding=1) → ReLU → MaxPool2d(2), then
    Flatten → Linear with in_features 16·⌊⌊H/2⌋/2⌋·⌊⌊W/2⌋/2⌋ (each pool halves, rounding down).

    Built under ``torch.device("meta")`` by the caller (see :mod:`helpers.checks.module_answer`)."""
    import torch
    from torch import nn

    class PoolCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(channels, 8, kernel_size=3, padding=1)  # (B, 8, H, W)
            self.conv2 = nn.Conv2d(8, 16, kernel_size=3, padding=1)        # (B, 16, H//2, W//2)
            self.pool = nn.MaxPool2d(2)                                    # halves H and W, rounding down
            self.fc = nn.Linear(16 * ((height // 2) // 2) * ((width // 2) // 2), classes)  # (B, classes)

        def forward(self, x):
            x = self.pool(torch.relu(self.conv1(x)))  # (B, 8, H//2, W//2)
            x = self.pool(torch.relu(self.conv2(x)))  # (B, 16, (H//2)//2, (W//2)//2)
            return self.fc(x.flatten(1))              # (B, classes)

    return PoolCNN()


def _fixed_pool_cnn_cases(rng: random.Random) -> list:
    """Sizes 4..40, odd and even; every case has a side that is not a multiple of 4, so neither the
    broken module (one halving) nor a rounded true division (round(H·W/16)) gives the fc's in_features."""
    cases = []
    while len(cases) < 8:
        h, w = rng.randint(4, 40), rng.randint(4, 40)
        if len(cases) % 2 == 0 and h % 2 == 0:
            h += 1  # every other case has an odd height
        if round(h * w / 16) == (h // 4) * (w // 4):
            continue
        cases.append(((rng.choice([1, 3]), h, w, rng.randint(2, 20)), {}))
    return cases


register(Question(
    id="03.fixed_pool_cnn",
    title="Repair a broken two-pool CNN: return the module with the right Linear in_features",
    cases=_fixed_pool_cnn_cases,
    reference=fixed_pool_cnn_reference,
    probe=image_classifier_probe,
    hint="a 3×3 conv with padding=1 keeps H and W; EACH MaxPool2d(2) halves them rounding down, and "
         "there are two: fc's in_features is 16·((H // 2) // 2)·((W // 2) // 2). Keep the names "
         "conv1/conv2/pool/fc.",
))
