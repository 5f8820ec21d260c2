"""Chapter 15 (Inference) exercise questions.

Reference answers come from ``helpers.cost.kv_cache_bytes`` and ``helpers.inference``, which
tests/test_inference.py checks against Hugging Face's real caches (DynamicCache, StaticCache,
QuantizedCache, DeepSeek-V3's latent cache), FlopCounterMode and a simulation of speculative sampling;
tests/test_checks_ch15.py re-checks every reference independently.
"""

from __future__ import annotations

import random

from helpers import cost, formulas, inference
from helpers.checks._gen import budget_for_size, close_within, largest_fitting, log_uniform
from helpers.checks.registry import Question, register


def _heads(rng: random.Random) -> tuple[int, int]:
    """(num_attention_heads, num_key_value_heads): MHA, GQA or MQA."""
    heads = rng.choice([1, 2, 4, 8, 12, 16, 32, 64])
    return heads, rng.choice([g for g in range(1, heads + 1) if heads % g == 0])


# --------------------------------------------------------------------------- 1. GQA + sliding window bytes


def kv_cache_bytes_reference(num_hidden_layers: int, num_key_value_heads: int, head_dim: int, seq_len: int,
                             batch_size: int = 1, bytes_per_element: float = 2,
                             sliding_window: int | None = None) -> float:
    """Bytes of a GQA cache whose every layer keeps at most `sliding_window` tokens (None: all)."""
    return cost.kv_cache_bytes(num_hidden_layers, num_key_value_heads, head_dim, seq_len, batch_size,
                               bytes_per_element, num_key_value_heads=num_key_value_heads,
                               sliding_window=sliding_window)


def _kv_cases(rng: random.Random) -> list:
    cases: list = [((32, 8, 128, 8192), {}), ((32, 8, 128, 32768), {"sliding_window": 4096})]
    for _ in range(14):
        _, kv = _heads(rng)
        kwargs: dict = {}
        if rng.random() < 0.5:
            kwargs["batch_size"] = rng.choice([1, 2, 8, 32])
        if rng.random() < 0.4:
            kwargs["bytes_per_element"] = rng.choice([4, 2, 1, 0.5])
        if rng.random() < 0.5:
            kwargs["sliding_window"] = log_uniform(rng, 16, 8192)
        cases.append(((rng.randint(1, 80), kv, rng.choice([64, 128, 256]), log_uniform(rng, 1, 131072)), kwargs))
    return cases


register(Question(
    id="15.kv_cache_bytes",
    title="Bytes of a KV cache with grouped-query attention and an optional sliding window on every layer: "
          "kv_cache_bytes(num_hidden_layers, num_key_value_heads, head_dim, seq_len, batch_size=1, "
          "bytes_per_element=2, sliding_window=None)",
    cases=_kv_cases,
    reference=kv_cache_bytes_reference,
    hint="keys AND values (×2) of num_key_value_heads·head_dim elements per token, per layer, per sequence; a "
         "layer with a sliding window keeps only min(seq_len, sliding_window) tokens.",
    compare=close_within(1e-12),
))


# --------------------------------------------------------------------------- 2. Gemma-style local/global


def local_global_kv_bytes_reference(num_hidden_layers: int, num_key_value_heads: int, head_dim: int,
                                    seq_len: int, sliding_window: int, sliding_window_pattern: int) -> float:
    """bf16 bytes (batch 1) when layer i is global iff (i + 1) % pattern == 0 and local otherwise."""
    return cost.kv_cache_bytes(num_hidden_layers, num_key_value_heads, head_dim, seq_len, 1, 2,
                               num_key_value_heads=num_key_value_heads, sliding_window=sliding_window,
                               sliding_window_pattern=sliding_window_pattern)


def _local_global_cases(rng: random.Random) -> list:
    cases: list = [((42, 8, 256, 131072, 4096, 2), {}), ((62, 16, 128, 131072, 1024, 6), {})]
    for _ in range(12):
        _, kv = _heads(rng)
        layers, pattern = rng.randint(1, 64), rng.choice([2, 3, 4, 6, 8])
        cases.append(((layers, kv, rng.choice([64, 128, 256]), log_uniform(rng, 1, 131072),
                       log_uniform(rng, 16, 8192), pattern), {}))
    return cases


