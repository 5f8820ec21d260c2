"""helpers.cost (pure arithmetic) against measurements: FlopCounterMode, optimiser state,
tensors built by real modules, parameter counts."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from helpers import cost
from helpers.counting import count_params
from helpers.models.attention import scaled_dot_product_attention
from helpers.models.cnn import DepthwiseSeparableConv2d
from helpers.models.gpt import GPT, GPTConfig
from helpers.shapes import conv_output_size


def flops_of(module: nn.Module, x: torch.Tensor) -> int:
    with FlopCounterMode(display=False) as counter:
        module(x)
    return counter.get_total_flops()


@settings(max_examples=40)
@given(fin=st.integers(1, 64), fout=st.integers(1, 64), lead=st.lists(st.integers(1, 5), min_size=1, max_size=3),
       bias=st.booleans())
def test_linear_flops_equal_flop_counter(fin, fout, lead, bias):
    x = torch.empty(*lead, fin, device="meta")
    rows = int(torch.tensor(lead).prod())
    measured = flops_of(nn.Linear(fin, fout, bias=bias, device="meta"), x)
    assert measured == cost.linear_flops(fin, fout, rows) == 2 * cost.linear_macs(fin, fout, rows)


@settings(max_examples=40)
@given(g=st.integers(1, 4), cin_g=st.integers(1, 4), cout_g=st.integers(1, 4), k=st.integers(1, 4),
       stride=st.integers(1, 3), padding=st.integers(0, 2), size=st.integers(4, 12), B=st.integers(1, 3),
       dim=st.sampled_from([1, 2]))
def test_conv_flops_equal_flop_counter(g, cin_g, cout_g, k, stride, padding, size, B, dim):
    cin, cout = g * cin_g, g * cout_g
    conv = (nn.Conv1d if dim == 1 else nn.Conv2d)(cin, cout, k, stride=stride, padding=padding, groups=g,
                                                  device="meta")
    x = torch.empty(B, cin, *([size] * dim), device="meta")
    out = conv_output_size((size,) * dim, kernel_size=k, stride=stride, padding=padding)
    assert flops_of(conv, x) == cost.conv_flops(cin, cout, k, out, groups=g, batch_size=B)


def test_conv_macs_rejects_mismatched_dims_and_groups():
    with pytest.raises(ValueError):
        cost.conv_macs(4, 4, (3, 3), (5, 5, 5))
    with pytest.raises(ValueError):
        cost.conv_macs(4, 6, 3, 5, groups=4)


@pytest.mark.parametrize("opt_name,factory", [
    ("adam", lambda p: torch.optim.Adam(p)), ("adamw", lambda p: torch.optim.AdamW(p)),
    ("sgd_momentum", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)), ("sgd", lambda p: torch.optim.SGD(p, lr=0.1))])
def test_training_memory_matches_optimizer_state(opt_name, factory):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(7, 16), nn.ReLU(), nn.Linear(16, 3))
    opt = factory(model.parameters())
    model(torch.randn(5, 7)).sum().backward()
    opt.step()
    state_bytes = sum(v.numel() * v.element_size() for s in opt.state.values() for k, v in s.items()
                      if torch.is_tensor(v) and k != "step")
    grads = sum(p.grad.numel() * p.grad.element_size() for p in model.parameters())
    mem = cost.training_memory(count_params(model), optimizer=opt_name)
    assert mem.optimizer_state == state_bytes
    assert mem.grads == grads == mem.params
    assert mem.total == mem.params * (2 + cost.OPTIMIZER_STATES[opt_name])


def test_training_memory_activations_and_unknown_optimizer():
    mem = cost.training_memory(1000, activation_numel=250, optimizer="adam", bytes_per_element=2)
    assert mem.as_dict() == {"params": 2000, "grads": 2000, "optimizer_state": 4000, "activations": 500,
                             "total": 8500}
    with pytest.raises(ValueError, match="unknown optimizer"):
        cost.training_memory(10, optimizer="lion")


@given(B=st.integers(1, 3), h=st.integers(1, 4), T=st.integers(1, 20), S=st.integers(1, 20),
       dtype=st.sampled_from([torch.float32, torch.bfloat16]))
def test_attention_scores_bytes_equal_tensor(B, h, T, S, dtype):
    q, k = torch.empty(B, h, T, 8, device="meta", dtype=dtype), torch.empty(B, h, S, 8, device="meta", dtype=dtype)
    _, att = scaled_dot_product_attention(q, k, k, need_weights=True)
    assert cost.attention_scores_bytes(B, h, T, att.element_size(), kv_len=S) == att.numel() * att.element_size()


@pytest.mark.parametrize("n_layer,n_head,n_embd,T,B", [(2, 4, 32, 10, 3), (3, 2, 16, 7, 1)])
def test_kv_cache_bytes_equal_keys_and_values_of_a_gpt(n_layer, n_head, n_embd, T, B):
    with torch.device("meta"):
        model = GPT(GPTConfig(vocab_size=50, block_size=16, n_layer=n_layer, n_head=n_head, n_embd=n_embd))
    seen = []
    for blk in model.transformer.h:
        blk.attn.c_attn.register_forward_hook(
            lambda m, a, out: seen.append(out[..., n_embd:].numel() * out.element_size()))  # K, V columns
    model(torch.zeros(B, T, dtype=torch.long, device="meta"))
    assert sum(seen) == cost.kv_cache_bytes(n_layer, n_head, n_embd // n_head, T, B, bytes_per_element=4)
    assert cost.kv_cache_bytes(4, 8, 16, 10, 1, 2, n_kv_head=2) * 4 == cost.kv_cache_bytes(4, 8, 16, 10, 1, 2)


@given(c=st.integers(1, 64), o=st.integers(1, 64), k=st.integers(1, 7), bias=st.booleans())
def test_depthwise_separable_ratio_equals_counts(c, o, k, bias):
    sep = count_params(DepthwiseSeparableConv2d(c, o, k, bias=bias).to("meta"))
    std = count_params(nn.Conv2d(c, o, k, bias=bias, device="meta"))
    assert cost.depthwise_separable_ratio(c, o, k, bias=bias) == pytest.approx(sep / std, rel=1e-12)
    if not bias:
        assert cost.depthwise_separable_ratio(c, o, k) == pytest.approx(1 / o + 1 / k ** 2, rel=1e-12)


def test_weight_bytes():
    assert cost.weight_bytes(10, "fp32") == 40 and cost.weight_bytes(10, "bf16") == 20
    assert cost.weight_bytes(10, "int4") == 5
    assert cost.weight_bytes(10, "fp32") == 10 * torch.empty(0, dtype=torch.float32).element_size()
    with pytest.raises(ValueError):
        cost.weight_bytes(1, "fp12")
