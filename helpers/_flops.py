"""FLOP counting: the only module that touches torch internals.

`FlopCounter` is `torch.utils.flop_counter.FlopCounterMode` (same registry of formulas, same
totals) without its module-name tracker and with a faster dispatch path, plus formulas for
kernels the stock registry does not know.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["FlopCounter"]

try:  # torch is pinned (==2.13); if this private class moves, the plain FlopCounterMode is used
    from torch.utils.flop_counter import _FlopCounterMode
except ImportError:  # pragma: no cover
    _FlopCounterMode = None  # type: ignore[assignment,misc]

_aten = torch.ops.aten
# ops FlopCounterMode hands back untouched (tensor metadata queries), kept on its own path
_METADATA_OPS = frozenset({_aten.sym_is_contiguous, _aten.is_contiguous, _aten.is_strides_like_format,
                           _aten.is_non_overlapping_and_dense, _aten.size, _aten.sym_size, _aten.stride,
                           _aten.sym_stride, _aten.storage_offset, _aten.sym_storage_offset, _aten.numel,
                           _aten.sym_numel, _aten.dim, torch.ops.prim.layout, torch.ops.prim.device})

if _FlopCounterMode is not None:
    class _LeanDispatch(_FlopCounterMode):  # type: ignore[misc,valid-type]
        """FlopCounterMode's dispatch mode with a fast path for the ~99% of ops that need
        nothing special: a plain OpOverload that is either in the FLOP registry or has no
        CompositeImplicitAutograd decomposition is run once and counted with the SAME registry
        formula. Everything else (decomposable ops, higher-order ops, metadata queries) goes
        through FlopCounterMode's own code. Saves the per-op decomposition attempt (a mode
        re-entry) and the torch.compile guard around each call (~15% of a GPT-2 pass)."""

        @classmethod
        def _should_skip_dynamo(cls) -> bool:  # no torch._disable_dynamo wrapper per op
            return False

        def __init__(self, counter: FlopCounterMode) -> None:
            super().__init__(counter)
            self._plain: dict[Any, bool] = {}
            self._global = counter.flop_counts["Global"]

        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            plain = self._plain.get(func)
            if plain is None:
                plain = self._plain[func] = (
                    isinstance(func, torch._ops.OpOverload) and func._overloadpacket not in _METADATA_OPS
                    and (func._overloadpacket in self.counter.flop_registry or
                         not torch._C._dispatch_has_kernel_for_dispatch_key(
                             func.name(), torch._C.DispatchKey.CompositeImplicitAutograd)))
            if not plain:
                return super().__torch_dispatch__(func, types, args, kwargs)
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            formula = self.counter.flop_registry.get(func._overloadpacket)
            if formula is not None:
                raw = getattr(formula, "__wrapped__", None)  # formula on shapes (shape_wrapper)
                if raw is not None:
                    flops = raw(*_shape_args(args), out_shape=_shape_args(out),
                                **{k: _shape_args(v) for k, v in kwargs.items()})
                else:
                    flops = formula(*args, **kwargs, out_val=out)
                self._global[func._overloadpacket] += flops
            return out

    def _shape_args(value: Any) -> Any:
        """What FlopCounterMode's shape_wrapper passes to a formula: tensors → shapes."""
        if isinstance(value, torch.Tensor):
            return value.shape
        if isinstance(value, list):
            return [_shape_args(v) for v in value]
        if isinstance(value, tuple):
            return tuple(_shape_args(v) for v in value)
        return value


def _sdpa_cpu_flop(query_shape: Any, key_shape: Any, value_shape: Any, *args: Any, out_shape: Any = None,
                   **kwargs: Any) -> int:
    """CPU's fused attention kernel, counted with FlopCounterMode's own SDPA formula."""
    from torch.utils.flop_counter import sdpa_flop_count  # noqa: PLC0415

    return sdpa_flop_count(query_shape, key_shape, value_shape)


# Stock FlopCounterMode has no formula for the kernel F.scaled_dot_product_attention uses on CPU
# (it would count attention as 0 FLOPs on CPU, but count it on meta, where SDPA decomposes).
_EXTRA_FORMULAS: dict[Any, Any] = {}
if hasattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu"):
    _EXTRA_FORMULAS[torch.ops.aten._scaled_dot_product_flash_attention_for_cpu] = _sdpa_cpu_flop


class _GlobalOnly:
    """Stand-in for FlopCounterMode's ModuleTracker: every FLOP goes to "Global" only."""

    parents = frozenset({"Global"})

    def __enter__(self) -> "_GlobalOnly":
        return self

    def __exit__(self, *exc: Any) -> None:
        return None


class _FlopCounter(FlopCounterMode):
    """`FlopCounterMode` — same FLOP formulas (its registry), same totals — minus its
    module-name tracker, with a faster dispatch path (`_LeanDispatch`).

    FlopCounterMode attributes FLOPs to module *names* through a ModuleTracker (global hooks on
    every module call); a module called twice then gets one merged entry. `summary` attributes
    FLOPs to each *call* with its own hooks instead (difference of ``get_total_flops()`` before
    and after the call), so the tracker is pure overhead (~20% of a GPT-2 pass on meta)."""

    def __init__(self) -> None:
        super().__init__(display=False, custom_mapping=_EXTRA_FORMULAS)
        self.mod_tracker = _GlobalOnly()  # type: ignore[assignment]

    def __enter__(self) -> "_FlopCounter":
        if _FlopCounterMode is None:  # pragma: no cover
            return super().__enter__()  # type: ignore[return-value]
        self.flop_counts.clear()
        self.mode = _LeanDispatch(self)
        self.mode.__enter__()
        return self

    def __exit__(self, *args: Any) -> Any:
        if _FlopCounterMode is None:  # pragma: no cover
            return super().__exit__(*args)
        mode, self.mode = self.mode, None
        assert mode is not None
        return mode.__exit__(*args)

