"""Grouped-query attention, the MoE layer and the Llama/Mixtral model vs torch and Hugging Face.

* our `scaled_dot_product_attention(..., enable_gqa=True)` == ``F.scaled_dot_product_attention``
  with ``enable_gqa=True`` (random heads/groups, lengths, causal or not);
* `LlamaAttention` == Hugging Face's ``LlamaAttention`` on the same weights (MHA, GQA, MQA,
  head_dim set or derived); our `Llama` == ``LlamaForCausalLM`` logits after
  ``load_state_dict(hf.state_dict())`` (same parameter names);
* `SparseMoE` of SwiGLU experts == ``MixtralSparseMoeBlock`` and our MoE `Llama` ==
  ``MixtralForCausalLM``, with Hugging Face's fused 3-D expert tensors split into our experts;
* parameter counts: ours == Hugging Face on meta == `formulas.decoder_lm_params`.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers.counting import count_params
from helpers.formulas import decoder_lm_params
from helpers.models.attention import repeat_kv, scaled_dot_product_attention
from helpers.models.llama import Llama, LlamaAttention, LlamaConfig, LlamaMLP
from helpers.models.moe import SparseMoE

transformers = pytest.importorskip("transformers")


@st.composite
def gqa_shapes(draw):
    g = draw(st.integers(1, 4))
    h = g * draw(st.integers(1, 4))
    T = draw(st.integers(1, 7))
    S = T if draw(st.booleans()) else draw(st.integers(1, 7))
    return draw(st.integers(1, 3)), h, g, T, S, draw(st.integers(1, 8)), draw(st.booleans())


@settings(max_examples=50)
@given(gqa_shapes(), st.integers(0, 2**16))
def test_gqa_sdpa_equals_torch(shape, seed):
    B, h, g, T, S, d, causal = shape
    gen = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(B, n, L, d, generator=gen) for n, L in ((h, T), (g, S), (g, S)))
    ours = scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True)
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True)
    assert ours.shape == (B, h, T, d)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(repeat_kv(k, h // g), k.repeat_interleave(h // g, dim=1))


def test_gqa_sdpa_refuses_groups_that_do_not_divide_the_heads():
    q, k = torch.randn(1, 4, 3, 2), torch.randn(1, 3, 3, 2)
    with pytest.raises(RuntimeError):
        F.scaled_dot_product_attention(q, k, k, enable_gqa=True)
    with pytest.raises(ValueError, match="multiple of the key/value heads"):
        scaled_dot_product_attention(q, k, k, enable_gqa=True)


def _hf_llama_config(cfg: LlamaConfig, **extra):
    kw = {k: v for k, v in cfg.hf_fields().items() if k not in ("num_local_experts", "num_experts_per_tok")}
    return transformers.LlamaConfig(**kw, rms_norm_eps=cfg.norm_eps, max_position_embeddings=cfg.max_seq_len,
                                    rope_parameters={"rope_type": "default", "rope_theta": cfg.rope_theta},
                                    attn_implementation="sdpa", **extra)


@st.composite
def llama_configs(draw, moe: bool = False):
    nkv = draw(st.integers(1, 3))
    nh = nkv * draw(st.integers(1, 3))
    head_dim = draw(st.one_of(st.none(), st.sampled_from([2, 4, 6])))
    E = draw(st.integers(2, 4)) if moe else 1
    return LlamaConfig(vocab_size=draw(st.integers(2, 30)), dim=nh * draw(st.sampled_from([2, 4])),
                       n_layers=draw(st.integers(1, 2)), n_heads=nh, intermediate_size=draw(st.integers(1, 12)),
                       max_seq_len=32, norm_eps=1e-6, rope_theta=draw(st.sampled_from([10000.0, 500000.0])),
                       tie_weights=draw(st.booleans()), n_kv_heads=nkv, head_dim=head_dim,
                       num_local_experts=E, num_experts_per_tok=draw(st.integers(1, E)))


@settings(max_examples=20)
@given(llama_configs(), st.integers(0, 2**16))
def test_llama_attention_equals_hugging_face(cfg, seed):
    from transformers.models.llama.modeling_llama import LlamaAttention as HFAttention, LlamaRotaryEmbedding

    torch.manual_seed(seed)
    hf_cfg = _hf_llama_config(cfg)
    hf, ours = HFAttention(hf_cfg, layer_idx=0).eval(), LlamaAttention(cfg).eval()
    for p in hf.parameters():
        torch.nn.init.normal_(p, std=0.5)
    ours.load_state_dict(hf.state_dict())  # the same names and shapes, or this raises
    x = torch.randn(2, 5, cfg.dim)
    position_embeddings = LlamaRotaryEmbedding(hf_cfg)(x, torch.arange(5)[None])
    with torch.no_grad():
        expected, _ = hf(x, position_embeddings=position_embeddings, attention_mask=None)
        torch.testing.assert_close(ours(x), expected, atol=1e-5, rtol=1e-4)
    assert count_params(ours) == count_params(hf)


@settings(max_examples=15)
@given(llama_configs(), st.integers(0, 2**16))
def test_llama_equals_hugging_face_llama_for_causal_lm(cfg, seed):
    torch.manual_seed(seed)
    hf = transformers.LlamaForCausalLM(_hf_llama_config(cfg)).eval()
    ours = Llama(cfg).eval()
    ours.load_state_dict(hf.state_dict())
    idx = torch.randint(0, cfg.vocab_size, (2, 6))
    with torch.no_grad():
        torch.testing.assert_close(ours(idx), hf(idx).logits, atol=1e-4, rtol=1e-4)
    assert count_params(ours) == count_params(hf) == decoder_lm_params(**cfg.hf_fields())["total"]


def _load_mixtral(ours: torch.nn.Module, hf: torch.nn.Module) -> None:
    """Hugging Face's fused experts (E, 2F, D) / (E, D, F) → our experts' gate/up/down Linears."""
    state = {}
    for name, t in hf.state_dict().items():
        if name.endswith("experts.gate_up_proj"):
            prefix = name[: -len("gate_up_proj")]
            for e, w in enumerate(t):
                state[f"{prefix}{e}.gate_proj.weight"], state[f"{prefix}{e}.up_proj.weight"] = w.chunk(2)
        elif name.endswith("experts.down_proj"):
            prefix = name[: -len("down_proj")]
            for e, w in enumerate(t):
                state[f"{prefix}{e}.down_proj.weight"] = w
        else:
            state[name] = t
    ours.load_state_dict(state)


def _hf_mixtral(cfg: LlamaConfig):
    kw = cfg.hf_fields()
    return transformers.MixtralForCausalLM(transformers.MixtralConfig(
        **kw, rms_norm_eps=cfg.norm_eps, max_position_embeddings=cfg.max_seq_len,
        rope_parameters={"rope_type": "default", "rope_theta": cfg.rope_theta},
        attn_implementation="sdpa", experts_implementation="eager"))


@settings(max_examples=15)
@given(llama_configs(moe=True), st.integers(0, 2**16))
def test_moe_llama_equals_hugging_face_mixtral(cfg, seed):
    torch.manual_seed(seed)
    hf = _hf_mixtral(cfg).eval()
    for p in hf.parameters():
        torch.nn.init.normal_(p, std=0.5)
    ours = Llama(cfg).eval()
    _load_mixtral(ours, hf)
    idx = torch.randint(0, cfg.vocab_size, (2, 6))
    with torch.no_grad():
        torch.testing.assert_close(ours(idx), hf(idx).logits, atol=1e-4, rtol=1e-4)
    counts = decoder_lm_params(**cfg.hf_fields())
    assert count_params(ours) == count_params(hf) == counts["total"]
    moe = ours.model.layers[0].mlp
    assert (moe.num_experts, moe.top_k) == (cfg.num_local_experts, cfg.num_experts_per_tok)


def test_sparse_moe_routes_each_token_to_top_k_experts():
    torch.manual_seed(0)
    cfg = LlamaConfig(dim=8, n_heads=2, intermediate_size=5)
    moe = SparseMoE(8, 4, 2, lambda: LlamaMLP(cfg))
    x = torch.randn(3, 7, 8)
    weights, indices = moe.route(x.reshape(-1, 8))
    assert weights.shape == indices.shape == (21, 2)
    torch.testing.assert_close(weights.sum(-1), torch.ones(21))
    calls = []
    for expert in moe.experts:
        expert.register_forward_hook(lambda m, args, out: calls.append(args[0].shape[0]))
    y = moe(x)
    assert y.shape == x.shape and len(calls) == 4 and sum(calls) == 21 * 2
    # by hand, token by token: the weighted sum of its two experts
    flat = x.reshape(-1, 8)
    manual = torch.stack([sum(w * moe.experts[int(e)](t[None])[0] for w, e in zip(weights[i], indices[i]))
                          for i, t in enumerate(flat)])
    torch.testing.assert_close(y.reshape(-1, 8), manual, atol=1e-6, rtol=1e-5)


def test_invalid_configs_are_refused():
    with pytest.raises(ValueError, match="between 1 and num_experts"):
        SparseMoE(8, 2, 3, lambda: torch.nn.Identity())
    with pytest.raises(ValueError, match="multiple of n_kv_heads"):
        LlamaConfig(dim=16, n_heads=4, n_kv_heads=3)
    with pytest.raises(ValueError, match="odd"):
        LlamaConfig(dim=12, n_heads=4)
    with pytest.raises(ValueError, match="not divisible"):
        LlamaConfig(dim=10, n_heads=4)


def test_from_hf_round_trip_and_famous_counts_on_meta():
    """Llama-3-8B and Mixtral-8x7B configs → ours on meta == decoder_lm_params == Hugging Face on meta."""
    for hf_cfg, hf_cls in ((transformers.LlamaConfig(vocab_size=128256, hidden_size=4096, intermediate_size=14336,
                                                     num_hidden_layers=32, num_attention_heads=32,
                                                     num_key_value_heads=8), transformers.LlamaForCausalLM),
                           (transformers.MixtralConfig(), transformers.MixtralForCausalLM)):
        cfg = LlamaConfig.from_hf(hf_cfg)
        with torch.device("meta"):
            ours, hf = Llama(cfg), hf_cls(hf_cfg)
        assert count_params(ours) == count_params(hf) == decoder_lm_params(**cfg.hf_fields())["total"]


def test_llama_intermediate_size_reproduces_published_configs():
    """Meta's params.json (dim, multiple_of, ffn_dim_multiplier) → the intermediate_size of config.json."""
    from helpers.models.llama import llama_intermediate_size

    published = {(4096, 256, None): 11008,  # Llama-2-7B
                 (5120, 256, None): 13824,  # Llama-2-13B
                 (4096, 1024, 1.3): 14336,  # Llama-3-8B
                 (8192, 4096, 1.3): 28672,  # Llama-3-70B
                 (2048, 256, 1.5): 8192}  # Llama-3.2-1B
    for (dim, multiple_of, mult), size in published.items():
        assert llama_intermediate_size(dim, multiple_of, mult) == size
    for dim in range(64, 4096, 61):  # always a multiple, never below 2/3 of 4·dim
        f = llama_intermediate_size(dim, 128)
        assert f % 128 == 0 and int(8 * dim / 3) <= f < int(8 * dim / 3) + 128
