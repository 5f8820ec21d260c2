"""Chapter 13 (Training at scale) exercise questions.

Reference answers are measured by torch in the checking process (per-rank tensors on the ``meta``
device, tensors saved by autograd) or come from ``helpers.scale`` / ``helpers.formulas``, which
tests/test_scale.py checks against the papers' numbers, DeepSpeed's estimators, peft and
measured saved tensors; tests/test_checks_ch13.py re-checks every reference independently.
"""

from __future__ import annotations

import random

from helpers import formulas, scale
from helpers.checks._gen import budget_for_size, close, close_within, largest_fitting, log_uniform
from helpers.checks.registry import Question, register

# --------------------------------------------------------------------------- 1. ZeRO per-GPU bytes


def zero_bytes_reference(num_params: int, num_gpus: int, stage: int) -> int:
    """Bytes rank 0 allocates: bf16 weights and grads, fp32 master + Adam m, v; sharded by stage."""
    import torch

    shard = torch.tensor_split(torch.empty(num_params, device="meta"), num_gpus)[0].numel()
    p, g, o = (num_params if stage < s else shard for s in (3, 2, 1))
    tensors = [torch.empty(p, dtype=torch.bfloat16, device="meta"), torch.empty(g, dtype=torch.bfloat16, device="meta"),
               *(torch.empty(o, device="meta") for _ in range(3))]
    return sum(t.numel() * t.element_size() for t in tensors)


def _zero_cases(rng: random.Random) -> list:
    cases: list = [((7_500_000_000, 64, stage), {}) for stage in range(4)]
    for _ in range(12):
        gpus = rng.choice([1, 2, 4, 8, 16, 64, 256, 1024])
        cases.append(((gpus * log_uniform(rng, 1, 10**8), gpus, rng.randint(0, 3)), {}))
    return cases


register(Question(
    id="13.zero_bytes",
    title="Per-GPU bytes of weights + grads + optimizer (mixed precision + Adam, 2 + 2 + 12 B/param) under "
          "ZeRO: zero_bytes(num_params, num_gpus, stage) for stage 0–3",
    cases=_zero_cases,
    reference=zero_bytes_reference,
    hint="stage 1 shards the 12 optimizer bytes, stage 2 also the 2 gradient bytes, stage 3 also the 2 weight "
         "bytes; a sharded part costs bytes·num_params/num_gpus on each GPU (ZeRO paper, Figure 1).",
    compare=close,
    timeout=30.0,
))


# --------------------------------------------------------------------------- 2. largest micro-batch


def _activation_total(seq_len: int, hidden_size: int, num_heads: int, num_layers: int, recompute: str):
    def count(b: int) -> int:
        return int(num_layers * scale.transformer_activation_bytes(seq_len, b, hidden_size, num_heads,
                                                                   recompute=recompute))
    return count


def max_micro_batch_reference(memory_bytes: int, seq_len: int, hidden_size: int, num_heads: int, num_layers: int,
                              recompute: str = "none") -> int:
    """Largest micro-batch b whose activations (num_layers × Korthikanti Table 2) fit memory_bytes."""
    return largest_fitting(_activation_total(seq_len, hidden_size, num_heads, num_layers, recompute), memory_bytes)


def _micro_batch_cases(rng: random.Random) -> list:
    cases: list = []
    for i in range(14):
        a = rng.choice([4, 8, 16, 32, 64])
        h, s, L = a * rng.choice([32, 64, 128]), rng.choice([128, 512, 1024, 2048, 4096]), rng.randint(1, 48)
        recompute = rng.choice(["none", "none", "selective", "full"])
        count = _activation_total(s, h, a, L, recompute)
        budget = budget_for_size(rng, count, rng.randint(1, 64), ("exact", "last", "between")[i % 3])
        kwargs = {"recompute": recompute} if recompute != "none" else {}
        cases.append(((budget, s, h, a, L), kwargs))
    return cases


register(Question(
    id="13.max_micro_batch",
    title="Largest micro-batch whose activations fit: max_micro_batch(memory_bytes, seq_len, hidden_size, "
          "num_heads, num_layers, recompute='none') with Korthikanti et al.'s bytes per layer",
    cases=_micro_batch_cases,
    reference=max_micro_batch_reference,
    hint="per layer and per sequence: s·h·(34 + 5·a·s/h) bytes without recomputation, 34·s·h with "
         "'selective', 2·s·h with 'full'; multiply by num_layers and divide the memory by it (round down).",
))


# --------------------------------------------------------------------------- 3. training days


def training_days_reference(num_params: float, num_tokens: float, num_gpus: int, peak_tflops: float,
                            mfu: float) -> float:
    """Days to train with C = 6·N·D at num_gpus × peak × MFU."""
    return scale.training_seconds(scale.training_flops(num_params, num_tokens), num_gpus, peak_tflops * 1e12,
                                  mfu) / 86400


