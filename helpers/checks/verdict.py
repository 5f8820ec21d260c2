"""Verdicts: compare what a student's function returned with the reference, and say it kindly.

Shared by the instant checker (``check``, in the student's kernel) and the batch grader (in the
grader's process, on values the student's kernel sent back as JSON), so both give the same
status and message for the same outcome.

An *outcome* is what happened when the student's function was called on one case, as a plain
dict (JSON-serialisable, so the grader's sandboxed runner can send it):

    {"value": v}                        returned v (already normalised, see :func:`normalise`)
    {"raised": "TypeError", "message": "…"}
    {"bad_type": "MyClass"}             returned something that is not plain data
    {"timeout": 10.0}                   did not return within the question's time limit
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

__all__ = ["Verdict", "normalise", "NotPlainData", "outcome_of_exception", "judge", "describe_call",
           "STATUS_SYMBOL", "is_memory_error"]

#: status → symbol printed by ``check`` (everything not listed is ❌).
STATUS_SYMBOL = {"correct": "✅", "not_attempted": "⏳", "internal_error": "⚠️"}


class NotPlainData(TypeError):
    """The value is not made of int/float/bool/str/None/list/tuple/dict."""


def normalise(value: Any, _depth: int = 0) -> Any:
    """Turn a return value into plain JSON-like data: tuples/torch.Size → lists, numpy/torch
    scalars → Python numbers, 0-d or small tensors/arrays → (nested) lists.

    Raises :class:`NotPlainData` for anything else (an object with a custom ``__eq__`` cannot
    sneak through a comparison).
    """
    if _depth > 50:
        raise NotPlainData("nested too deeply")
    t = type(value)
    if value is None or t in (bool, int, float, str):
        return value
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):  # int subclasses (IntEnum, …) and numpy ints via __index__ below
        return int.__int__(value)
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, (list, tuple)):  # includes torch.Size and namedtuples
        return [normalise(v, _depth + 1) for v in value]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                k = str(normalise(k, _depth + 1))
            out[k] = normalise(v, _depth + 1)
        return out
    module = t.__module__ or ""
    if module.startswith(("numpy", "torch")) and hasattr(value, "tolist"):
        return normalise(value.tolist(), _depth + 1)
    raise NotPlainData(t.__name__)


def is_memory_error(type_name: str, message: str) -> bool:
    """True for Python's MemoryError (and numpy's subclass) and torch's allocator failure."""
    return (type_name.endswith("MemoryError") or "can't allocate memory" in message
            or "Cannot allocate memory" in message or "not enough memory" in message)


def outcome_of_exception(exc: BaseException) -> dict:
    """The outcome dict for an exception raised by the student's function."""
    message = str(exc)
    if len(message) > 300:
        message = message[:300] + "…"
    return {"raised": type(exc).__name__, "message": message}


@dataclass(frozen=True)
class Verdict:
    """The result of judging one question.

    ``status`` is one of: correct, wrong, wrong_type, error, not_attempted, timeout, memory,
    internal_error (the reference itself failed: a bug in the question, not in the answer).
    """

    question_id: str
    status: str
    correct: int
    total: int
    message: str
    hint: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "correct"

    def line(self) -> str:
        """The one-line (plus hint line) text that ``check`` prints."""
        symbol = STATUS_SYMBOL.get(self.status, "❌")
        text = f"{symbol} {self.question_id}: {self.message}"
        if self.hint and self.status not in ("correct", "not_attempted", "internal_error"):
            text += f"\n   Hint: {self.hint}"
        return text


