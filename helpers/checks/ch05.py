"""Chapter 05 (RNN and BPTT) exercise questions.

Reference answers come from ``helpers.formulas``, ``helpers.models`` (SimpleRNN, the autograd
saved-tensor measurement) or from tiny torch modules and autograd run in the checking process —
never from a hand-typed number. tests/test_checks_ch05_ch07.py checks every reference against torch.
"""

from __future__ import annotations

import random

from helpers import formulas
from helpers.checks._gen import close, largest_fitting_all, rnn_config_cases, sequence_model_cases, two_limit_budgets
from helpers.checks.registry import Question, register


# --------------------------------------------------------------------------- 1. rnn params

def vanilla_rnn_params_reference(input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                                 bidirectional: bool = False) -> int:
    """Parameters of nn.RNN(input_size, hidden_size, num_layers, bias=bias, bidirectional=...)."""
    return formulas.rnn_params("RNN", input_size, hidden_size, num_layers, bias=bias, bidirectional=bidirectional)


def _params_cases(rng: random.Random) -> list:
    cases: list = [((10, 16), {}), ((20, 64), {"num_layers": 2, "bidirectional": True})]
    return cases + rnn_config_cases(rng, 18, bidirectional_p=0.6)


def _one_bias_vector(input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                     bidirectional: bool = False) -> int:
    """The typical mistake: one bias vector per layer and direction (torch keeps bias_ih AND bias_hh)."""
    D = 2 if bidirectional else 1
    return vanilla_rnn_params_reference(input_size, hidden_size, num_layers, bias, bidirectional) - (
        D * num_layers * hidden_size if bias else 0)


register(Question(
    id="05.vanilla_rnn_params",
    mistakes=(("forgot the second bias (torch keeps bias_ih and bias_hh)", _one_bias_vector),),
    title="Implement vanilla_rnn_params(input_size, hidden_size, num_layers=1, bias=True, bidirectional=False)",
    cases=_params_cases,
    reference=vanilla_rnn_params_reference,
    hint="Per layer and direction: H·in + H·H + 2·H (torch keeps TWO bias vectors, bias_ih and bias_hh). "
         "Layer 0 reads in = input_size; every later layer reads both directions of the layer below: "
         "in = D·H with D = 2 if bidirectional.",
))


# --------------------------------------------------------------------------- 2. output / h_n shapes

def rnn_shapes_reference(batch: int, seq_len: int, input_size: int, hidden_size: int, num_layers: int,
                         bidirectional: bool, batch_first: bool) -> tuple:
    """(output.shape, h_n.shape) of nn.RNN, from a tiny torch forward pass."""
    import torch
    from torch import nn

    rnn = nn.RNN(input_size, hidden_size, num_layers, batch_first=batch_first, bidirectional=bidirectional)
    x = torch.zeros((batch, seq_len, input_size) if batch_first else (seq_len, batch, input_size))
    with torch.no_grad():
        output, h_n = rnn(x)
    return tuple(output.shape), tuple(h_n.shape)


def _shapes_cases(rng: random.Random) -> list:
    return [((rng.randint(1, 8), rng.randint(1, 12), rng.randint(1, 16), rng.randint(1, 24),
              rng.randint(1, 4), rng.random() < 0.5, rng.random() < 0.5), {}) for _ in range(16)]


register(Question(
    id="05.rnn_shapes",
    title="Predict (output.shape, h_n.shape) of nn.RNN(input_size, hidden_size, num_layers, "
          "batch_first=..., bidirectional=...) on a batch of `batch` sequences of `seq_len` steps",
    cases=_shapes_cases,
    reference=rnn_shapes_reference,
    hint="With D = 2 if bidirectional else 1: output is (seq_len, batch, D·H), or (batch, seq_len, D·H) "
         "if batch_first; h_n is (D·num_layers, batch, H) — batch_first does NOT change h_n.",
))


# --------------------------------------------------------------------------- 3. one BPTT step

