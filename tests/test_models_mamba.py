"""helpers.models.mamba: closed-form count vs torch, shapes, the scan vs naive references."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers.counting import count_params
from helpers.models.mamba import (MambaBlock, mamba_block_params, mamba_block_params_breakdown,
                                  mamba_block_flops, mamba_dims, mamba_seed_estimate,
                                  mamba_state_numel,
                                  selective_scan)

configs = st.fixed_dictionaries({
    "d_model": st.integers(1, 80),
    "d_state": st.integers(1, 24),
    "d_conv": st.integers(1, 6),
    "expand": st.sampled_from([1, 2, 3, 1.5]),
    "dt_rank": st.one_of(st.just("auto"), st.integers(1, 12)),
    "conv_bias": st.booleans(),
    "bias": st.booleans(),
})


@given(configs)
@settings(max_examples=80)
def test_formula_equals_torch_per_tensor(cfg):
    if int(cfg["expand"] * cfg["d_model"]) < 1:
        return
    with torch.device("meta"):
        block = MambaBlock(**cfg)
    got = {name: p.numel() for name, p in block.named_parameters()}
    assert got == mamba_block_params_breakdown(**cfg)
    assert count_params(block) == mamba_block_params(**cfg)


def test_reference_layout_and_defaults():
    """Shapes of every tensor as in mamba_simple.Mamba(d_model=256) with its defaults."""
    block = MambaBlock(256)
    shapes = {name: tuple(p.shape) for name, p in block.named_parameters()}
    Di, N, K, R = 512, 16, 4, 16
    assert shapes == {
        "A_log": (Di, N), "D": (Di,), "in_proj.weight": (2 * Di, 256),
        "conv1d.weight": (Di, 1, K), "conv1d.bias": (Di,), "x_proj.weight": (R + 2 * N, Di),
        "dt_proj.weight": (Di, R), "dt_proj.bias": (Di,), "out_proj.weight": (256, Di),
    }
    assert block.conv1d.groups == Di
    # S4D-real init: A = -(1..N) for every channel; D = 1; softplus(dt bias) in [dt_min, dt_max]
    assert torch.allclose(-torch.exp(block.A_log), -torch.arange(1, N + 1.0).expand(Di, N))
    assert torch.all(block.D == 1)
    dt = torch.nn.functional.softplus(block.dt_proj.bias)
    assert dt.min() >= 1e-4 - 1e-7 and dt.max() <= 0.1 + 1e-6


@given(st.integers(1, 2000))
def test_dt_rank_auto(d_model):
    assert mamba_dims(d_model)["dt_rank"] == math.ceil(d_model / 16) == -(-d_model // 16)


def test_invalid_dims():
    with pytest.raises(ValueError):
        mamba_dims(0)
    with pytest.raises(ValueError):
        mamba_dims(16, dt_rank=0)


def _naive_scan(u, delta, A, B, C, D):
    """Scalar loops straight from the paper's equations (no broadcasting at all)."""
    Bsz, L, Di = u.shape
    N = A.shape[1]
    y = torch.zeros(Bsz, L, Di, dtype=torch.float64)
    for b in range(Bsz):
        for d in range(Di):
            h = [0.0] * N
            for t in range(L):
                acc = 0.0
                for n in range(N):
                    a_bar = math.exp(float(delta[b, t, d]) * float(A[d, n]))
                    h[n] = a_bar * h[n] + float(delta[b, t, d]) * float(B[b, t, n]) * float(u[b, t, d])
                    acc += h[n] * float(C[b, t, n])
                y[b, t, d] = acc + float(D[d]) * float(u[b, t, d])
    return y


@given(st.integers(1, 2), st.integers(1, 6), st.integers(1, 3), st.integers(1, 3), st.integers(0, 10**6))
@settings(max_examples=25)
def test_selective_scan_matches_naive(Bsz, L, Di, N, seed):
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(Bsz, L, Di, generator=g, dtype=torch.float64)
    delta = torch.rand(Bsz, L, Di, generator=g, dtype=torch.float64) + 0.01
    A = -torch.rand(Di, N, generator=g, dtype=torch.float64) * 3
    B = torch.randn(Bsz, L, N, generator=g, dtype=torch.float64)
    C = torch.randn(Bsz, L, N, generator=g, dtype=torch.float64)
    D = torch.randn(Di, generator=g, dtype=torch.float64)
    assert torch.allclose(selective_scan(u, delta, A, B, C, D), _naive_scan(u, delta, A, B, C, D))


