"""Measure the activations autograd keeps for backward, tensor by tensor, labelled by module.

``saved_tensors(module, x)`` runs one forward pass under
``torch.autograd.graph.saved_tensors_hooks`` and records every tensor autograd packs, with the
name of the innermost submodule whose forward was running. Parameters and buffers (model
states, not activations) are left out; a tensor saved by two ops (the same storage, offset,
shape and strides) is counted once, while disjoint views of one storage (q, k, v sliced from
one fused projection) are counted separately — so the total is the activation memory the
backward pass holds. One block of memory that a second op saves through a reshape or transpose
(attention's output (B, nh, T, hs) seen again as the output projection's input (B·T, D)) has
another shape and strides, so it counts twice unless ``same_memory_once=True``. Chapter 13 compares it with `helpers.cost.transformer_activation_bytes`.
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
from torch import Tensor, nn

__all__ = ["SavedTensor", "saved_tensors", "saved_bytes_by_module"]


@dataclass(frozen=True)
class SavedTensor:
    """One tensor autograd keeps: where it was saved, its shape, dtype and bytes."""

    module: str  # qualified name of the innermost running submodule ("" = the module itself)
    shape: tuple[int, ...]
    dtype: torch.dtype
    nbytes: int


@contextmanager
def _module_labels(module: nn.Module) -> Iterator[list[str]]:
    stack: list[str] = [""]
    handles = []
    for name, sub in module.named_modules():
        if not name:
            continue
        handles.append(sub.register_forward_pre_hook(lambda m, a, name=name: stack.append(name) and None))
        handles.append(sub.register_forward_hook(lambda m, a, o: stack.pop() and None))
    try:
        yield stack
    finally:
        for h in handles:
            h.remove()


def _layout(t: Tensor, same_memory_once: bool) -> tuple:
    """What, besides storage, offset and dtype, tells saved tensors apart: shape and strides, or —
    with `same_memory_once`, for a view without gaps (a reshape or transpose of one contiguous
    block) — only the number of elements, so the same bytes seen twice count once."""
    span = 1 + sum((n - 1) * abs(st) for n, st in zip(t.shape, t.stride()) if n > 0)
    if same_memory_once and (t.numel() == 0 or span == t.numel()):
        return (t.numel(),)
    return tuple(t.shape), t.stride()


def saved_tensors(module: nn.Module, *inputs: Any, run: Callable[..., Any] | None = None,
                  same_memory_once: bool = False) -> list[SavedTensor]:
    """The activations autograd saves during ``module(*inputs)`` (or ``run(*inputs)``), in order.

    Args:
        module: its parameters and buffers are excluded, its submodules label the tensors.
        inputs: passed to the forward pass (a float input should have ``requires_grad=True``
            for the first layer to save what a layer deep in a network saves).
        run: what to call instead of ``module`` (e.g. a ``torch.utils.checkpoint`` wrapper).
        same_memory_once: count a block of memory saved again through a reshape/transpose once
            (the bytes the backward pass really holds; `helpers.scale.llama_activation_terms`).
    """
    model_states = {t.untyped_storage().data_ptr() for t in [*module.parameters(), *module.buffers()]}
    seen: set[tuple] = set()
    found: list[SavedTensor] = []
    with _module_labels(module) as stack:
        def pack(t: Tensor) -> Tensor:
            ptr = t.untyped_storage().data_ptr()
            key = (ptr, t.storage_offset(), t.dtype, *_layout(t, same_memory_once))
            if ptr not in model_states and key not in seen:
                seen.add(key)
                found.append(SavedTensor(stack[-1], tuple(t.shape), t.dtype, t.numel() * t.element_size()))
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            (run or module)(*inputs)
    return found


def saved_bytes_by_module(saved: list[SavedTensor]) -> dict[str, int]:
    """Total saved bytes per module label, in the order the modules first saved something."""
    totals: dict[str, int] = defaultdict(int)
    for s in saved:
        totals[s.module] += s.nbytes
    return dict(totals)
