"""helpers.distributed: real gloo ranks on CPU; ZeRO-1 shard bytes measured against the ZeRO formula.

The two measurements run on one pair of ranks kept for the module (``Ranks``: each start of a pair
spawns two processes that import torch and join a gloo group, ~2 s of CPU each); ``run`` (a fresh
pair per call) is the path of the failing-rank test."""

from __future__ import annotations

import random

import pytest

from helpers import distributed, scale

try:
    import torch.distributed as dist

    _CAN_RUN = dist.is_available() and dist.is_gloo_available()
except ImportError:  # pragma: no cover
    _CAN_RUN = False

pytestmark = pytest.mark.skipif(not _CAN_RUN, reason="torch.distributed with the gloo backend is not available")
WORLD = 2


@pytest.fixture(scope="module")
def ranks():
    """One pair of gloo ranks for the measurements of this file."""
    with distributed.Ranks(WORLD, timeout=60) as pool:
        yield pool


def _raise(rank, world_size):
    raise ValueError(f"boom on {rank}")


def test_zero1_state_bytes_per_rank_match_zero_formula(ranks):
    rng = random.Random(16)
    sizes = [rng.randint(3, 40) for _ in range(rng.randint(3, 5))]
    world = ranks.world_size
    res = ranks.run(distributed.zero1_optimizer_state_bytes, sizes)
    psi = sum(a * b + b for a, b in zip(sizes, sizes[1:]))
    assert all(r["num_params"] == psi for r in res)
    assert sum(r["local_numel"] for r in res) == psi          # every parameter's state lives on one rank
    assert all(r["state_bytes"] == 8 * r["local_numel"] for r in res)  # Adam: exp_avg + exp_avg_sq in fp32
    # the sum over ranks is N_d × the stage-1 optimizer share of Figure 1 (K = 8, no param/grad bytes)
    assert sum(r["state_bytes"] for r in res) == world * scale.zero_model_state_bytes(
        psi, world, 1, param_bytes=0, grad_bytes=0, optimizer_bytes=8)


def test_a_failing_rank_is_reported_not_hung():
    with pytest.raises(RuntimeError, match="boom"):
        distributed.run(_raise, WORLD, timeout=60)


def test_fsdp2_shards_dim0_with_ceil_rows_and_sums_to_psi(ranks):
    rng = random.Random(3)
    sizes = [rng.randint(2, 30) for _ in range(3)]
    world = ranks.world_size
    res = ranks.run(distributed.fsdp_shard_numel, sizes)
    shapes = {}
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        shapes[f"{i}.weight"], shapes[f"{i}.bias"] = (b, a), (b, 1)
    for name, (rows, row) in shapes.items():
        chunk = -(-rows // world)
        for r in range(world):
            assert res[r][name] == [max(0, min(chunk, rows - r * chunk)) * row, rows * row], name
    total = sum(local for r in res for local, _ in r.values())
    assert total == sum(a * b + b for a, b in zip(sizes, sizes[1:]))  # sharded state: Ψ/N_d per rank in sum
