"""Chapter 08/11 exercise questions: references agree with independent computations (formulas,
measured tensors, forward passes), cases are randomised and cheap, and typical wrong answers fail."""

from __future__ import annotations

import random
import time

import pytest
import torch

from helpers import formulas, shapes
from helpers.checks import check
from helpers.checks.registry import get, make_cases, questions_for_chapter
from helpers.counting import bytes_for
from helpers.models.attention import MultiHeadAttention
from tests._limits import binding_limit

SEEDS = [0, 1]
QIDS = [q.id for q in questions_for_chapter("08") + questions_for_chapter("11")]


def cases_of(qid, seed):
    return make_cases(get(qid), random.Random(seed))








@pytest.mark.parametrize("seed", SEEDS)
def test_mha_params_reference_equals_formula(seed):
    q = get("08.mha_params")
    for args, kw in cases_of(q.id, seed):
        assert q.reference(*args, **kw) == formulas.mha_params(*args, **kw)


@pytest.mark.parametrize("seed", SEEDS)
def test_attention_shapes_reference_matches_mha_forward(seed):
    q = get("08.attention_shapes")
    for (B, T, E, h), kw in cases_of(q.id, seed)[:6]:
        T = min(T, 64)
        q_shape, scores, out = q.reference(B, T, E, h)
        mha = MultiHeadAttention(E, h, batch_first=True, device="meta")
        x = torch.empty(B, T, E, device="meta")
        y, w = mha(x, x, x, average_attn_weights=False)
        assert out == tuple(y.shape) and scores == tuple(w.shape)
        assert q_shape == (B, h, T, E // h)


@pytest.mark.parametrize("seed", SEEDS)
def test_kv_cache_reference_equals_tensor_sizes(seed):
    q = get("08.kv_cache_bytes")
    for (L, h, d, T), kw in cases_of(q.id, seed)[:8]:
        B, bpe = kw.get("batch_size", 1), kw.get("bytes_per_element", 2)
        dtype = {1: torch.int8, 2: torch.bfloat16, 4: torch.float32}[bpe]
        k = torch.empty(B, h, T, d, dtype=dtype, device="meta")  # one layer's keys
        assert q.reference(L, h, d, T, **kw) == 2 * L * k.numel() * k.element_size()


@pytest.mark.parametrize("seed", SEEDS)
def test_gpt_params_reference_equals_formula(seed):
    q = get("08.gpt_params")
    for (V, P, L, h, C), kw in cases_of(q.id, seed):
        block = (2 * formulas.layernorm_params(C) + formulas.linear_params(C, 3 * C) + formulas.linear_params(C, C)
                 + formulas.linear_params(C, 4 * C) + formulas.linear_params(4 * C, C))
        head = 0 if kw.get("tie_weights", True) else formulas.linear_params(C, V, bias=False)
        expected = (formulas.embedding_params(V, C) + formulas.embedding_params(P, C) + L * block
                    + formulas.layernorm_params(C) + head)
        assert q.reference(V, P, L, h, C, **kw) == expected
    assert q.reference(50257, 1024, 12, 12, 768) == 124_439_808


@pytest.mark.parametrize("seed", SEEDS)
def test_max_context_is_the_largest_that_fits(seed):
    q, kv = get("08.max_context"), get("08.kv_cache_bytes")
    for (budget, L, h, d), kw in cases_of(q.id, seed):
        T = q.reference(budget, L, h, d, **kw)
        assert kv.reference(L, h, d, T, **kw) <= budget < kv.reference(L, h, d, T + 1, **kw)


@pytest.mark.parametrize("seed", SEEDS)
def test_linear_and_conv_references_equal_hand_formulas(seed):
    q = get("11.linear_flops")
    for (fin, fout, B), kw in cases_of(q.id, seed):
        assert q.reference(fin, fout, B, **kw) == 2 * B * kw.get("seq_len", 1) * fin * fout
    q = get("11.conv2d_macs")
    for (cin, cout, k, size), kw in cases_of(q.id, seed):
        out = shapes.conv_output_size(size, k, kw.get("stride", 1), kw.get("padding", 0))
        g = kw.get("groups", 1)
        assert q.reference(cin, cout, k, size, **kw) == kw.get("batch_size", 1) * cout * out * out * (cin // g) * k * k


@pytest.mark.parametrize("seed", SEEDS)
def test_memory_and_sharing_references(seed):
    q = get("11.adam_training_bytes")
    for (P, A), kw in cases_of(q.id, seed):
        assert q.reference(P, A, **kw) == (4 * P + A) * kw.get("bytes_per_element", 4)
    q = get("11.depthwise_separable_params")
    for (c, o, k), kw in cases_of(q.id, seed):
        b = kw.get("bias", True)
        assert q.reference(c, o, k, **kw) == formulas.conv_params(c, c, k, groups=c, bias=b) + formulas.conv_params(c, o, 1, bias=b)
    q = get("11.dense_equivalent_params")
    for (c, o, size, k), kw in cases_of(q.id, seed):
        out = shapes.conv_output_size(size, k, padding=kw.get("padding", 0))
        assert q.reference(c, o, size, k, **kw) == formulas.linear_params(c * size * size, o * out * out)
    q = get("11.weight_memory_bytes")
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16, "int8": torch.int8}
    for (n, dt), _ in cases_of(q.id, seed):
        expected = bytes_for(n, dtypes[dt]) if dt in dtypes else bytes_for(n, torch.int8) / 2
        assert q.reference(n, dt) == expected


def _naive_mha(embed_dim, num_heads, bias=True, kdim=None, vdim=None, add_bias_kv=False):
    return 4 * embed_dim * embed_dim  # the "4·d²" estimate


def _naive_kv(n_layer, n_head, head_dim, seq_len, batch_size=1, bytes_per_element=2):
    return n_layer * n_head * head_dim * seq_len * batch_size * bytes_per_element  # forgot the values


def _macs_not_flops(in_features, out_features, batch_size, seq_len=1):
    return batch_size * seq_len * in_features * out_features


def _adam_forgets_state(num_params, activation_numel, bytes_per_element=4):
    return (2 * num_params + activation_numel) * bytes_per_element


def _int4_as_int8(num_params, dtype):
    return num_params * {"fp32": 4, "bf16": 2, "fp16": 2, "int8": 1, "int4": 1}[dtype]


def _deepest_gpt_student(vocab_size, block_size, n_head, n_embd, batch_size, param_budget, kv_budget_bytes,
                         embeddings=True):
    C = n_embd
    fixed = (vocab_size * C + block_size * C if embeddings else 0) + 2 * C       # wte, wpe, ln_f
    block = 12 * C * C + 13 * C
    by_params = max(0, (param_budget - fixed) // block)
    return min(by_params, kv_budget_bytes // (2 * batch_size * block_size * C * 2))


def _dominant_student(input_size, in_channels, layers, same_index=False):
    side, c, params, macs = input_size, in_channels, [], []
    for layer in layers:
        k, s, p, o = layer["kernel_size"], layer["stride"], layer["padding"], layer["out_channels"]
        side = (side + 2 * p - k) // s + 1
        params.append(o * c * k * k + o)
        macs.append(o * side * side * c * k * k)
        c = o
    i = params.index(max(params))
    return [i, i if same_index else macs.index(max(macs))]


def test_two_new_questions_accept_a_plain_python_answer(capsys):
    assert check("08.deepest_gpt", _deepest_gpt_student)
    assert check("11.dominant_layers", _dominant_student)
    assert "❌" not in capsys.readouterr().out


@pytest.mark.parametrize("seed", SEEDS)
def test_deepest_gpt_meets_both_limits_on_the_real_gpt(seed):
    from helpers.counting import count_params
    from helpers.models.gpt import GPT, GPTConfig

    q = get("08.deepest_gpt")
    binding = set()
    for (V, T, h, C, B, params, kv), _ in cases_of(q.id, seed)[:6]:
        n = q.reference(V, T, h, C, B, params, kv)

        def measured(n_layer):
            with torch.device("meta"):
                model = GPT(GPTConfig(vocab_size=V, block_size=T, n_layer=n_layer, n_head=h, n_embd=C))
                qkv = model.transformer.h[0].attn.c_attn(torch.empty(B, T, C))  # (B, T, 3C)
            k, v = qkv.split(C, dim=2)[1:]
            return {"params": count_params(model), "cache": n_layer * (k.numel() + v.numel()) * 2}  # bf16

        binding.add(binding_limit(n, measured, {"params": params, "cache": kv}))
    assert binding == {"params", "cache"}


@pytest.mark.parametrize("seed", SEEDS)
def test_dominant_layers_reference_equals_formulas(seed):
    from helpers import cost

    q = get("11.dominant_layers")
    differ = 0
    for (size, cin, layers), _ in cases_of(q.id, seed):
        side, c, params, macs = size, cin, [], []
        for layer in layers:
            side = shapes.conv_output_size(side, layer["kernel_size"], layer["stride"], layer["padding"])
            params.append(formulas.conv_params(c, layer["out_channels"], layer["kernel_size"]))
            macs.append(cost.conv_macs(c, layer["out_channels"], layer["kernel_size"], (side, side)))
            c = layer["out_channels"]
        answer = q.reference(size, cin, layers)
        assert answer == [params.index(max(params)), macs.index(max(macs))]
        differ += answer[0] != answer[1]
    assert differ >= 2  # the layer with the most parameters is not always the one doing the most work


@pytest.mark.parametrize("qid,wrong", [("08.deepest_gpt", lambda *a: _deepest_gpt_student(*a, embeddings=False)),
                                       ("11.dominant_layers", lambda *a: _dominant_student(*a, same_index=True)),
                                       ("08.mha_params", _naive_mha), ("08.kv_cache_bytes", _naive_kv),
                                       ("11.linear_flops", _macs_not_flops),
                                       ("11.adam_training_bytes", _adam_forgets_state),
                                       ("11.weight_memory_bytes", _int4_as_int8),
                                       ("08.gpt_params", lambda *a, **k: 124_439_808)])
def test_typical_wrong_answers_fail(qid, wrong, capsys):
    assert not check(qid, wrong)
    assert "❌" in capsys.readouterr().out
