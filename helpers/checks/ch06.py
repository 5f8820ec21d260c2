"""Chapter 06 (LSTM and GRU) exercise questions.

Reference answers come from ``helpers.formulas`` (closed-form counts, themselves tested against
torch) or from small torch modules built and run in the checking process. tests/test_checks_ch06.py
checks every reference against real torch modules.
"""

from __future__ import annotations

import random
import warnings

from helpers import formulas, shapes
from helpers.checks._gen import BUDGET_PLACES, budget_for_size, largest_fitting, rnn_config_cases, sequence_model_cases
from helpers.checks.registry import Question, register


# --------------------------------------------------------------------------- 1. lstm_params

def lstm_params_reference(input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                          bidirectional: bool = False) -> int:
    """Parameters of nn.LSTM(input_size, hidden_size, num_layers, bias, bidirectional=...)."""
    return formulas.rnn_params("LSTM", input_size, hidden_size, num_layers, bias=bias, bidirectional=bidirectional)


def _lstm_params_cases(rng: random.Random) -> list:
    cases: list = [((20, 64), {}), ((20, 128), {})]          # the seed's two examples first
    return cases + rnn_config_cases(rng, 20, bidirectional_p=0.7)


register(Question(
    id="06.lstm_params",
    title="Implement lstm_params(input_size, hidden_size, num_layers=1, bias=True, bidirectional=False)",
    cases=_lstm_params_cases,
    reference=lstm_params_reference,
    hint="Per layer and direction: 4·H·in + 4·H·H + 2·4·H (torch has TWO bias vectors, bias_ih and "
         "bias_hh). Layer 0 reads in = input_size; every later layer reads the concatenated output "
         "of the layer below: in = D·H with D = 2 if bidirectional.",
))


# --------------------------------------------------------------------------- 2. output / h_n / c_n shapes

def lstm_shapes_reference(batch: int, seq_len: int, input_size: int, hidden_size: int, num_layers: int,
                          bidirectional: bool, batch_first: bool, proj_size: int) -> tuple:
    """(output.shape, h_n.shape, c_n.shape) of nn.LSTM, from torch itself (a tiny CPU forward pass:
    on the meta device torch's LSTM falls back to a slow step-by-step decomposition)."""
    import torch
    from torch import nn

    lstm = nn.LSTM(input_size, hidden_size, num_layers, batch_first=batch_first,
                   bidirectional=bidirectional, proj_size=proj_size)
    x_shape = (batch, seq_len, input_size) if batch_first else (seq_len, batch, input_size)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)              # tiny tensors: a thread pool only adds latency on a busy machine
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")   # "LSTM with projections is not supported with oneDNN"
            output, (h_n, c_n) = lstm(torch.zeros(x_shape))
    finally:
        torch.set_num_threads(threads)
    return tuple(output.shape), tuple(h_n.shape), tuple(c_n.shape)


def _shapes_cases(rng: random.Random) -> list:
    cases = []
    for i in range(16):
        hidden = rng.randint(2, 24)                       # small sizes: the reference runs torch
        proj = rng.randint(1, hidden - 1) if i % 3 == 2 else 0
        cases.append(((rng.randint(1, 8), rng.randint(1, 9), rng.randint(1, 16), hidden,
                       rng.randint(1, 4), rng.random() < 0.6, rng.random() < 0.5, proj), {}))
    return cases


register(Question(
    id="06.lstm_shapes",
    title="Predict (output.shape, h_n.shape, c_n.shape) of nn.LSTM(input_size, hidden_size, num_layers, "
          "batch_first=..., bidirectional=..., proj_size=...) on a (batch, seq_len, input_size) batch",
    cases=_shapes_cases,
    reference=lstm_shapes_reference,
    hint="With D = 2 if bidirectional else 1 and H_r = proj_size or hidden_size: output is "
         "(seq_len, batch, D·H_r), or (batch, seq_len, D·H_r) if batch_first; h_n is "
         "(D·num_layers, batch, H_r) and c_n is (D·num_layers, batch, hidden_size) — batch_first "
         "does NOT change h_n and c_n.",
))


# --------------------------------------------------------------------------- 3. hidden_size for a budget

def largest_hidden_size_reference(input_size: int, num_layers: int, bidirectional: bool, budget: int) -> int:
    """Largest hidden_size whose nn.LSTM has at most `budget` parameters (0 if even 1 is too big)."""
    return largest_fitting(lambda h: formulas.rnn_params("LSTM", input_size, h, num_layers,
                                                         bidirectional=bidirectional), budget)


