"""Chapter 10 (Mamba) exercise questions.

Reference answers come from the pure arithmetic of ``helpers.models.mamba`` (built on
``helpers.formulas``), which tests/test_models_mamba.py checks tensor by tensor against the
torch module ``MambaBlock`` (the layout of state-spaces/mamba ``mamba_simple.Mamba``).
"""

from __future__ import annotations

import random

from helpers import cost
from helpers.checks._gen import largest_fitting, log_uniform
from helpers.checks.registry import Question, register


# --------------------------------------------------------------------------- 1. d_inner, dt_rank

def inner_dims_reference(d_model: int, expand: int = 2, dt_rank="auto") -> tuple:
    """(d_inner, dt_rank) as mamba_simple.Mamba computes them."""
    from helpers.models.mamba import mamba_dims

    d = mamba_dims(d_model, expand=expand, dt_rank=dt_rank)
    return (d["d_inner"], d["dt_rank"])


def _dims_cases(rng: random.Random) -> list:
    cases = [((256,), {}), ((100,), {}), ((17,), {"expand": 1})]
    for _ in range(17):
        kwargs: dict = {"expand": rng.choice([1, 2, 3, 4])}
        if rng.random() < 0.25:
            kwargs["dt_rank"] = rng.randint(1, 64)
        cases.append(((rng.randint(1, 4096),), kwargs))
    return cases


register(Question(
    id="10.inner_dims",
    title="Return (d_inner, dt_rank) of a Mamba block (d_model, expand=2, dt_rank='auto')",
    cases=_dims_cases,
    reference=inner_dims_reference,
    hint="d_inner = expand · d_model; dt_rank = ceil(d_model / 16) when 'auto' (round UP: "
         "d_model = 100 gives 7), otherwise the given int.",
))


# --------------------------------------------------------------------------- 2. block count

def mamba_block_params_reference(d_model: int, d_state: int = 16, d_conv: int = 4, expand: float = 2,
                                 dt_rank="auto", conv_bias: bool = True, bias: bool = False) -> int:
    """Parameters of one Mamba block — helpers.models.mamba.mamba_block_params."""
    from helpers.models.mamba import mamba_block_params

    return mamba_block_params(d_model, d_state, d_conv, expand, dt_rank, conv_bias, bias)


def _block_cases(rng: random.Random) -> list:
    cases = [((256,), {})]  # the seed's configuration
    for _ in range(19):
        kwargs: dict = {"d_state": rng.choice([4, 8, 16, 32, 64]), "d_conv": rng.randint(2, 4),
                        "expand": rng.choice([1, 2, 2, 3])}
        if rng.random() < 0.3:
            kwargs["dt_rank"] = rng.randint(1, 32)
        if rng.random() < 0.3:
            kwargs["conv_bias"] = False
        if rng.random() < 0.3:
            kwargs["bias"] = True
        cases.append(((rng.randint(1, 2048),), kwargs))
    return cases


register(Question(
    id="10.mamba_block_params",
    title="Count a Mamba block (d_model, d_state=16, d_conv=4, expand=2, dt_rank='auto', "
          "conv_bias=True, bias=False)",
    cases=_block_cases,
    reference=mamba_block_params_reference,
    hint="in_proj D→2·Di, conv1d depthwise Di·K (+Di), x_proj Di→(R + 2N) no bias, dt_proj R→Di with "
         "bias, A_log Di·N, D Di, out_proj Di→D; `bias` adds the biases of in_proj and out_proj.",
))


# --------------------------------------------------------------------------- 3. state memory

def state_bytes_reference(batch_size: int, n_layer: int, d_model: int, d_state: int = 16,
                          d_conv: int = 4, expand: int = 2, bytes_per_element: int = 2) -> int:
    """Bytes of the recurrent inference state (conv + SSM) of n_layer blocks."""
    from helpers.models.mamba import mamba_state_numel

    numel = mamba_state_numel(batch_size, d_model, d_state, d_conv, expand)["total"]
    return numel * n_layer * bytes_per_element