register(Question(
    id="15.local_global_kv_bytes",
    title="bf16 KV bytes (batch 1) of alternating local/global layers, Hugging Face's sliding_window_pattern: "
          "layer i (from 0) is global when (i + 1) % sliding_window_pattern == 0, else it keeps only the last "
          "sliding_window tokens: local_global_kv_bytes(num_hidden_layers, num_key_value_heads, head_dim, "
          "seq_len, sliding_window, sliding_window_pattern)",
    cases=_local_global_cases,
    reference=local_global_kv_bytes_reference,
    hint="count the global layers (num_hidden_layers // pattern) and the local ones (the rest); a global layer "
         "caches seq_len tokens, a local one min(seq_len, sliding_window); each token costs 2·kv·head_dim·2 bytes.",
    compare=close_within(1e-12),
))


# --------------------------------------------------------------------------- 3. MLA vs per-head cache


def mla_saving_reference(num_attention_heads: int, qk_nope_head_dim: int, qk_rope_head_dim: int, v_head_dim: int,
                         kv_lora_rank: int) -> float:
    """How many times smaller MLA's cache is than per-head keys and values (any layer count, T, B)."""
    full = num_attention_heads * (qk_nope_head_dim + qk_rope_head_dim + v_head_dim)
    return full / cost.kv_cache_bytes(1, 1, 1, 1, 1, 1, kv_lora_rank=kv_lora_rank, qk_rope_head_dim=qk_rope_head_dim)


def _mla_cases(rng: random.Random) -> list:
    cases: list = [((128, 128, 64, 128, 512), {}), ((16, 128, 64, 128, 512), {})]
    for _ in range(12):
        cases.append(((rng.choice([8, 16, 32, 64, 128]), rng.choice([32, 64, 128]), rng.choice([16, 32, 64]),
                       rng.choice([32, 64, 128]), rng.choice([128, 256, 512, 1024])), {}))
    return cases


register(Question(
    id="15.mla_saving",
    title="MLA's saving: per-head keys (qk_nope_head_dim + qk_rope_head_dim wide) and values (v_head_dim) of "
          "every head, divided by MLA's latent cache: mla_saving(num_attention_heads, qk_nope_head_dim, "
          "qk_rope_head_dim, v_head_dim, kv_lora_rank)",
    cases=_mla_cases,
    reference=mla_saving_reference,
    hint="MLA caches kv_lora_rank + qk_rope_head_dim elements per token per layer (the latent and ONE shared RoPE "
         "key, arXiv:2405.04434 §2.1); without it every head caches its key and its value.",
    compare=close_within(1e-12),
))


# --------------------------------------------------------------------------- 4. decode FLOPs


def _decode_cases(rng: random.Random) -> list:
    cases: list = [((7_000_000_000, 32, 32, 128, 8192), {})]
    for _ in range(12):
        kwargs = {"batch_size": rng.choice([2, 4, 16, 64])} if rng.random() < 0.5 else {}
        cases.append(((log_uniform(rng, 10**5, 10**11), rng.randint(1, 80), rng.choice([4, 8, 16, 32, 64]),
                       rng.choice([64, 128]), log_uniform(rng, 1, 131072)), kwargs))
    return cases


register(Question(
    id="15.decode_flops",
    title="FLOPs of ONE decode step (FlopCounterMode's count): each of batch_size new tokens goes through "
          "matmul_params weights and attends to past_len cached tokens plus itself: decode_flops(matmul_params, "
          "num_hidden_layers, num_attention_heads, head_dim, past_len, batch_size=1)",
    cases=_decode_cases,
    reference=inference.decode_flops,
    hint="2 FLOPs per weight per token; per layer and head, q·Kᵀ and scores·V each cost 2·head_dim·(past_len + 1) "
         "FLOPs. Multiply everything by batch_size.",
))


# --------------------------------------------------------------------------- 5. tokens per second


