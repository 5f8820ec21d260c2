"""Chapter 16 (Parallelism) exercise questions.

Reference answers come from ``helpers.parallelism`` and ``helpers.scale``, which tests/test_parallelism.py
checks against real torch.distributed on gloo ranks (FSDP2's local shards and all-gather bytes, the
collectives of DDP and ZeRO-3, ColwiseParallel/RowwiseParallel on a Llama block, torch's pipeline schedules,
an expert-parallel all-to-all); tests/test_checks_ch16.py re-checks every reference independently.
"""

from __future__ import annotations

import random

from helpers import parallelism
from helpers.checks._gen import close_within, log_uniform
from helpers.checks.registry import Question, register


# --------------------------------------------------------------------------- 1. FSDP2 local shard


def fsdp_local_numel_reference(rows: int, row_numel: int, world_size: int, rank: int) -> int:
    return parallelism.fsdp_local_numel((rows, row_numel), world_size, rank)


def _shard_cases(rng: random.Random) -> list:
    cases: list = [((7, 5, 2, 1), {}), ((3, 1, 4, 3), {})]  # the last rank of a short tensor holds nothing
    for _ in range(14):
        world = rng.choice([2, 3, 4, 8, 16, 64])
        cases.append(((rng.randint(1, 300), rng.randint(1, 64), world, rng.randrange(world)), {}))
    return cases


register(Question(
    id="16.fsdp_local_numel",
    title="Elements of a (rows, row_numel) parameter that `rank` holds under FSDP2 fully_shard over world_size "
          "ranks (dim-0 chunks as torch.chunk makes them): fsdp_local_numel(rows, row_numel, world_size, rank)",
    cases=_shard_cases,
    reference=fsdp_local_numel_reference,
    hint="every rank gets c = ceil(rows / world_size) rows, except that the last ranks get what is left: "
         "max(0, min(c, rows - rank·c)) rows of row_numel elements.",
))


# --------------------------------------------------------------------------- 2. FSDP2 padding


def fsdp_padding_reference(rows: int, row_numel: int, world_size: int) -> int:
    """Elements of padding in FSDP2's all-gather buffer for one parameter."""
    return parallelism.fsdp_padded_numel((rows, row_numel), world_size) - rows * row_numel


register(Question(
    id="16.fsdp_padding",
    title="Padding elements FSDP2's all-gather moves for one (rows, row_numel) parameter over world_size ranks: "
          "fsdp_padding(rows, row_numel, world_size)",
    cases=lambda rng: [((7, 5, 2), {}), ((8, 3, 4), {})] + [((rng.randint(1, 300), rng.randint(1, 64),
                                                              rng.choice([2, 3, 4, 8, 64])), {}) for _ in range(12)],
    reference=fsdp_padding_reference,
    hint="each rank's shard is padded to ceil(rows / world_size) rows: world_size·ceil(rows / world_size) − rows "
         "rows of padding, each row_numel elements.",
))


# --------------------------------------------------------------------------- 3. data-parallel comm bytes


def comm_bytes_reference(num_params: int, zero_stage: int, bytes_per_element: int = 2) -> int:
    return parallelism.data_parallel_comm_elements(num_params, zero_stage) * bytes_per_element


register(Question(
    id="16.comm_bytes",
    title="Bytes each rank communicates per step under ZeRO stage 0–3 (ZeRO §7's count; a ring all-reduce "
          "counted as a reduce-scatter plus an all-gather): comm_bytes(num_params, zero_stage, bytes_per_element=2)",
    cases=lambda rng: [((70_000_000_000, 3), {}), ((1000, 0), {"bytes_per_element": 4})]
    + [((log_uniform(rng, 1, 10**11), rng.randint(0, 3)), {"bytes_per_element": rng.choice([2, 4])} if rng.random() < 0.5
        else {}) for _ in range(14)],
    reference=comm_bytes_reference,
    hint="stages 0–2 move 2Ψ elements (gradients reduce-scattered, parameters or gradients all-gathered); stage 3 "
         "gathers the parameters twice (forward and backward) and reduce-scatters the gradients: 3Ψ.",
))


# --------------------------------------------------------------------------- 4. tensor-parallel block params


def tp_block_params_reference(hidden_size: int, intermediate_size: int, num_attention_heads: int,
                              num_key_value_heads: int, head_dim: int, tensor_parallel: int) -> int:
    return parallelism.tensor_parallel_block_params(hidden_size, intermediate_size, num_attention_heads,
                                                    num_key_value_heads, head_dim, tensor_parallel)["total"]


