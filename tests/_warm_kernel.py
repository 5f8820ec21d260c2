"""Warm Jupyter kernels for the test suite: the ``dims-params`` kernel forked from an interpreter that
has already imported torch, instead of a new interpreter importing it for every notebook.

Every chapter notebook nbval runs, each of tests/_one_kernel.py's folders and each nbgrader step starts a
kernel of its own; each new kernel spends ≈ 3 s of CPU on ``import torch``, ``torch._dynamo`` (the first
operation on the meta device imports it), IPython and matplotlib before its first cell. Here each pytest
worker starts one *zygote* (:func:`start`) that imports those modules once, then forks one child per
kernel. The child becomes the kernel exactly as ``python -m ipykernel_launcher -f …`` would: the same
interpreter and flags, the launcher's ``sys.argv`` and ``sys.path``, the kernel's working directory
and environment, a session of its own, fresh ``random``/NumPy seeds; then ipykernel's own
``launch_new_instance()``. Cells, outputs and comparisons are nbval's, unchanged.

How it plugs in: the worker puts a kernelspec of the same name first on ``JUPYTER_PATH`` whose ``argv``
runs this file as a *client* (``… _warm_kernel.py client -- <the installed kernelspec's command>``). The client is the
process jupyter_client started and watches: it hands the zygote its stdio, working directory and
environment, forwards the signals jupyter_client sends (interrupt, terminate), and exits with the
kernel's exit status. If the client is killed, the zygote kills its kernel.

A cold kernel — the installed kernelspec's own command, ``exec``'d by the client — is used whenever a
warm one would not be the same: no zygote (``DP_COLD_KERNELS=1``, or it did not start), or an
environment that differs from the zygote's in anything but jupyter_client's and pytest's own variables
(a test that sets ``HOME`` or ``MPLBACKEND`` gets a cold kernel, since the preloaded modules read their
environment when imported). tests/test_warm_kernel.py compares a warm and a cold kernel.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional

KERNEL = "dims-params"
SOCKET_ENV = "DP_WARM_KERNEL_SOCKET"
COLD_ENV = "DP_COLD_KERNELS"
#: imported by the zygote (after MPLBACKEND is set as ipykernel sets it): what a chapter's first cell costs
#: Not ipykernel (nor debugpy, which it imports): they read jupyter_client's variables (JPY_PARENT_PID,
#: PYDEVD_USE_FRAME_EVAL) when imported, and those differ from kernel to kernel.
PRELOAD = ("torch", "torch._dynamo", "numpy", "matplotlib", "matplotlib.pyplot", "IPython", "zmq",
           "helpers.counting", "helpers.formulas", "helpers.shapes", "helpers.trace", "helpers.models")
#: must not be imported by the zygote (see PRELOAD)
NOT_PRELOADED = ("ipykernel", "debugpy", "matplotlib_inline.backend_inline")
INLINE = "module://matplotlib_inline.backend_inline"  # the backend ipykernel sets when MPLBACKEND is unset
#: variables a kernel's environment may have that the zygote's does not, or with other values: set by
#: jupyter_client, pytest and nbgrader for each kernel or test; PATH (tests/test_nbgrader.py puts the
#: venv's bin/ first, as a shell would); TORCHINDUCTOR_CACHE_DIR, which torch writes into the environment
#: of the process (a pytest worker) that first asks for its cache directory, with the default it would
#: compute anyway. None is read by a preloaded module when it is imported; each kernel gets its own values.
VOLATILE_ENV = ("JPY_", "PYDEVD_", "PYTEST_", "NBGRADER_")
VOLATILE_KEYS = ("PATH", "TORCHINDUCTOR_CACHE_DIR")
WORKDIR_PREFIX = "dp-warm-kernel-"  # a zygote's directory (its kernelspec, socket, log)
_LEN = 8  # bytes of the length prefix of each message
MAX_REQUEST = 1 << 22  # bytes: an environment and a command line are far smaller


# ------------------------------------------------------------------------------------------ wire format
def _send(sock: socket.socket, obj: dict, fds: tuple[int, ...] = ()) -> None:
    data = json.dumps(obj).encode()
    payload = len(data).to_bytes(_LEN, "big") + data
    sent = socket.send_fds(sock, [payload], list(fds)) if fds else sock.send(payload)
    if sent < len(payload):
        sock.sendall(payload[sent:])


def _recv(sock: socket.socket, maxfds: int = 0) -> tuple[Optional[dict], list[int]]:
    """One message (None at EOF) and the file descriptors that came with it."""
    buf, fds = b"", []
    try:
        while len(buf) < _LEN or len(buf) < _LEN + int.from_bytes(buf[:_LEN], "big"):
            if len(buf) > MAX_REQUEST:
                raise ValueError("request too long")
            if maxfds and not fds:
                chunk, got, _flags, _addr = socket.recv_fds(sock, 1 << 16, maxfds)
                fds += got
            else:
                chunk = sock.recv(1 << 16)
            if not chunk:
                return None, fds
            buf += chunk
        return json.loads(buf[_LEN:]), fds
    except (OSError, ValueError):
        for fd in fds:
            os.close(fd)
        raise


def _stable(env: dict) -> dict:
    return {k: v for k, v in env.items() if not k.startswith(VOLATILE_ENV) and k not in VOLATILE_KEYS}


# ------------------------------------------------------------------------------------ the pytest worker
class Zygote:
    """A running zygote and the kernelspec that points at it (see :func:`start`).

    ``env`` holds the two variables a process needs for its ``dims-params`` kernels to be warm:
    ``JUPYTER_PATH`` (this kernelspec first) and the zygote's socket; :meth:`install` sets them here.
    """

    def __init__(self, proc: subprocess.Popen, workdir: Path, log: Path, env: dict[str, str]) -> None:
        self.proc, self.workdir, self.log, self.env = proc, workdir, log, env
        self.kernels = workdir / "kernels"  # the kernelspec directory (for a KernelSpecManager's kernel_dirs)

    def install(self) -> None:
        """From now on, every ``dims-params`` kernel this process starts is warm."""
        os.environ.update(self.env)

    def stop(self) -> None:
        """Stop the zygote (it kills the kernels it forked) and remove its directory. A zygote that
        failed (every kernel then started cold) leaves its log on stderr."""
        if self.proc.poll():
            print(f"warm kernels: the zygote failed (exit {self.proc.returncode}); kernels started cold:\n"
                  + self.log.read_text(errors="replace")[-3000:], file=sys.stderr)
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if os.environ.get(SOCKET_ENV) == self.env[SOCKET_ENV]:
            os.environ.pop(SOCKET_ENV)
        shutil.rmtree(self.workdir, ignore_errors=True)


def _installed_spec():
    """The ``dims-params`` kernelspec as installed (``make venv``), never a zygote's own."""
    from jupyter_client.kernelspec import KernelSpecManager  # noqa: PLC0415
    from jupyter_core.paths import jupyter_path  # noqa: PLC0415

    dirs = [d for d in jupyter_path("kernels") if not Path(d).parent.name.startswith(WORKDIR_PREFIX)]
    return KernelSpecManager(kernel_dirs=dirs).get_kernel_spec(KERNEL)