def tokens_per_second_reference(weight_bytes: float, kv_bytes_per_sequence: float, batch_size: int,
                                bandwidth: float) -> float:
    return inference.decode_tokens_per_second(weight_bytes, kv_bytes_per_sequence, batch_size, bandwidth)


def _tps_cases(rng: random.Random) -> list:
    cases: list = [((16e9, 1e9, 1, 3.35e12), {})]
    for _ in range(12):
        cases.append(((float(log_uniform(rng, 10**6, 10**11)), float(log_uniform(rng, 1, 10**10)),
                       rng.choice([1, 2, 4, 8, 16, 64, 256]), rng.choice([1.0e12, 2.039e12, 3.35e12, 5e10])), {}))
    return cases


register(Question(
    id="15.tokens_per_second",
    title="Memory-bound decoding speed: each step reads all weights once and each sequence's KV cache once, and "
          "emits one token per sequence: tokens_per_second(weight_bytes, kv_bytes_per_sequence, batch_size, "
          "bandwidth)",
    cases=_tps_cases,
    reference=tokens_per_second_reference,
    hint="seconds per step = (weight_bytes + batch_size·kv_bytes_per_sequence) / bandwidth; tokens per step = "
         "batch_size.",
    compare=close_within(1e-9),
))


# --------------------------------------------------------------------------- 6. largest batch under a budget


def max_batch_reference(memory_bytes: int, weight_bytes: int, num_hidden_layers: int, num_key_value_heads: int,
                        head_dim: int, seq_len: int, sliding_window: int | None = None) -> int:
    """Largest batch whose bf16 KV caches (every layer keeping at most `sliding_window` tokens) fit next to
    the weights (0 if none)."""
    def total(b: int) -> int:
        return weight_bytes + int(cost.kv_cache_bytes(num_hidden_layers, num_key_value_heads, head_dim, seq_len, b,
                                                      2, num_key_value_heads=num_key_value_heads,
                                                      sliding_window=sliding_window))
    return largest_fitting(total, memory_bytes)


