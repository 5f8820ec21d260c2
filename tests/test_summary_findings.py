"""Regression tests for issue 12: `summary`/`explain` on models as engineers write them.

Each test reproduces one finding (it failed on the code before the fix): the model is never
modified, MoE and Bilinear FLOPs are counted (uncounted ops are reported), the meta → CPU
fallback traces the caller's tensors, and inputs/models of every form run.
"""

from __future__ import annotations

import collections

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence
from torch.utils.flop_counter import FlopCounterMode

from helpers.counting import count_params
from helpers.trace import explain, summary


def _snapshot(model: nn.Module) -> dict[str, tuple[int, torch.Tensor]]:
    """Every state_dict entry: the tensor object's id and a copy of its value."""
    return {k: (id(v), v.detach().clone()) for k, v in model.state_dict(keep_vars=True).items()}


def _assert_untouched(model: nn.Module, before: dict[str, tuple[int, torch.Tensor]]) -> None:
    after = model.state_dict(keep_vars=True)
    assert after.keys() == before.keys()
    for k, (ident, value) in before.items():
        assert id(after[k]) == ident, k
        assert after[k].device == value.device, k
        torch.testing.assert_close(after[k].detach(), value, rtol=0, atol=0, msg=k)


class _Alias(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = self.a  # the same module under two names
        self.bn = nn.BatchNorm1d(4)
        self.bn2 = self.bn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn2(self.b(self.bn(self.a(x))))


class _SharedEmbedding(nn.Module):
    """T5's layout: one embedding registered as `shared`, `encoder.embed_tokens`, `decoder.embed_tokens`."""

    def __init__(self) -> None:
        super().__init__()
        self.shared = nn.Embedding(10, 6)
        self.encoder = nn.Module()
        self.encoder.embed_tokens = self.shared
        self.decoder = nn.Module()
        self.decoder.embed_tokens = self.shared
        self.head = nn.Linear(6, 10, bias=False)
        self.head.weight = self.shared.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.decoder.embed_tokens(ids) + self.encoder.embed_tokens(ids))


@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_reused_module_keeps_its_weights(device):
    lin = nn.Linear(4, 4)
    m = nn.Sequential(lin, nn.ReLU(), lin)
    before = _snapshot(m)
    s = summary(m, input_size=(2, 4), device=device)
    _assert_untouched(m, before)
    assert s.total_params == count_params(m) == 20
    assert m(torch.ones(2, 4)).shape == (2, 4)  # the next forward still works
    explain(m, torch.ones(2, 4), device=device)
    _assert_untouched(m, before)


@pytest.mark.parametrize("device", ["meta", "cpu"])
@pytest.mark.parametrize("make", [_Alias, _SharedEmbedding])
def test_aliased_modules_buffers_and_shared_embeddings_stay_untouched(device, make):
    torch.manual_seed(0)
    m = make().train()
    x = torch.randint(0, 10, (3, 5)) if make is _SharedEmbedding else torch.randn(3, 4)
    before = _snapshot(m)
    s = summary(m, example_inputs=x, device=device)
    _assert_untouched(m, before)  # incl. running_mean/var and num_batches_tracked
    assert s.total_params == count_params(m)
    explain(m, x, device=device)
    _assert_untouched(m, before)


def test_hooks_added_for_the_trace_do_not_stay_on_the_model():
    m = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    summary(m, input_size=(1, 3))
    explain(m, torch.zeros(1, 3))
    assert all(not mod._forward_hooks and not mod._forward_pre_hooks for mod in m.modules())


# --------------------------------------------------------------------------- FLOPs ------------

class _GroupedExperts(nn.Module):
    """E experts applied with one torch._grouped_mm, rows grouped by expert (offs = cumulative)."""

    def __init__(self, experts: int = 4, d_in: int = 8, d_out: int = 16) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(experts, d_in, d_out))

    def forward(self, x: torch.Tensor, offs: torch.Tensor) -> torch.Tensor:
        return torch._grouped_mm(x, self.weight, offs=offs)


