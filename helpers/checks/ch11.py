"""Chapter 11 (Capacity and cost) exercise questions.

Reference answers are measured by torch itself on the ``meta`` device (``FlopCounterMode``,
``count_params`` of real modules) or come from ``helpers.cost``, whose formulas
tests/test_cost.py checks against optimiser state, gradients and FlopCounterMode.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from helpers import cost
from helpers.checks._gen import BUDGET_PLACES, budget_for_size, close_within, largest_fitting, log_uniform
from helpers.checks.registry import Question, register

if TYPE_CHECKING:
    import torch
    from torch import nn


def _flops(module: nn.Module, x: torch.Tensor) -> int:
    """FLOPs of module(x), as torch's FlopCounterMode counts them."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        module(x)
    return counter.get_total_flops()


# --------------------------------------------------------------------------- 1. Linear FLOPs

def linear_flops_reference(in_features: int, out_features: int, batch_size: int, seq_len: int = 1) -> int:
    """FlopCounterMode's count for nn.Linear on a (batch_size, seq_len, in_features) input."""
    import torch
    from torch import nn

    layer = nn.Linear(in_features, out_features, device="meta")
    return _flops(layer, torch.empty(batch_size, seq_len, in_features, device="meta"))


def _linear_cases(rng: random.Random) -> list:
    cases: list = [((512, 256, 32), {}), ((768, 3072, 8), {"seq_len": 128})]
    for _ in range(18):
        kwargs = {"seq_len": rng.randint(1, 2048)} if rng.random() < 0.5 else {}
        cases.append(((rng.randint(1, 4096), rng.randint(1, 4096), rng.randint(1, 256)), kwargs))
    return cases


register(Question(
    id="11.linear_flops",
    title="FLOPs of nn.Linear(in_features, out_features) on a (batch_size, seq_len, in_features) input, "
          "as FlopCounterMode counts them",
    cases=_linear_cases,
    reference=linear_flops_reference,
    hint="each of the batch_size·seq_len rows needs in_features·out_features multiply-accumulates (MACs); "
         "FlopCounterMode reports FLOPs = 2·MACs and does not count the bias additions.",
))


# --------------------------------------------------------------------------- 2. Conv MACs

def conv2d_macs_reference(in_channels: int, out_channels: int, kernel_size: int, input_size: int,
                          stride: int = 1, padding: int = 0, groups: int = 1, batch_size: int = 1) -> int:
    """MACs of nn.Conv2d on a (batch_size, in_channels, input_size, input_size) input: FlopCounterMode / 2."""
    import torch
    from torch import nn

    conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, groups=groups,
                     device="meta")
    return _flops(conv, torch.empty(batch_size, in_channels, input_size, input_size, device="meta")) // 2


def _conv_cases(rng: random.Random) -> list:
    cases: list = [((3, 16, 3, 32), {"padding": 1}), ((64, 64, 3, 56), {"padding": 1, "groups": 64})]
    while len(cases) < 18:
        g = rng.choice([1, 1, 1, 2, 4])
        cin, cout = g * rng.randint(1, 32), g * rng.randint(1, 32)
        k, s, p = rng.choice([1, 3, 5, 7]), rng.choice([1, 1, 2]), rng.randint(0, 3)
        size = rng.randint(1, 128)
        if size + 2 * p < k:
            continue
        kwargs: dict = {"stride": s, "padding": p, "batch_size": rng.randint(1, 16)}
        if g > 1:
            kwargs["groups"] = g
        cases.append(((cin, cout, k, size), kwargs))
    return cases


register(Question(
    id="11.conv2d_macs",
    title="MACs of nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, groups) on a square "
          "input: conv2d_macs(in_channels, out_channels, kernel_size, input_size, stride=1, padding=0, "
          "groups=1, batch_size=1)",
    cases=_conv_cases,
    reference=conv2d_macs_reference,
    hint="output size H' = (input_size + 2·padding − kernel_size) // stride + 1; every one of the "
         "batch_size·out_channels·H'·H' outputs is a dot product of (in_channels/groups)·kernel_size² MACs.",
))


# --------------------------------------------------------------------------- 3. training memory

def adam_training_bytes_reference(num_params: int, activation_numel: int, bytes_per_element: int = 4) -> int:
    """weights + gradients + Adam's two moments + saved activations, in bytes."""
    return cost.training_memory(num_params, activation_numel, "adam", bytes_per_element).total


def _mem_cases(rng: random.Random) -> list:
    cases: list = [((124_439_808, 0), {}), ((269_322, 82_944), {})]
    for _ in range(16):
        cases.append(((rng.randint(1, 10**10), rng.randint(0, 10**9)), {"bytes_per_element": rng.choice([2, 4])}))
    return cases


