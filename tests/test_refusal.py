"""helpers.checks.refusal: what the instant check and nbgrader's kernel refuse is what the grader's
sandbox refuses (issue 24, item 5).

Each FORM is a notebook (setup cell, then a cell defining a zero-argument function `f`) using
helpers in one way. The truth is the grader's own sandbox rule, run for real: the graded view
(:func:`helpers.checks.graded.build_view`) with :class:`~helpers.checks.graded.ImportGuard`, in a
fresh interpreter that has no other helpers. Against it: the static reading of `f` the instant
check uses (:func:`refused_use`, with the whole of helpers importable), and nbgrader's kernel (the
release cell's import refusal under ``NBGRADER_EXECUTION=autograde``, plus that static reading).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from helpers.checks.graded import build_view, refused_name
from helpers.checks.refusal import refusal_warning, refused_use

ROOT = Path(__file__).resolve().parent.parent
RNN = 'rnn_params("RNN", 3, 4)'
FORMS = {  # name: (setup cell, cell defining f)
    "cell import": ("from helpers.formulas import rnn_params", f"def f():\n    return {RNN}"),
    "import inside": ("", f"def f():\n    import helpers.formulas as F\n    return F.{RNN}"),
    "from helpers import formulas": ("", f"def f():\n    from helpers import formulas\n    return formulas.{RNN}"),
    "re-export": ("import helpers", f"def f():\n    return helpers.{RNN}"),
    "submodule attribute": ("import helpers", f"def f():\n    return helpers.formulas.{RNN}"),
    "size function": ("", "def f():\n    from helpers.shapes import conv_output_size\n    return conv_output_size(8, 3)"),
    "counting": ("from helpers.counting import count_params", "def f():\n    return count_params"),
    "closure": ("from helpers import formulas as F0",
                f"def make():\n    F = F0\n    def g():\n        return F.{RNN}\n    return g\n\n"
                "def f():\n    return make()()"),
    "through another function": ("import helpers.formulas as F",
                                 f"def g():\n    return F.{RNN}\n\ndef f():\n    return g() + 1"),
    "through a class": ("", f"class M:\n    def size(self):\n        from helpers.formulas import rnn_params\n"
                            f"        return {RNN}\n\ndef f():\n    return M().size()"),
    "check_shape": ("from helpers.shapes import check_shape",
                    "def f():\n    return check_shape is not None"),
    "helpers.check_shape": ("import helpers", "def f():\n    return helpers.check_shape.__name__"),
    "check": ("from helpers.checks import check", "def f():\n    return callable(check)"),
    "plain": ("import math", "def f():\n    return math.prod([3, 4])"),
}

# runs FORMS in a fresh interpreter; prints {form: "ok" | refused module} as JSON
_RUN = textwrap.dedent('''
    import json, sys
    forms = json.loads(sys.argv[1])
    mode = sys.argv[2]
    if mode == "view":
        from helpers.checks.graded import ImportGuard
        ImportGuard.install()
    else:
        from helpers.checks.refusal import nbgrader_release, refused_use
        nbgrader_release("05")
    from helpers.checks.graded import forbidden_module
    result = {}
    for name, (setup, body) in forms.items():
        ns = {"__name__": "__main__"}
        refused = None
        for cell in (setup, body, "value = f()"):
            try:
                exec(cell, ns)
            except Exception as exc:
                refused = refused or forbidden_module(type(exc).__name__, str(exc))
                if refused is None and not isinstance(exc, NameError):
                    raise
        if mode == "nbgrader" and refused is None and "f" in ns:
            refused = refused_use(ns["f"])
        result[name] = refused or "ok"
    print(json.dumps(result))
''')


def _run(mode: str, path: list[str], cwd: Path, env: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", f"import sys; sys.path[:0] = {path!r}\n" + _RUN, json.dumps(FORMS),
                          mode], capture_output=True, text=True, cwd=cwd, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def sandbox_verdicts(tmp_path_factory) -> dict:
    """What the grader's sandbox rule does with each form (only the graded view importable)."""
    view = build_view(tmp_path_factory.mktemp("view"))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "NBGRADER_EXECUTION")}
    return _run("view", [str(view)], view, env)


def test_the_sandbox_refuses_the_forms_that_use_answer_bearing_helpers(sandbox_verdicts):
    """The reference itself is sane: the refusals the forms were written to show."""
    assert sandbox_verdicts == {
        "cell import": "helpers.formulas", "import inside": "helpers.formulas",
        "from helpers import formulas": "helpers.formulas", "re-export": "helpers.rnn_params",
        "submodule attribute": "helpers.formulas", "size function": "helpers.shapes.conv_output_size",
        "counting": "helpers.counting", "closure": "helpers.formulas", "through another function": "helpers.formulas",
        "through a class": "helpers.formulas", "check_shape": "ok", "helpers.check_shape": "ok", "check": "ok",
        "plain": "ok"}


def test_the_instant_checks_static_reading_names_what_the_sandbox_refuses(sandbox_verdicts):
    """With all of helpers importable (the student's Jupyter) every form runs, and refused_use names
    the module the sandbox refuses for it."""
    for name, (setup, body) in FORMS.items():
        ns: dict = {"__name__": "__main__"}
        exec(setup, ns)
        exec(body, ns)
        ns["f"]()  # it works here: only the grader would refuse it
        assert (refused_use(ns["f"]) or "ok") == sandbox_verdicts[name], name


def test_nbgraders_kernel_refuses_what_the_sandbox_refuses(sandbox_verdicts):
    """Under autograde, after the release cell: an import refused at once (as in the sandbox), or the
    check's static reading; helpers' own imports still work."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"NBGRADER_EXECUTION": "autograde"}
    assert _run("nbgrader", [str(ROOT)], ROOT, env) == sandbox_verdicts


def test_the_refusal_rule_is_the_graded_views():
    assert refused_name("helpers.formulas") == "helpers.formulas"
    assert refused_name("helpers.formulas", "rnn_params") == "helpers.formulas"
    assert refused_name("helpers.shapes", "check_shape") is None
    assert refused_name("helpers.shapes", "rnn_shapes") == "helpers.shapes.rnn_shapes"
    assert refused_name("helpers.checks.graded") is None and refused_name("torch.nn", "Linear") is None


def test_the_instant_check_warns_next_to_the_tick(capsys):
    from helpers.checks import check

    ns: dict = {"__name__": "__main__"}
    exec("from helpers.formulas import rnn_params\n"
         "def vanilla_rnn_params(input_size, hidden_size, num_layers=1, bias=True, bidirectional=False):\n"
         "    return rnn_params('RNN', input_size, hidden_size, num_layers, bias=bias, bidirectional=bidirectional)\n",
         ns)
    result = check("05.vanilla_rnn_params", ns["vanilla_rnn_params"])
    line = capsys.readouterr().out.strip()
    assert result and line.startswith("✅ 05.vanilla_rnn_params: ")
    assert line.endswith(refusal_warning("helpers.formulas"))
    assert refusal_warning("helpers.formulas") == (
        "this function uses helpers.formulas, which the grader refuses — it will score 0")
