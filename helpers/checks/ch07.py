"""Chapter 07 (embeddings) exercise questions.

Reference answers come from ``helpers.formulas``, ``helpers.counting``, ``helpers.models.TinyLM``
(built on the meta device) or from torch's own embedding lookup run in the checking process —
never from a hand-typed number. tests/test_checks_ch05_ch07.py checks every reference against torch.
"""

from __future__ import annotations

import random
from typing import Optional

from helpers import formulas
from helpers.checks._gen import close, largest_fitting_all, log_uniform, two_limit_budgets
from helpers.checks.registry import Question, register


# --------------------------------------------------------------------------- 1. output shape

def embedding_output_shape_reference(index_shape: list, num_embeddings: int, embedding_dim: int) -> tuple:
    """Shape of nn.Embedding(num_embeddings, embedding_dim)(ids) for ids of shape index_shape."""
    import torch
    from torch import nn

    emb = nn.Embedding(num_embeddings, embedding_dim)
    with torch.no_grad():
        return tuple(emb(torch.zeros(tuple(index_shape), dtype=torch.long)).shape)


def _shape_cases(rng: random.Random) -> list:
    cases: list = [(([2, 5], 10, 4), {})]
    for _ in range(15):
        shape = [rng.randint(1, 16) for _ in range(rng.randint(0, 3))]
        cases.append(((shape, rng.randint(1, 5000), rng.randint(1, 256)), {}))
    return cases


register(Question(
    id="07.embedding_output_shape",
    title="Predict the output shape of nn.Embedding(num_embeddings, embedding_dim) applied to integer "
          "ids of shape index_shape (a list, possibly empty)",
    cases=_shape_cases,
    reference=embedding_output_shape_reference,
    hint="The lookup is weight[ids]: the ids keep their shape and one axis of size embedding_dim is "
         "appended. num_embeddings never appears in the output shape.",
))


# --------------------------------------------------------------------------- 2. one-hot × matrix

def one_hot_matmul_reference(indices: list, weight: list) -> list:
    """F.embedding(indices, weight) computed by torch in float64, as nested lists."""
    import torch
    import torch.nn.functional as F

    return F.embedding(torch.tensor(indices, dtype=torch.long),
                       torch.tensor(weight, dtype=torch.float64)).tolist()


def _one_hot_cases(rng: random.Random) -> list:
    cases = []
    for _ in range(12):
        V, D = rng.randint(1, 6), rng.randint(1, 4)
        weight = [[round(rng.uniform(-2, 2), 2) for _ in range(D)] for _ in range(V)]
        cases.append((([rng.randrange(V) for _ in range(rng.randint(1, 6))], weight), {}))
    return cases


register(Question(
    id="07.one_hot_matmul",
    title="Compute one_hot(indices) @ weight with plain Python lists (weight is V×D): the embedding "
          "lookup written as a matrix product",
    cases=_one_hot_cases,
    reference=one_hot_matmul_reference,
    compare=close,
    hint="Build, for each index i, the one-hot row [1 if j == i else 0 for j in range(V)] and multiply "
         "it by weight: the result is row i of weight. Return one list of D floats per index.",
))


# --------------------------------------------------------------------------- 3. TinyLM params (tying)

def tinylm_params_reference(vocab_size: int, d_model: int, max_len: int, tie_weights: bool,
                            positional: Optional[str]) -> int:
    """count_params(TinyLM(...)) built on the meta device."""
    import torch

    from helpers.counting import count_params
    from helpers.models.embedding import TinyLM

    with torch.device("meta"):
        return count_params(TinyLM(vocab_size, d_model, max_len=max_len, tie_weights=tie_weights,
                                   positional=positional))


def _tinylm_cases(rng: random.Random) -> list:
    return [((rng.randint(2, 50000), rng.randint(1, 512), rng.randint(1, 2048), rng.random() < 0.5,
              rng.choice(["learned", "sinusoidal", None])), {}) for _ in range(16)]


register(Question(
    id="07.tinylm_params",
    title="Parameters of TinyLM(vocab_size, d_model, max_len, tie_weights, positional): token embedding, "
          "positions, LayerNorm(d_model), bias-free head",
    cases=_tinylm_cases,
    reference=tinylm_params_reference,
    hint="V·D for the token table; + max_len·D only for learned positions (sinusoidal ones are a buffer); "
         "+ 2·D for the LayerNorm; + V·D for the head only if it is NOT tied (a tied head is the same tensor).",
))


# --------------------------------------------------------------------------- 4. vocabulary memory

def vocab_memory_bytes_reference(vocab_size: int, d_model: int, dtype: str, tie_weights: bool) -> int:
    """Bytes of an input embedding + output head (tied or not) at `dtype`, built on meta."""
    import torch
    from torch import nn

    from helpers.counting import bytes_for, count_params

    with torch.device("meta"):
        emb, head = nn.Embedding(vocab_size, d_model), nn.Linear(d_model, vocab_size, bias=False)
    if tie_weights:
        head.weight = emb.weight
    return bytes_for(count_params(nn.ModuleList([emb, head])), getattr(torch, dtype))


def _memory_cases(rng: random.Random) -> list:
    return [((rng.randint(1000, 260000), rng.choice([64, 256, 512, 768, 1024, 2048, 4096]),
              rng.choice(["float32", "bfloat16", "float16", "float64"]), rng.random() < 0.5), {})
            for _ in range(16)]


