"""The traced forward pass shared by `summary` and `explain`: inputs, stand-in tensors, the
tracer (module hooks recording one `_Call` per call) and the meta → real-device fallback."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, Optional

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from helpers._flops import _FlopCounter

def _shapes_of(value: Any) -> Any:
    """The shape structure of a value: a tensor → its shape tuple; tuples/lists → tuples of
    their elements' structures; dicts → dicts; anything else → None."""
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    if isinstance(value, (tuple, list)):
        return tuple(_shapes_of(v) for v in value)
    if isinstance(value, Mapping):
        return {k: _shapes_of(v) for k, v in value.items()}
    return None


def _has_tensor(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return True
    if isinstance(value, (tuple, list)):
        return any(_has_tensor(v) for v in value)
    if isinstance(value, Mapping):
        return any(_has_tensor(v) for v in value.values())
    return False


# --------------------------------------------------------------------------- running ---------

@dataclass
class _Call:
    module: nn.Module
    name: str
    depth: int
    parent: int
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    call: int
    flops_start: int = 0
    cum_flops: int = 0
    child_flops: int = 0
    output: Any = None
    done: bool = False


def _as_args(example_inputs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if isinstance(example_inputs, torch.Tensor):
        return (example_inputs,), {}
    if isinstance(example_inputs, Mapping):
        return (), dict(example_inputs)
    if isinstance(example_inputs, (tuple, list)):
        return tuple(example_inputs), {}
    raise TypeError("example_inputs must be a tensor, a tuple/list of positional inputs or a dict "
                    f"of keyword inputs, got {type(example_inputs).__name__}")


def _map_tensors(value: Any, fn: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, tuple):
        return tuple(_map_tensors(v, fn) for v in value)
    if isinstance(value, list):
        return [_map_tensors(v, fn) for v in value]
    if isinstance(value, Mapping):
        return {k: _map_tensors(v, fn) for k, v in value.items()}
    return value


def _model_dtype(model: nn.Module) -> torch.dtype:
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


def _make_inputs(model: nn.Module, input_size: Any, dtypes: Any,
                 device: torch.device) -> tuple[Any, ...]:
    sizes: list[tuple[int, ...]]
    if isinstance(input_size, torch.Size) or (
            isinstance(input_size, (tuple, list)) and all(isinstance(v, int) for v in input_size)):
        sizes = [tuple(input_size)]
    elif isinstance(input_size, (tuple, list)) and all(isinstance(v, (tuple, list, torch.Size)) for v in input_size):
        sizes = [tuple(s) for s in input_size]
    else:
        raise TypeError(f"input_size must be a shape tuple like (2, 3, 32, 32) or a list of shapes, got {input_size!r}")
    if dtypes is None:
        dtypes = [_model_dtype(model)] * len(sizes)
    elif isinstance(dtypes, torch.dtype):
        dtypes = [dtypes] * len(sizes)
    if len(dtypes) != len(sizes):
        raise ValueError(f"dtypes has {len(dtypes)} entries but input_size describes {len(sizes)} inputs")
    # zeros: valid token ids for an Embedding on a real device; free on meta
    return tuple(torch.zeros(s, dtype=dt, device=device) for s, dt in zip(sizes, dtypes))


def _has_lazy(model: nn.Module) -> bool:
    from torch.nn.parameter import UninitializedParameter, UninitializedBuffer  # noqa: PLC0415

    return any(isinstance(t, (UninitializedParameter, UninitializedBuffer))
               for t in [*model.parameters(), *model.buffers()])


def _stand_ins(model: nn.Module, device: torch.device) -> Optional[dict[str, torch.Tensor]]:
    """Tensors to run `model` with on `device` without touching the model's own tensors
    (None: the model is entirely on meta and `device` is meta, so it can run as it is)."""
    if device.type == "meta" and all(t.device.type == "meta" for t in [*model.parameters(), *model.buffers()]):
        return None
    if _has_lazy(model):  # only ever our own deep copy (see _prepare): run it as it is
        return None
    mapping: dict[str, torch.Tensor] = {}
    for name, p in model.named_parameters():
        if device.type == "meta":
            mapping[name] = p if p.device.type == "meta" else torch.empty_like(p, device="meta")
        elif p.device == device or (device.index is None and p.device.type == device.type):
            mapping[name] = p
        else:
            mapping[name] = p.detach().to(device).requires_grad_(p.requires_grad)
    for name, b in model.named_buffers():
        if device.type == "meta":
            mapping[name] = b if b.device.type == "meta" else torch.empty_like(b, device="meta")
        else:
            mapping[name] = b.detach().to(device, copy=True)  # running stats stay untouched
    return mapping


@contextmanager
def _no_mkldnn(device: torch.device) -> Iterator[None]:
    """On CPU, oneDNN runs nn.LSTM as one fused kernel that FlopCounterMode cannot see (it would
    count 0 FLOPs); with it off, the LSTM decomposes into matmuls and is counted like on meta."""
    if device.type != "cpu":
        yield
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ctx = torch.backends.mkldnn.flags(enabled=False)
        ctx.__enter__()
    try:
        yield
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            ctx.__exit__(None, None, None)


def _meta_limitation(exc: BaseException) -> bool:
    """True when a forward pass failed because of the meta device rather than the model
    (a CPU tensor the model keeps outside its parameters/buffers, or an op that needs values)."""
    if isinstance(exc, NotImplementedError):
        return True
    msg = str(exc).lower()
    return "meta" in msg and any(s in msg for s in (
        "device", "data-dependent", "item()", "_local_scalar_dense", "storage", "copy out of"))


def _real_device(model: nn.Module) -> Optional[torch.device]:
    for t in [*model.parameters(), *model.buffers()]:
        if t.device.type != "meta":
            return t.device
    return None


class _Tracer:
    """Hooks that record one `_Call` per call of a submodule of `model`.

    ``per_module=False`` (summary, the fast path): two process-wide module hooks for the duration
    of the pass instead of two hooks on every submodule; input shapes are read when the call
    returns (global pre-hooks do not see keyword arguments). ``per_module=True`` (explain): hooks
    on each submodule, input shapes read on entry, so a call that raises still has them."""

    def __init__(self, model: nn.Module, counter: Optional[FlopCounterMode],
                 check: Any = None, *, per_module: bool = False) -> None:
        self.model = model
        self.counter = counter
        self.check = check  # optional pre-call validator (explain)
        self.per_module = per_module
        self.calls: list[_Call] = []
        self.stack: list[int] = []
        self.names: dict[int, str] = {}
        self.ncalls: dict[int, int] = {}
        self.handles: list[Any] = []

    def _flops(self) -> int:
        return self.counter.get_total_flops() if self.counter is not None else 0

    def __enter__(self) -> "_Tracer":
        self.names = {id(module): name for name, module in self.model.named_modules()}
        if self.per_module:
            for module in self.model.modules():
                self.handles.append(module.register_forward_pre_hook(self._pre, with_kwargs=True))
                self.handles.append(module.register_forward_hook(self._post, with_kwargs=True))
        else:
            from torch.nn.modules.module import (  # noqa: PLC0415
                register_module_forward_hook, register_module_forward_pre_hook)

            self.handles.append(register_module_forward_pre_hook(self._pre_global))
            self.handles.append(register_module_forward_hook(self._post, with_kwargs=True))
        return self

    def __exit__(self, *exc: Any) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()

    def _pre_global(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        if id(module) in self.names:
            self._pre(module, args, None)

    def _pre(self, module: nn.Module, args: tuple[Any, ...], kwargs: Optional[dict[str, Any]]) -> None:
        key = id(module)
        n = self.ncalls[key] = self.ncalls.get(key, 0) + 1
        call = _Call(module=module, name=self.names.get(key, ""), depth=len(self.stack),
                     parent=self.stack[-1] if self.stack else -1, args=(), kwargs={},
                     call=n, flops_start=self._flops())
        if kwargs is not None:
            call.args = tuple(_shapes_of(a) for a in args if _has_tensor(a))
            call.kwargs = {k: _shapes_of(v) for k, v in kwargs.items() if _has_tensor(v)}
        self.calls.append(call)
        self.stack.append(len(self.calls) - 1)
        if self.check is not None:
            self.check(self, module, args, kwargs or {})

    def _post(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
        if not self.stack or self.calls[self.stack[-1]].module is not module:
            return  # not one of ours (a global hook sees every module in the process)
        idx = self.stack.pop()
        call = self.calls[idx]
        call.cum_flops = self._flops() - call.flops_start
        if not self.per_module:
            call.args = tuple(_shapes_of(a) for a in args if _has_tensor(a))
            call.kwargs = {k: _shapes_of(v) for k, v in kwargs.items() if _has_tensor(v)}
        call.output = _shapes_of(output)
        call.done = True
        if call.parent >= 0:
            self.calls[call.parent].child_flops += call.cum_flops


def _run(model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], device: torch.device,
         *, count_flops: bool, check: Any = None, per_module: bool = False) -> tuple[_Tracer, Any, Optional[FlopCounterMode]]:
    """One forward pass of `model` on `device` under hooks (and FlopCounterMode).

    Returns the tracer, the output and the counter. Exceptions from the forward pass propagate
    (with the tracer attached as ``exc._trace``)."""
    mapping = _stand_ins(model, device)
    counter = _FlopCounter() if count_flops else None
    tracer = _Tracer(model, counter, check, per_module=per_module)
    with ExitStack() as stack:
        stack.enter_context(_no_mkldnn(device))
        stack.enter_context(tracer)
        if counter is not None:
            stack.enter_context(counter)
        if device.type == "meta":
            stack.enter_context(torch.no_grad())  # nothing to differentiate without storage
        try:
            if mapping is None:
                out = model(*args, **kwargs)  # already shapes-only on meta: nothing to swap
            else:
                out = torch.func.functional_call(model, mapping, args, kwargs, strict=False, tie_weights=True)
        except BaseException as exc:  # noqa: BLE001 — re-raised with the trace attached
            exc._trace = tracer  # type: ignore[attr-defined]
            raise
    return tracer, out, counter


def _lazy_copy(model: nn.Module, device: torch.device) -> nn.Module:
    """A deep copy of a model with lazy layers, its tensors on `device` (ties kept), the lazy
    ones still uninitialised (``Module.to`` would turn them into empty tensors)."""
    from torch.nn.parameter import UninitializedBuffer, UninitializedParameter  # noqa: PLC0415

    clone = copy.deepcopy(model)
    memo: dict[int, Any] = {}

    def moved(t: Any, param: bool) -> Any:
        if id(t) not in memo:
            if isinstance(t, UninitializedParameter):
                memo[id(t)] = UninitializedParameter(device=device, requires_grad=t.requires_grad)
            elif isinstance(t, UninitializedBuffer):
                memo[id(t)] = UninitializedBuffer(device=device)
            elif device.type == "meta":
                new = torch.empty_like(t, device="meta")
                memo[id(t)] = nn.Parameter(new, requires_grad=t.requires_grad) if param else new
            else:
                new = t.detach().to(device)
                memo[id(t)] = nn.Parameter(new, requires_grad=t.requires_grad) if param else new
        return memo[id(t)]

    for module in clone.modules():
        for key, t in module._parameters.items():
            if t is not None:
                module._parameters[key] = moved(t, True)
        for key, t in module._buffers.items():
            if t is not None:
                module._buffers[key] = moved(t, False)
    return clone


def _prepare(model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any],
             device: torch.device) -> tuple[nn.Module, tuple[Any, ...], dict[str, Any], list[str]]:
    notes: list[str] = []
    if _has_lazy(model):
        model = _lazy_copy(model, device)
        notes.append("the model has lazy layers: a deep copy was traced (the original stays uninitialised)")
    to_dev = (lambda t: t.to("meta")) if device.type == "meta" else (lambda t: t.to(device))
    return model, _map_tensors(args, to_dev), _map_tensors(kwargs, to_dev), notes


