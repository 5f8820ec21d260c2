"""Chapter 04 (Normalization, dropout, activations) exercise questions.

Reference answers come from torch modules built in the checking process (on the ``meta`` device
where only counts are needed) and counted with ``helpers.counting``, or from ``helpers.models``;
tests/test_checks_ch03_ch04.py checks them against ``helpers.formulas`` and real forward passes.
"""

from __future__ import annotations

import random

from helpers import formulas, shapes
from helpers.checks._gen import close, largest_fitting_all, log_uniform, two_limit_budgets
from helpers.checks.registry import Question, register


# --------------------------------------------------------------------------- 1. BatchNorm params vs buffers

def batchnorm_counts_reference(num_features: int, affine: bool = True, track_running_stats: bool = True) -> list:
    """[parameters, buffer elements] of nn.BatchNorm2d, counted by helpers.counting."""
    from torch import nn

    from helpers.counting import count_buffers, count_params

    bn = nn.BatchNorm2d(num_features, affine=affine, track_running_stats=track_running_stats, device="meta")
    return [count_params(bn), count_buffers(bn)]


def _bn_cases(rng: random.Random) -> list:
    cases = []
    for i in range(16):
        C = rng.choice([1, 3, 16, 32, 64, 100, 256, 512, 1024])
        kwargs = {} if i % 4 == 0 else {"affine": rng.random() < 0.6, "track_running_stats": rng.random() < 0.6}
        cases.append(((C,), kwargs))
    return cases


register(Question(
    id="04.batchnorm_counts",
    title="Count BatchNorm2d's parameters and buffer elements: return [params, buffers]",
    cases=_bn_cases,
    reference=batchnorm_counts_reference,
    hint="parameters: weight γ and bias β, C each, only with affine=True. Buffers: running_mean and "
         "running_var (C each) plus num_batches_tracked (one number), only with track_running_stats=True.",
))


# --------------------------------------------------------------------------- 2. which norm, how many params

NORM_KINDS = ("batch", "layer", "group", "instance")


def norm_params_reference(kind: str, channels: int, height: int, width: int, num_groups: int) -> int:
    """Parameters of the norm layer (torch defaults) for a (B, C, H, W) map, counted on the meta device.

    batch: BatchNorm2d(C); layer: LayerNorm([C, H, W]); group: GroupNorm(num_groups, C);
    instance: InstanceNorm2d(C).
    """
    from torch import nn

    from helpers.counting import count_params

    layer = {"batch": lambda: nn.BatchNorm2d(channels, device="meta"),
             "layer": lambda: nn.LayerNorm([channels, height, width], device="meta"),
             "group": lambda: nn.GroupNorm(num_groups, channels, device="meta"),
             "instance": lambda: nn.InstanceNorm2d(channels, device="meta")}[kind]()
    return count_params(layer)


def _norm_cases(rng: random.Random) -> list:
    cases = []
    for i in range(16):
        C = rng.choice([4, 8, 16, 32, 64])
        G = rng.choice([g for g in (1, 2, 4, 8) if C % g == 0])
        cases.append(((NORM_KINDS[i % 4], C, rng.randint(2, 32), rng.randint(2, 32), G), {}))
    return cases


register(Question(
    id="04.norm_params",
    title="Parameters of BatchNorm2d / LayerNorm([C, H, W]) / GroupNorm / InstanceNorm2d (torch defaults)",
    cases=_norm_cases,
    reference=norm_params_reference,
    hint="BatchNorm and GroupNorm: γ, β per channel (GroupNorm's count does not depend on num_groups). "
         "LayerNorm: γ, β of shape normalized_shape. InstanceNorm2d: affine=False by default.",
))


# --------------------------------------------------------------------------- 3. dropout

def dropout_stats_reference(n: int, value: float, p: float) -> list:
    """[expected number of zeros, value of a survivor, expected mean of the output] for
    nn.Dropout(p) in training mode applied to a tensor of n copies of `value`.

    The survivor's value is read from torch's own dropout; the expectations follow from each
    element being zeroed independently with probability p.
    """
    import torch
    from torch import nn

    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(0)
        out = nn.Dropout(p).train()(torch.full((4096,), float(value), dtype=torch.float64))
    finally:
        torch.random.set_rng_state(generator_state)
    survivor = float(out[out != 0][0]) if value != 0 else 0.0
    return [n * p, survivor, float(value)]