register(Question(
    id="11.adam_training_bytes",
    title="Memory of one training step with Adam: adam_training_bytes(num_params, activation_numel, "
          "bytes_per_element=4)",
    cases=_mem_cases,
    reference=adam_training_bytes_reference,
    hint="count the weights, one gradient per weight, and Adam's exp_avg and exp_avg_sq per weight "
         "(4 copies of num_params in total), plus the saved activations — all of bytes_per_element bytes.",
))


# --------------------------------------------------------------------------- 4. depthwise-separable

def depthwise_separable_params_reference(in_channels: int, out_channels: int, kernel_size: int,
                                         bias: bool = True) -> int:
    """count_params of DepthwiseSeparableConv2d (depthwise k×k, groups=C, then pointwise 1×1)."""
    import torch

    from helpers.counting import count_params
    from helpers.models.cnn import DepthwiseSeparableConv2d

    with torch.device("meta"):
        return count_params(DepthwiseSeparableConv2d(in_channels, out_channels, kernel_size, bias=bias))


def _dw_cases(rng: random.Random) -> list:
    cases: list = [((32, 64, 3), {}), ((512, 512, 3), {"bias": False})]
    for _ in range(16):
        cases.append(((rng.randint(1, 1024), rng.randint(1, 1024), rng.choice([1, 3, 5, 7])),
                      {"bias": rng.random() < 0.5}))
    return cases


register(Question(
    id="11.depthwise_separable_params",
    title="Parameters of a depthwise-separable conv: depthwise Conv2d(C, C, k, groups=C) + pointwise "
          "Conv2d(C, O, 1) — depthwise_separable_params(in_channels, out_channels, kernel_size, bias=True)",
    cases=_dw_cases,
    reference=depthwise_separable_params_reference,
    hint="depthwise: one k×k kernel per input channel (C·k², + C biases); pointwise: a 1×1 conv C → O "
         "(C·O, + O biases).",
))


# --------------------------------------------------------------------------- 5. parameter sharing

def dense_equivalent_params_reference(in_channels: int, out_channels: int, size: int, kernel_size: int,
                                      padding: int = 0) -> int:
    """Parameters of the nn.Linear that maps the flattened input image to the flattened conv output."""
    import torch
    from torch import nn

    from helpers.counting import count_params

    conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, device="meta")
    out = conv(torch.empty(1, in_channels, size, size, device="meta"))  # (1, O, H', W')
    return count_params(nn.Linear(in_channels * size * size, out[0].numel(), device="meta"))


def _dense_cases(rng: random.Random) -> list:
    cases: list = [((3, 16, 32, 3), {"padding": 1})]
    while len(cases) < 16:
        k, p, size = rng.choice([1, 3, 5]), rng.randint(0, 2), rng.randint(1, 64)
        if size + 2 * p < k:
            continue
        cases.append(((rng.randint(1, 16), rng.randint(1, 64), size, k), {"padding": p}))
    return cases


register(Question(
    id="11.dense_equivalent_params",
    title="Parameter sharing: how many parameters would an nn.Linear need to map a (C, size, size) image "
          "to the same output as Conv2d(C, O, kernel_size, padding)? dense_equivalent_params(in_channels, "
          "out_channels, size, kernel_size, padding=0)",
    cases=_dense_cases,
    reference=dense_equivalent_params_reference,
    hint="flatten both sides: in = C·size·size, out = O·H'·W' with H' = size + 2·padding − kernel_size + 1; "
         "a Linear(in, out) has in·out weights and out biases.",
))


# --------------------------------------------------------------------------- 6. weight memory

def _weight_cases(rng: random.Random) -> list:
    cases: list = [((6_738_415_616, "bf16"), {}), ((61_706, "int4"), {})]
    for _ in range(14):
        cases.append(((rng.randint(1, 10**11), rng.choice(["fp32", "bf16", "fp16", "int8", "int4"])), {}))
    return cases


register(Question(
    id="11.weight_memory_bytes",
    title="Bytes to store num_params weights in a precision: weight_memory_bytes(num_params, dtype) with "
          "dtype in 'fp32', 'bf16', 'fp16', 'int8', 'int4'",
    cases=_weight_cases,
    reference=cost.weight_bytes,
    hint="fp32 = 4 bytes per weight, bf16/fp16 = 2, int8 = 1, int4 = half a byte (two weights per byte).",
    compare=close_within(1e-12),
))


# --------------------------------------------------------------------------- 7. which layer dominates

