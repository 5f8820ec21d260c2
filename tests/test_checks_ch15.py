"""Chapter 15 exercise questions: every reference answer agrees with an independent implementation.

The references in helpers/checks/ch15.py come from helpers.cost.kv_cache_bytes and helpers.inference;
here they are compared, on the questions' own randomised cases (and on fresh seeds drawn by
hypothesis), with Hugging Face's real caches filled on the meta device (StaticCache for Mistral's
sliding window and Gemma-3's local/global layers), the shapes of transformers' DeepseekV3Attention,
FlopCounterMode on the matrix products of one decode step, a direct sum over the outcomes of
speculative sampling and its simulation. Typical wrong answers get a hint, never a traceback.
"""

from __future__ import annotations

import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from helpers import inference
from helpers.checks import check
from helpers.checks.registry import get, make_cases, questions_for_chapter
from tests._feedback import assert_friendly_failure

transformers = pytest.importorskip("transformers")
from transformers import Gemma3TextConfig, MistralConfig, StaticCache  # noqa: E402
from transformers.models.deepseek_v3.modeling_deepseek_v3 import DeepseekV3Attention  # noqa: E402

SEEDS = [0, 1]
seeds = st.integers(0, 2**32 - 1)
DTYPES = {4: torch.float32, 2: torch.bfloat16, 1: torch.float8_e4m3fn}


def cases_of(qid, seed):
    return make_cases(get(qid), random.Random(seed))


def static_cache_bytes(config, seq_len: int, batch_size: int, num_key_value_heads: int, head_dim: int,
                       dtype=torch.bfloat16) -> int:
    """Bytes transformers' StaticCache allocates for `seq_len` tokens, filled with meta tensors."""
    cache = StaticCache(config=config, max_cache_len=seq_len)
    k = torch.empty(batch_size, num_key_value_heads, seq_len, head_dim, device="meta", dtype=dtype)  # (B, kv, T, hd)
    for i in range(config.num_hidden_layers):
        cache.update(k, k, i)
    return sum(t.nbytes for layer in cache.layers for t in (layer.keys, layer.values))


def mistral(num_hidden_layers: int, num_key_value_heads: int, head_dim: int, sliding_window) -> MistralConfig:
    return MistralConfig(vocab_size=11, hidden_size=4 * num_key_value_heads, intermediate_size=8, num_hidden_layers=num_hidden_layers,
                         num_attention_heads=num_key_value_heads, num_key_value_heads=num_key_value_heads,
                         head_dim=head_dim, sliding_window=sliding_window)


def test_chapter_has_eight_randomised_questions_one_in_torch():
    questions = questions_for_chapter("15")
    assert len(questions) >= 6
    assert any(q.probe is not None for q in questions)


# --------------------------------------------------------------------------- 1. GQA + sliding window


def _check_kv_cache_bytes(seed):
    q = get("15.kv_cache_bytes")
    for (L, kv, hd, T), kw in cases_of(q.id, seed):
        B, n = kw.get("batch_size", 1), kw.get("bytes_per_element", 2)
        window = kw.get("sliding_window")
        cfg = mistral(L, kv, hd, window)
        # int4 has no torch dtype: two 4-bit codes per byte are half of the int8 cache
        measured = static_cache_bytes(cfg, T, B, kv, hd, DTYPES[max(n, 1)]) * (n if n < 1 else 1)
        assert q.reference(L, kv, hd, T, **kw) == measured


@pytest.mark.parametrize("seed", SEEDS)
def test_kv_cache_bytes_reference_equals_a_mistral_static_cache(seed):
    _check_kv_cache_bytes(seed)


@settings(max_examples=5, deadline=None)
@given(seed=seeds)
def test_kv_cache_bytes_reference_on_fresh_grader_seeds(seed):
    _check_kv_cache_bytes(seed)


# --------------------------------------------------------------------------- 2. local / global


@settings(max_examples=4, deadline=None)
@given(seed=seeds)
def test_local_global_reference_equals_a_gemma3_static_cache(seed):
    q = get("15.local_global_kv_bytes")
    for (L, kv, hd, T, window, pattern), _ in cases_of(q.id, seed):
        cfg = Gemma3TextConfig(vocab_size=11, hidden_size=4 * kv, intermediate_size=8, num_hidden_layers=L,
                               num_attention_heads=kv, num_key_value_heads=kv, head_dim=hd,
                               sliding_window=window, sliding_window_pattern=pattern)
        assert q.reference(L, kv, hd, T, window, pattern) == static_cache_bytes(cfg, T, 1, kv, hd)


def test_local_global_cases_include_gemma2_and_gemma3_layouts():
    cases = cases_of("15.local_global_kv_bytes", 0)
    assert {args[-1] for args, _ in cases[:2]} == {2, 6}  # Gemma-2 (1 local : 1 global), Gemma-3 (5 : 1)


