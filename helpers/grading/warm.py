"""Warm sandboxes: one fork server per job slot, so a submission no longer pays for starting Python and
importing torch (≈ 1.5 s of the ≈ 2 s a fresh sandbox costs per submission).

:class:`ForkServers` starts, per job slot, one bubblewrap sandbox (the same mounts and namespaces as
:class:`helpers.grading.sandbox.Sandbox`, plus the capabilities to create namespaces) running
:mod:`helpers.grading.forkserver`; :meth:`ForkServer.run` sends it one submission's job and reads
the results exactly as :func:`helpers.grading.sandbox.run` does (same deadline, same byte caps).
Each submission still runs in namespaces of its own (mount with a private ``/tmp``, PID, network,
IPC, UTS, cgroup), as the slot's unprivileged uid with the same rlimits: see the server's docstring.

A server that dies (or cannot be reached) is restarted for the next submission; the submission it
was running is reported as the process it was (killed, no result). Where no server can start here
(not root, no ``CAP_SYS_ADMIN`` in the sandbox, a probe run that does not report),
:func:`start_fork_servers` says why once and the grader keeps one fresh sandbox per submission.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Callable, Optional

from helpers.checks import protocol
from helpers.grading.forkserver import CONTROL_BYTES
from helpers.grading.sandbox import ROOT, Completed, Sandbox, read_events, slot_uid, tracked

__all__ = ["ForkServer", "ForkServers", "ForkServerUnavailable", "start_fork_servers"]

READY_SECONDS = 60.0  # importing torch in a cold cache
_KINDS = (protocol.START, protocol.CELLS_DONE, protocol.DONE)


class ForkServerUnavailable(RuntimeError):
    """No fork server can run here (the message says why); the grader falls back to a fresh sandbox each."""


class _Exit:
    """The exit of the runner under way, as ``poll()`` for :func:`read_events`: read from the control socket."""

    def __init__(self, server: "ForkServer") -> None:
        self.server, self.ended, self.code = server, False, None

    def poll(self) -> Optional[int]:
        if not self.ended:
            self.server._receive_exit(self, timeout=0.0)
        return self.code if self.ended else None


class ForkServer:
    """One slot's long-lived sandboxed interpreter: started in :meth:`__init__` (bwrap dies with the
    THREAD that started it: start it in the thread that will use it), usable after :meth:`ready`."""

    def __init__(self, box: Sandbox, slot: int) -> None:
        self.box, self.slot, self._ready = box, slot, False
        self.control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.log = tempfile.TemporaryFile()
        caps = ["--cap-add", "CAP_SYS_ADMIN", "--cap-add", "CAP_NET_ADMIN"]  # namespaces, their loopback
        argv = box._base + caps + ["--", box.python, "-m", "helpers.grading.forkserver", str(theirs.fileno())]
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.log,
                                         env=box.env("/tmp"), cwd="/", pass_fds=(theirs.fileno(),),
                                         start_new_session=True)
        except OSError as exc:
            raise ForkServerUnavailable(f"bubblewrap could not start ({exc})") from None
        finally:
            theirs.close()

    def ready(self) -> "ForkServer":
        """Wait for the imports, then probe (once); raise :class:`ForkServerUnavailable` (stopped) if either fails."""
        if self._ready:
            return self
        try:
            self._wait_ready()
            self._probe()
        except ForkServerUnavailable:
            self.close()
            raise
        self._ready = True
        return self

    def _why(self, what: str) -> str:
        self.log.seek(0)
        tail = self.log.read().decode("utf-8", "replace").strip().splitlines()[-1:]
        return f"{what}{': ' + tail[0][:300] if tail else ''}"

    def _wait_ready(self) -> None:
        self.control.settimeout(READY_SECONDS)
        try:
            message = json.loads(self.control.recv(CONTROL_BYTES) or b"{}")
        except (OSError, ValueError):
            message = {}
        if "ready" not in message:
            raise ForkServerUnavailable(self._why("the fork server did not start"))

    def _probe(self) -> None:
        """An empty job must come back complete from a child in its own namespaces."""
        job = json.dumps({"cells": [], "cell_budget": 5, "questions": [], "limits": {}}).encode()
        done = self.run(job, deadline=lambda events: time.monotonic() + 10, max_bytes=1 << 16, max_line=1 << 16,
                        kinds=_KINDS, tmp_mb=16)
        if [e["event"] for e in done.events] != list(_KINDS) or done.returncode != 0:
            raise ForkServerUnavailable(self._why(f"its probe child did not report (exit {done.returncode})"))

    def alive(self) -> bool:
        return self.proc.poll() is None and self.control.fileno() >= 0

    def _receive_exit(self, run: _Exit, timeout: float) -> None:
        """Read the control socket for the runner's exit (at most `timeout` s); the server gone counts as one."""
        try:
            self.control.settimeout(timeout)
            data = self.control.recv(CONTROL_BYTES)
        except (BlockingIOError, socket.timeout):
            return
        except OSError:
            data = b""
        if not data:  # the server died: restarted before the next submission
            run.ended, run.code = True, None
            self.close()
            return
        try:
            message = json.loads(data)
        except ValueError:
            return
        if "exit" in message:
            run.ended, run.code = True, message["exit"]

    def _end(self, run: _Exit, grace: float) -> None:
        """Kill the runner if it still runs (and everything it started) and wait for the server's answer."""
        if not run.ended and grace:
            self._receive_exit(run, timeout=grace)  # it closed its results: let it exit by itself
        if run.ended:
            return
        try:
            self.control.send(b'{"kill": true}')
        except OSError:
            pass
        stop = time.monotonic() + 10
        while not run.ended and time.monotonic() < stop and self.control.fileno() >= 0:
            self._receive_exit(run, timeout=max(0.01, stop - time.monotonic()))
        if not run.ended:  # a server that does not answer is not trusted with the next submission
            self.close()

    def run(self, job: bytes, *, deadline: Callable[[list[dict]], float], max_bytes: int, max_line: int,
            kinds: tuple[str, ...], tmp_mb: int) -> Completed:
        """Run one submission's `job` in a fresh child: :func:`helpers.grading.sandbox.run`'s contract."""
        done, start = Completed(), time.monotonic()
        job_r, job_w = os.pipe()
        result_r, result_w = os.pipe()
        run = _Exit(self)
        with tracked(self.proc.pid) as allowed:
            try:
                if not allowed:
                    done.overflow = "the batch was interrupted"
                    os.close(job_w)
                    return done
                request = json.dumps({"run": {"uid": slot_uid(self.slot), "tmp_mb": tmp_mb}}).encode()
                try:
                    self.control.settimeout(10)
                    socket.send_fds(self.control, [request], [job_r, result_w])
                except OSError:
                    self.close()
                    raise ForkServerUnavailable("the fork server is gone") from None
            finally:
                os.close(job_r)
                os.close(result_w)
            threading.Thread(target=_write_all, args=(job_w, job), daemon=True).start()
            self._read(run, result_r, done, deadline, max_bytes, max_line, kinds)
        done.returncode, done.seconds = run.code, time.monotonic() - start
        return done

    def _read(self, run: _Exit, fd: int, done: Completed, deadline: Callable[[list[dict]], float],
              max_bytes: int, max_line: int, kinds: tuple[str, ...]) -> None:
        try:
            read_events(run, fd, done, deadline, max_bytes, max_line, kinds)
        finally:
            self._end(run, 0.0 if done.killed_for_time or done.overflow else 1.0)
            os.close(fd)

    def close(self) -> None:
        """Stop the server (its sandbox and every child with it)."""
        if self.control.fileno() >= 0:
            self.control.close()
        if getattr(self, "proc", None) is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, 9)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.log.close()