def _dropout_cases(rng: random.Random) -> list:
    return [((rng.choice([10, 100, 1000, 4096]), rng.choice([1.0, 2.0, 0.5, -3.0, 10.0]),
              rng.choice([0.1, 0.2, 0.25, 0.3, 0.5, 0.75, 0.8, 0.9])), {}) for _ in range(16)]


register(Question(
    id="04.dropout_stats",
    title="Dropout in training mode on n copies of a value: [expected zeros, survivor value, expected mean]",
    cases=_dropout_cases,
    reference=dropout_stats_reference,
    compare=close,
    hint="each element is zeroed independently with probability p; survivors are divided by (1 − p), "
         "which keeps the expected value of every element equal to its input.",
))


# --------------------------------------------------------------------------- 4. typical block counts

def conv_block_counts_reference(in_channels: int, out_channels: int, kernel_size: int, conv_bias: bool) -> list:
    """[parameters, buffer elements] of helpers.models.ConvBlock (conv → BN → ReLU → pool → dropout)."""
    from helpers.counting import count_buffers, count_params
    from helpers.models import ConvBlock

    block = ConvBlock(in_channels, out_channels, kernel_size, conv_bias=conv_bias)
    return [count_params(block), count_buffers(block)]


def _block_cases(rng: random.Random) -> list:
    return [((rng.choice([1, 3, 16, 32]), rng.choice([8, 16, 32, 64]), rng.choice([1, 3, 5]),
              rng.random() < 0.5), {}) for _ in range(12)]


register(Question(
    id="04.conv_block_counts",
    title="Count the typical block conv → BatchNorm2d → ReLU → MaxPool2d → Dropout: [params, buffers]",
    cases=_block_cases,
    reference=conv_block_counts_reference,
    hint="only the conv (out·in·k² + out if it has a bias) and the BatchNorm (2·out parameters, "
         "2·out + 1 buffer elements) own tensors; ReLU, pooling and dropout have none.",
))


# --------------------------------------------------------------------------- 5. spot the bug

def fixed_norm_model(in_channels: int, filters: int, height: int, width: int, num_classes: int):
    """The corrected model of the exercise (on the meta device): BatchNorm2d(filters), and the
    Linear sized for the pooled map."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(in_channels, filters, 3, padding=1, device="meta"),        # (B, F, H, W)
        nn.BatchNorm2d(filters, device="meta"),                              # (B, F, H, W)
        nn.ReLU(),
        nn.MaxPool2d(2),                                                     # (B, F, H//2, W//2)
        nn.Dropout(0.25),
        nn.Flatten(),                                                        # (B, F·(H//2)·(W//2))
        nn.Linear(filters * (height // 2) * (width // 2), num_classes, device="meta"),  # (B, K)
    )


def fixed_norm_model_counts_reference(in_channels: int, filters: int, height: int, width: int,
                                      num_classes: int) -> list:
    """[parameters, buffer elements] of the fixed model, counted by helpers.counting."""
    from helpers.counting import count_buffers, count_params

    model = fixed_norm_model(in_channels, filters, height, width, num_classes)
    return [count_params(model), count_buffers(model)]


def _fixed_cases(rng: random.Random) -> list:
    return [((rng.choice([1, 3]), rng.choice([8, 16, 32, 64]), rng.randint(4, 40), rng.randint(4, 40),
              rng.choice([2, 10, 100])), {}) for _ in range(12)]


register(Question(
    id="04.fixed_model_counts",
    title="Spot the bugs in a conv → BN → ReLU → pool → dropout classifier, then count the fixed model "
          "[params, buffers]",
    cases=_fixed_cases,
    reference=fixed_norm_model_counts_reference,
    hint="BatchNorm2d's num_features must be the conv's out_channels; after MaxPool2d(2) the map is "
         "(H//2)×(W//2), so the Linear takes filters·(H//2)·(W//2) inputs. Only conv, BN and Linear "
         "own parameters; only BN owns buffers.",
))


# --------------------------------------------------------------------------- 6. two limits on width

def _block_state(in_channels: int, filters: int) -> int:
    """state_dict elements of ConvBlock(in_channels, filters, 3): conv weights + BN γ, β + BN buffers."""
    return (formulas.conv_params(in_channels, filters, 3, bias=False) + formulas.batchnorm_params(filters)
            + formulas.batchnorm_buffers(filters))


def _block_output(batch: int, height: int, width: int, filters: int) -> int:
    """Elements of ConvBlock's output (B, F, H//2, W//2) (the 3×3 conv with padding 1 keeps H×W)."""
    h, w = shapes.pool_output_size((height, width), 2)
    return batch * filters * h * w


