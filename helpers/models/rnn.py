"""The vanilla (Elman) RNN of chapter 05: the seeds' SimpleRNN, fixed, and a from-scratch
forward pass and backpropagation through time (BPTT) that equal ``nn.RNN`` and autograd.

Glossary of dimension letters (used in every shape comment below)::

    B   batch size
    T   sequence length (number of time steps)
    I   input_size, features per time step (the input of layer 0)
    H   hidden_size, features of the hidden state h_t
    O   output_size of the Linear head of SimpleRNN
    L   num_layers (stacked RNN layers)
    D   directions: 2 if bidirectional else 1
    In  features entering a layer: I for layer 0, D·H for the layers above

The recurrence is torch's (``torch.nn.RNN`` documentation), with TWO bias vectors::

    a_t = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh      (B, H)
    h_t = f(a_t),  f = tanh (default) or relu            (B, H)

Source: `SimpleRNN` mirrors the SimpleRNN of the "LAYERS" seed notebook
(``shared/seeds/002``): ``nn.RNN(input_size, hidden_size, batch_first=True)`` then
``nn.Linear(hidden_size, output_size)`` on the output of the last time step. Deviations, each
a fix of the seed:

* the seed names its constructor ``__init`` (no trailing underscores). Python name-mangles it
  to ``_SimpleRNN__init`` and never calls it, so ``SimpleRNN(4, 8, 2)`` raises ``TypeError``
  and ``SimpleRNN()`` builds a module with no layers (0 parameters, ``AttributeError: rnn`` on
  the first forward pass). Here it is ``__init__``;
* ``num_layers`` and ``nonlinearity`` are arguments (defaults = the seed's single tanh layer);
  the forward pass also returns nothing but the logits, as in the seed.

`rnn_forward_manual` / `rnn_bptt_manual` follow the derivation of chapter 05 (Werbos 1990,
"Backpropagation through time: what it does and how to do it"); they loop over time
explicitly and are tested against ``nn.RNN`` and ``torch.autograd`` in ``tests/test_models_rnn.py``.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import nn
from torch.autograd.graph import saved_tensors_hooks

__all__ = [
    "SimpleRNN",
    "rnn_layer_forward",
    "rnn_forward_manual",
    "rnn_bptt_manual",
    "rnn_bptt_saved_numel",
    "measure_saved_numel",
]

Tensor = torch.Tensor


class SimpleRNN(nn.Module):
    """Many-to-one RNN: ``nn.RNN`` over the sequence, a Linear head on the last time step.

    Args:
        input_size: I, features per time step.
        hidden_size: H, size of the hidden state.
        output_size: O, size of the prediction (e.g. number of classes).
        num_layers: L, stacked RNN layers.
        nonlinearity: 'tanh' (default) or 'relu'.

    Shapes:
        x (B, T, I) → logits (B, O). Parameters: rnn_params('RNN', I, H, L) + H·O + O.
    """

    def __init__(self, input_size: int, hidden_size: int, output_size: int,
                 num_layers: int = 1, nonlinearity: str = "tanh") -> None:
        super().__init__()
        self.rnn = nn.RNN(input_size, hidden_size, num_layers=num_layers,
                          nonlinearity=nonlinearity, batch_first=True)
        self.fc = nn.Linear(hidden_size, output_size)

    def forward(self, x: Tensor) -> Tensor:
        out, h_n = self.rnn(x)     # out (B, T, H): top layer at every t;  h_n (L, B, H): every layer at t=T
        last = out[:, -1, :]       # (B, H)  == h_n[-1] for a one-directional RNN
        return self.fc(last)       # (B, O)


def _activation(nonlinearity: str) -> Callable[[Tensor], Tensor]:
    if nonlinearity == "tanh":
        return torch.tanh
    if nonlinearity == "relu":
        return torch.relu
    raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")


def rnn_layer_forward(x: Tensor, h0: Tensor, W_ih: Tensor, W_hh: Tensor,
                      b_ih: Optional[Tensor] = None, b_hh: Optional[Tensor] = None,
                      nonlinearity: str = "tanh", reverse: bool = False) -> Tensor:
    """One RNN layer in one direction, unrolled with an explicit Python loop over time.

    Args:
        x: (T, B, In) inputs, time first.
        h0: (B, H) initial hidden state.
        W_ih: (H, In); W_hh: (H, H); b_ih, b_hh: (H,) or None (bias=False).
        reverse: walk t = T-1 … 0 (the backward direction of a bidirectional RNN).

    Returns:
        hs: (T, B, H), hs[t] = h at time t (in input order, also when reverse=True).
    """
    f = _activation(nonlinearity)
    T = x.shape[0]
    h = h0                                            # (B, H)
    hs: list[Tensor] = [h0] * T
    for t in (reversed(range(T)) if reverse else range(T)):
        a = x[t] @ W_ih.T + h @ W_hh.T                # (B, In)@(In, H) + (B, H)@(H, H) → (B, H)
        if b_ih is not None:
            a = a + b_ih + b_hh                       # (B, H) + (H,) broadcast
        h = f(a)                                      # (B, H)
        hs[t] = h
    return torch.stack(hs)                            # (T, B, H)


def rnn_forward_manual(rnn: nn.RNN, x: Tensor, h0: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
    """Recompute ``rnn(x, h0)`` step by step from the module's own weights.

    Handles num_layers, bidirectional, batch_first, bias and nonlinearity like ``nn.RNN``
    (dropout between layers is not applied: use dropout=0 or eval mode).

    Args:
        rnn: an ``nn.RNN``.
        x: (B, T, I) if rnn.batch_first else (T, B, I).
        h0: (D·L, B, H) or None (zeros, as in torch).

    Returns:
        (output, h_n): output (B, T, D·H) or (T, B, D·H) — the top layer at every t, both
        directions concatenated; h_n (D·L, B, H) — every layer and direction at its last step
        (never batch-first).
    """
    D = 2 if rnn.bidirectional else 1
    L, H = rnn.num_layers, rnn.hidden_size
    inp = x.transpose(0, 1) if rnn.batch_first else x                  # (T, B, I)
    B = inp.shape[1]
    if h0 is None:
        h0 = inp.new_zeros(D * L, B, H)                                # (D·L, B, H)
    finals: list[Tensor] = []
    for layer in range(L):
        outs = []
        for d, suffix in enumerate(("", "_reverse")[:D]):
            tag = f"l{layer}{suffix}"
            hs = rnn_layer_forward(
                inp, h0[layer * D + d], getattr(rnn, f"weight_ih_{tag}"), getattr(rnn, f"weight_hh_{tag}"),
                getattr(rnn, f"bias_ih_{tag}", None), getattr(rnn, f"bias_hh_{tag}", None),
                rnn.nonlinearity, reverse=bool(d))                      # (T, B, H)
            outs.append(hs)
            finals.append(hs[0] if d else hs[-1])                      # (B, H): last step walked
        inp = torch.cat(outs, dim=-1)                                  # (T, B, D·H): next layer's input
    output = inp.transpose(0, 1) if rnn.batch_first else inp           # (B, T, D·H) or (T, B, D·H)
    return output, torch.stack(finals)                                 # h_n (D·L, B, H)


def rnn_bptt_manual(x: Tensor, h0: Tensor, W_ih: Tensor, W_hh: Tensor, b_ih: Optional[Tensor],
                    b_hh: Optional[Tensor], hs: Tensor, dL_dh_direct: Tensor,
                    nonlinearity: str = "tanh") -> dict[str, Tensor]:
    """Backpropagation through time for one RNN layer, by hand, with a loop t = T-1 … 0.

    With a_t = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh and h_t = f(a_t)::

        g_t     = e_t + δ_{t+1} W_hh          total ∂L/∂h_t: its own loss + the future's (B, H)
        δ_t     = g_t ⊙ f'(a_t)               ∂L/∂a_t; tanh: 1 - h_t², relu: [h_t > 0]   (B, H)
        ∂L/∂W_ih = Σ_t δ_t^T x_t    ∂L/∂W_hh = Σ_t δ_t^T h_{t-1}    ∂L/∂b = Σ_t Σ_batch δ_t
        ∂L/∂x_t  = δ_t W_ih        ∂L/∂h_0  = δ_0 W_hh   (time index from 0)

    Args:
        x: (T, B, In); h0: (B, H); W_ih (H, In); W_hh (H, H); b_ih, b_hh (H,) or None.
        hs: (T, B, H) the hidden states of the forward pass (what autograd would have saved).
        dL_dh_direct: (T, B, H) e_t = ∂ℓ_t/∂h_t, the gradient each step's OWN loss sends to
            h_t (zeros for steps without a loss; only the last step for a many-to-one model).

    Returns:
        dict with 'W_ih', 'W_hh', 'b_ih', 'b_hh' (absent when bias is None), 'x' (T, B, In),
        'h0' (B, H) and 'dh' (T, B, H): the total ∂L/∂h_t at every step (for gradient-norm plots).
    """
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    T = x.shape[0]
    dW_ih = torch.zeros_like(W_ih)                    # (H, In)
    dW_hh = torch.zeros_like(W_hh)                    # (H, H)
    db = torch.zeros_like(W_hh[0])                    # (H,)
    dx = torch.zeros_like(x)                          # (T, B, In)
    dh = torch.zeros_like(hs)                         # (T, B, H)
    from_future = torch.zeros_like(h0)                # (B, H): δ_{t+1} W_hh, zero after the last step
    for t in reversed(range(T)):
        g = dL_dh_direct[t] + from_future             # (B, H)  total ∂L/∂h_t
        dh[t] = g
        h = hs[t]                                     # (B, H)
        fprime = 1 - h * h if nonlinearity == "tanh" else (h > 0).to(h.dtype)   # (B, H)
        delta = g * fprime                            # (B, H)  ∂L/∂a_t
        h_prev = hs[t - 1] if t > 0 else h0           # (B, H)
        dW_ih += delta.T @ x[t]                       # (H, B)@(B, In) → (H, In)
        dW_hh += delta.T @ h_prev                     # (H, B)@(B, H) → (H, H)
        db += delta.sum(0)                            # (H,)
        dx[t] = delta @ W_ih                          # (B, H)@(H, In) → (B, In)
        from_future = delta @ W_hh                    # (B, H)@(H, H) → (B, H)  = ∂L/∂h_{t-1} via h_t
    grads = {"W_ih": dW_ih, "W_hh": dW_hh, "x": dx, "h0": from_future, "dh": dh}
    if b_ih is not None:
        grads["b_ih"] = db
        grads["b_hh"] = db.clone()                    # a_t depends on b_ih + b_hh: same gradient
    return grads


def rnn_bptt_saved_numel(seq_len: int, batch: int, input_size: int, hidden_size: int,
                         num_layers: int = 1, bidirectional: bool = False) -> int:
    """Activation numbers torch's ``nn.RNN`` keeps for backward (weights excluded).

    Per layer l: its input, T·B·In_l (shared by both directions), and per direction the
    hidden states h_0 … h_T, (T+1)·B·H::

        Σ_l [ T·B·In_l + D·(T+1)·B·H ],   In_0 = I, In_l = D·H

    Linear in T: this is why full BPTT over long sequences runs out of memory and why
    truncated BPTT over windows of k steps keeps only k·B·(In + H)-ish numbers per layer.
    Exact for torch 2.x on CPU with time-first input (batch_first=False) that does not
    require grad (measured with `measure_saved_numel`, see tests/test_models_rnn.py); with
    batch_first=True and bidirectional=True torch keeps one extra transposed copy of the
    input (T·B·I more).
    """
    D = 2 if bidirectional else 1
    total = 0
    for layer in range(num_layers):
        layer_in = input_size if layer == 0 else D * hidden_size
        total += seq_len * batch * layer_in + D * (seq_len + 1) * batch * hidden_size
    return total


def measure_saved_numel(module: nn.Module, *inputs: Tensor) -> int:
    """Run ``module(*inputs)`` and count the numbers autograd saves for backward.

    Tensors are deduplicated by storage (a slice of x counts as x once) and storages that
    belong to the module's parameters are left out, so the result is the ACTIVATION memory
    (in elements; multiply by the element size for bytes).
    """
    param_ptrs = {p.untyped_storage().data_ptr() for p in module.parameters()}
    seen: dict[int, int] = {}

    def pack(t: Tensor) -> Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in param_ptrs:
            seen[storage.data_ptr()] = storage.nbytes() // t.element_size()
        return t

    with saved_tensors_hooks(pack, lambda t: t):
        module(*inputs)
    return sum(seen.values())
