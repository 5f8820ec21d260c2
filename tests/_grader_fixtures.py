"""Session fixtures of the grader's tests: one pair of warm fork servers per pytest worker.

Each grader batch (:func:`helpers.grade.grade_class`) starts one fork server per job slot, and a
server's start-up (bubblewrap, then Python importing torch, IPython and the runner) costs ≈ 2.5–4 s
of a 2-core machine: more than grading a whole torch-free class of ten once it runs. The grader's
test files grade a dozen batches, so :func:`fork_servers` starts :data:`JOBS` servers once per
worker (session scope; with ``--dist loadfile`` each worker has its own) and :func:`sharing` lends
them to every batch graded inside it. Nothing else changes: each submission still runs in a fresh
child of a server (namespaces, uid, rlimits and ``/tmp`` of its own, see
:mod:`helpers.grading.forkserver`), a server that dies is restarted by the grader as in any batch,
and the tests of the fork server itself (tests/test_grade_forkserver.py) check on these servers that
every attack leaves them standing. A batch that asks for more slots, another interpreter or no
sandbox gets servers of its own (or none), exactly as without the fixture.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Optional

import pytest

JOBS = 2  # what every batch of the grader's tests uses (--jobs 2)


class Borrowed:
    """The session's :class:`~helpers.grading.warm.ForkServers` as one batch sees them: the same
    servers and restarts, but ``close()`` (at the end of the batch) leaves them running."""

    def __init__(self, servers) -> None:
        self._servers = servers

    def __getattr__(self, name: str):
        return getattr(self._servers, name)

    def close(self) -> None:
        """Kept for the next batch; the session fixture stops them."""


@pytest.fixture(scope="session")
def fork_servers(tmp_path_factory):
    """:data:`JOBS` fork servers for the whole session (None where none can run here: the batches
    then start a fresh sandbox per submission, as the grader does), launched at once: they import
    torch while the first test builds its class."""
    from helpers.checks.graded import build_view
    from helpers.grading import warm
    from helpers.grading.run import kernel_python
    from helpers.grading.sandbox import Limits, Sandbox, unavailable_reason

    python = kernel_python()
    if unavailable_reason(python) is not None or not warm._switches_uid():
        yield None
        return
    box = Sandbox(python, Limits(), build_view(tmp_path_factory.mktemp("shared-fork-servers") / "view"))
    servers = warm.ForkServers(box, JOBS).launch()
    try:
        yield servers
    finally:
        servers.close()


@contextlib.contextmanager
def sharing(servers) -> Iterator[None]:
    """Inside: every grader batch with at most :data:`JOBS` slots, sandboxed with the same
    interpreter, is graded by `servers` (the :func:`fork_servers` fixture) instead of starting its
    own; the others, and everything with `servers` None, start theirs as usual."""
    from helpers import grade as grader

    own = grader.start_fork_servers

    def start(box, jobs: int) -> Optional[object]:
        if servers is None or not box.enabled or jobs > servers.jobs or box.python != servers.box.python:
            return own(box, jobs)
        return Borrowed(servers)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(grader, "start_fork_servers", start)
        yield
