"""The suite's warm kernels (tests/_warm_kernel.py) are the kernels a student gets, only started faster.

A kernel forked from this file's own zygote is compared with a cold one (the installed kernelspec's
command) on what a notebook can see of its process: interpreter, flags, ``sys.argv``/``sys.path``,
working directory, environment, matplotlib's backend, threads, session; seeds must differ from kernel
to kernel as they do between new interpreters. Then the lifecycle jupyter_client relies on: an
interrupt reaches the cell, a kernel's exit status reaches jupyter_client, a killed client takes its
kernel with it, a kernel whose environment differs starts cold, and the zygote survives hostile
requests.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

from tests import _warm_kernel as wk

ROOT = Path(__file__).resolve().parents[1]
PROBE = r"""
import json, os, random, sys, threading
import matplotlib, numpy, torch
print(json.dumps({
    "executable": sys.executable, "argv0": sys.argv[0], "path": sys.path, "cwd": os.getcwd(),
    "flags": repr(sys.flags), "xoptions": sys._xoptions, "backend": matplotlib.get_backend(),
    "env": dict(os.environ), "session_leader": os.getsid(0) == os.getpid(), "ppid": os.getppid(),
    "pid": os.getpid(), "threads": torch.get_num_threads(), "main": repr(sys.modules["__main__"]),
    "seeds": [random.random(), float(numpy.random.random()), torch.initial_seed()],
}))
"""


@pytest.fixture(scope="module")
def zygote(request: pytest.FixtureRequest) -> wk.Zygote:
    """This worker's own zygote (conftest.py starts it for the whole run)."""
    z = getattr(request.config, "_warm_zygote", None)
    if z is None:
        pytest.skip("warm kernels are off (DP_COLD_KERNELS) or no dims-params kernelspec is installed")
    return z


def _start(zygote, env: dict | None = None, cwd: Path = ROOT / "notebooks") -> KernelManager:
    km = KernelManager(kernel_name=wk.KERNEL,
                       kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(zygote.kernels)]))
    km.start_kernel(env={**os.environ, **zygote.env, **(env or {})}, cwd=str(cwd))
    return km


def _run(km: KernelManager, code: str, timeout: float = 60) -> tuple[str, list[str]]:
    """stdout of `code` and the names of the errors it raised."""
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    out, errors = [], []

    def hook(msg):
        if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            errors.append(msg["content"]["ename"])

    try:
        kc.execute_interactive(code, output_hook=hook, timeout=timeout)
    finally:
        kc.stop_channels()
    return "".join(out), errors


def _probe(km: KernelManager) -> dict:
    out, errors = _run(km, PROBE)
    assert not errors, errors
    return json.loads(out)


def _cold(zygote, **kw) -> KernelManager:
    """A cold kernel through the same kernelspec: no zygote socket in its environment."""
    km = KernelManager(kernel_name=wk.KERNEL, kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(zygote.kernels)]))
    env = {k: v for k, v in {**os.environ, **zygote.env}.items() if k != wk.SOCKET_ENV}
    km.start_kernel(env=env, cwd=str(ROOT / "notebooks"), **kw)
    return km


def test_a_warm_kernel_sees_the_process_a_cold_one_sees(zygote):
    warm1, warm2, cold = _start(zygote), _start(zygote), _cold(zygote)
    try:
        w1, w2, c = _probe(warm1), _probe(warm2), _probe(cold)
    finally:
        for km in (warm1, warm2, cold):
            km.shutdown_kernel(now=True)
    assert w1["ppid"] == w2["ppid"] == zygote.proc.pid, "the warm kernels are the zygote's children"
    assert c["ppid"] != zygote.proc.pid and c["ppid"] == os.getpid(), "the cold one is jupyter_client's child"
    same = ("executable", "argv0", "path", "cwd", "flags", "xoptions", "backend", "session_leader", "threads", "main")
    for key in same:
        assert w1[key] == c[key], key
    assert c["backend"] == wk.INLINE  # as ipykernel sets it: figures are shown inline
    # the environment: the same but for the variables jupyter_client sets per kernel (JPY_PARENT_PID)
    differ = {k for k in set(w1["env"]) | set(c["env"]) if w1["env"].get(k) != c["env"].get(k)}
    assert differ <= {"JPY_PARENT_PID"}, differ
    assert wk.SOCKET_ENV not in w1["env"] and wk.SOCKET_ENV not in c["env"]
    # each new interpreter draws its own seeds: so does each warm kernel
    assert len({tuple(w1["seeds"]), tuple(w2["seeds"]), tuple(c["seeds"])}) == 3
    assert all(a != b for a, b in zip(w1["seeds"], w2["seeds"]))


