"""One bubblewrap sandbox per graded submission, and the bounded wait for its results.

:class:`Sandbox` builds, once per batch, the ``bwrap`` command line that every submission's runner
(``python -m helpers.grading.runner``) is started with:

* **namespaces**: own network (only a loopback nobody listens on), PID (sees and signals only
  its own processes; when the runner exits or the grader kills the sandbox, everything it started
  dies), IPC, UTS, cgroup; ``--die-with-parent`` (the grader dying ends it too) and
  ``--new-session`` (no terminal injection);
* **filesystem**: a new root with, read-only, ``/usr`` (and the ``/bin``, ``/lib*`` links), the
  Python installation and the virtual environment the course kernel uses, the dynamic-linker
  cache, and one folder given by the caller (the grader's *graded view* of ``helpers``, which
  holds no answer) as ``PYTHONPATH``; a private tmpfs ``/tmp`` (size-capped) as home and working directory. Nothing else of the
  project — not ``solutions/``, not the other submissions, not the output folder, not the real
  ``helpers`` package. The submission's cells arrive on stdin; its file is not mounted;
* **identity**: when the grader runs as root, ``setpriv`` drops the runner to an unprivileged uid
  of its own (per job slot) with no-new-privileges, so the process limit is real (the kernel does
  not apply RLIMIT_NPROC to root); otherwise the user namespace bwrap creates does the same;
* **limits** (setrlimit, applied by the runner before any student code): address space, CPU
  seconds, processes, file size, open files, no core dumps; wall time is enforced from outside
  by :func:`run`, which also caps the bytes it reads.

``--no-sandbox`` (:class:`Sandbox` with ``enabled=False``) runs the same runner as a plain child
process with the same rlimits and import guard: faults are isolated, the student's code is not.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional, Protocol

__all__ = ["Limits", "Sandbox", "SandboxUnavailable", "Completed", "run", "unavailable_reason", "VIEW_PATH",
           "stop_all", "resume_runs", "slot_uid", "read_events", "tracked"]

ROOT = Path(__file__).resolve().parent.parent
VIEW_PATH = "/opt/graded-helpers"
_SANDBOX_UID_BASE = 200_000


def slot_uid(slot: int) -> int:
    """The unprivileged uid job slot `slot` of this grader runs submissions as (when it runs as root)."""
    return _SANDBOX_UID_BASE + (os.getpid() * 16 + slot) % 1_000_000


class SandboxUnavailable(RuntimeError):
    """No sandbox can be created on this machine (the message says why and what to do)."""


@dataclass
class Limits:
    """Per-submission resource limits (setrlimit in the runner; tmpfs size in bwrap)."""

    memory_mb: int = 2048
    cpu_seconds: int = 120
    processes: int = 64
    file_mb: int = 64
    open_files: int = 256
    tmp_mb: int = 256

    def rlimits(self) -> dict[str, int]:
        return {"as": self.memory_mb * 2**20, "cpu": self.cpu_seconds, "nproc": self.processes,
                "fsize": self.file_mb * 2**20, "nofile": self.open_files}


def _python_dirs(python: str) -> list[str]:
    """Directories the interpreter `python` needs (prefixes, stdlib, site-packages), minus the
    project itself: asked from that interpreter, with a clean environment."""
    code = ("import json, os, sys; print(json.dumps([sys.prefix, sys.base_prefix, sys.exec_prefix, "
            "os.path.realpath(sys.executable)] + [p for p in sys.path if p]))")
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60,
                         env={"PATH": "/usr/bin:/bin", "PYTHONNOUSERSITE": "1"}, check=True).stdout
    prefix, base, exec_prefix, executable, *paths = json.loads(out)
    dirs = [prefix, base, exec_prefix, os.path.dirname(os.path.dirname(executable))]
    project = str(ROOT)
    for p in paths:
        real = os.path.realpath(p)
        inside_project = real == project or real.startswith(project + os.sep)
        inside_prefix = any(real.startswith(d.rstrip(os.sep) + os.sep) for d in dirs)
        if os.path.isdir(real) and not inside_project and not inside_prefix and not real.startswith("/usr/"):
            dirs.append(real)
    unique: list[str] = []
    for d in sorted({os.path.realpath(d) for d in dirs if d}, key=len):
        if d != "/" and not any(d.startswith(u.rstrip(os.sep) + os.sep) for u in unique) and d not in unique:
            unique.append(d)
    for d in unique:  # the project's own files must never be in the sandbox, only its venv
        if d == project or (project.startswith(d + os.sep)):
            raise SandboxUnavailable(f"the Python environment {d} contains the project {project}; "
                                     f"use a virtual environment inside or outside it (make venv)")
    return unique


def _parents(path: str) -> list[str]:
    parts = Path(path).parts[1:-1]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


class Sandbox:
    """The command line (and environment) one submission's runner is started with."""

    def __init__(self, python: str, limits: Limits, view: Path, *, enabled: bool = True) -> None:
        """`view`: the folder the runner imports from (``PYTHONPATH``), mounted read-only."""
        self.python = python
        self.limits = limits
        self.enabled = enabled
        self.view = Path(view)
        for path in [self.view, *self.view.rglob("*")]:  # readable by the runner's unprivileged uid
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        self._base: list[str] = []
        if enabled:
            if shutil.which("bwrap") is None:
                raise SandboxUnavailable(
                    "bubblewrap (bwrap) is not installed, so submissions cannot be sandboxed: install it "
                    "(Debian/Ubuntu: apt-get install bubblewrap; `make venv` does this where apt is available), "
                    "or pass --no-sandbox to grade WITHOUT isolation (only for code you trust)")
            self._base = self._bwrap_args(_python_dirs(python))

    @property
    def label(self) -> str:
        return "bubblewrap" if self.enabled else "NONE (--no-sandbox)"

    def _bwrap_args(self, python_dirs: list[str]) -> list[str]:
        args = ["bwrap", "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
                "--die-with-parent", "--new-session", "--ro-bind", "/usr", "/usr"]
        if os.geteuid() != 0:
            args.insert(1, "--unshare-user")
        for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
            if os.path.islink(top):
                args += ["--symlink", os.readlink(top), top]
            elif os.path.isdir(top):
                args += ["--ro-bind", top, top]
        for f in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime", "/etc/fonts"):
            args += ["--ro-bind-try", f, f]
        args += ["--proc", "/proc", "--dev", "/dev",
                 "--perms", "1777", "--size", str(self.limits.tmp_mb * 2**20), "--tmpfs", "/tmp"]
        bound = python_dirs + ["/usr", VIEW_PATH]
        parents = {p for d in python_dirs + [VIEW_PATH] for p in _parents(d + "/x")
                   if not any(p == b or p.startswith(b + os.sep) for b in bound)}
        for d in python_dirs:
            args += ["--ro-bind", d, d]
        args += ["--ro-bind", str(self.view), VIEW_PATH]
        for p in sorted(parents, key=len):  # mount-point folders bwrap created: readable by the runner's uid
            if p != "/tmp":  # a venv under /tmp (a clone in /tmp) must not make the runner's home read-only
                args += ["--chmod", "0755", p]
        args += ["--chdir", "/tmp"]
        if os.geteuid() == 0:
            args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        return args

    def argv(self, slot: int = 0, program: Optional[list[str]] = None) -> list[str]:
        """The command line that starts `program` (default: the grader's runner) in job slot `slot`."""
        runner = program or [self.python, "-m", "helpers.grading.runner"]
        if not self.enabled:
            return runner
        if os.geteuid() != 0:
            return self._base + ["--"] + runner
        uid = str(slot_uid(slot))
        return self._base + ["--", "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                             "--no-new-privs", "--"] + runner

    def env(self, workdir: str) -> dict[str, str]:
        """A clean environment (nothing of the grader's own, e.g. no tokens)."""
        home = "/tmp" if self.enabled else workdir
        path = VIEW_PATH if self.enabled else str(self.view)
        return {"PATH": "/usr/bin:/bin", "HOME": home, "TMPDIR": home, "LANG": "C.UTF-8", "USER": "student",
                "LOGNAME": "student",
                "MPLBACKEND": "Agg", "MPLCONFIGDIR": os.path.join(home, ".matplotlib"),
                "IPYTHONDIR": os.path.join(home, ".ipython"), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                "OPENBLAS_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1",
                "PYTHONPATH": path}


_PROBE: dict[str, Optional[str]] = {}


def unavailable_reason(python: str = sys.executable) -> Optional[str]:
    """None if a sandbox can be created here (a real bwrap run, cached), else why not."""
    if python not in _PROBE:
        try:
            with tempfile.TemporaryDirectory(prefix="sandbox-probe-") as view:
                box = Sandbox(python, Limits(), Path(view))
                argv = box.argv(0, [python, "-c", "import json"])
                done = subprocess.run(argv, capture_output=True, timeout=60, env=box.env("/tmp"), cwd="/")
                _PROBE[python] = None if done.returncode == 0 else (
                    f"bubblewrap could not create a sandbox here (exit {done.returncode}: "
                    f"{done.stderr.decode('utf-8', 'replace').strip()[:300]})")
        except SandboxUnavailable as exc:
            _PROBE[python] = str(exc)
        except (OSError, subprocess.SubprocessError) as exc:
            _PROBE[python] = f"bubblewrap could not create a sandbox here ({exc})"
    return _PROBE[python]


# --------------------------------------------------------------------------- running one job

class _Pollable(Protocol):
    def poll(self) -> Optional[int]: ...


@dataclass
class Completed:
    """What came back from one runner: the events it sent, and how it ended."""

    events: list[dict] = field(default_factory=list)
    returncode: Optional[int] = None
    killed_for_time: bool = False
    overflow: str = ""      # why reading stopped early (too many bytes, an overlong line)
    malformed: int = 0      # lines that were not protocol events
    seconds: float = 0.0


def _parse(line: bytes, done: Completed, kinds: tuple[str, ...]) -> None:
    try:
        event = json.loads(line)
    except (ValueError, RecursionError):
        done.malformed += 1
        return
    if isinstance(event, dict) and event.get("event") in kinds:
        done.events.append(event)
    else:
        done.malformed += 1


def _feed(proc: subprocess.Popen, data: bytes) -> None:
    try:
        assert proc.stdin is not None
        proc.stdin.write(data)
        proc.stdin.close()
    except (BrokenPipeError, OSError, ValueError):
        pass


_RUNNING: set[int] = set()  # process groups of the runs under way (each in its own session)
_RUNNING_LOCK = threading.Lock()
_STOPPING = threading.Event()


def stop_all() -> None:
    """Kill every run under way and refuse new ones (Ctrl-C: the runs are in sessions of their own, so
    the terminal's SIGINT never reaches them). Until :func:`resume_runs`, :func:`run` starts nothing."""
    _STOPPING.set()
    with _RUNNING_LOCK:
        groups = list(_RUNNING)
    for pid in groups:
        _kill_group(pid)


def resume_runs() -> None:
    """Allow runs again after :func:`stop_all` (the next batch)."""
    _STOPPING.clear()


def run(argv: list[str], job: bytes, *, env: dict[str, str], cwd: str,
        deadline: Callable[[list[dict]], float], max_bytes: int, max_line: int,
        kinds: tuple[str, ...]) -> Completed:
    """Start `argv`, send `job` on its stdin, read its events (JSON lines whose ``"event"`` is one
    of `kinds`) until it exits, and kill its process
    group at ``deadline(events so far)`` (a time.monotonic() value). Every wait is bounded: the
    job is written by a helper thread, the result channel is read in chunks with a timeout, at
    most `max_bytes` in all and `max_line` per line, and a process that has exited is not waited
    for past a short drain even if something still holds its pipe open."""
    done = Completed()
    start = time.monotonic()
    with _RUNNING_LOCK:
        if _STOPPING.is_set():
            done.overflow = "the batch was interrupted"
            return done
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                cwd=cwd, env=env, start_new_session=True)
        _RUNNING.add(proc.pid)
    writer = threading.Thread(target=_feed, args=(proc, job), daemon=True)
    writer.start()
    assert proc.stdout is not None
    try:
        read_events(proc, proc.stdout.fileno(), done, deadline, max_bytes, max_line, kinds)
    finally:
        _kill_group(proc.pid)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        proc.stdout.close()
        with _RUNNING_LOCK:
            _RUNNING.discard(proc.pid)
    done.returncode = proc.returncode
    done.seconds = time.monotonic() - start
    return done


