"""A readable Mamba block (selective state-space model), plus its closed-form parameter count.

Glossary (mamba-minimal style):
    B   batch size                                  (``b`` in the paper's Algorithm 2)
    L   sequence length                             (``L``)
    D   d_model, the residual-stream width          (the block maps (B, L, D) → (B, L, D))
    E   expand, the expansion factor (2)
    Di  d_inner = E·D, the width where the convolution and the scan run  (``D`` in Algorithm 2)
    N   d_state, size of the SSM state per channel (16)
    K   d_conv, kernel width of the causal depthwise convolution (4)
    R   dt_rank, rank of the Δ projection, ceil(D / 16) by default
    Δ   input-dependent step size (B, L, Di);  A (Di, N) fixed per channel, negative real;
        B, C (B, L, N) input-dependent ("selective"); the skip parameter is ``D_skip`` in comments
        (the tensor is named ``D`` as in the reference, not to be confused with d_model)

What it mirrors:
    A. Gu, T. Dao, "Mamba: Linear-Time Sequence Modeling with Selective State Spaces",
    arXiv:2312.00752 (Section 3, Algorithm 2, Fig. 3).
    state-spaces/mamba ``mamba_ssm/modules/mamba_simple.py``, class ``Mamba``: identical
    parameter names and shapes (in_proj, conv1d, x_proj, dt_proj, A_log, D, out_proj), the same
    defaults (d_state=16, d_conv=4, expand=2, dt_rank="auto" = ceil(d_model/16), conv_bias=True,
    bias=False) and the same initialisation rules (S4D-real A, D = 1, Δ bias = softplus⁻¹ of a
    log-uniform dt in [dt_min, dt_max]) — so a state_dict loads across.
    johnma2006/mamba-minimal ``model.py`` (``MambaBlock``, ``selective_scan``): the readable
    sequential scan.

Deviations:
    * The scan is a plain Python loop over L (sequential, O(L) steps); the reference runs a fused
      CUDA kernel (``selective_scan_fn`` / ``mamba_inner_fn``) and a causal-conv1d kernel. The
      maths is the same; speed and memory are not (this version materialises (B, Di, N) per step
      only, but autograd keeps every step).
    * No ``inference_params`` cache object: ``allocate_inference_cache`` returns the two state
      tensors and ``step`` updates them — the recurrence the reference uses for generation.
    * dt_init="random" only; no ``layer_idx``, no fused kernels, no dtype/device factory kwargs
      beyond what ``torch.device(...)`` context managers give.

Pure arithmetic (no torch call): ``mamba_dims``, ``mamba_block_params_breakdown``,
``mamba_block_params``, ``mamba_state_numel``, ``mamba_block_flops``, ``mamba_seed_estimate``.
"""

from __future__ import annotations

import math
from typing import Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from helpers import formulas

__all__ = [
    "MambaBlock", "selective_scan",
    "mamba_dims", "mamba_block_params_breakdown", "mamba_block_params", "mamba_state_numel",
    "mamba_block_flops", "mamba_seed_estimate",
]


# --------------------------------------------------------------------------- pure arithmetic

