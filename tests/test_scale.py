"""Chapter 13's arithmetic (helpers.scale, cost.zero_model_state_bytes / transformer_activation_bytes,
formulas.lora_params) against the papers' published numbers, DeepSpeed's estimators, peft, tensors
allocated rank by rank, tensors autograd saves and FlopCounterMode."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.checkpoint import checkpoint
from torch.utils.flop_counter import FlopCounterMode

from helpers import cost, formulas, scale
from helpers.activations import saved_bytes_by_module, saved_tensors
from helpers.models.gpt import GPT, GPTConfig, GPTBlock
from helpers.models.paper_gpt import PaperGPTLayer

BF16 = torch.bfloat16


# --------------------------------------------------------------------------- ZeRO

@pytest.mark.parametrize("stage,paper_gb", [(0, 120), (1, 31.4), (2, 16.6), (3, 1.9)])
def test_zero_paper_figure_1(stage, paper_gb):
    """Rajbhandari et al. 2020, Figure 1: Ψ = 7.5B, N_d = 64, K = 12 (numbers as printed there)."""
    assert round(cost.zero_model_state_bytes(7_500_000_000, 64, stage) / 1e9, 1) == paper_gb


def _rank_tensors(num_params: int, num_gpus: int, stage: int, rank: int) -> list[torch.Tensor]:
    """What one data-parallel rank allocates: bf16 weights and grads, fp32 master + Adam m, v."""
    flat = torch.empty(num_params, device="meta")
    shard = torch.tensor_split(flat, num_gpus)[rank].numel()
    full = num_params
    p = full if stage < 3 else shard
    g = full if stage < 2 else shard
    o = full if stage < 1 else shard
    return [torch.empty(p, dtype=BF16, device="meta"), torch.empty(g, dtype=BF16, device="meta"),
            *(torch.empty(o, dtype=torch.float32, device="meta") for _ in range(3))]


@settings(max_examples=60, deadline=None)
@given(shard=st.integers(1, 10**6), num_gpus=st.integers(1, 512), stage=st.integers(0, 3))
def test_zero_bytes_equal_what_each_rank_allocates(shard, num_gpus, stage):
    n = shard * num_gpus
    for rank in {0, num_gpus - 1}:
        allocated = sum(t.numel() * t.element_size() for t in _rank_tensors(n, num_gpus, stage, rank))
        assert cost.zero_model_state_bytes(n, num_gpus, stage) == allocated


@pytest.mark.parametrize("bad", [dict(stage=4), dict(num_gpus=0), dict(stage=-1)])
def test_zero_rejects_invalid(bad):
    kw = dict(num_params=10, num_gpus=2, stage=1) | bad
    with pytest.raises(ValueError):
        cost.zero_model_state_bytes(**kw)


def test_model_state_bytes_per_param():
    assert scale.model_state_bytes_per_param("mixed", "adamw").total == 16  # ZeRO §3.1: 2 + 2 + 12
    fp32 = scale.model_state_bytes_per_param("fp32", "adam")
    net = nn.Linear(7, 5)
    net(torch.randn(3, 7)).sum().backward()
    opt = torch.optim.Adam(net.parameters())
    opt.step()
    states = [v for s in opt.state.values() for k, v in s.items() if k != "step"]
    n = sum(p.numel() for p in net.parameters())
    assert fp32.optimizer_bytes * n == sum(t.numel() * t.element_size() for t in states)
    assert scale.model_state_bytes_per_param("bf16", "adamw").total == 8
    with pytest.raises(ValueError):
        scale.model_state_bytes_per_param("fp8", "adamw")


@pytest.mark.parametrize("optimizer, block", [("adam8bit", 2048), ("adam8bit_bnb", 256)])
def test_adam8bit_state_bytes_measured(optimizer, block):
    """Block-wise 8-bit moments built in torch: an int8 code per element + one fp32 absmax per block."""
    n = block * 12
    state = torch.randn(n)
    absmax = state.view(-1, block).abs().amax(dim=1)                       # (n / block,) fp32
    codes = (state.view(-1, block) / absmax[:, None] * 127).round().to(torch.int8)   # (n / block, block)
    per_state = (codes.nbytes + absmax.nbytes) / n
    b = scale.model_state_bytes_per_param("mixed", optimizer)
    assert b.optimizer_bytes == 4 + 2 * per_state                          # fp32 master + two 8-bit moments
    assert scale.ADAM8BIT_BLOCK_SIZE == {"paper (bitsandbytes < 0.44)": 2048, "bitsandbytes >= 0.44": 256}


# --------------------------------------------------------------------------- DeepSpeed's estimators

ds2 = pytest.importorskip("deepspeed.runtime.zero.stage_1_and_2")
ds3 = pytest.importorskip("deepspeed.runtime.zero.stage3")


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 10**12), per_node=st.integers(1, 16), nodes=st.integers(1, 64),
       largest=st.integers(0, 10**9))
def test_deepspeed_estimators_reconciled(n, per_node, nodes, largest):
    g = per_node * nodes
    cpu2, gpu2 = ds2.estimate_zero2_model_states_mem_needs(n, per_node, nodes, cpu_offload=False)
    # DeepSpeed's 18 bytes = 2 bf16 grads + 4 fp32 grads + 12 (fp32 master, m, v): grad_bytes = 6
    assert abs(gpu2 - cost.zero_model_state_bytes(n, g, 2, grad_bytes=6)) <= 1
    assert cpu2 == int(n * 4 * per_node * 1.5)  # fp32 copy per process on the node, × 1.5 buffers
    cpu3, gpu3, largest_mem = ds3.estimate_zero3_model_states_mem_needs(n, largest, per_node, nodes,
                                                                         cpu_offload=False)
    # stage 3: 18 = 2 bf16 params + 4 fp32 grads + 12, all sharded; + the gathered largest layer
    # (its bf16 weights and grads, 2 + 2 bytes per parameter)
    assert largest_mem == 4 * largest
    assert abs(gpu3 - (4 * largest + cost.zero_model_state_bytes(n, g, 3, grad_bytes=4))) <= 1
    assert cpu3 == int(largest * 4 * per_node * 1.5)


def test_deepspeed_model_to_params_counts_tied_once_and_fails_on_meta():
    """DeepSpeed dedups by data_ptr(): right for a real model, wrong on meta (every pointer is 0)."""
    cfg = GPTConfig(vocab_size=97, block_size=16, n_layer=2, n_head=2, n_embd=16)
    real = GPT(cfg)
    total, largest = ds3.model_to_params(real)
    assert total == sum(p.numel() for p in set(real.parameters()))
    assert largest == max(sum(p.numel() for p in m.parameters(recurse=False)) for m in real.modules())
    with torch.device("meta"):
        meta = GPT(cfg)
    assert ds3.model_to_params(meta)[0] < total


# --------------------------------------------------------------------------- activations

def _paper_layer(s, b, h, a, **kw):
    torch.manual_seed(0)
    layer = PaperGPTLayer(GPTConfig(n_embd=h, n_head=a, block_size=s, dropout=0.1), dtype=BF16, **kw)
    x = torch.randn(b, s, h, dtype=BF16, requires_grad=True)
    return layer, x


def _ln_stats(saved, s, b):
    """LayerNorm's mean and rstd, (B, T, 1) each: saved by torch, left out by the paper."""
    stats = [t for t in saved if t.module.startswith("ln_") and t.shape == (b, s, 1)]
    assert len(stats) == 4
    return sum(t.nbytes for t in stats)


