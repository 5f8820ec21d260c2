"""Chapter 12 (the modern decoder LLM) exercise questions.

Reference answers are computed by torch on the course's models built on the ``meta`` device
(`helpers.models.llama.Llama` / `LlamaAttention`, which tests/test_models_llm.py proves equal to
Hugging Face's ``LlamaForCausalLM`` / ``MixtralForCausalLM``), by torch's own
``F.scaled_dot_product_attention(..., enable_gqa=True)``, or by ``helpers.cost`` /
`helpers.models.llama.llama_intermediate_size` (arithmetic checked against Hugging Face's cache
tensors and the published configs). Budget cases come from `helpers.checks._gen`.
"""

from __future__ import annotations

import random
from typing import Optional

from helpers import cost
from helpers.checks._gen import BUDGET_PLACES, budget_for_size, close_within, largest_fitting, log_uniform
from helpers.checks.registry import Question, register


def _heads(rng: random.Random) -> tuple[int, int]:
    """(num_attention_heads, num_key_value_heads) with kv heads dividing the heads: MHA, GQA or MQA."""
    heads = rng.choice([1, 2, 4, 6, 8, 12, 16, 24, 32, 64])
    return heads, rng.choice([g for g in range(1, heads + 1) if heads % g == 0])


def _llama_args(rng: random.Random, max_head_dim: int = 128) -> dict:
    heads, kv = _heads(rng)
    head_dim = rng.choice([d for d in (8, 16, 32, 64, 128) if d <= max_head_dim])
    return dict(hidden_size=heads * head_dim, num_attention_heads=heads, num_key_value_heads=kv)


# --------------------------------------------------------------------------- 1. GQA attention params

def gqa_attention_params_reference(hidden_size: int, num_attention_heads: int, num_key_value_heads: int,
                                   head_dim: Optional[int] = None) -> int:
    """count_params of the course's LlamaAttention (q/k/v/o, no biases), built on meta."""
    import torch

    from helpers.counting import count_params
    from helpers.models.llama import LlamaAttention, LlamaConfig

    with torch.device("meta"):
        attn = LlamaAttention(LlamaConfig(dim=hidden_size, n_heads=num_attention_heads,
                                          n_kv_heads=num_key_value_heads, head_dim=head_dim))
    return count_params(attn)


def _attention_cases(rng: random.Random) -> list:
    cases: list = [((4096, 32, 8), {}), ((4096, 32, 32), {}), ((2048, 32, 8), {"head_dim": 64})]
    for _ in range(15):
        a = _llama_args(rng)
        kwargs = {"head_dim": rng.choice([32, 64, 128, 256])} if rng.random() < 0.3 else {}
        cases.append(((a["hidden_size"], a["num_attention_heads"], a["num_key_value_heads"]), kwargs))
    return cases


register(Question(
    id="12.gqa_attention_params",
    title="Parameters of one Llama attention block with grouped-query attention: "
          "gqa_attention_params(hidden_size, num_attention_heads, num_key_value_heads, head_dim=None)",
    cases=_attention_cases,
    reference=gqa_attention_params_reference,
    timeout=30.0,  # the first module built on meta loads torch's decompositions (a few s, once)
    hint="head_dim defaults to hidden_size // num_attention_heads. q_proj: (heads·head_dim, hidden), "
         "k_proj and v_proj: (kv_heads·head_dim, hidden) each, o_proj: (hidden, heads·head_dim); no biases.",
))


# --------------------------------------------------------------------------- 2. KV cache budget

def kv_cache_max_batch_reference(budget_bytes: int, num_hidden_layers: int, num_key_value_heads: int,
                                 head_dim: int, seq_len: int, bytes_per_element: int = 2) -> int:
    """Largest batch whose KV cache (helpers.cost.kv_cache_bytes with n_kv_head) fits the budget."""
    def kv(batch: int) -> float:
        return cost.kv_cache_bytes(num_hidden_layers, num_key_value_heads, head_dim, seq_len, batch,
                                   bytes_per_element, n_kv_head=num_key_value_heads)

    return largest_fitting(kv, budget_bytes)


def _kv_cases(rng: random.Random) -> list:
    cases: list = []
    for i in range(18):
        L, kv = rng.choice([16, 22, 28, 32, 40, 80]), rng.choice([1, 2, 4, 8, 16, 32])
        hd, T, bpe = rng.choice([64, 128]), log_uniform(rng, 128, 131072), rng.choice([1, 2, 4])
        per_sequence = lambda b: int(cost.kv_cache_bytes(L, kv, hd, T, b, bpe, n_kv_head=kv))  # noqa: E731
        if i == 0:  # not even one sequence fits
            budget = per_sequence(1) - 1
        else:
            budget = budget_for_size(rng, per_sequence, log_uniform(rng, 1, 256), BUDGET_PLACES[i % 3])
        cases.append(((budget, L, kv, hd, T), {"bytes_per_element": bpe}))
    return cases


