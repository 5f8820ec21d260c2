"""Parallel training measured on real gloo ranks: functions run by `helpers.distributed.Ranks`.

Each function is called as ``fn(rank, world_size, …)`` on every rank of an initialised gloo group
(spawned processes import it by name, so it lives here rather than in a notebook cell) and
returns plain data: bytes each rank really holds (read from the local tensors: ``DTensor.to_local()``,
the optimizer's ``state``), the collectives it really issued (`helpers.comm.CommCounter`), and
outputs compared with the unsharded model on the same weights. `helpers.parallelism` holds the
formulas they are compared with (tests/test_parallelism.py, chapter 16).

All models are fp32 and trained with ``torch.optim.Adam`` (K = 8 bytes of state per parameter:
exp_avg and exp_avg_sq; the scalar ``step`` tensors are left out).
"""

from __future__ import annotations

import copy
import time
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from helpers.comm import CommCounter

__all__ = ["STRATEGIES", "mlp", "data_parallel_step", "tensor_parallel_block", "pipeline_step",
           "expert_parallel_moe"]

#: data-parallel strategies of `data_parallel_step`: name → what it is (ZeRO stage)
STRATEGIES = {"ddp": "DistributedDataParallel (ZeRO-0: full replica)",
              "zero1": "ZeroRedundancyOptimizer (ZeRO-1: optimizer state sharded)",
              "fsdp_no_reshard": "fully_shard(reshard_after_forward=False) (≈ ZeRO-2)",
              "fsdp": "fully_shard (ZeRO-3: parameters, gradients, optimizer state sharded)"}


