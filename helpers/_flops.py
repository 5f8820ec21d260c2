"""FLOP counting: the only module that touches torch internals.

`FlopCounter` is `torch.utils.flop_counter.FlopCounterMode` (same registry of formulas, same
totals) without its module-name tracker and with a faster dispatch path, plus formulas for
kernels the stock registry does not know.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Optional

import torch
from torch.utils.flop_counter import FlopCounterMode, shape_wrapper

__all__ = ["_FlopCounter", "onednn", "without_lazy_dynamo"]

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
            meta_out = _META_OUTPUTS.get(func)
            if meta_out is not None and any(isinstance(a, torch.Tensor) and a.is_meta for a in args):
                out = meta_out(*args, **kwargs)
            else:
                out = func(*args, **kwargs)
            formula = self.counter.flop_registry.get(func._overloadpacket)
            if formula is None:
                formula = self.counter.named_formula(func)
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


def _grouped_mm_flop(a_shape: Any, b_shape: Any, offs: Any = None, *args: Any, out_shape: Any = None,
                     **kwargs: Any) -> int:
    """``torch._grouped_mm`` (Mixture-of-Experts kernel: one matmul per expert over its rows).

    2 FLOPs per MAC, summed over the G groups (shapes as in torch/_meta_registrations.py):
    a (M, K) @ b (G, K, N), rows split by `offs` → out (M, N):       2·M·K·N
    a (M, K_total) @ b (K_total, N), K split by `offs` → (G, M, N):  2·M·K_total·N
    a (G, M, K) @ b (K, N_total), columns split by `offs` → (M, N_total): 2·M·K·N_total
    a (G, M, K) @ b (G, K, N) → (G, M, N):                           2·G·M·K·N
    """
    if len(a_shape) == 2 and len(b_shape) == 3:
        return 2 * a_shape[0] * a_shape[1] * b_shape[2]
    if len(a_shape) == 2 and len(b_shape) == 2:
        return 2 * a_shape[0] * a_shape[1] * b_shape[1]
    if len(a_shape) == 3 and len(b_shape) == 2:
        return 2 * a_shape[1] * a_shape[2] * b_shape[1]
    return 2 * a_shape[0] * a_shape[1] * a_shape[2] * b_shape[2]


def _grouped_mm_out(a: torch.Tensor, b: torch.Tensor, offs: Any = None, bias: Any = None,
                    out_dtype: Any = None) -> torch.Tensor:
    """Output of ``aten._grouped_mm`` on meta (torch's meta kernel accepts bf16 only, the CPU
    kernel any float dtype; shapes as in torch/_meta_registrations.py)."""
    if a.dim() == 2:
        size = [offs.size(0), a.size(0), b.size(1)] if b.dim() == 2 else [a.size(0), b.size(-1)]
    else:
        size = [a.size(1), b.size(1)] if b.dim() == 2 else [a.size(0), a.size(1), b.size(-1)]
    return torch.empty(size, dtype=out_dtype or a.dtype, device="meta")


def _trilinear_flop(s1: Any, s2: Any, s3: Any, expand1: Any, expand2: Any, expand3: Any, sumdim: Any,
                    *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    """``aten._trilinear`` (what ``nn.Bilinear`` / ``F.bilinear`` run): each input is unsqueezed
    at its `expand` dims to a common broadcast shape S, and the product is summed over `sumdim`,
    one sum dimension after the other (torch's sum-product order). MACs: prod(S) for the first
    contraction, then prod(S) / (sizes already summed) for each further one. nn.Bilinear(in1,
    in2, out) on N rows, S = (N, out, in1, in2): FLOPs = 2·N·out·in1·in2 + 2·N·out·in2."""
    def expanded(shape: Any, dims: Any) -> list[int]:
        out = list(shape)
        for d in sorted(dims):
            out.insert(d, 1)
        return out

    full = [max(sizes) for sizes in zip(expanded(s1, expand1), expanded(s2, expand2), expanded(s3, expand3))]
    macs, size = 0, math.prod(full)
    for d in sorted(sumdim):
        macs += size
        size //= max(full[d], 1)
    return 2 * macs


def _mv_flop(a_shape: Any, b_shape: Any, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    """Matrix-vector product (M, K) @ (K,): 2·M·K."""
    return 2 * a_shape[0] * a_shape[1]


def _addmv_flop(bias_shape: Any, a_shape: Any, b_shape: Any, *args: Any, out_shape: Any = None,
                **kwargs: Any) -> int:
    return 2 * a_shape[0] * a_shape[1]


def _dot_flop(a_shape: Any, b_shape: Any, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    """Dot product of two (K,) vectors: 2·K."""
    return 2 * a_shape[0]


def _hf_grouped_mm_fallback_flop(input_shape: Any, weight_shape: Any, offs: Any, *args: Any,
                                 out_shape: Any = None, **kwargs: Any) -> int:
    """transformers' ``grouped_mm_fallback`` custom op: input (S, in) @ per-expert (E, in, out)."""
    return 2 * input_shape[0] * input_shape[1] * weight_shape[2]


# Formulas the stock registry lacks: the CPU attention kernel (0 FLOPs on CPU otherwise, but
# counted on meta, where SDPA decomposes), MoE's grouped matmul, nn.Bilinear, mv/dot.
_EXTRA_FORMULAS: dict[Any, Any] = {_aten._grouped_mm: _grouped_mm_flop, _aten._trilinear: _trilinear_flop,
                                   _aten.mv: _mv_flop, _aten.addmv: _addmv_flop, _aten.dot: _dot_flop,
                                   _aten.vdot: _dot_flop}
if hasattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu"):
    _EXTRA_FORMULAS[torch.ops.aten._scaled_dot_product_flash_attention_for_cpu] = _sdpa_cpu_flop
# custom (non-aten) ops known by qualified name; looked up when first seen
_NAMED_FORMULAS: dict[str, Any] = {"transformers::grouped_mm_fallback": _hf_grouped_mm_fallback_flop}
# ops run with our own output-shape function on meta (their meta kernel is stricter than CPU's)
_META_OUTPUTS: dict[Any, Any] = {_aten._grouped_mm.default: _grouped_mm_out}
# an op whose name has one of these and no formula does FLOP-heavy work we would miss: reported
_HEAVY = re.compile(r"mm|matmul|conv|attention|linear|gemm|einsum|rnn|lstm_layer|gru_layer|(^|_)dot|(^|_)mv")


_DYNAMO_WRAPPED: Optional[list[Any]] = None


def _dynamo_wrapped() -> list[Any]:
    """The functions torch's meta kernels and references wrap with ``torch._compile._disable_dynamo``
    (found once by walking the reference modules and the decomposition tables)."""
    global _DYNAMO_WRAPPED
    if _DYNAMO_WRAPPED is None:
        import torch._decomp  # noqa: F401, PLC0415 — what the meta device loads anyway
        import torch._refs  # noqa: F401, PLC0415

        found: dict[int, Any] = {}
        seen: set[int] = set()

        def walk(f: Any, depth: int = 0) -> None:
            if f is None or depth > 6 or id(f) in seen:
                return
            seen.add(id(f))
            code = getattr(f, "__code__", None)
            if code is not None and code.co_qualname == "_disable_dynamo.<locals>.inner" and f.__closure__:
                fn = f.__closure__[code.co_freevars.index("fn")].cell_contents
                found[id(fn)] = fn
            walk(getattr(f, "__wrapped__", None), depth + 1)
            for cell in getattr(f, "__closure__", None) or ():
                try:
                    value = cell.cell_contents
                except ValueError:
                    continue
                if hasattr(value, "__code__"):
                    walk(value, depth + 1)

        modules = [m for name, m in list(sys.modules.items())
                   if m is not None and name.startswith(("torch._refs", "torch._decomp", "torch._prims"))]
        for module in modules:
            for value in list(vars(module).values()):
                if callable(value):
                    walk(value)
        for table in torch._decomp.global_decomposition_table.values():
            for value in table.values():
                walk(value)
        _DYNAMO_WRAPPED = list(found.values())
    return _DYNAMO_WRAPPED


@contextmanager
def without_lazy_dynamo() -> Iterator[None]:
    """Keep torch from importing ``torch._dynamo`` (0.8–1.5 s) during a pass on meta.

    torch's Python meta kernels call references wrapped in ``_disable_dynamo``, which imports
    torch._dynamo on first use only to build a "don't compile this" wrapper; outside
    ``torch.compile`` that wrapper just calls the function. During the pass each such function is
    marked as its own wrapper (the cache attribute ``_disable_dynamo`` looks up first); the marks
    are removed afterwards, so a later ``torch.compile`` builds the real wrappers as usual."""
    if "torch._dynamo" in sys.modules:
        yield
        return
    marked = []
    for fn in _dynamo_wrapped():
        if getattr(fn, "__dynamo_disable", None) is None:
            setattr(fn, "__dynamo_disable", fn)
            marked.append(fn)
    try:
        yield
    finally:
        for fn in marked:
            if getattr(fn, "__dynamo_disable", None) is fn:
                delattr(fn, "__dynamo_disable")


def onednn(enabled: bool) -> bool:
    """Switch oneDNN (mkldnn) on or off for CPU ops; returns the previous setting. With it off,
    ``nn.LSTM``/``nn.GRU`` on CPU decompose into matmuls FlopCounterMode sees instead of one
    fused kernel it cannot see."""
    previous = torch._C._get_mkldnn_enabled()
    torch._C._set_mkldnn_enabled(enabled)
    return previous


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
        self.uncounted: dict[str, int] = {}  # FLOP-heavy ops without a formula → number of calls
        self._named: dict[Any, Any] = {}

    def named_formula(self, func: Any) -> Any:
        """The formula of an op the registry lacks (custom ops by qualified name); an op that
        looks FLOP-heavy but has none is recorded in `uncounted` (reported, never silent)."""
        entry = self._named.get(func)
        if entry is None:
            name = func.name() if hasattr(func, "name") else str(func)
            formula = _NAMED_FORMULAS.get(name.split(".")[0])
            short = str(func._overloadpacket)
            heavy = formula is None and bool(_HEAVY.search(short.split(".")[-1]))
            entry = self._named[func] = (None if formula is None else shape_wrapper(formula), short if heavy else None)
        if entry[1] is not None:
            self.uncounted[entry[1]] = self.uncounted.get(entry[1], 0) + 1
        return entry[0]

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