register(Question(
    id="12.kv_cache_max_batch",
    title="Largest batch whose KV cache fits a memory budget: kv_cache_max_batch(budget_bytes, "
          "num_hidden_layers, num_key_value_heads, head_dim, seq_len, bytes_per_element=2)",
    cases=_kv_cases,
    reference=kv_cache_max_batch_reference,
    hint="one sequence costs 2 · layers · kv_heads · head_dim · seq_len · bytes (keys AND values, only the "
         "KEY/VALUE heads count); the answer is the budget divided by that, rounded down (0 if < 1).",
))


# --------------------------------------------------------------------------- 3. SwiGLU size

def swiglu_intermediate_size_reference(dim: int, multiple_of: int = 256,
                                       ffn_dim_multiplier: Optional[float] = None) -> int:
    """Meta's FeedForward rule (helpers.models.llama.llama_intermediate_size)."""
    from helpers.models.llama import llama_intermediate_size

    return llama_intermediate_size(dim, multiple_of, ffn_dim_multiplier)


def _swiglu_cases(rng: random.Random) -> list:
    cases: list = [((4096,), {}), ((4096,), {"multiple_of": 1024, "ffn_dim_multiplier": 1.3}),
                   ((8192,), {"multiple_of": 4096, "ffn_dim_multiplier": 1.3})]
    for _ in range(15):
        kwargs: dict = {"multiple_of": rng.choice([32, 64, 128, 256, 512, 1024, 4096])}
        if rng.random() < 0.6:
            kwargs["ffn_dim_multiplier"] = rng.choice([1.0, 1.3, 1.5, 2.0, 0.75])
        cases.append(((rng.choice([64, 128]) * log_uniform(rng, 1, 128) + rng.choice([0, 0, 8, 24]),), kwargs))
    return cases


register(Question(
    id="12.swiglu_intermediate_size",
    title="Llama's SwiGLU hidden size: swiglu_intermediate_size(dim, multiple_of=256, ffn_dim_multiplier=None)",
    cases=_swiglu_cases,
    reference=swiglu_intermediate_size_reference,
    hint="hidden = int(2 · 4·dim / 3); if ffn_dim_multiplier is not None: hidden = int(ffn_dim_multiplier · hidden); "
         "then round UP to a multiple of multiple_of (4096 gives 11008 with the defaults).",
))


# --------------------------------------------------------------------------- 4. a whole Llama

def llama_params_reference(vocab_size: int, hidden_size: int, intermediate_size: int, num_hidden_layers: int,
                           num_attention_heads: int, num_key_value_heads: int,
                           tie_word_embeddings: bool = False) -> int:
    """count_params of the course's Llama (== Hugging Face's LlamaForCausalLM), built on meta."""
    import torch

    from helpers.counting import count_params
    from helpers.models.llama import Llama, LlamaConfig

    with torch.device("meta"):
        model = Llama(LlamaConfig(vocab_size=vocab_size, dim=hidden_size, n_layers=num_hidden_layers,
                                  n_heads=num_attention_heads, n_kv_heads=num_key_value_heads,
                                  intermediate_size=intermediate_size, tie_weights=tie_word_embeddings))
    return count_params(model)


def _llama_cases(rng: random.Random) -> list:
    cases: list = [((128256, 4096, 14336, 32, 32, 8), {}),  # Llama-3-8B
                   ((128256, 2048, 8192, 16, 32, 8), {"tie_word_embeddings": True})]  # Llama-3.2-1B
    for _ in range(8):
        a = _llama_args(rng, max_head_dim=64)
        args = (log_uniform(rng, 100, 200_000), a["hidden_size"], log_uniform(rng, 16, 4096), rng.randint(1, 4),
                a["num_attention_heads"], a["num_key_value_heads"])
        cases.append((args, {"tie_word_embeddings": rng.random() < 0.5}))
    return cases


register(Question(
    id="12.llama_params",
    title="Count a Llama: llama_params(vocab_size, hidden_size, intermediate_size, num_hidden_layers, "
          "num_attention_heads, num_key_value_heads, tie_word_embeddings=False)",
    cases=_llama_cases,
    reference=llama_params_reference,
    timeout=30.0,
    hint="embed_tokens V·d + per layer (attention 2·d·h·hd + 2·d·kv·hd, SwiGLU 3·d·F, two RMSNorms 2·d) + the "
         "final RMSNorm d + lm_head V·d unless tied; hd = d // h, no biases. Llama-3-8B: 8,030,261,248.",
))