def _tp_cases(rng: random.Random) -> list:
    cases: list = [((8192, 28672, 64, 8, 128, 8), {}), ((8192, 28672, 64, 8, 128, 16), {})]  # Llama-3-70B, t > nkv
    for _ in range(12):
        t = rng.choice([1, 2, 4, 8])
        heads = t * rng.choice([1, 2, 4, 8])
        kv = rng.choice([g for g in range(1, heads + 1) if heads % g == 0 and (g % t == 0 or t % g == 0)])
        cases.append(((rng.choice([64, 256, 1024, 4096]), t * rng.randint(1, 512), heads, kv,
                       rng.choice([32, 64, 128]), t), {}))
    return cases


register(Question(
    id="16.tp_block_params",
    title="Parameters ONE rank holds of a Llama block (no biases, two RMSNorms) under Megatron tensor parallelism: "
          "q/k/v/gate/up column-parallel, o/down row-parallel, norms replicated; when tensor_parallel > "
          "num_key_value_heads each KV head is replicated: tp_block_params(hidden_size, intermediate_size, "
          "num_attention_heads, num_key_value_heads, head_dim, tensor_parallel)",
    cases=_tp_cases,
    reference=tp_block_params_reference,
    hint="q and o: 2·D·(nh/t)·hs; k and v: 2·D·max(nkv/t, 1)·hs; the SwiGLU MLP: 3·D·F/t; plus 2·D for the "
         "replicated norms.",
))


# --------------------------------------------------------------------------- 5. pipeline bubble


register(Question(
    id="16.bubble_fraction",
    title="Idle share of a GPipe or 1F1B step with p equal stages and m micro-batches: bubble_fraction(num_stages, "
          "num_microbatches)",
    cases=lambda rng: [((1, 8), {}), ((4, 4), {})] + [((rng.randint(1, 64), rng.randint(1, 256)), {})
                                                      for _ in range(12)],
    reference=parallelism.pipeline_bubble_fraction,
    hint="the step lasts (m + p − 1) slots of (forward + backward), each stage works m of them: "
         "(p − 1)/(m + p − 1).",
    compare=close_within(1e-12),
))


# --------------------------------------------------------------------------- 6. all-to-all bytes


register(Question(
    id="16.alltoall_bytes",
    title="Bytes one rank puts into an MoE layer's dispatch all-to-all (its own slice included): "
          "alltoall_bytes(num_tokens, top_k, hidden_size, bytes_per_element=2)",
    cases=lambda rng: [((4096, 8, 7168), {})] + [((log_uniform(rng, 1, 10**6), rng.randint(1, 8),
                                                   rng.choice([512, 4096, 7168])),
                                                  {"bytes_per_element": rng.choice([1, 2, 4])} if rng.random() < 0.5
                                                  else {}) for _ in range(12)],
    reference=parallelism.expert_parallel_alltoall_bytes,
    hint="every token travels once to each of its top_k experts: num_tokens·top_k·hidden_size·bytes_per_element.",
    compare=close_within(1e-12),
))


# --------------------------------------------------------------------------- 7. a column shard in torch


def column_shard_reference(in_features: int, out_features: int, tensor_parallel: int, bias: bool = True):
    """The nn.Linear one rank holds of nn.Linear(in_features, out_features) under ColwiseParallel."""
    from torch import nn

    return nn.Linear(in_features, out_features // tensor_parallel, bias=bias)


def _column_cases(rng: random.Random) -> list:
    cases = []
    for _ in range(8):
        t = rng.choice([2, 4, 8])
        cases.append(((rng.randint(1, 48), t * rng.randint(1, 12), t), {"bias": rng.random() < 0.5}))
    return cases


register(Question(
    id="16.column_shard",
    title="In torch: return the nn.Linear that ONE rank holds of nn.Linear(in_features, out_features, bias) "
          "under ColwiseParallel over tensor_parallel ranks: column_shard(in_features, out_features, "
          "tensor_parallel, bias=True)",
    cases=_column_cases,
    reference=column_shard_reference,
    probe=lambda in_features, out_features, tensor_parallel, bias=True: {"input": [2, in_features], "values": 4},
    hint="a column-parallel linear splits the OUTPUT features: each rank keeps out_features / tensor_parallel rows "
         "of the weight (and of the bias), and the whole input.",
))
