"""The grading protocol: what a student's function did on one case (an *outcome*) and the events
the grader's runner reports, with one constructor each.

Shared by the instant checker (``check``, in the student's own kernel), the grader's runner
(``helpers.grading.runner``, inside the sandbox) and the grader (``helpers.grade``), so an outcome
or an event is built in ONE place and read the same way everywhere. Standard library only (a
module answer's description comes from :mod:`helpers.checks.module_answer`, imported only for
such questions): this module is one of the few files a graded (sandboxed) kernel can see.

Outcomes (plain dicts, so they cross the sandbox boundary as JSON)::

    {"value": v}                            returned v, already normalised (see :func:`normalise`);
                                            for a module answer, v is the module's description
    {"raised": "TypeError", "message": "…"} raised
    {"bad_type": "MyClass"}                 returned something that is not plain data
    {"timeout": 10.0}                       did not return within the question's time limit
    {"oversized": 12345678}                 returned a value whose JSON is larger than the cap

Events (one JSON object per line on the runner's private result channel)::

    {"event": "start"}
    {"event": "cell", "index": i}                               before running cell i
    {"event": "cell_error", "index": i, "type": …, "message": …}
    {"event": "cells_done"}
    {"event": "answer", "id": qid, "outcomes": […]}             or "missing": true / "not_callable": "int"
    {"event": "done"}
"""

from __future__ import annotations

import copy
import json
import signal
import threading
from typing import Any, Callable, Optional, TypedDict

__all__ = ["Outcome", "value_outcome", "raised_outcome", "bad_type_outcome", "timeout_outcome",
           "oversized_outcome", "outcome_of_exception", "normalise", "NotPlainData", "run_cases",
           "START", "CELL", "CELL_ERROR", "CELLS_DONE", "ANSWER", "DONE", "EVENTS",
           "CELL_TIMEOUT", "marker_event", "cell_event", "cell_timeout_event", "cell_error_event", "answer_event", "missing_event", "not_callable_event",
           "not_callable_message", "json_size", "MESSAGE_LIMIT", "ANSWER_LIMIT_BYTES", "encode_event"]

#: characters of an exception message kept in an outcome or a cell error
MESSAGE_LIMIT = 300
#: bytes of JSON one question's answer may take on the result channel (larger → ``oversized``)
ANSWER_LIMIT_BYTES = 1_000_000

START, CELL, CELL_ERROR, CELLS_DONE, ANSWER, DONE = "start", "cell", "cell_error", "cells_done", "answer", "done"
EVENTS = (START, CELL, CELL_ERROR, CELLS_DONE, ANSWER, DONE)


class Outcome(TypedDict, total=False):
    """What happened when the student's function was called on one case (exactly one kind)."""

    value: Any
    raised: str
    message: str
    bad_type: str
    timeout: float
    oversized: int


def _clip(text: str) -> str:
    return text if len(text) <= MESSAGE_LIMIT else text[:MESSAGE_LIMIT] + "…"


def value_outcome(value: Any) -> Outcome:
    """Returned `value` (already normalised)."""
    return {"value": value}


def raised_outcome(type_name: str, message: str) -> Outcome:
    return {"raised": type_name, "message": _clip(message)}


def outcome_of_exception(exc: BaseException) -> Outcome:
    """The outcome for an exception raised by the student's function (message clipped)."""
    return raised_outcome(type(exc).__name__, str(exc))


def bad_type_outcome(description: str) -> Outcome:
    return {"bad_type": _clip(description)}


def timeout_outcome(seconds: float) -> Outcome:
    return {"timeout": seconds}


def oversized_outcome(n_bytes: int) -> Outcome:
    return {"oversized": int(n_bytes)}


def not_callable_message(name: str, type_name: str) -> str:
    """The one wording for "you gave a value where a function was expected" (checker and grader)."""
    article = "an" if type_name[:1].lower() in "aeiou" else "a"
    return (f"`{name}` is {article} {type_name}, not a function — pass your function itself "
            f"(`{name}`), not the result of calling it.")


# --------------------------------------------------------------------------- events

#: the ``type`` of a cell error that means "the cells ran out of time"
CELL_TIMEOUT = "Timeout"


def marker_event(kind: str) -> dict:
    """``{"event": "start" | "cells_done" | "done"}``."""
    if kind not in (START, CELLS_DONE, DONE):
        raise ValueError(f"{kind!r} is not a marker event")
    return {"event": kind}


def cell_event(index: int) -> dict:
    return {"event": CELL, "index": index}


def cell_timeout_event(index: int, message: str = "") -> dict:
    return {"event": CELL_ERROR, "index": index, "type": CELL_TIMEOUT, "message": message}