dims = st.tuples(st.integers(1, 24), st.integers(1, 3), st.integers(1, 4), st.integers(1, 4)).map(
    lambda t: (t[0], t[1], 2 * t[2] * t[3], t[3]))  # s, b, h (= a · even head size), a


@settings(max_examples=12, deadline=None)
@given(dims)
def test_paper_layer_saves_exactly_korthikanti(d):
    s, b, h, a = d
    layer, x = _paper_layer(s, b, h, a)
    saved = saved_tensors(layer, x)
    measured = sum(t.nbytes for t in saved) - _ln_stats(saved, s, b)
    assert measured == cost.transformer_activation_bytes(s, b, h, a) == sum(
        scale.transformer_activation_terms(s, b, h, a).values())


def test_paper_layer_terms_module_by_module():
    s, b, h, a = 12, 2, 16, 4
    layer, x = _paper_layer(s, b, h, a)
    saved = saved_tensors(layer, x)
    by_module = saved_bytes_by_module(saved)
    by_module["ln_1"] -= 4 * s * b  # mean and rstd, bf16 (B, T, 1) each
    by_module["ln_2"] -= 4 * s * b
    terms = scale.transformer_activation_terms(s, b, h, a)
    expected = {
        "ln_1": ["ln1 input (2sbh)"], "attn.c_attn": ["QKV projection input (2sbh)"],
        "attn": ["Q and K for QKᵀ (4sbh)", "softmax output (2as²b)", "dropout output for ·V (2as²b)",
                 "V for ·V (2sbh)"],
        "attn.attn_dropout": ["attention dropout mask (as²b)"], "attn.c_proj": ["output projection input (2sbh)"],
        "attn.resid_dropout": ["attention residual dropout mask (sbh)"], "ln_2": ["ln2 input (2sbh)"],
        "mlp.c_fc": ["MLP first linear input (2sbh)"], "mlp.gelu": ["GeLU input (8sbh)"],
        "mlp.c_proj": ["MLP second linear input (8sbh)"], "mlp.dropout": ["MLP dropout mask (sbh)"],
    }
    assert sorted(k for ks in expected.values() for k in ks) == sorted(terms)
    assert by_module == {m: sum(terms[k] for k in ks) for m, ks in expected.items()}