def test_an_interrupt_reaches_the_running_cell(zygote):
    km = _start(zygote)
    try:
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        msg_id = kc.execute("import time\ntime.sleep(60)")
        time.sleep(1.0)
        t0 = time.monotonic()
        km.interrupt_kernel()
        reply = kc.get_shell_msg(timeout=20)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = kc.get_shell_msg(timeout=20)
        assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "KeyboardInterrupt"
        assert time.monotonic() - t0 < 20
        kc.stop_channels()
        assert _run(km, "print(6 * 7)") == ("42\n", [])  # and the kernel lives on
    finally:
        km.shutdown_kernel(now=True)


def test_the_kernels_exit_status_reaches_jupyter_client(zygote):
    km = _start(zygote)
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    kc.execute("import os; os._exit(3)")
    deadline = time.monotonic() + 20
    while km.is_alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    kc.stop_channels()
    assert not km.is_alive()
    assert km.provisioner.process.returncode == 3
    km.cleanup_resources()


def test_a_killed_client_takes_its_kernel_with_it(zygote):
    km = _start(zygote)
    out, _ = _run(km, "import os; print(os.getpid(), os.getppid())")
    pid, ppid = map(int, out.split())
    assert ppid == zygote.proc.pid
    km.provisioner.process.kill()  # SIGKILL: the client cannot pass anything on
    km.provisioner.process.wait()
    deadline = time.monotonic() + 20
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid), "the kernel outlived its client"
    km.cleanup_resources()


def _alive(pid: int) -> bool:
    """`pid` exists and is not a zombie. A process reaped between the open and the read of its stat file
    makes the read fail with ESRCH (ProcessLookupError): gone too."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def test_a_kernel_whose_environment_differs_starts_cold(zygote):
    km = _start(zygote, {"MPLBACKEND": "agg"})
    try:
        seen = _probe(km)
    finally:
        km.shutdown_kernel(now=True)
    assert seen["ppid"] == os.getpid(), "a warm kernel would have imported matplotlib with the inline backend"
    assert seen["backend"] == "agg"


@pytest.mark.parametrize(("change", "expected"), [
    ({"MPLBACKEND": "agg"}, ["MPLBACKEND"]), ({"OMP_NUM_THREADS": "2"}, ["OMP_NUM_THREADS"]),
    ({"HOME": None}, ["HOME"]), ({"A_NEW_ONE": "1", "HOME": "/elsewhere"}, ["A_NEW_ONE", "HOME"]),
    ({"JPY_PARENT_PID": "1", "PYTEST_CURRENT_TEST": "x", "NBGRADER_EXECUTION": "autograde", "PATH": "/bin",
      "TORCHINDUCTOR_CACHE_DIR": "/tmp/torchinductor_root"}, []),
    ({"PATHEXT": "x"}, ["PATHEXT"]),
])
def test_which_environments_get_a_warm_kernel(change, expected):
    base = {"HOME": "/root", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin", "JPY_PARENT_PID": "7"}
    env = {k: v for k, v in {**base, **change}.items() if v is not None}
    assert wk.differing(env, base) == expected


def test_no_zygote_means_a_cold_kernel(zygote, tmp_path):
    km = _start(zygote, {wk.SOCKET_ENV: str(tmp_path / "nobody.sock")})
    try:
        out, errors = _run(km, "import os; print(os.getppid(), os.getcwd())")
    finally:
        km.shutdown_kernel(now=True)
    assert (out, errors) == (f"{os.getpid()} {ROOT / 'notebooks'}\n", [])


HOSTILE = [
    b"", b"\x00" * 3, (9).to_bytes(8, "big") + b"{not json", (2).to_bytes(8, "big") + b"[]",
    (2**40).to_bytes(8, "big") + b"{}", (33).to_bytes(8, "big") + b'{"argv": [1], "cwd": 2, "env": 3}',
    (2**40).to_bytes(8, "big") + b"x" * (wk.MAX_REQUEST + (1 << 16)),  # endless
    None,  # a well-formed request without the three file descriptors
]


def test_the_zygote_survives_hostile_requests(zygote):
    for payload in HOSTILE:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(zygote.env[wk.SOCKET_ENV])
            s.settimeout(10)
            try:
                if payload is None:
                    wk._send(s, {"argv": ["-f", "x.json"], "cwd": "/", "env": {}})
                else:
                    s.sendall(payload)
                s.shutdown(socket.SHUT_WR)
            except BrokenPipeError:  # the zygote stopped reading: as good as a refusal
                pass
            try:
                answer = s.recv(1 << 16)
            except ConnectionResetError:  # closed with our bytes unread
                answer = b""
            assert answer == b"", f"a hostile request got an answer: {payload[:40]!r}"
        assert zygote.proc.poll() is None, payload[:40]
    km = _start(zygote)
    try:
        assert _run(km, "import os; print(os.getppid())") == (f"{zygote.proc.pid}\n", [])  # still forking
    finally:
        km.shutdown_kernel(now=True)
