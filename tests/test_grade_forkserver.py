"""The grader's fork server (issue 24 item 11): one warm sandbox per job slot, a fresh child per submission.

* the same scores, statuses and reasons as a fresh sandbox per submission, on a mixed class (the
  chapter-05 fault cases of tests/grade_submissions.py, the chapter-01 one, chapter 02's solution
  and untouched exercise);
* hostile submissions graded one after the other by ONE server (fork bomb, reading another
  submission's file, network, writing outside /tmp, ``os._exit``, an infinite loop, a memory hog,
  killing the parent via ``os.getppid``, killing every process it can see, files left in /tmp for
  the next student) are each contained and reported, and the server is still the same process;
* each child runs in namespaces of its own (it sees only itself and their init), as an
  unprivileged uid without capabilities, with an empty /tmp of its own, and the server's memory
  (what the next child is forked from) never holds a submission's code;
* a server that dies (between submissions or during one) is restarted; where none can start the
  grader says why once and grades the old way.

The batches and the direct tests use the session's fork servers (tests/_grader_fixtures.py: started
once per worker, lent to every grader test of that worker), so the attacks above and the kills below
hit the servers the other tests grade with; only the fall-back and the environment-under-/tmp tests
start servers of their own. Skipped, with the reason, where this machine cannot create a sandbox or
the grader is not root.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest

from helpers import grade as grader
from helpers.checks import protocol
from helpers.checks.graded import build_view
from helpers.grading.plan import GradingPlan, Settings
from helpers.grading.run import kernel_python
from helpers.grading.sandbox import Limits, Sandbox, unavailable_reason
from helpers.grading import warm
from tests._grader_fixtures import sharing
from tests.grade_submissions import (SETUP_05, SOLUTION_CELLS_05, base_submission_05, build_submissions, insert_after,
                                     leftover_pids, questions_05, set_source, tcp_listener, write_submissions)

ROOT = Path(__file__).resolve().parents[1]
REASON = unavailable_reason(kernel_python()) or (None if os.geteuid() == 0 else "the grader does not run as root")
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"no fork server here: {REASON}")

QUESTIONS = [q.id for q in questions_05()]
VAN = QUESTIONS[0]
N = len(QUESTIONS)
REST = N - 3  # an attack in vanilla_rnn_params' cell also fails the two answers that call it
TIMEOUT, QUESTION_TIMEOUT = 2, 1  # the honest cases' cells take ~0.1 s; the infinite loop and fork bomb 2 s + grace
MARK = "4343.125"  # `sleep MARK`: processes left behind by a submission


def _box(tmp: Path) -> Sandbox:
    return Sandbox(kernel_python(), Limits(), build_view(tmp / "view"))


def _comparable(report) -> list[tuple]:
    return [(q.id, q.status, q.points, q.reason) for q in report.questions] + [(report.status, tuple(report.notes))]


#: the mixed class in two batches, each graded both ways: the torch-free chapter-05 fault cases with short
#: limits (their cells take ~0.1 s; the infinite loops then cost 2 s and 1 s, not 5 s and 2 s), and the
#: notebooks whose cells import torch (the chapter-01 case, chapter 02's solution and untouched exercise)
#: with limits far above a cold import of torch in a fresh sandbox (none of them waits on a limit: a
#: generous one costs nothing, and a 5 s one timed out on a loaded machine, once, in the fresh sandbox only)
MIXED_LIMITS = {"torch-free": {"timeout": 2, "question_timeout": 1}, "torch": {"timeout": 30, "question_timeout": 5}}


def test_the_same_scores_as_a_fresh_sandbox_each_on_a_mixed_class(tmp_path, fork_servers):
    cases = build_submissions(tmp_path / "class")
    classes = {"torch-free": [p for name, p in cases.items() if name != "wrong"], "torch": [cases["wrong"]]}
    for folder in ("solutions", "exercises"):
        shutil.copyfile(ROOT / folder / "02_convolution_exercises.ipynb", tmp_path / f"02_{folder}.ipynb")
        classes["torch"].append(tmp_path / f"02_{folder}.ipynb")
    questions = QUESTIONS + [q.id for q in GradingPlan.build("01", 0).questions] + \
        [q.id for q in GradingPlan.build("02", 0).questions]
    runs: dict[bool, dict] = {True: {}, False: {}}
    seconds = dict.fromkeys(runs, 0.0)
    for kind, paths in classes.items():
        for fork_server in (True, False):
            began = time.monotonic()
            with sharing(fork_servers):  # the fork server: the session's (started once per worker)
                batch = grader.grade_class(paths, jobs=2, seed=2024, progress=False, questions=questions,
                                           fork_server=fork_server, **MIXED_LIMITS[kind])
            runs[fork_server] |= {r.submission: _comparable(r) for r in batch.reports}
            seconds[fork_server] += time.monotonic() - began
    warm_reports, cold_reports = runs[True], runs[False]
    assert set(warm_reports) == set(cold_reports) == {str(p) for paths in classes.values() for p in paths}
    for path in warm_reports:
        assert warm_reports[path] == cold_reports[path], path
    statuses = {r[-1][0] for r in warm_reports.values()}
    assert {"ok", "timeout", "memory", "crashed", "cell_errors", "forbidden_import", "invalid_notebook"} <= statuses
    print(f"{len(warm_reports)} submissions: fork server {seconds[True]:.1f} s, "
          f"a fresh sandbox each {seconds[False]:.1f} s")


# --------------------------------------------------------------------------- hostile, one server


def _hostile(folder: Path, tcp_port: int) -> dict[str, dict]:
    base = base_submission_05()
    victim = folder / "05_honest.ipynb"
    cases: dict[str, dict] = {}

    def variant(name: str, solution: str | None = None, after_setup: str | None = None) -> None:
        nb = copy.deepcopy(base)
        if solution is not None:
            set_source(nb, SOLUTION_CELLS_05[0], solution)
        if after_setup is not None:
            insert_after(nb, SETUP_05, after_setup, f"attack-{name}")
        cases[name] = nb

    variant("honest")
    variant("leave_files", after_setup=f"open('/tmp/answers.txt', 'w').write('42')\n"
                                       f"open('/dev/shm/answers.txt', 'w').write('42')\n"
                                       "import subprocess\n"
                                       f"subprocess.Popen(['sleep', '{MARK}'], start_new_session=True)\n")
    variant("read_left_files", after_setup="import os\nleft = [p for p in ('/tmp/answers.txt', '/dev/shm/answers.txt') "
                                           "if os.path.exists(p)]\nraise RuntimeError(f'left for me: {left}')\n")
    variant("fork_bomb", after_setup="import os\nwhile True:\n    os.fork()\n")
    variant("read_other_submission", "def vanilla_rnn_params(input_size, hidden_size, num_layers=1, bias=True, "
                                     f"bidirectional=False):\n    open({str(victim)!r}).read()\n")
    variant("network", after_setup=f"import socket\nsocket.create_connection(('127.0.0.1', {tcp_port}), timeout=2)\n")
    variant("write_outside_tmp", after_setup="import os\nfailed = []\n"
                                             "for path in ['/usr/x', '/x', '/opt/graded-helpers/helpers/x.py', "
                                             f"{str(victim)!r}]:\n"
                                             "    try:\n        open(path, 'w').write('x')\n"
                                             "    except OSError:\n        failed.append(path)\n"
                                             "assert len(failed) == 4, failed\nopen('/tmp/mine.txt', 'w').write('ok')\n"
                                             "raise RuntimeError('all four refused')\n")
    variant("os_exit", after_setup="import os\nos._exit(3)\n")
    variant("infinite_loop", after_setup="import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
                                         "while True:\n    pass\n")
    variant("memory_hog", after_setup="hog = []\nwhile True:\n    hog.append(bytes(50 * 2**20))\n")
    variant("kill_parent", after_setup="import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n")
    variant("kill_everything", after_setup="import os, signal\n"
                                           "for pid in [int(p) for p in os.listdir('/proc') if p.isdigit()] + [-1]:\n"
                                           "    if pid != os.getpid():\n"
                                           "        try:\n            os.kill(pid, signal.SIGKILL)\n"
                                           "        except OSError:\n            pass\n")
    variant("honest_after")
    return cases


# case → (TOTAL statuses allowed, {question: status}, substring of the TOTAL or first question's reason)
HOSTILE = {
    "honest": (("ok",), dict.fromkeys(QUESTIONS, "correct"), ""),
    "leave_files": (("ok",), dict.fromkeys(QUESTIONS, "correct"), ""),
    "read_left_files": (("cell_errors",), dict.fromkeys(QUESTIONS, "correct"), "left for me: []"),
    "fork_bomb": (("cell_errors", "timeout"), {}, ""),
    "read_other_submission": (("ok",), {VAN: "error"}, "No such file or directory"),
    "network": (("cell_errors",), dict.fromkeys(QUESTIONS, "correct"), "ConnectionRefusedError"),
    "write_outside_tmp": (("cell_errors",), dict.fromkeys(QUESTIONS, "correct"), "all four refused"),
    "os_exit": (("crashed",), dict.fromkeys(QUESTIONS, "crashed"), "exit code 3"),
    "infinite_loop": (("timeout",), dict.fromkeys(QUESTIONS, "timeout"), "killed after the time limit"),
    "memory_hog": (("memory",), {}, "exceeded the memory limit"),
    "kill_parent": (("cell_errors",), dict.fromkeys(QUESTIONS, "correct"), "PermissionError"),  # a root init
    "kill_everything": (("ok",), dict.fromkeys(QUESTIONS, "correct"), ""),
    "honest_after": (("ok",), dict.fromkeys(QUESTIONS, "correct"), ""),
}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, fork_servers):
    """Every case of :data:`HOSTILE`, one after the other, on slot 0 of the session's fork servers
    (tests/_grader_fixtures.py: the ones the other grader tests of this worker grade with)."""
    tmp = tmp_path_factory.mktemp("forkserver")
    tcp = tcp_listener()
    servers = fork_servers
    try:
        assert servers is not None and servers.server(0) is not None, servers and servers.failure
        pid, restarts = servers.servers[0].proc.pid, servers.restarts
        paths = write_submissions(tmp, _hostile(tmp, tcp.getsockname()[1]), "05_{}.ipynb")
        settings = Settings(timeout=TIMEOUT, question_timeout=QUESTION_TIMEOUT, memory_mb=1536,
                            python=kernel_python(), sandbox=servers.box, fork_servers=servers)
        plans = {"05": GradingPlan.build("05", 7, QUESTIONS)}
        reports = {}
        for name, path in paths.items():  # one after the other, all on slot 0's server
            reports[name] = grader.report_submission(path, plans, settings, seed=7)
            print(f"{name:22s} {reports[name].status:12s} {' · '.join(reports[name].notes)[:90]}")
        try:
            received = tcp.accept()
        except BlockingIOError:
            received = None
        survived = servers.servers[0].alive() and servers.servers[0].proc.pid == pid and servers.restarts == restarts
        return {"reports": reports, "received": received, "survived": survived, "leftovers": leftover_pids(MARK)}
    finally:
        tcp.close()


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_submission_is_contained_and_reported(hostile, case):
    statuses, questions, reason = HOSTILE[case]
    report = hostile["reports"][case]
    by_question = {q.id: q for q in report.questions}
    notes = " · ".join(report.notes)
    shown = {q: (r.status, r.reason[:100]) for q, r in by_question.items()} | {"TOTAL": (report.status, notes)}
    assert report.status in statuses, shown
    for question, status in questions.items():
        assert by_question[question].status == status, shown
    if reason:
        assert reason in notes or reason in by_question[VAN].reason, shown
    if case == "fork_bomb":
        assert "process limit" in notes or "time limit" in notes or "did not finish within" in notes, shown


def test_the_server_survives_every_attack_and_nothing_escapes(hostile):
    assert hostile["survived"], "the same server process answered every submission, never restarted"
    assert hostile["received"] is None, "nothing reached the test's TCP listener"
    assert hostile["leftovers"] == [], "no process a submission started outlives it"


# --------------------------------------------------------------------------- one child, directly

FACTS = """import os, re
def facts():
    status = open('/proc/self/status').read()
    return {"pid": os.getpid(), "uid": os.getuid(), "groups": os.getgroups(), "tmp": TMP,
            "caps": re.search(r"CapEff:\\s*(\\w+)", status).group(1),
            "nnp": re.search(r"NoNewPrivs:\\s*(\\d)", status).group(1),
            "pids": sorted(int(p) for p in os.listdir('/proc') if p.isdigit())}
