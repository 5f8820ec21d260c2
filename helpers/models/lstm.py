"""LSTM and GRU written out gate by gate, with the exact parameter layout of ``nn.LSTM`` / ``nn.GRU``.

Glossary of dimension letters (mamba-minimal style):
    B    batch size
    T    sequence length (number of time steps)
    I    input_size, features of x_t fed to the first layer
    H    hidden_size, width of each gate and of the cell state c_t
    P    proj_size (LSTM only, 0 = off); the hidden state h_t then has width P instead of H
    H_r  width of h_t: P if proj_size > 0 else H
    G    gate blocks stacked in one weight matrix: LSTM 4 (i, f, g, o), GRU 3 (r, z, n)
    L    num_layers
    D    directions: 2 if bidirectional else 1

Equations (PyTorch docs, https://pytorch.org/docs/stable/generated/torch.nn.LSTM.html and
.../torch.nn.GRU.html), for one layer and one direction, with x_t (B, I) and h_{t-1} (B, H_r)::

    LSTM (Hochreiter & Schmidhuber 1997; forget gate: Gers et al. 2000; projection: Sak et al. 2014)
        i_t = σ(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)        input gate        (B, H)
        f_t = σ(W_if x_t + b_if + W_hf h_{t-1} + b_hf)        forget gate       (B, H)
        g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)     cell candidate    (B, H)
        o_t = σ(W_io x_t + b_io + W_ho h_{t-1} + b_ho)        output gate       (B, H)
        c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t                                         (B, H)
        h_t = o_t ⊙ tanh(c_t)            then, if P > 0:  h_t = W_hr h_t        (B, H_r)

    GRU (Cho et al. 2014, in the cuDNN variant torch implements)
        r_t = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)        reset gate        (B, H)
        z_t = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)        update gate       (B, H)
        n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t-1} + b_hn))  candidate    (B, H)
        h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t-1}                                   (B, H)

How torch STORES them (and so do the modules here, name for name, so that
``scratch.load_state_dict(torch_module.state_dict())`` copies every weight):

    weight_ih_l{k}{_reverse}  (G·H, I or D·H_r)   the G input matrices stacked row-wise,
    weight_hh_l{k}{_reverse}  (G·H, H_r)          in the order i, f, g, o (LSTM) / r, z, n (GRU)
    bias_ih_l{k}{_reverse}    (G·H,)              TWO bias vectors per layer and direction:
    bias_hh_l{k}{_reverse}    (G·H,)              b_i* and b_h* (the cuDNN layout). For the LSTM
                                                  only their sum matters; in the GRU b_hn sits
                                                  inside r_t ⊙ (…) so it is not redundant.
    weight_hr_l{k}{_reverse}  (P, H)              LSTM with proj_size > 0 only

Deviations from torch: no dropout between layers, no PackedSequence input and no unbatched
(2-d) input; the loops are explicit Python loops over time (slow, but every tensor is visible).
Deviation of torch's GRU from Cho et al. (2014): the paper applies the reset gate *before* the
recurrent matmul, ``W_hn (r_t ⊙ h_{t-1})``; torch (like cuDNN) applies it after,
``r_t ⊙ (W_hn h_{t-1} + b_hn)``. We follow torch.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

__all__ = ["lstm_cell", "gru_cell", "LSTMCellScratch", "GRUCellScratch", "LSTMScratch", "GRUScratch"]


# --------------------------------------------------------------------------- one time step

def lstm_cell(x: Tensor, h: Tensor, c: Tensor, weight_ih: Tensor, weight_hh: Tensor,
              bias_ih: Optional[Tensor] = None, bias_hh: Optional[Tensor] = None,
              weight_hr: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
    """One LSTM step.

    Args:
        x: (B, I) input at time t.   h: (B, H_r) previous hidden state.   c: (B, H) previous cell.
        weight_ih: (4H, I), weight_hh: (4H, H_r), bias_ih / bias_hh: (4H,) or None,
        weight_hr: (P, H) or None (projection, proj_size = P).
    Returns:
        (h_t, c_t) with shapes (B, H_r) and (B, H).
    """
    gates = x @ weight_ih.T + h @ weight_hh.T          # (B, 4H)
    if bias_ih is not None:
        gates = gates + bias_ih + bias_hh              # (B, 4H)  two biases, simply added
    i, f, g, o = gates.chunk(4, dim=1)                 # 4 × (B, H)  torch's order: i, f, g, o
    i = torch.sigmoid(i)                               # (B, H) input gate
    f = torch.sigmoid(f)                               # (B, H) forget gate
    g = torch.tanh(g)                                  # (B, H) cell candidate
    o = torch.sigmoid(o)                               # (B, H) output gate
    c = f * c + i * g                                  # (B, H)
    h = o * torch.tanh(c)                              # (B, H)
    if weight_hr is not None:
        h = h @ weight_hr.T                            # (B, P)  projected hidden state
    return h, c


def gru_cell(x: Tensor, h: Tensor, weight_ih: Tensor, weight_hh: Tensor,
             bias_ih: Optional[Tensor] = None, bias_hh: Optional[Tensor] = None) -> Tensor:
    """One GRU step.

    Args:
        x: (B, I) input at time t.   h: (B, H) previous hidden state.
        weight_ih: (3H, I), weight_hh: (3H, H), bias_ih / bias_hh: (3H,) or None.
    Returns:
        h_t: (B, H).
    """
    gi = x @ weight_ih.T                               # (B, 3H)
    gh = h @ weight_hh.T                               # (B, 3H)
    if bias_ih is not None:
        gi = gi + bias_ih                              # (B, 3H)
        gh = gh + bias_hh                              # (B, 3H)
    i_r, i_z, i_n = gi.chunk(3, dim=1)                 # 3 × (B, H)  torch's order: r, z, n
    h_r, h_z, h_n = gh.chunk(3, dim=1)                 # 3 × (B, H)
    r = torch.sigmoid(i_r + h_r)                       # (B, H) reset gate
    z = torch.sigmoid(i_z + h_z)                       # (B, H) update gate
    n = torch.tanh(i_n + r * h_n)                      # (B, H) candidate (r gates W_hn h + b_hn)
    return (1 - z) * n + z * h                         # (B, H)


# --------------------------------------------------------------------------- shared machinery

def _uniform_(tensor: Tensor, hidden_size: int) -> None:
    """torch's RNN initialisation: every weight and bias ~ U(−1/√H, 1/√H)."""
    bound = 1.0 / hidden_size ** 0.5
    with torch.no_grad():
        tensor.uniform_(-bound, bound)


