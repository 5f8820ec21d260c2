"""A sparse mixture-of-experts feed-forward layer (Mixtral-style top-k routing), with every shape.

Glossary of dimension letters:
    B   batch size
    T   sequence length
    N   B·T, the number of tokens routed (each independently)
    D   hidden_size, the width of the residual stream
    E   num_experts (Mixtral: num_local_experts = 8)
    k   top_k, the experts each token uses (Mixtral: num_experts_per_tok = 2)
    N_e the number of tokens routed to expert e (Σ_e N_e = N·k)

A router (``gate``: Linear(D, E, bias=False), weight (E, D)) scores the E experts for every
token; each token keeps its k best, their softmax probabilities renormalised to sum to 1, and the
layer's output is the weighted sum of those k experts' outputs (Jiang et al. 2024, "Mixtral of
Experts", arXiv:2401.04088, §2.1, eq. 1–2; Shazeer et al. 2017, arXiv:1701.06538). All E experts
are stored (memory follows the TOTAL parameters); a token runs through k of them (FLOPs follow
the ACTIVE parameters: router + k/E of the experts).

Mirrors Hugging Face ``transformers.models.mixtral.modeling_mixtral.MixtralSparseMoeBlock``
(router softmax in float32 over all E experts, top-k, renormalise) and its attribute names:
``gate`` (the router, ``gate.weight`` (E, D)), ``experts``, ``top_k``, plus ``num_experts``.
Deviations: the experts are an ``nn.ModuleList`` of ordinary modules (any expert works: the
course uses `helpers.models.llama.LlamaMLP`, a SwiGLU), where transformers ≥ 5 fuses them into
two 3-D parameters ``experts.gate_up_proj`` (E, 2F, D) and ``experts.down_proj`` (E, D, F) — the
same numbers of parameters. Every expert is called, also on zero tokens, so `summary` shows
each expert's N_e. No router jitter noise and no load-balancing auxiliary loss. The routing is
data-dependent, so the layer cannot run on the ``meta`` device (`summary` runs it for real).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["SparseMoE"]


class SparseMoE(nn.Module):
    """Top-k routed experts: (B, T, D) → (B, T, D), each token through `top_k` of `num_experts`.

    Args:
        hidden_size: D, the width of each token vector (the router's input).
        num_experts: E, how many experts are stored.
        top_k: k, how many experts each token uses (1 ≤ k ≤ E).
        make_expert: builds one expert, a module (N_e, D) → (N_e, D); called E times.

    Parameters: ``E·D`` (router) ``+ E·P_expert`` in total; active per token ``E·D + k·P_expert``.
    """

    def __init__(self, hidden_size: int, num_experts: int, top_k: int,
                 make_expert: Callable[[], nn.Module]) -> None:
        super().__init__()
        if not 1 <= top_k <= num_experts:
            raise ValueError(f"top_k={top_k} must be between 1 and num_experts={num_experts}: a token "
                             f"is routed to at least one and at most all of the experts")
        self.num_experts, self.top_k = num_experts, top_k
        self.gate = nn.Linear(hidden_size, num_experts, bias=False)  # (E, D): the router
        self.experts = nn.ModuleList(make_expert() for _ in range(num_experts))

    def route(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Tokens x (N, D) → routing weights (N, k) (rows sum to 1) and expert indices (N, k)."""
        logits = self.gate(x)  # (N, E)
        probs = F.softmax(logits, dim=-1, dtype=torch.float32)  # (N, E)
        weights, indices = probs.topk(self.top_k, dim=-1)  # (N, k), (N, k)
        weights = weights / weights.sum(dim=-1, keepdim=True)  # (N, k), renormalised over the k kept
        return weights.to(x.dtype), indices

    def forward(self, x: Tensor) -> Tensor:
        B, T, D = x.shape
        x = x.reshape(B * T, D)  # (N, D): routing is per token
        weights, indices = self.route(x)  # (N, k), (N, k)
        out = torch.zeros_like(x)  # (N, D)
        for e, expert in enumerate(self.experts):
            token, slot = torch.where(indices == e)  # (N_e,), (N_e,): the tokens that chose expert e
            y = expert(x[token]) * weights[token, slot, None]  # (N_e, D)
            out.index_add_(0, token, y)  # (N, D): add each token's share
        return out.view(B, T, D)  # (B, T, D)

    def extra_repr(self) -> str:
        return f"num_experts={self.num_experts}, top_k={self.top_k}"