TMP = sorted(os.listdir('/tmp'))
open('/tmp/left.txt', 'w').write('for the next one')
"""


def _server_python(server: warm.ForkServer) -> int:
    """The pid of the server's interpreter (bwrap's grandchild)."""
    todo = [server.proc.pid]
    while todo:
        pid = todo.pop()
        if b"helpers.grading.forkserver" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:3]:
            return pid
        todo += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    raise AssertionError("no server interpreter under bwrap")


def _in_memory(pid: int, needle: bytes) -> bool:
    """Whether `needle` is anywhere in the readable memory of process `pid` (the grader is root)."""
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for line in maps:
            span, perms = line.split()[:2]
            start, end = (int(x, 16) for x in span.split("-"))
            if perms[0] != "r" or end - start > 1 << 30:
                continue
            try:
                mem.seek(start)
                if needle in mem.read(end - start):
                    return True
            except OSError:  # [vvar] and the like
                pass
    return False


def _facts(server: warm.ForkServer, extra: str = "") -> dict:
    job = {"cells": [[1, FACTS + extra]], "cell_budget": 5, "limits": Limits().rlimits(),
           "questions": [{"id": "q", "answer": "facts", "cases": [[[], {}]], "timeout": 5}]}
    done = server.run(json.dumps(job).encode(), deadline=lambda events: time.monotonic() + 20, max_bytes=1 << 20,
                      max_line=1 << 20, kinds=protocol.EVENTS, tmp_mb=16)
    answers = [e for e in done.events if e["event"] == protocol.ANSWER]
    assert done.returncode == 0 and answers, done
    return answers[0]["outcomes"][0]["value"]


def test_each_child_is_pid_1_of_its_own_namespaces_unprivileged_with_an_empty_tmp(fork_servers):
    """On slot 0 of the session's fork servers (which may have served every other test's submissions)."""
    server = fork_servers.server(0)
    assert server is not None, fork_servers.failure
    secret = f"SECRET_{os.getpid()}_{time.time_ns()}"
    first = _facts(server, f"ANSWER = {secret[::-1]!r}[::-1]\n")  # only the reversed text is in the job
    second = _facts(server)
    python = _server_python(server)
    assert _in_memory(python, b"_supervise"), "the scan finds what the server does hold (its own names)"
    assert not _in_memory(python, secret[::-1].encode()), \
        "the server never held a submission's code: the next child cannot find it in its memory"
    for facts in (first, second):
        assert facts["pid"] == 2 and facts["pids"] == [1, 2], "it sees itself and its init: not the server"
        assert facts["uid"] != 0 and facts["groups"] == [] and int(facts["caps"], 16) == 0 and facts["nnp"] == "1"
    assert second["tmp"] == first["tmp"] and "left.txt" not in second["tmp"], "the previous child's /tmp is gone"


def test_a_dead_server_is_restarted_and_the_submission_under_way_is_a_crash(fork_servers):
    """On slot 0 of the session's fork servers: the restarted one serves the tests that follow."""
    servers = fork_servers
    before = servers.server(0)
    assert before is not None, servers.failure
    restarts = servers.restarts
    os.killpg(before.proc.pid, signal.SIGKILL)  # between two submissions
    before.proc.wait(timeout=10)
    after = servers.server(0)
    assert after is not None and after is not before and servers.restarts == restarts + 1
    assert _facts(after)["pid"] == 2
    job = {"cells": [[1, "while True:\n    pass\n"]], "cell_budget": 30, "limits": {}, "questions": []}
    threading.Timer(1.0, lambda: os.killpg(after.proc.pid, signal.SIGKILL)).start()  # during one
    done = after.run(json.dumps(job).encode(), deadline=lambda events: time.monotonic() + 30, max_bytes=1 << 16,
                     max_line=1 << 16, kinds=protocol.EVENTS, tmp_mb=16)
    assert done.returncode is None and protocol.DONE not in [e["event"] for e in done.events]
    assert done.seconds < 10, "the grader noticed at once"
    again = servers.server(0)
    assert again is not None and again is not after and servers.restarts == restarts + 2 and _facts(again)["pid"] == 2


