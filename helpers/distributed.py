"""Run a function on N gloo ranks (CPU processes on 127.0.0.1) and gather plain Python results.

``run(fn, world_size=2)`` spawns `world_size` processes, each joins one gloo process group on a
free local port, calls ``fn(rank, world_size, *args)`` and sends back its return value (plain
Python data: ints, floats, lists, dicts). The results come back as a list indexed by rank. The
whole run is time-bounded: a rank that hangs or fails raises ``RuntimeError`` in the caller, and
every child is terminated. `fn` must be importable (defined in a module, not in a notebook cell),
because spawned processes import it by name.
"""

from __future__ import annotations

import os
import socket
from typing import Any, Callable

__all__ = ["free_port", "Ranks", "run", "zero1_optimizer_state_bytes", "fsdp_shard_numel"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, world_size: int, port: int, inbox: Any, outbox: Any, quiet: bool = False) -> None:
    """One rank: join the gloo group, then run ``(fn, args)`` tasks from `inbox` until ``None``."""
    if quiet:  # a notebook shows a child's stderr in whatever cell runs: keep warnings out of it
        import warnings

        warnings.simplefilter("ignore")
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    try:
        dist.init_process_group("gloo", rank=rank, world_size=world_size)
        while (task := inbox.get()) is not None:
            fn, args = task
            try:
                outbox.put((rank, "ok", fn(rank, world_size, *args)))
            except BaseException as exc:  # reported to the caller, never a silent hang
                outbox.put((rank, "error", f"{type(exc).__name__}: {exc}"))
    except BaseException as exc:
        outbox.put((rank, "error", f"{type(exc).__name__}: {exc}"))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
        import gc

        gc.freeze()  # the rank exits now: no full collections over torch's objects on the way out (~0.6 s)


class Ranks:
    """`world_size` gloo ranks kept alive between tasks (a process start costs seconds; a task, ms).

    ``ranks = Ranks(2)``, then ``ranks.run(fn, *args)`` as often as needed (each call returns
    ``[fn(rank, world_size, *args) for rank …]``), and ``ranks.close()`` (or ``with Ranks(2) as
    ranks:``). A task that fails or hangs on any rank raises ``RuntimeError`` and closes the ranks
    (a rank left inside a collective cannot be reused). ``quiet=True`` silences the ranks' warnings
    and stderr (errors still come back as ``RuntimeError``).
    """

    def __init__(self, world_size: int = 2, timeout: float = 60.0, *, quiet: bool = False) -> None:
        import torch.multiprocessing as mp

        if world_size < 1:
            raise ValueError(f"world_size must be at least 1, got {world_size}")
        self.world_size, self.timeout = world_size, timeout
        ctx = mp.get_context("spawn")
        self._inboxes = [ctx.Queue() for _ in range(world_size)]
        self._outbox = ctx.Queue()
        port = free_port()
        self._procs = [ctx.Process(target=_worker, args=(r, world_size, port, self._inboxes[r], self._outbox, quiet),
                                   daemon=True) for r in range(world_size)]
        for p in self._procs:
            p.start()

    def run(self, fn: Callable, *args: Any, timeout: float | None = None) -> list:
        """``[fn(rank, world_size, *args) for rank in range(world_size)]``, each on its own rank."""
        import queue as queue_module

        if not self._procs:
            raise RuntimeError("these ranks are closed; start new ones with Ranks(world_size)")
        for inbox in self._inboxes:
            inbox.put((fn, args))
        results: dict[int, Any] = {}
        wait = self.timeout if timeout is None else timeout
        try:
            while len(results) < self.world_size:
                try:
                    rank, status, value = self._outbox.get(timeout=wait)
                except queue_module.Empty:
                    raise RuntimeError(f"distributed run timed out after {wait:g} s "
                                       f"({len(results)}/{self.world_size} ranks answered)") from None
                if status != "ok":
                    raise RuntimeError(f"rank {rank} failed: {value}")
                results[rank] = value
        except BaseException:
            self.close(force=True)
            raise
        return [results[r] for r in range(self.world_size)]

    def close(self, force: bool = False) -> None:
        """Stop the ranks (``force``: terminate them at once)."""
        if not force:
            for inbox in self._inboxes:
                inbox.put(None)
        for p in self._procs:
            p.join(timeout=0.1 if force else 5)
            if p.is_alive():
                p.terminate()
                p.join()
        self._procs = []

    def __enter__(self) -> "Ranks":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close(force=exc[0] is not None)


def run(fn: Callable, world_size: int = 2, *args: Any, timeout: float = 60.0) -> list:
    """``[fn(rank, world_size, *args) for rank in range(world_size)]``, each on its own gloo rank."""
    with Ranks(world_size, timeout) as ranks:
        return ranks.run(fn, *args)


def zero1_optimizer_state_bytes(rank: int, world_size: int, sizes: list) -> dict:
    """ZeRO-1 measured: bytes of Adam state this rank holds under ``ZeroRedundancyOptimizer``.

    An MLP of ``nn.Linear(sizes[i], sizes[i+1])`` layers (fp32); one step; returns the bytes of the
    rank's local optimizer ``state`` tensors (exp_avg, exp_avg_sq; the scalar ``step`` left out) and
    the model's parameter count Ψ. ZeRO-1 partitions whole parameter tensors between ranks, so a
    rank holds 8·(its tensors' numel) bytes — 8Ψ/N_d only when the tensors split evenly.
    """
    import torch
    from torch import nn
    from torch.distributed.optim import ZeroRedundancyOptimizer

    torch.manual_seed(0)
    model = nn.Sequential(*(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:])))
    opt = ZeroRedundancyOptimizer(model.parameters(), optimizer_class=torch.optim.Adam, lr=1e-3)
    model(torch.randn(2, sizes[0])).sum().backward()
    opt.step()
    state = opt.optim.state
    nbytes = sum(t.numel() * t.element_size() for s in state.values() for k, t in s.items() if k != "step")
    numel = sum(p.numel() for s, p in ((opt.optim.state.get(p), p) for g in opt.optim.param_groups
                                        for p in g["params"]) if s)
    return {"state_bytes": int(nbytes), "local_numel": int(numel),
            "num_params": int(sum(p.numel() for p in model.parameters()))}


def fsdp_shard_numel(rank: int, world_size: int, sizes: list) -> dict:
    """ZeRO-3 measured: elements of each parameter this rank holds under FSDP2 ``fully_shard``.

    FSDP2 shards every parameter on dim 0 (``torch.chunk`` semantics): each rank's local shard
    (``DTensor.to_local()``) has ``ceil(dim0 / N_d)`` rows, the last ranks fewer (or none), and the
    padded size ``N_d·ceil(dim0/N_d)·row`` is what the all-gather moves. Returns per parameter name
    the local numel and the full numel.
    """
    import torch
    from torch import nn
    from torch.distributed.fsdp import fully_shard

    torch.manual_seed(0)
    model = nn.Sequential(*(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:])))
    fully_shard(model)
    return {name: [int(p.to_local().numel()), int(p.numel())] for name, p in model.named_parameters()}
