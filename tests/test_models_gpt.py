"""GPT-2 and Llama-2 shaped models: published parameter counts, meta-device shape tracing,
and behaviour (causality, attention == torch's fused SDPA, RMSNorm == torch's, rotary)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers import formulas
from helpers.counting import count_params, param_table
from helpers.models.gpt import GPT, CausalSelfAttention, GPTConfig
from helpers.models.llama import Llama, LlamaConfig, RMSNorm, apply_rotary

GPT2_SMALL = 124_439_808  # published (nanoGPT prints "124.44M"; HF GPT2LMHeadModel: 124,439,808)
LLAMA2_7B = 6_738_415_616  # HF LlamaForCausalLM for meta-llama/Llama-2-7b-hf


def gpt_formula(c: GPTConfig) -> int:
    """The GPT count assembled from helpers.formulas (independent of the module code)."""
    d = c.n_embd
    block = (2 * formulas.layernorm_params(d, bias=c.bias)
             + formulas.linear_params(d, 3 * d, c.bias) + formulas.linear_params(d, d, c.bias)
             + formulas.linear_params(d, 4 * d, c.bias) + formulas.linear_params(4 * d, d, c.bias))
    head = 0 if c.tie_weights else formulas.linear_params(d, c.vocab_size, bias=False)
    return (formulas.embedding_params(c.vocab_size, d) + formulas.embedding_params(c.block_size, d)
            + c.n_layer * block + formulas.layernorm_params(d, bias=c.bias) + head)


def test_gpt2_small_is_124_439_808_tied_on_meta():
    with torch.device("meta"):
        model = GPT(GPTConfig())
    assert count_params(model) == GPT2_SMALL == gpt_formula(GPTConfig())
    assert model.lm_head.weight is model.transformer.wte.weight
    table = param_table(model)
    assert table.total == GPT2_SMALL
    assert any("lm_head.weight" in r.tied_with for r in table)


def test_gpt2_small_untied_adds_one_vocab_matrix():
    with torch.device("meta"):
        tied, untied = GPT(GPTConfig()), GPT(GPTConfig(tie_weights=False))
    extra = count_params(untied) - count_params(tied)
    assert extra == 50257 * 768 == 38_597_376
    assert count_params(untied) == gpt_formula(GPTConfig(tie_weights=False))


@pytest.mark.parametrize("cfg", [GPTConfig(n_layer=24, n_head=16, n_embd=1024),  # GPT-2 medium
                                 GPTConfig(n_layer=2, n_head=2, n_embd=64, vocab_size=100, block_size=16,
                                           bias=False, tie_weights=False)])
def test_gpt_count_matches_formula_for_other_configs(cfg):
    with torch.device("meta"):
        model = GPT(cfg)
    assert count_params(model) == gpt_formula(cfg)


def test_gpt_forward_on_meta_traces_shapes():
    with torch.device("meta"):
        model = GPT(GPTConfig())
        logits = model(torch.zeros(2, 16, dtype=torch.long))
    assert logits.shape == (2, 16, 50257) and logits.is_meta


def test_gpt_is_causal_and_loss_is_finite():
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=16)
    model = GPT(cfg).eval()
    idx = torch.randint(0, 50, (2, 10))
    changed = idx.clone()
    changed[:, 6:] = (changed[:, 6:] + 1) % 50  # alter the future only
    a, b = model(idx), model(changed)
    torch.testing.assert_close(a[:, :6], b[:, :6])
    assert not torch.allclose(a[:, 6:], b[:, 6:])
    _, loss = model(idx, targets=idx)
    assert torch.isfinite(loss) and loss.dim() == 0
    with pytest.raises(ValueError, match="block_size"):
        model(torch.zeros(1, 17, dtype=torch.long))


def test_causal_self_attention_equals_torch_fused_sdpa():
    torch.manual_seed(0)
    cfg = GPTConfig(n_head=4, n_embd=32)
    attn = CausalSelfAttention(cfg).eval()
    x = torch.randn(3, 7, 32)
    B, T, C = x.shape
    q, k, v = attn.c_attn(x).split(C, dim=2)
    q, k, v = (t.view(B, T, 4, C // 4).transpose(1, 2) for t in (q, k, v))
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, C)
    torch.testing.assert_close(attn(x), attn.c_proj(ref))


def test_gpt_init_skipped_on_meta_but_applied_on_cpu():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=64, block_size=8, n_layer=4, n_head=2, n_embd=64))
    std = model.transformer.h[0].attn.c_proj.weight.std().item()
    assert abs(std - 0.02 / (2 * 4) ** 0.5) < 0.003
    assert abs(model.transformer.wte.weight.std().item() - 0.02) < 0.003


def test_llama2_7b_count_on_meta():
    with torch.device("meta"):
        model = Llama(LlamaConfig())
    assert count_params(model) == LLAMA2_7B
    c = LlamaConfig()
    per_layer = 4 * formulas.linear_params(c.dim, c.dim, bias=False) \
        + 3 * formulas.linear_params(c.dim, c.intermediate_size, bias=False) + 2 * c.dim
    expected = 2 * formulas.embedding_params(c.vocab_size, c.dim) + c.n_layers * per_layer + c.dim
    assert count_params(model) == expected
    assert model.lm_head.weight is not model.model.embed_tokens.weight
    assert not any(n.endswith("bias") for n, _ in model.named_parameters())


def test_llama_forward_on_meta():
    with torch.device("meta"):
        model = Llama(LlamaConfig(n_layers=2))
        logits = model(torch.zeros(1, 8, dtype=torch.long))
    assert logits.shape == (1, 8, 32000)


def test_llama_small_runs_and_is_causal():
    torch.manual_seed(0)
    model = Llama(LlamaConfig(vocab_size=40, dim=32, n_layers=2, n_heads=4, intermediate_size=48)).eval()
    idx = torch.randint(0, 40, (2, 9))
    changed = idx.clone()
    changed[:, 5:] = (changed[:, 5:] + 1) % 40
    torch.testing.assert_close(model(idx)[:, :5], model(changed)[:, :5])


def test_rmsnorm_equals_torch():
    torch.manual_seed(0)
    ours, ref = RMSNorm(16, eps=1e-5), nn.RMSNorm(16, eps=1e-5)
    with torch.no_grad():
        ours.weight.uniform_()
        ref.weight.copy_(ours.weight)
    x = torch.randn(2, 5, 16)
    torch.testing.assert_close(ours(x), ref(x))


def test_rotary_preserves_norms_and_depends_on_relative_position():
    torch.manual_seed(0)
    q = torch.randn(1, 1, 1, 8).expand(1, 1, 12, 8)  # the same vector at every position
    k = torch.randn(1, 1, 1, 8).expand(1, 1, 12, 8)
    rq, rk = apply_rotary(q), apply_rotary(k)
    torch.testing.assert_close(rq.norm(dim=-1), q.norm(dim=-1))
    scores = rq[0, 0] @ rk[0, 0].T  # (12, 12)
    torch.testing.assert_close(scores[3, 1], scores[9, 7])  # offset 2 both times
    torch.testing.assert_close(scores[5, 5], scores[0, 0])


def test_causal_self_attention_is_torch_mha_with_a_causal_mask():
    torch.manual_seed(0)
    attn = CausalSelfAttention(GPTConfig(n_embd=24, n_head=3)).eval()
    ref = nn.MultiheadAttention(24, 3, batch_first=True).eval()
    with torch.no_grad():  # nanoGPT's fused c_attn (3C, C) has torch's in_proj layout: Wq; Wk; Wv
        ref.in_proj_weight.copy_(attn.c_attn.weight)
        ref.in_proj_bias.copy_(attn.c_attn.bias)
        ref.out_proj.weight.copy_(attn.c_proj.weight)
        ref.out_proj.bias.copy_(attn.c_proj.bias)
    x = torch.randn(2, 9, 24)
    future = torch.ones(9, 9, dtype=torch.bool).triu(1)
    torch.testing.assert_close(attn(x), ref(x, x, x, attn_mask=future, need_weights=False)[0])
    assert count_params(attn) == count_params(ref) == formulas.mha_params(24, 3)


def test_gpt2_small_matches_hugging_face_gpt2():
    """Hugging Face's GPT2LMHeadModel (tied head), built on meta from its default config: same tensors, same count."""
    import transformers  # a dev dependency

    with torch.device("meta"):
        hf = transformers.GPT2LMHeadModel(transformers.GPT2Config())
        ours = GPT(GPTConfig())
    assert count_params(hf) == count_params(ours)
    ours_shapes = sorted(tuple(p.shape) for p in ours.parameters())
    # HF's Conv1D stores (in, out) where nn.Linear stores (out, in): compare shapes up to that transpose
    hf_shapes = sorted(tuple(p.shape) if p.dim() != 2 or name.endswith(("wte.weight", "wpe.weight"))
                       else tuple(reversed(p.shape)) for name, p in hf.named_parameters())
    assert hf_shapes == ours_shapes


def test_llama2_7b_shape_matches_hugging_face_llama():
    """Hugging Face's LlamaForCausalLM with Llama-2-7B's sizes, on meta (no weights): same count."""
    import transformers  # a dev dependency

    cfg = LlamaConfig()
    hf_cfg = transformers.LlamaConfig(vocab_size=32000, hidden_size=4096, intermediate_size=11008,
                                      num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
                                      tie_word_embeddings=False)
    with torch.device("meta"):
        hf = transformers.LlamaForCausalLM(hf_cfg)
        ours = Llama(cfg)
    assert count_params(hf) == count_params(ours)