def widest_block_reference(in_channels: int, height: int, width: int, batch: int, state_budget: int,
                           activation_budget: int) -> int:
    """Largest filters F of ConvBlock(in_channels, F, 3) whose state_dict (parameters + buffers) fits
    state_budget AND whose output on a (batch, in_channels, height, width) input fits activation_budget."""
    return largest_fitting_all((lambda f: _block_state(in_channels, f), state_budget),
                               (lambda f: _block_output(batch, height, width, f), activation_budget))


def _widest_cases(rng: random.Random) -> list:
    cases = []
    for i in range(16):
        cin, batch = rng.choice([1, 3, 16, 64]), rng.choice([1, 8, 32, 128])
        h, w = rng.randint(2, 64), rng.randint(2, 64)
        filters = rng.randint(1, 256)  # the answer of one limit; the other is drawn freely around it
        state, output = two_limit_budgets(rng, lambda f: _block_state(cin, f),
                                          lambda f: _block_output(batch, h, w, f), filters, exact=i % 4 == 0)
        if i == 5:
            state = _block_state(cin, 1) - 1  # not even one filter fits
        cases.append(((cin, h, w, batch, state, output), {}))
    return cases


register(Question(
    id="04.widest_block",
    title="Largest number of filters of ConvBlock(in_channels, F, 3) whose state_dict fits one budget and "
          "whose output fits another",
    cases=_widest_cases,
    reference=widest_block_reference,
    hint="two limits, both growing with F: the state_dict holds the conv weights (F·C·9, no bias), BatchNorm's "
         "γ and β (2F) AND its buffers (running_mean, running_var: 2F, num_batches_tracked: 1); the output "
         "is (B, F, H//2, W//2) because the padded 3×3 conv keeps H×W and MaxPool2d(2) halves it. "
         "Take the largest F of each limit and return the smaller (0 if F = 1 already breaks one).",
))


# --------------------------------------------------------------------------- 7. repair a conv–BN block

def fixed_conv_bn_block_reference(in_channels: int, out_channels: int):
    """The repaired block of the exercise: Conv2d(3×3, padding=1, bias=False) → BatchNorm2d(out_channels)
    → ReLU; (B, in_channels, H, W) → (B, out_channels, H, W). BatchNorm normalises the conv's
    out_channels maps and its shift β replaces the conv bias (which the batch mean would cancel).

    Built under ``torch.device("meta")`` by the caller (see :mod:`helpers.checks.module_answer`)."""
    import torch
    from torch import nn

    class ConvBN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False)  # (B, out, H, W)
            self.bn = nn.BatchNorm2d(out_channels)                                                  # (B, out, H, W)

        def forward(self, x):
            return torch.relu(self.bn(self.conv(x)))  # (B, out, H, W)

    return ConvBN()


def _fixed_conv_bn_block_cases(rng: random.Random) -> list:
    cases = []
    for _ in range(8):
        cin, cout = log_uniform(rng, 1, 64), log_uniform(rng, 1, 64)
        while cout == cin:  # BatchNorm2d(in_channels) would run where in == out
            cout = log_uniform(rng, 1, 64)
        cases.append(((cin, cout), {}))
    return cases


def _fixed_conv_bn_block_probe(in_channels: int, out_channels: int) -> dict:
    """A batch of 3 maps 5×4; 8 output values on fixed weights and running statistics (eval mode)."""
    return {"input": [3, in_channels, 5, 4], "values": 8}


register(Question(
    id="04.fixed_conv_bn_block",
    title="Repair a broken Conv2d → BatchNorm2d → ReLU block (and drop the bias BatchNorm cancels)",
    cases=_fixed_conv_bn_block_cases,
    reference=fixed_conv_bn_block_reference,
    probe=_fixed_conv_bn_block_probe,
    hint="BatchNorm2d(num_features) normalises the channels it RECEIVES: the conv's out_channels, not the "
         "block's in_channels. And a conv bias before BatchNorm is subtracted again with the batch mean: "
         "build the conv with bias=False (BatchNorm's β is the shift). Keep the names conv/bn.",
))