def _write_all(fd: int, data: bytes) -> None:
    try:
        with os.fdopen(fd, "wb") as pipe:
            pipe.write(data)
    except OSError:  # the child died before reading it all
        pass


class ForkServers:
    """One :class:`ForkServer` per job slot, restarted when one dies; ``failure`` says why none can run.

    :meth:`launch` starts them all (each imports torch while the grader builds its reference answers);
    :meth:`server` waits for a slot's first use. The first failure is said once (on stderr) and
    turns them all off (a run under way on another slot finishes): from then on every submission
    gets a fresh sandbox of its own; :meth:`close` stops what is left."""

    def __init__(self, box: Sandbox, jobs: int) -> None:
        self.box, self.jobs = box, max(1, jobs)
        self.servers: dict[int, ForkServer] = {}
        self.failure: Optional[str] = None
        self.restarts = 0
        self._lock = threading.Lock()
        target = box.view / "helpers" / "grading" / "forkserver.py"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / "grading" / "forkserver.py", target)
        os.chmod(target, 0o644)

    def launch(self) -> "ForkServers":
        """Start every slot's server (in this thread: bwrap dies with the thread that started it)."""
        for slot in range(self.jobs):
            try:
                self.servers[slot] = ForkServer(self.box, slot)
            except ForkServerUnavailable as exc:
                self._fail(str(exc))
        return self

    def _fail(self, reason: str) -> None:
        with self._lock:
            first, self.failure = self.failure is None, self.failure or reason
        if first:
            print(f"note: no fork server ({reason}); each submission starts its own sandbox (slower)", file=sys.stderr)

    def server(self, slot: int) -> Optional[ForkServer]:
        """Slot `slot`'s server, ready (started again if it died); None once no server can run."""
        current = self.servers.get(slot)
        try:
            if self.failure is None and current is not None and current.alive():
                return current.ready()
            if self.failure is None:
                self.servers[slot] = ForkServer(self.box, slot).ready()
                self.restarts += 1
                return self.servers[slot]
        except ForkServerUnavailable as exc:
            self._fail(str(exc))
        return None

    def close(self) -> None:
        for server in list(self.servers.values()):
            server.close()
        self.servers.clear()


def _switches_uid() -> bool:
    """Whether children can be given a uid of their own (the grader runs as root)."""
    return os.geteuid() == 0


def start_fork_servers(box: Sandbox, jobs: int) -> Optional[ForkServers]:
    """The slots' fork servers, launched; None (after saying once why, on stderr) where none can run."""
    if not box.enabled:
        return None
    if not _switches_uid():
        print("note: no fork server (the grader does not run as root, and each submission needs a uid of its own); "
              "each submission starts its own sandbox (slower)", file=sys.stderr)
        return None
    return ForkServers(box, jobs).launch()
