"""Embeddings for chapter 07: sinusoidal positions and a tiny language-model-ish module that
shows token + position embeddings and weight tying without any transformer block.

Glossary of dimension letters (used in every shape comment below)::

    B   batch size
    T   sequence length (tokens per sequence, T <= max_len)
    V   vocab_size = num_embeddings of the token table
    D   d_model = embedding_dim, the width of every embedding vector
    P   max_len, number of positions with an embedding

Sources:

* `SinusoidalPositionalEncoding` is the fixed encoding of Vaswani et al. 2017, "Attention Is
  All You Need" (arXiv:1706.03762), §3.5: PE[p, 2i] = sin(p / 10000^(2i/D)),
  PE[p, 2i+1] = cos(p / 10000^(2i/D)); stored, as in the Annotated Transformer, as a registered
  **buffer** (saved in the state_dict, moved by ``.to()``, never trained). Deviation: odd D is
  allowed (the last cosine column is dropped).
* `TinyLM` mirrors the embedding/head part of nanoGPT's ``GPT`` (token table ``wte``, learned
  positions ``wpe``, final LayerNorm, bias-free ``lm_head`` whose weight IS ``wte.weight`` when
  tied — Press & Wolf 2017, "Using the Output Embedding to Improve Language Models",
  arXiv:1608.05859). Deviation: no transformer blocks at all, so every parameter is an
  embedding, the LayerNorm or the head, and the counts are easy to verify by hand
  (the full GPT is `helpers.models.GPT`).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor, nn

__all__ = ["SinusoidalPositionalEncoding", "TinyLM", "sinusoidal_table"]


def sinusoidal_table(max_len: int, d_model: int) -> Tensor:
    """The (max_len, d_model) sinusoidal table: sin on even columns, cos on odd columns."""
    position = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)          # (P, 1)
    freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32)
                     * (-math.log(10000.0) / d_model))                           # (ceil(D/2),)
    table = torch.zeros(max_len, d_model)                                        # (P, D)
    table[:, 0::2] = torch.sin(position * freq)                                  # (P, ceil(D/2))
    table[:, 1::2] = torch.cos(position * freq[: d_model // 2])                  # (P, floor(D/2))
    return table


class SinusoidalPositionalEncoding(nn.Module):
    """Fixed positional encoding: positions (T,) → (T, D), zero parameters, P·D buffer numbers.

    Args:
        max_len: P, the number of positions tabulated.
        d_model: D.
    """

    def __init__(self, max_len: int, d_model: int) -> None:
        super().__init__()
        self.register_buffer("pe", sinusoidal_table(max_len, d_model))           # (P, D) buffer

    def forward(self, pos: Tensor) -> Tensor:
        return self.pe[pos]                                                      # (T,) → (T, D)


class TinyLM(nn.Module):
    """Token + position embeddings → LayerNorm → Linear head: ids (B, T) → logits (B, T, V).

    Args:
        vocab_size: V, rows of the token table and outputs of the head.
        d_model: D, embedding width.
        max_len: P, longest sequence (positions 0 … P-1).
        tie_weights: if True, ``lm_head.weight`` is the SAME tensor as ``tok_emb.weight``
            (one (V, D) matrix, counted once); if False the head has its own (V, D) matrix.
        positional: "learned" (an ``nn.Embedding(P, D)``: P·D parameters), "sinusoidal"
            (a buffer: 0 parameters) or None (no positions).
        padding_idx: passed to the token ``nn.Embedding`` (that row stays zero, gets no gradient).

    Parameters: V·D (tokens) + [P·D if learned] + 2·D (LayerNorm) + [V·D if not tied].
    """

    def __init__(self, vocab_size: int, d_model: int, max_len: int = 64, tie_weights: bool = True,
                 positional: Optional[str] = "learned", padding_idx: Optional[int] = None) -> None:
        super().__init__()
        if positional not in ("learned", "sinusoidal", None):
            raise ValueError(f"positional must be 'learned', 'sinusoidal' or None, got {positional!r}")
        self.max_len = max_len
        self.tok_emb = nn.Embedding(vocab_size, d_model, padding_idx=padding_idx)  # (V, D)
        if positional == "learned":
            self.pos_emb: Optional[nn.Module] = nn.Embedding(max_len, d_model)      # (P, D) parameters
        elif positional == "sinusoidal":
            self.pos_emb = SinusoidalPositionalEncoding(max_len, d_model)          # (P, D) buffer
        else:
            self.pos_emb = None
        self.ln_f = nn.LayerNorm(d_model)                                          # D + D
        self.lm_head = nn.Linear(d_model, vocab_size, bias=False)                  # (V, D)
        if tie_weights:
            self.lm_head.weight = self.tok_emb.weight                              # one tensor, two names

    @property
    def tied(self) -> bool:
        return self.lm_head.weight is self.tok_emb.weight

    def forward(self, idx: Tensor) -> Tensor:
        B, T = idx.shape                                                           # (B, T) int64
        if T > self.max_len:
            raise ValueError(f"sequence length {T} exceeds max_len {self.max_len}")
        x = self.tok_emb(idx)                                                      # (B, T, D)
        if self.pos_emb is not None:
            pos = torch.arange(T, device=idx.device)                               # (T,)
            x = x + self.pos_emb(pos)                                              # (B, T, D) + (T, D)
        x = self.ln_f(x)                                                           # (B, T, D)
        return self.lm_head(x)                                                     # (B, T, V)
