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
from helpers.activations import saved_bytes_by_module, saved_tensors
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


# --------------------------------------------------------------------------- 3-D parallelism (chapter 16)

def _divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


@st.composite
def _tp_llama(draw):
    """A random small Llama config with a tensor-parallel size t that splits it without cutting a head."""
    g = draw(st.integers(1, 4))
    a = g * draw(st.integers(1, 3))
    t = draw(st.sampled_from([d for d in _divisors(a * 4) if a % d == 0 and (g % d == 0 or d % g == 0)]))
    hd = 2 * draw(st.integers(1, 3))
    return dict(hidden_size=a * hd, num_attention_heads=a, num_key_value_heads=g, head_dim=hd,
                intermediate_size=t * draw(st.integers(1, 6))), t


@settings(max_examples=10, deadline=None)
@given(spec=_tp_llama(), s_per_t=st.integers(1, 4), b=st.integers(1, 2), L=st.integers(1, 2), sp=st.booleans())
def test_tensor_parallel_activations_equal_one_ranks_shard_of_hf_layers(spec, s_per_t, b, L, sp):
    """One rank of a Megatron-split Llama layer computes a/t query heads, max(g/t, 1) KV heads and F/t MLP
    features on the whole hidden state: HF's LlamaDecoderLayer built with THOSE sizes saves what the rank
    saves. Sequence parallelism then splits (by s/t rows) what the norms and the q/k/v, gate/up inputs save."""
    from transformers import LlamaConfig

    cfg, t = spec
    s = s_per_t * t
    a, g, F = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["intermediate_size"]
    shard = LlamaConfig(**{**cfg, "num_attention_heads": a // t, "num_key_value_heads": max(g // t, 1),
                           "intermediate_size": F // t}, vocab_size=50, num_hidden_layers=L, attn_implementation="sdpa")
    torch.manual_seed(0)
    stack = _LlamaStack(shard, torch.bfloat16)
    x = torch.randn(b, s, cfg["hidden_size"], dtype=torch.bfloat16, requires_grad=True)
    saved = saved_tensors(stack, x, run=stack, same_memory_once=True)
    measured = sum(t_.nbytes for t_ in saved)
    split_by_sp = ("input_layernorm", "post_attention_layernorm", "self_attn.q_proj", "mlp.gate_proj")
    whole_rows = sum(n for m, n in saved_bytes_by_module(saved).items() if m.endswith(split_by_sp))
    expected = measured - whole_rows * (t - 1) // t if sp else measured
    plan = plan_memory(dict(cfg, vocab_size=50, num_hidden_layers=L), precision="bf16", tensor_parallel=t,
                       num_gpus=t, micro_batch_size=b, seq_len=s, sequence_parallel=sp)
    assert plan.parts["activations"] == expected
    assert ("WITH sequence" if sp and t > 1 else "WITHOUT sequence" if t > 1 else "s=") in plan.assumptions[-1]


def _rank0_numel(name, p, t, g, hd, vocab_parallel):
    """Elements of parameter `name` on tensor-parallel rank 0, by slicing the (meta) tensor itself."""
    if name.endswith(("k_proj.weight", "v_proj.weight")) and t > g:  # whole KV heads, replicated t/g times
        return p.view(g, hd, -1)[0].numel()
    if name.endswith(("q_proj.weight", "k_proj.weight", "v_proj.weight", "gate_proj.weight", "up_proj.weight")):
        return torch.chunk(p, t, dim=0)[0].numel()  # column parallel: output rows
    if name.endswith(("o_proj.weight", "down_proj.weight")):
        return torch.chunk(p, t, dim=1)[0].numel()  # row parallel: input columns
    if name.endswith(("embed_tokens.weight", "lm_head.weight")) and vocab_parallel:
        return torch.chunk(p, t, dim=0)[0].numel()
    if name.endswith("experts.gate_up_proj"):  # Mixtral's fused (E, 2F, D): gate's and up's F rows each split
        return sum(torch.chunk(half, t, dim=1)[0].numel() for half in torch.chunk(p, 2, dim=1))
    if name.endswith("experts.down_proj"):  # (E, D, F): row parallel over F
        return torch.chunk(p, t, dim=2)[0].numel()
    return p.numel()  # RMSNorm weights, the MoE router; embeddings when not vocab-parallel


def _per_stage_by_slicing(hf, t, p, vocab_parallel):
    """Rank-0 parameters of each pipeline stage of a Hugging Face decoder LM: layers i·L/p … on stage i,
    embed_tokens on the first stage, the final norm and lm_head on the last (tied with p > 1: the last
    stage keeps its own copy of the table)."""
    cfg = hf.config
    g, per = cfg.num_key_value_heads, cfg.num_hidden_layers // p
    hd = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    stages = [0] * p
    for name, prm in hf.named_parameters():  # a tied lm_head.weight is embed_tokens.weight: listed once
        n = _rank0_numel(name, prm, t, g, hd, vocab_parallel)
        if ".layers." in name:
            stages[int(name.split(".layers.")[1].split(".")[0]) // per] += n
        elif "embed_tokens" in name:
            stages[0] += n
            if cfg.tie_word_embeddings and p > 1:
                stages[-1] += n
        else:
            stages[-1] += n
    return stages


@settings(max_examples=25, deadline=None)
@given(spec=_tp_llama(), L_per_p=st.integers(1, 3), p=st.integers(1, 4), n_d=st.integers(1, 3),
       V=st.integers(5, 60), tied=st.booleans(), vocab_parallel=st.booleans())
def test_parameters_per_gpu_equal_a_sliced_hf_model(spec, L_per_p, p, n_d, V, tied, vocab_parallel):
    """Per GPU = the fullest pipeline stage's rank-0 slices of HF's LlamaForCausalLM (built on meta),
    sharded by ZeRO-3 over N_d = num_gpus/(t·p): layers i·L/p … on stage i, embed_tokens on the first
    stage, the final norm and lm_head on the last (tied with p > 1: the last stage keeps its own copy)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg, t = spec
    L = L_per_p * p
    cfg = dict(cfg, vocab_size=V, num_hidden_layers=L, tie_word_embeddings=tied)
    with torch.device("meta"):
        hf = LlamaForCausalLM(LlamaConfig(**cfg))
    stages = _per_stage_by_slicing(hf, t, p, vocab_parallel)
    for model in (cfg, hf):
        plan = plan_memory(model, mode="inference", precision="bf16", zero_stage=3, num_gpus=t * p * n_d,
                           tensor_parallel=t, pipeline_parallel=p, vocab_parallel=vocab_parallel, seq_len=4)
        assert plan.parts["weights"] == pytest.approx(2 * max(stages) / n_d, rel=1e-12)
        assert f"{', '.join(f'{c:,}' for c in stages)}" in " ".join(plan.assumptions)


@pytest.mark.parametrize("t, p", [(2, 1), (4, 2), (8, 1)])
def test_mixtral_experts_split_like_the_sliced_hf_model(t, p):
    """Mixtral: each expert's gate/up rows and down columns split t ways, the router replicated; the
    KV cache of inference holds max(g/t, 1) heads of L/p layers per GPU."""
    from transformers import MixtralConfig, MixtralForCausalLM

    cfg = dict(vocab_size=40, hidden_size=32, intermediate_size=24, num_hidden_layers=4, num_attention_heads=8,
               num_key_value_heads=4, num_local_experts=4, num_experts_per_tok=2)
    with torch.device("meta"):
        hf = MixtralForCausalLM(MixtralConfig(**cfg))
    stages = _per_stage_by_slicing(hf, t, p, vocab_parallel=True)
    for model in (cfg, hf):
        plan = plan_memory(model, mode="inference", precision="bf16", num_gpus=t * p, tensor_parallel=t,
                           pipeline_parallel=p, seq_len=16, micro_batch_size=3)
        assert plan.parts["weights"] == 2 * max(stages)
        keys = torch.empty(3, max(4 // t, 1), 16, 32 // 8, dtype=torch.bfloat16, device="meta")  # (B, kv, T, hd)
        assert plan.parts["kv_cache"] == 2 * (4 // p) * _nbytes([keys])  # keys and values of L/p layers
        assert "experts" in " ".join(plan.assumptions)


def test_stage_0_keeps_p_micro_batches_as_the_pipeline_simulation_does():
    """1F1B (the order torch's Schedule1F1B really runs, tests/test_parallelism.py): stage 0 holds p
    micro-batches' activations of its L/p layers, the last stage one."""
    from helpers import parallelism

    cfg = dict(LLAMA2_7B, num_key_value_heads=8)
    one_stage = plan_memory(dict(cfg, num_hidden_layers=8), seq_len=512)  # one micro-batch of 8 layers
    for p in (2, 4):
        sim = parallelism.simulate_pipeline(parallelism.one_f_one_b_order(p, 2 * p), [1.0] * p, [2.0] * p)
        plan = plan_memory(dict(cfg, num_hidden_layers=8 * p), seq_len=512, pipeline_parallel=p, num_gpus=p)
        assert sim.max_in_flight[0] == p and plan.parts["activations"] == p * one_stage.parts["activations"]
        assert "stage 0 of" in " ".join(plan.assumptions)


def test_tensor_parallel_layer_share_equals_the_ranks_measured_in_chapter_16():
    """Chapter 16 (section 3) measured 14,464 parameters per rank of a LlamaBlock (D=64, 8 heads, 2 KV
    heads, F=96) on 2 gloo ranks; one layer more in the plan adds exactly that (fp32 weights: 4 bytes)."""
    small = dict(vocab_size=32, hidden_size=64, intermediate_size=96, num_attention_heads=8, num_key_value_heads=2)
    one, two = (plan_memory(dict(small, num_hidden_layers=L), precision="fp32", tensor_parallel=2, num_gpus=2)
                for L in (1, 2))
    assert two.parts["weights"] - one.parts["weights"] == 4 * 14_464


@pytest.mark.parametrize("bad, message", [
    (dict(tensor_parallel=3), "num_gpus"),                                  # 3 does not divide 64 GPUs
    (dict(tensor_parallel=16, num_gpus=64), "num_attention_heads"),         # 16 does not divide 8 heads
    (dict(tensor_parallel=0), "positive"),
    (dict(pipeline_parallel=3, num_gpus=3), "num_hidden_layers"),           # 32 layers on 3 stages
    (dict(tensor_parallel=8, num_gpus=8, seq_len=100), "seq_len"),          # sequence parallel needs t | s
    (dict(tensor_parallel=2, num_gpus=2, trainable_params=100), "LoRA"),
    (dict(tensor_parallel=2, num_gpus=3), "multiple"),
])
def test_parallel_planner_rejects_invalid_splits(bad, message):
    cfg = dict(LLAMA2_7B, num_attention_heads=8, num_key_value_heads=4)  # head_dim 512
    with pytest.raises(ValueError, match=message):
        plan_memory(cfg, **{"num_gpus": 64, **bad})


def test_parallel_planner_rejects_what_it_cannot_split():
    with pytest.raises(ValueError, match="num_key_value_heads"):  # t=3 neither divides nor is a multiple of 2
        plan_memory(dict(LLAMA2_7B, num_attention_heads=6, hidden_size=6 * 128, intermediate_size=6 * 64,
                         num_key_value_heads=2), tensor_parallel=3, num_gpus=3)
    with pytest.raises(ValueError, match="GPT-style"):
        plan_memory(GPT(GPTConfig(vocab_size=50, block_size=8, n_layer=2, n_head=2, n_embd=16)),
                    tensor_parallel=2, num_gpus=2)
    with pytest.raises(ValueError, match="biases"):
        plan_memory(dict(LLAMA2_7B, attention_bias=True), tensor_parallel=2, num_gpus=2)
