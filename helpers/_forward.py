"""The traced forward pass shared by `summary` and `explain`.

Inputs (`as_args`, `make_inputs`), stand-in models (`shadow`), the tracer (module hooks that
record one `Call` per module call) and ONE meta → real-device fallback (`traced_pass`).

The caller's model is never modified: the pass runs on a *shadow* — new module objects (same
classes, same attributes) with their own parameter/buffer/submodule dicts — whose tensors are
stand-ins: shape-only meta tensors on meta; on a real device the model's own parameters (read,
never written) and *copies* of its buffers (BatchNorm's running statistics and
``num_batches_tracked`` stay untouched). Tensors and modules shared under several names (tied
embeddings, ``self.b = self.a``, T5's ``shared``/``embed_tokens``) stay shared in the shadow.
"""

from __future__ import annotations

import copy
import numbers
import sys
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from helpers._flops import _FlopCounter, onednn, without_lazy_dynamo

__all__ = ["Call", "Tracer", "Pass", "traced_pass", "as_args", "make_inputs", "shapes_of", "has_tensor",
           "map_tensors"]


# --------------------------------------------------------------------------- values ----------

def shapes_of(value: Any) -> Any:
    """The shape structure of a value: a tensor → its shape tuple; tuples/lists (namedtuples,
    PackedSequence) → tuples of their elements' structures; dicts → dicts; anything else → None."""
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    if isinstance(value, (tuple, list)):
        return tuple(shapes_of(v) for v in value)
    if isinstance(value, Mapping):
        return {k: shapes_of(v) for k, v in value.items()}
    return None