class _CellBase(nn.Module):
    """Parameters of one layer and one direction, named like ``nn.LSTMCell`` / ``nn.GRUCell``."""

    gates: int = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, proj_size: int = 0,
                 device: Optional[torch.device | str] = None, dtype: Optional[torch.dtype] = None) -> None:
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.input_size, self.hidden_size, self.proj_size = input_size, hidden_size, proj_size
        h_r = proj_size or hidden_size
        G, H = self.gates, hidden_size
        self.weight_ih = nn.Parameter(torch.empty(G * H, input_size, **kw))   # (G·H, I)
        self.weight_hh = nn.Parameter(torch.empty(G * H, h_r, **kw))          # (G·H, H_r)
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(G * H, **kw))             # (G·H,)
            self.bias_hh = nn.Parameter(torch.empty(G * H, **kw))             # (G·H,)
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        if proj_size:
            self.weight_hr = nn.Parameter(torch.empty(proj_size, H, **kw))    # (P, H)
        for p in self.parameters():
            _uniform_(p, hidden_size)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias_ih is None:
            s += ", bias=False"
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        return s


class LSTMCellScratch(_CellBase):
    """One LSTM step as a module, parameters named and shaped like ``nn.LSTMCell``.

    Unlike ``nn.LSTMCell`` it also accepts ``proj_size`` (then it has ``weight_hr`` (P, H),
    as one layer of ``nn.LSTM(..., proj_size=P)`` does).

    forward(x (B, I), (h (B, H_r), c (B, H)) or None) → (h_t (B, H_r), c_t (B, H)).
    """

    gates = 4

    def forward(self, x: Tensor, hx: Optional[tuple[Tensor, Tensor]] = None) -> tuple[Tensor, Tensor]:
        B = x.shape[0]
        if hx is None:
            h = x.new_zeros(B, self.proj_size or self.hidden_size)  # (B, H_r)
            c = x.new_zeros(B, self.hidden_size)                    # (B, H)
        else:
            h, c = hx
        return lstm_cell(x, h, c, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh,
                         getattr(self, "weight_hr", None))