def _state_cases(rng: random.Random) -> list:
    cases = [((1, 24, 768), {})]
    for _ in range(15):
        cases.append(((rng.randint(1, 64), rng.randint(1, 64), rng.choice([256, 512, 768, 1024, 2048, 2560])),
                      {"d_state": rng.choice([8, 16, 32]), "d_conv": rng.choice([2, 3, 4]),
                       "expand": rng.choice([1, 2]), "bytes_per_element": rng.choice([1, 2, 4])}))
    return cases


register(Question(
    id="10.state_bytes",
    title="Bytes of a Mamba model's generation state (batch_size, n_layer, d_model, d_state=16, "
          "d_conv=4, expand=2, bytes_per_element=2)",
    cases=_state_cases,
    reference=state_bytes_reference,
    hint="per block and sequence: ssm_state (d_inner, d_state) + conv_state (d_inner, d_conv); "
         "multiply by batch_size, n_layer and the bytes per element. The sequence length never appears.",
))


# --------------------------------------------------------------------------- 4. budget

def largest_d_model_reference(budget: int, d_state: int = 16, multiple: int = 16) -> int:
    """Largest d_model (a multiple of `multiple`) whose default Mamba block fits in `budget`; 0 if none."""
    return largest_fitting(lambda d_model: mamba_block_params_reference(d_model, d_state), budget, step=multiple)


def _budget_cases(rng: random.Random) -> list:
    cases = [((437_760,), {})]  # exactly the seed's block
    for _ in range(11):
        cases.append(((rng.randint(10_000, 30_000_000),), {"d_state": rng.choice([8, 16, 32]),
                                                           "multiple": rng.choice([8, 16, 64])}))
    return cases


register(Question(
    id="10.largest_d_model",
    title="Largest d_model (a multiple of `multiple`) whose Mamba block fits a parameter budget "
          "(budget, d_state=16, multiple=16)",
    cases=_budget_cases,
    reference=largest_d_model_reference,
    hint="the count grows with d_model, so try d_model = multiple, 2·multiple, … and keep the last one "
         "whose mamba_block_params(d_model, d_state) ≤ budget (return 0 if even the first is too big).",
))


# --------------------------------------------------------------------------- 5. spot the bug

def x_proj_out_features_reference(d_model: int, d_state: int = 16) -> int:
    """out_features of x_proj in mamba_simple.Mamba: dt_rank + 2·d_state."""
    from helpers.models.mamba import mamba_dims

    return mamba_dims(d_model, d_state)["dt_rank"] + 2 * d_state


def _xproj_cases(rng: random.Random) -> list:
    return [((256,), {})] + [((rng.randint(1, 4096),), {"d_state": rng.choice([4, 8, 16, 32, 64])})
                             for _ in range(15)]


register(Question(
    id="10.x_proj_out_features",
    title="Spot the bug: a student's x_proj outputs 3·d_state features (for A, B and C). "
          "Return the correct out_features (d_model, d_state=16)",
    cases=_xproj_cases,
    reference=x_proj_out_features_reference,
    hint="A is not projected from the input (it is the parameter A_log). x_proj produces the low-rank "
         "Δ (dt_rank = ceil(d_model/16) numbers) and B and C (d_state numbers each).",
))



# --------------------------------------------------------------------------- 6. which memory dominates

def kv_crossover_reference(d_model: int, attn_layers: int, mamba_layers: int, d_state: int = 16,
                           d_conv: int = 4, expand: int = 2) -> int:
    """Smallest sequence length at which a transformer's KV cache (attn_layers layers, n_head·head_dim =
    d_model; helpers.cost.kv_cache_bytes) holds MORE than a Mamba model's generation state (mamba_layers
    blocks of the same d_model), at the same batch size and precision (both cancel: one sequence, 1 byte)."""
    state = state_bytes_reference(1, mamba_layers, d_model, d_state, d_conv, expand, bytes_per_element=1)
    return largest_fitting(lambda seq_len: cost.kv_cache_bytes(attn_layers, 1, d_model, seq_len, 1, 1), state) + 1


