"""Chapter 16 exercise questions: references re-derived independently, right answers pass, typical mistakes get a hint.

The references (helpers/checks/ch16.py) come from helpers.parallelism, which tests/test_parallelism.py
measures against real torch.distributed on gloo ranks; here each is re-computed another way on the
questions' own randomised cases: shards with torch.chunk, the Llama block sharded by slicing real
nn.Linear weights, the bubble from the event simulator, the column shard from torch.chunk of a real layer.
"""

from __future__ import annotations

import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from helpers import parallelism
from helpers.checks import check
from helpers.checks.registry import get, make_cases, questions_for_chapter
from tests._feedback import assert_friendly_failure

seeds = st.integers(0, 2**32 - 1)


def cases_of(qid, seed):
    return make_cases(get(qid), random.Random(seed))


def test_chapter_has_six_or_more_randomised_questions_one_in_torch():
    questions = questions_for_chapter("16")
    assert len(questions) >= 6
    assert any(q.probe is not None for q in questions)


@settings(max_examples=5, deadline=None)
@given(seed=seeds)
def test_shard_and_padding_references_equal_torch_chunk(seed):
    for (rows, row, world, rank), _ in cases_of("16.fsdp_local_numel", seed):
        chunks = torch.empty(rows, row, device="meta").chunk(world)
        local = chunks[rank].numel() if rank < len(chunks) else 0
        assert get("16.fsdp_local_numel").reference(rows, row, world, rank) == local
    for (rows, row, world), _ in cases_of("16.fsdp_padding", seed):
        biggest = torch.empty(rows, row, device="meta").chunk(world)[0].numel()
        assert get("16.fsdp_padding").reference(rows, row, world) == world * biggest - rows * row


@settings(max_examples=3, deadline=None)
@given(seed=seeds)
def test_tp_block_params_equal_sliced_linears(seed):
    q = get("16.tp_block_params")
    for (D, Fh, nh, nkv, hs, t), _ in cases_of(q.id, seed):
        kv = nkv if nkv >= t else t  # KV heads copied up to t so that each rank gets whole heads
        with torch.device("meta"):
            mats = [nn.Linear(D, nh * hs, bias=False), nn.Linear(D, kv * hs, bias=False),
                    nn.Linear(D, kv * hs, bias=False), nn.Linear(D, Fh, bias=False), nn.Linear(D, Fh, bias=False)]
            rows = [nn.Linear(nh * hs, D, bias=False), nn.Linear(Fh, D, bias=False)]
        local = sum(m.weight.chunk(t, dim=0)[0].numel() for m in mats)  # column parallel: output rows
        local += sum(m.weight.chunk(t, dim=1)[0].numel() for m in rows)  # row parallel: input columns
        assert q.reference(D, Fh, nh, nkv, hs, t) == local + 2 * D


@pytest.mark.parametrize("seed", [0, 1])
def test_bubble_reference_equals_the_simulated_schedule(seed):
    q = get("16.bubble_fraction")
    for (p, m), _ in cases_of(q.id, seed):
        if p > 16 or m > 64:
            continue
        sim = parallelism.simulate_pipeline(parallelism.gpipe_order(p, m), [1.0] * p, [2.0] * p)
        assert q.reference(p, m) == pytest.approx(sim.bubble_fraction, abs=1e-12)


def test_comm_and_alltoall_references_against_counted_collectives():
    # DDP: one all-reduce of Ψ elements = reduce-scatter + all-gather; ZeRO-3: two all-gathers + one reduce-scatter
    assert get("16.comm_bytes").reference(1000, 0, 4) == 4 * (1000 + 1000)
    assert get("16.comm_bytes").reference(1000, 3, 4) == 4 * (1000 + 1000 + 1000)
    x = torch.empty(6, 2, 8)  # (N, k, D): every token once per chosen expert
    assert get("16.alltoall_bytes").reference(6, 2, 8, 4) == x.numel() * x.element_size()


def test_column_shard_reference_is_a_chunk_of_the_full_linear():
    for (i, o, t), kw in cases_of("16.column_shard", 0):
        full = nn.Linear(i, o, **kw)
        shard = get("16.column_shard").reference(i, o, t, **kw)
        assert shard.weight.shape == full.weight.chunk(t, dim=0)[0].shape
        assert (shard.bias is None) == (full.bias is None)


# --------------------------------------------------------------------------- right and wrong answers


def test_right_answers_pass(capsys):
    assert check("16.fsdp_local_numel", lambda r, n, w, k: parallelism.fsdp_local_numel((r, n), w, k))
    assert check("16.bubble_fraction", lambda p, m: (p - 1) / (m + p - 1))
    assert check("16.column_shard", lambda i, o, t, bias=True: nn.Linear(i, o // t, bias=bias))


@pytest.mark.parametrize("qid,wrong,words", [
    ("16.fsdp_local_numel", lambda r, n, w, k: r * n // w, "returned"),                 # Ψ/N_d, no ceil rows
    ("16.fsdp_padding", lambda r, n, w: 0, "returned"),                                  # forgot the padding
    ("16.comm_bytes", lambda n, s, b=2: 2 * n * b, "returned"),                           # ZeRO-3 as 2Ψ
    ("16.tp_block_params", lambda D, F, nh, kv, hs, t: (2 * D * nh * hs + 2 * D * kv * hs + 3 * D * F) // t + 2 * D,
     "returned"),                                                                        # KV heads split below 1
    ("16.bubble_fraction", lambda p, m: (p - 1) / m, "returned"),                         # Narayanan's ratio to ideal
    ("16.alltoall_bytes", lambda n, k, d, b=2: n * d * b, "returned"),                    # forgot top_k
])
def test_typical_mistakes_get_a_friendly_hint(capsys, qid, wrong, words):
    assert_friendly_failure(capsys, qid, wrong, "wrong", words)


def test_a_row_shard_instead_of_a_column_shard_gets_a_hint(capsys):
    result = check("16.column_shard", lambda i, o, t, bias=True: nn.Linear(i // t or 1, o, bias=bias))
    out = capsys.readouterr().out
    assert not result and "Traceback" not in out and "Hint:" in out
