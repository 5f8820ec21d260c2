"""A GPT-2-shaped decoder-only transformer, nanoGPT style, built from a config.

Glossary of dimension letters:
    B   batch size
    T   sequence length (number of tokens, T <= block_size)
    C   n_embd, the width of the residual stream (d_model; D in other chapters)
    nh  n_head, number of attention heads
    hs  head size = C // nh
    V   vocab_size

Mirrors Andrej Karpathy's nanoGPT ``model.py`` (https://github.com/karpathy/nanoGPT), which
itself reproduces OpenAI's GPT-2 (Radford et al., 2019): learned token (wte) and position
(wpe) embeddings, ``n_layer`` pre-LayerNorm blocks (LayerNorm → causal self-attention with a
fused ``c_attn`` C → 3C projection and ``c_proj`` C → C; LayerNorm → MLP C → 4C → C with GELU),
a final LayerNorm ``ln_f`` and an ``lm_head`` C → V whose weight is *tied* to ``wte``.
With the default config (GPT-2 small) it has 124,439,808 parameters — the number nanoGPT
prints as 124.44M when the position embeddings are included — and 163,037,184 with an
untied head (one more V × C matrix).

Deviations from nanoGPT: attention goes through the course's single definition
`helpers.models.attention.scaled_dot_product_attention` (explicit matmuls, so every shape can
be traced on the ``meta`` device) instead of the fused ``F.scaled_dot_product_attention``;
``tie_weights`` is a config switch (nanoGPT always ties); weight init is skipped on ``meta``;
no ``from_pretrained``/``generate``/optimiser helpers (no weights are ever downloaded here).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from helpers.models.attention import scaled_dot_product_attention

__all__ = ["GPTConfig", "GPT", "GPTBlock", "CausalSelfAttention", "GPTMLP"]


@dataclass
class GPTConfig:
    """Hyper-parameters of a GPT; the defaults are GPT-2 small (124M)."""

    vocab_size: int = 50257  # V: GPT-2's BPE vocabulary (50,000 merges + 256 bytes + <|endoftext|>)
    block_size: int = 1024  # maximum T (number of learned positions)
    n_layer: int = 12
    n_head: int = 12  # nh
    n_embd: int = 768  # C
    bias: bool = True  # biases in Linear and LayerNorm layers (GPT-2: True)
    tie_weights: bool = True  # lm_head.weight is wte.weight (GPT-2: True)
    dropout: float = 0.0


class CausalSelfAttention(nn.Module):
    """Masked multi-head self-attention: (B, T, C) → (B, T, C)."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        if config.n_embd % config.n_head:
            raise ValueError(f"n_embd={config.n_embd} is not divisible by n_head={config.n_head}")
        self.n_head, self.n_embd, self.dropout = config.n_head, config.n_embd, config.dropout
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # C -> 3C (q, k, v fused)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)  # C -> C
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor) -> Tensor:
        B, T, C = x.size()  # batch, sequence length, embedding width
        nh, hs = self.n_head, C // self.n_head
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)  # (B, T, 3C) -> 3 × (B, T, C)
        q = q.view(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        y = scaled_dot_product_attention(q, k, v, is_causal=True,
                                         dropout_p=self.dropout if self.training else 0.0)  # (B, nh, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, nh, hs) -> (B, T, C)
        return self.resid_dropout(self.c_proj(y))  # (B, T, C)


class GPTMLP(nn.Module):
    """Position-wise feed-forward network: C → 4C → C with GELU."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)  # C -> 4C
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)  # 4C -> C
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor) -> Tensor:
        x = self.gelu(self.c_fc(x))  # (B, T, 4C)
        return self.dropout(self.c_proj(x))  # (B, T, C)


class GPTBlock(nn.Module):
    """One pre-LN transformer block: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)  # C (+ C)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)  # C (+ C)
        self.mlp = GPTMLP(config)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln_1(x))  # (B, T, C)
        x = x + self.mlp(self.ln_2(x))  # (B, T, C)
        return x


class GPT(nn.Module):
    """GPT language model: token ids (B, T) → logits (B, T, V).

    Build GPT-2 small without allocating memory: ``with torch.device("meta"): GPT(GPTConfig())``.
    """

    def __init__(self, config: Optional[GPTConfig] = None) -> None:
        super().__init__()
        self.config = config = config or GPTConfig()
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),  # (V, C) token embeddings
            wpe=nn.Embedding(config.block_size, config.n_embd),  # (block_size, C) position embeddings
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([GPTBlock(config) for _ in range(config.n_layer)]),
            ln_f=nn.LayerNorm(config.n_embd, bias=config.bias),  # C (+ C)
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)  # (V, C)
        if config.tie_weights:
            self.lm_head.weight = self.transformer.wte.weight  # one (V, C) tensor, counted once
        self._init_weights()

    @torch.no_grad()
    def _init_weights(self) -> None:
        """GPT-2 init as in nanoGPT: N(0, 0.02), zero biases, residual projections / √(2·n_layer)."""
        if any(p.is_meta for p in self.parameters()):
            return  # shapes only: nothing to initialise
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * self.config.n_layer))

    def forward(self, idx: Tensor, targets: Optional[Tensor] = None) -> Tensor | tuple[Tensor, Tensor]:
        """idx (B, T) int64 → logits (B, T, V); with targets (B, T) also the cross-entropy loss."""
        B, T = idx.size()
        if T > self.config.block_size:
            raise ValueError(f"sequence length {T} exceeds block_size {self.config.block_size}")
        pos = torch.arange(T, dtype=torch.long, device=idx.device)  # (T,)
        tok_emb = self.transformer.wte(idx)  # (B, T, C)
        pos_emb = self.transformer.wpe(pos)  # (T, C), broadcast over the batch
        x = self.transformer.drop(tok_emb + pos_emb)  # (B, T, C)
        for block in self.transformer.h:
            x = block(x)  # (B, T, C)
        x = self.transformer.ln_f(x)  # (B, T, C)
        logits = self.lm_head(x)  # (B, T, V)
        if targets is None:
            return logits
        loss = F.cross_entropy(logits.view(B * T, -1), targets.view(B * T))  # scalar
        return logits, loss