def test_grouped_mm_is_counted_on_meta():
    rows, d_in, d_out = 32, 8, 16
    s = summary(_GroupedExperts(4, d_in, d_out), example_inputs=(torch.zeros(rows, d_in),
                                                                 torch.tensor([8, 16, 24, 32], dtype=torch.int32)))
    # independent: the same work as one matmul per expert over its 8 rows, counted by FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        for _ in range(4):
            torch.zeros(8, d_in) @ torch.zeros(d_in, d_out)
    assert s.total_flops == counter.get_total_flops() == 2 * rows * d_in * d_out


@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_bilinear_flops_are_counted(device):
    n, in1, in2, out = 3, 4, 5, 6
    s = summary(nn.Bilinear(in1, in2, out), example_inputs=(torch.randn(n, in1), torch.randn(n, in2)), device=device)
    # independent: y_o = x1ᵀ W_o x2 as the two matmuls torch's _trilinear runs, counted by
    # FlopCounterMode: (n, in1) @ (in1, out·in2), then per row (out, in2) @ (in2, 1)
    with FlopCounterMode(display=False) as counter:
        t = torch.randn(n, in1) @ torch.randn(in1, out * in2)
        torch.bmm(t.view(n, out, in2), torch.randn(n, in2, 1))
    assert s.total_flops == counter.get_total_flops() > 0


