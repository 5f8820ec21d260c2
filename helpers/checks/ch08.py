"""Chapter 08 (Attention and transformers) exercise questions.

Reference answers are computed by torch itself on the ``meta`` device (``nn.MultiheadAttention``,
the course's ``GPT`` and attention function) or by ``helpers.cost`` (pure arithmetic that
tests/test_cost.py checks against real key/value tensors).
"""

from __future__ import annotations

import random
from typing import Optional

from helpers import cost
from helpers.checks._gen import largest_fitting, largest_fitting_all, log_uniform, two_limit_budgets
from helpers.checks.registry import Question, register


def _heads_and_dim(rng: random.Random, max_head_dim: int = 64) -> tuple[int, int]:
    heads = rng.choice([1, 2, 3, 4, 6, 8, 12, 16])
    return heads, heads * rng.choice([d for d in (1, 2, 4, 8, 16, 32, 64) if d <= max_head_dim])


# --------------------------------------------------------------------------- 1. mha_params

def mha_params_reference(embed_dim: int, num_heads: int, bias: bool = True, kdim: Optional[int] = None,
                         vdim: Optional[int] = None, add_bias_kv: bool = False) -> int:
    """count_params of the real nn.MultiheadAttention (small sizes: built on the CPU, where the
    random init of bias_k/bias_v is instant; on meta its first call loads torch's decompositions)."""
    from torch import nn

    from helpers.counting import count_params

    return count_params(nn.MultiheadAttention(embed_dim, num_heads, bias=bias, kdim=kdim, vdim=vdim,
                                              add_bias_kv=add_bias_kv))


def _mha_cases(rng: random.Random) -> list:
    cases: list = [((512, 8), {}), ((384, 12), {"bias": False})]
    for i in range(18):
        heads, dim = _heads_and_dim(rng, max_head_dim=32)
        kwargs: dict = {}
        if rng.random() < 0.3:
            kwargs["bias"] = False
        if i % 3 == 0:
            kwargs["kdim"] = rng.randint(1, 300)
        if i % 4 == 1:
            kwargs["vdim"] = rng.randint(1, 300)
        if rng.random() < 0.25:
            kwargs["add_bias_kv"] = True
        cases.append(((dim, heads), kwargs))
    return cases


register(Question(
    id="08.mha_params",
    title="Implement mha_params(embed_dim, num_heads, bias=True, kdim=None, vdim=None, add_bias_kv=False) "
          "for nn.MultiheadAttention",
    cases=_mha_cases,
    reference=mha_params_reference,
    hint="Q, K, V projections map embed_dim, kdim, vdim (None means embed_dim) to embed_dim: "
         "E·E + E·kdim + E·vdim weights; bias=True adds 3E (in_proj_bias) and E (out_proj.bias); "
         "out_proj has E·E weights; add_bias_kv adds 2E. num_heads adds nothing.",
))


# --------------------------------------------------------------------------- 2. shapes

