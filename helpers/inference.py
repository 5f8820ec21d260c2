"""Inference cost as pure arithmetic: FLOPs of prefill and decode, the roofline, speculative decoding.

Chapter 15 (and tests/test_inference.py) checks every function here against a measurement:
FlopCounterMode on a Hugging Face Llama with a ``DynamicCache``, a timed ``generate`` loop, a
simulation of speculative sampling. Like `helpers.cost` this module never imports torch.

Glossary: B batch, T tokens in the prompt (prefill) or already in the cache (decode), L layers,
h query heads, hd head_dim (so h·hd is the attention width), P_mm the parameters of every matrix
product run per token (all Linear layers incl. the LM head; NOT the embedding lookup or the norms).

FLOPs follow FlopCounterMode's convention (2 per multiply-accumulate, matrix products only). The
attention term counts the full T×S score matrix, as FlopCounterMode does for a causal mask (a
fused kernel may skip the masked half; the count is what the kernel is asked to multiply).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from helpers._args import require_int
from helpers.cost import _bytes

__all__ = ["matmul_params", "prefill_flops", "decode_flops", "roofline_seconds", "decode_tokens_per_second",
           "arithmetic_intensity", "speculative_expected_tokens",
           "simulate_speculative_sampling"]


def _n(value: object, name: str, minimum: int = 0) -> int:
    return require_int(value, name, minimum=minimum)


def matmul_params(breakdown: dict) -> int:
    """P_mm of a `helpers.formulas.decoder_lm_params` breakdown: attention + MLP + router + the LM head.

    The LM head is a matrix product of V·d even when tied to the embedding (the breakdown then counts
    it 0, so it is taken from ``embed_tokens``); the embedding lookup and the norms multiply nothing.
    """
    head = breakdown["lm_head"] or breakdown["embed_tokens"]
    return breakdown["attention"] + breakdown["mlp"] + breakdown["router"] + head


def prefill_flops(matmul_params: int, num_hidden_layers: int, num_attention_heads: int, head_dim: int,
                  seq_len: int, batch_size: int = 1, *, logits_tokens: int | None = None,
                  vocab_size: int = 0, hidden_size: int = 0) -> int:
    """FLOPs of one forward pass over a T-token prompt (the prefill).

    ``B·(2·P_mm·T + 4·L·h·hd·T²)``: every token goes through every weight matrix once (2·P_mm), and
    each layer multiplies Q·Kᵀ (T×T scores of width hd per head) and scores·V — 2·2·T²·hd per head.
    With ``logits_tokens`` (generate() keeps the logits of the last token only), the LM head (vocab_size ×
    hidden_size, included in P_mm) runs on logits_tokens rows instead of T.
    """
    t, b = _n(seq_len, "seq_len"), _n(batch_size, "batch_size")
    p, L = _n(matmul_params, "matmul_params"), _n(num_hidden_layers, "num_hidden_layers")
    width = _n(num_attention_heads, "num_attention_heads", 1) * _n(head_dim, "head_dim")
    total = 2 * p * t + 4 * L * width * t * t
    if logits_tokens is not None:
        total -= 2 * vocab_size * hidden_size * (t - _n(logits_tokens, "logits_tokens"))
    return b * total


def decode_flops(matmul_params: int, num_hidden_layers: int, num_attention_heads: int, head_dim: int,
                 past_len: int, batch_size: int = 1) -> int:
    """FLOPs of ONE decode step: one new token per sequence attending to `past_len` cached tokens + itself.

    ``B·(2·P_mm + 4·L·h·hd·(T + 1))`` — the weights cost the same 2 FLOPs each as in training's 2N per
    token (Kaplan et al. 2020, arXiv:2001.08361 §2.1, Table 1), plus an attention term that grows with
    the context (the "4·L·T·d" of the chapter with d = h·hd).
    """
    t = _n(past_len, "past_len")
    return prefill_flops(matmul_params, num_hidden_layers, num_attention_heads, head_dim, 1, batch_size) \
        + _n(batch_size, "batch_size") * 4 * _n(num_hidden_layers, "num_hidden_layers") \
        * num_attention_heads * head_dim * t


def arithmetic_intensity(flops: float, bytes_moved: float) -> float:
    """FLOPs per byte read from memory (Williams et al. 2009, "Roofline", CACM 52(4))."""
    return flops / _bytes(bytes_moved, "bytes_moved")


def roofline_seconds(flops: float, bytes_moved: float, peak_flops: float, bandwidth: float) -> float:
    """Time of a step on the roofline: ``max(flops / peak_flops, bytes_moved / bandwidth)``.

    A step whose arithmetic intensity (flops/bytes) is below the ridge point peak_flops/bandwidth is
    memory-bound: its time is the bytes it reads divided by the bandwidth, whatever the FLOP/s.
    """
    return max(flops / _bytes(peak_flops, "peak_flops"), bytes_moved / _bytes(bandwidth, "bandwidth"))


def decode_tokens_per_second(weight_bytes: float, kv_bytes_per_sequence: float, batch_size: int,
                             bandwidth: float, *, flops_per_token: float = 0.0,
                             peak_flops: float | None = None) -> float:
    """Tokens per second of batched decoding predicted by the roofline.

    Each step reads every weight once and each sequence's KV cache once, and emits one token per
    sequence: ``B / max((W + B·KV) / bandwidth, B·F / peak)``. With peak_flops None (or F = 0) the
    compute roof is ignored: ``B · bandwidth / (W + B·KV)`` — at B = 1, bandwidth ÷ (weight bytes + KV
    bytes per token).
    """
    b = _n(batch_size, "batch_size", 1)
    moved = weight_bytes + b * kv_bytes_per_sequence
    seconds = moved / _bytes(bandwidth, "bandwidth")
    if peak_flops is not None:
        seconds = roofline_seconds(b * flops_per_token, moved, peak_flops, bandwidth)
    return b / seconds


def speculative_expected_tokens(alpha: float, gamma: int) -> float:
    """Expected tokens produced per target-model call in speculative decoding.

    With a draft proposing ``gamma`` tokens, each accepted independently with probability ``alpha``,
    the target keeps the accepted prefix plus one token of its own:
    ``E = (1 − α^(γ+1)) / (1 − α)`` (Leviathan et al. 2023, arXiv:2211.17192, eq. (1)); γ + 1 at α = 1.
    """
    g = _n(gamma, "gamma")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be a probability in [0, 1], got {alpha!r}")
    if alpha == 1:
        return float(g + 1)
    return (1 - alpha ** (g + 1)) / (1 - alpha)


def simulate_speculative_sampling(p: Sequence[float], q: Sequence[float], gamma: int, steps: int,
                                  seed: int = 0) -> tuple[float, float]:
    """Run speculative sampling (Leviathan et al. 2023, arXiv:2211.17192, Algorithm 1) `steps` times.

    The target's next-token distribution is `p` and the draft's `q` at every position (the i.i.d.
    assumption of the paper's §3.3). Each step the draft samples up to γ tokens x ~ q, each kept with
    probability min(1, p(x)/q(x)); at the first rejection the target samples from norm(max(0, p − q)),
    after γ acceptances it adds one token of its own. Returns (mean tokens per target call, measured
    acceptance rate); the acceptance rate should approach α = Σ min(p, q) and the mean
    `speculative_expected_tokens(α, γ)`.
    """
    rng = random.Random(seed)
    tokens = range(len(p))
    produced = accepted = proposed = 0
    for _ in range(_n(steps, "steps", 1)):
        n = 0
        while n < gamma:
            x = rng.choices(tokens, weights=q)[0]
            proposed += 1
            if rng.random() < min(1.0, p[x] / q[x]):
                n, accepted = n + 1, accepted + 1
            else:
                break
        produced += n + 1  # the correction (sampled from norm(max(0, p − q))) or the bonus token
    return produced / steps, accepted / proposed