def test_recomputation_rows_measured():
    s, b, h, a = 16, 2, 32, 4
    layer, x = _paper_layer(s, b, h, a)
    full = saved_tensors(layer, x, run=lambda x: checkpoint(layer, x, use_reentrant=False))
    assert sum(t.nbytes for t in full) == cost.transformer_activation_bytes(s, b, h, a, recompute="full")
    layer.attn.recompute_core = True
    sel = saved_tensors(layer, x)
    assert sum(t.nbytes for t in sel) - _ln_stats(sel, s, b) == cost.transformer_activation_bytes(
        s, b, h, a, recompute="selective") == 34 * s * b * h


def test_torch_modules_differ_from_the_paper():
    s, b, h, a = 16, 2, 32, 4
    _, x = _paper_layer(s, b, h, a)
    sdpa, _ = _paper_layer(s, b, h, a, attention="sdpa")
    saved = saved_tensors(sdpa, x)
    core = [t for t in saved if t.module == "attn"]
    assert all(t.shape[-2:] != (s, s) for t in saved)  # no (T, T) attention matrix is kept
    # q, k, v and the output (2sbh each) + the log-sum-exp (fp32, one per row of each head)
    assert sum(t.nbytes for t in core) == 8 * s * b * h + 4 * a * s * b
    torch.manual_seed(0)
    block = GPTBlock(GPTConfig(n_embd=h, n_head=a, block_size=s, dropout=0.1)).to(BF16)
    by_dtype = {t.dtype for t in saved_tensors(block, x) if t.module.endswith("dropout")}
    assert by_dtype == {BF16}  # nn.Dropout on the CPU keeps a 2-byte mask, not 1 byte


# --------------------------------------------------------------------------- a Llama layer (HF, SDPA)