class GRUCellScratch(_CellBase):
    """One GRU step as a module, parameters named and shaped like ``nn.GRUCell``.

    forward(x (B, I), h (B, H) or None) → h_t (B, H).
    """

    gates = 3

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 device: Optional[torch.device | str] = None, dtype: Optional[torch.dtype] = None) -> None:
        super().__init__(input_size, hidden_size, bias, 0, device, dtype)

    def forward(self, x: Tensor, hx: Optional[Tensor] = None) -> Tensor:
        h = x.new_zeros(x.shape[0], self.hidden_size) if hx is None else hx  # (B, H)
        return gru_cell(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)


class _RecurrentScratch(nn.Module):
    """Stacked, optionally bidirectional recurrent layers with torch's parameter names.

    The parameters live directly on this module (``weight_ih_l0``, ``bias_hh_l1_reverse``, …)
    exactly as in ``nn.LSTM`` / ``nn.GRU``, so state dicts are interchangeable and
    ``count_params`` gives the same number as for the torch module.
    """

    mode = ""
    gates = 1

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, bidirectional: bool = False, proj_size: int = 0,
                 device: Optional[torch.device | str] = None, dtype: Optional[torch.dtype] = None) -> None:
        super().__init__()
        if proj_size and not 0 < proj_size < hidden_size:
            raise ValueError(f"proj_size has to be smaller than hidden_size, got {proj_size} >= {hidden_size}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.bidirectional = bias, batch_first, bidirectional
        self.proj_size = proj_size
        kw = {"device": device, "dtype": dtype}
        G, H, D = self.gates, hidden_size, 2 if bidirectional else 1
        h_r = proj_size or H
        for layer in range(num_layers):
            layer_in = input_size if layer == 0 else D * h_r    # layer l > 0 reads both directions
            for sfx in ("", "_reverse")[:D]:
                shapes = {f"weight_ih_l{layer}{sfx}": (G * H, layer_in),   # (G·H, I or D·H_r)
                          f"weight_hh_l{layer}{sfx}": (G * H, h_r)}        # (G·H, H_r)
                if bias:
                    shapes[f"bias_ih_l{layer}{sfx}"] = (G * H,)             # (G·H,)
                    shapes[f"bias_hh_l{layer}{sfx}"] = (G * H,)             # (G·H,)
                if proj_size:
                    shapes[f"weight_hr_l{layer}{sfx}"] = (proj_size, H)     # (P, H)
                for name, shape in shapes.items():
                    p = nn.Parameter(torch.empty(shape, **kw))
                    _uniform_(p, H)
                    self.register_parameter(name, p)

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def _weights(self, layer: int, sfx: str) -> list[Optional[Tensor]]:
        names = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
        if self.proj_size:
            names.append("weight_hr")
        return [getattr(self, f"{n}_l{layer}{sfx}", None) for n in names]

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        for name, default in (("num_layers", 1), ("bias", True), ("batch_first", False),
                              ("bidirectional", False), ("proj_size", 0)):
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)}"
        return s


