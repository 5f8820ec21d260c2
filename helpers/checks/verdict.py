"""Verdicts: compare what a student's function returned with the reference, and say it kindly.

Shared by the instant checker (``check``, in the student's kernel) and the batch grader (in the
grader's process, on values the student's kernel sent back as JSON), so both give the same
status and message for the same outcome.

Outcomes (what the student's function did on one case) are defined in
:mod:`helpers.checks.protocol`. :func:`reference_answers` computes the expected values once (the
checker and the grader both call it); :func:`judge` is then a pure comparison of outcomes with
those references.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any, Optional

from helpers.checks.protocol import ANSWER_LIMIT_BYTES, NotPlainData, normalise, outcome_of_exception
from helpers.checks.graded import forbidden_module
from helpers.checks.module_answer import module_summary

__all__ = ["Verdict", "References", "reference_answers", "probes", "module_difference", "module_fault", "normalise", "NotPlainData",
           "outcome_of_exception",
           "judge", "describe_call", "STATUS_SYMBOL", "is_memory_error", "matches", "count_passed", "short_repr"]

#: status → symbol printed by ``check`` (everything not listed is ❌).
STATUS_SYMBOL = {"correct": "✅", "not_attempted": "⏳", "internal_error": "⚠️"}


def is_memory_error(type_name: str, message: str) -> bool:
    """True for Python's MemoryError (and numpy's subclass) and torch's allocator failure."""
    return (type_name.endswith("MemoryError") or "can't allocate memory" in message
            or "Cannot allocate memory" in message or "not enough memory" in message)


@dataclass(frozen=True)
class Verdict:
    """The result of judging one question.

    ``status`` is one of: correct, wrong, wrong_type, error, not_attempted, timeout, memory,
    forbidden_import (graded runs only: the function imports what graded work may not),
    internal_error (the reference itself failed: a bug in the question, not in the answer).
    """

    question_id: str
    status: str
    correct: int
    total: int
    message: str
    hint: str = ""
    call: str = ""       # the first failing call, e.g. ``conv_params(3, 8, 5, bias=False)``
    expected: str = ""   # what it should have returned (short repr), for a wrong value or type
    got: str = ""        # what it returned (short repr)
    warning: str = ""    # told next to the verdict (the instant check: a module the grader refuses)

    @property
    def passed(self) -> bool:
        return self.status == "correct"

    def line(self) -> str:
        """The one-line (plus hint line) text that ``check`` prints."""
        symbol = STATUS_SYMBOL.get(self.status, "❌")
        text = f"{symbol} {self.question_id}: {self.message}" + (f" — ⚠️ {self.warning}" if self.warning else "")
        if self.hint and self.status not in ("correct", "not_attempted", "internal_error"):
            text += f"\n   Hint: {self.hint}"
        return text


