"""Counts read off a model built on meta: parameters (total, trainable, active), the per-block table,
weight bytes per dtype, the largest layer, the matrix-product parameters of one token, LoRA's targets.

Nothing here runs the model: every number is a sum over its parameter and buffer tensors (shapes only).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from helpers._text import dtype_bytes
from helpers.counting import count_buffers, count_params
from helpers.formulas import lora_params
from helpers.report.schema import BlockRow
from helpers.moe import active_params, moe_counts

__all__ = ["param_counts", "block_rows", "weight_bytes", "largest_layer_params", "matmul_params_per_token",
           "quantizable_params", "lora_targets", "lora_trainable_params"]


def largest_layer_params(model: nn.Module) -> int:
    """Parameters of the largest single module (its own tensors, ``recurse=False``): what DeepSpeed's
    ``model_to_params`` reports as the largest layer ZeRO-3 gathers at once."""
    return max((sum(p.numel() for p in m.parameters(recurse=False)) for m in model.modules()), default=0)


def param_counts(model: nn.Module) -> dict[str, int]:
    """total (tied tensors once), trainable, active (MoE: top-k of n experts), buffers, largest_layer."""
    total = count_params(model)
    return {"total": total, "trainable": count_params(model, trainable_only=True),
            "active": active_params(model, total)[0], "buffers": count_buffers(model),
            "largest_layer": largest_layer_params(model)}


def _signature(module: nn.Module) -> tuple:
    return (type(module).__name__, tuple((n, tuple(p.shape)) for n, p in module.named_parameters()))


def block_rows(model: nn.Module, depth: int = 2) -> list[BlockRow]:
    """The module tree down to `depth` levels; consecutive identical siblings (same class, same parameter
    names and shapes — the layers of a ModuleList) become one row with ``repeat`` = how many."""
    rows: list[BlockRow] = []

    def walk(module: nn.Module, prefix: str, level: int) -> None:
        children = list(module.named_children())
        i = 0
        while i < len(children):
            name, child = children[i]
            j = i + 1
            while j < len(children) and _signature(children[j][1]) == _signature(child):
                j += 1
            label = f"{prefix}{name}" if j == i + 1 else f"{prefix}{name}–{children[j - 1][0]}"
            rows.append(BlockRow(label, type(child).__name__, count_params(child), j - i, level))
            if level < depth:
                walk(child, f"{prefix}{name}.", level + 1)
            i = j

    walk(model, "", 1)
    return rows


def _float_bytes(tensor: torch.Tensor, per_element: float) -> float:
    """accelerate's rule (``compute_module_sizes(model, dtype)``): floats take min(dtype, own) bytes,
    integer and bool tensors keep their own."""
    own = tensor.element_size()
    return tensor.numel() * (min(per_element, own) if tensor.is_floating_point() else own)


def weight_bytes(model: nn.Module, dtype: str = "fp32", *, quantized: int = 0, bits: float | None = None) -> float:
    """Bytes of the parameters and buffers in `dtype` (what loading the state dict takes).

    With `bits`, `quantized` of the parameters (see `quantizable_params`) take ``bits / 8`` bytes each
    instead (int8: 8 + scales, NF4: 4.127 with double quantisation), the rest stays in `dtype`.
    """
    per = dtype_bytes(dtype)
    total = sum(_float_bytes(p, per) for p in model.parameters())
    total += sum(_float_bytes(b, per) for b in model.buffers())
    if bits is not None:
        total -= quantized * per - quantized * bits / 8
    return total


def _output_weight(model: nn.Module) -> Any:
    get = getattr(model, "get_output_embeddings", None)
    head = get() if callable(get) else None
    return getattr(head, "weight", None)


def quantizable_params(model: nn.Module) -> int:
    """Parameters bitsandbytes would quantise: the weights of matrix products (≥ 2-D tensors) outside
    the embeddings and the LM head, which stay in the compute dtype."""
    skip = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    head = _output_weight(model)
    if head is not None:
        skip.add(id(head))
    return sum(p.numel() for p in model.parameters() if p.dim() >= 2 and id(p) not in skip)


def matmul_params_per_token(model: nn.Module) -> int:
    """P_mm of `helpers.inference`: parameters one token multiplies by (2 FLOPs each).

    Every ≥ 2-D weight of every module except nn.Embedding lookups, counted once per module that uses
    it (a tied LM head multiplies by the embedding matrix again), and of a Mixture-of-Experts block's
    experts only the top-k of n the router picks (k/n of their weights).
    """
    config = getattr(model, "config", None)
    scale: dict[int, tuple[int, int]] = {}
    for module in model.modules():
        counts = moe_counts(module, config)
        if counts is not None:
            for p in module.experts.parameters():
                scale[id(p)] = counts
    total = 0
    for module in model.modules():
        if isinstance(module, nn.Embedding):
            continue
        for p in module.parameters(recurse=False):
            if p.dim() < 2:
                continue
            n, k = scale.get(id(p), (1, 1))
            total += p.numel() * k // n
    return total


def _linear_shape(module: nn.Module) -> tuple[int, int] | None:
    """(in_features, out_features) of nn.Linear or transformers' Conv1D (GPT-2's transposed Linear)."""
    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features
    if type(module).__name__ == "Conv1D" and getattr(module, "weight", None) is not None:
        return tuple(module.weight.shape)  # type: ignore[return-value]
    return None


def lora_targets(model: nn.Module, model_type: str | None) -> tuple[list[str], str]:
    """Names of the linear layers LoRA adapts: peft's default targets for this model_type
    (``q_proj, v_proj`` for Llama…), else every linear layer except the output head ("all-linear")."""
    try:
        from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as defaults  # noqa: PLC0415
    except ImportError:  # pragma: no cover - peft is a runtime dependency
        defaults = {}
    wanted = defaults.get(model_type or "")
    head = _output_weight(model)
    names = []
    for name, module in model.named_modules():
        if _linear_shape(module) is None:
            continue
        if wanted is not None:
            if name.rsplit(".", 1)[-1] in wanted:
                names.append(name)
        elif getattr(module, "weight", None) is not head:
            names.append(name)
    how = f"peft's default targets for {model_type}: {', '.join(wanted)}" if wanted is not None \
        else "every linear layer except the output head (peft's 'all-linear')"
    return names, how


def lora_trainable_params(model: nn.Module, names: list[str], r: int) -> int:
    """Σ `formulas.lora_params(in, out, r)` = r·(in + out) over the adapted layers."""
    total = 0
    for name in names:
        shape = _linear_shape(model.get_submodule(name))
        assert shape is not None
        total += lora_params(shape[0], shape[1], r)
    return total
