"""Chapter 01 (Linear layers) exercise questions.

Reference answers come from helpers' core (``helpers.formulas``, ``helpers.counting``) or from
torch itself, run on the ``meta`` device (shapes only, no memory, milliseconds per case).
"""

from __future__ import annotations

import random
from typing import Optional

from helpers import formulas
from helpers.checks._gen import budget_for_size, largest_fitting, log_uniform
from helpers.checks.registry import Question, register


# --------------------------------------------------------------------------- 1. linear_params

def _linear_cases(rng: random.Random) -> list:
    cases = []
    for i in range(20):
        args = (log_uniform(rng, 1, 4096), log_uniform(rng, 1, 4096))
        if i % 4 == 3:
            cases.append((args, {}))  # the default: bias=True
        else:
            cases.append((args, {"bias": rng.random() < 0.5}))
    return cases


register(Question(
    id="01.linear_params",
    title="Implement linear_params(in_features, out_features, bias=True)",
    cases=_linear_cases,
    reference=formulas.linear_params,
    hint="the weight has shape (out_features, in_features); the bias adds one number per output feature.",
))


# --------------------------------------------------------------------------- 2. output_shape

def _stack(layer_sizes: list, bias: bool = True, device: str = "meta"):
    """nn.Sequential(Linear(s0, s1), ReLU(), Linear(s1, s2), …) on `device`."""
    from torch import nn

    layers: list = []
    for i, (fin, fout) in enumerate(zip(layer_sizes[:-1], layer_sizes[1:])):
        if i:
            layers.append(nn.ReLU())
        layers.append(nn.Linear(fin, fout, bias=bias, device=device))
    return nn.Sequential(*layers)


def output_shape_reference(input_shape: list, layer_sizes: list) -> Optional[tuple]:
    """Run the stack on a tensor of `input_shape`: its output shape, or None if torch refuses.

    Runs on the CPU with small sizes (a meta-device matmul would import torch._dynamo: seconds).
    """
    import torch

    x = torch.zeros(*input_shape)
    try:
        with torch.no_grad():
            return tuple(_stack(layer_sizes, device="cpu")(x).shape)
    except RuntimeError:
        return None


def _shape_cases(rng: random.Random) -> list:
    cases = []
    for i in range(20):
        sizes = [log_uniform(rng, 1, 512) for _ in range(rng.randint(2, 5))]
        lead = [rng.randint(1, 8) for _ in range(rng.randint(0, 3))]
        last = sizes[0]
        if i % 5 == 4:  # a mismatched input: the forward pass fails
            last = sizes[0] + rng.choice([-1, 1, sizes[0]]) if sizes[0] > 1 else 2
        cases.append(((lead + [last], sizes), {}))
    return cases


register(Question(
    id="01.output_shape",
    title="Predict the output shape of a stack of Linear layers (or None if it fails)",
    cases=_shape_cases,
    reference=output_shape_reference,
    hint="nn.Linear only changes the LAST dimension; all leading dimensions pass through unchanged. "
         "The stack fails (return None) when the input's last dimension is not layer_sizes[0].",
))


# --------------------------------------------------------------------------- 3. mlp_params

def mlp_params_reference(layer_sizes: list, bias: bool = True) -> int:
    """Build the MLP on the meta device and let helpers.counting count it."""
    from helpers.counting import count_params

    return count_params(_stack(layer_sizes, bias=bias))


def _mlp_cases(rng: random.Random) -> list:
    cases = []
    for i in range(20):
        sizes = [log_uniform(rng, 1, 2048) for _ in range(rng.randint(2, 6))]
        cases.append(((sizes,), {} if i % 5 == 0 else {"bias": rng.random() < 0.5}))
    return cases


register(Question(
    id="01.mlp_params",
    title="Count the parameters of an MLP, with and without bias",
    cases=_mlp_cases,
    reference=mlp_params_reference,
    hint="one Linear per consecutive pair (layer_sizes[i], layer_sizes[i+1]); ReLU has no parameters; "
         "without bias each Linear keeps only its weight.",
))


# --------------------------------------------------------------------------- 4. max_hidden_size

def _two_hidden_params(in_features: int, hidden: int, out_features: int) -> int:
    return (formulas.linear_params(in_features, hidden) + formulas.linear_params(hidden, hidden)
            + formulas.linear_params(hidden, out_features))


def max_hidden_size_reference(in_features: int, out_features: int, budget: int) -> int:
    """Largest h with params(in → h → h → out) ≤ budget (0 if none), searched over helpers.formulas."""
    return largest_fitting(lambda h: _two_hidden_params(in_features, h, out_features), budget)