def read_events(proc: "_Pollable", fd: int, done: Completed, deadline: Callable[[list[dict]], float],
                max_bytes: int, max_line: int, kinds: tuple[str, ...]) -> None:
    """Read `proc`'s result channel `fd` (made non-blocking) into `done` until it closes, the process
    has exited (plus a short drain), the deadline passes or a bound is crossed; an unfinished last line
    is parsed too unless a bound was crossed. The caller closes `fd`.
    `proc`: anything whose ``poll()`` gives the exit code once it has exited (a Popen, a fork-server run)."""
    os.set_blocking(fd, False)
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        buffer = _read_lines(proc, fd, selector, done, deadline, max_bytes, max_line, kinds)
    if buffer.strip() and not done.overflow:
        _parse(bytes(buffer), done, kinds)


def _read_lines(proc: "_Pollable", fd: int, selector: selectors.BaseSelector, done: Completed,
                deadline: Callable[[list[dict]], float], max_bytes: int, max_line: int,
                kinds: tuple[str, ...]) -> bytearray:
    """:func:`read_events`' loop: the complete lines parsed into `done`; returns the unfinished last line."""
    buffer, total, exited_at = bytearray(), 0, None
    while True:
        now = time.monotonic()
        if now >= deadline(done.events):
            done.killed_for_time = True
            break
        if exited_at is None and proc.poll() is not None:
            exited_at = now
        if exited_at is not None and now - exited_at > 1.0:
            break  # exited, but a leftover holds the pipe: stop reading
        if not selector.select(timeout=0.1):
            continue
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            continue
        if not chunk:
            break
        total += len(chunk)
        if total > max_bytes:
            done.overflow = f"it sent more than {max_bytes:,} bytes of results"
            break
        buffer += chunk
        *lines, rest = bytes(buffer).split(b"\n")
        buffer = bytearray(rest)
        for line in lines:
            if line.strip():
                _parse(line, done, kinds)
        if len(buffer) > max_line:
            done.overflow = f"it sent a result line longer than {max_line:,} bytes"
            break
    return buffer


@contextlib.contextmanager
def tracked(pid: int) -> Iterator[bool]:
    """While inside, :func:`stop_all` kills process group `pid` too; yields False (and tracks nothing)
    when the batch is being stopped."""
    with _RUNNING_LOCK:
        stopping = _STOPPING.is_set()
        if not stopping:
            _RUNNING.add(pid)
    try:
        yield not stopping
    finally:
        with _RUNNING_LOCK:
            _RUNNING.discard(pid)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
