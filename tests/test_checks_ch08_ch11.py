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
def test_transformer_layer_reference_equals_formula(seed):
    q = get("08.transformer_layer_params")
    for args, kw in cases_of(q.id, seed):
        assert q.reference(*args, **kw) == formulas.transformer_layer_params(*args, **kw)


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


@pytest.mark.parametrize("qid,wrong", [("08.mha_params", _naive_mha), ("08.kv_cache_bytes", _naive_kv),
                                       ("11.linear_flops", _macs_not_flops),
                                       ("11.adam_training_bytes", _adam_forgets_state),
                                       ("11.weight_memory_bytes", _int4_as_int8),
                                       ("08.gpt_params", lambda *a, **k: 124_439_808)])
def test_typical_wrong_answers_fail(qid, wrong, capsys):
    assert not check(qid, wrong)
    assert "❌" in capsys.readouterr().out
