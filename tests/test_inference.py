"""helpers.cost.kv_cache_bytes in every form and helpers.inference, against Hugging Face's real caches
(DynamicCache, StaticCache, QuantizedCache('fp8'), the tensors a model's forward puts in them),
FlopCounterMode on random Llama configs, and simulations (block allocator, speculative sampling)."""

from __future__ import annotations

import random
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

from helpers import cost, formulas, inference

transformers = pytest.importorskip("transformers")
from transformers import (DeepseekV3Config, DeepseekV3ForCausalLM, DynamicCache, Gemma2Config,  # noqa: E402
                          Gemma3TextConfig, LlamaConfig, LlamaForCausalLM, MistralConfig, QuantizedCache,
                          StaticCache)

warnings.filterwarnings("ignore", message=".*past_key_values.*")


def cache_bytes(cache) -> int:
    """Bytes of every key/value tensor a transformers cache holds."""
    return sum(t.nbytes for layer in cache.layers for t in (layer.keys, layer.values))


def fill(cache, n_layer: int, batch: int, kv: int, seq_len: int, head_dim: int, chunks: int = 1,
         dtype=torch.float32) -> None:
    """Feed `seq_len` tokens of random keys/values (in `chunks` updates: prefill then decode) to every layer."""
    sizes = [seq_len // chunks] * (chunks - 1)
    sizes.append(seq_len - sum(sizes))
    for size in sizes:
        for i in range(n_layer):
            k = torch.randn(batch, kv, size, head_dim).to(dtype)  # (B, n_kv, T, hd)
            cache.update(k, torch.randn_like(k.float()).to(dtype), i)


gqa = st.integers(1, 4).flatmap(lambda kv: st.tuples(st.just(kv), st.integers(1, 4).map(lambda g: g * kv)))


# --------------------------------------------------------------------------- MHA / GQA / MQA


@settings(max_examples=8, deadline=None)
@given(kv_h=gqa, n_layer=st.integers(1, 3), head_dim=st.sampled_from([2, 4, 8]), T=st.integers(1, 12),
       B=st.integers(1, 3))
def test_gqa_equals_the_cache_a_llama_forward_fills(kv_h, n_layer, head_dim, T, B):
    kv, h = kv_h
    cfg = LlamaConfig(vocab_size=31, hidden_size=h * head_dim, intermediate_size=8, num_hidden_layers=n_layer,
                      num_attention_heads=h, num_key_value_heads=kv, head_dim=head_dim)
    model = LlamaForCausalLM(cfg).eval()
    cache = DynamicCache(config=cfg)
    with torch.no_grad():
        model(torch.randint(0, 31, (B, T)), cache=cache, use_cache=True)
    measured = cache_bytes(cache)
    assert measured == cost.kv_cache_bytes(n_layer, h, head_dim, T, B, 4, num_key_value_heads=kv)
    assert measured == cost.kv_cache_bytes_from_config(cfg, T, B, bytes_per_element=4)
    assert measured == cost.kv_cache_bytes_from_config(cfg.to_dict(), T, B, bytes_per_element=4)


def test_old_positional_signature_and_the_hf_name_agree():
    assert cost.kv_cache_bytes(4, 8, 16, 10, 2, 2, 2) == cost.kv_cache_bytes(4, 8, 16, 10, 2, 2,
                                                                               num_key_value_heads=2)
    assert cost.kv_cache_bytes(4, 8, 16, 10, 2, 2, 1) * 8 == cost.kv_cache_bytes(4, 8, 16, 10, 2, 2)  # MQA
    with pytest.raises(ValueError, match="same"):
        cost.kv_cache_bytes(4, 8, 16, 10, n_kv_head=2, num_key_value_heads=4)


@settings(max_examples=10, deadline=None)
@given(h=st.integers(2, 12), kv=st.integers(2, 12))
def test_gqa_refused_where_transformers_refuses(h, kv):
    if h % kv == 0:
        return
    with pytest.raises(ValueError, match="divisible"):
        cost.kv_cache_bytes(1, h, 4, 3, num_key_value_heads=kv)
    cfg = LlamaConfig(vocab_size=11, hidden_size=h * 4, intermediate_size=8, num_hidden_layers=1,
                      num_attention_heads=h, num_key_value_heads=kv, head_dim=4)
    with pytest.raises(Exception):  # GQA's repeat_kv cannot expand kv heads to h query heads
        with torch.no_grad():
            LlamaForCausalLM(cfg)(torch.zeros(1, 3, dtype=torch.long))


# --------------------------------------------------------------------------- sliding windows


@settings(max_examples=25, deadline=None)
@given(n_layer=st.integers(1, 7), W=st.integers(2, 9), T=st.integers(1, 20), chunks=st.integers(1, 3),
       kind=st.sampled_from(["mistral", "gemma2", "gemma3"]), pattern=st.integers(1, 4))
def test_sliding_window_equals_transformers_static_and_dynamic_caches(n_layer, W, T, chunks, kind, pattern):
    common = dict(vocab_size=11, hidden_size=16, intermediate_size=8, num_hidden_layers=n_layer,
                  num_attention_heads=4, num_key_value_heads=2, head_dim=4, sliding_window=W)
    if kind == "mistral":
        cfg, kw = MistralConfig(**common), {}
    elif kind == "gemma2":
        cfg = Gemma2Config(**common)
        kw = {"layer_types": cfg.layer_types}
    else:
        cfg = Gemma3TextConfig(sliding_window_pattern=pattern, **common)
        kw = {"sliding_window_pattern": pattern}
    chunks = min(chunks, T)
    static = StaticCache(config=cfg, max_cache_len=T)
    fill(static, n_layer, 2, 2, T, 4, chunks=1)  # a static cache is allocated at its full length
    assert cache_bytes(static) == cost.kv_cache_bytes(n_layer, 4, 4, T, 2, 4, 2, sliding_window=W, **kw)
    assert cache_bytes(static) == cost.kv_cache_bytes_from_config(cfg, T, 2, bytes_per_element=4)
    dynamic = DynamicCache(config=cfg)
    fill(dynamic, n_layer, 2, 2, T, 4, chunks=chunks)
    # transformers' DynamicSlidingWindowLayer keeps W − 1 past tokens (the new one makes W)
    assert cache_bytes(dynamic) == cost.kv_cache_bytes(n_layer, 4, 4, T, 2, 4, 2, sliding_window=W - 1, **kw)


def test_sliding_layer_selection_is_validated():
    with pytest.raises(ValueError, match="sliding_window"):
        cost.kv_cache_bytes(2, 4, 4, 8, sliding_window_pattern=2)
    with pytest.raises(ValueError, match="entries"):
        cost.kv_cache_bytes(2, 4, 4, 8, sliding_window=4, layer_types=["sliding_attention"])
    with pytest.raises(ValueError, match="full_attention"):
        cost.kv_cache_bytes(1, 4, 4, 8, sliding_window=4, layer_types=["local"])


# --------------------------------------------------------------------------- MLA


@settings(max_examples=8, deadline=None)
@given(n_layer=st.integers(1, 3), rank=st.sampled_from([4, 8, 12]), rope=st.sampled_from([2, 4]),
       T=st.integers(1, 9), B=st.integers(1, 2))
def test_mla_equals_the_latent_deepseek_v3_caches(n_layer, rank, rope, T, B):
    cfg = DeepseekV3Config(vocab_size=17, hidden_size=16, intermediate_size=8, moe_intermediate_size=8,
                           num_hidden_layers=n_layer, num_attention_heads=2, num_key_value_heads=2,
                           kv_lora_rank=rank, q_lora_rank=None, qk_rope_head_dim=rope, qk_nope_head_dim=4,
                           v_head_dim=4, first_k_dense_replace=n_layer, n_routed_experts=2,
                           num_experts_per_tok=1, n_group=1, topk_group=1)
    model = DeepseekV3ForCausalLM(cfg).eval()
    seen = []
    for layer in model.model.layers:  # the paper's cached vectors: c_KV and k^R, the output of kv_a_proj_with_mqa
        layer.self_attn.kv_a_proj_with_mqa.register_forward_hook(lambda m, i, o: seen.append(o.nbytes))
    cache = DynamicCache(config=cfg)
    with torch.no_grad():
        model(torch.randint(0, 17, (B, T)), cache=cache, use_cache=True)
    formula = cost.kv_cache_bytes(n_layer, 2, 99, T, B, 4, kv_lora_rank=rank, qk_rope_head_dim=rope)
    assert cache_bytes(cache) == sum(seen) == formula
    assert formula == cost.kv_cache_bytes_from_config(cfg, T, B, bytes_per_element=4)
    # without MLA, the same heads would cache full keys (nope + rope) and values per head
    assert cost.kv_cache_bytes_from_config(cfg, T, B, bytes_per_element=4, mla="decompressed") \
        == n_layer * B * T * 2 * ((4 + rope) + 4) * 4


def test_deepseek_v3_latent_is_576_elements_per_token_per_layer():
    cfg = DeepseekV3Config()  # transformers' defaults are DeepSeek-V3's config.json
    assert (cfg.kv_lora_rank, cfg.qk_rope_head_dim) == (512, 64)
    assert cost.kv_cache_bytes_from_config(cfg, 1, 1, bytes_per_element=1) == cfg.num_hidden_layers * 576
    with pytest.raises(ValueError, match="both"):
        cost.kv_cache_bytes(1, 1, 1, 1, kv_lora_rank=512)


# --------------------------------------------------------------------------- quantised KV


@settings(max_examples=10, deadline=None)
@given(n_layer=st.integers(1, 3), T=st.integers(1, 10), chunks=st.integers(1, 3))
def test_fp8_equals_transformers_quantized_cache(n_layer, T, chunks):
    cfg = LlamaConfig(vocab_size=11, hidden_size=16, intermediate_size=8, num_hidden_layers=n_layer,
                      num_attention_heads=4, num_key_value_heads=2, head_dim=4)
    cache = QuantizedCache("fp8", cfg)
    fill(cache, n_layer, 2, 2, T, 4, chunks=min(chunks, T))
    data = sum(q.nbytes for layer in cache.layers for q, _ in (layer._quantized_keys, layer._quantized_values))
    scales = sum(s.nbytes for layer in cache.layers for _, s in (layer._quantized_keys, layer._quantized_values))
    assert data == cost.kv_cache_bytes(n_layer, 4, 4, T, 2, cost.quantized_bytes_per_element(8), 2)
    assert scales == 2 * n_layer * 4  # one fp32 scale per key/value tensor per layer: the "negligible" part


def group_quantize(x: torch.Tensor, bits: int, group_size: int, zero_point: bool) -> list[torch.Tensor]:
    """Quantise x (…, hd) in groups of `group_size` along hd: integer codes (two 4-bit codes per byte) + fp16 scales."""
    g = x.reshape(*x.shape[:-1], -1, group_size)                                  # (…, hd/G, G)
    lo, hi = g.amin(-1, keepdim=True), g.amax(-1, keepdim=True)
    scale = ((hi - lo) if zero_point else hi.abs().maximum(lo.abs())) / (2**bits - 1)
    codes = torch.round((g - (lo if zero_point else 0)) / scale.clamp(min=1e-8)).to(torch.uint8).flatten(-2)
    if bits == 4:
        codes = codes[..., 0::2] | (codes[..., 1::2] << 4)                         # (…, hd/2) packed nibbles
    out = [codes, scale.half()]
    return out + [lo.half()] if zero_point else out


@pytest.mark.parametrize("bits,group_size,zero_point", [(8, 32, False), (8, 64, False), (4, 32, True),
                                                         (4, 16, False), (4, 64, True)])
def test_grouped_int_quantisation_bytes_equal_real_tensors(bits, group_size, zero_point):
    n_layer, B, kv, T, hd = 3, 2, 2, 7, 128
    cache = DynamicCache()
    fill(cache, n_layer, B, kv, T, hd)
    stored = [t for layer in cache.layers for x in (layer.keys, layer.values)
              for t in group_quantize(x, bits, group_size, zero_point)]
    per = cost.quantized_bytes_per_element(bits, group_size, scale_bytes=2, zero_point=zero_point)
    assert sum(t.nbytes for t in stored) == cost.kv_cache_bytes(n_layer, kv, hd, T, B, per)


# --------------------------------------------------------------------------- PagedAttention blocks


@settings(max_examples=30, deadline=None)
@given(lengths=st.lists(st.integers(0, 70), min_size=1, max_size=5), block=st.sampled_from([1, 8, 16, 32]))
def test_block_size_equals_a_token_by_token_block_allocator(lengths, block):
    """vLLM's block manager (arXiv:2309.06180 §4.2): a sequence takes a new block when its last one is full."""
    n_layer, kv, hd = 2, 2, 4
    block_bytes = block * 2 * kv * hd * 2  # one block of one layer: block_size tokens of K and V in bf16
    allocated = 0
    for T in lengths:
        used_in_last = 0
        blocks = 0
        for _ in range(T):
            if blocks == 0 or used_in_last == block:
                blocks, used_in_last = blocks + 1, 0
            used_in_last += 1
        allocated += n_layer * blocks * block_bytes
    formula = sum(cost.kv_cache_bytes(n_layer, kv, hd, T, 1, 2, block_size=block) for T in lengths)
    assert formula == allocated
    waste = formula - sum(cost.kv_cache_bytes(n_layer, kv, hd, T, 1, 2) for T in lengths)
    assert 0 <= waste < len(lengths) * n_layer * block_bytes  # < one block per sequence and layer


# --------------------------------------------------------------------------- FLOPs per token


@settings(max_examples=6, deadline=None)
@given(kv_h=gqa, n_layer=st.integers(1, 2), head_dim=st.sampled_from([4, 8]), T=st.integers(1, 10),
       B=st.integers(1, 2), tied=st.booleans())
def test_prefill_and_decode_flops_equal_flop_counter(kv_h, n_layer, head_dim, T, B, tied):
    kv, h = kv_h
    d = h * (head_dim + 2)  # hidden_size ≠ h·head_dim: the two widths must not be confused
    cfg = LlamaConfig(vocab_size=37, hidden_size=d, intermediate_size=12, num_hidden_layers=n_layer,
                      num_attention_heads=h, num_key_value_heads=kv, head_dim=head_dim, tie_word_embeddings=tied)
    cfg._attn_implementation = "eager"  # matmuls FlopCounterMode sees (a fused CPU SDPA kernel is not counted)
    model = LlamaForCausalLM(cfg).eval()
    P = inference.matmul_params(formulas.decoder_lm_params(37, d, 12, n_layer, h, kv, head_dim=head_dim,
                                                           tie_word_embeddings=tied))
    cache = DynamicCache(config=cfg)
    ids = torch.randint(0, 37, (B, T))
    with torch.no_grad(), FlopCounterMode(display=False) as prefill:
        model(ids, cache=cache, use_cache=True)
    with torch.no_grad(), FlopCounterMode(display=False) as step:
        model(ids[:, :1], cache=cache, use_cache=True)
    assert prefill.get_total_flops() == inference.prefill_flops(P, n_layer, h, head_dim, T, B)
    assert step.get_total_flops() == inference.decode_flops(P, n_layer, h, head_dim, T, B)
    with torch.no_grad(), FlopCounterMode(display=False) as last:
        model(ids, logits_to_keep=1)
    assert last.get_total_flops() == inference.prefill_flops(P, n_layer, h, head_dim, T, B, logits_tokens=1,
                                                             vocab_size=37, hidden_size=d)


# --------------------------------------------------------------------------- roofline, speculative decoding


@settings(max_examples=50)
@given(W=st.floats(1e3, 1e11), kv=st.floats(0, 1e9), B=st.integers(1, 256), bw=st.floats(1e9, 5e12),
       F=st.floats(1e3, 1e12), peak=st.floats(1e9, 1e16))
def test_tokens_per_second_is_tokens_over_the_slower_roof(W, kv, B, bw, F, peak):
    memory_s, compute_s = (W + B * kv) / bw, B * F / peak
    got = inference.decode_tokens_per_second(W, kv, B, bw, flops_per_token=F, peak_flops=peak)
    assert got == pytest.approx(B / max(memory_s, compute_s), rel=1e-12)
    assert inference.decode_tokens_per_second(W, kv, B, bw) == pytest.approx(B / memory_s, rel=1e-12)
    assert got <= inference.decode_tokens_per_second(W, kv, B, bw) * (1 + 1e-12)  # a second roof only slows


def test_tokens_per_second_at_batch_one_is_bandwidth_over_bytes_per_token():
    assert inference.decode_tokens_per_second(16e9, 1e9, 1, 3.35e12) == pytest.approx(3.35e12 / 17e9)
    with pytest.raises(ValueError):
        inference.decode_tokens_per_second(1e9, 0, 0, 1e12)
    with pytest.raises(ValueError):
        inference.roofline_seconds(1, 1, 0, 1)


@pytest.mark.parametrize("gamma,seed", [(1, 0), (3, 1), (5, 2), (8, 3)])
def test_speculative_formula_equals_simulated_speculative_sampling(gamma, seed):
    rng = random.Random(seed)
    p = [rng.random() ** 2 for _ in range(6)]
    q = [rng.random() ** 2 for _ in range(6)]
    p, q = [x / sum(p) for x in p], [x / sum(q) for x in q]
    alpha = sum(min(a, b) for a, b in zip(p, q))  # the paper's acceptance rate 1 − TV(p, q), §3.3
    mean, rate = inference.simulate_speculative_sampling(p, q, gamma, 20_000, seed)
    assert rate == pytest.approx(alpha, abs=0.02)
    assert mean == pytest.approx(inference.speculative_expected_tokens(alpha, gamma), rel=0.03)


def test_speculative_formula_limits():
    assert inference.speculative_expected_tokens(0.0, 5) == 1.0   # every draft token rejected
    assert inference.speculative_expected_tokens(1.0, 5) == 6.0   # γ accepted + the bonus token
    assert inference.simulate_speculative_sampling([0.5, 0.5], [0.5, 0.5], 4, 50)[0] == 5.0
    with pytest.raises(ValueError):
        inference.speculative_expected_tokens(1.5, 2)
