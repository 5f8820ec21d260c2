"""Shared building blocks of the exercise questions: case generators, the budget search, tolerance.

Every chapter module (``helpers/checks/chNN.py``) builds its questions from these instead of
re-writing them; no chapter module imports another chapter module.

- :func:`log_uniform` — a size drawn uniformly in log scale (1, 10, 100 and 1000 equally likely).
- :func:`largest_fitting` — the largest size whose count fits a budget (the reference answer of
  every "what is the largest … that fits" question), by one monotone search.
- :func:`budget_for_size` — a budget whose answer is a chosen size: exactly on that size's count,
  just below the next size's count, or strictly between the two counts.
- :func:`rnn_config_cases` — random ``nn.RNN``/``nn.LSTM``/``nn.GRU`` argument sets.
- :func:`close` / :func:`close_within` — the one float-tolerance comparison (a ``compare`` for
  :class:`helpers.checks.registry.Question`).

Everything here is pure Python (no torch): loading a chapter's questions stays cheap.

Example::

    count = lambda h: formulas.rnn_params("LSTM", 10, h)           # non-decreasing in h
    size = rng.randint(1, 256)
    budget = budget_for_size(rng, count, size, "between")          # count(size) <= budget < count(size + 1)
    assert largest_fitting(count, budget) == size
"""

from __future__ import annotations

import math
import random
from typing import Any, Callable, Literal

from helpers.checks.registry import Call

__all__ = ["log_uniform", "largest_fitting", "budget_for_size", "BUDGET_PLACES", "BudgetPlace",
           "rnn_config_cases", "sequence_model_cases", "image_classifier_probe", "close", "close_within", "Call"]

#: Where :func:`budget_for_size` puts a budget relative to the counts of `size` and the next size.
BudgetPlace = Literal["exact", "last", "between"]
BUDGET_PLACES: tuple[BudgetPlace, ...] = ("exact", "last", "between")

#: :func:`largest_fitting` gives up beyond this many steps (a count that never exceeds the budget).
_MAX_STEPS = 2 ** 62


# --------------------------------------------------------------------------- sizes

def log_uniform(rng: random.Random, low: int, high: int) -> int:
    """An int in [low, high] (1 <= low <= high), uniform in log scale: small and large sizes
    are equally likely, so a case set covers 1, 10, 100 and 1000 rather than mostly large sizes."""
    if not 1 <= low <= high:
        raise ValueError(f"log_uniform needs 1 <= low <= high, got low={low}, high={high}")
    return max(low, min(high, int(round(math.exp(rng.uniform(math.log(low), math.log(high)))))))


# --------------------------------------------------------------------------- budgets

def largest_fitting(count: Callable[[int], int], budget: int, *, step: int = 1) -> int:
    """The largest size n = k·step (k >= 1) with ``count(n) <= budget``; 0 if not even ``step`` fits.

    `count` must be non-decreasing in n (a parameter count, bytes, …). The search doubles k until
    the count exceeds the budget, then bisects: O(log n) calls of `count`, exact for any size
    (no float square roots). With ``step = groups`` the sizes are the multiples of groups.

    Raises:
        ValueError: if step < 1, or the count stays within the budget for 2**62 steps.
    """
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    if count(step) > budget:
        return 0
    lo, hi = 1, 2  # invariant: count(lo·step) <= budget; hi is the first candidate not yet known to fit
    while count(hi * step) <= budget:
        lo, hi = hi, hi * 2
        if hi > _MAX_STEPS:
            raise ValueError("the count never exceeds the budget: is it non-decreasing in the size?")
    while hi - lo > 1:  # invariant: count(lo·step) <= budget < count(hi·step)
        mid = (lo + hi) // 2
        if count(mid * step) <= budget:
            lo = mid
        else:
            hi = mid
    return lo * step


def budget_for_size(rng: random.Random, count: Callable[[int], int], size: int,
                    place: BudgetPlace = "between", *, step: int = 1) -> int:
    """A budget whose :func:`largest_fitting` answer is `size` (for a strictly increasing `count`).

    With ``low = count(size)`` and ``high = count(size + step)``:

    - ``"exact"``: exactly ``low`` (the budget is met to the unit);
    - ``"last"``: ``high - 1`` (one unit short of the next size);
    - ``"between"``: uniform in [low, high − 1] — anywhere from the size's count up to, not
      including, the next size's count (one ``rng.randint`` call; the other places draw nothing).

    Raises:
        ValueError: for an unknown place, or if ``count(size + step) <= count(size)`` (no budget
            has `size` as its answer).
    """
    low, high = count(size), count(size + step)
    if high <= low:
        raise ValueError(f"count({size + step}) = {high} is not above count({size}) = {low}")
    if place == "exact":
        return low
    if place == "last":
        return high - 1
    if place == "between":
        return rng.randint(low, high - 1)
    raise ValueError(f"place must be one of {BUDGET_PLACES}, got {place!r}")