def _short_repr(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_call(name: str, args: tuple | list, kwargs: dict) -> str:
    """``linear_params(37, 5, bias=False)``."""
    parts = [_short_repr(a) for a in args] + [f"{k}={_short_repr(v)}" for k, v in kwargs.items()]
    return f"{name}({', '.join(parts)})"


_TYPE_NAMES = {bool: "a bool", int: "an int", float: "a float", str: "a str", list: "a list",
               tuple: "a tuple", dict: "a dict", type(None): "None"}


def _kind(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _default_compare(expected: Any, got: Any) -> Optional[str]:
    """None if equal, else the reason ("type" or "value")."""
    if expected is None or got is None:  # "it fails" vs a value: a wrong answer, not a wrong type
        return None if expected is got else "value"
    if type(expected) is not type(got):
        # an int where a float is expected is fine; nothing else silently converts
        if type(expected) is float and type(got) is int:
            return None if math.isclose(expected, got, rel_tol=1e-9, abs_tol=1e-12) else "value"
        return "type"
    if isinstance(expected, list):
        if len(expected) != len(got):
            return "value"
        return "value" if any(_default_compare(e, g) for e, g in zip(expected, got)) else None
    if isinstance(expected, dict):
        if set(expected) != set(got):
            return "value"
        return "value" if any(_default_compare(expected[k], got[k]) for k in expected) else None
    if isinstance(expected, float):
        if math.isnan(expected):
            return None if math.isnan(got) else "value"
        return None if math.isclose(expected, got, rel_tol=1e-9, abs_tol=1e-12) else "value"
    return None if expected == got else "value"


def _type_message(call: str, expected: Any, got: Any) -> str:
    msg = f"{call} returned {_short_repr(got)} ({_kind(got)}), expected {_short_repr(expected)} ({_kind(expected)})."
    if type(expected) is int and type(got) is float:
        msg += " Use // for integer division, or int(…)."
    elif isinstance(expected, (list, tuple)) and not isinstance(got, (list, tuple)):
        msg += " Return a tuple or list."
    return msg


def _styled(value: Any, like: Any) -> Any:
    """`value` (normalised: lists) shown in the style of `like`: tuples where the reference has
    tuples, so a shape reads ``(2, 5)`` rather than ``[2, 5]`` in a message."""
    if isinstance(like, tuple) and isinstance(value, list):
        return tuple(_styled(v, like[i] if i < len(like) else None) for i, v in enumerate(value))
    if isinstance(like, list) and isinstance(value, list):
        return [_styled(v, like[i] if i < len(like) else None) for i, v in enumerate(value)]
    if isinstance(like, dict) and isinstance(value, dict):
        return {k: _styled(v, like.get(k)) for k, v in value.items()}
    return value


def judge(question: Any, cases: list, outcomes: list[dict], *, expected: Optional[list] = None,
          expected_raw: Optional[list] = None) -> Verdict:
    """Judge the outcomes of the student's function on `cases` against ``question.reference``.

    `outcomes` may be shorter than `cases` (the student's code stopped early: only its last
    outcome can be a failure). `expected` lets a caller pass precomputed normalised references
    (and `expected_raw` the references as returned, used only to display tuples as tuples).
    """
    qid, name, total = question.id, question.answer, len(cases)

    def verdict(status: str, message: str) -> Verdict:
        return Verdict(qid, status, n_correct, total, message, question.hint)

    n_correct = 0
    for i, (args, kwargs) in enumerate(cases):
        call = describe_call(name, args, kwargs)
        if i >= len(outcomes):
            return verdict("error", f"{call} was never called (your code stopped after case {i}).")
        out = outcomes[i]
        if "raised" in out:
            kind, text = out["raised"], out.get("message", "")
            if kind == "NotImplementedError" and i == 0:
                return verdict("not_attempted", f"not attempted yet — replace the `raise NotImplementedError` "
                                                f"in {name} with your code, then re-run this cell.")
            if is_memory_error(kind, text):
                return verdict("memory", f"{call} ran out of memory ({kind}: {text})" if text
                               else f"{call} ran out of memory ({kind})")
            return verdict("error", f"{call} raised {kind}: {text}" if text else f"{call} raised {kind}")
        if "timeout" in out:
            return verdict("timeout", f"{call} did not finish within {out['timeout']:g} s — is there an infinite loop?")
        if "bad_type" in out:
            return verdict("wrong_type", f"{call} returned a {out['bad_type']} object; return plain Python "
                                         f"values (int, float, bool, str, list/tuple, dict).")
        if "value" not in out:
            return verdict("error", f"{call}: no result received.")
        got = out["value"]
        if expected is not None:
            want = expected[i]
            shown = _styled(want, expected_raw[i] if expected_raw is not None else want)
        else:
            try:
                raw = question.reference(*args, **kwargs)
                want = normalise(raw)
                shown = _styled(want, raw)
            except Exception as exc:  # a bug in the question module, not in the student's answer
                return Verdict(qid, "internal_error", n_correct, total,
                               f"the reference answer for {call} failed ({type(exc).__name__}: {exc}); "
                               f"this is a bug in the exercise, not in your code — please report it.")
        if question.compare is not None:
            try:
                ok = bool(question.compare(want, got))
            except Exception:
                ok = False
            problem = None if ok else ("type" if type(want) is not type(got) and not (
                isinstance(want, (int, float)) and isinstance(got, (int, float))
                and not isinstance(got, bool)) else "value")
        else:
            problem = _default_compare(want, got)
        if problem == "type":
            return verdict("wrong_type", _type_message(call, shown, _styled(got, shown)))
        if problem == "value":
            return verdict("wrong", f"{call} returned {_short_repr(_styled(got, shown))}, expected {_short_repr(shown)}.")
        n_correct += 1
    return verdict("correct", f"{total}/{total} cases correct")
