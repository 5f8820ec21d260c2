"""Chapter 08 (Attention and transformers) exercise questions.

Reference answers are computed by torch itself on the ``meta`` device (``nn.MultiheadAttention``,
``nn.TransformerEncoderLayer``/``DecoderLayer``, the course's ``GPT`` and attention function) or by
``helpers.cost`` (pure arithmetic that tests/test_cost.py checks against real key/value tensors).
"""

from __future__ import annotations

import random
from typing import Optional

from helpers import cost
from helpers.checks._gen import largest_fitting
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


# --------------------------------------------------------------------------- 4. transformer layer

def transformer_layer_params_reference(d_model: int, nhead: int, dim_feedforward: int = 2048,
                                       decoder: bool = False) -> int:
    """count_params of the real nn.TransformerEncoderLayer / DecoderLayer (built on meta)."""
    from torch import nn

    from helpers.counting import count_params

    cls = nn.TransformerDecoderLayer if decoder else nn.TransformerEncoderLayer
    return count_params(cls(d_model, nhead, dim_feedforward, batch_first=True, device="meta"))


def _layer_cases(rng: random.Random) -> list:
    cases: list = [((512, 8), {}), ((512, 8), {"decoder": True})]
    for _ in range(14):
        heads, dim = _heads_and_dim(rng)
        kwargs: dict = {"dim_feedforward": rng.choice([dim * 4, dim * 2, rng.randint(1, 4096)])}
        if rng.random() < 0.5:
            kwargs["decoder"] = True
        cases.append(((dim, heads), kwargs))
    return cases


register(Question(
    id="08.transformer_layer_params",
    title="Count nn.TransformerEncoderLayer (or DecoderLayer if decoder=True): "
          "transformer_layer_params(d_model, nhead, dim_feedforward=2048, decoder=False)",
    cases=_layer_cases,
    reference=transformer_layer_params_reference,
    hint="encoder = self-attention (4d² + 4d) + linear1 (d·ff + ff) + linear2 (ff·d + d) + 2 LayerNorms (2d each); "
         "the decoder adds a cross-attention (4d² + 4d) and a third LayerNorm.",
))


# --------------------------------------------------------------------------- 5. GPT

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


# --------------------------------------------------------------------------- 6. fit a budget

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