def _short_repr(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


short_repr = _short_repr


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


@dataclass(frozen=True)
class References:
    """The reference answers for a list of cases: normalised (compared) and as returned (shown:
    tuples stay tuples in messages). If the reference raised on case ``len(normalised)``,
    `failure` says how (a bug in the question, not in the answer)."""

    normalised: list
    raw: list
    failure: str = ""


def probes(question: Any, cases: list) -> Optional[list]:
    """For a question whose answer is an ``nn.Module``: one probe per case (JSON), else None."""
    if getattr(question, "probe", None) is None:
        return None
    return [normalise(question.probe(*args, **kwargs)) for args, kwargs in cases]


def reference_answers(question: Any, cases: list) -> References:
    """Call ``question.reference`` on every case, stopping at the first failure (never raises).

    For a module answer the reference module is built and described exactly as the student's is
    (:func:`helpers.checks.module_answer.build_and_describe`)."""
    normalised, raw = [], []
    for args, kwargs in cases:
        try:
            if getattr(question, "probe", None) is None:
                value = question.reference(*args, **kwargs)
            else:
                from helpers.checks.module_answer import build_and_describe

                value = build_and_describe(question.reference, args, kwargs, question.probe(*args, **kwargs))
            normalised.append(normalise(value))
        except Exception as exc:  # a bug in the question module, not in the student's answer
            call = describe_call(question.answer, args, kwargs)
            return References(normalised, raw, f"the reference answer for {call} failed "
                                               f"({type(exc).__name__}: {exc})")
        raw.append(value)
    return References(normalised, raw)


def _judge_outcome(call: str, name: str, first: bool, out: dict, module: bool = False) -> Optional[tuple[str, str]]:
    """(status, message) for an outcome that is not a value, else None."""
    if "raised" in out:
        kind, text = str(out["raised"]), str(out.get("message", ""))
        if kind == "NotImplementedError" and first:
            return "not_attempted", (f"not attempted yet — replace the `raise NotImplementedError` "
                                     f"in {name} with your code, then re-run this cell.")
        if forbidden_module(kind, text):
            return "forbidden_import", f"{call} raised {kind}: {text}"
        if is_memory_error(kind, text):
            return "memory", f"{call} ran out of memory ({kind}: {text})" if text else f"{call} ran out of memory ({kind})"
        return "error", f"{call} raised {kind}: {text}" if text else f"{call} raised {kind}"
    if "timeout" in out:
        return "timeout", f"{call} did not finish within {out['timeout']:g} s — is there an infinite loop?"
    if "oversized" in out:
        return "error", (f"{call} returned a value too large to grade (more than the "
                         f"{ANSWER_LIMIT_BYTES:,}-byte limit per answer as JSON)")
    if "bad_type" in out and module:
        kind = str(out["bad_type"])
        article = "an" if kind[:1].lower() in "aeiou" else "a"
        return "wrong_type", (f"{call} returned {article} {kind}; return the nn.Module itself "
                              f"(an instance, not its class).")
    if "bad_type" in out:
        return "wrong_type", (f"{call} returned a {out['bad_type']} object; return plain Python "
                              f"values (int, float, bool, str, list/tuple, dict).")
    if "value" not in out:
        return "error", f"{call}: no result received."
    return None


def _shape(shape: Any) -> str:
    return str(tuple(shape)) if isinstance(shape, list) and all(isinstance(n, int) for n in shape) else repr(shape)


def _shape_multiset_difference(want: list, got: list) -> Optional[str]:
    """None if the two [[name, shape], …] lists hold the same shapes (any names, any order)."""
    w = Counter(tuple(s) for _, s in want)
    g = Counter(tuple(s) for _, s in got if isinstance(s, list))
    if w == g:
        return None
    extra, missing = g - w, w - g
    if missing:
        shape = next(iter(missing))
        return f"it has no parameter of shape {shape} (its parameter shapes: " + \
            ", ".join(str(tuple(s)) for _, s in got[:6]) + ")"
    shape = next(iter(extra))
    return f"it has a parameter of shape {shape} that the expected module does not have"


def module_difference(want: dict, got: Any) -> Optional[str]:
    """None if the module description `got` matches the reference's `want`, else what differs, in
    words (the first difference: forward fails, parameter names, shapes, count, output shape, values).
    Shapes and counts must be equal; output values agree to rel 1e-4 (abs 1e-5)."""
    problem = _module_problem(want, got)
    return None if problem is None else problem[1]


def module_fault(want: dict, got: Any) -> Optional[str]:
    """The kind of :func:`module_difference` in a few words, shared by every submission with that
    fault (the class overview's wrong-answer pattern): "wrong parameter shape (fc2.weight)", …"""
    problem = _module_problem(want, got)
    return None if problem is None else problem[0]


def _module_problem(want: dict, got: Any) -> Optional[tuple[str, str]]:
    """(kind, words) of the first difference between two module descriptions, or None."""
    if not isinstance(got, dict) or "parameters" not in got:
        return "not a module", "not a module description"
    x = _shape(want.get("input"))
    want_params = {n: s for n, s in want["parameters"]}
    got_params = {n: s for n, s in got.get("parameters") or []}
    if want.get("names") is False:  # a module the student designs: any names, the same shapes
        problem = _shape_multiset_difference(want["parameters"], got.get("parameters") or [])
        if problem:
            return "wrong parameter shapes", problem
    elif list(want_params) != list(got_params):
        missing = [n for n in want_params if n not in got_params]
        extra = [n for n in got_params if n not in want_params]
        kind = f"missing layer ({missing[0]})" if missing else f"extra layer ({extra[0]})" if extra else "layers reordered"
        if missing and extra:  # renamed layers: show both lists (only the differences would hide the pattern)
            text = ("its parameters are named " + ", ".join(list(got_params)[:6]) + f", expected "
                    f"{', '.join(list(want_params)[:6])} (missing {missing[0]}) — keep the original layer names, "
                    f"change only what is wrong")
        elif missing:
            text = (f"it lacks {len(missing)} parameter(s) the repaired module has (missing "
                    f"{', '.join(missing[:3])}{', …' if len(missing) > 3 else ''})")
        elif extra:
            text = f"it has {len(extra)} parameter(s) the repaired module does not have ({extra[0]} should not be there)"
        else:
            text = (f"its layers are registered in another order ({', '.join(list(got_params)[:4])}, …; expected "
                    f"{', '.join(list(want_params)[:4])}, …) — keep the original order of the layers")
        return kind, text
    if want.get("names") is not False:  # (names=False: the multiset of shapes was compared above)
        for name, shape in want_params.items():
            if got_params[name] != shape:
                return (f"wrong parameter shape ({name})",
                        f"parameter {name} has shape {_shape(got_params[name])}, expected {_shape(shape)}")
    if got.get("count") != want.get("count"):
        return "wrong parameter count", f"it has {got.get('count')} parameters, expected {want.get('count')}"
    if "trainable" in want and got.get("trainable") != want["trainable"]:
        return "wrong parameters frozen", (f"{got.get('trainable')} of its parameters are trainable "
                                           f"(requires_grad), expected {want['trainable']}")
    if got.get("forward_error") and not want.get("forward_error"):
        return "forward fails", f"its forward on an input of shape {x} fails: {got['forward_error']}"
    if got.get("output") != want.get("output"):
        return "wrong output shape", (f"its forward on an input of shape {x} gives shape "
                                      f"{_shape(got.get('output'))}, expected {_shape(want.get('output'))}")
    wv, gv = want.get("values"), got.get("values")
    if wv is None:
        return None
    numbers = isinstance(gv, list) and all(isinstance(g, (int, float)) and not isinstance(g, bool) for g in gv)
    if numbers and len(gv) == len(wv) and all(math.isclose(w, g, rel_tol=1e-4, abs_tol=1e-5) for w, g in zip(wv, gv)):
        return None
    seen = [f"{g:.4g}" for g in gv[:2]] if numbers else _short_repr(gv)
    return "right shapes, different forward", (
        f"on fixed weights its forward gives different values (first: {seen}, expected "
        f"{[f'{w:.4g}' for w in wv[:2]]}) — the shapes are right, but forward computes something else")


def _module_pair(want: dict, got: Any) -> tuple[str, str]:
    """(expected, got) as the feedback shows them: the modules' summaries, and where those read the same
    (only the values on fixed weights differ) "same shapes and count; outputs differ … (max |Δ| = …)"."""
    expected, seen = module_summary(want), module_summary(got)
    wv, gv = want.get("values"), got.get("values") if isinstance(got, dict) else None
    numbers = isinstance(gv, list) and isinstance(wv, list) and len(gv) == len(wv) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in gv + wv)
    if expected != seen or not numbers:
        return expected, seen
    delta = max((abs(w - g) for w, g in zip(wv, gv)), default=0.0)
    return (f"{expected}; outputs on fixed weights {[float(f'{w:.4g}') for w in wv[:3]]}",
            f"same shapes and count; outputs differ on fixed weights (max |Δ| = {delta:.3g}): "
            f"{[float(f'{g:.4g}') for g in gv[:3]]}")


