"""Recipes: the cookbook's layers that are not one ``torch.nn`` call, built from a course class or an
independent reference (peft, Hugging Face), and what their formulas are compared with when it is not
the plain parameter count (MoE's routed parameters, LoRA's trainable ones). Rows name them by dotted
path (`Case.factory`, `Case.count`); each imports torch only when called.
"""

from __future__ import annotations

from typing import Any, Sequence

__all__ = ["swiglu_moe", "routed_params", "lora_linear", "trainable_params", "hf_rotary_embedding"]


def swiglu_moe(hidden_size: int, intermediate_size: int, num_local_experts: int, num_experts_per_tok: int) -> Any:
    """Mixtral's sparse MoE block: ``SparseMoE(D, E, k, lambda: LlamaMLP(LlamaConfig(dim=D,
    intermediate_size=F)))`` (`helpers.models.moe.SparseMoE` of `helpers.models.llama.LlamaMLP`)."""
    from helpers.models.llama import LlamaConfig, LlamaMLP  # noqa: PLC0415
    from helpers.models.moe import SparseMoE  # noqa: PLC0415

    config = LlamaConfig(dim=hidden_size, intermediate_size=intermediate_size, n_heads=1)
    return SparseMoE(hidden_size, num_local_experts, num_experts_per_tok, lambda: LlamaMLP(config))


def routed_params(moe: Any, inputs: Sequence[Any]) -> int:
    """Parameters the first token of ``inputs[0]`` really uses in a `SparseMoE`: the router plus the
    experts it is routed to (found by running the router, not by a formula)."""
    from helpers.counting import count_params  # noqa: PLC0415

    token = inputs[0].reshape(-1, inputs[0].shape[-1])[:1]  # (1, D)
    _, experts = moe.route(token)  # (1, k)
    return count_params(moe.gate) + sum(count_params(moe.experts[e]) for e in experts[0].tolist())


def lora_linear(in_features: int, out_features: int, r: int) -> Any:
    """peft's LoRA on one linear layer: ``get_peft_model(nn.Sequential(nn.Linear(in, out)),
    LoraConfig(r=r, target_modules=["0"]))`` (the independent reference; W frozen, A and B trained)."""
    import peft  # noqa: PLC0415
    import torch.nn as nn  # noqa: PLC0415

    return peft.get_peft_model(nn.Sequential(nn.Linear(in_features, out_features)),
                               peft.LoraConfig(r=r, target_modules=["0"]))


def trainable_params(module: Any, inputs: Sequence[Any]) -> int:
    """``count_params(module, trainable_only=True)``: what an optimizer updates."""
    from helpers.counting import count_params  # noqa: PLC0415

    return count_params(module, trainable_only=True)


def hf_rotary_embedding(hidden_size: int, num_attention_heads: int) -> Any:
    """Hugging Face's ``LlamaRotaryEmbedding(LlamaConfig(hidden_size=D, num_attention_heads=h))``:
    (x, position_ids (B, T)) → cos, sin (B, T, d), d = D // h."""
    from transformers import LlamaConfig  # noqa: PLC0415
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding  # noqa: PLC0415

    return LlamaRotaryEmbedding(LlamaConfig(hidden_size=hidden_size, num_attention_heads=num_attention_heads))