def has_tensor(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return True
    if isinstance(value, (tuple, list)):
        return any(has_tensor(v) for v in value)
    if isinstance(value, Mapping):
        return any(has_tensor(v) for v in value.values())
    return False


def map_tensors(value: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """`value` with `fn` applied to every tensor; containers keep their type (namedtuples stay
    namedtuples; a PackedSequence keeps its ``batch_sizes`` on the CPU, as torch requires)."""
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, PackedSequence):
        return PackedSequence(fn(value.data), value.batch_sizes,
                              *(None if t is None else fn(t) for t in (value.sorted_indices, value.unsorted_indices)))
    if isinstance(value, tuple):
        items = [map_tensors(v, fn) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    if isinstance(value, list):
        return [map_tensors(v, fn) for v in value]
    if isinstance(value, Mapping):
        return {k: map_tensors(v, fn) for k, v in value.items()}
    return value


def as_args(example_inputs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Positional and keyword inputs from a tensor, a tuple/list (positional) or a dict (keywords).
    A PackedSequence or another namedtuple is ONE input."""
    if isinstance(example_inputs, torch.Tensor) or hasattr(example_inputs, "_fields"):
        return (example_inputs,), {}
    if isinstance(example_inputs, Mapping):
        return (), dict(example_inputs)
    if isinstance(example_inputs, (tuple, list)):
        return tuple(example_inputs), {}
    raise TypeError("example_inputs must be a tensor, a tuple/list of positional inputs or a dict "
                    f"of keyword inputs, got {type(example_inputs).__name__}")


def _model_dtype(model: nn.Module) -> torch.dtype:
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


def _is_size(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _shape(value: Any) -> tuple[int, ...]:
    shape = tuple(int(v) for v in value)  # numpy / torch integers → int
    if any(v < 0 for v in shape):
        raise ValueError(f"input_size {shape} has a negative size")
    return shape


def _seq(value: Any) -> Any:
    """A shape given as a 1-D numpy array (or tensor) → a list; anything else unchanged."""
    return value.tolist() if getattr(value, "ndim", None) == 1 and hasattr(value, "tolist") else value


def make_inputs(model: nn.Module, input_size: Any, dtypes: Any, device: torch.device) -> tuple[torch.Tensor, ...]:
    """Zero tensors of the shapes in `input_size` (one shape, or a list of shapes; numpy integers
    and arrays accepted), in the model's floating dtype or `dtypes` (zeros are valid token ids;
    free on meta)."""
    input_size = _seq(input_size)
    if isinstance(input_size, (tuple, list)):
        input_size = type(input_size)(_seq(s) for s in input_size)
    if isinstance(input_size, torch.Size) or (
            isinstance(input_size, (tuple, list)) and all(_is_size(v) for v in input_size)):
        sizes = [_shape(input_size)]
    elif isinstance(input_size, (tuple, list)) and input_size and all(
            isinstance(s, (tuple, list, torch.Size)) and all(_is_size(v) for v in s) for s in input_size):
        sizes = [_shape(s) for s in input_size]
    else:
        raise TypeError(f"input_size must be a shape tuple like (2, 3, 32, 32) or a list of shapes, got {input_size!r}")
    if dtypes is None:
        dtypes = [_model_dtype(model)] * len(sizes)
    elif isinstance(dtypes, torch.dtype):
        dtypes = [dtypes] * len(sizes)
    if len(dtypes) != len(sizes):
        raise ValueError(f"dtypes has {len(dtypes)} entries but input_size describes {len(sizes)} inputs")
    return tuple(torch.zeros(s, dtype=dt, device=device) for s, dt in zip(sizes, dtypes))


# --------------------------------------------------------------------------- stand-ins -------

def _has_lazy(model: nn.Module) -> bool:
    from torch.nn.parameter import UninitializedBuffer, UninitializedParameter  # noqa: PLC0415

    return any(isinstance(t, (UninitializedParameter, UninitializedBuffer))
               for t in [*model.parameters(), *model.buffers()])


def _same_device(t: torch.Tensor, device: torch.device) -> bool:
    return t.device == device or (device.index is None and t.device.type == device.type)


def _stand_in(t: torch.Tensor, device: torch.device, param: bool) -> torch.Tensor:
    """What the shadow holds instead of `t` (see the module docstring)."""
    from torch.nn.parameter import UninitializedBuffer, UninitializedParameter  # noqa: PLC0415

    if isinstance(t, UninitializedParameter):  # a lazy layer: a fresh one, so the original stays lazy
        return UninitializedParameter(device=device, dtype=t.dtype, requires_grad=t.requires_grad)
    if isinstance(t, UninitializedBuffer):
        return UninitializedBuffer(device=device, dtype=t.dtype)
    if device.type == "meta":
        new = t if t.is_meta else torch.empty_like(t, device="meta")
    elif param and _same_device(t, device):
        return t  # read, never written: no copy of the weights
    elif t.is_meta:  # a model built on meta, traced on a real device: zero weights
        new = torch.zeros_like(t, device=device)
    else:
        new = t.detach().to(device, copy=True)
    if param and not isinstance(new, nn.Parameter):
        new = nn.Parameter(new, requires_grad=t.requires_grad)
    return new


_HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_forward_hooks_with_kwargs", "_forward_hooks_always_called",
               "_forward_pre_hooks_with_kwargs", "_backward_hooks", "_backward_pre_hooks")


def shadow(model: nn.Module, device: torch.device) -> nn.Module:
    """A copy of `model`'s module tree whose tensors are stand-ins on `device` (the module
    objects are new, attributes are shared, weights are not copied except across devices)."""
    modules: dict[int, nn.Module] = {}
    tensors: dict[int, torch.Tensor] = {}

    def tensor(t: Optional[torch.Tensor], param: bool) -> Optional[torch.Tensor]:
        if t is None:
            return None
        if id(t) not in tensors:
            tensors[id(t)] = _stand_in(t, device, param)
        return tensors[id(t)]

    def clone(m: nn.Module) -> nn.Module:
        if id(m) in modules:
            return modules[id(m)]
        new = type(m).__new__(type(m))  # not copy.copy: parametrized modules refuse __getstate__
        new.__dict__.update(m.__dict__)
        modules[id(m)] = new
        for key in _HOOK_DICTS:  # hooks we add to the shadow must not reach the original
            if key in new.__dict__:
                new.__dict__[key] = type(new.__dict__[key])(new.__dict__[key])
        new.__dict__["_parameters"] = {k: tensor(v, True) for k, v in m._parameters.items()}
        new.__dict__["_buffers"] = {k: tensor(v, False) for k, v in m._buffers.items()}
        new.__dict__["_non_persistent_buffers_set"] = set(m._non_persistent_buffers_set)
        new.__dict__["_modules"] = {k: None if v is None else clone(v) for k, v in m._modules.items()}
        return new

    return clone(model)


def _lazy_copy(model: nn.Module, device: torch.device) -> nn.Module:
    """A deep copy with stand-in tensors on `device` (ties kept), for a model with lazy layers:
    their initialisation hooks are bound to the module they belong to, so a shadow would
    materialise the ORIGINAL's parameters; on a deep copy they materialise the copy's."""
    clone = copy.deepcopy(model)
    memo: dict[int, torch.Tensor] = {}
    for module in clone.modules():
        for store, param in ((module._parameters, True), (module._buffers, False)):
            for key, t in store.items():
                if t is not None:
                    store[key] = memo.setdefault(id(t), _stand_in(t, device, param))
    return clone


def _is_jit(model: nn.Module) -> bool:
    return isinstance(model, torch.jit.ScriptModule)


def _real_device(model: nn.Module, args: Any) -> Optional[torch.device]:
    """The device to fall back to: the model's own, else that of the caller's tensors."""
    for t in [*model.parameters(), *model.buffers()]:
        if not t.is_meta:
            return t.device
    found: list[torch.device] = []
    map_tensors(args, lambda t: found.append(t.device) or t)
    real = next((d for d in found if d.type != "meta"), None)
    if real is None and not any(True for _ in [*model.parameters(), *model.buffers()]):
        real = torch.device("cpu")  # no tensors at all (e.g. packed quantized weights): the CPU
    return real


def _has_meta(*values: Any) -> bool:
    found: list[bool] = []
    map_tensors(values, lambda t: found.append(t.is_meta) or t)
    return any(found)


def _meta_limitation(exc: BaseException) -> bool:
    """True when a forward pass failed because of the meta device rather than the model
    (a CPU tensor the model keeps outside its parameters/buffers, or an op that needs values)."""
    if isinstance(exc, NotImplementedError):
        return True
    msg = str(exc).lower()
    return "meta" in msg and any(s in msg for s in (
        "device", "data-dependent", "item()", "_local_scalar_dense", "storage", "copy out of", "tolist"))


# --------------------------------------------------------------------------- tracer ----------

@dataclass
class Call:
    """One call of one module: what it received and returned (shape structures), its FLOPs."""

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
    error: Optional[BaseException] = None  # the exception this call raised (caught or not)
    values: tuple[Any, ...] = ()  # the positional inputs themselves (explain's per-module mode)


class Tracer:
    """Hooks that record one `Call` per call of a submodule of `model`.

    ``per_module=False`` (summary, the fast path): process-wide module hooks for the duration of
    the pass; input shapes are read when the call returns (global pre-hooks do not see keyword
    arguments). ``per_module=True`` (explain): hooks on each submodule, input shapes read on
    entry, so a call that raises still has them. Either way an ``always_call`` hook closes a call
    that raised, so a failure caught inside forward (``try: fast(x) except: slow(x)``) leaves
    no open call behind; `failed_call` finds the call an exception came from."""

    def __init__(self, model: nn.Module, counter: Optional[_FlopCounter], check: Any = None, *,
                 per_module: bool = False, cpu: bool = False) -> None:
        self.model = model
        self.counter = counter
        self.check = check  # optional pre-call validator (explain)
        self.per_module = per_module
        self.cpu = cpu  # oneDNN off around recurrent layers (see _flops.onednn)
        self.calls: list[Call] = []
        self.stack: list[int] = []
        self.names: dict[int, str] = {}
        self.ncalls: dict[int, int] = {}
        self.handles: list[Any] = []
        self.originals: dict[int, torch.Tensor] = {}  # id(moved input) → the caller's tensor
        self.unchecked: list[int] = []  # calls whose input values a check could not see (explain)
        self._onednn: list[bool] = []

    def _flops(self) -> int:
        return self.counter.get_total_flops() if self.counter is not None else 0

    def __enter__(self) -> "Tracer":
        self.names = {id(module): name for name, module in self.model.named_modules()}
        if self.per_module:
            for module in self.model.modules():
                self.handles.append(module.register_forward_pre_hook(self._pre, with_kwargs=True))
                self.handles.append(module.register_forward_hook(self._post, with_kwargs=True))
                self.handles.append(module.register_forward_hook(self._closed, always_call=True))
        else:
            from torch.nn.modules.module import (  # noqa: PLC0415
                register_module_forward_hook, register_module_forward_pre_hook)

            self.handles.append(register_module_forward_pre_hook(self._pre_global))
            self.handles.append(register_module_forward_hook(self._post, with_kwargs=True))
            self.handles.append(register_module_forward_hook(self._closed, always_call=True))
        return self

    def __exit__(self, *exc: Any) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()
        while self._onednn:
            onednn(self._onednn.pop())

    def _pre_global(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        if id(module) in self.names:
            self._pre(module, args, None)

    def _pre(self, module: nn.Module, args: tuple[Any, ...], kwargs: Optional[dict[str, Any]]) -> None:
        key = id(module)
        n = self.ncalls[key] = self.ncalls.get(key, 0) + 1
        call = Call(module=module, name=self.names.get(key, ""), depth=len(self.stack),
                    parent=self.stack[-1] if self.stack else -1, args=(), kwargs={},
                    call=n, flops_start=self._flops())
        if kwargs is not None:
            call.args = tuple(shapes_of(a) for a in args if has_tensor(a))
            call.kwargs = {k: shapes_of(v) for k, v in kwargs.items() if has_tensor(v)}
            call.values = tuple(args)
        self.calls.append(call)
        self.stack.append(len(self.calls) - 1)
        if self.cpu and isinstance(module, nn.RNNBase):
            self._onednn.append(onednn(False))
        if self.check is not None:
            self.check(self, module, args, kwargs or {})

    def _finish(self, module: nn.Module) -> Optional[Call]:
        if not self.stack or self.calls[self.stack[-1]].module is not module:
            return None  # not one of ours (a global hook sees every module in the process)
        call = self.calls[self.stack.pop()]
        call.cum_flops = self._flops() - call.flops_start
        call.done = True
        if call.parent >= 0:
            self.calls[call.parent].child_flops += call.cum_flops
        if self.cpu and isinstance(module, nn.RNNBase) and self._onednn:
            onednn(self._onednn.pop())
        return call

    def _post(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
        call = self._finish(module)
        if call is None:
            return
        if not self.per_module:
            call.args = tuple(shapes_of(a) for a in args if has_tensor(a))
            call.kwargs = {k: shapes_of(v) for k, v in kwargs.items() if has_tensor(v)}
        call.output = shapes_of(output)

    def _closed(self, module: nn.Module, args: Any, output: Any) -> None:
        """always_call hook: also runs when the call raised — then `_post` did not run."""
        if not self.stack or self.calls[self.stack[-1]].module is not module or self.calls[self.stack[-1]].done:
            return
        error = sys.exc_info()[1]
        if error is None:
            return  # a normal return: _post (registered first) already closed it
        call = self._finish(module)
        if call is not None:
            call.done, call.error = False, error

    def failed_call(self, exc: BaseException) -> Optional[int]:
        """Index of the innermost call that raised `exc` (or the exception it was raised from)."""
        chain: list[BaseException] = []
        e: Optional[BaseException] = exc
        while e is not None and e not in chain:
            chain.append(e)
            e = e.__cause__ or e.__context__
        for i in range(len(self.calls) - 1, -1, -1):
            if any(self.calls[i].error is e for e in chain):
                return i
        return None

    def failures(self) -> list[int]:
        """Calls that raised an exception the model caught (its forward went on)."""
        return [i for i, c in enumerate(self.calls) if c.error is not None]


# --------------------------------------------------------------------------- the pass --------

@dataclass
class Pass:
    """One traced forward pass: the model that ran (a shadow of the caller's), its calls, the
    output, the FLOP counter, the device it ran on and notes for the reader."""

    model: nn.Module
    tracer: Tracer
    output: Any
    counter: Optional[_FlopCounter]
    device: torch.device
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def _run_once(model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], device: torch.device,
              count_flops: bool, check: Any, per_module: bool) -> Pass:
    counter = _FlopCounter() if count_flops else None
    tracer = Tracer(model, counter, check, per_module=per_module, cpu=device.type == "cpu")

    def moved(t: torch.Tensor) -> torch.Tensor:
        new = t if _same_device(t, device) else t.to(device)
        tracer.originals[id(new)] = t
        return new

    margs, mkwargs = map_tensors(args, moved), map_tensors(kwargs, moved)
    with ExitStack() as stack:
        stack.enter_context(tracer)
        if counter is not None:
            stack.enter_context(counter)
        if device.type == "meta":
            stack.enter_context(torch.no_grad())  # nothing to differentiate without storage
            stack.enter_context(without_lazy_dynamo())
        try:
            out = model(*margs, **mkwargs)
        except BaseException as exc:  # noqa: BLE001 — re-raised with the trace attached
            exc._trace = tracer  # type: ignore[attr-defined]
            raise
    return Pass(model, tracer, out, counter, device, margs, mkwargs)


def traced_pass(model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], device: torch.device, *,
                count_flops: bool, check: Any = None, per_module: bool = False,
                remake: Optional[Callable[[torch.device], tuple[Any, ...]]] = None) -> Pass:
    """Run ``model(*args, **kwargs)`` once on `device` under the tracer (and FLOP counter),
    on a shadow of `model` (never the model itself), with the caller's tensors moved to `device`.

    If the pass cannot run on meta (a CPU tensor kept outside the parameters, ``.item()``,
    data-dependent shapes), it runs again on the model's real device with the caller's own
    tensors (`remake(device)` rebuilds inputs that `summary` made from `input_size`); a note
    says so. Exceptions from the forward pass propagate with the tracer as ``exc._trace``."""
    notes: list[str] = []
    if _is_jit(model):
        real = _real_device(model, (args, kwargs)) or torch.device("cpu")
        if device != real:
            notes.append(f"a TorchScript module cannot run on {device} (its weights are not swappable): "
                         f"traced on {real}, on a copy")
            device = real
            args = remake(device) if remake is not None else args
        notes.append("TorchScript runs its layers inside the interpreter: one row for the whole model, "
                     "its FLOPs counted in total")
        traced = copy.deepcopy(model)  # buffers (BatchNorm statistics) are updated on the copy only
    elif _has_lazy(model):
        traced = _lazy_copy(model, device)
        notes.append("the model has lazy layers: they were materialised on a copy (the original stays "
                     "uninitialised)")
    else:
        traced = shadow(model, device)
        if device.type != "meta" and any(t.is_meta for t in [*model.parameters(), *model.buffers()]):
            notes.append(f"the model lives on meta (no values): traced on {device} with zero-filled stand-in "
                         "weights, so values and value-dependent branches are not the trained model's")
    try:
        result = _run_once(traced, args, kwargs, device, count_flops, check, per_module)
    except Exception as exc:
        real = _real_device(model, (args, kwargs))
        if device.type != "meta" or real is None or not _meta_limitation(exc) or (
                remake is None and _has_meta(args, kwargs)):
            raise  # (inputs given on meta have no values to run on a real device)
        notes.append(f"cannot run on meta ({str(exc).splitlines()[0][:80]}); traced on {real} instead, "
                     "with the inputs given")
        device = real
        args = remake(device) if remake is not None else args
        again = _lazy_copy(model, device) if _has_lazy(model) else shadow(model, device)
        result = _run_once(again, args, kwargs, device, count_flops, check, per_module)
    result.notes = notes
    failed = result.tracer.failures()
    if failed:
        c = result.tracer.calls[failed[0]]
        notes.append(f"{len(failed)} call(s) raised an error the model caught and recovered from (first: "
                     f"{c.name or 'the model'} ({type(c.module).__name__}): {str(c.error).splitlines()[0][:60] if str(c.error) else type(c.error).__name__})")
    return result
