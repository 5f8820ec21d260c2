"""The grader's sandboxed executor (internal): runs ONE untrusted submission in its own process.

Started by :mod:`helpers.grade` as ``python -m helpers._grade_runner MEMORY_MB`` in a fresh temporary
directory, with a memory limit (RLIMIT_AS), its own session (the grader kills the whole process
group on timeout) and a JSON job on stdin::

    {"cells": [[index, source], …], "cell_budget": seconds,
     "questions": [{"id": …, "answer": "linear_params", "cases": [[args, kwargs], …], "timeout": s}, …]}

It executes the cells in an IPython shell (magics work; stdin/stdout/stderr go to /dev/null, so
printing "✅" reaches nobody), then calls each question's function on the grader's cases and
reports events as JSON lines on a private copy of the original stdout::

    {"event": "cell", "index": i}                        before running cell i
    {"event": "cell_error", "index": i, "type": …, "message": …}
    {"event": "answer", "id": …, "outcomes": […]}        or "missing": true / "not_callable": "int"
    {"event": "done"}

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

_MAX_LINE = 200_000  # bytes per outcome; a gigantic return value is reported, not sent


class _CellTimeout(BaseException):
    pass


def main() -> None:
    import resource

    memory_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    if memory_mb > 0:  # before any student code: address space, so a 50 GB allocation fails fast
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    job = json.loads(sys.stdin.buffer.read().decode("utf-8"))

    # Private result channel = the original stdout; the student's code gets /dev/null for 0, 1, 2.
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8")
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    sys.stdin = open(os.devnull, encoding="utf-8")
    sys.stdout = sys.stderr = open(os.devnull, "w", encoding="utf-8")

    def emit(**event: object) -> None:
        channel.write(json.dumps(event) + "\n")
        channel.flush()

    # imported BEFORE any student code runs; the student can only tamper with its own process
    from helpers.checks import run_cases
    from IPython.core.interactiveshell import InteractiveShell

    emit(event="start")
    shell = InteractiveShell.instance()
    deadline = time.monotonic() + float(job["cell_budget"])  # the budget covers the student's cells only

    def on_alarm(signum: int, frame: object) -> None:
        raise _CellTimeout()

    for index, source in job["cells"]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            emit(event="cell_error", index=index, type="Timeout", message="no time left")
            break
        emit(event="cell", index=index)
        signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, remaining)
        try:
            result = shell.run_cell(source, store_history=False)
            error = result.error_before_exec or result.error_in_exec
        except _CellTimeout as exc:  # fired outside the cell's own code
            error = exc
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        if error is not None:
            if isinstance(error, _CellTimeout):
                emit(event="cell_error", index=index, type="Timeout", message="")
                break
            if isinstance(error, SystemExit):
                message = f"sys.exit({error.code!r})" if error.code is not None else "sys.exit()"
            else:
                message = str(error)
            emit(event="cell_error", index=index, type=type(error).__name__, message=message[:300])
    emit(event="cells_done")

    namespace = shell.user_ns
    for question in job["questions"]:
        fn = namespace.get(question["answer"])
        if fn is None:
            emit(event="answer", id=question["id"], missing=True)
            continue
        if not callable(fn):
            emit(event="answer", id=question["id"], not_callable=type(fn).__name__)
            continue
        cases = [(tuple(args), dict(kwargs)) for args, kwargs in question["cases"]]
        try:
            outcomes = run_cases(fn, cases, float(question["timeout"]))
        except BaseException as exc:  # e.g. sys.exit() inside the function
            outcomes = [{"raised": type(exc).__name__, "message": str(exc)[:300]}]
        safe = []
        for outcome in outcomes:
            try:
                text = json.dumps(outcome)
            except (TypeError, ValueError) as exc:
                outcome = {"bad_type": f"unserialisable value ({exc})"[:200]}
                text = json.dumps(outcome)
            if len(text) > _MAX_LINE:
                outcome = {"bad_type": f"oversized value ({len(text)} bytes of JSON)"}
            safe.append(outcome)
        emit(event="answer", id=question["id"], outcomes=safe)
    emit(event="done")
    channel.close()
    os._exit(0)  # do not wait for threads the student may have started


if __name__ == "__main__":
    main()
