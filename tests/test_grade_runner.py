"""helpers.grading.runner run directly (no sandbox): what it does with a cell's error.

The cells' output goes to /dev/null, so the runner keeps a failing cell's error (it is reported as a
``cell_error`` event) but never formats its traceback. Formatting one (IPython's ``showtraceback``:
stack_data, pygments) reached nobody and, after a memory hog's ``MemoryError`` left the address space
all but full, killed the process with SIGSEGV in about 1 run of 30 (seen in the fork server's hostile
batch), so a memory hog was graded ``crashed`` instead of ``memory``. IPython's ``showtraceback`` calls
an exception's ``_render_traceback_`` (its documented hook for custom tracebacks): the cell below notes
that call, and a later cell fails if it happened.
"""

from __future__ import annotations

import json
import subprocess

from helpers.grading.run import kernel_python

RAISE = ("import builtins\n"
         "class Noted(Exception):\n"
         "    def _render_traceback_(self):\n"
         "        builtins.dp_traceback_formatted = True\n"
         "        return ['formatted']\n"
         "raise Noted('wrong on purpose')\n")
CHECK = "import builtins\nassert not getattr(builtins, 'dp_traceback_formatted', False), 'a traceback was formatted'\n"


def _events(cells: list[list]) -> list[dict]:
    job = {"cells": cells, "cell_budget": 30, "limits": {}, "questions": []}
    done = subprocess.run([kernel_python(), "-m", "helpers.grading.runner"], input=json.dumps(job).encode(),
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    return [json.loads(line) for line in done.stdout.decode().splitlines()]


def test_a_failing_cell_is_reported_and_its_traceback_never_formatted():
    events = _events([[0, RAISE], [1, CHECK], [2, "1 / 0"]])
    errors = {e["index"]: (e["type"], e["message"]) for e in events if e["event"] == "cell_error"}
    assert errors == {0: ("Noted", "wrong on purpose"), 2: ("ZeroDivisionError", "division by zero")}
    assert [e["event"] for e in events][-2:] == ["cells_done", "done"]
