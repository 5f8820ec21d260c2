"""The formulas of chapters 12–14's layers (helpers.formulas, end of file) against torch's nn.RMSNorm, Hugging
Face's Llama / Mixtral / ResNet layers built on meta from random configurations, and the course's modules;
invalid configurations must fail in both."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from helpers import formulas
from helpers.counting import count_params
from helpers.course.cookbook import recipes
from helpers.models.llama import LlamaAttention, LlamaConfig, LlamaMLP
from helpers.models.mobilenet import InvertedResidual
from helpers.models.resnet import BasicBlock, Bottleneck

transformers = pytest.importorskip("transformers")
from transformers.models.llama import modeling_llama as hf_llama  # noqa: E402
from transformers.models.mixtral.modeling_mixtral import MixtralSparseMoeBlock  # noqa: E402
from transformers.models.resnet.modeling_resnet import ResNetBasicLayer, ResNetBottleNeckLayer  # noqa: E402

FAST = settings(max_examples=12, deadline=None)


@FAST
@given(st.lists(st.integers(1, 6), min_size=1, max_size=3), st.booleans())
def test_rmsnorm_vs_torch(shape, affine):
    norm = nn.RMSNorm(shape, elementwise_affine=affine)
    assert formulas.rmsnorm_params(shape, elementwise_affine=affine) == count_params(norm)
    assert 2 * formulas.rmsnorm_params(tuple(shape)) == formulas.layernorm_params(tuple(shape))  # no β
    assert tuple(norm(torch.randn(2, *shape)).shape) == (2, *shape)


@st.composite
def _heads(draw):
    g = draw(st.integers(1, 4))
    h = g * draw(st.integers(1, 4))
    d = 2 * draw(st.integers(1, 8))
    explicit = draw(st.booleans())
    D = h * draw(st.integers(1, 12)) if explicit else h * d  # Hugging Face wants h | D even with head_dim
    return D, h, g, (d if explicit else None)


@FAST
@given(_heads(), st.booleans())
def test_gqa_attention_vs_hugging_face_and_course(heads, bias):
    D, h, g, d = heads
    hf = transformers.LlamaConfig(hidden_size=D, num_attention_heads=h, num_key_value_heads=g, head_dim=d,
                                  attention_bias=bias)
    with torch.device("meta"):
        n_hf = count_params(hf_llama.LlamaAttention(hf, layer_idx=0))
    assert formulas.gqa_attention_params(D, h, g, d, attention_bias=bias) == n_hf
    if not bias:  # the course's LlamaAttention has no biases, like Meta's Llama
        with torch.device("meta"):
            ours = LlamaAttention(LlamaConfig(dim=D, n_heads=h, n_kv_heads=g, head_dim=d))
        assert count_params(ours) == n_hf


@FAST
@given(st.integers(1, 32).map(lambda n: 2 * n), st.integers(1, 200), st.booleans())  # RoPE wants D even
def test_swiglu_vs_hugging_face(D, F, bias):
    with torch.device("meta"):
        hf = hf_llama.LlamaMLP(transformers.LlamaConfig(hidden_size=D, intermediate_size=F, mlp_bias=bias,
                                                             num_attention_heads=1))
    assert formulas.swiglu_params(D, F, mlp_bias=bias) == count_params(hf)
    if not bias:
        with torch.device("meta"):
            ours = LlamaMLP(LlamaConfig(dim=2 * D, intermediate_size=F, n_heads=1))
        assert formulas.swiglu_params(2 * D, F) == count_params(ours)


@FAST
@given(st.integers(1, 32), st.integers(1, 64), st.integers(1, 8), st.data())
def test_moe_total_vs_mixtral_and_active_vs_routing(D, F, E, data):
    k = data.draw(st.integers(1, E))
    cfg = transformers.MixtralConfig(hidden_size=D, intermediate_size=F, num_local_experts=E, num_experts_per_tok=k)
    with torch.device("meta"):
        assert formulas.moe_params(D, F, E, k) == count_params(MixtralSparseMoeBlock(cfg))
    moe = recipes.swiglu_moe(2 * D, F, E, k)  # real routing on the CPU: the experts one token picks
    assert formulas.moe_params(2 * D, F, E, k) == count_params(moe)
    assert formulas.moe_params(2 * D, F, E, k, active=True) == recipes.routed_params(moe, [torch.randn(1, 3, 2 * D)])


@FAST
@given(st.integers(1, 40), st.integers(1, 40), st.sampled_from([1, 2]))
def test_resnet_blocks_vs_hugging_face_and_course(C, P, s):
    with torch.device("meta"):
        assert formulas.basic_block_params(C, P, s) == count_params(ResNetBasicLayer(C, P, s)) \
            == count_params(BasicBlock(C, P, s))
        assert formulas.bottleneck_params(C, P, s) == count_params(ResNetBottleNeckLayer(C, 4 * P, s)) \
            == count_params(Bottleneck(C, P, s))


@FAST
@given(st.integers(1, 32), st.integers(1, 32), st.sampled_from([1, 2]), st.integers(1, 6), st.booleans())
def test_inverted_residual_vs_course(C, Co, s, t, depthwise):
    block = InvertedResidual(C, Co, s, t, depthwise=depthwise)
    assert formulas.inverted_residual_params(C, Co, s, t, depthwise=depthwise) == count_params(block)
    x = torch.randn(1, C, 7, 7)
    assert tuple(block(x).shape) == (1, Co, 7 if s == 1 else 4, 7 if s == 1 else 4)


def test_invalid_configurations_fail_in_both():
    with pytest.raises(ValueError):
        formulas.gqa_attention_params(64, 8, 3)
    with pytest.raises(ValueError):
        LlamaConfig(dim=64, n_heads=8, n_kv_heads=3)
    with pytest.raises(ValueError):
        formulas.inverted_residual_params(8, 8, 3, 6)
    with pytest.raises(ValueError):
        InvertedResidual(8, 8, 3, 6)
    with pytest.raises(ValueError):
        formulas.moe_params(8, 16, 2, 3)
    with pytest.raises(ValueError):
        recipes.swiglu_moe(8, 16, 2, 3)
    with pytest.raises(ValueError):
        formulas.rmsnorm_params(-1)
    with pytest.raises((RuntimeError, ValueError)):
        nn.RMSNorm(-1)