# --------------------------------------------------------------------------- 3. MLA saving


@pytest.mark.parametrize("seed", SEEDS)
def test_mla_saving_reference_equals_deepseek_v3_attention_shapes(seed):
    q = get("15.mla_saving")
    for (h, nope, rope, v, rank), _ in cases_of(q.id, seed):
        cfg = transformers.DeepseekV3Config(hidden_size=4 * h, num_attention_heads=h, num_key_value_heads=h,
                                            qk_nope_head_dim=nope, qk_rope_head_dim=rope, v_head_dim=v,
                                            kv_lora_rank=rank, q_lora_rank=None)
        with torch.device("meta"):
            attn = DeepseekV3Attention(cfg, layer_idx=0)
        cached = attn.kv_a_proj_with_mqa.out_features            # c_KV and the shared k^R of each token
        per_head = attn.kv_b_proj.out_features + h * rope         # keys (nope from kv_b_proj + rope) and values
        assert attn.kv_b_proj.out_features == h * (nope + v)
        assert q.reference(h, nope, rope, v, rank) == pytest.approx(per_head / cached, rel=1e-12)


# --------------------------------------------------------------------------- 4. decode FLOPs


def flop_counter_decode(matmul_params, L, h, hd, past_len, batch_size=1) -> int:
    """FlopCounterMode on the matrix products of one decode step, on meta: the weights as one
    (P, 1) matrix per token, then per layer q·Kᵀ and scores·V over past_len + 1 keys."""
    with torch.device("meta"), FlopCounterMode(display=False) as counter:
        x = torch.empty(batch_size, 1, matmul_params)                   # (B, 1, P): one multiply-add per weight
        x @ torch.empty(matmul_params, 1)                               # (B, 1, 1)
        for _ in range(L):
            q = torch.empty(batch_size, h, 1, hd)                       # (B, h, 1, hd)
            k = torch.empty(batch_size, h, past_len + 1, hd)            # (B, h, T + 1, hd)
            scores = q @ k.transpose(-2, -1)                            # (B, h, 1, T + 1)
            scores @ k                                                  # (B, h, 1, hd)
    return counter.get_total_flops()


@pytest.mark.parametrize("seed", SEEDS)
def test_decode_flops_reference_equals_flop_counter_on_the_step_s_matmuls(seed):
    q = get("15.decode_flops")
    for i, ((P, L, h, hd, T), kw) in enumerate(cases_of(q.id, seed)):
        L = min(L, 4) if i % 2 else L  # keep the counted loop short; the per-layer term is checked either way
        assert q.reference(P, L, h, hd, T, **kw) == flop_counter_decode(P, L, h, hd, T, **kw)


# --------------------------------------------------------------------------- 5. tokens per second


@settings(max_examples=20)
@given(seed=seeds)
def test_tokens_per_second_reference_is_batch_over_the_step_time(seed):
    q = get("15.tokens_per_second")
    for (W, kv, B, bw), _ in cases_of(q.id, seed):
        step_seconds = (W + B * kv) / bw  # all weights once + each sequence's cache once
        assert q.reference(W, kv, B, bw) == pytest.approx(B / step_seconds, rel=1e-12)
        if B > 1:  # batching amortises the weights: more tokens/s, never B times more when KV > 0
            assert q.reference(W, kv, B, bw) > q.reference(W, kv, 1, bw)


# --------------------------------------------------------------------------- 6. max batch


@pytest.mark.parametrize("seed", SEEDS)
def test_max_batch_is_the_largest_that_fits_a_static_cache(seed):
    q = get("15.max_batch")
    answers, exact, windows = [], 0, 0
    for (budget, weights, L, kv, hd, T), kw in cases_of(q.id, seed):
        b = q.reference(budget, weights, L, kv, hd, T, **kw)
        cfg = mistral(L, kv, hd, kw.get("sliding_window"))  # no window: a plain (Llama-like) cache on every layer
        if b:
            assert weights + static_cache_bytes(cfg, T, b, kv, hd) <= budget
        assert weights + static_cache_bytes(cfg, T, b + 1, kv, hd) > budget
        exact += b > 0 and weights + static_cache_bytes(cfg, T, b, kv, hd) == budget
        answers.append(b)
        windows += "sliding_window" in kw
    assert 0 in answers and exact >= 2 and windows >= 4  # "not even one", "exactly on the budget", windows


# --------------------------------------------------------------------------- 7. speculative decoding


