"""transformers' Llama, Mistral and Mixtral causal LMs rebuilt from a config.json without importing transformers.

Why: importing transformers and its modeling stack takes about 1.5–2 s of the report's 3 s budget on 2 cores
(``import transformers`` reaches ``torch.distributed.tensor`` and sympy), while the report never runs the
model: it reads parameter and buffer shapes, module names and class names. For these three families the
module tree is small and fixed, so it is rebuilt here on the meta device:

* the same module names (``model.layers.0.self_attn.q_proj``…) and class names (``LlamaDecoderLayer``,
  ``MixtralSparseMoeBlock``, transformers' ``SiLUActivation``…), the same parameters (names, shapes,
  dtypes, tied LM head), the same buffers (the rotary embedding's ``inv_freq`` and ``original_inv_freq``);
* the attributes the report reads: ``config`` (the config's fields with transformers' defaults, as
  ``LlamaConfig().to_dict()`` gives them), the MoE block's ``top_k``, the router's and the experts'
  ``num_experts``, ``get_output_embeddings()``.

Glossary: V vocab_size, H hidden_size, I intermediate_size, L num_hidden_layers, h num_attention_heads,
g num_key_value_heads, hd head_dim, E num_local_experts, k num_experts_per_tok.

Mirrors transformers 5's ``modeling_llama.py``, ``modeling_mistral.py`` and ``modeling_mixtral.py`` (the
versions in requirements.lock). Deviation: the modules have no ``forward`` — they are counted, never run.

Only a *plain* config takes this route: a known ``model_type``, ``architectures`` absent or the family's
``…ForCausalLM``, every key one the family's config defines, integers ≥ 1 where transformers reads sizes,
the default rotary embedding or a complete linear or Llama-3.1 (``llama3``) scaling of it, ``hidden_act``
silu. Anything else — another rope scaling, an unknown key, a string where a size belongs, a value
transformers might refuse — returns None and the report builds the model with transformers, which decides
(so both routes fail on the same configs, with transformers' message).
tests/test_report_mirror.py proves the equality: the whole report (every number, block row and assumption)
from this route equals the report from transformers' built model, on random configs of each family.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Optional

import torch
from torch import nn

__all__ = ["FAMILIES", "mirror_config", "build_mirror"]

#: keys every transformers config may carry (PreTrainedConfig's own, the Hub's bookkeeping, token ids)
_COMMON = {"architectures", "model_type", "transformers_version", "_name_or_path", "torch_dtype", "dtype",
           "bos_token_id", "eos_token_id", "pad_token_id", "use_cache", "initializer_range",
           "attention_dropout", "rms_norm_eps", "rope_theta", "rope_scaling", "rope_parameters", "tie_word_embeddings"}
_SIZES = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads")


@dataclass(frozen=True)
class Family:
    """One architecture family: its class-name prefix and its config's defaults (``XConfig().to_dict()``)."""

    prefix: str
    defaults: dict[str, Any]
    derive_head_dim: bool = True  # Llama/Mistral store H // h in the config; Mixtral keeps None
    moe: bool = False

    @property
    def keys(self) -> set[str]:
        return set(self.defaults) | _COMMON


_BASE = {"vocab_size": 32000, "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
         "hidden_act": "silu", "tie_word_embeddings": False, "head_dim": None}
FAMILIES: dict[str, Family] = {
    "llama": Family("Llama", {**_BASE, "intermediate_size": 11008, "num_key_value_heads": None,
                              "max_position_embeddings": 2048, "attention_bias": False, "mlp_bias": False,
                              "pretraining_tp": 1}),
    "mistral": Family("Mistral", {**_BASE, "intermediate_size": 14336, "num_key_value_heads": 8,
                                  "max_position_embeddings": 131072, "sliding_window": 4096}),
    "mixtral": Family("Mixtral", {**_BASE, "intermediate_size": 14336, "num_key_value_heads": 8,
                                  "max_position_embeddings": 131072, "sliding_window": None,
                                  "num_local_experts": 8, "num_experts_per_tok": 2, "output_router_logits": False,
                                  "router_aux_loss_coef": 0.001, "router_jitter_noise": 0.0},
                      derive_head_dim=False, moe=True),
}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_float(value: Any) -> bool:
    return isinstance(value, float)


def _is_token(value: Any) -> bool:
    return value is None or _is_int(value) or (isinstance(value, list) and all(map(_is_int, value)))


#: rope scalings whose inverse frequencies keep the default's shape (hd/2,): their keys, each a number
#: (transformers warns on odd values and raises on missing keys; a missing or extra key goes to transformers)
_SCALINGS = {"linear": {"factor"},
             "llama3": {"factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"}}


