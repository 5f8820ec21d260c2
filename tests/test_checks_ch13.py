"""Chapter 13 exercise questions: references agree with independent computations (the papers'
closed forms, peft on a Llama built on meta, explicit byte counts), cases are randomised, and
typical wrong answers fail."""

from __future__ import annotations

import random
import warnings

import pytest
import torch

from helpers import cost
from helpers.checks import check
from helpers.checks.registry import get, make_cases, questions_for_chapter

SEEDS = [0, 1]
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


def cases_of(qid, seed):
    return make_cases(get(qid), random.Random(seed))


def test_chapter_has_six_randomised_questions():
    qs = questions_for_chapter("13")
    assert len(qs) >= 5
    for q in qs:
        assert cases_of(q.id, 0) != cases_of(q.id, 1), q.id


@pytest.mark.parametrize("seed", SEEDS)
def test_zero_reference_equals_figure_1_formula(seed):
    q = get("13.zero_bytes")
    for (n, g, stage), _ in cases_of(q.id, seed):
        sharded = {0: 0, 1: 12, 2: 14, 3: 16}[stage]  # bytes per parameter divided among the GPUs
        assert q.reference(n, g, stage) == (16 - sharded) * n + sharded * n / g
        assert q.reference(n, g, stage) == cost.zero_model_state_bytes(n, g, stage)


@pytest.mark.parametrize("seed", SEEDS)
def test_max_micro_batch_is_the_largest_that_fits(seed):
    q = get("13.max_micro_batch")

    def paper(s, b, h, a, L, recompute):  # Korthikanti et al. Table 2, t = 1
        per = {"none": s * b * h * 34 + 5 * a * s * s * b, "selective": 34 * s * b * h, "full": 2 * s * b * h}
        return L * per[recompute]

    for (budget, s, h, a, L), kw in cases_of(q.id, seed):
        rc = kw.get("recompute", "none")
        b = q.reference(budget, s, h, a, L, **kw)
        assert b >= 1 and paper(s, b, h, a, L, rc) <= budget < paper(s, b + 1, h, a, L, rc)


@pytest.mark.parametrize("seed", SEEDS)
def test_training_days_reference(seed):
    q = get("13.training_days")
    for (n, d, g, peak, mfu), _ in cases_of(q.id, seed):
        assert q.reference(n, d, g, peak, mfu) == pytest.approx(6 * n * d / (g * peak * 1e12 * mfu) / 86400, rel=1e-12)


def test_lora_reference_equals_peft():
    peft = pytest.importorskip("peft")
    from transformers import LlamaConfig, LlamaForCausalLM

    q = get("13.lora_trainable")
    for (_, _, _, heads, kv, r, targets), _ in cases_of(q.id, 0)[:4]:
        hidden, inter, layers = 16 * heads, 32 * heads, 2  # small widths and two layers keep peft fast
        cfg = LlamaConfig(vocab_size=64, hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
                          num_attention_heads=heads, num_key_value_heads=kv)
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = peft.get_peft_model(LlamaForCausalLM(cfg), peft.LoraConfig(r=r, target_modules=targets))
        assert model.get_nb_trainable_parameters()[0] == q.reference(hidden, inter, layers, heads, kv, r, targets)


@pytest.mark.parametrize("seed", SEEDS)
def test_mlp_saved_bytes_reference_equals_hand_count(seed):
    q = get("13.mlp_saved_bytes")
    for (B, T, h), kw in cases_of(q.id, seed)[:6]:
        nbytes = DTYPE_BYTES[kw.get("dtype", "bfloat16")]
        kept = h if kw.get("recompute") else h + 4 * h + 4 * h  # input; + GELU input and output (4h each)
        assert q.reference(B, T, h, **kw) == B * T * kept * nbytes


@pytest.mark.parametrize("seed", SEEDS)
def test_quantized_reference(seed):
    q = get("13.quantized_weight_bytes")
    for (n,), kw in cases_of(q.id, seed):
        bits, block = kw.get("bits", 4), kw.get("block_size", 64)
        per = bits + 8 / block + 32 / (block * 256) if kw.get("double_quant") else bits + 32 / block
        assert q.reference(n, **kw) == pytest.approx(n * per / 8, rel=1e-12)


def _zero_forgets_grads(num_params, num_gpus, stage):
    return (4 + 12 / num_gpus) * num_params if stage else 16 * num_params  # shards only the optimizer


def _batch_rounds_up(memory_bytes, seq_len, hidden_size, num_heads, num_layers, recompute="none"):
    per = cost.transformer_activation_bytes(seq_len, 1, hidden_size, num_heads, recompute=recompute) * num_layers
    return -(-memory_bytes // int(per))


def _mlp_with_params(batch_size, seq_len, hidden_size, dtype="bfloat16", recompute=False):
    h, n = hidden_size, DTYPE_BYTES[dtype]
    return batch_size * seq_len * 9 * h * n + (8 * h * h) * n  # + the two weight matrices Linear saves


def _lora_forgets_gqa(hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, num_key_value_heads,
                      r, target_modules):
    shapes = {"gate_proj": (hidden_size, intermediate_size), "up_proj": (hidden_size, intermediate_size),
              "down_proj": (intermediate_size, hidden_size)}
    return num_hidden_layers * sum(r * sum(shapes.get(m, (hidden_size, hidden_size))) for m in target_modules)


def _days_without_mfu(num_params, num_tokens, num_gpus, peak_tflops, mfu):
    return 6 * num_params * num_tokens / (num_gpus * peak_tflops * 1e12) / 86400


@pytest.mark.parametrize("qid,wrong", [("13.zero_bytes", _zero_forgets_grads),
                                       ("13.max_micro_batch", _batch_rounds_up),
                                       ("13.mlp_saved_bytes", _mlp_with_params),
                                       ("13.lora_trainable", _lora_forgets_gqa),
                                       ("13.training_days", _days_without_mfu),
                                       ("13.quantized_weight_bytes", lambda n, **kw: n / 2)])
def test_typical_wrong_answers_fail(qid, wrong, capsys):
    assert not check(qid, wrong)
    assert "❌" in capsys.readouterr().out
