"""Argument normalisation shared by `formulas` and `shapes` (pure Python, no torch).

torch's layer constructors accept either an int or a tuple for per-dimension arguments
(`kernel_size=3` or `kernel_size=(3, 5)`); these helpers turn both forms into tuples and
raise student-readable errors for values torch would reject.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

IntOrTuple = Union[int, Sequence[int]]

__all__ = ["IntOrTuple", "as_tuple", "is_int", "require_positive_int", "spatial_dims"]


def is_int(value: object) -> bool:
    """True for Python ints (and int-like numpy/torch scalars), False for bools and floats."""
    return not isinstance(value, bool) and hasattr(value, "__index__")


def as_tuple(value: IntOrTuple, n: int, name: str) -> tuple[int, ...]:
    """Return `value` as an n-tuple of ints, as torch's `_ntuple` does for layer arguments.

    >>> as_tuple(3, 2, "kernel_size")
    (3, 3)
    >>> as_tuple((3, 5), 2, "kernel_size")
    (3, 5)
    """
    if is_int(value):
        return (int(value),) * n  # type: ignore[arg-type]
    if isinstance(value, Sequence) and not isinstance(value, str):
        items = tuple(value)
        if len(items) == 1 and n > 1:
            items = items * n
        if len(items) != n or not all(is_int(v) for v in items):
            raise ValueError(f"{name} should be an int or a tuple of {n} ints, got {value!r}")
        return tuple(int(v) for v in items)
    raise ValueError(f"{name} should be an int or a tuple of ints, got {value!r}")


def spatial_dims(*values: object, default: int) -> int:
    """The number of spatial dimensions implied by the first tuple among `values`, else `default`."""
    for value in values:
        if isinstance(value, Sequence) and not isinstance(value, str):
            return len(value)
    return default


def require_positive_int(value: object, name: str, *, allow_zero: bool = False) -> int:
    """Return `value` as an int, raising a readable ValueError if it is not a positive int."""
    if not is_int(value):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    ivalue = int(value)  # type: ignore[call-overload]
    if ivalue < 0 or (ivalue == 0 and not allow_zero):
        bound = "zero or more" if allow_zero else "greater than zero"
        raise ValueError(f"{name} must be {bound}, got {ivalue}")
    return ivalue