class LSTMScratch(_RecurrentScratch):
    """``nn.LSTM`` from scratch: same arguments, same parameters, same outputs.

    forward(input, (h_0, c_0) or None) → (output, (h_n, c_n)), with
        input   (T, B, I)          or (B, T, I) if batch_first
        output  (T, B, D·H_r)      or (B, T, D·H_r) if batch_first — last layer, every step
        h_n     (D·L, B, H_r)      NOT affected by batch_first; row 2·k is layer k forward,
        c_n     (D·L, B, H)        row 2·k + 1 layer k backward (bidirectional)
    """

    mode, gates = "LSTM", 4

    def forward(self, input: Tensor, hx: Optional[tuple[Tensor, Tensor]] = None
                ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        x = input.transpose(0, 1) if self.batch_first else input      # (T, B, I)
        T, B, _ = x.shape
        D, H, h_r = self.num_directions, self.hidden_size, self.proj_size or self.hidden_size
        if hx is None:
            h0 = x.new_zeros(D * self.num_layers, B, h_r)              # (D·L, B, H_r)
            c0 = x.new_zeros(D * self.num_layers, B, H)                # (D·L, B, H)
        else:
            h0, c0 = hx
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            outs = []
            for d, sfx in enumerate(("", "_reverse")[:D]):
                w = self._weights(layer, sfx)
                h, c = h0[D * layer + d], c0[D * layer + d]            # (B, H_r), (B, H)
                steps = range(T - 1, -1, -1) if d else range(T)        # backward direction: T−1 … 0
                ys: list[Tensor] = [x.new_empty(0)] * T
                for t in steps:
                    h, c = lstm_cell(x[t], h, c, *w)                   # (B, H_r), (B, H)
                    ys[t] = h
                outs.append(torch.stack(ys))                           # (T, B, H_r)
                h_n.append(h)
                c_n.append(c)
            x = torch.cat(outs, dim=2)                                 # (T, B, D·H_r) → next layer
        output = x.transpose(0, 1) if self.batch_first else x          # (B, T, D·H_r) or (T, B, D·H_r)
        return output, (torch.stack(h_n), torch.stack(c_n))            # (D·L, B, H_r), (D·L, B, H)


class GRUScratch(_RecurrentScratch):
    """``nn.GRU`` from scratch: same arguments (no proj_size), same parameters, same outputs.

    forward(input, h_0 or None) → (output, h_n), with
        input   (T, B, I)      or (B, T, I) if batch_first
        output  (T, B, D·H)    or (B, T, D·H) if batch_first
        h_n     (D·L, B, H)    NOT affected by batch_first
    """

    mode, gates = "GRU", 3

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, bidirectional: bool = False,
                 device: Optional[torch.device | str] = None, dtype: Optional[torch.dtype] = None) -> None:
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, bidirectional, 0,
                         device, dtype)

    def forward(self, input: Tensor, hx: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        x = input.transpose(0, 1) if self.batch_first else input      # (T, B, I)
        T, B, _ = x.shape
        D, H = self.num_directions, self.hidden_size
        h0 = x.new_zeros(D * self.num_layers, B, H) if hx is None else hx  # (D·L, B, H)
        h_n = []
        for layer in range(self.num_layers):
            outs = []
            for d, sfx in enumerate(("", "_reverse")[:D]):
                w = self._weights(layer, sfx)
                h = h0[D * layer + d]                                  # (B, H)
                steps = range(T - 1, -1, -1) if d else range(T)
                ys: list[Tensor] = [x.new_empty(0)] * T
                for t in steps:
                    h = gru_cell(x[t], h, *w)                          # (B, H)
                    ys[t] = h
                outs.append(torch.stack(ys))                           # (T, B, H)
                h_n.append(h)
            x = torch.cat(outs, dim=2)                                 # (T, B, D·H)
        output = x.transpose(0, 1) if self.batch_first else x          # (B, T, D·H) or (T, B, D·H)
        return output, torch.stack(h_n)                                # (D·L, B, H)