def test_constant_parameters_reduce_to_a_convolution():
    """With Δ, B, C constant over time (S4's LTI case) the scan is a causal convolution with
    kernel K_j = Σ_n C_n · exp(Δ·A_n)^j · Δ·B_n."""
    torch.manual_seed(0)
    Bsz, L, Di, N = 2, 12, 3, 4
    u = torch.randn(Bsz, L, Di, dtype=torch.float64)
    dt = torch.rand(Di, dtype=torch.float64) + 0.1
    A = -torch.rand(Di, N, dtype=torch.float64)
    Bv, Cv = torch.randn(N, dtype=torch.float64), torch.randn(N, dtype=torch.float64)
    delta = dt.expand(Bsz, L, Di)
    B, C = Bv.expand(Bsz, L, N), Cv.expand(Bsz, L, N)
    y = selective_scan(u, delta, A, B, C, torch.zeros(Di, dtype=torch.float64))
    j = torch.arange(L, dtype=torch.float64)
    a_bar = torch.exp(dt[:, None] * A)  # (Di, N)
    kernel = ((a_bar[:, None, :] ** j[None, :, None]) * (dt[:, None] * Bv * Cv)[:, None, :]).sum(-1)
    expected = torch.zeros_like(u)
    for t in range(L):
        for s in range(t + 1):
            expected[:, t] += kernel[:, t - s] * u[:, s]
    assert torch.allclose(y, expected)


@given(st.integers(1, 3), st.integers(1, 9), st.sampled_from([8, 16, 24]), st.integers(1, 4),
       st.integers(1, 5))
@settings(max_examples=15)
def test_forward_shapes_and_step_equals_forward(Bsz, L, d_model, d_state, d_conv):
    torch.manual_seed(0)
    block = MambaBlock(d_model, d_state=d_state, d_conv=d_conv).double()
    x = torch.randn(Bsz, L, d_model, dtype=torch.float64)
    y = block(x)
    assert tuple(y.shape) == (Bsz, L, d_model)
    conv_state, ssm_state = block.allocate_inference_cache(Bsz)
    assert ssm_state.numel() + conv_state.numel() == mamba_state_numel(Bsz, d_model, d_state, d_conv)["total"]
    outs = []
    for t in range(L):
        o, conv_state, ssm_state = block.step(x[:, t:t + 1], conv_state, ssm_state)
        outs.append(o)
    assert torch.allclose(torch.cat(outs, dim=1), y)


def test_causal():
    """Changing the future never changes the past."""
    torch.manual_seed(0)
    block = MambaBlock(16)
    x = torch.randn(1, 8, 16)
    x2 = x.clone()
    x2[:, 5:] += 1.0
    assert torch.allclose(block(x)[:, :5], block(x2)[:, :5])
    assert not torch.allclose(block(x)[:, 5:], block(x2)[:, 5:])


def test_runs_on_meta_and_backward():
    with torch.device("meta"):
        assert tuple(MambaBlock(32)(torch.empty(2, 7, 32)).shape) == (2, 7, 32)
    block = MambaBlock(8, d_state=4)
    block(torch.randn(1, 5, 8)).sum().backward()
    assert all(p.grad is not None for p in block.parameters())


@given(st.integers(1, 3), st.integers(1, 12), st.integers(1, 40), st.integers(1, 8), st.integers(1, 5),
       st.sampled_from([1, 2]))
@settings(max_examples=15)
def test_flops_formula_equals_flop_counter(Bsz, L, d_model, d_state, d_conv, expand):
    from helpers.trace import summary
    with torch.device("meta"):
        block = MambaBlock(d_model, d_state, d_conv, expand)
    assert summary(block, input_size=(Bsz, L, d_model)).total_flops == mamba_block_flops(
        Bsz, L, d_model, d_state, d_conv, expand)
    assert mamba_block_flops(Bsz, L, d_model, d_state, d_conv, expand, include_scan=True) > \
        mamba_block_flops(Bsz, L, d_model, d_state, d_conv, expand)


def test_seed_estimate_is_not_the_exact_count():
    assert sum(mamba_seed_estimate(256, 16, 4, 2).values()) != mamba_block_params(256)


@given(st.integers(1, 64), st.sampled_from([4, 8, 16]), st.integers(2, 4), st.integers(1, 3),
       st.booleans(), st.booleans())
@settings(max_examples=20)
def test_matches_transformers_mamba_mixer(d_model, d_state, d_conv, expand, conv_bias, bias):
    import transformers  # a dev dependency: a missing install must fail, not skip
    config = transformers.MambaConfig(hidden_size=d_model, state_size=d_state, conv_kernel=d_conv,
                                      expand=expand, time_step_rank="auto", use_conv_bias=conv_bias,
                                      use_bias=bias)
    with torch.device("meta"):
        mixer = transformers.models.mamba.modeling_mamba.MambaMixer(config, layer_idx=0)
        ours = MambaBlock(d_model, d_state, d_conv, expand, conv_bias=conv_bias, bias=bias)
    theirs = {n: tuple(p.shape) for n, p in mixer.named_parameters()}
    assert theirs == {n: tuple(p.shape) for n, p in ours.named_parameters()}
    assert count_params(mixer) == mamba_block_params(d_model, d_state, d_conv, expand,
                                                     conv_bias=conv_bias, bias=bias)
