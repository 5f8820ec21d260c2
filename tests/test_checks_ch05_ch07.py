"""Chapter 05 and 07 exercise questions: references agree with real torch, a correct answer
passes `check`, and the typical wrong answers (one bias vector, batch-first h_n, missing tanh
derivative, a tied head counted twice, …) are rejected."""

from __future__ import annotations

import math
import random

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers.checks import check
from helpers.checks.registry import get, make_cases, questions_for_chapter
from helpers.counting import count_params
from helpers.models.rnn import measure_saved_numel, rnn_bptt_manual
from tests._limits import binding_limit

SEEDS = [0, 1]


def cases_of(qid: str, seed: int) -> list:
    return make_cases(get(qid), random.Random(seed))


@pytest.mark.parametrize("chapter", ["05", "07"])
def test_at_least_four_randomised_questions(chapter: str) -> None:
    qids = [q.id for q in questions_for_chapter(chapter)]
    assert len(qids) >= 4
    for qid in qids:
        assert cases_of(qid, 0) != cases_of(qid, 1)


# ----------------------------------------------------------------------------- references vs torch

@pytest.mark.parametrize("seed", SEEDS)
def test_ch05_references_are_torch(seed: int) -> None:
    q = get("05.vanilla_rnn_params")
    for args, kwargs in cases_of(q.id, seed):
        assert q.reference(*args, **kwargs) == count_params(nn.RNN(*args, **kwargs, device="meta"))
    q = get("05.tbptt_saved_activations")
    for (k, B, I, H, L), _ in cases_of(q.id, seed)[:6]:
        assert q.reference(k, B, I, H, L) == measure_saved_numel(nn.RNN(I, H, L), torch.zeros(k, B, I))
    q = get("05.bptt_step")
    for args, _ in cases_of(q.id, seed):
        W_ih, W_hh, b, x_t, h_prev, g = (torch.tensor(a, dtype=torch.float64) for a in args)
        h = torch.tanh(W_ih @ x_t + W_hh @ h_prev + b)
        grads = rnn_bptt_manual(x_t.view(1, 1, -1), h_prev.view(1, -1), W_ih, W_hh, b, torch.zeros_like(b),
                                h.view(1, 1, -1), g.view(1, 1, -1))           # T = 1, B = 1
        want_h, want_W = q.reference(*args)
        torch.testing.assert_close(torch.tensor(want_h, dtype=torch.float64), grads["h0"][0])
        torch.testing.assert_close(torch.tensor(want_W, dtype=torch.float64), grads["W_hh"])


@pytest.mark.parametrize("seed", SEEDS)
def test_ch07_references_are_torch(seed: int) -> None:
    q = get("07.embedding_output_shape")
    for (shape, V, D), _ in cases_of(q.id, seed):
        assert list(q.reference(shape, V, D)) == list(shape) + [D]
    q = get("07.one_hot_matmul")
    for (idx, W), _ in cases_of(q.id, seed):
        W_t = torch.tensor(W, dtype=torch.float64)
        want = F.one_hot(torch.tensor(idx), len(W)).double() @ W_t
        torch.testing.assert_close(torch.tensor(q.reference(idx, W), dtype=torch.float64), want)
    q = get("07.tinylm_params")
    for (V, D, P, tie, pos), _ in cases_of(q.id, seed):
        assert q.reference(V, D, P, tie, pos) == (V * D * (1 if tie else 2) + 2 * D
                                                  + (P * D if pos == "learned" else 0))
    q = get("07.vocab_memory_bytes")
    for (V, D, dtype, tie), _ in cases_of(q.id, seed):
        size = torch.empty((), dtype=getattr(torch, dtype)).element_size()
        assert q.reference(V, D, dtype, tie) == V * D * (1 if tie else 2) * size


# ----------------------------------------------------------------------------- right and wrong answers

def vanilla_rnn_params(input_size, hidden_size, num_layers=1, bias=True, bidirectional=False, biases=2):
    D, H, total = (2 if bidirectional else 1), hidden_size, 0
    for layer in range(num_layers):
        layer_in = input_size if layer == 0 else D * H
        total += D * (H * layer_in + H * H + (biases * H if bias else 0))
    return total


def rnn_shapes(batch, seq_len, input_size, hidden_size, num_layers, bidirectional, batch_first, wrong=False):
    D = 2 if bidirectional else 1
    output = (batch, seq_len, D * hidden_size) if batch_first else (seq_len, batch, D * hidden_size)
    h_n = (batch, D * num_layers, hidden_size) if (batch_first and wrong) else (D * num_layers, batch, hidden_size)
    return output, h_n


def bptt_step(W_ih, W_hh, b, x_t, h_prev, grad_h, derivative=True):
    H = len(W_hh)
    a = [sum(W_ih[i][j] * x_t[j] for j in range(len(x_t))) + sum(W_hh[i][j] * h_prev[j] for j in range(H)) + b[i]
         for i in range(H)]
    h = [math.tanh(v) for v in a]
    delta = [grad_h[i] * ((1 - h[i] ** 2) if derivative else 1) for i in range(H)]
    return ([sum(W_hh[i][j] * delta[i] for i in range(H)) for j in range(H)],
            [[delta[i] * h_prev[j] for j in range(H)] for i in range(H)])


def tbptt_saved_activations(k, batch, input_size, hidden_size, num_layers, with_h0=True):
    return sum(k * batch * (input_size if l == 0 else hidden_size) + (k + int(with_h0)) * batch * hidden_size
               for l in range(num_layers))


def simple_rnn_params(input_size, hidden_size, output_size, num_layers):
    return vanilla_rnn_params(input_size, hidden_size, num_layers) + hidden_size * output_size + output_size