def _batch_cases(rng: random.Random) -> list:
    llama3_8b = 2 * formulas.decoder_lm_params(128256, 4096, 14336, 32, 32, 8)["total"]  # bf16 weight bytes
    mistral_7b = 2 * formulas.decoder_lm_params(32000, 4096, 14336, 32, 32, 8)["total"]  # v0.1: window 4096
    cases: list = [((80 * 10**9, llama3_8b, 32, 8, 128, 8192), {}),
                   ((80 * 10**9, mistral_7b, 32, 8, 128, 32768), {"sliding_window": 4096})]
    for i in range(12):
        _, kv = _heads(rng)
        L, hd, T = rng.randint(1, 80), rng.choice([64, 128, 256]), log_uniform(rng, 128, 131072)
        weights = log_uniform(rng, 10**6, 10**11)
        kwargs = {"sliding_window": log_uniform(rng, 64, 16384)} if i % 2 else {}

        def total(b: int, L=L, kv=kv, hd=hd, T=T, weights=weights, kwargs=kwargs) -> int:
            return weights + int(cost.kv_cache_bytes(L, kv, hd, T, b, 2, num_key_value_heads=kv, **kwargs))
        budget = budget_for_size(rng, total, rng.randint(1, 128), ("exact", "last", "between")[i % 3])
        if i == 10:
            budget = weights - rng.randint(1, weights // 2)  # the weights alone do not fit: still 0, not negative
        if i == 11:
            budget = weights + 1  # not even one sequence fits
        cases.append(((budget, weights, L, kv, hd, T), kwargs))
    return cases


register(Question(
    id="15.max_batch",
    title="Largest batch whose bf16 KV caches fit in memory next to the weights, with an optional sliding window "
          "on every layer: max_batch(memory_bytes, weight_bytes, num_hidden_layers, num_key_value_heads, head_dim, "
          "seq_len, sliding_window=None); 0 if not one sequence fits (or not even the weights)",
    cases=_batch_cases,
    reference=max_batch_reference,
    hint="one sequence's cache is 2·num_hidden_layers·num_key_value_heads·head_dim·kept·2 bytes with kept = seq_len, "
         "or min(seq_len, sliding_window) with a window; divide the memory left after the weights by it and round "
         "down (never below 0).",
))


# --------------------------------------------------------------------------- 7. speculative decoding


register(Question(
    id="15.speculative_tokens",
    title="Expected tokens per target-model call in speculative decoding with acceptance rate alpha and gamma "
          "draft tokens: speculative_tokens(alpha, gamma)",
    cases=lambda rng: [((a, g), {}) for a, g in [(0.8, 4), (1.0, 3), (0.0, 5)]]
    + [((round(rng.uniform(0.05, 0.99), 3), rng.randint(1, 10)), {}) for _ in range(10)],
    reference=inference.speculative_expected_tokens,
    hint="the draft's tokens are kept while they are accepted (each with probability alpha, at most gamma), "
         "then the target adds one token: E = 1 + alpha + alpha² + … + alpha^gamma.",
    compare=close_within(1e-9),
))


# --------------------------------------------------------------------------- 8. MLA's cache vector in torch


def mla_kv_reference(hidden_size: int, kv_lora_rank: int, qk_rope_head_dim: int):
    """The part of DeepSeek-V3's attention that produces the cached vector of each token.

    ``kv_a_proj_with_mqa: Linear(hidden, kv_lora_rank + qk_rope_head_dim, bias=False)``, split into the latent
    c_KV (kv_lora_rank) and the shared RoPE key k^R (qk_rope_head_dim); the latent goes through
    ``kv_a_layernorm = nn.RMSNorm(kv_lora_rank, eps=1e-6)``. forward: (B, T, hidden) →
    (B, T, kv_lora_rank + qk_rope_head_dim) = cat(norm(c_KV), k^R) — what the cache keeps per token and layer
    (transformers' DeepseekV3Attention; RoPE on k^R is left out here). arXiv:2405.04434 §2.1.2–2.1.3.
    """
    import torch
    from torch import nn

    class MLAKV(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.kv_a_proj_with_mqa = nn.Linear(hidden_size, kv_lora_rank + qk_rope_head_dim, bias=False)
            self.kv_a_layernorm = nn.RMSNorm(kv_lora_rank, eps=1e-6)

        def forward(self, x):
            c_kv, k_rope = self.kv_a_proj_with_mqa(x).split([kv_lora_rank, qk_rope_head_dim], dim=-1)  # (B, T, r), (B, T, d_R)
            return torch.cat([self.kv_a_layernorm(c_kv), k_rope], dim=-1)                            # (B, T, r + d_R)

    return MLAKV()


def _mla_kv_cases(rng: random.Random) -> list:
    cases = []
    for _ in range(8):
        rank, rope = rng.choice([4, 8, 16, 32]), rng.choice([2, 4, 8])
        hidden = rng.choice([h for h in (12, 24, 48, 96) if h not in (rank, rope, rank + rope)])
        cases.append(((hidden, rank, rope), {}))
    return cases


def _mla_kv_probe(hidden_size: int, kv_lora_rank: int, qk_rope_head_dim: int) -> dict:
    """A (2, 3, hidden) input; 8 output values on fixed weights (a norm on the wrong part changes them)."""
    return {"input": [2, 3, hidden_size], "values": 8}


register(Question(
    id="15.mla_kv",
    title="Build in torch the vector DeepSeek's MLA caches per token: return an nn.Module with "
          "kv_a_proj_with_mqa and kv_a_layernorm whose forward maps (B, T, hidden_size) to "
          "(B, T, kv_lora_rank + qk_rope_head_dim)",
    cases=_mla_kv_cases,
    reference=mla_kv_reference,
    probe=_mla_kv_probe,
    hint="kv_a_proj_with_mqa = nn.Linear(hidden_size, kv_lora_rank + qk_rope_head_dim, bias=False); split its "
         "output into the first kv_lora_rank values (normalised by kv_a_layernorm = nn.RMSNorm(kv_lora_rank, "
         "eps=1e-6)) and the last qk_rope_head_dim (left as they are), then torch.cat them back along the last dim.",
))