class _Uncounted(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.aten._addmm_activation(torch.zeros(3), x, torch.ones(3, 3))


def test_an_op_without_formula_is_reported():
    s = summary(_Uncounted(), input_size=(2, 3), device="cpu")
    assert any("NOT counted" in n and "_addmm_activation" in n for n in s.notes)
    assert "_addmm_activation" in str(s)


# --------------------------------------------------------------------------- fallback ---------

class _Branchy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.small = nn.Linear(4, 2)
        self.big = nn.Linear(4, 96)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.big(x) if x.sum().item() > 0 else self.small(x)


def test_fallback_traces_the_callers_tensors():
    m = _Branchy()
    x = torch.ones(24, 4, 8).transpose(1, 2).reshape(24 * 8, 4)  # positive: the big branch
    s = summary(m, example_inputs=x)
    assert s.device == "cpu" and any("cannot run on meta" in n for n in s.notes)
    assert s.total_flops == 2 * x.shape[0] * 4 * 96
    assert [r.name for r in s.rows if r.called] == ["", "big"]


class _Masked(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.lin(x[mask.bool()])  # data-dependent shape


def test_fallback_keeps_the_mask_values():
    mask = torch.tensor([1, 1, 0, 1, 0])
    s = summary(_Masked(), example_inputs={"x": torch.randn(5, 4), "mask": mask})
    assert s["lin"].input_shapes == ((3, 4),)


# --------------------------------------------------------------------------- input forms ------

@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_packed_sequence_input(device):
    lstm = nn.LSTM(3, 5, batch_first=True)
    packed = pack_padded_sequence(torch.randn(2, 4, 3), torch.tensor([4, 2]), batch_first=True)
    s = summary(lstm, example_inputs=packed, device=device)
    assert s.total_params == count_params(lstm)
    assert s.total_flops == summary(lstm, input_size=(1, 6, 3), device=device).total_flops  # 6 steps of 1 row


Pair = collections.namedtuple("Pair", "a b")


class _TakesPair(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 3)

    def forward(self, p: Pair) -> torch.Tensor:
        return self.lin(p.a) + p.b


def test_namedtuple_input_stays_a_namedtuple():
    s = summary(_TakesPair(), example_inputs=Pair(torch.zeros(2, 3), torch.zeros(2, 3)))
    assert s.total_flops == 2 * 2 * 3 * 3


class _TryFast(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fast = nn.Linear(5, 8)  # wrong size: raises, caught below
        self.slow = nn.Linear(4, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        try:
            return self.fast(x)
        except RuntimeError:
            return self.slow(x)


class _TryThenFail(_TryFast):
    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(7, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(super().forward(x))


@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_a_failure_caught_inside_forward(device):
    s = summary(_TryFast(), input_size=(2, 4), device=device)
    assert all(r.flops >= 0 for r in s.rows)
    assert s["slow"].flops == 2 * 2 * 4 * 8 == s.total_flops
    assert s[""].depth == 0 and s["slow"].depth == 1
    e = explain(_TryThenFail(), torch.zeros(2, 4), device=device)
    assert not e.ok and e.layer == "head", e


def test_torchscript_modules():
    m = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    for jit in (torch.jit.script(m), torch.jit.trace(m, torch.zeros(1, 4))):
        s = summary(jit, input_size=(3, 4))
        assert s.total_params == count_params(m)
        assert s.total_flops == 2 * 3 * (4 * 8 + 8 * 2)
        assert any("TorchScript" in n for n in s.notes)


def test_meta_built_model_on_cpu():
    with torch.device("meta"):
        m = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))
    s = summary(m, input_size=(3, 4), device="cpu")
    assert s.device == "cpu" and s.total_flops == 2 * 3 * (4 * 8 + 8 * 2)
    assert all(p.is_meta for p in m.parameters())


def test_dynamic_int8_quantized_model():
    m = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    q = torch.ao.quantization.quantize_dynamic(m, {nn.Linear}, dtype=torch.qint8)
    s = summary(q, input_size=(3, 4))
    assert s.device == "cpu"
    assert [r.type for r in s.rows][:2] == ["Sequential", "Linear"]


def test_numpy_integers_in_input_size():
    m = nn.Linear(4, 2)
    s = summary(m, input_size=(np.int64(3), np.int32(4)))
    assert s.input_shapes == ((3, 4),) and s.total_flops == 2 * 3 * 4 * 2
    assert summary(m, input_size=[np.array([3, 4])]).total_flops == s.total_flops
    with pytest.raises(ValueError, match="negative"):
        summary(m, input_size=(-1, 4))


def test_from_helpers_import_summary_and_explain_still_call():
    from helpers import explain as explain_, summary as summary_

    assert summary_(nn.Linear(2, 3), input_size=(1, 2)).total_params == 9
    assert explain_(nn.Linear(2, 3), torch.zeros(1, 2)).ok


@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_parametrized_and_spectral_norm_modules_stay_untouched(device):
    m = nn.Sequential(nn.utils.spectral_norm(nn.Linear(4, 4)), nn.utils.parametrizations.weight_norm(nn.Linear(4, 3)))
    m.train()  # spectral_norm updates its weight_u buffer in train mode
    before = _snapshot(m)
    s = summary(m, input_size=(2, 4), device=device)
    _assert_untouched(m, before)
    assert s.total_params == count_params(m)


def test_moe_active_params_agree_with_decoder_lm_params():
    """Same convention as chapter 12's closed form (engineer E's helpers.formulas.decoder_lm_params:
    active = total − (n − k)/n of the experts); runs once both are merged on main."""
    from helpers import formulas

    if not hasattr(formulas, "decoder_lm_params"):
        pytest.skip("helpers.formulas.decoder_lm_params is not on this branch yet")
    from helpers.models.llama import Llama, LlamaConfig

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=100, dim=64, n_layers=2, n_heads=8, n_kv_heads=2, intermediate_size=128,
                      num_local_experts=4, num_experts_per_tok=2)
    s = summary(Llama(cfg), example_inputs=torch.randint(0, 100, (1, 16)))
    counts = formulas.decoder_lm_params(**cfg.hf_fields())
    assert (s.total_params, s.active_params) == (counts["total"], counts["active"])
    assert s.active_params < s.total_params