def _hf_llama_layer(s, b, h, a, g, F, head_dim=None, dtype=BF16):
    """Hugging Face's LlamaDecoderLayer (SDPA, no dropout) in `dtype`, its input and RoPE's cos/sin as
    LlamaModel passes them (positions (1, s): one cos/sin for the whole batch)."""
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaDecoderLayer, LlamaRotaryEmbedding

    cfg = LlamaConfig(hidden_size=h, num_attention_heads=a, num_key_value_heads=g, intermediate_size=F,
                      head_dim=head_dim, attn_implementation="sdpa")
    assert cfg.attention_dropout == 0 and cfg.hidden_act == "silu"
    torch.manual_seed(0)
    layer = LlamaDecoderLayer(cfg, layer_idx=0).to(dtype)
    x = torch.randn(b, s, h, dtype=dtype, requires_grad=True)
    cos_sin = LlamaRotaryEmbedding(cfg)(x, torch.arange(s)[None])
    return layer, x, lambda x: layer(x, position_embeddings=cos_sin, attention_mask=None)


llama_dims = st.tuples(st.integers(1, 20), st.integers(1, 3), st.integers(1, 4), st.integers(1, 3),
                       st.integers(1, 4), st.integers(1, 40), st.booleans(), st.sampled_from([BF16, torch.float32]))


@settings(max_examples=15, deadline=None)
@given(llama_dims)
def test_llama_layer_saves_exactly_the_formula(d):
    """Every byte an HF Llama layer saves, on random shapes (GQA/MQA/MHA, head_dim set or not, bf16/fp32)."""
    s, b, g, groups, half_hd, F, own_head_dim, dtype = d
    a, hd = g * groups, 2 * half_hd                      # RoPE rotates pairs: even head_dim
    h = a * (hd + 2 if own_head_dim else hd)             # head_dim set explicitly (HF needs a | h): h != a·d_h
    layer, x, run = _hf_llama_layer(s, b, h, a, g, F, head_dim=hd if own_head_dim else None, dtype=dtype)
    measured = sum(t.nbytes for t in saved_tensors(layer, x, run=run, same_memory_once=True))
    e = x.element_size()
    kw = dict(head_dim=hd if own_head_dim else None, bytes_per_element=e)
    assert measured == scale.llama_activation_bytes(s, b, h, a, g, F, **kw) == sum(
        scale.llama_activation_terms(s, b, h, a, g, F, **kw).values())
    assert scale.llama_activation_bytes(s, b, h, a, g, F, recompute="selective", **kw) == measured


