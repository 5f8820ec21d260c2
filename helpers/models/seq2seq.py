"""The four classic RNN architectures of chapter 06 as tiny ``nn.LSTM`` models.

Glossary of dimension letters (mamba-minimal style):
    B    batch size
    T    length of the (output or input) sequence; S length of the source sequence (encoder)
    I    input features per time step (or of the single input vector, one-to-many)
    H    hidden_size of the LSTM
    L    num_layers
    D    directions: 2 if bidirectional else 1
    C    output features per prediction (classes, tags, vocabulary size, …)

Which is which (Karpathy, "The Unreasonable Effectiveness of Recurrent Neural Networks", 2015,
fig. "each rectangle is a vector"; Sutskever, Vinyals & Le 2014 for encoder–decoder)::

    OneToManyLSTM          (B, I)               → (B, T, C)   one vector in, a sequence out
                                                              (image → caption, seed → melody)
    ManyToOneLSTM          (B, T, I)            → (B, C)      a sequence in, one vector out
                                                              (sentiment, spam detection)
    AlignedManyToManyLSTM  (B, T, I)            → (B, T, C)   one output per input step
                                                              (part-of-speech tagging, frame labels)
    EncoderDecoderLSTM     (B, S, I), (B, T, C) → (B, T, C)   a sequence in, a sequence of a
                                                              DIFFERENT length out (translation)

All use ``batch_first=True``. Deviations from the textbook pictures, chosen so every model is a
single pass through each ``nn.LSTM`` (so a shape trace shows one row per layer):

* one-to-many repeats the input vector at every step ("RepeatVector"); a captioning model
  would instead feed back its own previous output (autoregressive decoding, a Python loop);
* the encoder–decoder is shown in training mode with teacher forcing: the decoder reads the
  target sequence shifted by one (``tgt_in``), starting from the encoder's final ``(h_n, c_n)``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["OneToManyLSTM", "ManyToOneLSTM", "AlignedManyToManyLSTM", "EncoderDecoderLSTM"]


class OneToManyLSTM(nn.Module):
    """One vector in, ``steps`` outputs out: (B, I) → (B, T, C) with T = steps.

    Args:
        input_size: I, features of the single input vector.
        hidden_size: H.
        output_size: C, features produced at every step.
        steps: T, length of the generated sequence.
    """

    def __init__(self, input_size: int, hidden_size: int, output_size: int, steps: int) -> None:
        super().__init__()
        self.steps = steps
        self.lstm = nn.LSTM(input_size, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, output_size)

    def forward(self, x: Tensor) -> Tensor:
        B, I = x.shape
        seq = x.unsqueeze(1).expand(B, self.steps, I)      # (B, T, I)  the same vector at every step
        out, (h_n, c_n) = self.lstm(seq)                   # (B, T, H), (1, B, H), (1, B, H)
        return self.head(out)                              # (B, T, C)


class ManyToOneLSTM(nn.Module):
    """A sequence in, one prediction out: (B, T, I) → (B, C).

    The summary of the sequence is the final hidden state of the LAST layer, both directions
    concatenated. For a bidirectional LSTM that is *not* ``output[:, -1]``: the backward
    direction finishes at t = 0, so its final state is ``output[:, 0, H:]``.
    """

    def __init__(self, input_size: int, hidden_size: int, num_classes: int, num_layers: int = 1,
                 bidirectional: bool = False) -> None:
        super().__init__()
        self.D = 2 if bidirectional else 1
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True,
                            bidirectional=bidirectional)
        self.head = nn.Linear(self.D * hidden_size, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        B = x.shape[0]
        out, (h_n, c_n) = self.lstm(x)                     # (B, T, D·H), (D·L, B, H), (D·L, B, H)
        last = h_n[-self.D:]                               # (D, B, H)  last layer, every direction
        last = last.transpose(0, 1).reshape(B, -1)         # (B, D·H)
        return self.head(last)                             # (B, C)


class AlignedManyToManyLSTM(nn.Module):
    """One output per input step: (B, T, I) → (B, T, C) (a tagger; bidirectional by default,
    since a tag may depend on the words that follow)."""

    def __init__(self, input_size: int, hidden_size: int, num_tags: int, num_layers: int = 1,
                 bidirectional: bool = True) -> None:
        super().__init__()
        D = 2 if bidirectional else 1
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True,
                            bidirectional=bidirectional)
        self.head = nn.Linear(D * hidden_size, num_tags)

    def forward(self, x: Tensor) -> Tensor:
        out, (h_n, c_n) = self.lstm(x)                     # (B, T, D·H), (D·L, B, H), (D·L, B, H)
        return self.head(out)                              # (B, T, C)  Linear acts on the last dim


class EncoderDecoderLSTM(nn.Module):
    """Sequence to sequence of another length: (B, S, I), (B, T, C) → (B, T, C).

    The encoder reads the source and hands over only its final state ``(h_n, c_n)`` — the fixed
    size "thought vector" of Sutskever et al. (2014); the decoder starts from that state and
    reads the (shifted) target, teacher-forced. Encoder and decoder have the same hidden_size
    and num_layers, so the state fits without a bridge layer.
    """

    def __init__(self, src_size: int, tgt_size: int, hidden_size: int, num_layers: int = 1) -> None:
        super().__init__()
        self.encoder = nn.LSTM(src_size, hidden_size, num_layers, batch_first=True)
        self.decoder = nn.LSTM(tgt_size, hidden_size, num_layers, batch_first=True)
        self.head = nn.Linear(hidden_size, tgt_size)

    def forward(self, src: Tensor, tgt_in: Tensor) -> Tensor:
        _, (h_n, c_n) = self.encoder(src)                  # (L, B, H), (L, B, H)  source summary
        out, _ = self.decoder(tgt_in, (h_n, c_n))          # (B, T, H)
        return self.head(out)                              # (B, T, C)
