"""What the two recurrent explorers share: one recurrent layer applied to a sequence batch.

`helpers.widgets.rnn_unrolling` (chapter 05: ``nn.RNN`` unrolled over time, BPTT memory) and
`helpers.widgets.recurrent_params` (chapter 06: the parameter tensors of ``nn.RNN`` /
``nn.GRU`` / ``nn.LSTM``) both describe a layer with T, B, I, H, L and D = 2 if bidirectional;
their exploration records extend `RecurrentInput` and validate the sequence with
`sequence_error`. Pure logic: no ipywidgets, no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional



@dataclass(frozen=True, kw_only=True)
class RecurrentInput:
    """A recurrent layer's configuration and the shapes torch returns for it.

    Attributes:
        seq_len, batch, input_size, hidden_size, num_layers, bidirectional, batch_first: the
            configuration (T, B, I, H, L, D = 2 if bidirectional else 1).
        input_shape: (B, T, I) if batch_first else (T, B, I); None if invalid.
        output_shape: (B, T, D·H_r) or (T, B, D·H_r) — the top layer's h_t at every step
            (H_r = proj_size or hidden_size); None if invalid.
        h_n_shape: (D·L, B, H_r) — the last h of every layer and direction; never batch-first.
    """

    seq_len: int
    batch: int
    input_size: int
    hidden_size: int
    num_layers: int
    bidirectional: bool
    batch_first: bool
    input_shape: Optional[tuple[int, ...]] = None
    output_shape: Optional[tuple[int, ...]] = None
    h_n_shape: Optional[tuple[int, ...]] = None

    @property
    def directions(self) -> int:
        """D: 2 if bidirectional else 1."""
        return 2 if self.bidirectional else 1


def configuration(seq_len: int, batch: int, input_size: int, hidden_size: int, num_layers: int,
                  bidirectional: bool, batch_first: bool) -> dict[str, object]:
    """The configuration fields of `RecurrentInput` as keyword arguments (flags made bools)."""
    return dict(seq_len=seq_len, batch=batch, input_size=input_size, hidden_size=hidden_size,
                num_layers=num_layers, bidirectional=bool(bidirectional), batch_first=bool(batch_first))


def sequence_error(seq_len: object, batch: object) -> Optional[str]:
    """A friendly sentence if seq_len or batch is not a positive integer, else None."""
    for name, value in (("seq_len", seq_len), ("batch", batch)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            return (f"{name} must be a positive integer (got {value!r}): a recurrent layer needs at "
                    f"least one step of one sequence")
    return None