def expected_tokens_by_outcomes(alpha: float, gamma: int) -> float:
    """Σ over the outcomes: n draft tokens accepted then one rejected (n < γ), or all γ accepted; +1 token."""
    rejected_at = sum((n + 1) * alpha ** n * (1 - alpha) for n in range(gamma))
    return rejected_at + (gamma + 1) * alpha ** gamma


@settings(max_examples=20)
@given(seed=seeds)
def test_speculative_reference_equals_the_sum_over_outcomes(seed):
    q = get("15.speculative_tokens")
    for (alpha, gamma), _ in cases_of(q.id, seed):
        assert q.reference(alpha, gamma) == pytest.approx(expected_tokens_by_outcomes(alpha, gamma), rel=1e-12)


def test_speculative_reference_equals_simulated_sampling():
    q = get("15.speculative_tokens")
    for (alpha, gamma), _ in cases_of(q.id, 0)[3:6]:
        # target p = [1, 0], draft q = [α, 1 − α]: the draft's token 0 is always kept, token 1 never (α = Σ min(p, q))
        mean, rate = inference.simulate_speculative_sampling([1.0, 0.0], [alpha, 1 - alpha], gamma, 4000, seed=1)
        assert rate == pytest.approx(alpha, abs=0.03)
        assert mean == pytest.approx(q.reference(alpha, gamma), rel=0.05)


# --------------------------------------------------------------------------- 8. MLA's cached vector in torch


@pytest.mark.parametrize("seed", SEEDS)
def test_mla_kv_reference_equals_deepseek_v3_attention_s_compressed_kv(seed):
    q = get("15.mla_kv")
    for (hidden, rank, rope), _ in cases_of(q.id, seed)[:4]:
        cfg = transformers.DeepseekV3Config(hidden_size=hidden, num_attention_heads=2, num_key_value_heads=2,
                                            kv_lora_rank=rank, qk_rope_head_dim=rope, qk_nope_head_dim=4,
                                            v_head_dim=4, q_lora_rank=None, rms_norm_eps=1e-6)
        torch.manual_seed(seed)
        hf = DeepseekV3Attention(cfg, layer_idx=0)
        ours = q.reference(hidden, rank, rope)
        hf_params = {n: p.shape for n, p in hf.named_parameters() if n.startswith("kv_a_")}
        assert {n: p.shape for n, p in ours.named_parameters()} == hf_params
        ours.load_state_dict({n: p for n, p in hf.state_dict().items() if n.startswith("kv_a_")})
        x = torch.randn(2, 3, hidden)                                                 # (B, T, hidden)
        c_kv, k_rope = hf.kv_a_proj_with_mqa(x).split([rank, rope], dim=-1)          # (B, T, r), (B, T, d_R)
        expected = torch.cat([hf.kv_a_layernorm(c_kv), k_rope], dim=-1)              # (B, T, r + d_R)
        torch.testing.assert_close(ours(x), expected)


# --------------------------------------------------------------------------- right answers pass, mistakes get hints


def kv_right(L, kv, hd, T, batch_size=1, bytes_per_element=2, sliding_window=None):
    kept = T if sliding_window is None else min(T, sliding_window)
    return 2 * L * kv * hd * kept * batch_size * bytes_per_element


def local_global_right(L, kv, hd, T, window, pattern):
    n_global = L // pattern
    return 2 * kv * hd * 2 * (n_global * T + (L - n_global) * min(T, window))


def mla_kv_right(hidden_size, kv_lora_rank, qk_rope_head_dim):
    class Right(nn.Module):
        def __init__(self):
            super().__init__()
            self.kv_a_proj_with_mqa = nn.Linear(hidden_size, kv_lora_rank + qk_rope_head_dim, bias=False)
            self.kv_a_layernorm = nn.RMSNorm(kv_lora_rank, eps=1e-6)

        def forward(self, x):
            c, k = self.kv_a_proj_with_mqa(x).split([kv_lora_rank, qk_rope_head_dim], dim=-1)
            return torch.cat([self.kv_a_layernorm(c), k], dim=-1)
    return Right()


def mla_kv_wrong(mistake):
    """A plausible wrong build of MLA's cached vector (`mistake` names what it gets wrong)."""
    def build(hidden_size, kv_lora_rank, qk_rope_head_dim):
        r, d_r = kv_lora_rank, qk_rope_head_dim

        class Wrong(nn.Module):
            def __init__(self):
                super().__init__()
                self.kv_a_proj_with_mqa = nn.Linear(hidden_size, r + d_r, bias=mistake == "bias")
                self.kv_a_layernorm = nn.RMSNorm(r + d_r if mistake == "norm_on_everything" else r, eps=1e-6)

            def forward(self, x):
                y = self.kv_a_proj_with_mqa(x)                                 # (B, T, r + d_R)
                if mistake == "norm_on_everything":
                    return self.kv_a_layernorm(y)
                if mistake == "rope_first":                                   # k^R taken from the front
                    k, c = y.split([d_r, r], dim=-1)
                    return torch.cat([k, self.kv_a_layernorm(c)], dim=-1)
                c, k = y.split([r, d_r], dim=-1)                               # (B, T, r), (B, T, d_R)
                return torch.cat([c if mistake == "no_norm" else self.kv_a_layernorm(c), k], dim=-1)
        return Wrong()
    return build


