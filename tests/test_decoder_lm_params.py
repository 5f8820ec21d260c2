"""formulas.decoder_lm_params == Hugging Face's LlamaForCausalLM / MixtralForCausalLM, part by part.

The independent reference is transformers itself: each random small configuration is turned
into a Hugging Face config and the model is built on the meta device (no weights, no network),
then its named parameters are grouped into the same parts (embeddings, attention, MLP/experts,
router, norms, lm_head). Dense and MoE, tied and untied, MHA/GQA/MQA, head_dim set or derived,
with and without biases; invalid configurations must make both sides fail.
"""

from __future__ import annotations

import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers.formulas import DECODER_LM_PARTS, decoder_lm_params

transformers = pytest.importorskip("transformers")

# which part each Hugging Face parameter belongs to (first match wins)
_PART_OF = [(r"embed_tokens\.", "embed_tokens"), (r"\.self_attn\.", "attention"),
            (r"\.mlp\.gate\.weight$", "router"), (r"\.mlp\.", "mlp"),
            (r"(layernorm|\.norm)\.weight$", "norms"), (r"^lm_head\.", "lm_head")]


def hf_model(cfg: dict, device: str = "meta") -> torch.nn.Module:
    """LlamaForCausalLM (one expert) or MixtralForCausalLM (several), built from `cfg`."""
    kw = {k: v for k, v in cfg.items() if v is not None}
    if kw.pop("num_local_experts", 1) > 1:
        kw.pop("attention_bias", None), kw.pop("mlp_bias", None)  # Mixtral has neither
        model = transformers.MixtralForCausalLM, transformers.MixtralConfig(
            num_local_experts=cfg["num_local_experts"], experts_implementation="eager", **kw)
    else:
        kw.pop("num_experts_per_tok", None)
        model = transformers.LlamaForCausalLM, transformers.LlamaConfig(**kw)
    cls, config = model
    with torch.device(device):
        return cls(config)


def hf_parts(model: torch.nn.Module) -> dict[str, int]:
    parts = dict.fromkeys(DECODER_LM_PARTS, 0)
    for name, p in model.named_parameters():  # tied tensors are listed once
        part = next(part for pattern, part in _PART_OF if re.search(pattern, name))
        parts[part] += p.numel()
    return parts


def hf_active(model: torch.nn.Module, cfg: dict) -> int:
    """Total minus the experts a token does not use: (E − k)/E of every layer's expert weights."""
    total = sum(p.numel() for p in model.parameters())
    E, k = cfg.get("num_local_experts", 1), cfg.get("num_experts_per_tok", 1)
    if E == 1:
        return total
    unused = 0
    for layer in model.model.layers:
        per_expert = sum(p.numel() for p in layer.mlp.experts.parameters()) // layer.mlp.experts.num_experts
        unused += (E - k) * per_expert
    return total - unused


@st.composite
def configs(draw, valid: bool = True):
    h = draw(st.integers(1, 6))
    g = draw(st.sampled_from([d for d in range(1, h + 1) if h % d == 0]))  # kv heads divide the heads
    head_dim = draw(st.one_of(st.none(), st.sampled_from([2, 4, 6])))  # RoPE needs an even head_dim
    D = h * 2 * draw(st.integers(1, 3)) if head_dim is None else draw(st.integers(1, 24))
    moe = draw(st.booleans())
    E = draw(st.integers(2, 5)) if moe else 1
    cfg = dict(vocab_size=draw(st.integers(1, 50)), hidden_size=D, intermediate_size=draw(st.integers(1, 20)),
               num_hidden_layers=draw(st.integers(1, 3)), num_attention_heads=h, num_key_value_heads=g,
               head_dim=head_dim, tie_word_embeddings=draw(st.booleans()),
               num_local_experts=E, num_experts_per_tok=draw(st.integers(1, E)))
    if not moe:
        cfg.update(attention_bias=draw(st.booleans()), mlp_bias=draw(st.booleans()))
        if head_dim is not None:  # Hugging Face's Llama also insists on hidden_size % heads == 0
            cfg["hidden_size"] = h * draw(st.integers(1, 4))
    return cfg