def _compare(question: Any, want: Any, got: Any) -> Optional[str]:
    """None if `got` matches `want`, else "type" or "value" (the question's compare, if any)."""
    if question.compare is None and getattr(question, "probe", None) is not None:
        return None if module_difference(want, got) is None else "value"
    if question.compare is None:
        return _default_compare(want, got)
    try:
        ok = bool(question.compare(want, got))
    except Exception:
        ok = False
    if ok:
        return None
    numbers = isinstance(want, (int, float)) and isinstance(got, (int, float)) and not isinstance(got, bool)
    return "type" if type(want) is not type(got) and not numbers else "value"


def judge(question: Any, cases: list, outcomes: list[dict], references: Optional[References] = None) -> Verdict:
    """Compare the outcomes of the student's function on `cases` with `references`.

    A pure comparison: `references` come from :func:`reference_answers`. A caller that omits them
    (the instant ``check``) has them computed here, and only when a first value must be compared:
    a function not attempted yet, or failing on its first case, builds no reference at all.
    `outcomes` may be shorter than `cases` (the student's code stopped early: only its last
    outcome can be a failure).
    """
    qid, name, total = question.id, question.answer, len(cases)
    for i, (args, kwargs) in enumerate(cases):
        call = describe_call(name, args, kwargs)
        if i >= len(outcomes):
            return Verdict(qid, "error", i, total, f"{call} was never called (your code stopped after case {i}).",
                           question.hint)
        module = getattr(question, "probe", None) is not None
        failed = _judge_outcome(call, name, i == 0, outcomes[i], module)
        if failed is not None:
            return Verdict(qid, failed[0], i, total, failed[1], question.hint, call=call)
        if references is None:
            references = reference_answers(question, cases)
        if i >= len(references.normalised):
            return Verdict(qid, "internal_error", i, total,
                           f"{references.failure}; this is a bug in the exercise, not in your code — please report it.")
        want, got = references.normalised[i], outcomes[i]["value"]
        shown = _styled(want, references.raw[i])
        problem = _compare(question, want, got)
        if problem is not None and module and question.compare is None:
            expected, seen = _module_pair(want, got)
            return Verdict(qid, "wrong", i, total, f"{call} returned a module, but {module_difference(want, got)}.",
                           question.hint, call=call, expected=expected, got=seen)
        if problem is not None:
            seen, wanted = _short_repr(_styled(got, shown)), _short_repr(shown)
            message = (_type_message(call, shown, _styled(got, shown)) if problem == "type"
                       else f"{call} returned {seen}, expected {wanted}.")
            return Verdict(qid, "wrong_type" if problem == "type" else "wrong", i, total, message, question.hint,
                           call=call, expected=wanted, got=seen)
    return Verdict(qid, "correct", total, total, f"{total}/{total} cases correct", question.hint)


def matches(question: Any, want: Any, got: Any) -> bool:
    """True if the normalised answer `got` is accepted for the normalised reference `want`."""
    return _compare(question, want, got) is None


def count_passed(question: Any, outcomes: list[dict], references: References) -> int:
    """How many cases the student's function answered correctly (each case on its own — the basis
    of partial credit; :func:`judge` stops at the first failure)."""
    passed = 0
    for i, out in enumerate(outcomes[:len(references.normalised)]):
        if isinstance(out, dict) and "value" in out and matches(question, references.normalised[i], out["value"]):
            passed += 1
    return passed
