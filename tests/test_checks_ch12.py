"""Chapter 12 exercise questions: references agree with independent computations (Hugging Face models
on meta, decoder_lm_params, real cache tensors, the course's attention), cases are randomised, budget
cases hit the edges, and typical wrong answers fail."""

from __future__ import annotations

import math
import random

import pytest
import torch

from helpers import cost
from helpers.checks import check
from helpers.checks.registry import get, make_cases
from helpers.formulas import decoder_lm_params
from helpers.models.attention import scaled_dot_product_attention

transformers = pytest.importorskip("transformers")
SEEDS = [0, 1]


def cases_of(qid, seed):
    return make_cases(get(qid), random.Random(seed))


def hf_count(config) -> int:
    with torch.device("meta"):
        model = (transformers.MixtralForCausalLM if config.model_type == "mixtral"
                 else transformers.LlamaForCausalLM)(config)
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("seed", SEEDS)
def test_gqa_attention_params_reference_equals_hugging_face(seed):
    from transformers.models.llama.modeling_llama import LlamaAttention as HFLlamaAttention

    q = get("12.gqa_attention_params")
    for (d, h, g), kw in cases_of(q.id, seed)[:8]:
        config = transformers.LlamaConfig(hidden_size=d, num_attention_heads=h, num_key_value_heads=g, **kw)
        with torch.device("meta"):
            hf = HFLlamaAttention(config, layer_idx=0)
        assert q.reference(d, h, g, **kw) == sum(p.numel() for p in hf.parameters())


@pytest.mark.parametrize("seed", SEEDS)
def test_kv_cache_max_batch_is_the_largest_that_fits_and_edges_are_hit(seed):
    q = get("12.kv_cache_max_batch")
    answers, exact = [], 0
    for (budget, L, g, hd, T), kw in cases_of(q.id, seed):
        b = q.reference(budget, L, g, hd, T, **kw)
        per_sequence = 2 * L * g * hd * T * kw["bytes_per_element"]  # one (1, g, T, hd) key + value per layer
        assert b * per_sequence <= budget < (b + 1) * per_sequence
        exact += budget == b * per_sequence and b > 0
        answers.append(b)
    assert 0 in answers and exact >= 3  # "not even one" and "exactly on the budget" cases exist


def test_kv_cache_bytes_with_kv_heads_equals_hugging_face_cache():
    config = transformers.LlamaConfig(vocab_size=20, hidden_size=32, intermediate_size=16, num_hidden_layers=2,
                                      num_attention_heads=8, num_key_value_heads=2)
    model = transformers.LlamaForCausalLM(config).eval()
    with torch.no_grad():
        cache = model(torch.randint(0, 20, (3, 5)), use_cache=True).cache
    measured = sum(t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values))
    assert measured == cost.kv_cache_bytes(2, 8, 4, 5, 3, 4, n_kv_head=2)
    assert get("12.kv_cache_max_batch").reference(measured, 2, 2, 4, 5, bytes_per_element=4) == 3


def test_swiglu_reference_reproduces_published_configs():
    q = get("12.swiglu_intermediate_size")
    for (dim,), kw in cases_of(q.id, 0)[:3]:  # Llama-2-7B, Llama-3-8B, Llama-3-70B
        config = {4096: {256: 11008, 1024: 14336}, 8192: {4096: 28672}}[dim][kw.get("multiple_of", 256)]
        assert q.reference(dim, **kw) == config
    for (dim,), kw in cases_of(q.id, 1):
        f, m = q.reference(dim, **kw), kw.get("multiple_of", 256)
        hidden = int((kw.get("ffn_dim_multiplier") or 1) * int(8 * dim / 3))
        assert f % m == 0 and f - m < hidden <= f  # the smallest multiple of m at or above the scaled 2/3·4d


@pytest.mark.parametrize("seed", SEEDS)
def test_llama_params_reference_equals_hugging_face_and_formula(seed):
    q = get("12.llama_params")
    for args, kw in cases_of(q.id, seed)[:6]:
        V, d, F, L, h, g = args
        config = transformers.LlamaConfig(vocab_size=V, hidden_size=d, intermediate_size=F, num_hidden_layers=L,
                                          num_attention_heads=h, num_key_value_heads=g, **kw)
        expected = hf_count(config)
        assert q.reference(*args, **kw) == expected == decoder_lm_params(*args, **kw)["total"]


