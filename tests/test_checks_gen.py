"""helpers.checks._gen: the shared case generators, the budget search (against brute force and
real torch counts) and the float tolerance."""

from __future__ import annotations

import json
import math
import random

import pytest
from hypothesis import given, settings, strategies as st
from torch import nn

from helpers import formulas
from helpers.checks._gen import (BUDGET_PLACES, budget_for_size, close, close_within, largest_fitting,
                                 largest_fitting_all, log_uniform, rnn_config_cases, two_limit_budgets)
from helpers.counting import count_params


def brute_force_largest(count, budget: int, step: int) -> int:
    """Walk k = 1, 2, … while the (non-decreasing) count fits: the last k·step that fits, 0 if none."""
    k = 0
    while count((k + 1) * step) <= budget:
        k += 1
    return k * step


# --------------------------------------------------------------------------- largest_fitting

@settings(max_examples=150, deadline=None)
@given(a=st.integers(0, 50), b=st.integers(0, 200), c=st.integers(0, 1000), plateau=st.integers(1, 3),
       step=st.integers(1, 8), budget=st.integers(0, 20_000))
def test_largest_fitting_equals_brute_force_on_non_decreasing_counts(a, b, c, plateau, step, budget):
    def count(n: int) -> int:  # a quadratic with flat stretches of `plateau` sizes: non-decreasing
        m = n // plateau
        return a * m * m + b * m + c + m

    assert largest_fitting(count, budget, step=step) == brute_force_largest(count, budget, step)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 200), st.integers(1, 3), st.booleans(), st.integers(0, 2_000_000))
def test_largest_fitting_on_real_lstm_counts(input_size, num_layers, bidirectional, budget):
    def count(h: int) -> int:
        return formulas.rnn_params("LSTM", input_size, h, num_layers, bidirectional=bidirectional)

    h = largest_fitting(count, budget)
    if h == 0:
        assert count(1) > budget
    else:  # torch's own module of that size fits, one unit wider does not
        torch_count = lambda n: count_params(nn.LSTM(input_size, n, num_layers, bidirectional=bidirectional,  # noqa: E731
                                                     device="meta"))
        assert torch_count(h) <= budget < torch_count(h + 1)


def test_largest_fitting_edges():
    assert largest_fitting(lambda n: n, 0) == 0
    assert largest_fitting(lambda n: n, 1) == 1
    assert largest_fitting(lambda n: n, 10**18) == 10**18          # exact far beyond float precision
    assert largest_fitting(lambda n: n * n, 10**30 - 1) == 10**15 - 1
    assert largest_fitting(lambda n: 10 * n, 99, step=4) == 8       # 4 → 40, 8 → 80, 12 → 120
    assert largest_fitting(lambda n: 10 * n, 39, step=4) == 0
    with pytest.raises(ValueError, match="step"):
        largest_fitting(lambda n: n, 5, step=0)
    with pytest.raises(ValueError, match="never exceeds"):
        largest_fitting(lambda n: 7, 10)


# --------------------------------------------------------------------------- budget_for_size

@settings(max_examples=100, deadline=None)
@given(st.integers(1, 4096), st.integers(1, 1000), st.integers(1, 4096), st.integers(1, 4),
       st.sampled_from(BUDGET_PLACES), st.integers(0, 2**32))
def test_budget_for_size_has_that_size_as_answer(fin, fout, size, step, place, seed):
    def count(h: int) -> int:  # in → h → h → out, as chapter 01 asks
        return formulas.linear_params(fin, h) + formulas.linear_params(h, h) + formulas.linear_params(h, fout)

    size *= step
    budget = budget_for_size(random.Random(seed), count, size, place, step=step)
    assert count(size) <= budget < count(size + step)
    assert largest_fitting(count, budget, step=step) == size
    if place == "exact":
        assert budget == count(size)
    if place == "last":
        assert budget == count(size + step) - 1


def test_budget_for_size_between_covers_the_whole_gap_and_rejects_flat_counts():
    rng = random.Random(0)
    seen = {budget_for_size(rng, lambda n: 3 * n, 5, "between") for _ in range(300)}
    assert seen == {15, 16, 17}
    assert budget_for_size(rng, lambda n: 3 * n, 5, "exact") == 15
    assert budget_for_size(rng, lambda n: 3 * n, 5, "last") == 17
    with pytest.raises(ValueError, match="not above"):
        budget_for_size(rng, lambda n: 7, 5)
    with pytest.raises(ValueError, match="place"):
        budget_for_size(rng, lambda n: n, 5, "middle")  # type: ignore[arg-type]


def test_exact_and_last_draw_nothing_from_the_rng():
    rng, twin = random.Random(7), random.Random(7)
    budget_for_size(rng, lambda n: n * n, 9, "exact")
    budget_for_size(rng, lambda n: n * n, 9, "last")
    assert rng.random() == twin.random()


# --------------------------------------------------------------------------- log_uniform

@given(st.integers(1, 10**6), st.integers(0, 10**6), st.integers(0, 2**32))
def test_log_uniform_stays_in_range(low, extra, seed):
    value = log_uniform(random.Random(seed), low, low + extra)
    assert isinstance(value, int) and low <= value <= low + extra


