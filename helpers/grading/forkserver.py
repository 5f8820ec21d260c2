"""The grader's fork server (internal): one long-lived interpreter per job slot, INSIDE the bubblewrap
sandbox, that imports torch, IPython and the runner once and then forks one child per submission.

Started by :mod:`helpers.grading.warm` as ``python -m helpers.grading.forkserver FD`` in the same
bubblewrap sandbox as a per-submission runner (read-only ``/usr``, Python, the graded view; no
project files, no network), but kept root with ``CAP_SYS_ADMIN``/``CAP_NET_ADMIN``/``CAP_SETUID``/``CAP_SETGID`` so it
can give each child namespaces of its own (and bring up their loopback). ``FD`` is a ``SOCK_SEQPACKET`` control socket:

* grader → server: ``{"run": {"uid": …, "tmp_mb": …}}`` with two file descriptors attached
  (SCM_RIGHTS): the read end of the job pipe and the write end of the result pipe; ``{"kill": true}``
  ends the child under way;
* server → grader: ``{"ready": …}`` once after the imports, then one ``{"exit": returncode}`` per run
  (negative: killed by that signal, as in :mod:`subprocess`).

Per submission the server forks a *supervisor*, which closes the control socket, enters new mount,
PID, network, IPC, UTS and cgroup namespaces and forks their *init* (PID 1, root, trusted code only):
it mounts a fresh size-capped ``/tmp`` (and ``/dev/shm``) and its own ``/proc``, brings up the
loopback, forks the submission's process and reaps every orphan until that process exits; its own
exit (or the server killing it at the deadline) makes the kernel end every process the submission
started. The submission's process starts a new session, drops to the slot's unprivileged uid with no
groups, no capabilities and no-new-privileges, puts the job pipe on stdin and the result pipe on
stdout, closes every other descriptor and runs :func:`helpers.grading.runner.main` (rlimits,
import guard, cells, answers) — as in a fresh bubblewrap sandbox, its parent is a root-owned init it
cannot signal. The server never reads a job, so no submission's code passes through the memory the
next child is forked from; pids and wait statuses come back on a private pipe. A crash, timeout or
memory blow-up ends only that child; the server answers the next request. The address-space limit
counts the preloaded torch (≈ 0.6 GB of mappings), as it did for a submission that imported torch.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import select
import signal
import socket
import struct
import sys
from typing import Optional

__all__ = ["CONTROL_BYTES", "main", "serve"]

CONTROL_BYTES = 4096
_NEW_NS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x20000000 | 0x40000000  # ns cgroup uts ipc pid net
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MS_BIND, _MS_REC, _MS_PRIVATE = 2, 4, 8, 4096, 16384, 1 << 18
_PR_SET_PDEATHSIG, _PR_SET_NO_NEW_PRIVS = 1, 38
_SIOCGIFFLAGS, _SIOCSIFFLAGS = 0x8913, 0x8914
_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source: str, target: str, fstype: Optional[str], flags: int, data: Optional[str] = None) -> None:
    _check(_libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None,
                       ctypes.c_ulong(flags), data.encode() if data else None), f"mount {target}")


def _loopback_up() -> None:
    """Bring up ``lo`` in the new network namespace, as bwrap does: a loopback nobody listens on."""
    import fcntl

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(sock, _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | 1))  # IFF_UP


def _preload() -> None:
    """Everything a submission's runner imports, once (the children share it copy-on-write)."""
    import IPython.core.interactiveshell  # noqa: F401
    import numpy  # noqa: F401
    import torch
    import torch.nn  # noqa: F401

    from helpers.checks import graded, module_answer, protocol  # noqa: F401 — module_answer used below
    from helpers.grading import runner  # noqa: F401

    torch.set_num_threads(1)
    module_answer.warm_up()  # torch's one-off meta set-up (it imports torch._dynamo: seconds), once


def _mounts_under_tmp(mountinfo: str = "/proc/self/mountinfo") -> list[str]:
    """The outermost mount points below /tmp: the read-only binds bubblewrap made there for a Python
    environment under /tmp (a clone in /tmp: its .venv). Mount points are field 5 of mountinfo, with
    space, tab, newline and backslash written as octal escapes."""
    with open(mountinfo, encoding="utf-8") as f:
        points = [re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4]) for line in f]
    under = sorted({p for p in points if p.startswith("/tmp/")}, key=len)
    return [p for i, p in enumerate(under) if not any(p.startswith(q + "/") for q in under[:i])]


def _fresh_tmp(size_mb: int) -> None:
    """A new size-capped /tmp, with bubblewrap's binds below /tmp (the environment a clone in /tmp
    runs from) bound again onto it: a bind copies its source mount's flags, so they stay read-only."""
    kept = {p: os.open(p, os.O_PATH | os.O_DIRECTORY) for p in _mounts_under_tmp()}
    _mount("tmpfs", "/tmp", "tmpfs", _MS_NOSUID | _MS_NODEV, f"size={size_mb}m,mode=1777")
    for path, fd in kept.items():
        os.makedirs(path, mode=0o755, exist_ok=True)
        _mount(f"/proc/self/fd/{fd}", path, None, _MS_BIND | _MS_REC)
        os.close(fd)