def start(env: Optional[dict[str, str]] = None) -> Optional[Zygote]:
    """Start a zygote (its imports go on in the background) with the environment `env` (default: this
    process's), which every warm kernel's environment must equal (:data:`VOLATILE_ENV` aside).
    None where kernels stay cold: ``DP_COLD_KERNELS`` set, or no installed ``dims-params`` kernelspec."""
    env = dict(os.environ if env is None else env)
    if env.get(COLD_ENV):
        return None
    try:
        spec_dir = Path(_installed_spec().resource_dir)
        spec = json.loads((spec_dir / "kernel.json").read_text())
        installed = list(spec["argv"])  # the cold kernel's command, {connection_file} unsubstituted
        interpreter = installed[:installed.index("-m")]  # the python and its flags
        assert installed[len(interpreter):len(interpreter) + 2] == ["-m", "ipykernel_launcher"]
    except Exception:  # no such kernelspec, or one that is not ipykernel's launcher: nothing to make warm
        return None
    workdir = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX))
    sock_path = str(workdir / "zygote.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(sock_path)  # bound here: a client can connect (and wait) before the zygote has imported
    listener.listen(16)
    script = str(Path(__file__).resolve())
    spec["argv"] = [*interpreter, script, "client", "--", *installed]  # the cold command after "--"
    kdir = workdir / "kernels" / KERNEL
    kdir.mkdir(parents=True)
    (kdir / "kernel.json").write_text(json.dumps(spec, indent=1))
    log = Path(env.get("DP_WARM_KERNEL_LOG") or workdir / "zygote.log")  # one line per kernel: warm/cold
    ours = {"JUPYTER_PATH": os.pathsep.join(filter(None, [str(workdir), env.get("JUPYTER_PATH")])),
            SOCKET_ENV: sock_path}
    with open(log, "ab") as out:
        proc = subprocess.Popen([*interpreter, script, "serve", str(listener.fileno()), str(os.getpid())],
                                env={**env, **ours}, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                pass_fds=(listener.fileno(),), start_new_session=True)
    listener.close()
    return Zygote(proc, workdir, log, ours)


# ---------------------------------------------------------------------------------------------- client
def _cold(cold: list[str], why: str) -> None:
    """Become the installed kernelspec's own kernel (same pid: jupyter_client keeps watching it)."""
    os.environ.pop(SOCKET_ENV, None)
    if os.environ.get("DP_WARM_KERNEL_DEBUG"):
        print(f"[warm kernel] cold: {why}", file=sys.stderr)
    os.execv(cold[0], cold)


def client(cold: list[str]) -> None:
    """The process jupyter_client launched: a warm kernel's stand-in (signals in, exit status out).
    `cold` is the installed kernelspec's command, connection file filled in."""
    args = cold[cold.index("ipykernel_launcher") + 1:]  # what the launcher would be given
    path = os.environ.get(SOCKET_ENV)
    if not path:
        _cold(cold, "no zygote")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
        _send(sock, {"argv": args, "cwd": os.getcwd(), "env": dict(os.environ)}, (0, 1, 2))
        reply, _ = _recv(sock)
    except OSError as exc:
        reply = {"cold": f"zygote unreachable ({exc})"}
    if not reply or "pid" not in reply:
        sock.close()
        _cold(cold, (reply or {}).get("cold", "zygote closed the connection"))
    pid = reply["pid"]

    def forward(signum, _frame):
        _kill(pid, signum)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, forward)
    done, _ = _recv(sock)  # a forwarded signal interrupts the wait; Python resumes it (PEP 475)
    code = done["exit"] if done else 1  # no message: the zygote is gone, and its kernels with it
    if code < 0:  # killed by a signal: end the same way
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    sys.exit(code)


