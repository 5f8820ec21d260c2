"""BERT (encoder-only transformer) built from plain torch modules, from a config.

Glossary of dimension letters:
    B   batch size
    T   sequence length (T <= max_position_embeddings)
    D   hidden_size (d_model)
    h   num_attention_heads; head size D / h
    F   intermediate_size (the FFN hidden width, 4·D)
    V   vocab_size (WordPiece)

Mirrors Devlin et al. (2019), "BERT", and Hugging Face ``transformers.BertModel``: word, position
and token-type embeddings summed and LayerNorm-ed, ``num_hidden_layers`` post-LN encoder layers
(self-attention with biases → add & LayerNorm → FFN D → F → D with GELU → add & LayerNorm),
and a pooler ``tanh(Linear(D, D))`` on the first ([CLS]) token. The defaults are BERT-base
(uncased): V = 30522, D = 768, 12 layers, 12 heads, F = 3072, 512 positions, 2 token types —
109,482,240 parameters, the count of HF ``BertModel`` for ``bert-base-uncased``.

Deviations: each encoder layer is PyTorch's ``nn.TransformerEncoderLayer`` (same tensors and
count as HF's BertLayer, different names: ``self_attn.in_proj_weight`` packs HF's query/key/value);
no pre-training heads (masked-LM / next-sentence), no attention-mask plumbing beyond
``src_key_padding_mask``; dropout defaults to 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor, nn

__all__ = ["BertConfig", "Bert"]


@dataclass
class BertConfig:
    """Hyper-parameters of BERT; the defaults are BERT-base."""

    vocab_size: int = 30522
    hidden_size: int = 768  # D
    num_hidden_layers: int = 12
    num_attention_heads: int = 12  # h
    intermediate_size: int = 3072  # F
    max_position_embeddings: int = 512
    type_vocab_size: int = 2  # sentence A / sentence B
    layer_norm_eps: float = 1e-12
    dropout: float = 0.0
    add_pooler: bool = True


class Bert(nn.Module):
    """BERT encoder: token ids (B, T) → hidden states (B, T, D) and pooled [CLS] vector (B, D).

    Build BERT-base without memory: ``with torch.device("meta"): Bert(BertConfig())``.
    """

    def __init__(self, config: Optional[BertConfig] = None) -> None:
        super().__init__()
        self.config = c = config or BertConfig()
        self.word_embeddings = nn.Embedding(c.vocab_size, c.hidden_size)  # (V, D)
        self.position_embeddings = nn.Embedding(c.max_position_embeddings, c.hidden_size)  # (512, D)
        self.token_type_embeddings = nn.Embedding(c.type_vocab_size, c.hidden_size)  # (2, D)
        self.embeddings_norm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)  # 2D
        layer = nn.TransformerEncoderLayer(c.hidden_size, c.num_attention_heads, c.intermediate_size,
                                           dropout=c.dropout, activation="gelu", layer_norm_eps=c.layer_norm_eps,
                                           batch_first=True, norm_first=False)
        self.encoder = nn.TransformerEncoder(layer, c.num_hidden_layers, enable_nested_tensor=False)
        self.pooler = nn.Linear(c.hidden_size, c.hidden_size) if c.add_pooler else None  # (D, D) + D

    def forward(self, input_ids: Tensor, token_type_ids: Optional[Tensor] = None,
                padding_mask: Optional[Tensor] = None) -> tuple[Tensor, Optional[Tensor]]:
        """input_ids (B, T) → (hidden (B, T, D), pooled (B, D) or None). padding_mask: (B, T), True = pad."""
        B, T = input_ids.shape
        pos = torch.arange(T, device=input_ids.device)  # (T,)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)  # (B, T), all sentence A
        x = (self.word_embeddings(input_ids)  # (B, T, D)
             + self.position_embeddings(pos)  # (T, D), broadcast over B
             + self.token_type_embeddings(token_type_ids))  # (B, T, D)
        x = self.embeddings_norm(x)  # (B, T, D)
        x = self.encoder(x, src_key_padding_mask=padding_mask)  # (B, T, D)
        pooled = torch.tanh(self.pooler(x[:, 0])) if self.pooler is not None else None  # (B, D)
        return x, pooled
