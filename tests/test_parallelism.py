"""Chapter 16's formulas (helpers.parallelism) against real torch.distributed on 2 gloo ranks.

One pair of ranks (helpers.distributed.Ranks) is started for the whole file and runs every
measurement of helpers.parallel_runs: DDP, ZeroRedundancyOptimizer and FSDP2 fully_shard on random
MLPs drawn by hypothesis (bytes per rank from the local tensors; collectives counted by
helpers.comm.CommCounter and by torch's CommDebugMode), ColwiseParallel/RowwiseParallel on a Llama
block (with GQA, also t > num_key_value_heads), GPipe and 1F1B from torch.distributed.pipelining,
and an expert-parallel MoE with all-to-all. Skipped, with the reason, only when gloo ranks cannot start.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import distributed, parallel_runs, parallelism, scale
from helpers.planner import plan_memory

try:
    import torch.distributed as dist

    _CAN_RUN = dist.is_available() and dist.is_gloo_available()
except ImportError:  # pragma: no cover
    _CAN_RUN = False

WORLD = 2
ADAM_FP32 = dict(param_bytes=4, grad_bytes=4, optimizer_bytes=8)  # fp32 weights and grads, Adam's two fp32 moments


@pytest.fixture(scope="module")
def ranks():
    if not _CAN_RUN:
        pytest.skip("torch.distributed with the gloo backend is not available in this torch build")
    try:
        pool = distributed.Ranks(WORLD, timeout=120)
    except OSError as exc:  # pragma: no cover (a machine that cannot start processes)
        pytest.skip(f"cannot start {WORLD} gloo ranks on this machine: {exc}")
    yield pool
    pool.close()


def _shapes(sizes: list[int]) -> list[tuple[int, ...]]:
    out: list[tuple[int, ...]] = []
    for a, b in zip(sizes, sizes[1:]):
        out += [(b, a), (b,)]
    return out


mlp_sizes = st.lists(st.integers(1, 33), min_size=2, max_size=5)
SETTINGS = settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


# --------------------------------------------------------------------------- 1–2. bytes per rank, comm volume

@SETTINGS
@given(sizes=mlp_sizes)
def test_ddp_zero1_fsdp_bytes_per_rank_and_comm_volume(ranks, sizes):
    shapes = _shapes(sizes)
    psi = sum(math.prod(s) for s in shapes)
    padded = sum(parallelism.fsdp_padded_numel(s, WORLD) for s in shapes)
    ddp, zero1, fsdp, fsdp2 = (ranks.run(parallel_runs.data_parallel_step, sizes, k)
                               for k in ("ddp", "zero1", "fsdp", "fsdp_no_reshard"))
    # 1. bytes per rank from the local tensors
    for r in ddp:  # a full replica on every rank: ZeRO stage 0
        assert r["num_params"] == psi
        assert r["params"] + r["grads"] + r["optimizer"] == scale.zero_model_state_bytes(psi, WORLD, 0, **ADAM_FP32)
    assert all(r["params"] == r["grads"] == 4 * psi for r in zero1)  # only the optimizer state is sharded
    # whole tensors are given to ranks, so only the SUM over ranks is exactly N_d × the stage-1 share
    assert sum(r["optimizer"] for r in zero1) == WORLD * scale.zero_model_state_bytes(
        psi, WORLD, 1, param_bytes=0, grad_bytes=0, optimizer_bytes=8)
    for rank, r in enumerate(fsdp):
        local = [parallelism.fsdp_local_numel(s, WORLD, rank) for s in shapes]
        assert list(r["local_numel"].values()) == local
        assert r["params"] == 4 * sum(local) and r["grads"] == 4 * sum(local) and r["optimizer"] == 8 * sum(local)
    assert sum(r["params"] + r["grads"] + r["optimizer"] for r in fsdp) == WORLD * scale.zero_model_state_bytes(
        psi, WORLD, 3, **ADAM_FP32)
    # 2. collectives of the step
    for r in ddp:
        assert r["comm"]["volume"] == 4 * parallelism.data_parallel_comm_elements(psi, 0)
        assert set(r["comm"]["counts"]) == {"all_reduce"}
    for r in zero1:  # torch's ZeRO-1: DDP's all-reduce, then each owner broadcasts its updated tensors
        assert r["comm"]["bytes"] == {"all_reduce": 4 * psi, "broadcast": 4 * psi}
    for r in fsdp:  # gathered in the forward AND the backward, reduce-scattered once; padded shards
        assert r["comm"]["bytes"] == {"all_gather": 2 * 4 * padded, "reduce_scatter": 4 * padded}
        assert r["comm"]["volume"] == 4 * parallelism.data_parallel_comm_elements(padded, 3)
        assert r["unsharded_after_forward"] == 0
    for r in fsdp2:  # reshard_after_forward=False: no second gather, full parameters kept until backward
        assert r["comm"]["bytes"] == {"all_gather": 4 * padded, "reduce_scatter": 4 * padded}
        assert r["unsharded_after_forward"] == 4 * psi
    for r in ddp + zero1 + fsdp + fsdp2:  # torch's CommDebugMode sees exactly the collectives we count
        assert r["comm_debug_mode_total"] == sum(r["comm"]["counts"].values())


def test_fsdp_rank0_holds_the_ceil_rows_exactly():
    # a (7, 5) weight on 2 ranks: rows 4 + 3; a (3,) bias: 2 + 1; the all-gather pads to 2·4 rows and 2·2
    assert [parallelism.fsdp_local_numel((7, 5), 2, r) for r in (0, 1)] == [20, 15]
    assert [parallelism.fsdp_local_numel((3,), 4, r) for r in range(4)] == [1, 1, 1, 0]
    assert parallelism.fsdp_padded_numel((7, 5), 2) == 40 and parallelism.fsdp_padded_numel((3,), 4) == 4
    with pytest.raises(ValueError):
        parallelism.fsdp_local_numel((3,), 2, 2)


def test_data_parallel_comm_elements_rejects_bad_stages():
    assert parallelism.data_parallel_comm_elements(10, 3) == 30
    with pytest.raises(ValueError):
        parallelism.data_parallel_comm_elements(10, 4)


# --------------------------------------------------------------------------- 3. tensor parallel

@pytest.mark.parametrize("config", [
    dict(dim=16, n_heads=4, n_kv_heads=2, intermediate_size=24),   # GQA, t = nkv
    dict(dim=24, n_heads=6, n_kv_heads=1, intermediate_size=10),   # MQA, t > nkv: the KV head is replicated
    dict(dim=16, n_heads=2, n_kv_heads=2, head_dim=6, intermediate_size=8),  # MHA, explicit head_dim
])
def test_tensor_parallel_llama_block(ranks, config):
    B, T = 2, 5
    res = ranks.run(parallel_runs.tensor_parallel_block, config, B, T)
    hs = config.get("head_dim", config["dim"] // config["n_heads"])
    expected = parallelism.tensor_parallel_block_params(config["dim"], config["intermediate_size"], config["n_heads"],
                                                        config["n_kv_heads"], hs, WORLD)
    for r in res:
        assert r["total"] == expected["total"]
        assert r["params"]["self_attn.k_proj.weight"] == config["dim"] * hs * max(config["n_kv_heads"] // WORLD, 1)
        assert r["output_equal"] and r["input_grad_equal"]
        # forward: one all-reduce after o_proj, one after down_proj, each of the (B, T, D) fp32 activation
        assert r["forward"]["counts"] == {"all_reduce": 2}
        assert r["forward"]["bytes"]["all_reduce"] == 2 * B * T * config["dim"] * 4
        # backward: DTensor all-reduces the input gradient of each of the 5 column-parallel projections
        assert r["backward"]["counts"] == {"all_reduce": 5}
    if config["n_kv_heads"] < WORLD:
        assert res[0]["naive_k_rows"] < hs  # plain column sharding would cut a KV head in pieces
    # the planner's per-GPU share of one layer (a 2-layer plan minus a 1-layer plan, fp32) is what each rank holds
    model = dict(vocab_size=8, hidden_size=config["dim"], intermediate_size=config["intermediate_size"],
                 num_attention_heads=config["n_heads"], num_key_value_heads=config["n_kv_heads"], head_dim=hs)
    one, two = (plan_memory(dict(model, num_hidden_layers=L), precision="fp32", tensor_parallel=WORLD,
                            num_gpus=WORLD) for L in (1, 2))
    assert all(two.parts["weights"] - one.parts["weights"] == 4 * r["total"] for r in res)


def test_tensor_parallel_params_refuse_splits_that_cut_heads():
    with pytest.raises(ValueError):
        parallelism.tensor_parallel_block_params(64, 128, 8, 3, 8, 2)  # nh % nkv
    with pytest.raises(ValueError):
        parallelism.tensor_parallel_kv_heads(3, 2)
    assert parallelism.tensor_parallel_kv_heads(8, 2) == 4 and parallelism.tensor_parallel_kv_heads(2, 8) == 1


# --------------------------------------------------------------------------- 4. pipeline parallel

@pytest.mark.parametrize("schedule", ["gpipe", "1f1b"])
@pytest.mark.parametrize("m", [2, 3, 5])
def test_pipeline_schedules_run_in_the_order_we_simulate(ranks, schedule, m):
    res = ranks.run(parallel_runs.pipeline_step, schedule, m, 16, 1, 2)
    ours = (parallelism.gpipe_order if schedule == "gpipe" else parallelism.one_f_one_b_order)(WORLD, m)
    for rank, r in enumerate(res):
        assert [tuple(a) for a in r["order"]] == ours[rank]
        assert r["max_in_flight"] == (m if schedule == "gpipe" else min(WORLD - rank, m))
        sim = parallelism.simulate_pipeline(ours, [1.0] * WORLD, [2.0] * WORLD)
        assert sim.max_in_flight[rank] == r["max_in_flight"]
    assert res[-1]["loss_equal"] is True
    sends = res[0]["comm"]["bytes"]["send"]  # stage 0 sends m activations (micro-batch 2 × width 16, fp32)
    assert sends == m * res[0]["activation_bytes"]


@given(p=st.integers(1, 8), m=st.integers(1, 16), tf=st.floats(0.1, 10), ratio=st.floats(0.5, 3))
def test_simulated_bubble_equals_the_formula_for_equal_stages(p, m, tf, ratio):
    for orders in (parallelism.gpipe_order(p, m), parallelism.one_f_one_b_order(p, m)):
        sim = parallelism.simulate_pipeline(orders, [tf] * p, [tf * ratio] * p)
        assert sim.makespan == pytest.approx((m + p - 1) * tf * (1 + ratio))
        assert sim.bubble_fraction == pytest.approx(parallelism.pipeline_bubble_fraction(p, m), abs=1e-9)
    assert max(parallelism.simulate_pipeline(parallelism.one_f_one_b_order(p, m), [tf] * p, [tf] * p)
               .max_in_flight) == min(p, m)


def test_simulation_refuses_a_deadlock():
    with pytest.raises(ValueError, match="deadlock"):
        parallelism.simulate_pipeline([[("B", 0), ("F", 0)], [("F", 0), ("B", 0)]], [1, 1], [1, 1])


# --------------------------------------------------------------------------- 5. expert parallel

@pytest.mark.parametrize("E,k,N", [(4, 2, 6), (2, 1, 9), (6, 3, 5)])
def test_expert_parallel_all_to_all_bytes(ranks, E, k, N):
    D = 8
    res = ranks.run(parallel_runs.expert_parallel_moe, D, E, k, N)
    assert sorted(e for r in res for e in r["experts"]) == list(range(E))
    for r in res:
        assert len(r["experts"]) == E // WORLD
        assert r["output_equal"]
        assert r["dispatch_bytes"] == parallelism.expert_parallel_alltoall_bytes(N, k, D, 4)
    assert sum(r["combine_bytes"] for r in res) == sum(r["dispatch_bytes"] for r in res)