def test_where_no_server_can_start_the_grader_says_why_once_and_grades_the_old_way(tmp_path, monkeypatch, capsys):
    box = _box(tmp_path)
    box._base = ["bwrap", "--no-such-option"]
    servers = warm.start_fork_servers(box, 2)
    assert servers is not None and servers.server(0) is None and servers.server(1) is None
    assert capsys.readouterr().err.count("no fork server (the fork server did not start: bwrap: Unknown option") == 1
    paths = write_submissions(tmp_path, {"honest": base_submission_05()}, "05_{}.ipynb")
    monkeypatch.setattr(warm, "_switches_uid", lambda: False)
    batch = grader.grade_class(list(paths.values()), jobs=2, progress=False, questions=QUESTIONS)
    err = capsys.readouterr().err
    assert err.count("no fork server (the grader does not run as root") == 1, err
    assert [(r.status, r.points) for r in batch.reports] == [("ok", N)]


def test_a_python_environment_under_tmp_stays_visible_and_read_only_in_each_child(tmp_path):
    """A clone in /tmp runs the grader from /tmp/…/.venv: bubblewrap binds it below the sandbox's /tmp,
    and each child's fresh /tmp must bind it again (read-only), or the child cannot import from it."""
    import subprocess
    import sys
    import tempfile

    course = kernel_python()
    base = os.path.realpath(course)
    outside = tempfile.mkdtemp(prefix="venv-under-tmp-", dir="/tmp")  # /tmp itself, whatever TMPDIR says
    try:
        venv = Path(outside) / ".venv"
        subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
        site = subprocess.run([course, "-c", "import site; print('\\n'.join(site.getsitepackages()))"],
                              capture_output=True, text=True, check=True, timeout=60).stdout
        version = f"python{sys.version_info.major}.{sys.version_info.minor}"
        (venv / "lib" / version / "site-packages" / "course.pth").write_text(site)  # torch etc. from the course's
        box = Sandbox(str(venv / "bin" / "python"), Limits(), build_view(tmp_path / "view"))
        servers = warm.ForkServers(box, 1).launch()
        try:
            server = servers.server(0)
            assert server is not None, servers.failure
            extra = ("import sys\n"
                     "try:\n    open(os.path.join(sys.prefix, 'x'), 'w').close(); WRITABLE = True\n"
                     "except OSError:\n    WRITABLE = False\n"
                     "PREFIX, PLAIN = sys.prefix, sorted(os.listdir(sys.prefix))\n"
                     "_facts = facts\n"
                     "def facts():\n    return {**_facts(), 'prefix': PREFIX, 'listing': PLAIN, 'writable': WRITABLE}\n")
            facts = _facts(server, extra)
        finally:
            servers.close()
        assert facts["prefix"] == str(venv) and "bin" in facts["listing"] and "pyvenv.cfg" in facts["listing"]
        assert facts["writable"] is False and not (venv / "x").exists()
    finally:
        shutil.rmtree(outside, ignore_errors=True)