def _budget_cases(rng: random.Random) -> list:
    cases = []
    for _ in range(14):
        I, L, bidir = rng.randint(1, 200), rng.randint(1, 3), rng.random() < 0.5

        def count(h: int) -> int:
            return formulas.rnn_params("LSTM", I, h, L, bidirectional=bidir)

        # the edges (exactly h's count, one short of h + 1's) and a budget in between, equally likely
        place = rng.choice(BUDGET_PLACES)
        cases.append(((I, L, bidir, budget_for_size(rng, count, rng.randint(1, 256), place)), {}))
    cases.append(((10, 1, False, 3), {}))                                   # nothing fits → 0
    return cases


register(Question(
    id="06.largest_hidden_size",
    title="Find the largest hidden_size such that nn.LSTM(input_size, hidden_size, num_layers, "
          "bidirectional=...) has at most `budget` parameters",
    cases=_budget_cases,
    reference=largest_hidden_size_reference,
    hint="The count grows strictly with hidden_size, so either solve the quadratic and adjust by ±1, "
         "or simply increase hidden_size while your lstm_params(...) stays ≤ budget. Return 0 if even "
         "hidden_size=1 is over budget.",
))


# --------------------------------------------------------------------------- 4. GRU of the same budget

def gru_matching_hidden_size_reference(input_size: int, hidden_size: int, num_layers: int) -> int:
    """Largest GRU hidden_size with at most as many parameters as nn.LSTM(input_size, hidden_size, num_layers)."""
    budget = formulas.rnn_params("LSTM", input_size, hidden_size, num_layers)
    return largest_fitting(lambda h: formulas.rnn_params("GRU", input_size, h, num_layers), budget)


register(Question(
    id="06.gru_matching_hidden_size",
    title="Replace nn.LSTM(input_size, hidden_size, num_layers) by a GRU with the same number of layers: "
          "what is the largest GRU hidden_size that uses no more parameters?",
    cases=lambda rng: [((rng.randint(1, 300), rng.randint(1, 300), rng.randint(1, 3)), {}) for _ in range(16)],
    reference=gru_matching_hidden_size_reference,
    hint="A GRU has 3 blocks where the LSTM has 4: per layer 3·(H·in + H·H + 2·H) versus "
         "4·(H·in + H·H + 2·H), with in = input_size for layer 0 and H for the layers above. The GRU "
         "can be wider — but not 4/3 wider, because the H·H terms grow quadratically.",
))


# --------------------------------------------------------------------------- 5. spot the bug

def second_lstm_input_size_reference(hidden_size: int, bidirectional: bool, proj_size: int) -> int:
    """in_features of layer 2 — read from torch's own 2-layer LSTM with the same settings."""
    from torch import nn

    lstm = nn.LSTM(1, hidden_size, num_layers=2, bidirectional=bidirectional, proj_size=proj_size, device="meta")
    return int(lstm.weight_ih_l1.shape[1])


def _second_layer_cases(rng: random.Random) -> list:
    cases = []
    for i in range(16):
        hidden = rng.randint(2, 512)
        proj = rng.randint(1, hidden - 1) if i % 2 else 0
        cases.append(((hidden, i % 4 < 2 or rng.random() < 0.5, proj), {}))
    return cases


register(Question(
    id="06.second_lstm_input_size",
    title="Spot the bug: the second of two hand-stacked LSTMs is built with input_size=hidden_size. "
          "What input_size must it have?",
    cases=_second_layer_cases,
    reference=second_lstm_input_size_reference,
    hint="The second LSTM reads the first one's `output`, whose last dimension is D·H_r: doubled if "
         "the first LSTM is bidirectional, and proj_size instead of hidden_size if it projects.",
))


# --------------------------------------------------------------------------- 6. packed batch_sizes

def packed_batch_sizes_reference(lengths: list) -> list:
    """PackedSequence.batch_sizes for sequences of these lengths (torch itself)."""
    import torch
    from torch.nn.utils.rnn import pack_padded_sequence

    x = torch.zeros(len(lengths), max(lengths), 1)
    packed = pack_padded_sequence(x, torch.tensor(lengths), batch_first=True, enforce_sorted=False)
    return packed.batch_sizes.tolist()


register(Question(
    id="06.packed_batch_sizes",
    title="Predict PackedSequence.batch_sizes for a batch of sequences with the given lengths",
    cases=lambda rng: [(([rng.randint(1, 12) for _ in range(rng.randint(1, 8))],), {}) for _ in range(16)],
    reference=packed_batch_sizes_reference,
    hint="batch_sizes[t] is the number of sequences that are still running at step t, i.e. whose "
         "length is > t, for t = 0 … max(lengths) − 1. The order of `lengths` does not matter.",
))