def bptt_step_reference(W_ih: list, W_hh: list, b: list, x_t: list, h_prev: list, grad_h: list) -> tuple:
    """Autograd's (∂L/∂h_prev, ∂L/∂W_hh) for h = tanh(W_ih x_t + W_hh h_prev + b), given ∂L/∂h."""
    import torch

    def t(values: list, grad: bool = False) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.float64, requires_grad=grad)

    w_hh, hp = t(W_hh, True), t(h_prev, True)
    h = torch.tanh(t(W_ih) @ t(x_t) + w_hh @ hp + t(b))
    h.backward(t(grad_h))
    return hp.grad.tolist(), w_hh.grad.tolist()


def _bptt_cases(rng: random.Random) -> list:
    def vec(n: int) -> list:
        return [round(rng.uniform(-1, 1), 3) for _ in range(n)]

    cases = []
    for _ in range(12):
        H, I = rng.randint(1, 4), rng.randint(1, 3)
        cases.append((([vec(I) for _ in range(H)], [vec(H) for _ in range(H)], vec(H), vec(I), vec(H),
                       vec(H)), {}))
    return cases


register(Question(
    id="05.bptt_step",
    title="One BPTT step: given W_ih, W_hh, b, x_t, h_prev and g = ∂L/∂h_t for "
          "h_t = tanh(W_ih x_t + W_hh h_prev + b), return (∂L/∂h_prev, ∂L/∂W_hh) as lists",
    cases=_bptt_cases,
    reference=bptt_step_reference,
    compare=close,
    hint="Recompute h_t, then δ = g ⊙ (1 − h_t²) (the tanh derivative); ∂L/∂h_prev = W_hhᵀ δ "
         "(a list of H floats) and ∂L/∂W_hh = δ h_prevᵀ (an H×H list: row i = δ[i]·h_prev).",
))


# --------------------------------------------------------------------------- 4. truncated-BPTT memory

def tbptt_saved_activations_reference(k: int, batch: int, input_size: int, hidden_size: int,
                                      num_layers: int) -> int:
    """Activation numbers autograd saves for one k-step window of nn.RNN: the chapter's formula
    `rnn_bptt_saved_numel`, which tests/test_models_rnn.py proves equal to torch's saved tensors
    (measured with saved_tensors_hooks; tests/test_checks_ch05_ch07.py re-measures these cases)."""
    from helpers.models.rnn import rnn_bptt_saved_numel

    return rnn_bptt_saved_numel(k, batch, input_size, hidden_size, num_layers)


def _tbptt_cases(rng: random.Random) -> list:
    return [((rng.randint(1, 40), rng.randint(1, 16), rng.randint(1, 32), rng.randint(1, 48),
              rng.randint(1, 3)), {}) for _ in range(14)]


register(Question(
    id="05.tbptt_saved_activations",
    title="How many activation numbers does autograd keep for one window of k steps of "
          "nn.RNN(input_size, hidden_size, num_layers) on a (k, batch, input_size) input?",
    cases=_tbptt_cases,
    reference=tbptt_saved_activations_reference,
    hint="Per layer: its input, k·batch·in (in = input_size for layer 0, hidden_size above), plus "
         "the hidden states h_0 … h_k, (k+1)·batch·hidden_size. Sum over the layers.",
))


# --------------------------------------------------------------------------- 5. the fixed SimpleRNN

def simple_rnn_params_reference(input_size: int, hidden_size: int, output_size: int, num_layers: int) -> int:
    """count_params of the fixed SimpleRNN (built on the meta device: shapes only)."""
    import torch

    from helpers.counting import count_params
    from helpers.models.rnn import SimpleRNN

    with torch.device("meta"):
        return count_params(SimpleRNN(input_size, hidden_size, output_size, num_layers=num_layers))


def _simple_cases(rng: random.Random) -> list:
    cases: list = [((4, 8, 2, 1), {})]
    cases += [((rng.randint(1, 128), rng.randint(1, 256), rng.randint(1, 20), rng.randint(1, 3)), {})
              for _ in range(15)]
    return cases


register(Question(
    id="05.simple_rnn_params",
    title="Parameters of the (fixed) seed SimpleRNN(input_size, hidden_size, output_size, num_layers): "
          "nn.RNN(batch_first=True) + nn.Linear(hidden_size, output_size)",
    cases=_simple_cases,
    reference=simple_rnn_params_reference,
    hint="The RNN part: per layer H·in + H·H + 2·H (in = input_size for layer 0, H above); the head: "
         "H·output_size + output_size. The sequence length does not appear anywhere.",
))