def _crossover_cases(rng: random.Random) -> list:
    cases: list = [((768, 12, 24), {})]  # GPT-2 small's width and depth against twice as many Mamba blocks
    for _ in range(15):
        kwargs = {"d_state": rng.choice([8, 16, 32, 64]), "d_conv": rng.choice([2, 3, 4]), "expand": rng.choice([1, 2])}
        cases.append(((rng.choice([64, 256, 512, 768, 1024, 2048, 2560]), rng.randint(1, 48), rng.randint(1, 96)),
                      kwargs))
    return cases


register(Question(
    id="10.kv_crossover",
    title="From which sequence length does a transformer's KV cache outgrow a Mamba model's generation "
          "state? kv_crossover(d_model, attn_layers, mamba_layers, d_state=16, d_conv=4, expand=2)",
    cases=_crossover_cases,
    reference=kv_crossover_reference,
    hint="the Mamba state does not depend on the sequence length (your state_bytes); the KV cache grows by "
         "2·attn_layers·d_model numbers per token (keys AND values, n_head·head_dim = d_model). Batch size and "
         "bytes per element multiply both sides. Return the first seq_len whose cache is strictly larger.",
))


# --------------------------------------------------------------------------- 7. repair a module

def fixed_mamba_mixer_reference(d_model: int, expand: int, d_conv: int):
    """The part of a Mamba block before the SSM scan, repaired: (B, L, D) → (B, L, D).

    in_proj (D → 2·Di, no bias) → x, z; causal depthwise Conv1d over L on x
    (``groups=Di``: Di·K weights + Di biases; padding K − 1 then keep the first L); SiLU;
    gate by SiLU(z); out_proj (Di → D, no bias). Names, shapes and biases of
    ``helpers.models.mamba.MambaBlock`` (= state-spaces/mamba ``mamba_simple.Mamba``), without
    x_proj/dt_proj/A_log/D and the scan. Built under ``torch.device("meta")`` by the caller."""
    import torch.nn.functional as F
    from torch import nn

    Di = expand * d_model

    class MambaMixer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.in_proj = nn.Linear(d_model, 2 * Di, bias=False)                          # D → (x, z)
            self.conv1d = nn.Conv1d(Di, Di, d_conv, groups=Di, padding=d_conv - 1)          # (Di, 1, K) + Di
            self.out_proj = nn.Linear(Di, d_model, bias=False)                             # Di → D

        def forward(self, u):
            L = u.shape[1]
            x, z = self.in_proj(u).chunk(2, dim=-1)              # (B, L, Di), (B, L, Di)
            x = self.conv1d(x.transpose(1, 2))[..., :L]          # (B, Di, L)  causal: keep the first L
            x = F.silu(x).transpose(1, 2)                         # (B, L, Di)
            return self.out_proj(x * F.silu(z))                   # (B, L, D)

    return MambaMixer()


def _fixed_mamba_mixer_cases(rng: random.Random) -> list:
    return [((log_uniform(rng, 2, 192), rng.choice([1, 2, 2, 3, 4]), rng.choice([2, 3, 4, 4])), {})
            for _ in range(7)]


def _fixed_mamba_mixer_probe(d_model: int, expand: int, d_conv: int) -> dict:
    """B = 3 sequences of L = 7 tokens; 6 output values on fixed weights."""
    return {"input": [3, 7, d_model], "values": 6}


register(Question(
    id="10.fixed_mamba_mixer",
    title="Repair a broken nn.Module: return the fixed Mamba mixer (before the SSM)",
    cases=_fixed_mamba_mixer_cases,
    reference=fixed_mamba_mixer_reference,
    probe=_fixed_mamba_mixer_probe,
    hint="Mamba's convolution is depthwise: each of the d_inner channels has its own kernel of d_conv taps, "
         "so conv1d.weight is (d_inner, 1, d_conv) — Conv1d(d_inner, d_inner, d_conv, groups=d_inner, "
         "padding=d_conv - 1). Keep the names in_proj/conv1d/out_proj and the slice [..., :L].",
))
