"""Zoo sweep (issue 12): `summary` on Hugging Face architectures built from small configs.

Independent reference: transformers' own models (configs only — no weights, no network). For
each: the pass runs on meta; the total equals the number of scalars in the model's distinct
parameter tensors (counted here by tensor identity, not by `count_params`); the per-row columns
sum to the totals; no FLOP-heavy op went uncounted; and a copy built on the CPU has the very same
state_dict (same tensor objects, same values) after `summary` and `explain`.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch

transformers = pytest.importorskip("transformers")

from helpers.trace import explain, summary  # noqa: E402

T = 8  # tokens
TEXT = dict(vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4)
ids = {"input_ids": lambda: torch.randint(0, 96, (1, T))}
seq2seq = {"input_ids": lambda: torch.randint(0, 96, (1, T)), "decoder_input_ids": lambda: torch.randint(0, 96, (1, 4))}
pixels = {"pixel_values": lambda: torch.randn(1, 3, 32, 32)}

# (model_type, config kwargs, inputs, MoE (num_experts, top_k) or None)
ZOO = [
    ("gpt2", dict(vocab_size=96, n_embd=32, n_layer=2, n_head=4, n_positions=32), ids, None),
    ("bert", dict(TEXT, max_position_embeddings=32), ids, None),
    ("roberta", dict(TEXT, max_position_embeddings=40), ids, None),
    ("distilbert", dict(vocab_size=96, dim=32, hidden_dim=64, n_layers=2, n_heads=4, max_position_embeddings=32), ids, None),
    ("albert", dict(TEXT, embedding_size=16, max_position_embeddings=32), ids, None),
    ("electra", dict(TEXT, embedding_size=16, max_position_embeddings=32), ids, None),
    ("t5", dict(vocab_size=96, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4), seq2seq, None),
    ("bart", dict(vocab_size=96, d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=4,
                  decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=32), seq2seq, None),
    ("llama", dict(TEXT, num_key_value_heads=2), ids, None),
    ("mistral", dict(TEXT, num_key_value_heads=2), ids, None),
    ("qwen2", dict(TEXT, num_key_value_heads=2), ids, None),
    ("gemma", dict(TEXT, num_key_value_heads=1, head_dim=8), ids, None),
    ("phi", dict(TEXT), ids, None),
    ("opt", dict(vocab_size=96, hidden_size=32, ffn_dim=64, num_hidden_layers=2, num_attention_heads=4,
                 word_embed_proj_dim=32, max_position_embeddings=32), ids, None),
    ("gpt_neox", dict(TEXT), ids, None),
    ("bloom", dict(vocab_size=96, hidden_size=32, n_layer=2, n_head=4), ids, None),
    ("falcon", dict(vocab_size=96, hidden_size=32, num_hidden_layers=2, num_attention_heads=4), ids, None),
    ("mixtral", dict(TEXT, num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2), ids, (4, 2)),
    ("qwen2_moe", dict(TEXT, num_key_value_heads=2, moe_intermediate_size=16, shared_expert_intermediate_size=32,
                       num_experts=4, num_experts_per_tok=2), ids, (4, 2)),
    ("mamba", dict(vocab_size=96, hidden_size=32, state_size=8, num_hidden_layers=2, expand=2, conv_kernel=4), ids, None),
    ("mamba2", dict(vocab_size=96, hidden_size=32, state_size=8, num_hidden_layers=2, expand=2, num_heads=8,
                    head_dim=8, n_groups=1, conv_kernel=4, chunk_size=8), ids, None),
    ("whisper", dict(vocab_size=96, d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=4,
                     decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, num_mel_bins=16,
                     max_source_positions=16, max_target_positions=16,
                     pad_token_id=1, bos_token_id=2, eos_token_id=2, decoder_start_token_id=2),
     {"input_features": lambda: torch.randn(1, 16, 32), "decoder_input_ids": lambda: torch.randint(0, 96, (1, 4))}, None),
    ("vit", dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, image_size=32,
                 patch_size=8), pixels, None),
    ("deit", dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, image_size=32,
                  patch_size=8), pixels, None),
    ("clip", dict(text_config=dict(vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                   num_attention_heads=4, max_position_embeddings=16),
                  vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
                                     image_size=32, patch_size=8), projection_dim=16),
     {"input_ids": lambda: torch.randint(0, 96, (1, T)), "pixel_values": lambda: torch.randn(1, 3, 32, 32)}, None),
    ("resnet", dict(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="bottleneck"), pixels, None),
    ("convnext", dict(hidden_sizes=[8, 16], depths=[1, 1], num_stages=2), pixels, None),
    ("swin", dict(image_size=32, patch_size=4, embed_dim=16, depths=[1, 1], num_heads=[2, 2], window_size=4), pixels, None),
]


def _build(model_type: str, kwargs: dict, device: str) -> torch.nn.Module:
    config = transformers.AutoConfig.for_model(model_type, **kwargs)
    with torch.device(device):
        return transformers.AutoModel.from_config(config)


def _distinct_numel(model: torch.nn.Module) -> int:
    tensors = {id(p): p.numel() for _, p in model.named_parameters(remove_duplicate=False)}
    return sum(tensors.values())


@pytest.mark.parametrize("model_type,kwargs,inputs,moe", ZOO, ids=[z[0] for z in ZOO])
def test_zoo_summary_on_meta(model_type, kwargs, inputs, moe):
    torch.manual_seed(0)
    model = _build(model_type, kwargs, "meta")
    example = {k: make() for k, make in inputs.items()}
    s = summary(model, example_inputs=example)
    assert s.device == "meta" or any("cannot run on meta" in n for n in s.notes), s.notes
    assert s.total_params == _distinct_numel(model) > 0
    assert sum(r.new_params for r in s.rows) == s.total_params
    assert sum(r.flops for r in s.rows) == s.total_flops > 0
    assert all(r.flops >= 0 for r in s.rows)
    assert not any("NOT counted" in n for n in s.notes), s.notes
    if moe is None:
        assert s.active_params == s.total_params
    else:
        n, k = moe
        experts = sum(p.numel() for name, p in model.named_parameters() if ".experts." in name)
        assert s.active_params == s.total_params - experts * (n - k) // n < s.total_params


@pytest.mark.parametrize("model_type,kwargs,inputs,moe", ZOO[::3], ids=[z[0] for z in ZOO[::3]])
def test_zoo_cpu_model_is_untouched(model_type, kwargs, inputs, moe):
    torch.manual_seed(0)
    model = _build(model_type, kwargs, "cpu")
    before = {k: (id(v), v.detach().clone()) for k, v in model.state_dict(keep_vars=True).items()}
    example = {k: make() for k, make in inputs.items()}
    summary(model, example_inputs=example)
    assert explain(model, example).ok
    after = model.state_dict(keep_vars=True)
    assert after.keys() == before.keys()
    for k, (ident, value) in before.items():
        assert id(after[k]) == ident and torch.equal(after[k].detach(), value), k


def test_mixtral_grouped_mm_counts_what_the_eager_experts_count():
    """transformers' default experts code runs torch._grouped_mm (no stock FLOP formula; its meta
    kernel wants bf16); the eager implementation loops over experts with plain matmuls, which
    FlopCounterMode counts. Same model, same tokens: same FLOPs, on meta and on the CPU."""
    kwargs = dict(TEXT, num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2)
    config = transformers.AutoConfig.for_model("mixtral", **kwargs)
    torch.manual_seed(0)
    tokens = torch.randint(0, 96, (1, T))
    eager = transformers.MixtralModel._from_config(config, experts_implementation="eager")
    reference = summary(eager, example_inputs=tokens, device="cpu").total_flops
    grouped = transformers.MixtralModel(config)
    assert summary(grouped, example_inputs=tokens).total_flops == reference
    assert summary(grouped, example_inputs=tokens, device="cpu").total_flops == reference