def _plain_scaling(value: Any) -> bool:
    """Llama 3.1's ``{"rope_type": "llama3", "factor": 8.0, …}`` and the linear scaling, complete and in range
    (the dynamic NTK scaling divides by hd − 2 when the model is built: left to transformers)."""
    if not isinstance(value, dict) or value.get("rope_type") not in _SCALINGS:
        return False
    wanted = _SCALINGS[value["rope_type"]]
    numbers = {k: v for k, v in value.items() if k not in ("rope_type", "rope_theta")}
    if not (set(numbers) == wanted and all(_is_int(v) or _is_float(v) for v in numbers.values())
            and _is_float(value.get("rope_theta", 1.0))):
        return False
    if value["rope_type"] == "llama3":  # transformers divides by low_freq_factor and by high − low
        return (_is_int(numbers["original_max_position_embeddings"]) and numbers["original_max_position_embeddings"] >= 1
                and numbers["factor"] >= 1 and 0 < numbers["low_freq_factor"] < numbers["high_freq_factor"])
    return numbers["factor"] >= 1


#: the type each accepted key must have; a value of another type goes to transformers (its strict
#: dataclass validation decides), as does any key not listed for the family
_KINDS: dict[str, Any] = {
    **{k: _is_int for k in (*_SIZES, "num_local_experts", "num_experts_per_tok", "pretraining_tp")},
    **{k: (lambda v: v is None or _is_int(v)) for k in ("num_key_value_heads", "head_dim", "max_position_embeddings",
                                                         "sliding_window")},
    **{k: _is_float for k in ("rms_norm_eps", "initializer_range", "attention_dropout", "router_aux_loss_coef",
                              "router_jitter_noise", "rope_theta")},
    **{k: (lambda v: isinstance(v, bool)) for k in ("tie_word_embeddings", "attention_bias", "mlp_bias", "use_cache",
                                                     "output_router_logits")},
    **{k: _is_token for k in ("bos_token_id", "eos_token_id", "pad_token_id")},
    **{k: (lambda v: v is None or isinstance(v, str)) for k in ("transformers_version", "_name_or_path", "torch_dtype",
                                                                 "dtype", "model_type", "hidden_act")},
    "architectures": lambda v: v is None or (isinstance(v, list) and all(isinstance(a, str) for a in v)),
    "rope_scaling": lambda v: v is None or _plain_scaling(v),
    "rope_parameters": lambda v: (isinstance(v, dict) and set(v) <= {"rope_theta", "rope_type"}
                                  and v.get("rope_type", "default") == "default" and _is_float(v.get("rope_theta", 1.0))),
}


def mirror_config(config: dict[str, Any]) -> Optional[tuple[Family, dict[str, Any]]]:
    """(family, the config with transformers' defaults) if `config` is plain (see the module docstring), else None."""
    family = FAMILIES.get(config.get("model_type"))  # type: ignore[arg-type]
    if family is None or set(config) - family.keys:
        return None
    if not all(_KINDS[k](v) for k, v in config.items()):
        return None
    if config.get("architectures") not in (None, [], [f"{family.prefix}ForCausalLM"]):
        return None
    full = {**family.defaults, **{k: v for k, v in config.items() if k not in ("rope_theta", "rope_scaling")}}
    sizes = [*_SIZES, *(["num_local_experts", "num_experts_per_tok"] if family.moe else [])]
    optional = ["num_key_value_heads", "head_dim", "max_position_embeddings", "sliding_window"]
    if not all(full[k] >= 1 for k in sizes) or not all(full.get(k) is None or full[k] >= 1 for k in optional):
        return None
    H, h = full["hidden_size"], full["num_attention_heads"]
    if full["hidden_act"] != "silu" or H % h or _head_dim(full) % 2:
        return None  # transformers checks H % h (Llama) and an even rotary dimension; let it say so
    pad = full.get("pad_token_id")
    if pad is not None and not (_is_int(pad) and 0 <= pad < full["vocab_size"]):
        return None
    if full["num_key_value_heads"] is None:
        full["num_key_value_heads"] = h
    if full["head_dim"] is None and family.derive_head_dim:
        full["head_dim"] = H // h
    return family, full


def _head_dim(c: dict[str, Any]) -> int:
    """hd: the config's head_dim, else H // h (Mixtral's config keeps None; its modules derive it)."""
    return c["head_dim"] or c["hidden_size"] // c["num_attention_heads"]