def _private_mounts(request: dict) -> None:
    """In the namespaces' init (still root): its own /tmp (size-capped), /dev/shm and /proc, and a loopback."""
    _mount("none", "/", None, _MS_REC | _MS_PRIVATE)
    _fresh_tmp(int(request["tmp_mb"]))
    if os.path.isdir("/dev/shm"):
        _mount("tmpfs", "/dev/shm", "tmpfs", _MS_NOSUID | _MS_NODEV, "size=16m,mode=1777")
    _mount("proc", "/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
    _loopback_up()


def _drop_privileges(uid: int) -> None:
    """A new session, then `uid` with no groups, no capabilities (root → non-zero uid) and no new privileges."""
    os.setsid()
    os.chdir("/tmp")
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    _check(_libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    _check(_libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "pdeathsig")


def _run_runner(uid: int, job_fd: int, result_fd: int) -> None:
    """The submission's process: drop privileges, wire the pipes to stdin/stdout, run; never returns."""
    code = 1
    try:
        _drop_privileges(uid)
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(job_fd, 0)
        os.dup2(result_fd, 1)
        os.dup2(devnull, 2)
        os.closerange(3, os.sysconf("SC_OPEN_MAX") if os.sysconf("SC_OPEN_MAX") > 0 else 65536)
        from helpers.grading import runner

        runner.main()  # ends with os._exit(0)
        code = 0
    except BaseException:  # noqa: BLE001 — nothing may return into the server's loop
        code = 1
    finally:
        os._exit(code)


def _init(request: dict, job_fd: int, result_fd: int, report_fd: int) -> None:
    """PID 1 of the new namespaces (root, trusted code only): mount, fork the submission's process,
    reap every orphan until it exits, report its wait status; never returns. Its exit ends the
    namespace: every process the submission started is killed."""
    try:
        _check(_libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "pdeathsig")
        _private_mounts(request)
        child = os.fork()
        if child == 0:
            _run_runner(int(request["uid"]), job_fd, result_fd)
        os.close(job_fd)
        os.close(result_fd)
        while True:
            pid, status = os.wait()
            if pid == child:
                os.write(report_fd, struct.pack("qq", 1, status))
                break
    finally:
        os._exit(0)


def _supervise(control: socket.socket, report_fd: int, request: dict, job_fd: int, result_fd: int) -> None:
    """The supervisor (forked by the server): new namespaces, fork their init, report its pid and wait
    status on `report_fd`; never returns."""
    try:
        control.close()
        _check(_libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "pdeathsig")
        _check(_libc.unshare(_NEW_NS), "unshare")
        pid = os.fork()
        if pid == 0:
            _init(request, job_fd, result_fd, report_fd)
        os.close(job_fd)
        os.close(result_fd)
        os.write(report_fd, struct.pack("qq", 0, pid))
        _, status = os.waitpid(pid, 0)
        os.write(report_fd, struct.pack("qq", 2, status))
    finally:
        os._exit(0)


def _returncode(status: int) -> int:
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _one_run(control: socket.socket, request: dict, fds: list[int]) -> Optional[int]:
    """Fork the supervisor for one submission and wait for it (or a kill request); the returncode of
    the submission's process (else of its init: ``-9`` when killed), None if nothing was reported."""
    job_fd, result_fd = fds
    report_r, report_w = os.pipe()
    supervisor = os.fork()
    if supervisor == 0:
        os.close(report_r)
        _supervise(control, report_w, request, job_fd, result_fd)
    for fd in (report_w, job_fd, result_fd):
        os.close(fd)
    runner, code, buffer, killing = None, None, b"", False
    while True:
        ready, _, _ = select.select([control, report_r], [], [])
        if control in ready:
            data = control.recv(CONTROL_BYTES)
            if not data:  # the grader is gone
                break
            killing = killing or bool(json.loads(data).get("kill"))
        if report_r in ready:
            chunk = os.read(report_r, 16)
            if not chunk:
                break
            buffer += chunk
            while len(buffer) >= 16:
                kind, value = struct.unpack("qq", buffer[:16])
                buffer = buffer[16:]
                if kind == 0:
                    runner = value  # the init: killing it ends the submission's namespace
                elif kind == 1 or code is None:  # the submission's own status, else its init's
                    code = _returncode(value)
        if killing and runner is not None:
            _kill(runner)
    if runner is not None:
        _kill(runner)
    os.close(report_r)
    os.waitpid(supervisor, 0)
    return code


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)  # PID 1 of its namespace: every process of the submission ends
    except ProcessLookupError:
        pass


def serve(control: socket.socket) -> None:
    """Answer run requests on `control` until the grader closes it."""
    control.send(json.dumps({"ready": os.getpid()}).encode())
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(control, CONTROL_BYTES, 2)
        except ConnectionResetError:
            return
        if not data:
            return
        message = json.loads(data)
        if "run" not in message or len(fds) != 2:
            for fd in fds:
                os.close(fd)
            continue
        code = _one_run(control, message["run"], fds)
        control.send(json.dumps({"exit": code}).encode())


def main() -> None:
    control = socket.socket(fileno=int(sys.argv[1]))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _preload()
    serve(control)


if __name__ == "__main__":
    main()