def mamba_dims(d_model: int, d_state: int = 16, d_conv: int = 4, expand: float = 2,
               dt_rank: Union[int, str] = "auto") -> dict[str, int]:
    """The derived dimensions, as mamba_simple.Mamba computes them.

    d_inner = int(expand · d_model);  dt_rank = ceil(d_model / 16) when "auto".

    >>> mamba_dims(256)
    {'d_model': 256, 'd_inner': 512, 'd_state': 16, 'd_conv': 4, 'dt_rank': 16}
    """
    for name, v in (("d_model", d_model), ("d_state", d_state), ("d_conv", d_conv)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    d_inner = int(expand * d_model)
    if d_inner < 1:
        raise ValueError(f"expand · d_model must be ≥ 1, got {expand} · {d_model}")
    if dt_rank == "auto":
        rank = math.ceil(d_model / 16)
    elif isinstance(dt_rank, int) and not isinstance(dt_rank, bool) and dt_rank >= 1:
        rank = dt_rank
    else:
        raise ValueError(f"dt_rank must be 'auto' or a positive int, got {dt_rank!r}")
    return {"d_model": d_model, "d_inner": d_inner, "d_state": d_state, "d_conv": d_conv,
            "dt_rank": rank}


def mamba_block_params_breakdown(d_model: int, d_state: int = 16, d_conv: int = 4,
                                 expand: float = 2, dt_rank: Union[int, str] = "auto",
                                 conv_bias: bool = True, bias: bool = False) -> dict[str, int]:
    """Per-tensor counts of mamba_simple.Mamba (and `MambaBlock`), keyed by parameter name.

    ======================  ==========================  ======================
    in_proj.weight          (2·Di, D)                   Linear D → 2·Di (x and gate z)
    in_proj.bias            (2·Di,)        only if bias
    conv1d.weight           (Di, 1, K)                  depthwise: groups = Di
    conv1d.bias             (Di,)          if conv_bias
    x_proj.weight           (R + 2N, Di)                Linear Di → (Δ_low, B, C), no bias
    dt_proj.weight/bias     (Di, R), (Di,)              Linear R → Di, always a bias
    A_log                   (Di, N)                     A = −exp(A_log), not input-dependent
    D                       (Di,)                       skip connection u·D
    out_proj.weight         (D, Di)                     Linear Di → D
    out_proj.bias           (D,)           only if bias
    ======================  ==========================  ======================
    """
    d = mamba_dims(d_model, d_state, d_conv, expand, dt_rank)
    Dm, Di, N, K, R = d["d_model"], d["d_inner"], d["d_state"], d["d_conv"], d["dt_rank"]
    parts: dict[str, int] = {}
    for name, n in formulas.linear_params_breakdown(Dm, 2 * Di, bias=bias).items():
        parts[f"in_proj.{name}"] = n
    for name, n in formulas.conv_params_breakdown(Di, Di, K, groups=Di, bias=conv_bias,
                                                  dim=1).items():
        parts[f"conv1d.{name}"] = n
    parts["x_proj.weight"] = formulas.linear_params(Di, R + 2 * N, bias=False)
    for name, n in formulas.linear_params_breakdown(R, Di, bias=True).items():
        parts[f"dt_proj.{name}"] = n
    parts["A_log"] = Di * N
    parts["D"] = Di
    for name, n in formulas.linear_params_breakdown(Di, Dm, bias=bias).items():
        parts[f"out_proj.{name}"] = n
    return parts


def mamba_block_params(d_model: int, d_state: int = 16, d_conv: int = 4, expand: float = 2,
                       dt_rank: Union[int, str] = "auto", conv_bias: bool = True,
                       bias: bool = False) -> int:
    """Parameters of one mamba_simple.Mamba block (= `MambaBlock`), closed form:

        2·Di·D  +  Di·K + Di  +  Di·(R + 2N)  +  R·Di + Di  +  Di·N  +  Di  +  Di·D
        (in_proj) (conv1d)     (x_proj)         (dt_proj)    (A_log) (D)   (out_proj)

    with Di = expand·D, R = ceil(D/16); ``+ 2·Di + D`` when bias=True, ``− Di`` when
    conv_bias=False.

    >>> mamba_block_params(256)
    437760
    """
    return sum(mamba_block_params_breakdown(d_model, d_state, d_conv, expand, dt_rank, conv_bias,
                                            bias).values())


def mamba_state_numel(batch_size: int, d_model: int, d_state: int = 16, d_conv: int = 4,
                      expand: float = 2) -> dict[str, int]:
    """Elements of the recurrent inference state of one block — independent of L.

    ssm_state (B, Di, N) and conv_state (B, Di, K), as allocate_inference_cache allocates them.
    """
    d = mamba_dims(d_model, d_state, d_conv, expand)
    ssm = batch_size * d["d_inner"] * d_state
    conv = batch_size * d["d_inner"] * d_conv
    return {"ssm_state": ssm, "conv_state": conv, "total": ssm + conv}


def mamba_block_flops(batch_size: int, seq_len: int, d_model: int, d_state: int = 16,
                      d_conv: int = 4, expand: float = 2, dt_rank: Union[int, str] = "auto", *,
                      include_scan: bool = False) -> int:
    """FLOPs of one `MambaBlock` forward pass on (B, L, D), 2 per multiply-accumulate.

    With include_scan=False this is exactly what ``torch.utils.flop_counter.FlopCounterMode``
    (and so ``helpers.trace.summary``) reports: matrix products and the convolution only::

        in_proj 2·BL·D·2Di + conv1d 2·B·Di·(L+K−1)·K + x_proj 2·BL·Di·(R+2N)
        + dt_proj 2·BL·R·Di + out_proj 2·BL·Di·D

    (the causal conv is computed on L + K − 1 positions, then cut to L). include_scan=True adds
    the element-wise work of the scan, which FlopCounterMode does not count: per token and
    channel, 7·N + 3 operations (Δ·A, exp, Ā·h, +, ·B, ·C, the sum over N; Δ·u, the D skip).
    Every term is linear in L.
    """
    d = mamba_dims(d_model, d_state, d_conv, expand, dt_rank)
    Di, N, K, R = d["d_inner"], d_state, d_conv, d["dt_rank"]
    BL = batch_size * seq_len
    flops = (2 * BL * d_model * 2 * Di + 2 * batch_size * Di * (seq_len + K - 1) * K
             + 2 * BL * Di * (R + 2 * N) + 2 * BL * R * Di + 2 * BL * Di * d_model)
    if include_scan:
        flops += BL * Di * (7 * N + 3)
    return flops


def mamba_seed_estimate(d_model: int = 256, d_state: int = 16, d_conv: int = 4,
                        expand: int = 2) -> dict[str, int]:
    """The course seed's "conceptual" count, term by term, exactly as the seed computes it
    (kept to compare with the exact count — it is NOT the count of any implementation).
    """
    Di = d_model * expand
    return {
        "in_proj (2 Linear D→Di with bias)": 2 * (d_model * Di + Di),
        "conv1d (depthwise + bias)": Di * d_conv + Di,
        "Δt projection (~2·Di)": 2 * Di,
        "A, B, C projections 3·(Di·N + N)": 3 * (Di * d_state + d_state),
        "out_proj (Di→D with bias)": Di * d_model + d_model,
    }


# --------------------------------------------------------------------------- the scan

def selective_scan(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                   C: torch.Tensor, D: torch.Tensor) -> torch.Tensor:
    """The selective scan (paper Algorithm 2), sequentially over L.

    Discretisation (zero-order hold for A, Euler for B, as the reference):
        Ā_t = exp(Δ_t · A)                       (B, Di, N)
        h_t = Ā_t ⊙ h_{t−1} + (Δ_t · u_t) ⊗ B_t  (B, Di, N)
        y_t = h_t · C_t + D_skip ⊙ u_t           (B, Di)

    Args:
        u: (B, L, Di) input;  delta: (B, L, Di), already positive (softplus applied);
        A: (Di, N);  B, C: (B, L, N);  D: (Di,).
    Returns:
        y: (B, L, Di).
    """
    Bsz, L, Di = u.shape
    N = A.shape[1]
    h = u.new_zeros(Bsz, Di, N)  # (B, Di, N)  the state: all the block remembers of the past
    ys = []
    for t in range(L):
        dA = torch.exp(delta[:, t, :, None] * A)  # (B, Di, N)
        dBu = (delta[:, t, :] * u[:, t, :])[:, :, None] * B[:, t, None, :]  # (B, Di, N)
        h = dA * h + dBu  # (B, Di, N)
        ys.append((h * C[:, t, None, :]).sum(-1))  # (B, Di)
    y = torch.stack(ys, dim=1) if ys else u.new_zeros(Bsz, 0, Di)  # (B, L, Di)
    return y + u * D  # (B, L, Di)


class MambaBlock(nn.Module):
    """One Mamba mixer block: (B, L, D) → (B, L, D), parameter layout of mamba_simple.Mamba.

    x ─ in_proj ─┬─ x ─ causal depthwise conv1d ─ SiLU ─ x_proj → (Δ_low, B, C) ─ scan ─┐
                 └─ z ─────────────────────────── SiLU ────────────────── (gate) ⊙ ──────┴─ out_proj

    Args:
        d_model: D.  d_state: N.  d_conv: K.  expand: E (Di = E·D).
        dt_rank: R, "auto" = ceil(D / 16).  conv_bias: bias of conv1d.  bias: of in/out_proj.
        dt_min, dt_max, dt_scale, dt_init_floor: initialisation of Δ, as the reference.
    """

    def __init__(self, d_model: int, d_state: int = 16, d_conv: int = 4, expand: float = 2,
                 dt_rank: Union[int, str] = "auto", dt_min: float = 0.001, dt_max: float = 0.1,
                 dt_scale: float = 1.0, dt_init_floor: float = 1e-4, conv_bias: bool = True,
                 bias: bool = False) -> None:
        super().__init__()
        dims = mamba_dims(d_model, d_state, d_conv, expand, dt_rank)
        self.d_model, self.d_state, self.d_conv = d_model, d_state, d_conv
        self.expand = expand
        self.d_inner, self.dt_rank = dims["d_inner"], dims["dt_rank"]
        Di, N, R = self.d_inner, d_state, self.dt_rank

        self.in_proj = nn.Linear(d_model, 2 * Di, bias=bias)  # D → (x, z)
        self.conv1d = nn.Conv1d(Di, Di, d_conv, groups=Di, padding=d_conv - 1, bias=conv_bias)
        self.x_proj = nn.Linear(Di, R + 2 * N, bias=False)  # Di → (Δ_low, B, C)
        self.dt_proj = nn.Linear(R, Di, bias=True)  # R → Di
        self.A_log = nn.Parameter(torch.empty(Di, N))
        self.D = nn.Parameter(torch.empty(Di))
        self.out_proj = nn.Linear(Di, d_model, bias=bias)
        self._init_ssm(dt_min, dt_max, dt_scale, dt_init_floor)

    @torch.no_grad()
    def _init_ssm(self, dt_min: float, dt_max: float, dt_scale: float, dt_init_floor: float) -> None:
        """The reference's initialisation (values matter for behaviour, not for counts)."""
        std = self.dt_rank ** -0.5 * dt_scale
        nn.init.uniform_(self.dt_proj.weight, -std, std)
        # Δ = softplus(dt_proj bias) starts log-uniform in [dt_min, dt_max]
        dt = torch.exp(torch.rand(self.d_inner) * (math.log(dt_max) - math.log(dt_min))
                       + math.log(dt_min)).clamp(min=dt_init_floor)  # (Di,)
        self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # softplus⁻¹(dt)
        # S4D-real: A[:, n] = −(n + 1) for every channel
        A = torch.arange(1, self.d_state + 1, dtype=torch.float32).expand(self.d_inner, -1)
        self.A_log.copy_(torch.log(A))  # (Di, N)
        self.D.fill_(1.0)  # (Di,)

    def ssm_inputs(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """From the convolved activations x (B, L, Di) to the scan's (Δ, A, B, C)."""
        N, R = self.d_state, self.dt_rank
        A = -torch.exp(self.A_log.float())  # (Di, N)  negative: the state decays
        x_dbl = self.x_proj(x)  # (B, L, R + 2N)
        dt, Bm, Cm = x_dbl.split([R, N, N], dim=-1)  # (B, L, R), (B, L, N), (B, L, N)
        delta = F.softplus(self.dt_proj(dt))  # (B, L, Di)  positive step sizes
        return delta, A, Bm, Cm

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """hidden_states: (B, L, D) → (B, L, D)."""
        Bsz, L, _ = hidden_states.shape
        xz = self.in_proj(hidden_states)  # (B, L, 2·Di)
        x, z = xz.chunk(2, dim=-1)  # (B, L, Di), (B, L, Di)
        x = self.conv1d(x.transpose(1, 2))[..., :L]  # (B, Di, L)  causal: keep the first L
        x = F.silu(x).transpose(1, 2)  # (B, L, Di)
        delta, A, Bm, Cm = self.ssm_inputs(x)
        y = selective_scan(x, delta, A, Bm, Cm, self.D.float())  # (B, L, Di)
        y = y * F.silu(z)  # (B, L, Di)  gate
        return self.out_proj(y)  # (B, L, D)

    # ---- recurrent inference: constant memory per generated token
    def allocate_inference_cache(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero states: conv_state (B, Di, K) and ssm_state (B, Di, N) — sizes independent of L."""
        w = self.out_proj.weight
        conv_state = w.new_zeros(batch_size, self.d_inner, self.d_conv)  # (B, Di, K)
        ssm_state = w.new_zeros(batch_size, self.d_inner, self.d_state)  # (B, Di, N)
        return conv_state, ssm_state

    def step(self, hidden_states: torch.Tensor, conv_state: torch.Tensor,
             ssm_state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One token: hidden_states (B, 1, D) → (B, 1, D); returns the updated states
        (new tensors; the reference updates them in place)."""
        xz = self.in_proj(hidden_states[:, 0])  # (B, 2·Di)
        x, z = xz.chunk(2, dim=-1)  # (B, Di), (B, Di)
        conv_state = torch.cat([conv_state[:, :, 1:], x[:, :, None]], dim=-1)  # (B, Di, K)
        x = (conv_state * self.conv1d.weight[:, 0, :]).sum(-1)  # (B, Di)
        if self.conv1d.bias is not None:
            x = x + self.conv1d.bias  # (B, Di)
        x = F.silu(x)  # (B, Di)
        delta, A, Bm, Cm = self.ssm_inputs(x[:, None, :])  # (B, 1, Di), (Di, N), (B, 1, N) ×2
        dA = torch.exp(delta[:, 0, :, None] * A)  # (B, Di, N)
        ssm_state = dA * ssm_state + (delta[:, 0] * x)[:, :, None] * Bm[:, 0, None, :]  # (B, Di, N)
        y = (ssm_state * Cm[:, 0, None, :]).sum(-1) + self.D * x  # (B, Di)
        y = y * F.silu(z)  # (B, Di)
        return self.out_proj(y)[:, None, :], conv_state, ssm_state  # (B, 1, D)
