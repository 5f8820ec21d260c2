"""A GPT layer built to the assumptions of Korthikanti et al. 2022 (arXiv 2205.05198, §4.1).

Glossary of dimension letters (the paper's own, and nanoGPT's in the shape comments):
    B   batch size (the paper's b)
    T   sequence length (s)
    C   hidden size (h)
    nh  attention heads (a)
    hs  head size = C // nh

The paper counts the bytes one transformer layer keeps for the backward pass as
``sbh·(34 + 5as/h)`` under two assumptions: activations are 16-bit (2 bytes) and dropout masks
are 1 byte per element. This layer is `helpers.models.gpt.GPTBlock` (pre-LN GPT-2/Megatron layer:
LayerNorm → fused QKV → attention → projection → dropout, LayerNorm → C → 4C → C MLP with GeLU
→ dropout) with two deviations, each so that torch saves exactly what the paper counts:

* every dropout is `ByteMaskDropout`, which calls ``torch.native_dropout`` and so saves a
  ``bool`` mask (1 byte). On the CPU, ``nn.Dropout``/``F.dropout`` instead multiply by a noise
  tensor of the input's dtype and save it (2 bytes per element in bf16);
* the attention core is written out (``softmax(QKᵀ/√hs)``, dropout, ``·V``) with the causal mask
  kept as a buffer (a model state, like Megatron's fused scale-mask-softmax kernel, it is not an
  activation). ``attention="sdpa"`` switches to ``F.scaled_dot_product_attention`` (no dropout on
  the attention weights), which never materialises the (B, nh, T, T) matrix.

Build it in bf16 and in training mode: ``PaperGPTLayer(GPTConfig(n_embd=64, n_head=4, dropout=0.1),
dtype=torch.bfloat16)``. Megatron-LM (github.com/NVIDIA/Megatron-LM, ``ParallelTransformerLayer``)
keeps the [s, b, h] layout; this one keeps nanoGPT's (B, T, C), which changes no byte count.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from helpers.models.gpt import CausalSelfAttention, GPTBlock, GPTConfig

__all__ = ["ByteMaskDropout", "PaperCausalSelfAttention", "PaperGPTLayer"]


class ByteMaskDropout(nn.Dropout):
    """``nn.Dropout`` whose backward keeps a 1-byte ``bool`` mask (``torch.native_dropout``)."""

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        return torch.native_dropout(x, self.p, True)[0]  # same shape as x; saves a bool mask


class PaperCausalSelfAttention(CausalSelfAttention):
    """Causal self-attention with the attention core written out, as the paper counts it.

    Args:
        config: a `GPTConfig` (n_embd, n_head, block_size, bias, dropout).
        attention: "explicit" (softmax, dropout and ·V as separate ops, the paper's layer) or
            "sdpa" (``F.scaled_dot_product_attention``, torch's fused kernel, no attention dropout).

    Set ``recompute_core = True`` for the paper's *selective* recomputation: the attention core
    (QKᵀ, softmax, dropout, ·V) runs under ``torch.utils.checkpoint``, which keeps only q, k, v.
    """

    def __init__(self, config: GPTConfig, attention: str = "explicit") -> None:
        super().__init__(config)
        if attention not in ("explicit", "sdpa"):
            raise ValueError(f"attention must be 'explicit' or 'sdpa', got {attention!r}")
        self.attention = attention
        self.recompute_core = False  # True: selective recomputation of the attention core (paper §5)
        self.resid_dropout = ByteMaskDropout(config.dropout)
        self.attn_dropout = ByteMaskDropout(config.dropout)
        future = torch.ones(config.block_size, config.block_size, dtype=torch.bool).triu(1)  # (T, T)
        self.register_buffer("future", future, persistent=False)  # True where key j > query i

    def _core(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """softmax(q kᵀ/√hs + causal mask), dropout, · v: 3 × (B, nh, T, hs) → (B, nh, T, hs)."""
        T, hs = q.size(-2), q.size(-1)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))  # (B, nh, T, T); saves q and k
        att = att.masked_fill(self.future[:T, :T], float("-inf"))  # (B, nh, T, T)
        att = F.softmax(att, dim=-1)  # (B, nh, T, T); saves its output
        att = self.attn_dropout(att)  # (B, nh, T, T); saves a bool mask
        return att @ v  # (B, nh, T, T) @ (B, nh, T, hs) -> (B, nh, T, hs); saves att and v

    def forward(self, x: Tensor) -> Tensor:
        B, T, C = x.size()
        nh, hs = self.n_head, C // self.n_head
        qkv = self.c_attn(x).view(B, T, 3, nh, hs).permute(2, 0, 3, 1, 4)  # (3, B, nh, T, hs)
        q, k, v = qkv.unbind(0)  # 3 × (B, nh, T, hs)
        if self.attention == "sdpa":
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, nh, T, hs)
        elif self.recompute_core:  # selective recomputation: keep q, k, v; redo the core in backward
            y = checkpoint(self._core, q, k, v, use_reentrant=False)  # (B, nh, T, hs)
        else:
            y = self._core(q, k, v)  # (B, nh, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C)
        return self.resid_dropout(self.c_proj(y))  # (B, T, C)


class PaperGPTLayer(GPTBlock):
    """`GPTBlock` with `PaperCausalSelfAttention` and 1-byte dropout masks: (B, T, C) → (B, T, C).

    Args:
        config: a `GPTConfig`; use ``dropout > 0`` for the paper's masks.
        attention: "explicit" (the paper) or "sdpa" (torch's fused attention).
        dtype: parameter dtype; the paper's count assumes 16-bit (``torch.bfloat16``).
        device: where to build it.
    """

    def __init__(self, config: GPTConfig, attention: str = "explicit", dtype: Optional[torch.dtype] = None,
                 device: Optional[torch.device | str] = None) -> None:
        super().__init__(config)
        self.attn = PaperCausalSelfAttention(config, attention)
        self.mlp.dropout = ByteMaskDropout(config.dropout)
        self.to(device=device, dtype=dtype)
