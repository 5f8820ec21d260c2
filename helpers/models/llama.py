"""A Llama-family decoder-only transformer (RMSNorm, RoPE, grouped-query attention, SwiGLU or MoE).

Glossary of dimension letters:
    B   batch size
    T   sequence length
    D   dim (d_model, Hugging Face's hidden_size), the width of the residual stream
    nh  n_heads, number of query heads (h)
    nkv n_kv_heads, number of key/value heads (g; nh % nkv == 0): MHA nkv = nh, MQA nkv = 1
    hs  head_dim (d) = D // nh unless set explicitly (Llama-3.2-1B: 64 = 2048 // 32)
    F   ffn hidden size (intermediate_size)
    V   vocab_size
    E   num_local_experts (1: a dense MLP), k num_experts_per_tok

Mirrors Meta's reference implementation (https://github.com/meta-llama/llama3, ``llama/model.py``:
``RMSNorm``, ``Attention`` with wq/wk/wv/wo and ``n_kv_heads``, ``FeedForward`` with w1/w2/w3,
``TransformerBlock``, ``Transformer``) and Hugging Face ``transformers.LlamaForCausalLM`` whose
parameter NAMES we use (``model.embed_tokens``, ``layers.i.self_attn.{q,k,v,o}_proj``,
``mlp.{gate,up,down}_proj``, ``input_layernorm``, ``post_attention_layernorm``, ``model.norm``,
``lm_head``), so ``ours.load_state_dict(hf.state_dict())`` copies a Hugging Face Llama's weights
and the logits match. With ``num_local_experts > 1`` each block's MLP is a
`helpers.models.moe.SparseMoE` of SwiGLU experts, as in ``MixtralForCausalLM`` (Mixtral is the
Mistral architecture, i.e. this one, with MoE). The defaults are Llama-2-7B (Touvron et al.,
2023): V = 32000, D = 4096, 32 layers, 32 heads (no GQA), F = 11008, no biases, an untied
lm_head — 6,738,415,616 parameters.
Rotary position embeddings (Su et al., 2021, arXiv:2104.09864) have no parameters: the cos/sin
tables are computed in ``forward`` from the positions (not even a buffer: Hugging Face keeps
``inv_freq`` as a non-persistent buffer), so the model builds and runs on the ``meta`` device.

Deviations: no KV cache, no attention/MLP biases (Llama has none), no weight init beyond torch's
defaults (skipped entirely on ``meta``), only the default RoPE (no "llama3" frequency scaling,
which changes no parameter count), MoE experts as a ModuleList rather than Hugging Face's fused
3-D tensors. Attention goes through `helpers.models.attention.scaled_dot_product_attention`
(``enable_gqa=True``) inside a `ScaledDotProductAttention` module, so `summary` shows q
(B, nh, T, hs) and k/v (B, nkv, T, hs). Rotary uses the "rotate half" layout of Hugging Face
(Meta's code rotates interleaved pairs; same parameter count).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from helpers.models.attention import ScaledDotProductAttention
from helpers.models.moe import SparseMoE

__all__ = ["LlamaConfig", "Llama", "RMSNorm", "LlamaAttention", "LlamaMLP", "LlamaBlock", "apply_rotary",
           "llama_intermediate_size"]


def llama_intermediate_size(dim: int, multiple_of: int = 256, ffn_dim_multiplier: Optional[float] = None) -> int:
    """Meta's SwiGLU hidden size F for a model of width `dim` (``FeedForward.__init__`` in llama/model.py).

    Start from the GELU MLP's 4·dim, take 2/3 of it (three matrices instead of two, so 3·dim·F ≈
    8·dim², the same as 2·dim·4dim; Shazeer 2020, arXiv:2002.05202 §2), scale by
    ``ffn_dim_multiplier`` if given, and round UP to a multiple of ``multiple_of``::

        F = multiple_of · ⌈ int(ffn_dim_multiplier · int(2·4·dim / 3)) / multiple_of ⌉

    `multiple_of` and `ffn_dim_multiplier` are the ``params.json`` fields of Meta's checkpoints.
    """
    hidden = int(2 * (4 * dim) / 3)
    if ffn_dim_multiplier is not None:
        hidden = int(ffn_dim_multiplier * hidden)
    return multiple_of * ((hidden + multiple_of - 1) // multiple_of)


@dataclass
class LlamaConfig:
    """Hyper-parameters of a Llama; the defaults are Llama-2-7B.

    Field names follow Meta's reference code; `from_hf` / `hf_fields` translate to and from
    Hugging Face's config names (hidden_size, num_hidden_layers, num_key_value_heads, …).
    """

    vocab_size: int = 32000  # V (SentencePiece)
    dim: int = 4096  # D
    n_layers: int = 32
    n_heads: int = 32  # nh
    intermediate_size: int = 11008  # F, the SwiGLU hidden size
    max_seq_len: int = 4096
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    tie_weights: bool = False  # Llama-2: untied lm_head
    n_kv_heads: Optional[int] = None  # nkv; None: = n_heads (Llama-2-7B). Llama-3: 8
    head_dim: Optional[int] = None  # hs; None: dim // n_heads
    num_local_experts: int = 1  # E; 1: a dense SwiGLU MLP, > 1: a sparse MoE (Mixtral: 8)
    num_experts_per_tok: int = 1  # k (Mixtral: 2)

    def __post_init__(self) -> None:
        nh, nkv = self.n_heads, self.kv_heads
        if self.head_dim is None and self.dim % nh:
            raise ValueError(f"dim={self.dim} is not divisible by n_heads={nh}; set head_dim explicitly")
        if nh % nkv:
            raise ValueError(f"n_heads={nh} must be a multiple of n_kv_heads={nkv}: each key/value head "
                             f"serves a whole group of query heads")
        if self.hs % 2:
            raise ValueError(f"head_dim={self.hs} is odd: rotary embeddings rotate features in pairs")
        if not 1 <= self.num_experts_per_tok <= self.num_local_experts:
            raise ValueError(f"num_experts_per_tok={self.num_experts_per_tok} must be between 1 and "
                             f"num_local_experts={self.num_local_experts}")

    @property
    def kv_heads(self) -> int:
        """nkv, the number of key/value heads."""
        return self.n_heads if self.n_kv_heads is None else self.n_kv_heads

    @property
    def hs(self) -> int:
        """head_dim, explicit or D // nh."""
        return self.dim // self.n_heads if self.head_dim is None else self.head_dim

    @classmethod
    def from_hf(cls, config: Any) -> "LlamaConfig":
        """From a Hugging Face ``LlamaConfig`` / ``MistralConfig`` / ``MixtralConfig`` (or a dict)."""
        get = config.get if isinstance(config, dict) else lambda k, d=None: getattr(config, k, d)
        rope = get("rope_parameters") or {}
        return cls(vocab_size=get("vocab_size"), dim=get("hidden_size"), n_layers=get("num_hidden_layers"),
                   n_heads=get("num_attention_heads"), intermediate_size=get("intermediate_size"),
                   max_seq_len=get("max_position_embeddings", 4096), norm_eps=get("rms_norm_eps", 1e-6),
                   rope_theta=rope.get("rope_theta", get("rope_theta", 10000.0)),
                   tie_weights=bool(get("tie_word_embeddings", False)), n_kv_heads=get("num_key_value_heads"),
                   head_dim=get("head_dim"), num_local_experts=get("num_local_experts", 1),
                   num_experts_per_tok=get("num_experts_per_tok", 1) if get("num_local_experts", 1) > 1 else 1)

    def hf_fields(self) -> dict[str, Any]:
        """The architecture in Hugging Face's config names: ``decoder_lm_params(**cfg.hf_fields())``."""
        return dict(vocab_size=self.vocab_size, hidden_size=self.dim, intermediate_size=self.intermediate_size,
                    num_hidden_layers=self.n_layers, num_attention_heads=self.n_heads,
                    num_key_value_heads=self.kv_heads, head_dim=self.hs, tie_word_embeddings=self.tie_weights,
                    num_local_experts=self.num_local_experts, num_experts_per_tok=self.num_experts_per_tok)


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
    """Causal grouped-query self-attention with rotary positions and no biases: (B, T, D) → (B, T, D).

    q_proj (nh·hs, D), k_proj and v_proj (nkv·hs, D), o_proj (D, nh·hs): with nkv < nh the key and
    value projections shrink by nh/nkv (and so does the KV cache); each group of nh/nkv query
    heads shares one key/value head (Ainslie et al. 2023, GQA, arXiv:2305.13245; nkv = 1 is MQA,
    Shazeer 2019, arXiv:1911.02150). Parameters: ``2·D·nh·hs + 2·D·nkv·hs``.
    """

    def __init__(self, config: LlamaConfig) -> None:
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = config.n_heads, config.kv_heads, config.hs
        self.theta = config.rope_theta
        D, nh, nkv, hs = config.dim, self.n_heads, self.n_kv_heads, self.head_dim
        self.q_proj = nn.Linear(D, nh * hs, bias=False)  # (nh·hs, D)
        self.k_proj = nn.Linear(D, nkv * hs, bias=False)  # (nkv·hs, D)
        self.v_proj = nn.Linear(D, nkv * hs, bias=False)  # (nkv·hs, D)
        self.o_proj = nn.Linear(nh * hs, D, bias=False)  # (D, nh·hs)
        self.attn = ScaledDotProductAttention(is_causal=True, enable_gqa=True)  # no parameters

    def forward(self, x: Tensor) -> Tensor:
        B, T, D = x.size()
        nh, nkv, hs = self.n_heads, self.n_kv_heads, self.head_dim
        q = self.q_proj(x).view(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = self.k_proj(x).view(B, T, nkv, hs).transpose(1, 2)  # (B, nkv, T, hs)
        v = self.v_proj(x).view(B, T, nkv, hs).transpose(1, 2)  # (B, nkv, T, hs)
        q, k = apply_rotary(q, self.theta), apply_rotary(k, self.theta)  # (B, nh, T, hs), (B, nkv, T, hs)
        y = self.attn(q, k, v)  # (B, nh, T, hs): query head i reads kv head i // (nh/nkv)
        y = y.transpose(1, 2).reshape(B, T, nh * hs)  # (B, T, nh·hs)
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
    """x + attn(rmsnorm(x)), then x + mlp(rmsnorm(x)) (mlp: SwiGLU, or a sparse MoE of SwiGLUs)."""

    def __init__(self, config: LlamaConfig) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(config.dim, config.norm_eps)  # (D,)
        self.self_attn = LlamaAttention(config)
        self.post_attention_layernorm = RMSNorm(config.dim, config.norm_eps)  # (D,)
        if config.num_local_experts > 1:  # Mixtral: E SwiGLU experts, k per token, a router (E, D)
            self.mlp: nn.Module = SparseMoE(config.dim, config.num_local_experts, config.num_experts_per_tok,
                                            lambda: LlamaMLP(config))
        else:
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