def _days_cases(rng: random.Random) -> list:
    cases: list = [((6_738_415_616, 2e12, 1024, 312, 0.4), {})]
    for _ in range(14):
        n = log_uniform(rng, 10**6, 10**11)
        tokens = n * rng.choice([1, 5, 20, 20, 100])
        cases.append(((n, tokens, rng.choice([8, 64, 256, 1024, 4096]), rng.choice([125, 312, 989]),
                       rng.choice([0.3, 0.4, 0.5, 0.55])), {}))
    return cases


register(Question(
    id="13.training_days",
    title="Days to train: training_days(num_params, num_tokens, num_gpus, peak_tflops, mfu) with C = 6·N·D",
    cases=_days_cases,
    reference=training_days_reference,
    hint="C = 6·num_params·num_tokens FLOPs; the cluster does num_gpus·peak_tflops·10¹²·mfu FLOP per second; "
         "a day has 86,400 seconds.",
    compare=close_within(1e-9),
))


# --------------------------------------------------------------------------- 4. LoRA on a Llama

LLAMA_LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def lora_trainable_reference(hidden_size: int, intermediate_size: int, num_hidden_layers: int,
                             num_attention_heads: int, num_key_value_heads: int, r: int, target_modules: list) -> int:
    """Trainable parameters peft's LoRA adds to a Llama decoder: r·(in + out) per targeted Linear per layer."""
    d, kv = hidden_size // num_attention_heads, num_key_value_heads
    shapes = {"q_proj": (hidden_size, hidden_size), "k_proj": (hidden_size, kv * d), "v_proj": (hidden_size, kv * d),
              "o_proj": (hidden_size, hidden_size), "gate_proj": (hidden_size, intermediate_size),
              "up_proj": (hidden_size, intermediate_size), "down_proj": (intermediate_size, hidden_size)}
    return num_hidden_layers * sum(formulas.lora_params(*shapes[m], r) for m in target_modules)


def _lora_cases(rng: random.Random) -> list:
    cases: list = [((4096, 11008, 32, 32, 32, 8, ["q_proj", "v_proj"]), {})]
    for _ in range(14):
        heads = rng.choice([4, 8, 16, 32, 64])
        kv = rng.choice([h for h in (1, 2, 4, 8, heads) if heads % h == 0])
        hidden = heads * rng.choice([32, 64, 128])
        targets = sorted(rng.sample(LLAMA_LINEARS, rng.randint(1, 7)), key=LLAMA_LINEARS.index)
        cases.append(((hidden, rng.choice([2, 3, 4]) * hidden, rng.randint(1, 80), heads, kv,
                       rng.choice([1, 4, 8, 16, 64]), targets), {}))
    return cases


register(Question(
    id="13.lora_trainable",
    title="LoRA's trainable parameters on a Llama decoder: lora_trainable(hidden_size, intermediate_size, "
          "num_hidden_layers, num_attention_heads, num_key_value_heads, r, target_modules)",
    cases=_lora_cases,
    reference=lora_trainable_reference,
    hint="each targeted Linear(in, out) gets A (r × in) and B (out × r); k_proj and v_proj map hidden_size to "
         "num_key_value_heads·head_dim with head_dim = hidden_size / num_attention_heads; count every layer.",
))


# --------------------------------------------------------------------------- 5. measure saved tensors (torch code)


def mlp_saved_bytes_reference(batch_size: int, seq_len: int, hidden_size: int, dtype: str = "bfloat16",
                              recompute: bool = False) -> int:
    """Activation bytes autograd saves for Linear(h, 4h) → GELU → Linear(4h, h), measured."""
    import torch
    from torch import nn
    from torch.utils.checkpoint import checkpoint

    from helpers.activations import saved_tensors

    torch.manual_seed(0)
    dt = getattr(torch, dtype)
    mlp = nn.Sequential(nn.Linear(hidden_size, 4 * hidden_size), nn.GELU(), nn.Linear(4 * hidden_size, hidden_size))
    mlp = mlp.to(dt)
    x = torch.randn(batch_size, seq_len, hidden_size, dtype=dt, requires_grad=True)
    run = (lambda x: checkpoint(mlp, x, use_reentrant=False)) if recompute else None
    return sum(t.nbytes for t in saved_tensors(mlp, x, run=run))


def _mlp_cases(rng: random.Random) -> list:
    cases: list = [((2, 16, 32), {}), ((1, 8, 16), {"recompute": True})]
    for _ in range(8):
        kwargs: dict = {}
        if rng.random() < 0.5:
            kwargs["dtype"] = rng.choice(["float32", "bfloat16", "float16"])
        if rng.random() < 0.3:
            kwargs["recompute"] = True
        cases.append(((rng.randint(1, 4), rng.randint(1, 24), rng.randint(1, 48)), kwargs))
    return cases