def attention_shapes_reference(batch: int, seq_len: int, embed_dim: int, num_heads: int) -> list:
    """[q/k/v per-head shape, scores shape, output shape] traced on the meta device."""
    import torch

    from helpers.models.attention import scaled_dot_product_attention

    x = torch.empty(batch, seq_len, embed_dim, device="meta")  # (B, T, E)
    q = x.view(batch, seq_len, num_heads, embed_dim // num_heads).transpose(1, 2)  # (B, h, T, d_k)
    y, att = scaled_dot_product_attention(q, q, q, need_weights=True)
    out = y.transpose(1, 2).reshape(batch, seq_len, embed_dim)  # (B, T, E)
    return [tuple(q.shape), tuple(att.shape), tuple(out.shape)]


def _shape_cases(rng: random.Random) -> list:
    cases: list = [((2, 10, 512, 8), {})]
    for _ in range(15):
        heads, dim = _heads_and_dim(rng)
        cases.append(((rng.randint(1, 64), rng.randint(1, 4096), dim, heads), {}))
    return cases


register(Question(
    id="08.attention_shapes",
    title="Predict the shapes in multi-head self-attention: return [q shape, scores shape, output shape] "
          "for (batch, seq_len, embed_dim, num_heads)",
    cases=_shape_cases,
    reference=attention_shapes_reference,
    hint="q is split into heads: (B, h, T, d_k) with d_k = embed_dim // num_heads; the scores q·kᵀ are "
         "(B, h, T, T); after merging the heads the output is (B, T, embed_dim) again.",
))


# --------------------------------------------------------------------------- 3. KV cache

def _kv_cases(rng: random.Random) -> list:
    cases: list = [((12, 12, 64, 1024), {}), ((32, 32, 128, 4096), {"batch_size": 8})]
    for _ in range(16):
        cases.append(((rng.randint(1, 96), rng.choice([1, 2, 4, 8, 12, 16, 32, 64]), rng.choice([32, 64, 80, 128]),
                       rng.randint(1, 32_768)),
                      {"batch_size": rng.randint(1, 64), "bytes_per_element": rng.choice([1, 2, 4])}))
    return cases


register(Question(
    id="08.kv_cache_bytes",
    title="Bytes of a decoder's KV cache: kv_cache_bytes(n_layer, n_head, head_dim, seq_len, batch_size=1, "
          "bytes_per_element=2)",
    cases=_kv_cases,
    reference=cost.kv_cache_bytes,
    hint="every layer keeps the keys AND the values (×2) of every cached token: each is "
         "(batch_size, n_head, seq_len, head_dim) numbers of bytes_per_element bytes.",
))


# --------------------------------------------------------------------------- 4. GPT

def gpt_params_reference(vocab_size: int, block_size: int, n_layer: int, n_head: int, n_embd: int,
                         tie_weights: bool = True) -> int:
    """count_params of the course's GPT (nanoGPT layout), built on meta."""
    import torch

    from helpers.counting import count_params
    from helpers.models.gpt import GPT, GPTConfig

    with torch.device("meta"):
        model = GPT(GPTConfig(vocab_size=vocab_size, block_size=block_size, n_layer=n_layer, n_head=n_head,
                              n_embd=n_embd, tie_weights=tie_weights))
    return count_params(model)


def _gpt_cases(rng: random.Random) -> list:
    cases: list = [((50257, 1024, 12, 12, 768), {}), ((50257, 1024, 12, 12, 768), {"tie_weights": False})]
    for _ in range(10):
        heads = rng.choice([1, 2, 4, 8])
        cases.append(((rng.randint(100, 60_000), rng.choice([128, 256, 512, 1024, 2048]), rng.randint(1, 6), heads,
                       heads * rng.choice([8, 16, 32, 64])), {"tie_weights": rng.random() < 0.6}))
    return cases


register(Question(
    id="08.gpt_params",
    title="Count a GPT-2-style model: gpt_params(vocab_size, block_size, n_layer, n_head, n_embd, tie_weights=True)",
    cases=_gpt_cases,
    reference=gpt_params_reference,
    timeout=30.0,  # the first nn.Embedding built on meta loads torch's decompositions (~3 s, once)
    hint="wte V·C + wpe block_size·C + n_layer·(12C² + 13C) + final LayerNorm 2C; an untied lm_head adds V·C "
         "(no bias). n_head adds nothing. GPT-2 small must give 124,439,808.",
))


# --------------------------------------------------------------------------- 5. fit a budget

def max_context_reference(budget_bytes: int, n_layer: int, n_head: int, head_dim: int, batch_size: int = 1,
                          bytes_per_element: int = 2) -> int:
    """Longest seq_len whose KV cache (helpers.cost.kv_cache_bytes) fits in budget_bytes (0 if not
    even one token)."""
    return largest_fitting(lambda seq_len: cost.kv_cache_bytes(n_layer, n_head, head_dim, seq_len, batch_size,
                                                               bytes_per_element), budget_bytes)


def _ctx_cases(rng: random.Random) -> list:
    cases: list = [((16 * 2**30, 32, 32, 128), {"batch_size": 8})]
    for _ in range(15):
        cases.append(((rng.randint(1, 80 * 2**30), rng.randint(1, 80), rng.choice([8, 12, 16, 32, 40]),
                       rng.choice([64, 128])),
                      {"batch_size": rng.randint(1, 32), "bytes_per_element": rng.choice([1, 2, 4])}))
    return cases


register(Question(
    id="08.max_context",
    title="Longest context whose KV cache fits a memory budget: max_context(budget_bytes, n_layer, n_head, "
          "head_dim, batch_size=1, bytes_per_element=2)",
    cases=_ctx_cases,
    reference=max_context_reference,
    hint="the KV cache grows linearly with seq_len: divide the budget by the bytes ONE token costs "
         "(2 · n_layer · n_head · head_dim · batch_size · bytes_per_element) and round down.",
))


# --------------------------------------------------------------------------- 6. two limits on depth

def _gpt_count(vocab_size: int, block_size: int, n_head: int, n_embd: int):
    """count(n_layer) of the course's GPT (tied): affine in n_layer, every block being the same, so it is
    measured on the real model with 1 and 2 blocks (built on meta) and extended linearly
    (tests/test_checks_ch08_ch11.py compares it with the real GPT at the answer and one block more)."""
    one = gpt_params_reference(vocab_size, block_size, 1, n_head, n_embd)
    per_block = gpt_params_reference(vocab_size, block_size, 2, n_head, n_embd) - one
    base = one - per_block
    return lambda n_layer: base + n_layer * per_block


def deepest_gpt_reference(vocab_size: int, block_size: int, n_head: int, n_embd: int, batch_size: int,
                          param_budget: int, kv_budget_bytes: int) -> int:
    """Most blocks n_layer such that the tied GPT has at most param_budget parameters AND its bf16 KV cache
    for batch_size full contexts (block_size tokens) takes at most kv_budget_bytes (0 if one block breaks one)."""
    return largest_fitting_all(
        (_gpt_count(vocab_size, block_size, n_head, n_embd), param_budget),
        (lambda n: cost.kv_cache_bytes(n, n_head, n_embd // n_head, block_size, batch_size, 2), kv_budget_bytes))


def _deepest_cases(rng: random.Random) -> list:
    cases: list = []
    for i in range(12):
        heads = rng.choice([1, 2, 4, 8, 12])
        V, T, C, B = rng.randint(100, 60_000), rng.choice([128, 256, 512, 1024, 2048]), heads * rng.choice(
            [8, 16, 32, 64]), rng.randint(1, 32)
        depth = rng.randint(1, 48)  # the answer of the parameter limit; the cache limit lands near it
        def cache(n: int) -> int:
            return cost.kv_cache_bytes(n, heads, C // heads, T, B, 2)

        params, kv = two_limit_budgets(rng, _gpt_count(V, T, heads, C), cache, depth, exact=i % 4 == 0)
        if i == 2:
            kv = cache(1) - 1  # not even one block's cache fits
        cases.append(((V, T, heads, C, B, params, kv), {}))
    return cases


register(Question(
    id="08.deepest_gpt",
    title="How many blocks can a tied GPT have under a parameter budget AND a bf16 KV-cache budget for "
          "batch_size full contexts?",
    cases=_deepest_cases,
    reference=deepest_gpt_reference,
    timeout=30.0,  # the first nn.Embedding built on meta loads torch's decompositions (~3 s, once)
    hint="both limits grow with n_layer: parameters = the embeddings and final LayerNorm (paid once) + n_layer "
         "identical blocks (your gpt_params); the KV cache = n_layer × what one layer keeps for batch_size "
         "sequences of block_size tokens (your kv_cache_bytes with head_dim = n_embd // n_head, 2 bytes). "
         "Return the smaller of the two largest n_layer (0 if one block already breaks a limit).",
))


# --------------------------------------------------------------------------- 7. repair a module

def fixed_self_attention_reference(d_model: int, num_heads: int):
    """The repaired self-attention block: x (B, T, C) → nn.MultiheadAttention(x, x, x) → (B, T, C).

    The broken block built ``nn.MultiheadAttention(d_model, num_heads)`` without ``batch_first=True``:
    torch then reads (B, T, C) as (L, N, E) = (sequence, batch, embedding), so every token attends
    over the B sequences of the batch at its position instead of over the T positions of its own
    sequence — same shape, wrong values. Built under ``torch.device("meta")`` by the caller."""
    from torch import nn

    class SelfAttention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attn = nn.MultiheadAttention(d_model, num_heads, batch_first=True)  # 4C² + 4C

        def forward(self, x):
            out, _ = self.attn(x, x, x)  # (B, T, C): each position attends over the T positions
            return out

    return SelfAttention()


def _fixed_self_attention_cases(rng: random.Random) -> list:
    cases = []
    for _ in range(8):
        num_heads = rng.choice([1, 2, 3, 4, 8])
        head_dim = log_uniform(rng, 2, 64)  # ≥ 2: embed_dim/num_heads swapped never builds the same module
        cases.append(((num_heads * head_dim, num_heads), {}))
    return cases


def _fixed_self_attention_probe(d_model: int, num_heads: int) -> dict:
    """B = 3 sequences of T = 5 tokens (B ≠ T, so attending over the batch gives other values)."""
    return {"input": [3, 5, d_model], "values": 6}


register(Question(
    id="08.fixed_self_attention",
    title="Repair a broken nn.Module: return the fixed self-attention block",
    cases=_fixed_self_attention_cases,
    reference=fixed_self_attention_reference,
    probe=_fixed_self_attention_probe,
    hint="nn.MultiheadAttention expects (T, B, C) — sequence first — unless built with batch_first=True; fed "
         "(B, T, C) it attends over the batch axis B instead of the time axis T, with the same output shape. "
         "Keep the name attn and nn.MultiheadAttention(d_model, num_heads, …).",
))
