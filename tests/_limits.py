"""Shared assertion for the "largest size under two limits" exercise questions."""

from __future__ import annotations

from collections.abc import Callable, Mapping


def binding_limit(answer: int, measured: Callable[[int], Mapping[str, int]], limits: Mapping[str, int]) -> str:
    """Assert that `answer` is the largest size meeting every limit, as torch measures it.

    `measured(n)` returns, per limit name, what the real torch module of size n takes (parameters,
    saved activations, bytes, …); `limits` maps the same names to the budgets. The answer's
    measurements are all within their budgets (unless the answer is 0: nothing fits), and size
    answer + 1 exceeds at least one. Returns the name of a limit that size answer + 1 breaks, so a
    test can check that every limit decides some case.
    """
    if answer:
        within = measured(answer)
        assert all(within[name] <= budget for name, budget in limits.items()), (answer, within, limits)
    beyond = measured(answer + 1)
    broken = [name for name, budget in limits.items() if beyond[name] > budget]
    assert broken, f"size {answer + 1} still meets every limit: {beyond} within {limits}"
    return broken[0]