def dominant_layers_reference(input_size: int, in_channels: int, layers: list) -> list:
    """[index of the layer with the most parameters, index of the layer with the most MACs] of a chain of
    nn.Conv2d layers (dicts of out_channels, kernel_size, stride, padding) on a (1, in_channels,
    input_size, input_size) input: count_params and FlopCounterMode / 2 of each real layer on meta.
    Ties go to the earlier layer."""
    import torch
    from torch import nn

    from helpers.counting import count_params

    x = torch.empty(1, in_channels, input_size, input_size, device="meta")
    params, macs = [], []
    for layer in layers:
        conv = nn.Conv2d(x.shape[1], layer["out_channels"], layer["kernel_size"], stride=layer["stride"],
                         padding=layer["padding"], device="meta")
        params.append(count_params(conv))
        macs.append(_flops(conv, x) // 2)
        x = conv(x)  # (1, out_channels, H', W')
    return [params.index(max(params)), macs.index(max(macs))]


def _dominant_cases(rng: random.Random) -> list:
    """A CNN-like chain: channels grow (×1, ×2 or ×4) while strides shrink the map."""
    cases: list = []
    while len(cases) < 14:
        size, channels = rng.randint(16, 224), rng.choice([1, 3])
        layers, side, width = [], size, rng.choice([8, 16, 32, 64])
        for _ in range(rng.randint(3, 6)):
            k = rng.choice([1, 3, 3, 5, 7])
            layer = {"out_channels": width, "kernel_size": k, "stride": rng.choice([1, 2, 2]),
                     "padding": rng.choice([0, k // 2, k // 2])}
            if side + 2 * layer["padding"] < k:
                break
            side = (side + 2 * layer["padding"] - k) // layer["stride"] + 1
            layers.append(layer)
            width = min(1024, width * rng.choice([1, 2, 2, 4]))
        if len(layers) >= 3:
            cases.append(((size, channels, layers), {}))
    return cases


register(Question(
    id="11.dominant_layers",
    title="In a chain of Conv2d layers, which layer holds the most parameters and which does the most "
          "MACs? Return [params index, MACs index]",
    cases=_dominant_cases,
    reference=dominant_layers_reference,
    hint="track the map through the chain: H' = (H + 2p − k) // s + 1 and the channels become out_channels. "
         "Parameters (C·O·k² + O) do not depend on H, MACs (O·H'·W'·C·k², your conv2d_macs) do: wide late layers "
         "own the parameters, early layers on large maps often do the work. Index from 0; on a tie, the earlier layer.",
))


# --------------------------------------------------------------------------- 8. the widest MLP under a budget

def _mlp(in_features: int, hidden: int, out_features: int):
    from torch import nn

    return nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, out_features))


def _mlp_count(in_features: int, out_features: int):
    """hidden → count_params of the MLP built by torch on meta (non-decreasing in hidden)."""
    import torch

    from helpers.counting import count_params

    def count(hidden: int) -> int:
        with torch.device("meta"):
            return count_params(_mlp(in_features, hidden, out_features))

    return count


def widest_mlp_reference(in_features: int, out_features: int, budget: int):
    """``Linear(in, h) → ReLU → Linear(h, out)`` with the largest h whose torch count is <= budget.

    h is found by :func:`helpers.checks._gen.largest_fitting` over counts of MLPs built on meta
    (h·(in + out + 1) + out parameters; the search never uses the closed form)."""
    hidden = largest_fitting(_mlp_count(in_features, out_features), budget)
    return _mlp(in_features, hidden, out_features)


def _widest_cases(rng: random.Random) -> list:
    cases = []
    for i in range(8):
        fin, fout = log_uniform(rng, 4, 1024), log_uniform(rng, 1, 100)
        hidden = log_uniform(rng, 2, 4096)
        # on the count of h, just below the count of h + 1, or strictly between: h + 1 never fits
        budget = budget_for_size(rng, _mlp_count(fin, fout), hidden, BUDGET_PLACES[i % 3])
        cases.append(((fin, fout, budget), {}))
    return cases


def _widest_probe(in_features: int, out_features: int, budget: int) -> dict:
    """The student designs the module: parameters compared as shapes (h exact), output on (3, in)."""
    return {"input": [3, in_features], "names": False}


register(Question(
    id="11.widest_mlp",
    title="Choose a config under a budget: return the widest Linear → ReLU → Linear that fits",
    cases=_widest_cases,
    reference=widest_mlp_reference,
    probe=_widest_probe,
    hint="the MLP holds h·in + h (first Linear) + h·out + out (second Linear) parameters: solve "
         "h·(in_features + out_features + 1) + out_features <= budget for the LARGEST integer h "
         "(floor division), then check count_params of your module is <= budget and that h + 1 would not fit.",
))
