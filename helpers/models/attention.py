"""Scaled dot-product attention and multi-head attention, written out with every shape.

Glossary of dimension letters (nanoGPT / mamba-minimal style):
    B   batch size
    T   target (query) sequence length
    S   source (key/value) sequence length (S == T for self-attention)
    E   embed_dim (= d_model), the width of the residual stream
    h   num_heads (nh in GPT code)
    d_k head_dim = E // h (hs in GPT code), the width of one head
    kdim, vdim  feature sizes of key and value inputs (default E)

`scaled_dot_product_attention` is the single definition of attention used by the course's
models (`MultiHeadAttention` here, `CausalSelfAttention` in `helpers.models.gpt`,
`LlamaAttention` in `helpers.models.llama`, through the parameter-free module
`ScaledDotProductAttention`, which makes the q/k/v shapes visible in `summary`). It computes

    Attention(Q, K, V) = softmax(Q Kᵀ / √d_k + mask) V          (Vaswani et al., 2017, eq. 1)

with plain matmuls so that every intermediate (the (B, h, T, S) score matrix in particular)
is visible, and so it runs on the ``meta`` device for shape tracing. Semantics follow
``torch.nn.functional.scaled_dot_product_attention`` (boolean masks: True = *may attend*;
float masks are added to the scores). With ``enable_gqa=True`` (grouped-query attention,
Ainslie et al. 2023, arXiv:2305.13245) k and v may have fewer heads g than q's h (h % g == 0):
query head i reads key/value head ``i // (h/g)``, exactly as torch's ``enable_gqa`` and Hugging
Face's ``repeat_kv`` do (see `repeat_kv`).

`MultiHeadAttention` mirrors ``torch.nn.MultiheadAttention`` (torch/nn/modules/activation.py
and ``F.multi_head_attention_forward``): the SAME parameter names and shapes —
``in_proj_weight`` (3E, E) when kdim == vdim == E, otherwise ``q_proj_weight`` (E, E),
``k_proj_weight`` (E, kdim), ``v_proj_weight`` (E, vdim); ``in_proj_bias`` (3E,);
``bias_k``/``bias_v`` (1, 1, E); ``out_proj`` Linear(E, E) — so
``mha.load_state_dict(torch_mha.state_dict())`` copies weights and the outputs match.
Deviations: dropout on the attention weights is applied only in training mode as in torch,
but the from-scratch module always uses the explicit-matmul path (no fused kernels), and
``key_padding_mask`` / ``attn_mask`` accept bool or float masks like torch (True = *masked*,
torch's MHA convention, which is the opposite of F.scaled_dot_product_attention's).
``is_causal`` is only a hint, as in torch: `attn_mask` must be given and is what is applied.
(torch itself, when is_causal=True, need_weights=False and add_bias_kv / add_zero_attn are set,
replaces the mask by a causal mask over S+1 keys that hides the extra key — its two code paths
then disagree; the from-scratch module always applies the given mask.)
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["scaled_dot_product_attention", "repeat_kv", "ScaledDotProductAttention", "MultiHeadAttention"]


def repeat_kv(x: Tensor, n_rep: int) -> Tensor:
    """(B, g, S, d) keys or values → (B, g·n_rep, S, d): each kv head repeated for its n_rep query heads.

    Same as ``x.repeat_interleave(n_rep, dim=-3)`` and Hugging Face's ``repeat_kv``: head j of
    the result is kv head ``j // n_rep``. A view (expand) until the final reshape copies it.
    """
    if n_rep == 1:
        return x
    *lead, g, S, d = x.shape
    x = x.unsqueeze(-3).expand(*lead, g, n_rep, S, d)  # (B, g, n_rep, S, d)
    return x.reshape(*lead, g * n_rep, S, d)  # (B, g·n_rep, S, d)


def scaled_dot_product_attention(q: Tensor, k: Tensor, v: Tensor, attn_mask: Optional[Tensor] = None,
                                 dropout_p: float = 0.0, is_causal: bool = False,
                                 scale: Optional[float] = None, enable_gqa: bool = False, *,
                                 need_weights: bool = False,
                                 ) -> Tensor | tuple[Tensor, Tensor]:
    """softmax(q kᵀ · scale + mask) v, the same contract as ``F.scaled_dot_product_attention``.

    Args:
        q: (B, h, T, d_k) queries (any number of leading dims works: (..., T, d_k)).
        k: (B, h, S, d_k) keys.
        v: (B, h, S, d_v) values.
        attn_mask: broadcastable to (B, h, T, S); bool (True = may attend) or float (added).
        dropout_p: dropout probability on the attention weights (use 0.0 in eval).
        is_causal: mask out keys in the future (query i attends to keys j <= i).
        scale: defaults to 1/√d_k.
        enable_gqa: k and v have g heads, (B, g, S, ·), with h % g == 0 (grouped-query attention;
            g = 1 is multi-query attention): each kv head serves h/g consecutive query heads.
        need_weights: also return the attention weights.

    Returns:
        (B, h, T, d_v) outputs, and the (B, h, T, S) weights if `need_weights`.
    """
    if enable_gqa and q.dim() >= 3 and k.size(-3) != q.size(-3):
        h, g = q.size(-3), k.size(-3)
        if h % g or v.size(-3) != g:
            raise ValueError(f"grouped-query attention needs the {h} query heads to be a multiple of the "
                             f"key/value heads, got k {k.size(-3)} and v {v.size(-3)} heads")
        k, v = repeat_kv(k, h // g), repeat_kv(v, h // g)  # (B, h, S, d_k), (B, h, S, d_v)
    T, S, d_k = q.size(-2), k.size(-2), q.size(-1)
    scale = 1.0 / math.sqrt(d_k) if scale is None else scale
    att = (q @ k.transpose(-2, -1)) * scale  # (B, h, T, d_k) @ (B, h, d_k, S) -> (B, h, T, S)
    if is_causal:
        causal = torch.ones(T, S, dtype=torch.bool, device=q.device).tril()  # (T, S)
        att = att.masked_fill(~causal, float("-inf"))  # (B, h, T, S)
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            att = att.masked_fill(~attn_mask, float("-inf"))  # (B, h, T, S)
        else:
            att = att + attn_mask  # (B, h, T, S)
    att = F.softmax(att, dim=-1)  # (B, h, T, S), each row sums to 1
    if dropout_p > 0.0:
        att = F.dropout(att, p=dropout_p)  # (B, h, T, S)
    y = att @ v  # (B, h, T, S) @ (B, h, S, d_v) -> (B, h, T, d_v)
    return (y, att) if need_weights else y


class ScaledDotProductAttention(nn.Module):
    """`scaled_dot_product_attention` as a parameter-free module, so `summary` shows its shapes.

    forward(q (B, h, T, d), k (B, g, S, d), v (B, g, S, d_v)) → (B, h, T, d_v), causal or not,
    grouped-query when ``enable_gqa`` (g divides h). No parameters, no buffers.
    """

    def __init__(self, is_causal: bool = False, enable_gqa: bool = False) -> None:
        super().__init__()
        self.is_causal, self.enable_gqa = is_causal, enable_gqa

    def forward(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        return scaled_dot_product_attention(q, k, v, is_causal=self.is_causal,
                                            enable_gqa=self.enable_gqa)  # (B, h, T, d_v)

    def extra_repr(self) -> str:
        return f"is_causal={self.is_causal}, enable_gqa={self.enable_gqa}"


class MultiHeadAttention(nn.Module):
    """Multi-head attention from scratch with ``nn.MultiheadAttention``'s parameter layout.

    Args (as torch): embed_dim E, num_heads h, dropout, bias, add_bias_kv, add_zero_attn,
        kdim, vdim, batch_first.

    Forward (batch_first=True): query (B, T, E), key (B, S, kdim), value (B, S, vdim) →
    output (B, T, E) and, if need_weights, weights (B, T, S) (averaged over heads when
    average_attn_weights, else (B, h, T, S)). With batch_first=False the sequence dimension
    comes first, as in torch: (T, B, E).
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim: Optional[int] = None,
                 vdim: Optional[int] = None, batch_first: bool = False, device=None, dtype=None) -> None:
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"embed_dim and num_heads must be positive, got {embed_dim} and {num_heads}")
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim must be divisible by num_heads: {embed_dim} features cannot "
                             f"be split into {num_heads} heads of equal size")
        kw = {"device": device, "dtype": dtype}
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.head_dim = embed_dim // num_heads
        self.kdim = embed_dim if kdim is None else kdim
        self.vdim = embed_dim if vdim is None else vdim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.dropout, self.batch_first, self.add_zero_attn = dropout, batch_first, add_zero_attn
        E = embed_dim
        if self._qkv_same_embed_dim:
            self.in_proj_weight = nn.Parameter(torch.empty(3 * E, E, **kw))  # (3E, E): Wq; Wk; Wv
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.q_proj_weight = nn.Parameter(torch.empty(E, E, **kw))  # (E, E)
            self.k_proj_weight = nn.Parameter(torch.empty(E, self.kdim, **kw))  # (E, kdim)
            self.v_proj_weight = nn.Parameter(torch.empty(E, self.vdim, **kw))  # (E, vdim)
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = nn.Parameter(torch.empty(3 * E, **kw))  # (3E,)
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = nn.Linear(E, E, bias=bias, **kw)  # (E, E) + (E,)
        if add_bias_kv:
            self.bias_k = nn.Parameter(torch.empty(1, 1, E, **kw))  # (1, 1, E)
            self.bias_v = nn.Parameter(torch.empty(1, 1, E, **kw))  # (1, 1, E)
        else:
            self.bias_k = self.bias_v = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Same initialisation scheme as torch (xavier-uniform projections, zero biases)."""
        if any(p.is_meta for p in self.parameters()):
            return  # nothing to initialise on the meta device
        for w in (self.in_proj_weight, self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
            if w is not None:
                nn.init.xavier_uniform_(w)
        if self.in_proj_bias is not None:
            nn.init.zeros_(self.in_proj_bias)
            nn.init.zeros_(self.out_proj.bias)
        for b in (self.bias_k, self.bias_v):
            if b is not None:
                nn.init.xavier_normal_(b)

    @torch.no_grad()
    def copy_from(self, other: nn.MultiheadAttention) -> "MultiHeadAttention":
        """Copy every weight from a ``torch.nn.MultiheadAttention`` of the same configuration."""
        self.load_state_dict(other.state_dict())
        return self

    @classmethod
    def from_torch(cls, other: nn.MultiheadAttention) -> "MultiHeadAttention":
        """A from-scratch twin of `other` (same config, copied weights)."""
        p = next(other.parameters())
        mha = cls(other.embed_dim, other.num_heads, dropout=other.dropout,
                  bias=other.in_proj_bias is not None, add_bias_kv=other.bias_k is not None,
                  add_zero_attn=other.add_zero_attn, kdim=other.kdim, vdim=other.vdim,
                  batch_first=other.batch_first, device=p.device, dtype=p.dtype)
        return mha.copy_from(other)

    def _projection_weights(self) -> tuple[Tensor, Tensor, Tensor]:
        if self._qkv_same_embed_dim:
            return self.in_proj_weight.chunk(3, dim=0)  # 3 × (E, E)
        return self.q_proj_weight, self.k_proj_weight, self.v_proj_weight

    def forward(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask: Optional[Tensor] = None,
                need_weights: bool = True, attn_mask: Optional[Tensor] = None,
                average_attn_weights: bool = True, is_causal: bool = False,
                ) -> tuple[Tensor, Optional[Tensor]]:
        """query (B, T, E), key (B, S, kdim), value (B, S, vdim) (batch_first) → ((B, T, E), weights).

        attn_mask: (T, S) or (B·h, T, S), bool (True = NOT allowed) or float (added).
        key_padding_mask: (B, S), bool (True = padding, ignored) or float (added).
        is_causal: as in torch, only a hint that `attn_mask` is the causal mask (it must be given).
        """
        if is_causal and attn_mask is None:
            raise RuntimeError("Need attn_mask if specifying the is_causal hint (build it with "
                               "nn.Transformer.generate_square_subsequent_mask(T)), as torch requires.")
        batched = query.dim() == 3
        if not batched:  # unbatched: (T, E) -> (1, T, E)
            query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)  # (1, T, E)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)  # (1, S)
        elif not self.batch_first:
            query, key, value = (x.transpose(0, 1) for x in (query, key, value))  # (T, B, E) -> (B, T, E)
        B, T, E = query.shape
        h, d_k = self.num_heads, self.head_dim

        w_q, w_k, w_v = self._projection_weights()  # (E, E), (E, kdim), (E, vdim)
        b_q = b_k = b_v = None
        if self.in_proj_bias is not None:
            b_q, b_k, b_v = self.in_proj_bias.chunk(3)  # 3 × (E,)
        q = F.linear(query, w_q, b_q)  # (B, T, E)
        k = F.linear(key, w_k, b_k)  # (B, S, E)
        v = F.linear(value, w_v, b_v)  # (B, S, E)

        mask = self._merge_masks(attn_mask, key_padding_mask, B, T, key.size(1), q)  # (B, h, T, S)
        if self.bias_k is not None:  # one learned extra key/value position at the end
            k = torch.cat([k, self.bias_k.expand(B, 1, E)], dim=1)  # (B, S+1, E)
            v = torch.cat([v, self.bias_v.expand(B, 1, E)], dim=1)  # (B, S+1, E)
            if mask is not None:
                mask = F.pad(mask, (0, 1))  # (B, h, T, S+1), the new key is visible
        if self.add_zero_attn:  # one extra all-zero key/value position
            k = torch.cat([k, k.new_zeros(B, 1, E)], dim=1)  # (B, S+1, E)
            v = torch.cat([v, v.new_zeros(B, 1, E)], dim=1)  # (B, S+1, E)
            if mask is not None:
                mask = F.pad(mask, (0, 1))  # (B, h, T, S+1)
        S = k.size(1)

        q = q.view(B, T, h, d_k).transpose(1, 2)  # (B, h, T, d_k)
        k = k.view(B, S, h, d_k).transpose(1, 2)  # (B, h, S, d_k)
        v = v.view(B, S, h, d_k).transpose(1, 2)  # (B, h, S, d_k)
        y, att = scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                              dropout_p=self.dropout if self.training else 0.0,
                                              need_weights=True)  # (B, h, T, d_k), (B, h, T, S)
        y = y.transpose(1, 2).reshape(B, T, E)  # (B, T, h, d_k) -> (B, T, E): heads side by side
        y = self.out_proj(y)  # (B, T, E)

        if not batched:
            y = y.squeeze(0)  # (T, E)
        elif not self.batch_first:
            y = y.transpose(0, 1)  # (T, B, E)
        if not need_weights:
            return y, None
        weights = att.mean(dim=1) if average_attn_weights else att  # (B, T, S) or (B, h, T, S)
        if not batched:
            weights = weights.squeeze(0)  # (T, S) or (h, T, S)
        return y, weights

    def _merge_masks(self, attn_mask: Optional[Tensor], key_padding_mask: Optional[Tensor],
                     B: int, T: int, S: int, like: Tensor) -> Optional[Tensor]:
        """Combine torch-MHA-style masks into one additive float mask (B, h, T, S), or None."""
        h = self.num_heads

        def additive(m: Tensor) -> Tensor:  # True = masked → -inf; float masks are added as given
            if m.dtype == torch.bool:
                return torch.zeros(m.shape, dtype=like.dtype, device=like.device).masked_fill(m, float("-inf"))
            return m.to(like.dtype)

        mask = None
        if attn_mask is not None:
            m = additive(attn_mask)
            mask = m.view(1, 1, T, S) if m.dim() == 2 else m.view(B, h, T, S)  # (B or 1, h or 1, T, S)
        if key_padding_mask is not None:
            kpm = additive(key_padding_mask).view(B, 1, 1, S)  # (B, 1, 1, S)
            mask = kpm if mask is None else mask + kpm  # (B, h, T, S) by broadcasting
        return mask
