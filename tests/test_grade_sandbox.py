"""The grader's sandbox against hostile chapter-05 submissions (torch-free): one per attack of issue 11.

Every attack and two honest submissions are graded in ONE batch (2 jobs, ``--timeout 3``,
1 s per question) by the real grader with bubblewrap, on the session's fork servers
(tests/_grader_fixtures.py). Each attack must end with the right status
and reason, the honest submissions keep full marks, no file changes, no process outlives the
batch, nothing reaches the test's TCP/UDP listeners, and the batch ends within the bound derived
from the time limits. Skipped, with the reason, where this machine cannot create a sandbox.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from helpers import grade as grader
from helpers.grading.csvlog import COLUMNS
from helpers.grading.plan import Settings
from helpers.grading.run import Phases, kernel_python
from helpers.grading.sandbox import unavailable_reason
from tests._grader_fixtures import sharing
from tests.grade_submissions import (SETUP_05, SOLUTION, SOLUTION_05, SOLUTION_CELLS_05, base_submission_05, insert_after,
                                     leftover_pids, questions_05, set_source, tcp_listener, write_submissions)

REASON = unavailable_reason(kernel_python())
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"no sandbox can be created here: {REASON}")

QUESTIONS = [q.id for q in questions_05()]  # chapter 05 without its torch-code question
LIN = QUESTIONS[0]  # 05.vanilla_rnn_params: the attacks replace its cell
N = len(QUESTIONS)
# an attack in vanilla_rnn_params' cell also fails the two answers that call it (simple_rnn_params,
# largest_rnn_hidden): the other three keep their points
REST = N - 3
TIMEOUT, QUESTION_TIMEOUT, JOBS = 3, 1, 2  # the honest cells take ~0.2 s; ignore_alarm and the fork bomb 3 s + grace
DAEMON_WRITES = 5.0  # s after its submission ended by which the daemon (`sleep(3)`, then a write) would have written
MARK = "4242.125"  # `sleep MARK`: how the test recognises processes left behind by submissions

# attack → (TOTAL status, {question: status}, substring of the TOTAL or LIN reason, TOTAL points)
EXPECTED = {
    "honest_a": ("ok", dict.fromkeys(QUESTIONS, "correct"), "", N),
    "import_checks": ("forbidden_import", {LIN: "forbidden_import"}, "helpers.checks.ch05 is not available in graded work", REST),
    "import_formulas": ("forbidden_import", {LIN: "forbidden_import"},
                        "helpers.formulas is not available in graded work: write the formula yourself", REST),
    "import_models": ("forbidden_import", {LIN: "forbidden_import"}, "helpers.models is not available in graded work", REST),
    "import_future_chapter": ("forbidden_import", {LIN: "forbidden_import"}, "helpers.checks.ch14 is not available", REST),
    "import_in_function": ("forbidden_import", {LIN: "forbidden_import"}, "helpers.formulas is not available in graded work", REST),
    "read_solutions": ("ok", {LIN: "error"}, "No such file or directory", REST),
    "read_other_submission": ("ok", {LIN: "error"}, "No such file or directory", REST),
    "write_other_submission": ("cell_errors", dict.fromkeys(QUESTIONS, "correct"), "No such file or directory", N),
    "kill_sibling": ("ok", dict.fromkeys(QUESTIONS, "correct"), "", N),
    "network": ("cell_errors", dict.fromkeys(QUESTIONS, "correct"), "ConnectionRefusedError", N),
    "daemon": ("ok", dict.fromkeys(QUESTIONS, "correct"), "", N),
    "ignore_alarm": ("timeout", dict.fromkeys(QUESTIONS, "timeout"), "killed after the time limit while running code cell", 0),
    "pipe_holder": ("ok", dict.fromkeys(QUESTIONS, "correct"), "", N),
    "huge_answer": ("ok", {LIN: "error"}, "too large to grade", REST),
    "flood_channel": ("crashed", dict.fromkeys(QUESTIONS, "crashed"), "sent too much", 0),
    # contained by the process limit (the siblings are unharmed). Children whose fork fails leave the
    # loop and exit, freeing slots, so it is a race: either the parent's own fork fails (BlockingIOError,
    # named as the process limit: cell_errors, and grading goes on) or it keeps succeeding until the
    # cell's time limit (timeout: the cell budget or the kill after it, whichever the race reaches
    # first). How many questions are graded depends on the race (None); which reason goes with which
    # status is asserted in test_the_fork_bomb_ends_on_the_process_limit_or_the_time_limit.
    "fork_bomb": (("cell_errors", "timeout"), {}, ("process limit", "killed after the time limit", "did not finish within"), None),
    "honest_b": ("ok", dict.fromkeys(QUESTIONS, "correct"), "", N),
}

_FIND_CHANNEL = ("import os\n"
                 "def _channel():\n"
                 "    for fd in sorted(map(int, os.listdir('/proc/self/fd'))):\n"
                 "        try:\n"
                 "            if os.readlink(f'/proc/self/fd/{fd}').startswith('pipe:') and fd > 2:\n"
                 "                return fd\n"
                 "        except OSError:\n"
                 "            pass\n")


def _attacks(folder: Path, out: Path, tcp_port: int, udp_port: int) -> dict[str, dict]:
    base = base_submission_05()
    honest_a, honest_b = folder / "05_honest_a.ipynb", folder / "05_honest_b.ipynb"
    cases: dict[str, dict] = {}

    def variant(name: str, solution: str | None = None, after_setup: str | None = None) -> None:
        nb = copy.deepcopy(base)
        if solution is not None:
            set_source(nb, SOLUTION_CELLS_05[0], solution)
        if after_setup is not None:
            insert_after(nb, SETUP_05, after_setup, f"attack-{name}")
        cases[name] = nb

    variant("honest_a")
    variant("import_checks", "from helpers.checks.ch05 import *\n")
    variant("import_formulas", "from helpers.formulas import rnn_params as vanilla_rnn_params\n")
    variant("import_models", "from helpers.models.unet import unet_params as vanilla_rnn_params\n")
    variant("import_future_chapter", "from helpers.checks.ch14 import *\n")
    variant("import_in_function", "def vanilla_rnn_params(input_size, hidden_size, num_layers=1, bias=True, bidirectional=False):\n"
                                  "    from helpers.formulas import rnn_params as answer\n"
                                  "    return answer('RNN', input_size, hidden_size, num_layers, bias, bidirectional)\n")
    variant("read_solutions", "import helpers, os\n"
                              f"PATHS = [{str(SOLUTION_05)!r}, os.path.join(os.path.dirname(helpers.__file__), '..',\n"
                              f"         'solutions', {SOLUTION_05.name!r})]\n"
                              "def vanilla_rnn_params(input_size, hidden_size, num_layers=1, bias=True, bidirectional=False):\n"
                              "    for p in PATHS:\n"
                              "        open(p).read()\n")
    variant("read_other_submission", "def vanilla_rnn_params(input_size, hidden_size, num_layers=1, bias=True, bidirectional=False):\n"
                                     f"    open({str(honest_a)!r}).read()\n")
    variant("write_other_submission", after_setup=f"open({str(honest_b)!r}, 'w').write('{{}}')\n")
    variant("kill_sibling", after_setup="import os, signal\n"
                                        "for pid in os.listdir('/proc'):\n"
                                        "    try:\n"
                                        "        if pid.isdigit() and int(pid) != os.getpid() and b'helpers.grading.runner' in "
                                        "open(f'/proc/{pid}/cmdline', 'rb').read():\n"
                                        "            os.kill(int(pid), signal.SIGKILL)\n"
                                        "    except OSError:\n"
                                        "        pass\n")
    variant("network", after_setup="import socket\n"
                                   "u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                                   f"u.sendto(b'SOLUTIONS', ('127.0.0.1', {udp_port}))\n"
                                   f"t = socket.create_connection(('127.0.0.1', {tcp_port}), timeout=2)\n"
                                   "t.sendall(b'SOLUTIONS')\n")
    rewrite = f"import time; time.sleep(3); open({str(out)!r}, 'w').write('pwned')"
    variant("daemon", after_setup="import subprocess, sys\n"
                                  f"subprocess.Popen(['sleep', '{MARK}'], start_new_session=True)\n"
                                  f"subprocess.Popen([sys.executable, '-c', {rewrite!r}], start_new_session=True)\n")
    variant("ignore_alarm", after_setup="import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
                                        "while True:\n    try:\n        while True:\n            pass\n"
                                        "    except BaseException:\n        pass\n")
    variant("pipe_holder", after_setup="import os, time\n"
                                       "if os.fork() == 0:\n"
                                       "    os.setsid()\n"
                                       f"    os.execvp('sleep', ['sleep', '{MARK}'])\n")
    variant("huge_answer", "def vanilla_rnn_params(input_size, hidden_size, num_layers=1, bias=True, bidirectional=False):\n"
                           "    return 'x' * 100_000_000  # 100 MB: the 1 MB cap, without minutes of memset\n")
    variant("flood_channel", after_setup=_FIND_CHANNEL + "chunk = b'x' * (1 << 20)\n"
                                                         "for _ in range(600):\n    os.write(_channel(), chunk)\n")
    variant("fork_bomb", after_setup="import os\nwhile True:\n    os.fork()\n")
    variant("honest_b")
    return cases


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def batch(tmp_path_factory, fork_servers):
    folder = tmp_path_factory.mktemp("hostile")
    out = tmp_path_factory.mktemp("out") / "grades.csv"
    tcp = tcp_listener()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.setblocking(False)
    try:
        paths = write_submissions(folder, _attacks(folder, out, tcp.getsockname()[1], udp.getsockname()[1]), "05_{}.ipynb")
        watched = list(paths.values()) + [SOLUTION_05, SOLUTION]
        before = {p: _sha(p) for p in watched}
        ended: dict[str, float] = {}  # submission → when its grading ended (the daemon's write is timed from it)
        report_submission = grader.report_submission

        def timed(sub, *args, **kwargs):
            try:
                return report_submission(sub, *args, **kwargs)
            finally:
                ended[str(sub.path)] = time.monotonic()

        start = time.monotonic()
        with sharing(fork_servers), pytest.MonkeyPatch.context() as patch:
            patch.setattr(grader, "report_submission", timed)
            rows, _ = grader.grade(list(paths.values()), jobs=JOBS, timeout=TIMEOUT, question_timeout=QUESTION_TIMEOUT,
                                   progress=False, out=out, questions=QUESTIONS)
        seconds = time.monotonic() - start
        deadline = time.monotonic() + 5  # the kernel tears PID namespaces down asynchronously
        while leftover_pids(MARK) and time.monotonic() < deadline:
            time.sleep(0.2)
        leftovers = leftover_pids(MARK)
        assert set(ended) == {str(p) for p in paths.values()}
        time.sleep(max(0.0, ended[str(paths["daemon"])] + DAEMON_WRITES - time.monotonic()))  # its delayed write
        received = []
        for sock, read in ((tcp, lambda s: s.accept()), (udp, lambda s: s.recvfrom(100))):
            try:
                received.append(read(sock))
            except BlockingIOError:
                pass
        with out.open(newline="", encoding="utf-8") as f:
            csv_rows = list(csv.DictReader(f))
        by_case = {name: {r.question: r for r in rows if r.submission == str(p)} for name, p in paths.items()}
        for name, case_rows in by_case.items():  # the attack table (shown with pytest -s)
            total = case_rows["TOTAL"]
            print(f"{name:24s} {total.status:17s} {total.seconds:>5s} s  {total.reason[:90]}")
        print(f"batch: {len(paths)} submissions, {JOBS} jobs, {seconds:.1f} s")
        return {"paths": paths, "before": before, "after": {p: _sha(p) for p in watched}, "seconds": seconds,
                "leftovers": leftovers, "received": received, "csv": csv_rows, "by_case": by_case}
    finally:
        tcp.close()
        udp.close()


@pytest.mark.parametrize("case", list(EXPECTED))
def test_attack_ends_with_the_right_status_and_reason(batch, case):
    status, statuses, reason, points = EXPECTED[case]
    rows = batch["by_case"][case]
    total = rows["TOTAL"]
    shown = {q: (r.status, r.reason[:120]) for q, r in rows.items()}
    statuses_allowed = (status,) if isinstance(status, str) else status
    assert total.status in statuses_allowed, f"{case}: {shown}"
    assert (total.points if points is not None else None) == points, f"{case}: {shown}"
    for question, expected in statuses.items():
        assert rows[question].status == expected, f"{case}/{question}: {shown}"
    if reason:
        alternatives = (reason,) if isinstance(reason, str) else reason
        assert any(r in total.reason or r in rows[LIN].reason for r in alternatives), f"{case}: {shown}"
    assert total.sandbox == "bubblewrap"


def test_the_fork_bomb_ends_on_the_process_limit_or_the_time_limit(batch):
    rows = batch["by_case"]["fork_bomb"]
    total = rows["TOTAL"]
    if total.status == "cell_errors":  # the parent's fork failed: the process limit, and the answers were graded
        assert "BlockingIOError" in total.reason and "(the process limit of the sandbox)" in total.reason, total.reason
        assert {rows[q].status for q in QUESTIONS} == {"correct"} and total.points == N
    else:  # still forking at the time limit
        assert total.status == "timeout"
        assert any(r in total.reason for r in ("killed after the time limit", "did not finish within")), total.reason
        assert "timeout" in {rows[q].status for q in QUESTIONS}


def test_nothing_changed_on_disk_and_nothing_reached_the_network(batch):
    assert batch["after"] == batch["before"], "no submission (nor the solutions) was modified"
    assert batch["received"] == [], "nothing reached the test's TCP/UDP listeners"
    header = list(batch["csv"][0])
    assert header == COLUMNS, "grades.csv was not overwritten by a daemon"
    assert len(batch["csv"]) == len(EXPECTED) * (len(QUESTIONS) + 1)


def test_no_process_outlives_the_batch(batch):
    assert batch["leftovers"] == [], f"processes left behind: {batch['leftovers']}"


def test_the_batch_ends_within_the_bound_derived_from_the_timeout(batch):
    settings = Settings(timeout=TIMEOUT, question_timeout=QUESTION_TIMEOUT)
    per_submission = Phases.bound(settings, len(QUESTIONS) * QUESTION_TIMEOUT) + 1  # + the kill
    for case, rows in batch["by_case"].items():
        assert float(rows["TOTAL"].seconds) <= per_submission, case
    # pipe_holder's child sleeps MARK (4242) s holding the result pipe: it does not hold the batch (it is
    # gone when the runner exits), so the submission takes no longer than an honest one graded in the
    # same batch plus the cell budget (a bound from the run itself, not a wall-clock constant)
    honest = max(float(batch["by_case"][c]["TOTAL"].seconds) for c in ("honest_a", "honest_b"))
    assert float(batch["by_case"]["pipe_holder"]["TOTAL"].seconds) < honest + TIMEOUT
    waves = -(-len(EXPECTED) // JOBS)
    assert batch["seconds"] <= waves * per_submission + 10


def test_a_python_environment_under_tmp_leaves_the_runners_tmp_writable(tmp_path):
    """A clone in /tmp puts the venv under /tmp: bwrap creates /tmp/<clone>/.venv as a mount point
    inside the private tmpfs, and the folders it creates are made readable, but /tmp itself (the
    runner's home and working directory) must stay world-writable, or every submission crashes."""
    from helpers.grading.sandbox import Limits, Sandbox, _python_dirs
    python = kernel_python()
    under_tmp = Path(tempfile.mkdtemp(prefix="venv-like-", dir="/tmp"))
    try:
        (under_tmp / "marker.py").write_text("VALUE = 7\n")
        os.chmod(under_tmp, 0o755)
        os.chmod(under_tmp / "marker.py", 0o644)
        view = tmp_path / "view"
        view.mkdir()
        box = Sandbox(python, Limits(), view)
        box._base = box._bwrap_args(_python_dirs(python) + [str(under_tmp)])
        program = [python, "-c", "import os, stat, sys; sys.path.append(sys.argv[1]); import marker; "
                   "open('/tmp/' + sys.argv[2], 'w').write('x'); mode = os.stat('/tmp').st_mode; "
                   "print(marker.VALUE, oct(stat.S_IMODE(mode)))", str(under_tmp),
                   under_tmp.name + ".written"]
        done = subprocess.run(box.argv(0, program), capture_output=True, text=True, timeout=60,
                              env=box.env("/tmp"), cwd="/")
        assert done.returncode == 0, done.stderr[-500:]
        assert done.stdout.split() == ["7", "0o1777"]
        assert not (Path("/tmp") / (under_tmp.name + ".written")).exists(), "the write stayed in the private /tmp"
    finally:
        shutil.rmtree(under_tmp)