# --------------------------------------------------------------------------- 6. two limits on the width

def largest_rnn_hidden_reference(input_size: int, num_layers: int, k: int, batch: int, param_budget: int,
                                 activation_budget: int) -> int:
    """Largest hidden_size of nn.RNN(input_size, hidden_size, num_layers) whose parameters fit
    param_budget AND whose k-step truncated-BPTT window on `batch` sequences keeps at most
    activation_budget numbers (both counts grow with hidden_size; 0 if hidden_size=1 breaks one)."""
    return largest_fitting_all(
        (lambda h: vanilla_rnn_params_reference(input_size, h, num_layers), param_budget),
        (lambda h: tbptt_saved_activations_reference(k, batch, input_size, h, num_layers), activation_budget))


def _largest_hidden_cases(rng: random.Random) -> list:
    cases = []
    for i in range(14):
        I, L, k, B = rng.randint(1, 64), rng.randint(1, 3), rng.randint(1, 40), rng.randint(1, 8)
        hidden = rng.randint(1, 200)  # the answer of the parameter limit; the memory limit lands near it
        params, memory = two_limit_budgets(rng, lambda h: vanilla_rnn_params_reference(I, h, L),
                                           lambda h: tbptt_saved_activations_reference(k, B, I, h, L), hidden,
                                           exact=i % 4 == 0)
        if i == 2:
            params = vanilla_rnn_params_reference(I, 1, L) - 1  # not even hidden_size=1 fits
        cases.append(((I, L, k, B, params, memory), {}))
    return cases


register(Question(
    id="05.largest_rnn_hidden",
    title="Largest hidden_size of nn.RNN(input_size, hidden_size, num_layers) that fits a parameter budget "
          "AND a truncated-BPTT memory budget (k steps, batch sequences)",
    cases=_largest_hidden_cases,
    reference=largest_rnn_hidden_reference,
    hint="both counts grow with hidden_size: the parameters (your vanilla_rnn_params) roughly as H², the saved "
         "activations of one window (your tbptt_saved_activations) roughly as k·B·H. Find the largest H for "
         "each budget and return the smaller; 0 if H = 1 already breaks one.",
))


# --------------------------------------------------------------------------- 7. repair an RNN classifier

def fixed_rnn_classifier_reference(input_size: int, hidden_size: int, classes: int):
    """The repaired many-to-one classifier: nn.RNN(batch_first=True) over (B, T, input_size), the last
    time step's output out[:, -1] (B, hidden_size) → Linear → (B, classes).

    Built under ``torch.device("meta")`` by the caller (see :mod:`helpers.checks.module_answer`)."""
    from torch import nn

    class RNNClassifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = nn.RNN(input_size, hidden_size, batch_first=True)  # (B, T, I) → (B, T, H)
            self.fc = nn.Linear(hidden_size, classes)                      # (B, H) → (B, classes)

        def forward(self, x):
            out, _ = self.rnn(x)         # (B, T, H)
            return self.fc(out[:, -1])   # (B, classes): the last time step

    return RNNClassifier()


def _fixed_rnn_classifier_probe(input_size: int, hidden_size: int, classes: int) -> dict:
    """A batch of B = 3 sequences of T = 5 steps (B ≠ T, so reading the batch axis as time changes the
    values, not the shape); 6 output values on fixed weights."""
    return {"input": [3, 5, input_size], "values": 6}


register(Question(
    id="05.fixed_rnn_classifier",
    title="Repair an RNN classifier whose shapes are right but which reads the batch axis as time",
    cases=sequence_model_cases,
    reference=fixed_rnn_classifier_reference,
    probe=_fixed_rnn_classifier_probe,
    hint="nn.RNN expects (T, B, I) unless batch_first=True. Fed (B, T, I) without it, it runs over the "
         "BATCH as time, and out[:, -1] is then the last sequence of the batch at every step: right shape, "
         "wrong numbers. Build the RNN with batch_first=True and keep out[:, -1] (names rnn/fc).",
))