def mlp(sizes: list[int], seed: int = 0) -> nn.Sequential:
    """``nn.Linear(sizes[i], sizes[i+1])`` layers with ReLUs between them, the same weights on every rank."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def _local(t: Tensor) -> Tensor:
    return t.to_local() if hasattr(t, "to_local") else t


def _nbytes(tensors: Any) -> int:
    return sum(_local(t).numel() * _local(t).element_size() for t in tensors)


def _state_bytes(opt: torch.optim.Optimizer) -> int:
    return _nbytes(t for s in opt.state.values() for k, t in s.items() if k != "step")


def _wrap(model: nn.Sequential, strategy: str) -> tuple[nn.Module, torch.optim.Optimizer]:
    """`model` wrapped for `strategy`, and its Adam (sharded by ZeroRedundancyOptimizer for zero1)."""
    if strategy in ("ddp", "zero1"):
        from torch.distributed.optim import ZeroRedundancyOptimizer
        from torch.nn.parallel import DistributedDataParallel as DDP

        wrapped: nn.Module = DDP(model)
        if strategy == "zero1":
            return wrapped, ZeroRedundancyOptimizer(model.parameters(), optimizer_class=torch.optim.Adam, lr=1e-3)
        return wrapped, torch.optim.Adam(model.parameters(), lr=1e-3)
    if strategy in ("fsdp", "fsdp_no_reshard"):
        from torch.distributed.fsdp import fully_shard

        for layer in model:
            if isinstance(layer, nn.Linear):  # one FSDP group per layer, as torchtitan shards blocks
                fully_shard(layer, reshard_after_forward=strategy == "fsdp")
        fully_shard(model)
        return model, torch.optim.Adam(model.parameters(), lr=1e-3)
    raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")


def data_parallel_step(rank: int, world_size: int, sizes: list[int], strategy: str, batch_size: int = 4) -> dict:
    """One Adam step of `mlp(sizes)` under `strategy` (a key of `STRATEGIES`), measured on this rank.

    Returns ``num_params`` (Ψ), ``params``/``grads``/``optimizer`` (bytes of the LOCAL tensors after
    the step), ``local_numel`` per parameter name, ``unsharded_after_forward`` (bytes of full
    parameters alive between forward and backward: FSDP's reshard_after_forward=False keeps them),
    and the step's collectives (``comm``: counts, payload bytes, ZeRO volume).
    """
    model = mlp(sizes)
    num_params = sum(p.numel() for p in model.parameters())
    wrapped, opt = _wrap(model, strategy)
    torch.manual_seed(1 + rank)  # each rank its own data
    x = torch.randn(batch_size, sizes[0])  # (B, sizes[0])
    from torch.distributed.tensor.debug import CommDebugMode

    with CommDebugMode() as debug, CommCounter() as comm:  # torch's own counter of collectives, and ours
        y = wrapped(x)  # (B, sizes[-1])
        unsharded = _nbytes(p for p in model.parameters() if not hasattr(p, "to_local"))
        y.pow(2).mean().backward()
        opt.step()
    optim = opt.optim if hasattr(opt, "optim") else opt  # ZeroRedundancyOptimizer: this rank's local Adam
    return {"num_params": int(num_params), "params": _nbytes(model.parameters()),
            "grads": _nbytes(p.grad for p in model.parameters() if p.grad is not None),
            "optimizer": _state_bytes(optim),
            "local_numel": {n: int(_local(p).numel()) for n, p in model.named_parameters()},
            "unsharded_after_forward": int(unsharded), "comm": comm.report(),
            "comm_debug_mode_total": int(debug.get_total_counts())}


# --------------------------------------------------------------------------- tensor parallel

_TP_PLAN = {"self_attn.q_proj": "col", "self_attn.k_proj": "col", "self_attn.v_proj": "col",
            "self_attn.o_proj": "row", "mlp.gate_proj": "col", "mlp.up_proj": "col", "mlp.down_proj": "row"}


def _repeat_kv_heads(block: nn.Module, repeats: int) -> None:
    """Give `block` ``repeats × nkv`` KV heads, each original head copied `repeats` times in place.

    Query head i reads KV head i // (nh/nkv) before and i // (nh/(repeats·nkv)) after: the same
    weights, so the block computes the same function (what Megatron-LM does when t > nkv).
    """
    attn = block.self_attn
    hs = attn.head_dim
    for name in ("k_proj", "v_proj"):
        old = getattr(attn, name)
        w = old.weight.detach().view(attn.n_kv_heads, hs, -1)  # (nkv, hs, D)
        w = w.repeat_interleave(repeats, dim=0).reshape(-1, w.size(-1))  # (repeats·nkv·hs, D)
        new = nn.Linear(w.size(1), w.size(0), bias=False)
        new.weight = nn.Parameter(w.clone())
        setattr(attn, name, new)
    attn.n_kv_heads *= repeats


def tensor_parallel_block(rank: int, world_size: int, config: dict, batch_size: int = 2, seq_len: int = 5) -> dict:
    """A `helpers.models.llama.LlamaBlock` split Megatron-style over the ranks with ``parallelize_module``.

    `config` holds `LlamaConfig` fields (dim, n_heads, n_kv_heads, intermediate_size, …). When
    t > n_kv_heads each KV head is first copied t/nkv times (`_repeat_kv_heads`) so that no rank
    gets part of a head. Returns the parameters this rank holds (per projection and total), whether
    the output and the input's gradient equal the unsharded block's on the same weights, and the
    collectives of the forward and of the backward pass.
    """
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, parallelize_module

    from helpers.models.llama import LlamaBlock, LlamaConfig

    cfg = LlamaConfig(vocab_size=8, n_layers=1, **config)
    t = world_size
    torch.manual_seed(0)
    reference = LlamaBlock(cfg)
    block = copy.deepcopy(reference)
    naive_k_rows = cfg.kv_heads * cfg.hs / t  # what plain column sharding of k_proj would give a rank
    if t > cfg.kv_heads:
        _repeat_kv_heads(block, t // cfg.kv_heads)
    mesh = init_device_mesh("cpu", (t,))
    plan = {name: ColwiseParallel() if kind == "col" else RowwiseParallel() for name, kind in _TP_PLAN.items()}
    parallelize_module(block, mesh, plan)
    block.self_attn.n_heads //= t  # the heads this rank computes
    block.self_attn.n_kv_heads //= t
    torch.manual_seed(123)
    x = torch.randn(batch_size, seq_len, cfg.dim)  # (B, T, D), the same on every rank (replicated input)
    x_ref, x_tp = x.clone().requires_grad_(), x.clone().requires_grad_()
    y_ref = reference(x_ref)  # (B, T, D)
    y_ref.sum().backward()
    with CommCounter() as fwd:
        y = block(x_tp)  # (B, T, D): each rank computes nh/t heads and F/t MLP features, then all-reduces
    with CommCounter() as bwd:
        y.sum().backward()
    params = {n: int(_local(p).numel()) for n, p in block.named_parameters()}
    return {"params": params, "total": sum(params.values()),
            "unsharded_total": sum(p.numel() for p in reference.parameters()),
            "output_equal": bool(torch.allclose(y, y_ref, atol=1e-5, rtol=1e-4)),
            "input_grad_equal": bool(torch.allclose(x_tp.grad, x_ref.grad, atol=1e-5, rtol=1e-4)),
            "forward": fwd.report(), "backward": bwd.report(), "naive_k_rows": naive_k_rows,
            "head_dim": cfg.hs, "activation_bytes": batch_size * seq_len * cfg.dim * 4}


# --------------------------------------------------------------------------- pipeline parallel

def _timed(log: list, kind: str, method: Any) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        out = method(*args, **kwargs)
        mb = args[0] if args else kwargs.get("bwd_chunk_id", kwargs.get("fwd_chunk_id"))
        log.append((kind, int(mb), start, time.perf_counter()))
        return out
    return wrapper


def pipeline_step(rank: int, world_size: int, schedule: str, num_microbatches: int, width: int = 64,
                  layers_per_stage: int = 2, batch_per_microbatch: int = 4) -> dict:
    """One training step of an MLP split into `world_size` stages with ``torch.distributed.pipelining``.

    `schedule` is "gpipe" (``ScheduleGPipe``) or "1f1b" (``Schedule1F1B``). Every stage's forward
    and backward of each micro-batch is logged with ``time.perf_counter`` (wall clock: noisy on a
    shared CPU). Returns this rank's action order, the measured durations, the largest number of
    micro-batches whose activations it held at once, torch's own planned order
    (``schedule.pipeline_order``), the point-to-point bytes, and on the last stage whether the loss
    equals the unsplit model's. A first, unmeasured step warms up (shape exchange, allocations).
    """
    from torch.distributed.pipelining import PipelineStage, Schedule1F1B, ScheduleGPipe

    classes = {"gpipe": ScheduleGPipe, "1f1b": Schedule1F1B}
    if schedule not in classes:
        raise ValueError(f"schedule must be one of {', '.join(classes)}, got {schedule!r}")
    p, m = world_size, num_microbatches
    full = mlp([width] * (p * layers_per_stage + 1))  # (Linear, ReLU) × … : the whole model, same on every rank
    linears = [mod for mod in full if isinstance(mod, nn.Linear)]
    stage_layers: list[nn.Module] = []
    for lin in linears[rank * layers_per_stage:(rank + 1) * layers_per_stage]:
        stage_layers += [copy.deepcopy(lin), nn.Tanh()]
    submodule = nn.Sequential(*stage_layers)
    ref_layers: list[nn.Module] = []
    for lin in linears:
        ref_layers += [lin, nn.Tanh()]
    reference = nn.Sequential(*ref_layers)
    stage = PipelineStage(submodule, rank, p, torch.device("cpu"))
    loss_fn = nn.MSELoss()
    sched = classes[schedule](stage, n_microbatches=m, loss_fn=loss_fn)
    torch.manual_seed(7)
    x = torch.randn(m * batch_per_microbatch, width)  # (m·b, width): split into m micro-batches
    target = torch.randn(m * batch_per_microbatch, width)  # (m·b, width)

    def step(losses: list) -> None:
        if rank == 0:
            sched.step(x)
        elif rank == p - 1:
            sched.step(target=target, losses=losses)
        else:
            sched.step()

    step([])  # warm-up: the first step also exchanges the activations' shapes
    submodule.zero_grad()
    log: list = []
    stage.forward_one_chunk = _timed(log, "F", stage.forward_one_chunk)
    stage.backward_one_chunk = _timed(log, "B", stage.backward_one_chunk)
    losses: list = []
    with CommCounter() as comm:
        step(losses)
    in_flight = peak = 0
    for kind, _, _, _ in log:
        in_flight += 1 if kind == "F" else -1
        peak = max(peak, in_flight)
    planned = [[(a.computation_type.name, a.microbatch_index) for a in acts if a is not None]
               for r, acts in sorted((sched.pipeline_order or {}).items())]
    result = {"order": [(k, mb) for k, mb, _, _ in log],
              "forward_s": [e - s for k, _, s, e in log if k == "F"],
              "backward_s": [e - s for k, _, s, e in log if k == "B"],
              "max_in_flight": peak, "planned": planned, "comm": comm.report(), "loss_equal": None,
              "activation_bytes": batch_per_microbatch * width * 4}
    if rank == p - 1:
        chunks = zip(x.chunk(m), target.chunk(m))
        ref = sum(loss_fn(reference(xb), tb) for xb, tb in chunks) / m
        result["loss_equal"] = bool(torch.allclose(torch.stack(losses).mean(), ref, atol=1e-6))
    return result


# --------------------------------------------------------------------------- expert parallel

def expert_parallel_moe(rank: int, world_size: int, hidden_size: int, num_experts: int, top_k: int,
                        num_tokens: int, intermediate_size: int = 16) -> dict:
    """A `helpers.models.moe.SparseMoE` with its experts split over the ranks, tokens moved by all-to-all.

    Rank r holds experts ``[r·E/ep, (r+1)·E/ep)`` and routes its own `num_tokens` tokens (the
    router is replicated). Dispatch: each (token, chosen expert) pair is sent to the rank holding
    that expert (``all_to_all_single`` with uneven splits, after an all-to-all of the counts);
    the experts run; combine: the results come back by the reverse all-to-all and are summed with
    the routing weights. Returns the experts this rank holds, the payload bytes of the token
    all-to-alls (dispatch, combine) and of the metadata, and whether the output equals the whole
    layer's on this rank's tokens.
    """
    from helpers.models.llama import LlamaConfig, LlamaMLP
    from helpers.models.moe import SparseMoE

    ep, E = world_size, num_experts
    if E % ep:
        raise ValueError(f"num_experts={E} must be divisible by the {ep} expert-parallel ranks")
    per_rank = E // ep
    cfg = LlamaConfig(vocab_size=8, dim=hidden_size, n_layers=1, n_heads=1, intermediate_size=intermediate_size)
    torch.manual_seed(0)
    moe = SparseMoE(hidden_size, E, top_k, lambda: LlamaMLP(cfg))  # the whole layer, same weights everywhere
    mine = list(range(rank * per_rank, (rank + 1) * per_rank))
    torch.manual_seed(100 + rank)
    x = torch.randn(num_tokens, hidden_size)  # (N, D): this rank's tokens
    with torch.no_grad():
        expected = moe(x[None])[0]  # (N, D)
        weights, experts = moe.route(x)  # (N, k), (N, k)
        flat = experts.reshape(-1)  # (N·k,) expert of each (token, slot)
        order = torch.argsort(torch.div(flat, per_rank, rounding_mode="floor"), stable=True)  # by destination rank
        dest = torch.div(flat[order], per_rank, rounding_mode="floor")  # (N·k,)
        send_counts = torch.bincount(dest, minlength=ep)  # (ep,)
        with CommCounter() as meta:
            recv_counts = torch.empty_like(send_counts)  # (ep,)
            dist.all_to_all_single(recv_counts, send_counts)
            recv_experts = torch.empty(int(recv_counts.sum()), dtype=flat.dtype)  # (R,)
            dist.all_to_all_single(recv_experts, flat[order].contiguous(), recv_counts.tolist(), send_counts.tolist())
        tokens = x[order // top_k]  # (N·k, D): each token once per chosen expert
        with CommCounter() as dispatch:
            received = torch.empty(int(recv_counts.sum()), hidden_size)  # (R, D)
            dist.all_to_all_single(received, tokens, recv_counts.tolist(), send_counts.tolist())
        out_local = torch.zeros_like(received)  # (R, D)
        for e in mine:
            sel = recv_experts == e  # (R,)
            out_local[sel] = moe.experts[e](received[sel])  # (R_e, D)
        with CommCounter() as combine:
            back = torch.empty_like(tokens)  # (N·k, D)
            dist.all_to_all_single(back, out_local, send_counts.tolist(), recv_counts.tolist())
        y = torch.zeros_like(x)  # (N, D)
        y.index_add_(0, order // top_k, back * weights.reshape(-1)[order, None])  # (N, D)
    return {"experts": mine, "expert_params": sum(p.numel() for e in mine for p in moe.experts[e].parameters()),
            "dispatch_bytes": dispatch.report()["bytes"].get("all_to_all", 0),
            "combine_bytes": combine.report()["bytes"].get("all_to_all", 0),
            "metadata_bytes": meta.report()["bytes"].get("all_to_all", 0),
            "sent_to_others": int(send_counts.sum() - send_counts[rank]) * hidden_size * 4,
            "output_equal": bool(torch.allclose(y, expected, atol=1e-5, rtol=1e-4))}