register(Question(
    id="07.vocab_memory_bytes",
    title="Bytes taken by the weights of an input embedding (V×D) plus a bias-free output head, "
          "tied or not, stored as dtype ('float32', 'bfloat16', 'float16' or 'float64')",
    cases=_memory_cases,
    reference=vocab_memory_bytes_reference,
    hint="Count the numbers first (one V·D matrix if tied, two if not), then multiply by the element "
         "size: 4 bytes for float32, 2 for bfloat16/float16, 8 for float64.",
))


# --------------------------------------------------------------------------- 5. two limits on the vocabulary

def _tinylm_count(vocab_size: int, d_model: int, max_len: int, tie_weights: bool, positional: Optional[str]) -> int:
    """TinyLM's parameters from helpers.formulas (tests/test_checks_ch05_ch07.py compares with TinyLM)."""
    tables = 1 if tie_weights else 2
    positions = formulas.embedding_params(max_len, d_model) if positional == "learned" else 0
    return tables * formulas.embedding_params(vocab_size, d_model) + positions + formulas.layernorm_params(d_model)


def _vocab_bytes(vocab_size: int, d_model: int, dtype: str, tie_weights: bool) -> int:
    """Bytes of the token table + bias-free head (one tensor if tied) stored as `dtype`."""
    import torch

    tables = 1 if tie_weights else 2
    return tables * formulas.embedding_params(vocab_size, d_model) * getattr(torch, dtype).itemsize


def largest_vocab_reference(d_model: int, max_len: int, tie_weights: bool, positional: Optional[str],
                            param_budget: int, memory_budget: int, dtype: str) -> int:
    """Largest vocab_size whose TinyLM has at most param_budget parameters AND whose embedding + head
    weights take at most memory_budget bytes in `dtype` (0 if vocab_size=1 breaks one)."""
    return largest_fitting_all((lambda v: _tinylm_count(v, d_model, max_len, tie_weights, positional), param_budget),
                               (lambda v: _vocab_bytes(v, d_model, dtype, tie_weights), memory_budget))


def _largest_vocab_cases(rng: random.Random) -> list:
    cases = []
    for i in range(16):
        D, P = rng.choice([16, 64, 256, 512, 768, 1024]), rng.randint(1, 2048)
        tie, positional = rng.random() < 0.5, rng.choice(["learned", "sinusoidal", None])
        dtype = rng.choice(["float32", "bfloat16", "float16", "float64"])
        vocab = rng.randint(2, 100_000)  # the answer of the parameter limit; the memory limit lands near it
        params, memory = two_limit_budgets(rng, lambda v: _tinylm_count(v, D, P, tie, positional),
                                           lambda v: _vocab_bytes(v, D, dtype, tie), vocab, exact=i % 4 == 0)
        if i == 3:
            params = _tinylm_count(1, D, P, tie, positional) - 1  # not even one token fits
        cases.append(((D, P, tie, positional, params, memory, dtype), {}))
    return cases


register(Question(
    id="07.largest_vocab",
    title="Largest vocabulary for TinyLM under two limits: a parameter budget for the whole model and a "
          "byte budget for its embedding + head weights",
    cases=_largest_vocab_cases,
    reference=largest_vocab_reference,
    hint="both limits grow with V: the parameters (your tinylm_params) by D per token when tied, 2·D when not, "
         "plus what does not depend on V (learned positions, the LayerNorm); the bytes (your vocab_memory_bytes) "
         "by D or 2·D numbers of the dtype's size per token. Take the largest V of each and return the smaller.",
))


# --------------------------------------------------------------------------- 6. repair a module

def fixed_tiny_lm_reference(vocab_size: int, d_model: int):
    """The repaired tiny language model: token ids (B, T) → Embedding → Linear head → logits (B, T, V).

    The broken head was ``nn.Linear(vocab_size, d_model)``; the head maps D features back to V logits.
    Built by the caller under ``torch.device("meta")`` (see :mod:`helpers.checks.module_answer`)."""
    from torch import nn

    class TinyLM(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tok_emb = nn.Embedding(vocab_size, d_model)  # (V, D)
            self.lm_head = nn.Linear(d_model, vocab_size)     # (V, D) + V

        def forward(self, idx):
            return self.lm_head(self.tok_emb(idx))  # (B, T) → (B, T, D) → (B, T, V)

    return TinyLM()


def _fixed_tiny_lm_cases(rng: random.Random) -> list:
    cases = []
    for _ in range(8):
        vocab, d = log_uniform(rng, 8, 2000), log_uniform(rng, 2, 256)
        while d == vocab:  # the broken head Linear(V, D) would accept D features only if D == V
            d = log_uniform(rng, 2, 256)
        cases.append(((vocab, d), {}))
    return cases


def _fixed_tiny_lm_probe(vocab_size: int, d_model: int) -> dict:
    """3 sequences of 5 token ids in [0, vocab_size); 6 logits on fixed weights."""
    return {"input": [3, 5], "ids": vocab_size, "values": 6}


register(Question(
    id="07.fixed_tiny_lm",
    title="Repair a broken nn.Module: return the fixed tiny language model",
    cases=_fixed_tiny_lm_cases,
    reference=fixed_tiny_lm_reference,
    probe=_fixed_tiny_lm_probe,
    hint="the head receives the embeddings, (B, T, d_model), and must give one logit per vocabulary entry, "
         "(B, T, vocab_size): its in_features is d_model and its out_features vocab_size. Keep the names "
         "tok_emb/lm_head and the head's bias.",
))
