"""Count the collectives a rank issues, and their bytes: ``with CommCounter() as comm: step()``.

``CommCounter`` is a ``TorchDispatchMode``: every collective torch runs on a rank — the in-place
``c10d`` ops that DDP, ``ZeroRedundancyOptimizer``, FSDP2 and ``torch.distributed.pipelining``
call, and the functional ``_c10d_functional`` ops that DTensor (tensor parallel) uses — passes
through ``__torch_dispatch__``, where it is counted. (``torch.distributed.tensor.debug.CommDebugMode``
counts the same ops but not their sizes; tests/test_parallelism.py checks that both see the same
number of each.) One small function per op family reads the op's payload, the size of the FULL
tensor the collective is about (ZeRO's convention, arXiv 1910.02054 §7):

    all-reduce       the reduced tensor          (counted as ``2×`` in `volume`: a reduce-scatter
                                                  plus an all-gather, how ring all-reduce runs)
    all-gather       the gathered output         (N_d shards)
    reduce-scatter   the input being reduced     (N_d shards)
    all-to-all       what this rank sends        (its whole input, its own slice included)
    send / recv      the tensors sent / received (point-to-point, pipeline stages)
    broadcast        the broadcast tensors

A ring all-gather or reduce-scatter of a B-byte tensor sends ``(N_d - 1)/N_d · B`` bytes per rank;
like the ZeRO paper, we count B.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode

__all__ = ["CommCounter", "KINDS"]

#: the kinds of collective counted, in the order reports list them
KINDS = ("all_reduce", "all_gather", "reduce_scatter", "all_to_all", "send", "recv", "broadcast")


def _nbytes(tensors: Any) -> int:
    """Bytes of a tensor or a (nested) list of tensors."""
    if isinstance(tensors, torch.Tensor):
        return tensors.numel() * tensors.element_size()
    if isinstance(tensors, (list, tuple)):
        return sum(_nbytes(t) for t in tensors)
    return 0


# one function per op family: (args, output) -> payload bytes
def _first(args: tuple, out: Any) -> int:       # allreduce_(tensors, …), broadcast_, send, recv_
    return _nbytes(args[0])


def _output_arg(args: tuple, out: Any) -> int:  # _allgather_base_(output, input, …), allgather_(outputs, …)
    return _nbytes(args[0])


def _input_arg(args: tuple, out: Any) -> int:   # _reduce_scatter_base_(output, input, …), alltoall_base_(output, input)
    return _nbytes(args[1])


def _returned(args: tuple, out: Any) -> int:    # _c10d_functional.all_gather_into_tensor(input, …) -> output
    return _nbytes(out)


_C10D: dict[str, tuple[str, Callable[[tuple, Any], int]]] = {
    "allreduce_": ("all_reduce", _first), "allreduce_coalesced_": ("all_reduce", _first),
    "_allgather_base_": ("all_gather", _output_arg), "allgather_": ("all_gather", _output_arg),
    "allgather_into_tensor_coalesced_": ("all_gather", _output_arg),
    "_reduce_scatter_base_": ("reduce_scatter", _input_arg), "reduce_scatter_": ("reduce_scatter", _input_arg),
    "reduce_scatter_tensor_coalesced_": ("reduce_scatter", _input_arg),
    "alltoall_base_": ("all_to_all", _input_arg), "alltoall_": ("all_to_all", _input_arg),
    "send": ("send", _first), "recv_": ("recv", _first), "broadcast_": ("broadcast", _first),
}
_FUNCTIONAL: dict[str, tuple[str, Callable[[tuple, Any], int]]] = {
    "all_reduce": ("all_reduce", _first), "all_reduce_coalesced": ("all_reduce", _first),
    "all_gather_into_tensor": ("all_gather", _returned), "all_gather_into_tensor_coalesced": ("all_gather", _returned),
    "reduce_scatter_tensor": ("reduce_scatter", _first), "reduce_scatter_tensor_coalesced": ("reduce_scatter", _first),
    "all_to_all_single": ("all_to_all", _first), "broadcast": ("broadcast", _first),
}
_TABLES = {"c10d": _C10D, "_c10d_functional": _FUNCTIONAL}


class CommCounter(TorchDispatchMode):
    """Counts collectives and their payload bytes on this rank while active.

    Attributes:
        counts: kind → number of calls (``{"all_reduce": 2, …}``).
        bytes: kind → payload bytes summed over the calls (see the module docstring).
        calls: ``[(kind, bytes), …]`` in the order they ran.
    """

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter = Counter()
        self.bytes: Counter = Counter()
        self.calls: list[tuple[str, int]] = []
        self.supports_higher_order_operators = True

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        if isinstance(func, torch._ops.HigherOrderOperator):  # e.g. DTensor's RNG op: not a collective
            return func(*args, **(kwargs or {}))
        if any(getattr(t, "__name__", "") == "DTensor" for t in types):
            return NotImplemented  # let DTensor turn the op into local ops + collectives, then see those
        out = func(*args, **(kwargs or {}))
        namespace, name = func.namespace, func._schema.name.split("::")[-1]
        entry = _TABLES.get(namespace, {}).get(name)
        if entry is not None:
            kind, payload = entry
            nbytes = payload(args, out)
            self.counts[kind] += 1
            self.bytes[kind] += nbytes
            self.calls.append((kind, nbytes))
        return out

    @property
    def volume(self) -> int:
        """ZeRO §7's communication volume in bytes: all-reduce ×2; all-gather, reduce-scatter, broadcast ×1."""
        return (2 * self.bytes["all_reduce"] + self.bytes["all_gather"] + self.bytes["reduce_scatter"]
                + self.bytes["broadcast"])

    def report(self) -> dict:
        """Plain data: ``{"counts": {kind: n}, "bytes": {kind: b}, "volume": v}`` (kinds that occurred)."""
        kinds = [k for k in KINDS if self.counts[k]]
        return {"counts": {k: int(self.counts[k]) for k in kinds}, "bytes": {k: int(self.bytes[k]) for k in kinds},
                "volume": int(self.volume)}