# --------------------------------------------------------------------------- 7. a chain of recurrent layers

def recurrent_chain_reference(batch: int, seq_len: int, input_size: int, layers: list) -> list:
    """[output shape, total parameters] of recurrent layers applied one after the other (batch_first).

    Each layer is ``{"mode": "LSTM" | "GRU" | "RNN", "hidden_size": H, "num_layers": L,
    "bidirectional": b}`` (+ ``"proj_size"`` for an LSTM) and reads the previous layer's output
    features (helpers.shapes.rnn_shapes, helpers.formulas.rnn_params; tests/test_checks_ch06.py
    runs the real chain)."""
    features, total = input_size, 0
    shape: tuple = (batch, seq_len, input_size)
    for layer in layers:
        kwargs = {k: v for k, v in layer.items() if k not in ("mode", "hidden_size")}
        total += formulas.rnn_params(layer["mode"], features, layer["hidden_size"], **kwargs)
        shape = shapes.rnn_shapes(layer["mode"], features, layer["hidden_size"], seq_len=seq_len, batch=batch,
                                  batch_first=True, **kwargs)["output"]
        features = shape[-1]
    return [tuple(shape), total]


def _chain_cases(rng: random.Random) -> list:
    cases = []
    for _ in range(14):
        layers = []
        for _ in range(rng.randint(2, 4)):
            mode = rng.choice(["LSTM", "GRU", "RNN"])
            layer: dict = {"mode": mode, "hidden_size": rng.randint(2, 64), "num_layers": rng.randint(1, 3),
                           "bidirectional": rng.random() < 0.5}
            if mode == "LSTM" and rng.random() < 0.5:
                layer["proj_size"] = rng.randint(1, layer["hidden_size"] - 1)
            layers.append(layer)
        cases.append(((rng.randint(1, 16), rng.randint(1, 50), rng.randint(1, 64), layers), {}))
    return cases


register(Question(
    id="06.recurrent_chain",
    title="Recurrent layers applied one after the other (batch_first): predict the final output shape and "
          "the total parameter count",
    cases=_chain_cases,
    reference=recurrent_chain_reference,
    hint="each layer's input_size is the feature size of the previous layer's output: D·H, or D·proj_size "
         "for an LSTM with projections (D = 2 if bidirectional). Count each layer with that input_size "
         "(your lstm_params; a GRU has 3 gate blocks, an RNN 1, an LSTM 4 — and proj_size shrinks W_hh and "
         "adds W_hr). batch and seq_len never change.",
))


# --------------------------------------------------------------------------- 8. repair a BiLSTM tagger

def fixed_bilstm_tagger_reference(input_size: int, hidden_size: int, tags: int):
    """The repaired many-to-many tagger: a bidirectional nn.LSTM(batch_first=True) gives (B, T, 2·H)
    (forward and backward outputs concatenated), a Linear(2·hidden_size, tags) per step → (B, T, tags).

    Built under ``torch.device("meta")`` by the caller (see :mod:`helpers.checks.module_answer`)."""
    from torch import nn

    class BiLSTMTagger(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(input_size, hidden_size, batch_first=True, bidirectional=True)  # (B, T, 2H)
            self.fc = nn.Linear(2 * hidden_size, tags)                                         # (B, T, tags)

        def forward(self, x):
            out, _ = self.lstm(x)  # (B, T, 2H)
            return self.fc(out)    # (B, T, tags)

    return BiLSTMTagger()


def _fixed_bilstm_tagger_probe(input_size: int, hidden_size: int, tags: int) -> dict:
    """A batch of B = 3 sequences of T = 5 steps; 8 output values on fixed weights."""
    return {"input": [3, 5, input_size], "values": 8}


register(Question(
    id="06.fixed_bilstm_tagger",
    title="Repair a broken bidirectional-LSTM tagger: the head must take both directions' features",
    cases=sequence_model_cases,
    reference=fixed_bilstm_tagger_reference,
    probe=_fixed_bilstm_tagger_probe,
    hint="a bidirectional LSTM concatenates the forward and the backward hidden state at every step: its "
         "output is (B, T, 2·hidden_size), so the head is Linear(2 * hidden_size, tags). Keep "
         "bidirectional=True, batch_first=True and the names lstm/fc.",
))
