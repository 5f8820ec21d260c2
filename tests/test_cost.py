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
from tests._compare import agree

#: a size drawn mostly valid, with 0 and negative values often enough
size = st.one_of(st.integers(1, 6), st.integers(-2, 0))


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


@settings(max_examples=60)
@given(fin=size, fout=size, rows=size, flops=st.booleans())
def test_linear_macs_refuse_what_torch_refuses(fin, fout, rows, flops):
    """Zero sizes cost 0 (torch runs an empty Linear); negative sizes are refused, never negative MACs."""
    def theirs() -> int:
        measured = flops_of(nn.Linear(fin, fout, device="meta"), torch.empty(rows, fin, device="meta"))
        return measured if flops else measured // 2

    agree(lambda: (cost.linear_flops if flops else cost.linear_macs)(fin, fout, rows), theirs)


@settings(max_examples=80)
@given(g=st.integers(-1, 3), cin=size, cout=size, k=size, out=size, B=size, dim=st.sampled_from([1, 2]))
def test_conv_macs_refuse_what_torch_refuses(g, cin, cout, k, out, B, dim):
    """groups=0 (was a ZeroDivisionError), kernel 0, negative sizes (were negative MACs), out_channels=0 (torch
    builds the layer but cannot run it): refused as torch refuses to run the conv; on CPU, since the meta
    device skips some of these checks (a kernel-0 conv 'runs' there)."""
    if cin == 0 and k == 0:
        # torch's CPU conv skips every check for a zero-channel input, even kernel 0; the formula does not
        with pytest.raises(ValueError, match="kernel_size"):
            cost.conv_macs(cin, cout, k, out, groups=g, batch_size=B)
        return

    def theirs() -> int:
        conv = (nn.Conv1d if dim == 1 else nn.Conv2d)(cin, cout, k, groups=g)
        return flops_of(conv, torch.zeros(B, cin, *[out + k - 1] * dim)) // 2

    agree(lambda: cost.conv_macs(cin, cout, (k,) * dim, (out,) * dim, groups=g, batch_size=B), theirs)


@settings(max_examples=60)
@given(B=size, h=size, T=size, S=st.one_of(st.none(), size), n_layer=size, hd=size, kv=st.one_of(st.none(), size))
def test_byte_counts_refuse_negative_sizes_like_torch(B, h, T, S, n_layer, hd, kv):
    """The tensors these functions count, built by torch: an empty one is 0 bytes, a negative size is refused."""
    def scores() -> int:
        att = torch.empty(B, h, T, T if S is None else S, device="meta")
        return att.numel() * att.element_size()

    agree(lambda: cost.attention_scores_bytes(B, h, T, 4, kv_len=S), scores)

    def cache() -> int:
        heads = h if kv is None else kv
        if h < 1 or heads < 1:  # (torch's sdpa even "runs" 4 query heads against 0 key/value heads)
            raise ValueError("attention needs at least one query head and one key/value head")
        q, kv_t = torch.empty(1, h, 1, 1), torch.empty(1, heads, 1, 1)
        torch.nn.functional.scaled_dot_product_attention(q, kv_t, kv_t, enable_gqa=True)  # kv heads must divide h
        keys = torch.empty(n_layer, B, heads, T, hd, dtype=torch.bfloat16, device="meta")
        return 2 * keys.numel() * keys.element_size()

    agree(lambda: cost.kv_cache_bytes(n_layer, h, hd, T, B, 2, n_kv_head=kv), cache)
    agree(lambda: cost.weight_bytes(n_layer, "bf16"),
          lambda: torch.empty(n_layer, dtype=torch.bfloat16, device="meta").nbytes)


@pytest.mark.parametrize("call, name", [
    (lambda bad: cost.linear_macs(bad, 4), "in_features"),
    (lambda bad: cost.conv_macs(3, 8, 3, bad), "output_size"),
    (lambda bad: cost.conv_macs(3, 8, 3, 5, groups=bad), "groups"),
    (lambda bad: cost.weight_bytes(bad), "num_params"),
    (lambda bad: cost.training_memory(bad), "num_params"),
    (lambda bad: cost.attention_scores_bytes(1, bad, 8), "num_heads"),
    (lambda bad: cost.kv_cache_bytes(2, 4, 16, bad), "seq_len"),
    (lambda bad: cost.kv_cache_bytes(2, 4, 16, 8, bytes_per_element=None if bad == 2.5 else bad),
     "bytes_per_element"),  # 2.5 bytes per element is a number, not a wrong type
    (lambda bad: cost.depthwise_separable_ratio(bad, 8, 3), "in_channels"),
])
@pytest.mark.parametrize("bad", [None, 2.5, True, "3"])
def test_wrong_types_are_a_readable_type_error(call, name, bad):
    """None/float/bool/str sizes: a TypeError (also a ValueError) naming the argument, not arithmetic on None."""
    with pytest.raises(TypeError, match=name) as exc:
        call(bad)
    assert isinstance(exc.value, ValueError)


def test_conv_macs_rejects_mismatched_dims_and_groups():
    with pytest.raises(ValueError):
        cost.conv_macs(4, 4, (3, 3), (5, 5, 5))
    with pytest.raises(ValueError):
        cost.conv_macs(4, 6, 3, 5, groups=4)
    with pytest.raises(ValueError, match="groups"):  # was ZeroDivisionError
        cost.conv_macs(4, 4, 3, 5, groups=0)
    with pytest.raises(ValueError, match="in_channels"):  # was -60 MACs
        cost.conv_macs(-4, 4, 3, 5)


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


@settings(max_examples=40)
@given(c=st.integers(-1, 4), o=st.integers(-1, 4), k=st.integers(-1, 3), bias=st.booleans())
def test_depthwise_separable_ratio_refuses_layers_that_cannot_run(c, o, k, bias):
    """0 channels or a 0 kernel: torch builds some of these layers but cannot run them (or they have no
    weights to compare, a 0/0 ratio); the ratio is refused with a ValueError, not a ZeroDivisionError."""
    def theirs() -> float:
        sep, std = DepthwiseSeparableConv2d(c, o, k, bias=bias), nn.Conv2d(c, o, k, bias=bias)
        x = torch.zeros(1, c, 4, 4)
        sep(x), std(x)
        return count_params(sep) / count_params(std)

    agree(lambda: cost.depthwise_separable_ratio(c, o, k, bias=bias), theirs)


def test_weight_bytes():
    assert cost.weight_bytes(10, "fp32") == 40 and cost.weight_bytes(10, "bf16") == 20
    assert cost.weight_bytes(10, "int4") == 5
    assert cost.weight_bytes(10, "fp32") == 10 * torch.empty(0, dtype=torch.float32).element_size()
    with pytest.raises(ValueError):
        cost.weight_bytes(1, "fp12")