@pytest.mark.parametrize("seed", SEEDS)
def test_moe_params_reference_equals_hugging_face_mixtral_and_formula(seed):
    q = get("12.moe_params")
    for args, kw in cases_of(q.id, seed)[:5]:
        V, d, F, L, h, g, E, k = args
        config = transformers.MixtralConfig(vocab_size=V, hidden_size=d, intermediate_size=F, num_hidden_layers=L,
                                            num_attention_heads=h, num_key_value_heads=g, num_local_experts=E,
                                            num_experts_per_tok=k)
        ours = decoder_lm_params(V, d, F, L, h, g, num_local_experts=E, num_experts_per_tok=k)
        assert q.reference(*args) == [hf_count(config), ours["active"]] == [ours["total"], ours["active"]]


@pytest.mark.parametrize("seed", SEEDS)
def test_gqa_attention_reference_equals_the_course_attention(seed):
    q = get("12.gqa_attention")
    shapes = set()
    for (qs, ks, vs), kw in cases_of(q.id, seed):
        qt, kt, vt = (torch.tensor(t, dtype=torch.float64) for t in (qs, ks, vs))
        ours = scaled_dot_product_attention(qt, kt, vt, is_causal=True, enable_gqa=True)
        torch.testing.assert_close(torch.tensor(q.reference(qs, ks, vs), dtype=torch.float64), ours)
        shapes.add((qt.shape[1], kt.shape[1]))
    assert any(h == g for h, g in shapes) and any(h > g for h, g in shapes)  # MHA and GQA cases


# --------------------------------------------------------------------------- wrong answers fail

def _mha_counted(hidden_size, num_attention_heads, num_key_value_heads, head_dim=None):
    return 4 * hidden_size * hidden_size  # ignores the key/value heads


def _kv_with_all_heads(budget, L, g, hd, T, bytes_per_element=2):
    return budget // (2 * L * 4 * g * hd * T * bytes_per_element)  # caches as if h = 4g


def _kv_keys_only(budget, L, g, hd, T, bytes_per_element=2):
    return budget // (L * g * hd * T * bytes_per_element)


def _swiglu_not_rounded(dim, multiple_of=256, ffn_dim_multiplier=None):
    return int((ffn_dim_multiplier or 1) * int(8 * dim / 3))


def _llama_double_counts_tied(V, d, F, L, h, g, tie_word_embeddings=False):
    hd = d // h
    return 2 * V * d + L * (2 * d * h * hd + 2 * d * g * hd + 3 * d * F + 2 * d) + d


def _moe_active_is_total(V, d, F, L, h, g, E, k):
    total = 2 * V * d + L * (2 * d * d + 2 * d * g * (d // h) + E * 3 * d * F + E * d + 2 * d) + d
    return [total, total]


def _attention_not_causal(q, k, v):
    q, k, v = (torch.tensor(t) for t in (q, k, v))
    rep = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
    return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), -1) @ v


def _attention_repeat_instead_of_interleave(q, k, v):
    import torch.nn.functional as F

    q, k, v = (torch.tensor(t) for t in (q, k, v))
    rep = q.shape[1] // k.shape[1]
    return F.scaled_dot_product_attention(q, k.repeat(1, rep, 1, 1), v.repeat(1, rep, 1, 1), is_causal=True)


@pytest.mark.parametrize("qid,wrong", [
    ("12.gqa_attention_params", _mha_counted), ("12.kv_cache_max_batch", _kv_with_all_heads),
    ("12.kv_cache_max_batch", _kv_keys_only), ("12.swiglu_intermediate_size", _swiglu_not_rounded),
    ("12.llama_params", _llama_double_counts_tied), ("12.moe_params", _moe_active_is_total),
    ("12.gqa_attention", _attention_not_causal), ("12.gqa_attention", _attention_repeat_instead_of_interleave),
    ("12.llama_params", lambda *a, **k: 8_030_261_248)])
def test_typical_wrong_answers_fail(qid, wrong, capsys):
    assert not check(qid, wrong)
    assert "❌" in capsys.readouterr().out