register(Question(
    id="13.mlp_saved_bytes",
    title="Measure with torch.autograd.graph.saved_tensors_hooks the bytes autograd keeps for "
          "nn.Sequential(Linear(h, 4h), GELU(), Linear(4h, h)) in `dtype` on a (batch_size, seq_len, h) input "
          "(requires_grad=True), without the parameters; with recompute=True run it under "
          "torch.utils.checkpoint: mlp_saved_bytes(batch_size, seq_len, hidden_size, dtype='bfloat16', recompute=False)",
    cases=_mlp_cases,
    reference=mlp_saved_bytes_reference,
    hint="inside `with torch.autograd.graph.saved_tensors_hooks(pack, unpack):` every tensor saved for backward "
         "passes through pack(t); skip tensors whose untyped_storage().data_ptr() belongs to a parameter, add "
         "t.numel()·t.element_size() for the rest. Without recompute: input, GELU input, GELU output.",
    timeout=60.0,  # the first torch.utils.checkpoint call imports torch's compiler stack (seconds, once)
))


# --------------------------------------------------------------------------- 6. quantised weights


def quantized_weight_bytes_reference(num_params: int, bits: int = 4, block_size: int = 64,
                                     double_quant: bool = False) -> float:
    """Bytes of block-wise quantised weights with fp32 scales (QLoRA §3 for double_quant)."""
    return num_params * scale.quantized_bits_per_param(bits, block_size, double_quant=double_quant) / 8


def _quant_cases(rng: random.Random) -> list:
    cases: list = [((6_738_415_616,), {"double_quant": True}), ((1_000_000,), {})]
    for _ in range(12):
        block = rng.choice([32, 64, 128, 256])
        kwargs: dict = {"bits": rng.choice([2, 3, 4, 8]), "block_size": block}
        if rng.random() < 0.5:
            kwargs["double_quant"] = True
        cases.append(((block * 256 * log_uniform(rng, 1, 10**5),), kwargs))
    return cases


register(Question(
    id="13.quantized_weight_bytes",
    title="Bytes of block-wise quantised weights: quantized_weight_bytes(num_params, bits=4, block_size=64, "
          "double_quant=False); one fp32 absmax per block, or with double_quant an 8-bit absmax per block and "
          "one fp32 scale per 256 absmax values",
    cases=_quant_cases,
    reference=quantized_weight_bytes_reference,
    hint="bits per weight = bits + 32/block_size; with double quantisation bits + 8/block_size + "
         "32/(block_size·256) (QLoRA: 4.127 for NF4). Bytes = num_params·bits per weight / 8.",
    compare=close_within(1e-12),
))


# --------------------------------------------------------------------------- 7. a LoRA linear in torch

#: the LoRA alpha of the exercise: the update is scaled by LORA_ALPHA / rank (peft's lora_alpha / r)
LORA_ALPHA = 16


def lora_linear_reference(in_features: int, out_features: int, rank: int):
    """A frozen ``nn.Linear`` ``base`` plus a trainable rank-r update (Hu et al. 2021, arXiv:2106.09685, eq. 3).

    ``forward(x) = base(x) + lora_B(lora_A(x)) · (LORA_ALPHA / rank)`` — peft's ``LoraLayer`` with
    ``lora_alpha = LORA_ALPHA`` and no dropout; ``lora_A: in → r``, ``lora_B: r → out``, both without bias.
    Shapes: (…, in_features) → (…, out_features). Trainable: r·(in + out); frozen: in·out + out.
    """
    from torch import nn

    class LoRALinear(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.base = nn.Linear(in_features, out_features)
            self.base.requires_grad_(False)                               # the pretrained weight stays frozen
            self.lora_A = nn.Linear(in_features, rank, bias=False)        # (…, in) → (…, r)
            self.lora_B = nn.Linear(rank, out_features, bias=False)       # (…, r) → (…, out)
            self.scaling = LORA_ALPHA / rank

        def forward(self, x):
            return self.base(x) + self.lora_B(self.lora_A(x)) * self.scaling  # (…, out)

    return LoRALinear()


def _lora_linear_cases(rng: random.Random) -> list:
    cases = []
    for _ in range(8):
        rank = rng.choice([1, 2, 4, 8, 16, 32])
        fin = log_uniform(rng, 8, 512)
        while fin == rank:
            fin = log_uniform(rng, 8, 512)
        fout = log_uniform(rng, 8, 512)
        while fout in (fin, rank):  # swapped A/B shapes would pass where in == out
            fout = log_uniform(rng, 8, 512)
        cases.append(((fin, fout, rank), {}))
    return cases


def _lora_linear_probe(in_features: int, out_features: int, rank: int) -> dict:
    """A (3, 5, in) batch of sequences; 6 output values on fixed weights (a missing scaling changes them)."""
    return {"input": [3, 5, in_features], "values": 6}


register(Question(
    id="13.lora_linear",
    title="Repair a LoRA layer in torch: return the fixed LoRALinear",
    cases=_lora_linear_cases,
    reference=lora_linear_reference,
    probe=_lora_linear_probe,
    hint=f"lora_A maps in_features → rank and lora_B maps rank → out_features (both bias=False), so "
         f"lora_B(lora_A(x)) has the base's output shape; freeze the base with base.requires_grad_(False) "
         f"so only rank·(in_features + out_features) parameters are trainable; scale the update by "
         f"{LORA_ALPHA} / rank.",
))
