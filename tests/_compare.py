"""Shared assertion for property tests: helper and torch must agree, including on failure."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

TORCH_ERRORS = (ValueError, RuntimeError, AssertionError, TypeError, IndexError)


def agree(ours: Callable[[], Any], theirs: Callable[[], Any]) -> Any:
    """Run both; assert they both succeed with equal results or both fail.

    Our helpers must fail with ValueError (student-readable); torch may use any of TORCH_ERRORS.
    Returns the common result (None when both failed).
    """
    try:
        expected = theirs()
    except TORCH_ERRORS as exc:
        try:
            got = ours()
        except ValueError as ours_exc:
            assert str(ours_exc), "error message must not be empty"
            return None
        raise AssertionError(f"torch raised {type(exc).__name__}: {exc!s:.200}, but helper returned {got!r}")
    got = ours()
    assert got == expected, f"helper {got!r} != torch {expected!r}"
    return got