# --------------------------------------------------------------------------- 5. MoE total and active

def moe_params_reference(vocab_size: int, hidden_size: int, intermediate_size: int, num_hidden_layers: int,
                         num_attention_heads: int, num_key_value_heads: int, num_local_experts: int,
                         num_experts_per_tok: int) -> list:
    """[total, active] of the course's Mixtral-style Llama built on meta: total = count_params;
    active = total − the (E − k) experts a token skips in every layer, counted from the modules."""
    import torch

    from helpers.counting import count_params
    from helpers.models.llama import Llama, LlamaConfig

    with torch.device("meta"):
        model = Llama(LlamaConfig(vocab_size=vocab_size, dim=hidden_size, n_layers=num_hidden_layers,
                                  n_heads=num_attention_heads, n_kv_heads=num_key_value_heads,
                                  intermediate_size=intermediate_size, num_local_experts=num_local_experts,
                                  num_experts_per_tok=num_experts_per_tok))
    total = count_params(model)
    skipped = sum((layer.mlp.num_experts - layer.mlp.top_k) * count_params(layer.mlp.experts[0])
                  for layer in model.model.layers)
    return [total, total - skipped]


def _moe_cases(rng: random.Random) -> list:
    cases: list = [((32000, 4096, 14336, 32, 32, 8, 8, 2), {})]  # Mixtral-8x7B
    for _ in range(7):
        a = _llama_args(rng, max_head_dim=32)
        E = rng.choice([2, 4, 8, 16, 64])
        cases.append(((log_uniform(rng, 100, 100_000), a["hidden_size"], log_uniform(rng, 8, 1024),
                       rng.randint(1, 3), a["num_attention_heads"], a["num_key_value_heads"], E,
                       rng.randint(1, min(E, 8))), {}))
    return cases


register(Question(
    id="12.moe_params",
    title="Total and active parameters of a Mixtral-style MoE model: moe_params(vocab_size, hidden_size, "
          "intermediate_size, num_hidden_layers, num_attention_heads, num_key_value_heads, "
          "num_local_experts, num_experts_per_tok) → [total, active]",
    cases=_moe_cases,
    reference=moe_params_reference,
    timeout=30.0,
    hint="the dense Llama count, but each layer has E SwiGLU experts (3·d·F each) and a router Linear(d, E) "
         "without bias; untied lm_head. active = total − layers · (E − k) · 3·d·F. Mixtral-8x7B: "
         "[46,702,792,704, 12,879,925,248].",
))


# --------------------------------------------------------------------------- 6. GQA in torch

def gqa_attention_reference(q: list, k: list, v: list) -> list:
    """Causal grouped-query attention by torch: F.scaled_dot_product_attention(..., enable_gqa=True)."""
    import torch
    import torch.nn.functional as F

    out = F.scaled_dot_product_attention(torch.tensor(q, dtype=torch.float64), torch.tensor(k, dtype=torch.float64),
                                         torch.tensor(v, dtype=torch.float64), is_causal=True, enable_gqa=True)
    return out.tolist()


def _gqa_cases(rng: random.Random) -> list:
    def tensor(*shape: int) -> list:
        if len(shape) == 1:
            return [round(rng.uniform(-2, 2), 3) for _ in range(shape[0])]
        return [tensor(*shape[1:]) for _ in range(shape[0])]

    cases: list = []
    for i in range(10):
        g = rng.choice([1, 2, 3])
        h = g * (rng.choice([2, 3, 4]) if i % 3 else 1)  # every third case is plain MHA (g = h)
        B, T, d = rng.randint(1, 2), rng.randint(1, 6), rng.choice([2, 4, 8])
        cases.append(((tensor(B, h, T, d), tensor(B, g, T, d), tensor(B, g, T, d)), {}))
    return cases


register(Question(
    id="12.gqa_attention",
    title="Write causal grouped-query attention in torch: gqa_attention(q, k, v) for q (B, h, T, d) and "
          "k, v (B, g, T, d) given as nested lists; return the (B, h, T, d) output",
    cases=_gqa_cases,
    reference=gqa_attention_reference,
    compare=close_within(1e-5, 1e-5),  # float32 answers are fine
    hint="repeat each key/value head h/g times along dim 1 (repeat_interleave: query head i uses kv head "
         "i // (h/g)), scores = q @ kᵀ / √d, mask the future (j > i) with -inf, softmax over the last dim, @ v.",
))