def test_log_uniform_is_uniform_in_log_scale():
    rng = random.Random(0)
    draws = [log_uniform(rng, 1, 10_000) for _ in range(4000)]
    decades = [sum(10**d <= x < 10 ** (d + 1) for x in draws) for d in range(4)]
    # each decade [1, 10), [10, 100), … holds about a quarter of the draws (a uniform draw would
    # put 90 % in the last one)
    assert all(800 <= n <= 1200 for n in decades), decades
    with pytest.raises(ValueError):
        log_uniform(rng, 0, 5)
    with pytest.raises(ValueError):
        log_uniform(rng, 6, 5)


# --------------------------------------------------------------------------- rnn_config_cases

@pytest.mark.parametrize("p", [0.6, 0.7])
def test_rnn_config_cases_build_real_modules_and_follow_the_probability(p):
    cases = rnn_config_cases(random.Random(1), 400, bidirectional_p=p)
    assert len(cases) == 400 and json.loads(json.dumps(cases)) == [[list(a), k] for a, k in cases]
    for args, kwargs in cases[:40]:  # every case is a valid torch configuration
        assert count_params(nn.LSTM(*args, **kwargs, device="meta")) == formulas.rnn_params("LSTM", *args, **kwargs)
    flags = [k["bidirectional"] for _, k in cases if "bidirectional" in k]
    assert 0.5 < len(flags) / len(cases) < 0.7                 # the keyword is present ~60 % of the time
    assert abs(sum(flags) / len(flags) - p) < 0.08             # and True with probability p
    assert any("num_layers" not in k for _, k in cases) and any("bias" in k for _, k in cases)
    assert all(1 <= a <= 300 for args, _ in cases for a in args)


def test_rnn_config_cases_are_the_seeds_cases():
    assert rnn_config_cases(random.Random(3), 5, bidirectional_p=0.6) == \
        rnn_config_cases(random.Random(3), 5, bidirectional_p=0.6)
    assert rnn_config_cases(random.Random(3), 20, bidirectional_p=0.6) != \
        rnn_config_cases(random.Random(4), 20, bidirectional_p=0.6)


# --------------------------------------------------------------------------- close

def test_close_compares_nested_numbers_within_tolerance():
    assert close([1.0, [2.0, 3.0]], [1.0 + 1e-9, [2, 3.0000001]])
    assert close(0.0, 1e-10) and not close(0.0, 1e-8)
    assert not close([1.0, 2.0], [1.0])                        # length
    assert not close([1.0, [2.0]], [1.0, 2.0])                 # nesting
    assert not close(1.0, True) and not close(1.0, "1.0") and not close(1.0, None)
    assert not close(1.0, 1.001)
    assert close((1.5, 2.5), [1.5, 2.5])                       # tuples and lists alike
    assert close(math.pi, 3.14159265, rel_tol=1e-8)


def test_close_within_sets_the_tolerance():
    strict = close_within(1e-12)
    assert strict(3_369_207_808.0, 3_369_207_808) and not strict(3_369_207_808.0, 3_369_207_809)
    assert not strict(0.5, True)
    assert close(3_369_207_808.0, 3_369_207_809)               # the default 1e-6 would accept it


# --------------------------------------------------------------------------- two limits at once

@settings(max_examples=80, deadline=None)
@given(i=st.integers(1, 40), h=st.integers(1, 300), layers=st.integers(1, 3), budget1=st.integers(0, 400_000),
       budget2=st.integers(0, 3_000))
def test_largest_fitting_all_is_the_largest_size_meeting_every_limit(i, h, layers, budget1, budget2):
    """Brute force over real nn.RNN parameter counts and a second, linear limit (e.g. activations)."""
    def params(n: int) -> int:
        return count_params(nn.RNN(i, n, layers)) if n <= h else formulas.rnn_params("RNN", i, n, layers)

    def activations(n: int) -> int:
        return 7 * n

    want = 0
    while params(want + 1) <= budget1 and activations(want + 1) <= budget2:
        want += 1
    assert largest_fitting_all((params, budget1), (activations, budget2)) == want


def test_largest_fitting_all_with_a_floor_and_no_limits():
    side = lambda n: 512 // 2 ** n  # noqa: E731 — a map halved n times must keep side >= 16
    assert largest_fitting_all((lambda n: -side(n), -16), (lambda n: n * 100, 10_000)) == 5
    with pytest.raises(ValueError):
        largest_fitting_all()


@pytest.mark.parametrize("exact", [True, False])
def test_two_limit_budgets_put_each_limit_at_its_own_answer(exact):
    rng = random.Random(3)
    first = lambda n: formulas.linear_params(64, n)  # noqa: E731
    second = lambda n: 2 * n * n  # noqa: E731
    answers = set()
    for _ in range(200):
        size = rng.randint(1, 100)
        state = rng.getstate()
        b1, b2 = two_limit_budgets(rng, first, second, size, exact=exact)
        assert largest_fitting(first, b1) == size
        size2 = largest_fitting(second, b2)
        assert size // 2 - 1 <= size2 <= 2 * size and (not exact or b2 == second(size2))
        answers.add(largest_fitting_all((first, b1), (second, b2)) == size)
        rng2 = random.Random()
        rng2.setstate(state)
        assert two_limit_budgets(rng2, first, second, size, exact=exact) == (b1, b2), "same seed, same budgets"
    assert answers == {True, False}, "either limit must be able to bind"