# ---------------------------------------------------------------------------------------------- zygote
def _kill(pid: int, sig: int) -> None:
    """Send `sig` to `pid` if it still exists."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _refuse(conn: socket.socket, fds: list[int]) -> None:
    conn.close()
    for fd in fds:
        os.close(fd)


def _die_with_parent(sig: int) -> None:
    import ctypes  # noqa: PLC0415

    ctypes.CDLL(None, use_errno=True).prctl(1, sig)  # PR_SET_PDEATHSIG


def differing(env: dict[str, str], base: dict[str, str]) -> list[str]:
    """The variables, :data:`VOLATILE_ENV` aside, that a kernel's environment `env` has with another value
    than the zygote's `base` has, or that only one of them has (sorted); [] when a warm kernel is the same."""
    env, base = _stable(env), _stable(base)
    return sorted(k for k in env.keys() | base.keys() if env.get(k) != base.get(k))


def _valid(request: object) -> bool:
    return (isinstance(request, dict) and isinstance(request.get("cwd"), str)
            and isinstance(request.get("argv"), list) and all(isinstance(a, str) for a in request["argv"])
            and isinstance(request.get("env"), dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in request["env"].items()))


def serve(listen_fd: int, parent: int) -> dict:
    """The zygote: preload, then fork one kernel per client. Returns only in a forked child, with the
    client's request (the caller turns the child into the kernel)."""
    import gc  # noqa: PLC0415
    import selectors  # noqa: PLC0415

    gc.disable()
    _die_with_parent(signal.SIGTERM)
    if os.getppid() != parent:
        sys.exit(0)
    base_env = dict(os.environ)  # what a kernel's environment must equal, volatile variables aside
    preset = "MPLBACKEND" in os.environ
    os.environ.setdefault("MPLBACKEND", INLINE)  # as ipykernel sets it before a kernel's first cell
    for name in PRELOAD:
        __import__(name)
    if not preset:
        del os.environ["MPLBACKEND"]  # each kernel sets it again itself
    import random  # noqa: PLC0415

    threads = os.listdir("/proc/self/task")
    assert len(threads) == 1, f"the zygote must be single-threaded to fork safely (threads: {threads})"
    early = [name for name in NOT_PRELOADED if name in sys.modules]
    assert not early, f"imported by the zygote, must be imported by each kernel: {early}"
    # Python's advice for fork without exec (the gc module's docs, gc.freeze): collections disabled while
    # the parent builds its objects, frozen right before fork, enabled again in the child — its
    # collections (and its exit) then never walk the preloaded modules' objects.
    gc.freeze()
    listener = socket.socket(fileno=listen_fd)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, ("accept", None))
    children: dict[int, tuple[socket.socket, int]] = {}  # pid → (client connection, pidfd)
    orphans: set[int] = set()  # kernels whose client is gone

    def stop(_signum, _frame):
        for pid in children:
            _kill(pid, signal.SIGKILL)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    while True:
        for key, _ in sel.select():
            kind, pid = key.data
            if kind == "accept":
                conn, _ = listener.accept()
                conn.settimeout(5.0)  # a client sends its request at once; one that stalls is dropped
                try:
                    request, fds = _recv(conn, maxfds=3)
                except (OSError, ValueError):
                    request, fds = None, []
                if not _valid(request) or len(fds) != 3:
                    _refuse(conn, fds)
                    continue
                names = differing(request["env"], base_env)
                if names:
                    _send(conn, {"cold": f"environment differs from the zygote's: {', '.join(names)}"})
                    print(f"cold ({', '.join(names)}) {request['env'].get('PYTEST_CURRENT_TEST', '?')}", flush=True)
                    _refuse(conn, fds)
                    continue
                conn.settimeout(None)
                child = os.fork()
                if child == 0:
                    signal.signal(signal.SIGTERM, signal.SIG_DFL)
                    sel.close()
                    listener.close()
                    for other, pidfd in children.values():
                        other.close()
                        os.close(pidfd)
                    conn.close()
                    _die_with_parent(signal.SIGKILL)
                    os.setsid()
                    for i, fd in enumerate(fds):
                        os.dup2(fd, i)
                        os.close(fd)
                    gc.enable()
                    # seeded as a new interpreter's are (each differs from the next kernel's)
                    random.seed()
                    sys.modules["numpy"].random.seed()
                    sys.modules["torch"].seed()
                    return request
                for fd in fds:
                    os.close(fd)
                pidfd = os.pidfd_open(child)
                children[child] = (conn, pidfd)
                sel.register(pidfd, selectors.EVENT_READ, ("exit", child))
                sel.register(conn, selectors.EVENT_READ, ("client", child))
                _send(conn, {"pid": child})
                print(f"warm {child} {request['env'].get('PYTEST_CURRENT_TEST', '?')}", flush=True)
            elif kind == "exit":
                conn, pidfd = children.pop(pid)
                _, status = os.waitpid(pid, 0)
                sel.unregister(pidfd)
                os.close(pidfd)
                if pid not in orphans:
                    sel.unregister(conn)
                orphans.discard(pid)
                try:
                    _send(conn, {"exit": os.waitstatus_to_exitcode(status)})
                except OSError:
                    pass
                conn.close()
            elif kind == "client":  # the client died (it never writes again): its kernel goes too
                _kill(pid, signal.SIGKILL)
                sel.unregister(children[pid][0])
                orphans.add(pid)  # reaped by its "exit" event


def _become_kernel(request: dict) -> None:
    import ipykernel_launcher  # noqa: PLC0415

    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    os.environ.pop(SOCKET_ENV, None)
    sys.argv = [ipykernel_launcher.__file__, *request["argv"]]
    from ipykernel import kernelapp  # noqa: PLC0415

    kernelapp.launch_new_instance()


if __name__ == "__main__":
    # as ipykernel_launcher does: nothing is imported from the script's own folder (tests/)
    del sys.path[0]
    if sys.argv[1] == "client":  # client -- <the installed kernelspec's command>
        client(sys.argv[sys.argv.index("--") + 1:])
    elif sys.argv[1] == "serve":
        _become_kernel(serve(int(sys.argv[2]), int(sys.argv[3])))
