"""A Llama-2-shaped decoder-only transformer (RMSNorm, rotary embeddings, SwiGLU), from a config.

Glossary of dimension letters:
    B   batch size
    T   sequence length
    D   dim (d_model), the width of the residual stream
    nh  n_heads, number of attention heads
    hs  head_dim = D // nh
    F   ffn hidden size (intermediate_size)
    V   vocab_size

Mirrors Meta's reference implementation (https://github.com/meta-llama/llama, ``llama/model.py``:
``RMSNorm``, ``Attention`` with wq/wk/wv/wo, ``FeedForward`` with w1/w2/w3, ``TransformerBlock``,
``Transformer``) and Hugging Face ``transformers.LlamaForCausalLM`` whose parameter NAMES we use
(``model.embed_tokens``, ``layers.i.self_attn.{q,k,v,o}_proj``, ``mlp.{gate,up,down}_proj``,
``input_layernorm``, ``post_attention_layernorm``, ``model.norm``, ``lm_head``). The defaults
are Llama-2-7B (Touvron et al., 2023): V = 32000, D = 4096, 32 layers, 32 heads, F = 11008,
no biases anywhere, an untied lm_head — 6,738,415,616 parameters.
Rotary position embeddings (Su et al., 2021) have no parameters: cos/sin tables are computed
in ``forward`` from the positions, so the model builds and runs on the ``meta`` device.

Deviations: no KV cache, no grouped-query attention (Llama-2-7B has n_kv_heads = n_heads),
no weight init beyond torch's defaults (skipped entirely on ``meta``); attention goes through
`helpers.models.attention.scaled_dot_product_attention`. Rotary uses the "rotate half"
layout of Hugging Face (Meta's code rotates interleaved pairs; same parameter count).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from helpers.models.attention import scaled_dot_product_attention

__all__ = ["LlamaConfig", "Llama", "RMSNorm", "LlamaAttention", "LlamaMLP", "LlamaBlock", "apply_rotary"]


@dataclass
class LlamaConfig:
    """Hyper-parameters of a Llama; the defaults are Llama-2-7B."""

    vocab_size: int = 32000  # V (SentencePiece)
    dim: int = 4096  # D
    n_layers: int = 32
    n_heads: int = 32  # nh
    intermediate_size: int = 11008  # F, the SwiGLU hidden size
    max_seq_len: int = 4096
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    tie_weights: bool = False  # Llama-2: untied lm_head


class RMSNorm(nn.Module):
    """x / rms(x) · weight — LayerNorm without mean-centring and without a bias (D parameters)."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))  # (D,)

    def forward(self, x: Tensor) -> Tensor:
        rms = x.pow(2).mean(-1, keepdim=True).add(self.eps).rsqrt()  # (B, T, 1)
        return x * rms * self.weight  # (B, T, D)


def _rotate_half(x: Tensor) -> Tensor:
    x1, x2 = x.chunk(2, dim=-1)  # 2 × (B, nh, T, hs/2)
    return torch.cat((-x2, x1), dim=-1)  # (B, nh, T, hs)


def apply_rotary(x: Tensor, theta: float = 10000.0) -> Tensor:
    """Rotate each (B, nh, T, hs) query/key vector by its position: no learned parameters."""
    T, hs = x.size(-2), x.size(-1)
    inv_freq = 1.0 / theta ** (torch.arange(0, hs, 2, device=x.device, dtype=torch.float32) / hs)  # (hs/2,)
    pos = torch.arange(T, device=x.device, dtype=torch.float32)  # (T,)
    angles = torch.outer(pos, inv_freq)  # (T, hs/2)
    angles = torch.cat((angles, angles), dim=-1)  # (T, hs)
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)  # (T, hs) each
    return x * cos + _rotate_half(x) * sin  # (B, nh, T, hs)


class LlamaAttention(nn.Module):
    """Causal self-attention with rotary positions and no biases: (B, T, D) → (B, T, D)."""

    def __init__(self, config: LlamaConfig) -> None:
        super().__init__()
        if config.dim % config.n_heads:
            raise ValueError(f"dim={config.dim} is not divisible by n_heads={config.n_heads}")
        self.n_heads, self.theta = config.n_heads, config.rope_theta
        D = config.dim
        self.q_proj = nn.Linear(D, D, bias=False)  # (D, D)
        self.k_proj = nn.Linear(D, D, bias=False)  # (D, D)
        self.v_proj = nn.Linear(D, D, bias=False)  # (D, D)
        self.o_proj = nn.Linear(D, D, bias=False)  # (D, D)

    def forward(self, x: Tensor) -> Tensor:
        B, T, D = x.size()
        nh, hs = self.n_heads, D // self.n_heads
        q = self.q_proj(x).view(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = self.k_proj(x).view(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        v = self.v_proj(x).view(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        q, k = apply_rotary(q, self.theta), apply_rotary(k, self.theta)  # (B, nh, T, hs) each
        y = scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, nh, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, D)  # (B, T, D)
        return self.o_proj(y)  # (B, T, D)


class LlamaMLP(nn.Module):
    """SwiGLU feed-forward: down(silu(gate(x)) · up(x)), D → F → D with three matrices."""

    def __init__(self, config: LlamaConfig) -> None:
        super().__init__()
        D, Fh = config.dim, config.intermediate_size
        self.gate_proj = nn.Linear(D, Fh, bias=False)  # (F, D)  (Meta: w1)
        self.up_proj = nn.Linear(D, Fh, bias=False)  # (F, D)    (Meta: w3)
        self.down_proj = nn.Linear(Fh, D, bias=False)  # (D, F)  (Meta: w2)

    def forward(self, x: Tensor) -> Tensor:
        h = F.silu(self.gate_proj(x)) * self.up_proj(x)  # (B, T, F)
        return self.down_proj(h)  # (B, T, D)


class LlamaBlock(nn.Module):
    """x + attn(rmsnorm(x)), then x + mlp(rmsnorm(x))."""

    def __init__(self, config: LlamaConfig) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(config.dim, config.norm_eps)  # (D,)
        self.self_attn = LlamaAttention(config)
        self.post_attention_layernorm = RMSNorm(config.dim, config.norm_eps)  # (D,)
        self.mlp = LlamaMLP(config)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.self_attn(self.input_layernorm(x))  # (B, T, D)
        x = x + self.mlp(self.post_attention_layernorm(x))  # (B, T, D)
        return x


class Llama(nn.Module):
    """Llama language model: token ids (B, T) → logits (B, T, V).

    Build Llama-2-7B without allocating 27 GB: ``with torch.device("meta"): Llama(LlamaConfig())``.
    """

    def __init__(self, config: Optional[LlamaConfig] = None) -> None:
        super().__init__()
        self.config = config = config or LlamaConfig()
        self.model = nn.Module()
        self.model.embed_tokens = nn.Embedding(config.vocab_size, config.dim)  # (V, D)
        self.model.layers = nn.ModuleList([LlamaBlock(config) for _ in range(config.n_layers)])
        self.model.norm = RMSNorm(config.dim, config.norm_eps)  # (D,)
        self.lm_head = nn.Linear(config.dim, config.vocab_size, bias=False)  # (V, D)
        if config.tie_weights:
            self.lm_head.weight = self.model.embed_tokens.weight

    def forward(self, idx: Tensor) -> Tensor:
        """idx (B, T) int64 → logits (B, T, V)."""
        x = self.model.embed_tokens(idx)  # (B, T, D)
        for layer in self.model.layers:
            x = layer(x)  # (B, T, D)
        x = self.model.norm(x)  # (B, T, D)
        return self.lm_head(x)  # (B, T, V)