def largest_fitting_all(*limits: tuple[Callable[[int], int], int]) -> int:
    """Largest size meeting EVERY (count, budget) limit: the smallest of their :func:`largest_fitting`
    answers (each count increasing in the size; 0 if size 1 already breaks one).

    A decreasing quantity that must stay above a floor (a feature map's side ≥ min_side) is the
    increasing count ``-side`` under the budget ``-min_side``.
    """
    if not limits:
        raise ValueError("largest_fitting_all needs at least one (count, budget) limit")
    return min(largest_fitting(count, budget) for count, budget in limits)


def two_limit_budgets(rng: random.Random, first: Callable[[int], int], second: Callable[[int], int], size: int,
                      *, exact: bool, spread: tuple[float, float] = (0.5, 2.0)) -> tuple[int, int]:
    """Budgets for a "fits two limits" question: the first limit's answer is `size` (strictly between two
    counts), the second's lands near it (`size` scaled by uniform(`spread`)), exactly on its count when
    `exact` — so either limit can be the one that binds.

    Draws, in order: the first budget, the spread factor, the second budget (a fixed order, so the same
    seed gives the same cases).
    """
    budget1 = budget_for_size(rng, first, size, "between")
    size2 = max(1, int(size * rng.uniform(*spread)))
    budget2 = budget_for_size(rng, second, size2, "exact" if exact else "between")
    return budget1, budget2


# --------------------------------------------------------------------------- recurrent layers

def rnn_config_cases(rng: random.Random, n: int, *, bidirectional_p: float,
                     max_size: int = 300) -> list[Call]:
    """`n` random argument sets ``((input_size, hidden_size), kwargs)`` for nn.RNN/LSTM/GRU.

    Each keyword is present only sometimes, so torch's defaults are exercised too: num_layers
    (1–4) in 70 % of the cases, bidirectional in 60 % (True with probability `bidirectional_p`),
    bias in 30 % (True or False equally). Sizes are uniform in [1, max_size].
    """
    cases: list[Call] = []
    for _ in range(n):
        kwargs: dict = {}
        if rng.random() < 0.7:
            kwargs["num_layers"] = rng.randint(1, 4)
        if rng.random() < 0.6:
            kwargs["bidirectional"] = rng.random() < bidirectional_p
        if rng.random() < 0.3:
            kwargs["bias"] = rng.random() < 0.5
        cases.append(((rng.randint(1, max_size), rng.randint(1, max_size)), kwargs))
    return cases


def sequence_model_cases(rng: random.Random, n: int = 8, *, max_size: int = 64,
                         max_outputs: int = 20) -> list[Call]:
    """`n` argument sets ``((input_size, hidden_size, outputs), {})`` for a small recurrent model with a
    Linear head (a classifier's classes, a tagger's tags): sizes log-uniform in [1, max_size] (so 1 and
    max_size both occur), outputs uniform in [2, max_outputs]. Small enough for output values on CPU."""
    return [((log_uniform(rng, 1, max_size), log_uniform(rng, 1, max_size), rng.randint(2, max_outputs)), {})
            for _ in range(n)]


# --------------------------------------------------------------------------- float answers

def close(expected: Any, got: Any, *, rel_tol: float = 1e-6, abs_tol: float = 1e-9) -> bool:
    """`got` equals `expected` within tolerance: numbers by :func:`math.isclose`, lists/tuples
    element by element with the same nesting and lengths. A bool, a string or None is never a
    number (``True`` does not pass for 1.0)."""
    if isinstance(expected, (list, tuple)):
        return (isinstance(got, (list, tuple)) and len(got) == len(expected)
                and all(close(e, g, rel_tol=rel_tol, abs_tol=abs_tol) for e, g in zip(expected, got)))
    if isinstance(got, bool) or not isinstance(got, (int, float)):
        return False
    return math.isclose(float(expected), float(got), rel_tol=rel_tol, abs_tol=abs_tol)


def close_within(rel_tol: float, abs_tol: float = 0.0) -> Callable[[Any, Any], bool]:
    """:func:`close` with other tolerances, as a ``Question.compare``: ``compare=close_within(1e-12)``."""
    def compare(expected: Any, got: Any) -> bool:
        return close(expected, got, rel_tol=rel_tol, abs_tol=abs_tol)

    compare.__doc__ = f"close(expected, got, rel_tol={rel_tol}, abs_tol={abs_tol})"
    return compare


def image_classifier_probe(channels: int, height: int, width: int, classes: int) -> dict:
    """The probe of a module answer that classifies images (02.fixed_cnn, 03.fixed_pool_cnn): a batch
    of 2 images of the case's size; 6 output values on fixed weights."""
    return {"input": [2, channels, height, width], "values": 6}
