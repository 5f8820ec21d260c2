"""Parallel training as pure arithmetic: shard sizes, communication volume, tensor-parallel shares,
pipeline bubbles (with an event-level schedule simulator) and expert-parallel all-to-all bytes.

Like `helpers.scale`, this module never imports torch: chapter 16 and tests/test_parallelism.py
compare every function with what real ``torch.distributed`` code does on gloo ranks
(`helpers.parallel_runs`: DDP, ``ZeroRedundancyOptimizer``, FSDP2 ``fully_shard``,
``ColwiseParallel``/``RowwiseParallel``, ``torch.distributed.pipelining``, an all-to-all MoE).

Symbols
-------
    Ψ    parameters;  N_d data-parallel ranks (ZeRO's letters)
    t    tensor-parallel size;  p pipeline stages;  m micro-batches per step
    D    hidden_size;  F intermediate_size;  nh / nkv query / key-value heads;  hs head_dim
    N    tokens;  k experts per token (top_k);  E experts;  ep expert-parallel ranks

Sources
-------
* Rajbhandari et al. 2020, ZeRO, arXiv 1910.02054: §5 (the three stages, memory per rank) and §7
  (communication: data parallel moves 2Ψ per step, ZeRO-3 3Ψ, i.e. 1.5×).
* Shoeybi et al. 2019, Megatron-LM, arXiv 1909.08053, §3 and Figure 3 (column- then row-parallel
  matrices: one all-reduce per MLP and one per attention in the forward pass, two more backward).
* Huang et al. 2019, GPipe, arXiv 1811.06965, §2.2: the bubble O((p − 1)/(m + p − 1)).
* Narayanan et al. 2021, arXiv 2104.04473, §2.2.1 (the bubble fraction (p − 1)/m of the ideal time,
  i.e. (p − 1)/(m + p − 1) of the step; 1F1B keeps at most p micro-batches in flight) and §3.
* Lepikhin et al. 2020, GShard, arXiv 2006.16668, and Fedus et al. 2021, Switch Transformer,
  arXiv 2101.03961, §2.2 / Figure 3: experts split over ranks, tokens exchanged with all-to-all.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Sequence

__all__ = ["fsdp_local_numel", "fsdp_padded_numel", "data_parallel_comm_elements",
           "tensor_parallel_block_params", "tensor_parallel_kv_heads", "pipeline_bubble_fraction",
           "gpipe_order", "one_f_one_b_order", "PipelineTimeline", "simulate_pipeline",
           "expert_parallel_alltoall_bytes"]


def _positive(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


# --------------------------------------------------------------------------- FSDP2 shards

def fsdp_local_numel(shape: Sequence[int], world_size: int, rank: int) -> int:
    """Elements of one parameter that `rank` holds under FSDP2 ``fully_shard`` (``torch.chunk`` on dim 0).

    Each rank gets ``c = ceil(dim0 / N_d)`` rows, the last ranks fewer (or none):
    ``max(0, min(c, dim0 − rank·c)) · (elements per row)``.
    """
    world_size = _positive(world_size, "world_size")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be between 0 and {world_size - 1}, got {rank}")
    rows, row = shape[0], 1
    for d in shape[1:]:
        row *= d
    chunk = -(-rows // world_size)
    return max(0, min(chunk, rows - rank * chunk)) * row


def fsdp_padded_numel(shape: Sequence[int], world_size: int) -> int:
    """Elements FSDP2's all-gather (and reduce-scatter) moves for one parameter: ``N_d·ceil(dim0/N_d)·row``.

    Every rank's shard is padded to ``ceil(dim0/N_d)`` rows, so the gathered buffer holds
    ``N_d·ceil(dim0/N_d) − dim0`` rows of padding.
    """
    world_size = _positive(world_size, "world_size")
    rows, row = shape[0], 1
    for d in shape[1:]:
        row *= d
    return world_size * -(-rows // world_size) * row


# --------------------------------------------------------------------------- communication

def data_parallel_comm_elements(num_params: int, zero_stage: int) -> int:
    """Elements communicated per rank per step (ZeRO §7's count, arXiv 1910.02054).

    Stages 0–2: the gradients are all-reduced (or reduce-scattered, then the updated parameters
    all-gathered): ``2Ψ``. Stage 3: parameters all-gathered in the forward AND again in the
    backward pass, gradients reduce-scattered: ``3Ψ`` — 1.5× data parallel.
    """
    if zero_stage not in (0, 1, 2, 3):
        raise ValueError(f"zero_stage must be 0, 1, 2 or 3, got {zero_stage!r}")
    if num_params < 0:
        raise ValueError(f"num_params must be >= 0, got {num_params}")
    return (3 if zero_stage == 3 else 2) * num_params


# --------------------------------------------------------------------------- tensor parallel

def tensor_parallel_kv_heads(num_key_value_heads: int, tensor_parallel: int) -> int:
    """Key/value heads per rank: ``nkv / t``, or 1 when t > nkv (each KV head replicated on t/nkv ranks).

    Splitting k_proj's ``nkv·hs`` rows t ways when t > nkv would hand a rank a fraction of a head;
    Megatron-LM and vLLM replicate the KV heads instead (so t must divide nkv or nkv divide t).
    """
    nkv, t = _positive(num_key_value_heads, "num_key_value_heads"), _positive(tensor_parallel, "tensor_parallel")
    if nkv % t and t % nkv:
        raise ValueError(f"tensor_parallel={t} must divide num_key_value_heads={nkv} or be a multiple of it")
    return max(nkv // t, 1)


def tensor_parallel_block_params(hidden_size: int, intermediate_size: int, num_attention_heads: int,
                                 num_key_value_heads: int, head_dim: int, tensor_parallel: int) -> dict[str, int]:
    """Parameters ONE rank holds of a Llama block under Megatron-style tensor parallelism.

    q_proj, k_proj, v_proj, gate_proj, up_proj are split by output rows (column parallel),
    o_proj and down_proj by input columns (row parallel); the two RMSNorm weights are replicated::

        q + o        2·D·(nh/t)·hs
        k + v        2·D·kv_rank·hs      kv_rank = `tensor_parallel_kv_heads` (nkv/t, or 1)
        mlp          3·D·F/t
        norms        2·D
    """
    D, Fh, nh, hs, t = (_positive(v, n) for v, n in ((hidden_size, "hidden_size"), (intermediate_size,
                        "intermediate_size"), (num_attention_heads, "num_attention_heads"), (head_dim, "head_dim"),
                        (tensor_parallel, "tensor_parallel")))
    if nh % t or Fh % t:
        raise ValueError(f"tensor_parallel={t} must divide num_attention_heads={nh} and intermediate_size={Fh}")
    if nh % num_key_value_heads:
        raise ValueError(f"num_attention_heads={nh} must be a multiple of num_key_value_heads={num_key_value_heads}")
    kv = tensor_parallel_kv_heads(num_key_value_heads, t)
    parts = {"q_proj + o_proj": 2 * D * (nh // t) * hs, "k_proj + v_proj": 2 * D * kv * hs,
             "mlp": 3 * D * (Fh // t), "norms (replicated)": 2 * D}
    parts["total"] = sum(parts.values())
    return parts


# --------------------------------------------------------------------------- pipeline parallel

def pipeline_bubble_fraction(num_stages: int, num_microbatches: int) -> float:
    """Idle share of a GPipe or 1F1B step with equal stage times: ``(p − 1)/(m + p − 1)``.

    The step lasts ``(m + p − 1)·(t_f + t_b)``; each stage is busy ``m·(t_f + t_b)`` of it
    (GPipe §2.2; Narayanan et al. §2.2.1 write it as (p − 1)/m of the ideal time).
    """
    p, m = _positive(num_stages, "num_stages"), _positive(num_microbatches, "num_microbatches")
    return float(Fraction(p - 1, m + p - 1))


Action = tuple[str, int]  # ("F", micro-batch) or ("B", micro-batch)


def gpipe_order(num_stages: int, num_microbatches: int) -> list[list[Action]]:
    """Per stage: all m forwards, then all m backwards (GPipe; torch's ``ScheduleGPipe``)."""
    p, m = _positive(num_stages, "num_stages"), _positive(num_microbatches, "num_microbatches")
    return [[("F", i) for i in range(m)] + [("B", i) for i in range(m)] for _ in range(p)]


def one_f_one_b_order(num_stages: int, num_microbatches: int) -> list[list[Action]]:
    """Per stage s: p − 1 − s warm-up forwards, then one forward / one backward, then the rest backward.

    PipeDream-Flush (Narayanan et al. §2.2.1, Figure 4; torch's ``Schedule1F1B``): stage s holds
    at most ``p − s`` micro-batches' activations (GPipe: m).
    """
    p, m = _positive(num_stages, "num_stages"), _positive(num_microbatches, "num_microbatches")
    orders = []
    for s in range(p):
        warm = min(p - 1 - s, m)
        acts: list[Action] = [("F", i) for i in range(warm)]
        f, b = warm, 0
        while f < m:
            acts += [("F", f), ("B", b)]
            f, b = f + 1, b + 1
        acts += [("B", i) for i in range(b, m)]
        orders.append(acts)
    return orders


@dataclass(frozen=True)
class PipelineTimeline:
    """The simulated step: every action's (stage, kind, micro-batch, start, end), and summaries."""

    events: list[tuple[int, str, int, float, float]]
    makespan: float
    busy: list[float]
    max_in_flight: list[int]

    @property
    def bubble_fraction(self) -> float:
        """Idle share of all stage-time: ``1 − Σ busy / (p · makespan)``."""
        return 1 - sum(self.busy) / (len(self.busy) * self.makespan) if self.makespan else 0.0


def simulate_pipeline(orders: Sequence[Sequence[Action]], forward_time: Sequence[float],
                      backward_time: Sequence[float]) -> PipelineTimeline:
    """Event-level simulation of one pipeline step (a model, not a measurement).

    Stage s runs its `orders[s]` in sequence; F(s, i) waits for F(s − 1, i) (its input activation),
    B(s, i) for B(s + 1, i) (its output gradient) and F(s, i). Each action starts when its stage is
    free and its dependencies are done, and lasts ``forward_time[s]`` or ``backward_time[s]``;
    sending activations is taken as instantaneous. Returns the timeline.
    """
    p = len(orders)
    if len(forward_time) != p or len(backward_time) != p:
        raise ValueError(f"need one forward and one backward time per stage ({p} stages)")
    done: dict[tuple[int, str, int], float] = {}
    pos, clock = [0] * p, [0.0] * p
    events: list[tuple[int, str, int, float, float]] = []
    in_flight, peak = [0] * p, [0] * p
    total = sum(len(o) for o in orders)
    while len(events) < total:
        progressed = False
        for s in range(p):
            if pos[s] == len(orders[s]):
                continue
            kind, i = orders[s][pos[s]]
            deps = [(s - 1, "F", i)] if kind == "F" and s > 0 else []
            if kind == "B":
                deps = [(s, "F", i)] + ([(s + 1, "B", i)] if s < p - 1 else [])
            if any(d not in done for d in deps):
                continue
            start = max([clock[s]] + [done[d] for d in deps])
            end = start + (forward_time[s] if kind == "F" else backward_time[s])
            done[(s, kind, i)], clock[s], pos[s] = end, end, pos[s] + 1
            in_flight[s] += 1 if kind == "F" else -1
            peak[s] = max(peak[s], in_flight[s])
            events.append((s, kind, i, start, end))
            progressed = True
        if not progressed:
            raise ValueError("the orders deadlock: an action waits for one that never runs")
    busy = [sum(e - b for st, _, _, b, e in events if st == s) for s in range(p)]
    return PipelineTimeline(events, max(clock), busy, peak)


# --------------------------------------------------------------------------- expert parallel

def expert_parallel_alltoall_bytes(num_tokens: int, top_k: int, hidden_size: int,
                                   bytes_per_element: float = 2) -> float:
    """Bytes one rank puts into the dispatch all-to-all of an MoE layer: ``N·k·D·bytes``.

    Each of its N tokens goes to each of its k experts (wherever they live, its own rank
    included); the combine all-to-all sends the same amount back. Per token: ``k·D·bytes``.
    """
    if min(num_tokens, top_k, hidden_size) < 0 or bytes_per_element <= 0:
        raise ValueError("sizes must be >= 0 and bytes_per_element > 0")
    return num_tokens * top_k * hidden_size * bytes_per_element
