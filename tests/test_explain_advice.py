"""Regression tests for issue 12, item 5: `explain` gives the RIGHT advice (and, on meta, sees
dtype mismatches and token ids meta tensors cannot show). Each case failed before the fix; every
verdict is checked on meta and on the CPU, where torch itself raises."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from helpers.trace import explain

DEVICES = ["meta", "cpu"]


def _fails_on_cpu(model: nn.Module, x: torch.Tensor) -> None:
    """The mistake is real: torch refuses it on the CPU."""
    with pytest.raises((RuntimeError, ValueError, IndexError)):
        model(x)


@pytest.mark.parametrize("device", DEVICES)
def test_batchnorm1d_on_channels_last_sequence_says_transpose(device):
    bn, x = nn.BatchNorm1d(16), torch.randn(2, 10, 16)
    _fails_on_cpu(bn, x)
    e = explain(bn, x, device=device)
    assert not e.ok and "transpose(1, 2)" in e and "BatchNorm1d(10)" not in e, e


@pytest.mark.parametrize("device", DEVICES)
def test_linear_on_images_says_flatten_first(device):
    lin, x = nn.Linear(784, 10), torch.randn(2, 1, 28, 28)
    _fails_on_cpu(lin, x)
    e = explain(lin, x, device=device)
    assert not e.ok and "flatten" in e and "784 = 1×28×28" in e and "Linear(28, 10)" not in e, e


@pytest.mark.parametrize("device", DEVICES)
def test_conv2d_on_unbatched_looking_input_says_add_the_channel_dim(device):
    conv, x = nn.Conv2d(1, 16, 3), torch.randn(2, 28, 28)
    _fails_on_cpu(conv, x)
    e = explain(conv, x, device=device)
    assert not e.ok and "unbatched" in e and "unsqueeze(1)" in e and "(2, 1, 28, 28)" in e, e


@pytest.mark.parametrize("device", DEVICES)
def test_linear_after_conv_gives_one_consistent_flatten_hint(device):
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Linear(8192, 10))
    x = torch.randn(2, 3, 32, 32)
    _fails_on_cpu(m, x)
    e = explain(m, x, device=device)
    assert not e.ok and "flatten" in e and "8192 = 8×32×32" in e
    assert "Likely cause: the layer before" not in e and "Linear(32, 10)" not in e, e


@pytest.mark.parametrize("device", DEVICES)
def test_batchnorm_in_train_mode_with_batch_one(device):
    m = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8)).train()
    x = torch.randn(1, 4)
    _fails_on_cpu(m, x)
    e = explain(m, x, device=device)
    assert not e.ok and e.layer == "1" and "eval()" in e and "batch" in e, e


@pytest.mark.parametrize("device", DEVICES)
def test_flatten_then_conv_says_it_was_flattened(device):
    m = nn.Sequential(nn.Flatten(), nn.Conv2d(1, 4, 3))
    x = torch.randn(2, 1, 8, 8)
    _fails_on_cpu(m, x)
    e = explain(m, x, device=device)
    assert not e.ok and "flattened" in e and "channel dimension is missing" not in e, e


@pytest.mark.parametrize("device", DEVICES)
def test_negative_token_ids(device):
    emb, ids = nn.Embedding(10, 4), torch.tensor([[1, -1, 3]])
    _fails_on_cpu(emb, ids)
    e = explain(emb, ids, device=device)
    assert not e.ok and "negative" in e and "nn.Embedding(0" not in e and "Embedding(-" not in e, e


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.long])
def test_dtype_mismatch_is_caught_on_meta_too(device, dtype):
    lin, x = nn.Linear(4, 2), torch.ones(3, 4, dtype=dtype)
    _fails_on_cpu(lin, x)
    e = explain(lin, x, device=device)
    assert not e.ok and str(dtype) in e and "torch.float32" in e, e


class _ShiftedIds(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 4)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.emb(ids + 100)  # out of range, made inside forward


def test_ids_made_inside_forward_are_not_called_fine_on_meta():
    ids = torch.tensor([[1, 2]])
    _fails_on_cpu(_ShiftedIds(), ids)
    on_meta = explain(_ShiftedIds(), ids)
    assert "could not be checked" in on_meta and "device='cpu'" in on_meta, on_meta
    on_cpu = explain(_ShiftedIds(), ids, device="cpu")
    assert not on_cpu.ok and on_cpu.layer == "emb" and "102" in on_cpu, on_cpu


def test_diagnosers_are_a_registry():
    from helpers import explain as explain_module

    assert explain_module._DIAGNOSERS[nn.Linear] is explain_module._linear
    assert nn.modules.conv._ConvNd in explain_module._DIAGNOSERS