RIGHT = {
    "15.kv_cache_bytes": kv_right,
    "15.local_global_kv_bytes": local_global_right,
    "15.mla_saving": lambda h, nope, rope, v, rank: h * (nope + rope + v) / (rank + rope),
    "15.decode_flops": lambda P, L, h, hd, T, batch_size=1: batch_size * (2 * P + 4 * L * h * hd * (T + 1)),
    "15.tokens_per_second": lambda W, kv, B, bw: B * bw / (W + B * kv),
    "15.max_batch": lambda M, W, L, kv, hd, T, sliding_window=None: max(
        0, (M - W) // (4 * L * kv * hd * min(T, sliding_window or T))),
    "15.speculative_tokens": lambda a, g: float(g + 1) if a == 1 else (1 - a ** (g + 1)) / (1 - a),
    "15.mla_kv": mla_kv_right,
}


@pytest.mark.parametrize("qid", sorted(RIGHT))
def test_right_answers_pass(qid, capsys):
    assert check(qid, RIGHT[qid])
    assert capsys.readouterr().out.startswith(f"✅ {qid}")


WRONG = {
    "kv_forgets_values": ("15.kv_cache_bytes", lambda *a, **kw: kv_right(*a, **kw) // 2),
    "kv_ignores_window": ("15.kv_cache_bytes", lambda L, kv, hd, T, batch_size=1, bytes_per_element=2,
                          sliding_window=None: kv_right(L, kv, hd, T, batch_size, bytes_per_element)),
    "global_at_layer_0": ("15.local_global_kv_bytes", lambda L, kv, hd, T, w, p: 4 * kv * hd * sum(
        T if i % p == 0 else min(T, w) for i in range(L))),
    "all_layers_local": ("15.local_global_kv_bytes", lambda L, kv, hd, T, w, p: 4 * kv * hd * L * min(T, w)),
    "mla_forgets_rope_key": ("15.mla_saving", lambda h, nope, rope, v, rank: h * (nope + rope + v) / rank),
    "decode_without_self": ("15.decode_flops", lambda P, L, h, hd, T, batch_size=1:
                            batch_size * (2 * P + 4 * L * h * hd * T)),
    "decode_ignores_batch": ("15.decode_flops", lambda P, L, h, hd, T, batch_size=1: 2 * P + 4 * L * h * hd * (T + 1)),
    "tps_one_cache_for_all": ("15.tokens_per_second", lambda W, kv, B, bw: B * bw / (W + kv)),
    "tps_weights_per_sequence": ("15.tokens_per_second", lambda W, kv, B, bw: bw / (W + kv)),
    "batch_forgets_weights": ("15.max_batch", lambda M, W, L, kv, hd, T, sliding_window=None:
                              M // (4 * L * kv * hd * min(T, sliding_window or T))),
    "batch_negative": ("15.max_batch", lambda M, W, L, kv, hd, T, sliding_window=None:
                       (M - W) // (4 * L * kv * hd * min(T, sliding_window or T))),
    "batch_ignores_window": ("15.max_batch", lambda M, W, L, kv, hd, T, sliding_window=None:
                             max(0, (M - W) // (4 * L * kv * hd * T))),
    "spec_forgets_bonus": ("15.speculative_tokens", lambda a, g: sum(a ** k for k in range(1, g + 1))),
    "spec_closed_form_at_1": ("15.speculative_tokens", lambda a, g: (1 - a ** (g + 1)) / (1 - a)),
}


@pytest.mark.parametrize("name", sorted(WRONG))
def test_typical_wrong_answers_get_a_hint_not_a_traceback(name, capsys):
    qid, wrong = WRONG[name]
    result = check(qid, wrong)
    out = capsys.readouterr().out
    assert not result and out.startswith(f"❌ {qid}") and "Hint" in out and "Traceback" not in out, out


@pytest.mark.parametrize("mistake,words", [("norm_on_everything", "kv_a_layernorm"),
                                           ("bias", "kv_a_proj_with_mqa.bias should not be there"),
                                           ("rope_first", "forward computes something else"),
                                           ("no_norm", "forward computes something else")])
def test_wrong_mla_modules_get_friendly_feedback(mistake, words, capsys):
    assert_friendly_failure(capsys, "15.mla_kv", mla_kv_wrong(mistake), "wrong", words)