def test_llama_layer_terms_module_by_module_and_full_recompute():
    s, b, h, a, g, F = 12, 2, 32, 4, 2, 44
    layer, x, run = _hf_llama_layer(s, b, h, a, g, F)
    by_module = saved_bytes_by_module(saved_tensors(layer, x, run=run, same_memory_once=True))
    terms = scale.llama_activation_terms(s, b, h, a, g, F)
    expected = {
        "input_layernorm": [k for k in terms if k.startswith("input_layernorm")],
        "self_attn.q_proj": ["q/k/v_proj input (e·sbh)"],
        "self_attn": ["RoPE cos, sin (2e·s·d_h)", "q after RoPE (e·sb·a·d_h)", "k after RoPE (e·sb·g·d_h)",
                      "v (e·sb·g·d_h)", "attention output = o_proj input (e·sb·a·d_h)", "log-sum-exp (4asb)"],
        "post_attention_layernorm": [k for k in terms if k.startswith("post_attention_layernorm")],
        "mlp.gate_proj": ["gate/up_proj input (e·sbh)"], "mlp.act_fn": ["SiLU input = gate_proj output (e·sbF)"],
        "mlp": ["SiLU output (e·sbF)", "up_proj output (e·sbF)"], "mlp.down_proj": ["down_proj input (e·sbF)"],
    }
    assert sorted(k for ks in expected.values() for k in ks) == sorted(terms)
    assert by_module == {m: sum(terms[k] for k in ks) for m, ks in expected.items()}
    # by default the attention output is counted again as o_proj's (B·T, D) input: one block of memory
    twice = sum(t.nbytes for t in saved_tensors(layer, x, run=run))
    assert twice - sum(by_module.values()) == terms["attention output = o_proj input (e·sb·a·d_h)"]
    packed = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: packed.append(t) or t, lambda t: t):
        run(x)
    ptrs = lambda shape: {t.untyped_storage().data_ptr() for t in packed if t.shape == shape}  # noqa: E731
    assert ptrs((b, a, s, h // a)) & ptrs((b * s, h))  # SDPA's output and o_proj's input: one storage
    full = saved_tensors(layer, x, run=lambda x: checkpoint(run, x, use_reentrant=False), same_memory_once=True)
    assert sum(t.nbytes for t in full) == scale.llama_activation_bytes(s, b, h, a, g, F, recompute="full")


def test_llama_2_7b_against_korthikanti():
    """The docstring's comparison at s = 2048: ≈ 45.7·sbh for Llama-2-7B vs 114·sbh for the GPT formula."""
    s, b, h, a = 2048, 1, 4096, 32
    llama = scale.llama_activation_bytes(s, b, h, a, 32, 11008) / (s * b * h)
    gpt = scale.transformer_activation_bytes(s, b, h, a) / (s * b * h)
    assert round(llama, 1) == 45.7 and gpt == 34 + 5 * a * s / h == 114


@pytest.mark.parametrize("bad", [dict(num_key_value_heads=3), dict(num_attention_heads=0), dict(hidden_size=30),
                                 dict(recompute="some")])
def test_llama_activation_rejects_invalid(bad):
    kw = dict(seq_len=8, batch_size=1, hidden_size=32, num_attention_heads=4, num_key_value_heads=2) | bad
    with pytest.raises(ValueError):
        scale.llama_activation_bytes(**kw)


@settings(max_examples=40, deadline=None)
@given(s=st.integers(1, 4096), b=st.integers(1, 16), hd=st.integers(1, 256), a=st.integers(1, 64),
       t=st.integers(1, 16))
def test_tensor_parallel_rows_split_the_right_terms(s, b, hd, a, t):
    """Korthikanti §4.2: only LayerNorm inputs, the column-parallel linears' inputs and the two
    residual dropout masks (10sbh) stay whole under tensor parallelism; sequence parallelism splits them."""
    h = hd * a
    terms = scale.transformer_activation_terms(s, b, h, a)
    whole = ["ln1 input (2sbh)", "QKV projection input (2sbh)", "attention residual dropout mask (sbh)",
             "ln2 input (2sbh)", "MLP first linear input (2sbh)", "MLP dropout mask (sbh)"]
    unsplit = sum(terms[k] for k in whole)
    split = sum(v for k, v in terms.items() if k not in whole)
    attn = sum(v for k, v in terms.items() if "as²b" in k)
    f = cost.transformer_activation_bytes
    assert f(s, b, h, a, tensor_parallel=t) == pytest.approx(unsplit + split / t, rel=1e-12)
    assert f(s, b, h, a, tensor_parallel=t, sequence_parallel=True) == pytest.approx((unsplit + split) / t, rel=1e-12)
    assert f(s, b, h, a, tensor_parallel=t, recompute="selective") == pytest.approx(
        unsplit + (split - attn) / t, rel=1e-12)
    assert f(s, b, h, a, tensor_parallel=t, recompute="full") == 2 * s * b * h


@pytest.mark.parametrize("bad", [dict(recompute="some"), dict(tensor_parallel=0), dict(num_heads=3)])
def test_activation_rejects_invalid(bad):
    kw = dict(seq_len=8, batch_size=1, hidden_size=16, num_heads=4) | bad
    with pytest.raises(ValueError):
        cost.transformer_activation_bytes(**kw)


# --------------------------------------------------------------------------- compute

def test_6nd_and_kaplan_attention_term_vs_flop_counter():
    cfg = GPTConfig(vocab_size=101, block_size=24, n_layer=2, n_head=2, n_embd=32)
    B, T = 3, 24
    with torch.device("meta"):
        model = GPT(cfg)
        idx = torch.zeros(B, T, dtype=torch.long)
        with FlopCounterMode(display=False) as fwd:
            logits = model(idx)
        with FlopCounterMode(display=False) as bwd:
            logits.sum().backward()
    n_matmul = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear))
    tokens = B * T
    attention = 2 * scale.kaplan_forward_flops_per_token(0, cfg.n_layer, T, cfg.n_embd) * tokens
    assert fwd.get_total_flops() == 2 * n_matmul * tokens + attention  # dense: 2 × Kaplan's causal term
    assert bwd.get_total_flops() == 2 * fwd.get_total_flops()  # the 4N backward
    assert fwd.get_total_flops() + bwd.get_total_flops() == scale.training_flops(n_matmul, tokens) + 3 * attention