def embedding_output_shape(index_shape, num_embeddings, embedding_dim):
    return tuple(index_shape) + (embedding_dim,)


def one_hot_matmul(indices, weight):
    V = len(weight)
    return [[sum((1.0 if j == i else 0.0) * weight[j][d] for j in range(V)) for d in range(len(weight[0]))]
            for i in indices]


def tinylm_params(vocab_size, d_model, max_len, tie_weights, positional, double_count=False):
    heads = 1 if (tie_weights and not double_count) else 2
    return heads * vocab_size * d_model + 2 * d_model + (max_len * d_model if positional == "learned" else 0)


def vocab_memory_bytes(vocab_size, d_model, dtype, tie_weights):
    size = {"float32": 4, "bfloat16": 2, "float16": 2, "float64": 8}[dtype]
    return (1 if tie_weights else 2) * vocab_size * d_model * size


def _largest(fits):
    """Largest n >= 1 with fits(n) (0 if none): a student's plain loop."""
    n = 0
    while fits(n + 1):
        n += 1
    return n


def largest_rnn_hidden(input_size, num_layers, k, batch, param_budget, activation_budget, memory=True):
    return _largest(lambda h: vanilla_rnn_params(input_size, h, num_layers) <= param_budget
                    and (not memory or tbptt_saved_activations(k, batch, input_size, h, num_layers)
                         <= activation_budget))


def largest_vocab(d_model, max_len, tie_weights, positional, param_budget, memory_budget, dtype, positions=True):
    per_token = d_model * (1 if tie_weights else 2)
    fixed = 2 * d_model + (max_len * d_model if positional == "learned" and positions else 0)
    size = {"float32": 4, "bfloat16": 2, "float16": 2, "float64": 8}[dtype]
    by_params = max(0, (param_budget - fixed) // per_token)
    return min(by_params, memory_budget // (per_token * size))


RIGHT = {"05.vanilla_rnn_params": vanilla_rnn_params, "05.rnn_shapes": rnn_shapes, "05.bptt_step": bptt_step,
         "05.tbptt_saved_activations": tbptt_saved_activations, "05.simple_rnn_params": simple_rnn_params,
         "05.largest_rnn_hidden": largest_rnn_hidden, "07.largest_vocab": largest_vocab,
         "07.embedding_output_shape": embedding_output_shape,
         "07.one_hot_matmul": one_hot_matmul, "07.tinylm_params": tinylm_params,
         "07.vocab_memory_bytes": vocab_memory_bytes}
WRONG = {
    "05.vanilla_rnn_params": lambda *a, **k: vanilla_rnn_params(*a, **k, biases=1),        # the seeds' one bias
    "05.rnn_shapes": lambda *a: rnn_shapes(*a, wrong=True),                               # batch-first h_n
    "05.bptt_step": lambda *a: bptt_step(*a, derivative=False),                           # forgot tanh'
    "05.tbptt_saved_activations": lambda *a: tbptt_saved_activations(*a, with_h0=False),  # forgot h_0
    "05.simple_rnn_params": lambda I, H, O, L: vanilla_rnn_params(I, H, L, biases=1) + H * O + O,
    "05.largest_rnn_hidden": lambda *a: largest_rnn_hidden(*a, memory=False),           # the budget only
    "07.largest_vocab": lambda *a: largest_vocab(*a, positions=False),                  # forgot max_len·D
    "07.embedding_output_shape": lambda s, V, D: tuple(s) + (V, D),
    "07.one_hot_matmul": lambda idx, W: [W[i][:1] * len(W[0]) for i in idx],
    "07.tinylm_params": lambda *a: tinylm_params(*a, double_count=True),                  # tied head twice
    "07.vocab_memory_bytes": lambda V, D, dtype, tie: 2 * V * D * 4,
}


@pytest.mark.parametrize("qid", sorted(RIGHT))
def test_right_answer_passes_and_wrong_answer_fails(qid: str, capsys: pytest.CaptureFixture) -> None:
    assert check(qid, RIGHT[qid])
    assert not check(qid, WRONG[qid])
    out = capsys.readouterr().out
    assert "✅" in out and "❌" in out


# ----------------------------------------------------------------------------- two-limit questions vs torch

@pytest.mark.parametrize("seed", SEEDS)
def test_largest_rnn_hidden_meets_both_limits_in_torch(seed: int) -> None:
    q = get("05.largest_rnn_hidden")
    binding = set()
    for (I, L, k, B, params, memory), _ in cases_of(q.id, seed):
        H = q.reference(I, L, k, B, params, memory)

        def measured(h):
            rnn = nn.RNN(I, h, L)
            return {"params": count_params(rnn), "memory": measure_saved_numel(rnn, torch.zeros(k, B, I))}

        binding.add(binding_limit(H, measured, {"params": params, "memory": memory}))
    assert binding == {"params", "memory"}


@pytest.mark.parametrize("seed", SEEDS)
def test_largest_vocab_meets_both_limits_in_torch(seed: int) -> None:
    from helpers.counting import bytes_for
    from helpers.models.embedding import TinyLM

    q = get("07.largest_vocab")
    binding = set()
    for (D, P, tie, pos, params, memory, dtype), _ in cases_of(q.id, seed):
        V = q.reference(D, P, tie, pos, params, memory, dtype)

        def measured(v):
            with torch.device("meta"):
                model = TinyLM(v, D, max_len=P, tie_weights=tie, positional=pos)
            tables = {id(t): t for t in (model.tok_emb.weight, model.lm_head.weight)}  # one tensor if tied
            return {"params": count_params(model),
                    "memory": sum(bytes_for(t.numel(), getattr(torch, dtype)) for t in tables.values())}

        binding.add(binding_limit(V, measured, {"params": params, "memory": memory}))
    assert binding == {"params", "memory"}
