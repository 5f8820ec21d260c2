"""The grader's executor (internal): runs ONE untrusted submission, normally inside the sandbox.

Started by :mod:`helpers.grade` (through :mod:`helpers.grading.sandbox`) as ``python -m helpers.grading.runner``
with a JSON job on stdin::

    {"cells": [[index, source], …], "cell_budget": seconds, "limits": {"as": bytes, "nproc": n, …},
     "questions": [{"id": …, "answer": "linear_params", "cases": [[args, kwargs], …], "timeout": s,
                    "probes": [probe, …]}, …]}

``probes`` (optional, one per case) marks a question whose answer is an ``nn.Module``: the
function is called on the meta device and only the module's JSON description
(:mod:`helpers.checks.module_answer`) is reported, never the module. torch's one-off meta set-up is
paid by ``run_cases`` off that question's clock (once its first module is built), not before the
cells: a submission's cells run exactly as without module questions.

Before any student code it applies the resource limits (setrlimit: address space, CPU seconds,
processes, file size, open files, no core dumps) and installs :class:`helpers.checks.graded.ImportGuard`
(answer-bearing helpers modules raise ``ForbiddenImport``; in the sandbox their files are absent
anyway). It executes the cells in an IPython shell (magics work; stdin/stdout/stderr go to
/dev/null, so printing "✅" reaches nobody), then calls each question's function on the grader's
cases and reports the events of :mod:`helpers.checks.protocol` as JSON lines on a private copy of
the original stdout. Only the original process reports (a forked child cannot add events), and
one question's answer is capped at ``ANSWER_LIMIT_BYTES`` (larger → an ``oversized`` outcome).

Only return VALUES leave this process; every verdict is computed by the grader. Nothing here can
raise a score: at worst the student's code corrupts its own report, which the grader then treats
as a crash.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from types import ModuleType
from typing import Any, Callable

_LIMITS = {"as": "RLIMIT_AS", "cpu": "RLIMIT_CPU", "nproc": "RLIMIT_NPROC", "fsize": "RLIMIT_FSIZE",
           "nofile": "RLIMIT_NOFILE", "core": "RLIMIT_CORE"}


class _CellTimeout(BaseException):
    pass


def _apply_limits(limits: dict) -> None:
    import resource

    for key, value in {"core": 0, **limits}.items():
        if key in _LIMITS and value is not None:
            limit = int(value)
            resource.setrlimit(getattr(resource, _LIMITS[key]), (limit, limit))


def _serialisable(outcomes: list) -> list:
    """The outcomes up to the first one JSON cannot encode (replaced by a ``bad_type`` outcome)."""
    from helpers.checks.protocol import bad_type_outcome

    safe = []
    for outcome in outcomes:
        try:
            json.dumps(outcome)
        except (TypeError, ValueError) as exc:
            safe.append(bad_type_outcome(f"unserialisable value ({exc})"))
            break
        safe.append(outcome)
    return safe


def main() -> None:
    job = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    _apply_limits(job.get("limits", {}))  # before any student code

    # Private result channel = the original stdout; the student's code gets /dev/null for 0, 1, 2.
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8")
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    sys.stdin = open(os.devnull, encoding="utf-8")
    sys.stdout = sys.stderr = open(os.devnull, "w", encoding="utf-8")
    reporter = os.getpid()

    # imported BEFORE any student code runs; the student can only tamper with its own process
    from helpers.checks import protocol as p
    from helpers.checks.graded import ImportGuard
    from IPython.core.interactiveshell import InteractiveShell

    def emit(event: dict) -> None:
        if os.getpid() == reporter:  # a child the student forked does not speak for the submission
            channel.write(p.encode_event(event))
            channel.flush()

    ImportGuard.install()
    emit(p.marker_event(p.START))
    shell = InteractiveShell.instance()
    shell.showtraceback = _no_traceback  # type: ignore[method-assign]
    _run_cells(shell, job["cells"], float(job["cell_budget"]), emit, reporter, p)
    emit(p.marker_event(p.CELLS_DONE))
    _answer(shell.user_ns, job["questions"], emit, reporter, p)
    emit(p.marker_event(p.DONE))
    channel.close()
    os._exit(0)  # do not wait for threads the student may have started


def _no_traceback(*args: Any, **kwargs: Any) -> None:
    """Stands in for ``InteractiveShell.showtraceback``: the cells' output goes to /dev/null, so a formatted
    traceback reaches nobody (the error itself is kept: ``result.error_in_exec``). Formatting one is also
    what crashed a memory hog's process: after its ``MemoryError`` the address space is all but full, and
    IPython's formatter (stack_data, pygments) then died of SIGSEGV in about 1 run of 30 instead of
    reporting the cell as out of memory (the fork server's memory_hog case in tests/test_grade_forkserver.py;
    tests/test_grade_runner.py shows no traceback is formatted)."""


def _run_cells(shell: Any, cells: list, budget: float, emit: Callable[[dict], None], reporter: int,
               p: ModuleType) -> None:
    """Run the student's cells in `shell` within `budget` seconds in all (`p`: the protocol module,
    bound before any student code), emitting each cell's start and its error, if any."""
    deadline = time.monotonic() + budget  # the budget covers the student's cells only

    def on_alarm(signum: int, frame: object) -> None:
        raise _CellTimeout()

    for index, source in cells:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            emit(p.cell_timeout_event(index, "no time left"))
            break
        emit(p.cell_event(index))
        signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, remaining)
        try:
            result = shell.run_cell(source, store_history=False)
            error = result.error_before_exec or result.error_in_exec
        except _CellTimeout as exc:  # fired outside the cell's own code
            error = exc
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        if os.getpid() != reporter:  # a child the student's cell forked: it runs no other cell
            os._exit(0)
        if isinstance(error, _CellTimeout):
            emit(p.cell_timeout_event(index))
            break
        if error is not None:
            emit(p.cell_error_event(index, error))


def _answer(namespace: dict, questions: list, emit: Callable[[dict], None], reporter: int, p: ModuleType) -> None:
    """Call each question's function (from the cells' `namespace`) on its cases; emit the outcomes."""
    for question in questions:
        fn = namespace.get(question["answer"])
        if fn is None:
            emit(p.missing_event(question["id"]))
            continue
        if not callable(fn):
            emit(p.not_callable_event(question["id"], type(fn).__name__))
            continue
        cases = [(tuple(args), dict(kwargs)) for args, kwargs in question["cases"]]
        try:
            outcomes = p.run_cases(fn, cases, float(question["timeout"]), max_bytes=p.ANSWER_LIMIT_BYTES,
                                   probes=question.get("probes"))
        except BaseException as exc:  # e.g. an alarm or exit that escaped the function
            outcomes = [p.outcome_of_exception(exc)]
        if os.getpid() != reporter:
            os._exit(0)
        emit(p.answer_event(question["id"], _serialisable(outcomes)))


if __name__ == "__main__":
    main()
