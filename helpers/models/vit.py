"""Vision Transformer (ViT): an image cut into patches, the patches treated as tokens.

Glossary of dimension letters (used in the shape comments below):
    B      batch size
    C      image channels (3)
    H, W   image height and width (= image_size; the position table fixes it)
    p      patch_size (16 for ViT-B/16)
    N      number of patches = (H // p) · (W // p)  (196 at 224², p = 16)
    T      tokens = N + 1 (the learned [CLS] token in front): 197 at 224²
    D      hidden_dim, the width of every token (768 for ViT-B)
    h      num_heads; head size D / h
    F      mlp_dim, the hidden width of each MLP (3072 = 4D for ViT-B)
    K      classes (num_classes)

Shapes through ViT-B/16 at 224²::

    (B, 3, 224, 224) → conv_proj Conv2d(3, 768, kernel_size=16, stride=16) → (B, 768, 14, 14)
    → flatten + transpose (B, 196, 768) → prepend [CLS] (B, 197, 768) → + pos_embedding (1, 197, 768)
    → 12 pre-LN encoder blocks (B, 197, 768) → LayerNorm → [CLS] token (B, 768) → head (B, K)

What it mirrors:
    A. Dosovitskiy et al., "An Image is Worth 16x16 Words: Transformers for Image Recognition at
    Scale", ICLR 2021, arXiv:2010.11929 — §3.1 and eq. 1–4 (patch embedding, [CLS] token,
    learned 1-D position embeddings, pre-LN blocks of multi-head self-attention and a GELU MLP,
    LayerNorm on the [CLS] output), Table 1 (ViT-Base: 12 layers, D = 768, F = 3072, 12 heads,
    "86M"). The reference implementation is torchvision's
    ``torchvision/models/vision_transformer.py`` (``VisionTransformer``, ``Encoder``,
    ``EncoderBlock`` — here ``ViTEncoderBlock`` — and ``vit_b_16``): same parameter names and
    shapes, so ``state_dict()`` keys are torchvision's.
    Its published count (``ViT_B_16_Weights.IMAGENET1K_V1``): 86,567,656.

Deviations:
    * Attention is the course's single from-scratch `helpers.models.attention.MultiHeadAttention`
      (``nn.MultiheadAttention``'s tensors: a packed ``in_proj_weight`` (3D, D)), so the T × T
      score matrix is a visible matmul and FLOP counters see it.
    * The patch embedding is the convolution the paper describes as a linear map of flattened
      p × p × C patches: ``Conv2d(C, D, kernel_size=p, stride=p)`` is exactly that linear map.
    * No ``representation_size`` pre-logits layer, no ``conv_stem_configs``; a wrong image size
      raises ValueError (torchvision asserts).

`vit_macs` / `vit_macs_breakdown` are pure arithmetic (no module is built): the multiply-accumulates
of one image, equal to what ``FlopCounterMode`` counts for `VisionTransformer` (tests/test_models_mobilenet_vit.py).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from helpers.models.attention import MultiHeadAttention

__all__ = ["ViTEncoderBlock", "VisionTransformer", "vit_b_16", "vit_macs_breakdown", "vit_macs"]


class ViTEncoderBlock(nn.Module):
    """Pre-LN transformer block: x + attn(ln_1(x)), then x + mlp(ln_2(x)).

    Shapes: (B, T, D) → (B, T, D).
    Parameters: 4D² + 4D (q, k, v, out projections with biases) + 2·D·F + F + D (MLP)
    + 4D (two LayerNorms) = 4D² + 2DF + 9D + F.
    """

    def __init__(self, num_heads: int, hidden_dim: int, mlp_dim: int, dropout: float = 0.0,
                 attention_dropout: float = 0.0, eps: float = 1e-6) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(hidden_dim, eps=eps)  # 2D
        self.self_attention = MultiHeadAttention(hidden_dim, num_heads, dropout=attention_dropout,
                                                 batch_first=True)  # 4D² + 4D
        self.dropout = nn.Dropout(dropout)
        self.ln_2 = nn.LayerNorm(hidden_dim, eps=eps)  # 2D
        self.mlp = nn.Sequential(nn.Linear(hidden_dim, mlp_dim), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(mlp_dim, hidden_dim), nn.Dropout(dropout))  # 2DF + F + D

    def forward(self, x: Tensor) -> Tensor:
        y = self.ln_1(x)  # (B, T, D)
        y, _ = self.self_attention(y, y, y, need_weights=False)  # (B, T, D)
        x = x + self.dropout(y)  # (B, T, D)
        return x + self.mlp(self.ln_2(x))  # (B, T, D)


class _Encoder(nn.Module):
    """Position embeddings, the blocks, a final LayerNorm (torchvision's ``Encoder``)."""

    def __init__(self, seq_length: int, num_layers: int, num_heads: int, hidden_dim: int, mlp_dim: int,
                 dropout: float, attention_dropout: float, eps: float) -> None:
        super().__init__()
        self.pos_embedding = nn.Parameter(torch.empty(1, seq_length, hidden_dim))  # (1, T, D)
        if not self.pos_embedding.is_meta:
            nn.init.normal_(self.pos_embedding, std=0.02)
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.Sequential()
        for i in range(num_layers):
            self.layers.add_module(f"encoder_layer_{i}", ViTEncoderBlock(num_heads, hidden_dim, mlp_dim, dropout,
                                                                       attention_dropout, eps))
        self.ln = nn.LayerNorm(hidden_dim, eps=eps)

    def forward(self, x: Tensor) -> Tensor:
        x = self.dropout(x + self.pos_embedding)  # (B, T, D) + (1, T, D)
        return self.ln(self.layers(x))  # (B, T, D)


class VisionTransformer(nn.Module):
    """ViT for square images of side ``image_size`` cut into ``patch_size``² patches.

    Args:
        image_size: H = W (the position table has (H // p)² + 1 rows, so the size is fixed).
        patch_size: p.
        num_layers, num_heads, hidden_dim (D), mlp_dim (F): the encoder.
        num_classes: K.
        in_channels: C.

    Shapes: (B, C, H, W) → (B, K). Parameters: C·p²·D + D (patch conv) + D ([CLS]) + T·D
    (positions) + num_layers · block + 2D (final LayerNorm) + D·K + K (head).
    """

    def __init__(self, image_size: int, patch_size: int, num_layers: int, num_heads: int, hidden_dim: int,
                 mlp_dim: int, num_classes: int = 1000, *, in_channels: int = 3, dropout: float = 0.0,
                 attention_dropout: float = 0.0, eps: float = 1e-6) -> None:
        super().__init__()
        if not 0 < patch_size <= image_size:
            raise ValueError(f"patch_size must be between 1 and image_size={image_size}, got {patch_size}")
        self.image_size, self.patch_size, self.hidden_dim = image_size, patch_size, hidden_dim
        self.conv_proj = nn.Conv2d(in_channels, hidden_dim, kernel_size=patch_size, stride=patch_size)
        self.seq_length = (image_size // patch_size) ** 2 + 1  # T = N + 1
        self.class_token = nn.Parameter(torch.zeros(1, 1, hidden_dim))  # (1, 1, D)
        self.encoder = _Encoder(self.seq_length, num_layers, num_heads, hidden_dim, mlp_dim, dropout,
                                attention_dropout, eps)
        self.heads = nn.Sequential()
        self.heads.add_module("head", nn.Linear(hidden_dim, num_classes))  # D·K + K

    def patchify(self, x: Tensor) -> Tensor:
        """(B, C, H, W) → (B, N, D): one D-vector per non-overlapping p × p patch."""
        B, C, H, W = x.shape
        if (H, W) != (self.image_size, self.image_size):
            raise ValueError(f"this ViT was built for {self.image_size}×{self.image_size} images "
                             f"(its position table has {self.seq_length} rows), got {H}×{W}")
        n_h, n_w = H // self.patch_size, W // self.patch_size
        x = self.conv_proj(x)  # (B, D, H/p, W/p)
        x = x.reshape(B, self.hidden_dim, n_h * n_w)  # (B, D, N)
        return x.permute(0, 2, 1)  # (B, N, D)

    def forward(self, x: Tensor) -> Tensor:
        x = self.patchify(x)  # (B, N, D)
        cls = self.class_token.expand(x.shape[0], -1, -1)  # (B, 1, D)
        x = torch.cat([cls, x], dim=1)  # (B, T, D)
        x = self.encoder(x)  # (B, T, D)
        return self.heads(x[:, 0])  # (B, D) → (B, K)


def vit_b_16(num_classes: int = 1000, image_size: int = 224) -> VisionTransformer:
    """ViT-B/16 (Table 1 of arXiv:2010.11929): 12 layers, D = 768, 12 heads, F = 3072, p = 16."""
    return VisionTransformer(image_size, 16, 12, 12, 768, 3072, num_classes)


def vit_macs_breakdown(image_size: int, patch_size: int, num_layers: int, hidden_dim: int, mlp_dim: int,
                       num_classes: int = 1000, *, in_channels: int = 3) -> dict[str, int]:
    """Multiply-accumulates of one image through `VisionTransformer`, term by term (pure arithmetic).

    With N = (image_size // p)² patches, T = N + 1 tokens, D = hidden_dim, F = mlp_dim, L = num_layers::

        patch_embedding  N · C·p² · D          (the p×p/stride-p conv: one C·p² → D map per patch)
        linear           L · T · (4D² + 2DF)   (q, k, v, out projections and the MLP, once per token)
        attention        L · 2 · T² · D        (Q Kᵀ and A V over all token pairs: quadratic in T)
        head             D · K                 (the [CLS] token only)

    LayerNorms, GELU, softmax and additions are not multiply-accumulates of a matmul and are not
    counted (as in torch's ``FlopCounterMode``). FLOPs = 2 · MACs.
    """
    for name, value in (("image_size", image_size), ("patch_size", patch_size), ("num_layers", num_layers),
                        ("hidden_dim", hidden_dim), ("mlp_dim", mlp_dim), ("num_classes", num_classes),
                        ("in_channels", in_channels)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if patch_size > image_size:
        raise ValueError(f"patch_size={patch_size} is larger than image_size={image_size}: no patch fits")
    n = (image_size // patch_size) ** 2  # N patches
    t = n + 1  # T tokens with [CLS]
    d, f = hidden_dim, mlp_dim
    return {
        "patch_embedding": n * in_channels * patch_size ** 2 * d,
        "linear": num_layers * t * (4 * d * d + 2 * d * f),
        "attention": num_layers * 2 * t * t * d,
        "head": d * num_classes,
    }


def vit_macs(image_size: int, patch_size: int, num_layers: int, hidden_dim: int, mlp_dim: int,
             num_classes: int = 1000, *, in_channels: int = 3) -> int:
    """Total multiply-accumulates of one image (the sum of `vit_macs_breakdown`).

    ViT-B/16 at 224²: ``vit_macs(224, 16, 12, 768, 3072)`` = 17,563,828,224 (torchvision: 17.564 "GFLOPS").
    """
    return sum(vit_macs_breakdown(image_size, patch_size, num_layers, hidden_dim, mlp_dim, num_classes,
                                  in_channels=in_channels).values())
