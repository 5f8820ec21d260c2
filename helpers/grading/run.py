"""Running one submission in a fresh sandbox: the job sent, the phases of its wall-clock deadline
and its resource limits (what comes back is judged elsewhere, never here).

:func:`run_submission` starts ``python -m helpers.grading.runner`` through
:mod:`helpers.grading.sandbox` (bubblewrap, no network, own PID namespace, read-only environment,
no project files but the graded view of helpers — :mod:`helpers.checks.graded`). Wall time is
enforced from outside in phases (:class:`Phases`: start-up, cells, questions), every read is
bounded and the result size capped; CPU seconds and memory are rlimits applied by the runner.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

from helpers.checks import protocol
from helpers.checks.graded import build_view
from helpers.checks.protocol import ANSWER_LIMIT_BYTES
from helpers.checks.verdict import probes
from helpers.course.notebooks import KERNEL_NAME
from helpers.grading.plan import GradingPlan, Settings
from helpers.grading.sandbox import Completed, Limits, Sandbox, run
from helpers.grading.warm import ForkServerUnavailable

__all__ = ["GRACE", "Phases", "kernel_python", "limits_for", "run_submission"]

GRACE = 2.0  # seconds allowed on top of each phase's own limit (reporting, process exit)


def kernel_python() -> str:
    """The interpreter of the ``dims-params`` Jupyter kernel (the students' environment)."""
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        argv0 = KernelSpecManager().get_kernel_spec(KERNEL_NAME).argv[0]
        if os.path.isabs(argv0) and os.access(argv0, os.X_OK):
            return argv0
    except Exception:
        pass
    return sys.executable


class Phases:
    """The wall-clock deadline, phase by phase, from the events seen so far: start-up within
    ``startup_slack``; the cells within ``timeout`` (+ grace) of the start; the questions within
    the sum of their limits (+ grace) of the end of the cells."""

    def __init__(self, settings: Settings, question_seconds: float) -> None:
        self.settings, self.question_seconds = settings, question_seconds
        self.begin = time.monotonic()
        self.seen, self.started, self.cells_done = 0, None, None

    def __call__(self, events: list[dict]) -> float:
        now = time.monotonic()
        for event in events[self.seen:]:
            if event["event"] == protocol.START and self.started is None:
                self.started = now
            elif event["event"] == protocol.CELLS_DONE and self.cells_done is None:
                self.cells_done = now
        self.seen = len(events)
        if self.cells_done is not None:
            return self.cells_done + self.question_seconds + GRACE
        if self.started is not None:
            return self.started + self.settings.timeout + GRACE
        return self.begin + self.settings.startup_slack

    @staticmethod
    def bound(settings: Settings, question_seconds: float) -> float:
        """The longest one submission can take (seconds)."""
        return settings.startup_slack + settings.timeout + question_seconds + 2 * GRACE


def limits_for(settings: Settings, question_seconds: float) -> Limits:
    """The rlimits of one run: its memory, and CPU seconds a little above its longest wall time."""
    return Limits(memory_mb=settings.memory_mb,
                  cpu_seconds=math.ceil(Phases.bound(settings, question_seconds)) + 5)


def run_submission(cells: list[tuple[int, str]], plan: GradingPlan, settings: Settings, slot: int = 0) -> Completed:
    """Run the cells and ask for the answers in a fresh sandbox (a fresh child of the slot's fork server,
    :mod:`helpers.grading.warm`, when there is one); what came back, unjudged."""
    questions = [{"id": q.id, "answer": q.answer, "cases": plan.cases[q.id], "timeout": settings.limit_for(q),
                  **({} if q.probe is None else {"probes": probes(q, plan.cases[q.id])})} for q in plan.questions]
    seconds = plan.question_seconds(settings)
    job = json.dumps({"cells": cells, "cell_budget": settings.timeout, "questions": questions,
                      "limits": limits_for(settings, seconds).rlimits()}).encode()
    caps = {"max_bytes": ANSWER_LIMIT_BYTES * (len(questions) + 1) + (1 << 20),
            "max_line": ANSWER_LIMIT_BYTES + (1 << 16), "kinds": protocol.EVENTS}
    server = settings.fork_servers.server(slot) if settings.fork_servers is not None else None
    if server is not None and settings.sandbox is not None:  # a warm sandbox: a fresh child of its server
        try:
            return server.run(job, deadline=Phases(settings, seconds), tmp_mb=settings.sandbox.limits.tmp_mb, **caps)
        except ForkServerUnavailable:  # it died before taking the job: a fresh sandbox instead
            pass
    with tempfile.TemporaryDirectory(prefix="grade-") as tmp:
        box = settings.sandbox
        if box is None:  # a single step outside a batch: a plain process
            box = Sandbox(settings.python, Limits(), build_view(Path(tmp) / "view"), enabled=False)
        return run(box.argv(slot), job, env=box.env(tmp), cwd=tmp, deadline=Phases(settings, seconds), **caps)
