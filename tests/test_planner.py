"""The will-it-fit planner against measured tensors (a real training step, saved activations, KV
tensors), the ZeRO paper's Figure 1, and Hugging Face's Llama built on meta from a config."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.checkpoint import checkpoint

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
    bits = scale.quantized_bits_per_param(double_quant=True)
    plan = plan_memory(LLAMA2_7B, trainable_params=lora, weight_bits=bits, gpu_memory_gib=24, seq_len=512)
    assert plan.parts["weights"] == pytest.approx(n * 4.126953125 / 8 + 2 * lora)  # adapters ON TOP of the model
    assert plan.parts["grads"] == 2 * lora and plan.parts["optimizer"] == 12 * lora and plan.fits
    assert "frozen" in plan.assumptions[0] and "adapter" in plan.assumptions[0]
    assert not plan_memory(LLAMA2_7B, gpu_memory_gib=80).fits  # full fine-tuning: 16 B/param > 80 GiB


@settings(max_examples=6, deadline=None)
@given(r=st.integers(1, 16), targets=st.sampled_from([["q_proj", "v_proj"], ["gate_proj", "down_proj"],
                                                     ["q_proj", "k_proj", "v_proj", "o_proj", "up_proj"]]))
def test_lora_adapters_are_added_as_peft_counts_them(r, targets):
    """peft: total = model + adapters, trainable = adapters. The planner's weights are the frozen model
    (in weight_bits) + the adapters (in the precision's bytes), and only adapters get grads/optimizer."""
    import warnings

    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    small = dict(vocab_size=120, hidden_size=32, intermediate_size=56, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2)
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peft_model = get_peft_model(LlamaForCausalLM(LlamaConfig(**small)), PeftLoraConfig(r=r, target_modules=targets))
    trainable, total = peft_model.get_nb_trainable_parameters()
    plan = plan_memory(small, trainable_params=trainable, weight_bits=4)
    assert plan.parts["weights"] == (total - trainable) * 4 / 8 + 2 * trainable
    assert plan.parts["grads"] == 2 * trainable and plan.parts["optimizer"] == 12 * trainable


class _LlamaStack(nn.Module):
    """L Hugging Face LlamaDecoderLayers (SDPA, no dropout) run in turn with one RoPE cos/sin, as
    LlamaModel runs them; `config` is what the planner reads."""

    def __init__(self, config, dtype):
        from transformers.models.llama.modeling_llama import LlamaDecoderLayer, LlamaRotaryEmbedding

        super().__init__()
        self.config = config
        self.layers = nn.ModuleList(LlamaDecoderLayer(config, i) for i in range(config.num_hidden_layers)).to(dtype)
        self.rope = LlamaRotaryEmbedding(config)

    def forward(self, x, recompute=False):
        cos_sin = self.rope(x, torch.arange(x.shape[1])[None])
        for layer in self.layers:
            run = lambda x, layer=layer: layer(x, position_embeddings=cos_sin, attention_mask=None)  # noqa: E731
            x = checkpoint(run, x, use_reentrant=False) if recompute else run(x)
        return x


@settings(max_examples=6, deadline=None)
@given(s=st.integers(1, 12), b=st.integers(1, 3), L=st.integers(1, 3), g=st.integers(1, 2), groups=st.integers(1, 3),
       F=st.integers(1, 48), fp32=st.booleans(), full=st.booleans())
def test_planner_activations_of_llama_layers_measured(s, b, L, g, groups, F, fp32, full):
    """The planner picks the Llama formula for a Llama config and equals what L HF layers save."""
    from transformers import LlamaConfig

    a = g * groups
    cfg = LlamaConfig(vocab_size=50, hidden_size=8 * a, num_attention_heads=a, num_key_value_heads=g,
                      intermediate_size=F, num_hidden_layers=L, attn_implementation="sdpa")
    torch.manual_seed(0)
    dtype = torch.float32 if fp32 else torch.bfloat16
    stack = _LlamaStack(cfg, dtype)
    x = torch.randn(b, s, cfg.hidden_size, dtype=dtype, requires_grad=True)
    saved = saved_tensors(stack, x, run=lambda x: stack(x, recompute=full), same_memory_once=True)
    measured = sum(t.nbytes for t in saved)
    plan = plan_memory(stack, precision="fp32" if fp32 else "bf16", micro_batch_size=b, seq_len=s,
                       recompute="full" if full else "none")
    assert plan.parts["activations"] == measured
    assert "Llama layer formula" in plan.assumptions[-1]


def test_gpt_configs_keep_korthikanti():
    cfg = GPTConfig(vocab_size=50, block_size=8, n_layer=2, n_head=2, n_embd=16)
    plan = plan_memory(GPT(cfg), seq_len=8)
    assert not plan.dims.llama_style and "Korthikanti" in plan.assumptions[-1]
    assert plan.parts["activations"] == 2 * scale.transformer_activation_bytes(8, 1, 16, 2)


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