class _Node(nn.Module):
    """A module of the rebuilt tree: parameters, buffers and children only (never run)."""

    def forward(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover - the report never runs it
        raise NotImplementedError("a structure rebuilt to count parameters; build with transformers to run it")


_CLASSES: dict[str, type] = {}


def _node(name: str, **attributes: Any) -> nn.Module:
    """A `_Node` whose class is named `name` (transformers' class name, as the per-block table prints it)."""
    cls = _CLASSES.setdefault(name, type(name, (_Node,), {"__module__": __name__}))
    module = cls()
    for key, value in attributes.items():
        setattr(module, key, value)
    return module


def _param(*shape: int) -> nn.Parameter:
    return nn.Parameter(torch.empty(*shape))


def _norm(name: str, H: int) -> nn.Module:
    norm = _node(name)
    norm.weight = _param(H)  # (H,)
    return norm


def _layer(f: Family, c: dict[str, Any], hd: int) -> nn.Module:
    P, H, I = f.prefix, c["hidden_size"], c["intermediate_size"]
    h, g = c["num_attention_heads"], c["num_key_value_heads"]
    bias = bool(c.get("attention_bias", False))
    attn = _node(f"{P}Attention")
    attn.q_proj = nn.Linear(H, h * hd, bias=bias)  # (h·hd, H)
    attn.k_proj = nn.Linear(H, g * hd, bias=bias)  # (g·hd, H)
    attn.v_proj = nn.Linear(H, g * hd, bias=bias)  # (g·hd, H)
    attn.o_proj = nn.Linear(h * hd, H, bias=bias)  # (H, h·hd)
    layer = _node(f"{P}DecoderLayer")
    layer.self_attn = attn
    if f.moe:
        E, k = c["num_local_experts"], c["num_experts_per_tok"]
        mlp = _node(f"{P}SparseMoeBlock", top_k=k, jitter_noise=c["router_jitter_noise"])
        mlp.gate = _node(f"{P}TopKRouter", top_k=k, num_experts=E, hidden_dim=H)
        mlp.gate.weight = _param(E, H)  # (E, H)
        mlp.experts = _node(f"{P}Experts", num_experts=E, hidden_dim=H, intermediate_dim=I)
        mlp.experts.gate_up_proj = _param(E, 2 * I, H)  # (E, 2I, H): gate and up fused
        mlp.experts.down_proj = _param(E, H, I)  # (E, H, I)
        mlp.experts.act_fn = _node("SiLUActivation")
    else:
        mlp_bias = bool(c.get("mlp_bias", False))
        mlp = _node(f"{P}MLP")
        mlp.gate_proj = nn.Linear(H, I, bias=mlp_bias)  # (I, H)
        mlp.up_proj = nn.Linear(H, I, bias=mlp_bias)  # (I, H)
        mlp.down_proj = nn.Linear(I, H, bias=mlp_bias)  # (H, I)
        mlp.act_fn = _node("SiLUActivation")
    layer.mlp = mlp
    layer.input_layernorm = _norm(f"{P}RMSNorm", H)
    layer.post_attention_layernorm = _norm(f"{P}RMSNorm", H)
    return layer


def build_mirror(config: dict[str, Any]) -> Optional[tuple[nn.Module, str, dict[str, Any]]]:
    """(model on meta, its class name, its config dict) for a plain `config`, else None (build with transformers)."""
    plain = mirror_config(config)
    if plain is None:
        return None
    f, c = plain
    P, V, H, hd = f.prefix, c["vocab_size"], c["hidden_size"], _head_dim(c)  # hd: also the rotary dimension
    with torch.device("meta"):
        inner = _node(f"{P}Model")
        # given its weight, nn.Embedding skips its normal_ init, whose meta kernel would import torch._dynamo (1 s)
        inner.embed_tokens = nn.Embedding(V, H, c.get("pad_token_id"), _weight=torch.empty(V, H))  # (V, H)
        inner.layers = nn.ModuleList(_layer(f, c, hd) for _ in range(c["num_hidden_layers"]))
        inner.norm = _norm(f"{P}RMSNorm", H)
        inner.rotary_emb = _node(f"{P}RotaryEmbedding")
        inv_freq = torch.empty(len(range(0, hd, 2)), dtype=torch.float32)  # (hd/2,)
        inner.rotary_emb.register_buffer("inv_freq", inv_freq, persistent=False)
        inner.rotary_emb.register_buffer("original_inv_freq", inv_freq.clone(), persistent=False)
        extra = {"router_aux_loss_coef": c["router_aux_loss_coef"], "num_experts": c["num_local_experts"],
                 "num_experts_per_tok": c["num_experts_per_tok"]} if f.moe else {}
        model = _node(f"{P}ForCausalLM", config=SimpleNamespace(**c), vocab_size=V, **extra)
        model.model = inner
        model.lm_head = nn.Linear(H, V, bias=False)  # (V, H)
    if c["tie_word_embeddings"]:
        model.lm_head.weight = inner.embed_tokens.weight
    model.get_output_embeddings = lambda: model.lm_head  # type: ignore[method-assign]
    return model.eval(), f"{P}ForCausalLM", c
