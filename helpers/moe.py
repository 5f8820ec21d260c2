"""Mixture-of-Experts counts read off a built model: each MoE block's (n experts, top-k) and the
parameters one token uses.

A block is any module with an ``experts`` child (Hugging Face's sparse MoE blocks — Mixtral, Qwen-MoE,
DeepSeek — and the course's ``helpers.models.moe``); n and k come from the block, its router
(``gate``/``router``), its experts, or else the model config. Used by `helpers.summary` (its
``active_params``) and `helpers.report.counts`; tested against ``formulas.decoder_lm_params`` and the
router's top-k count (tests/test_summary_findings.py, tests/test_report.py).
"""

from __future__ import annotations

from typing import Any, Optional

from torch import nn

__all__ = ["moe_counts", "active_params"]


def moe_counts(module: nn.Module, config: Any) -> Optional[tuple[int, int]]:
    """(num_experts, top_k) of a Mixture-of-Experts block, or None: the block's own attributes
    (``num_experts``/``top_k``, as Hugging Face's sparse MoE blocks and their routers have), else
    the model config's ``num_local_experts``/``num_experts`` and ``num_experts_per_tok``."""
    if not isinstance(getattr(module, "experts", None), nn.Module):
        return None
    sources = [module, getattr(module, "gate", None), getattr(module, "router", None), module.experts, config]

    def first(*names: str) -> Optional[int]:
        for src in sources:
            for name in names:
                v = getattr(src, name, None) if src is not None else None
                if isinstance(v, int) and not isinstance(v, bool) and v > 0:
                    return v
        return None

    n, k = first("num_experts", "num_local_experts", "n_routed_experts"), first("top_k", "num_experts_per_tok")
    return (n, k) if n and k and k <= n else None


def active_params(model: nn.Module, total: int) -> tuple[int, str]:
    """Parameters one token uses: `total` minus, in each MoE block, the (n − k)/n of its experts'
    parameters that the router does not pick (k = top_k of n experts; the router, shared experts
    and attention are always active). Same convention as ``formulas.decoder_lm_params``."""
    config = getattr(model, "config", None)
    inactive, blocks, kinds = 0, 0, set()
    seen: set[int] = set()
    for module in model.modules():
        counts = moe_counts(module, config)
        if counts is None or id(module) in seen:
            continue
        n, k = counts
        experts = {id(p): p.numel() for p in module.experts.parameters()}
        inactive += sum(experts.values()) * (n - k) // n
        blocks += 1
        kinds.add(f"top-{k} of {n} experts")
        seen.update(id(m) for m in module.modules())
    if not blocks:
        return total, ""
    return total - inactive, f"{blocks} block(s), {', '.join(sorted(kinds))}"