def test_chinchilla_and_time():
    assert scale.chinchilla_tokens(70e9) == 1.4e12  # Chinchilla: 70B parameters, 1.4T tokens
    assert scale.training_seconds(1e18, 10, 1e15, 0.5) == 200
    with pytest.raises(ValueError):
        scale.training_seconds(1e18, 10, 1e15, 1.5)


# --------------------------------------------------------------------------- LoRA and QLoRA

peft = pytest.importorskip("peft")


@settings(max_examples=8, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 40), st.integers(1, 40)), min_size=1, max_size=4),
       st.integers(1, 16), st.data())
def test_lora_params_vs_peft(shapes, r, data):
    widths = [shapes[0][0]] + [o for _, o in shapes]
    net = nn.Sequential(*[nn.Linear(i, o) for i, o in zip(widths, widths[1:])])
    targets = data.draw(st.lists(st.sampled_from([str(i) for i in range(len(net))]), min_size=1, unique=True))
    model = peft.get_peft_model(net, peft.LoraConfig(r=r, target_modules=targets))
    trainable, total = model.get_nb_trainable_parameters()
    expected = sum(formulas.lora_params(net[int(t)].in_features, net[int(t)].out_features, r) for t in targets)
    assert trainable == expected
    assert total == expected + sum(formulas.linear_params(i, o) for i, o in zip(widths, widths[1:]))


@pytest.mark.parametrize("bad", [(0, 4, 2), (4, 4, 0), (4.0, 4, 2)])
def test_lora_rejects_invalid(bad):
    with pytest.raises(ValueError):
        formulas.lora_params(*bad)


def _blockwise_quantize_bytes(n: int, block: int, double_quant: bool) -> int:
    """Bytes of really quantised tensors: 4-bit codes packed two per byte, absmax per block (fp32, or
    int8 codes with one fp32 scale per 256 absmax values + their mean, as QLoRA's double quantisation)."""
    torch.manual_seed(0)
    w = torch.randn(n)
    absmax = w.view(-1, block).abs().amax(dim=1)  # (n / block,)
    codes = torch.clamp((w.view(-1, block) / absmax[:, None] * 7).round() + 8, 0, 15).to(torch.uint8)
    packed = (codes.view(-1, 2)[:, 0] << 4) | codes.view(-1, 2)[:, 1]  # (n / 2,) uint8
    if not double_quant:
        return packed.nbytes + absmax.nbytes
    centred = absmax - absmax.mean()
    scale2 = centred.view(-1, 256).abs().amax(dim=1)  # (n / block / 256,) fp32
    absmax8 = (centred.view(-1, 256) / scale2[:, None] * 127).round().to(torch.int8)
    return packed.nbytes + absmax8.nbytes + scale2.nbytes + absmax.mean().nbytes


def test_qlora_bits_per_param_measured():
    n = 64 * 256 * 4
    assert _blockwise_quantize_bytes(n, 64, False) * 8 / n == scale.quantized_bits_per_param()
    measured = _blockwise_quantize_bytes(n, 64, True) * 8 / n
    # + one fp32 mean for the whole tensor (QLoRA centres the absmax values before quantising them)
    assert measured == scale.quantized_bits_per_param(double_quant=True) + 32 / n
    assert round(scale.quantized_bits_per_param(double_quant=True), 3) == 4.127  # QLoRA §3