def _budget_cases(rng: random.Random) -> list:
    cases = []
    for i in range(20):
        fin, fout = log_uniform(rng, 1, 4096), log_uniform(rng, 1, 1000)
        h = log_uniform(rng, 1, 4096)
        # half the budgets hit a size exactly, half fall between two sizes
        budget = budget_for_size(rng, lambda n: _two_hidden_params(fin, n, fout), h,
                                 "exact" if i % 2 == 0 else "between")
        cases.append(((fin, fout, budget), {}))
    return cases


register(Question(
    id="01.max_hidden_size",
    title="Find the largest hidden size that fits a parameter budget",
    cases=_budget_cases,
    reference=max_hidden_size_reference,
    hint="params(h) = (in·h + h) + (h·h + h) + (h·out + out) grows with h: find the largest h with "
         "params(h) ≤ budget. A loop or a binary search is exact; the quadratic formula needs care "
         "with float rounding.",
))


# --------------------------------------------------------------------------- 5. spot the bug

def fixed_classifier(channels: int, height: int, width: int, hidden: int, classes: int):
    """The corrected classifier of the exercise, on the meta device."""
    from torch import nn

    return nn.Sequential(
        nn.Flatten(),                                                      # (B, C, H, W) → (B, C·H·W)
        nn.Linear(channels * height * width, hidden, device="meta"),       # (B, hidden)
        nn.ReLU(),
        nn.Linear(hidden, hidden // 2, device="meta"),                     # (B, hidden // 2)
        nn.ReLU(),
        nn.Linear(hidden // 2, classes, device="meta"),                    # (B, classes)
    )


def fixed_classifier_params_reference(channels: int, height: int, width: int, hidden: int, classes: int) -> int:
    """Count the fixed model's parameters with helpers.counting (tests/test_checks.py runs its forward pass)."""
    from helpers.counting import count_params

    return count_params(fixed_classifier(channels, height, width, hidden, classes))


def _classifier_cases(rng: random.Random) -> list:
    return [((rng.choice([1, 3, 4]), rng.randint(4, 64), rng.randint(4, 64), rng.randint(2, 1024),
              rng.randint(2, 1000)), {}) for _ in range(20)]


register(Question(
    id="01.fixed_classifier_params",
    title="Spot the bugs in a classifier, then count the fixed model's parameters",
    cases=_classifier_cases,
    reference=fixed_classifier_params_reference,
    hint="Flatten turns (B, C, H, W) into (B, C·H·W), so the first Linear needs C·H·W inputs; every "
         "Linear's in_features must equal the previous Linear's out_features.",
))


# --------------------------------------------------------------------------- 6. repair a module

def fixed_mlp_reference(in_features: int, hidden: int, out_features: int):
    """The repaired two-layer MLP of the exercise (fc2 takes `hidden` features, not `in_features`).

    Built by the caller under ``torch.device("meta")`` (see :mod:`helpers.checks.module_answer`)."""
    import torch
    from torch import nn

    class MLP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1 = nn.Linear(in_features, hidden)    # (B, in) → (B, hidden)
            self.fc2 = nn.Linear(hidden, out_features)   # (B, hidden) → (B, out)

        def forward(self, x):
            return self.fc2(torch.relu(self.fc1(x)))

    return MLP()


def _fixed_mlp_cases(rng: random.Random) -> list:
    cases = []
    for _ in range(8):
        fin, hidden = log_uniform(rng, 2, 512), log_uniform(rng, 2, 512)
        while hidden == fin:  # the broken module would pass where hidden == in_features
            hidden = log_uniform(rng, 2, 512)
        cases.append(((fin, hidden, log_uniform(rng, 1, 100)), {}))
    return cases


def _fixed_mlp_probe(in_features: int, hidden: int, out_features: int) -> dict:
    """A batch of 3 inputs; 6 output values on fixed weights (a forgotten ReLU changes them)."""
    return {"input": [3, in_features], "values": 6}


register(Question(
    id="01.fixed_mlp",
    title="Repair a broken nn.Module: return the fixed MLP",
    cases=_fixed_mlp_cases,
    reference=fixed_mlp_reference,
    probe=_fixed_mlp_probe,
    hint="each Linear's in_features must equal the out_features of the layer before it: fc2 receives "
         "fc1's output, (B, hidden). Keep the names fc1/fc2 and the ReLU.",
))