@settings(max_examples=60)
@given(configs())
def test_decoder_lm_params_equals_hugging_face(cfg):
    ours = decoder_lm_params(**cfg)
    model = hf_model(cfg)
    assert {p: ours[p] for p in DECODER_LM_PARTS} == hf_parts(model)
    assert ours["total"] == sum(p.numel() for p in model.parameters())
    assert ours["active"] == hf_active(model, cfg)
    assert ours["active"] <= ours["total"]


def test_mixtral_one_token_touches_exactly_the_active_parameters():
    """A real forward + backward of one token: experts that get no gradient are what "active" leaves out."""
    torch.manual_seed(0)
    cfg = dict(vocab_size=11, hidden_size=8, intermediate_size=6, num_hidden_layers=2, num_attention_heads=2,
               num_key_value_heads=1, num_local_experts=4, num_experts_per_tok=2)
    model = hf_model(cfg, device="cpu")
    for p in model.parameters():
        torch.nn.init.normal_(p)
    model(torch.tensor([[3]])).logits.sum().backward()
    untouched = 0
    for layer in model.model.layers:
        for w in layer.mlp.experts.parameters():  # (E, …) stacked expert weights
            untouched += sum(w[e].numel() for e in range(w.size(0)) if not w.grad[e].any())
    total = sum(p.numel() for p in model.parameters())
    assert decoder_lm_params(**cfg)["active"] == total - untouched


def test_famous_models_on_meta():
    """Llama-3-8B, Llama-3.2-1B (tied, head_dim 64) and Mixtral-8x7B: ours == Hugging Face."""
    for cfg in (dict(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                     num_attention_heads=32, num_key_value_heads=8),
                dict(vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                     num_attention_heads=32, num_key_value_heads=8, head_dim=64, tie_word_embeddings=True),
                dict(vocab_size=32000, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                     num_attention_heads=32, num_key_value_heads=8, num_local_experts=8, num_experts_per_tok=2)):
        model = hf_model(cfg)
        ours = decoder_lm_params(**cfg)
        assert ours["total"] == sum(p.numel() for p in model.parameters())
        assert ours["active"] == hf_active(model, cfg)


def test_hidden_size_not_divisible_by_heads_fails_like_hugging_face():
    cfg = dict(vocab_size=10, hidden_size=10, intermediate_size=4, num_hidden_layers=1, num_attention_heads=4)
    with pytest.raises(Exception, match="multiple of the number of attention heads"):
        hf_model(cfg)
    with pytest.raises(ValueError, match="not divisible by num_attention_heads"):
        decoder_lm_params(**cfg)


_BASE = dict(vocab_size=10, intermediate_size=4, num_hidden_layers=1)


@pytest.mark.parametrize("cfg,message", [
    # RoPE rotates feature pairs: an odd head_dim (derived or set, dense or MoE) cannot be rotated
    (dict(hidden_size=6, num_attention_heads=2), "head_dim=3 is odd"),
    (dict(hidden_size=8, num_attention_heads=2, head_dim=3, num_local_experts=2), "head_dim=3 is odd"),
    # repeat_kv cannot fill 4 query heads from 3 key/value heads
    (dict(hidden_size=12, num_attention_heads=4, num_key_value_heads=3), "multiple of num_key_value_heads"),
    # top-3 of 2 experts
    (dict(hidden_size=8, num_attention_heads=2, num_local_experts=2, num_experts_per_tok=3),
     "cannot exceed num_local_experts"),
])
def test_configs_hugging_face_builds_but_cannot_run_are_refused(cfg, message):
    """Hugging Face constructs these models, but their forward pass fails; decoder_lm_params refuses them."""
    model = hf_model({**_BASE, **cfg}, device="cpu")
    with pytest.raises(RuntimeError):
        model(torch.tensor([[1, 2, 3]]))
    with pytest.raises(ValueError, match=message):
        decoder_lm_params(**_BASE, **cfg)


@pytest.mark.parametrize("bad", [dict(vocab_size=0), dict(hidden_size=-1), dict(num_key_value_heads=0),
                                 dict(head_dim=0), dict(num_local_experts=0), dict(intermediate_size=2.5),
                                 dict(num_local_experts=2, mlp_bias=True)])
def test_invalid_arguments_raise_readable_errors(bad):
    cfg = dict(vocab_size=10, hidden_size=8, intermediate_size=4, num_hidden_layers=1, num_attention_heads=2)
    with pytest.raises(ValueError) as err:
        decoder_lm_params(**{**cfg, **bad})
    assert next(iter(bad)) in str(err.value)
