"""Argument normalisation shared by `formulas`, `shapes` and `cost` (pure Python, no torch).

torch's layer constructors accept either an int or a tuple for per-dimension arguments
(`kernel_size=3` or `kernel_size=(3, 5)`); these helpers turn both forms into tuples and
raise student-readable errors for values torch would reject.

A size of the wrong type (None, a float such as 2.0, a bool, a string) raises `SizeTypeError`,
which is both a TypeError (what Python raises for a wrong type) and a ValueError (what every
helper raises for an invalid configuration), so ``except ValueError`` catches every refusal.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Optional, Union

IntOrTuple = Union[int, Sequence[int]]

__all__ = ["IntOrTuple", "SizeTypeError", "as_tuple", "is_int", "require_int", "require_positive_int",
           "spatial_dims"]


class SizeTypeError(TypeError, ValueError):
    """A size, count or index that is not an integer (None, float, bool, str, …)."""


def is_int(value: object) -> bool:
    """True for Python ints (and int-like numpy/torch scalars), False for bools and floats."""
    if isinstance(value, bool):
        return False
    try:
        operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        return False
    return True


def _not_an_int(value: object, name: str) -> SizeTypeError:
    if isinstance(value, bool):
        hint = ": True/False is not a size"
    elif isinstance(value, float) and value.is_integer():
        hint = f": write {int(value)}, without the decimal point (torch builds tensors from int sizes only)"
    elif isinstance(value, float):
        hint = ": a size counts whole elements"
    elif value is None:
        hint = ": the argument was left empty"
    else:
        hint = ""
    return SizeTypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__}){hint}")


def require_int(value: object, name: str, *, minimum: Optional[int] = None, why: str = "") -> int:
    """Return `value` as an int; SizeTypeError if it is not an int, ValueError if below `minimum`."""
    if not is_int(value):
        raise _not_an_int(value, name)
    ivalue = operator.index(value)  # type: ignore[arg-type]
    if minimum is not None and ivalue < minimum:
        bound = {0: "zero or more", 1: "at least 1 (greater than zero)"}.get(minimum, f"at least {minimum}")
        raise ValueError(f"{name} must be {bound}, got {ivalue}{why}")
    return ivalue


def as_tuple(value: IntOrTuple, n: int, name: str, *, minimum: Optional[int] = None,
             broadcast_one: bool = True) -> tuple[int, ...]:
    """Return `value` as an n-tuple of ints, as torch's `_ntuple` does for layer arguments.

    With `minimum`, every entry must be at least that (ValueError naming the argument otherwise).
    A 1-tuple is repeated n times (torch's conv/pool functions read stride=(2,) as 2 in every
    dim) unless `broadcast_one` is False: a conv's kernel_size becomes the weight's shape, so
    ``nn.Conv2d(1, 1, (3,))`` builds a 1-d kernel that no 2-d input can run with.

    >>> as_tuple(3, 2, "kernel_size")
    (3, 3)
    >>> as_tuple((3, 5), 2, "kernel_size")
    (3, 5)
    """
    if is_int(value):
        items: tuple[object, ...] = (value,) * n
    elif isinstance(value, Sequence) and not isinstance(value, str):
        items = tuple(value)
        if len(items) == 1 and n > 1 and broadcast_one:
            items = items * n
        if len(items) != n:
            raise ValueError(f"{name} should be an int or a tuple of {n} ints (one per spatial dimension), "
                             f"got {value!r}" + (f": a {len(items)}-d kernel cannot run on {n}-d inputs"
                                                 if not broadcast_one and items else ""))
    else:
        raise _not_an_int(value, name) if value is None or isinstance(value, (bool, float)) else \
            SizeTypeError(f"{name} should be an int or a tuple of ints, got {value!r} ({type(value).__name__})")
    return tuple(require_int(v, name, minimum=minimum) for v in items)


def spatial_dims(*values: object, default: int) -> int:
    """The number of spatial dimensions implied by the first tuple among `values`, else `default`."""
    for value in values:
        if isinstance(value, Sequence) and not isinstance(value, str):
            return len(value)
    return default


def require_positive_int(value: object, name: str, *, allow_zero: bool = False) -> int:
    """Return `value` as an int, raising a readable error if it is not a positive int (or zero)."""
    return require_int(value, name, minimum=0 if allow_zero else 1)