def cell_error_event(index: int, exc: BaseException) -> dict:
    if isinstance(exc, SystemExit):
        message = f"sys.exit({exc.code!r})" if exc.code is not None else "sys.exit()"
    else:
        message = str(exc)
    return {"event": CELL_ERROR, "index": index, "type": type(exc).__name__, "message": _clip(message)}


def answer_event(question_id: str, outcomes: list[Outcome]) -> dict:
    return {"event": ANSWER, "id": question_id, "outcomes": outcomes}


def missing_event(question_id: str) -> dict:
    return {"event": ANSWER, "id": question_id, "missing": True}


def not_callable_event(question_id: str, type_name: str) -> dict:
    return {"event": ANSWER, "id": question_id, "not_callable": type_name}


def encode_event(event: dict) -> str:
    """One line of the result channel."""
    return json.dumps(event) + "\n"


# --------------------------------------------------------------------------- plain data

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


# --------------------------------------------------------------------------- calling the student's function

class _Timeout(BaseException):
    """Raised inside the student's function when the question's time limit is reached."""


def json_size(value: Any, cap: int) -> int:
    """A lower bound of the size of `value`'s JSON, walking no further than `cap` bytes (no copy)."""
    size, stack = 0, [value]
    while stack and size <= cap:
        item = stack.pop()
        if isinstance(item, str):
            size += len(item) + 2
        elif isinstance(item, dict):
            size += 4 * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            size += 2 * len(item)
            stack.extend(item)
        else:
            size += 1
    return size


def _off_the_clock(step: Callable[[], None], use_alarm: bool) -> None:
    """Run `step` with the ITIMER_REAL countdown paused (it resumes with the time that was left)."""
    if not use_alarm:
        step()
        return
    left, _ = signal.setitimer(signal.ITIMER_REAL, 0)
    try:
        step()
    finally:
        if left > 0:
            signal.setitimer(signal.ITIMER_REAL, left)
        else:  # it ran out just as it was paused: the limit is spent
            raise _Timeout()


def run_cases(fn: Callable, cases: list, timeout: float, max_bytes: Optional[int] = None,
              probes: Optional[list] = None) -> list[Outcome]:
    """Call `fn` on each case; return one outcome per case called.

    With `probes` (one per case: the question's answer is an ``nn.Module``), `fn` is called on
    the meta device and its module is replaced by its JSON description
    (:func:`helpers.checks.module_answer.build_and_describe`, also timed): the module never
    leaves this process.

    Stops at the first exception, non-plain return value, timeout, or (with `max_bytes`) value
    that takes the answer's JSON past `max_bytes` (that outcome is last, ``oversized``).
    The time limit covers all cases together and uses SIGALRM when possible (main thread).
    torch's one-off meta set-up (:func:`helpers.checks.module_answer.warm_up`) runs off the clock,
    and only once the first module is built: a function that is not written yet (it raises
    ``NotImplementedError``) costs nothing more than its call.
    """
    build = describe = warm_up = None
    if probes is not None:
        from helpers.checks.module_answer import NotAModule, build_module as build, describe_module as describe, warm_up
    budget = max_bytes
    use_alarm = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    outcomes: list[Outcome] = []
    previous: Optional[Any] = None
    if use_alarm:
        def _on_alarm(signum: int, frame: Any) -> None:
            raise _Timeout()
        previous = signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        for i, (args, kwargs) in enumerate(cases):
            try:  # copies: a function that mutates its inputs must not change the reference's
                if build is None:
                    value = fn(*copy.deepcopy(args), **copy.deepcopy(kwargs))
                else:
                    module = build(fn, copy.deepcopy(args), copy.deepcopy(kwargs))
                    if i == 0:  # built: torch's one-off meta set-up (seconds), off the clock
                        _off_the_clock(warm_up, use_alarm)
                    value = describe(module, probes[i])
            except _Timeout:
                outcomes.append(timeout_outcome(timeout))
                break
            except (Exception, SystemExit) as exc:  # sys.exit() in a function is an error, not an exit
                if describe is not None and isinstance(exc, NotAModule):
                    outcomes.append(bad_type_outcome(str(exc)))
                    break
                outcomes.append(outcome_of_exception(exc))
                break
            try:
                value = normalise(value)
            except NotPlainData as exc:
                outcomes.append(bad_type_outcome(str(exc)))
                break
            if budget is not None:
                size = json_size(value, budget)
                if size > budget:
                    outcomes.append(oversized_outcome(size))
                    break
                budget -= size
            outcomes.append(value_outcome(value))
    except _Timeout:  # the alarm fired between two calls
        outcomes.append(timeout_outcome(timeout))
    finally:
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    return outcomes
