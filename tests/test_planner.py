"""The will-it-fit planner against measured tensors (a real training step, saved activations, KV
tensors), the ZeRO paper's Figure 1, and Hugging Face's Llama built on meta from a config."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from helpers import cost, formulas, scale
from helpers.activations import saved_tensors
from helpers.counting import count_params
from helpers.models.gpt import GPT, GPTConfig
from helpers.models.paper_gpt import PaperGPTLayer
from helpers.planner import GIB, model_dims, plan_memory
from helpers.widgets.planner import explore_plan

LLAMA2_7B = dict(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                 num_attention_heads=32)


def _nbytes(tensors):
    return sum(t.numel() * t.element_size() for t in tensors)


def test_fp32_adam_step_measured():
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=50, block_size=8, n_layer=2, n_head=2, n_embd=16)
    model = GPT(cfg)
    opt = torch.optim.AdamW(model.parameters())
    _, loss = model(torch.randint(0, 50, (2, 8)), torch.randint(0, 50, (2, 8)))
    loss.backward()
    opt.step()
    plan = plan_memory(model, precision="fp32", optimizer="adamw")
    params = list({id(p): p for p in model.parameters()}.values())
    assert plan.parts["weights"] == _nbytes(params)
    assert plan.parts["grads"] == _nbytes(p.grad for p in params)
    assert plan.parts["optimizer"] == _nbytes(v for s in opt.state.values() for k, v in s.items() if k != "step")


def test_activations_equal_saved_tensors_of_paper_layers():
    s, b, h, a, L = 8, 2, 16, 2, 3
    cfg = GPTConfig(n_embd=h, n_head=a, n_layer=L, block_size=s, dropout=0.1)
    torch.manual_seed(0)
    stack = nn.Sequential(*[PaperGPTLayer(cfg, dtype=torch.bfloat16) for _ in range(L)])
    stack.config = cfg
    x = torch.randn(b, s, h, dtype=torch.bfloat16, requires_grad=True)
    saved = saved_tensors(stack, x)
    ln_stats = sum(t.nbytes for t in saved if t.shape == (b, s, 1))  # LayerNorm mean/rstd (not in the paper)
    plan = plan_memory(stack, micro_batch_size=b, seq_len=s)
    assert plan.parts["activations"] == sum(t.nbytes for t in saved) - ln_stats


def test_config_and_module_agree_and_zero_figure_1():
    from transformers import LlamaConfig, LlamaForCausalLM

    small = dict(vocab_size=300, hidden_size=64, intermediate_size=96, num_hidden_layers=3,
                 num_attention_heads=8, num_key_value_heads=2)
    with torch.device("meta"):
        hf = LlamaForCausalLM(LlamaConfig(**small, tie_word_embeddings=False))
    a, b = model_dims(small), model_dims(hf)
    assert a == b and a.num_params == count_params(hf)
    for stage in range(4):
        plan = plan_memory(LLAMA2_7B, zero_stage=stage, num_gpus=64)
        states = plan.parts["weights"] + plan.parts["grads"] + plan.parts["optimizer"]
        assert states == cost.zero_model_state_bytes(formulas.decoder_lm_params(**LLAMA2_7B)["total"], 64, stage)


def test_inference_kv_cache_equals_tensors():
    cfg = dict(LLAMA2_7B, num_key_value_heads=8)
    plan = plan_memory(cfg, mode="inference", micro_batch_size=4, seq_len=4096)
    k = torch.empty(4, 8, 4096, 128, dtype=torch.bfloat16, device="meta")  # one layer's keys (B, kv, T, hd)
    assert plan.parts["kv_cache"] == 2 * 32 * _nbytes([k])
    assert plan.parts["grads"] == plan.parts["optimizer"] == plan.parts["activations"] == 0


def test_qlora_plan_and_fit_verdict():
    n = formulas.decoder_lm_params(**LLAMA2_7B)["total"]
    lora = 32 * 2 * formulas.lora_params(4096, 4096, 16)  # q and v of every layer
    plan = plan_memory(LLAMA2_7B, trainable_params=lora, weight_bits=scale.quantized_bits_per_param(double_quant=True),
                       gpu_memory_gib=24, seq_len=512)
    assert plan.parts["weights"] == pytest.approx((n - lora) * 4.126953125 / 8 + 2 * lora)
    assert plan.parts["optimizer"] == 12 * lora and plan.fits
    assert not plan_memory(LLAMA2_7B, gpu_memory_gib=80).fits  # full fine-tuning: 16 B/param > 80 GiB


@pytest.mark.parametrize("bad", [dict(mode="serve"), dict(trainable_params=-1), dict(precision="fp8"),
                                 dict(zero_stage=5), dict(recompute="half")])
def test_planner_rejects_invalid(bad):
    with pytest.raises(ValueError):
        plan_memory(LLAMA2_7B, **bad)


def test_module_without_config_is_explained():
    with pytest.raises(ValueError, match="config"):
        plan_memory(nn.Linear(3, 4))


def test_explorer_logic_matches_planner():
    e = explore_plan(model="Llama-2-7B", zero_stage=3, num_gpus=8, micro_batch_size=2, seq_len=1024,
                     recompute="selective", gpu_memory_gib=80)
    plan = plan_memory(LLAMA2_7B, zero_stage=3, num_gpus=8, micro_batch_size=2, seq_len=1024,
                       recompute="selective", gpu_memory_gib=80)
    assert e.plan.parts == plan.parts and e.error is None
    assert f"{plan.total / GIB:.1f} GiB" in e.output_text
    bad = explore_plan(model="Llama-2-7B", zero_stage=1, num_gpus=0)
    assert bad.error and bad.output_text.startswith("⚠")


def test_explorer_widget_rerenders_on_a_control_change():
    pytest.importorskip("ipywidgets")
    from helpers.widgets.planner import PLANNER_CSS_CLASS, planner_explorer

    box = planner_explorer(zero_stage=0, num_gpus=8)

    def walk(w):
        yield w
        for child in getattr(w, "children", ()):
            yield from walk(child)

    widgets = list(walk(box))
    stage = next(w for w in widgets if getattr(w, "description", "") == "zero_stage")
    line = next(w for w in widgets if PLANNER_CSS_CLASS in getattr(w, "_dom_classes", ()))
    before = line.value
    stage.value = 3
    assert box.explore().settings["zero_stage"] == 3 and line.value != before
    assert f"{box.explore().plan.total / GIB:.1f} GiB" in line.value
