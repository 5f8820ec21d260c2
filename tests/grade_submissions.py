"""Synthetic submissions for the grader's tests (built from the solutions notebooks).

``build_submissions(folder)`` writes one ``05_<case>.ipynb`` per fault case (chapter 05 without its
torch-code question: six torch-free questions, so each case runs in ~0.2 s in the sandbox and the
tests can use short time limits; they are graded with ``questions=`` those six) plus ``01_wrong.ipynb``, the one chapter-01 case: its mistakes include an unrepaired
``nn.Module`` answer (01.fixed_mlp), whose cell imports torch (~3 s in the sandbox). It returns
{case: path}. Each case edits the real solutions notebook the way a student (or a cheater, or a
broken laptop) would; ``EXPECTED`` in tests/test_grade.py lists what the grader must answer.
Chapter 01's torch demo cell is removed; the benchmark grades the full notebook.
"""

from __future__ import annotations

import copy
import json
import os
import socket
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOLUTION = ROOT / "solutions" / "01_linear_exercises.ipynb"
EXERCISE = ROOT / "exercises" / "01_linear_exercises.ipynb"
TORCH_DEMO_CELL = "ex5-buggy"
SOLUTION_05 = ROOT / "solutions" / "05_rnn_bptt_exercises.ipynb"
EXERCISE_05 = ROOT / "exercises" / "05_rnn_bptt_exercises.ipynb"
#: chapter 05's cells: the setup cell, then one solution cell and one check cell per question, in order
SETUP_05 = "sol05-02-imports"
SOLUTION_CELLS_05 = ("sol05-04-q1-solution", "sol05-07-q2-solution", "sol05-10-q3-solution",
                     "sol05-13-q4-solution", "sol05-16-q5-solution", "sol05-largest-rnn-hidden-solution")
CHECK_CELLS_05 = ("sol05-05-q1-check", "sol05-08-q2-check", "sol05-11-q3-check", "sol05-14-q4-check",
                  "sol05-17-q5-check", "sol05-largest-rnn-hidden-check")


def _sandbox_args() -> list[str]:
    """``[]`` where bubblewrap can sandbox the graded kernels, else ``["--no-sandbox"]`` (the fault
    cases here are about grading, not isolation: tests/test_grade_sandbox.py covers that). Probed with
    the interpreter the grader runs submissions in (:func:`~helpers.grading.run.kernel_python`), not the
    test's own: in a git worktree whose ``.venv`` is a symlink, the symlinked path is not inside the
    sandbox, and probing it sent every grading test here down the unsandboxed path."""
    from helpers.grading.run import kernel_python
    from helpers.grading.sandbox import unavailable_reason

    return [] if unavailable_reason(kernel_python()) is None else ["--no-sandbox"]


SANDBOX_ARGS = _sandbox_args()


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _source(cell: dict) -> str:
    s = cell["source"]
    return "".join(s) if isinstance(s, list) else s


def cell(nb: dict, cell_id: str) -> dict:
    return next(c for c in nb["cells"] if c.get("id") == cell_id)


def set_source(nb: dict, cell_id: str, source: str) -> None:
    cell(nb, cell_id)["source"] = source


def insert_after(nb: dict, cell_id: str, source: str, new_id: str) -> None:
    index = next(i for i, c in enumerate(nb["cells"]) if c.get("id") == cell_id)
    nb["cells"].insert(index + 1, {"cell_type": "code", "id": new_id, "metadata": {}, "execution_count": None,
                                   "outputs": [], "source": source})


def _lookup_table_solution(question) -> str:
    """A function that returns the checker's expected answers from a table: ✅ in the notebook,
    since the checker's inputs are fixed, but useless on the grader's fresh inputs."""
    from helpers.checks import checker_rng
    from helpers.checks.registry import make_cases
    from helpers.checks.verdict import reference_answers

    cases = make_cases(question, checker_rng(question.id))  # (a module answer's table holds descriptions)
    table = {json.dumps([list(a), k], sort_keys=True): value
             for (a, k), value in zip(cases, reference_answers(question, cases).normalised)}
    return (f"_TABLE_{question.answer} = {table!r}\n\n"
            f"def {question.answer}(*args, **kwargs):\n"
            f"    import json\n"
            f"    value = _TABLE_{question.answer}.get(json.dumps([list(args), kwargs], sort_keys=True), 0)\n"
            f"    return tuple(value) if isinstance(value, list) else value\n")


def _cleared(nb: dict) -> dict:
    for c in nb["cells"]:
        if c["cell_type"] == "code":
            c["outputs"], c["execution_count"] = [], None
    return nb


def base_submission() -> dict:
    """The chapter-01 solutions notebook without its torch demo cell and outputs: full marks."""
    base = _load(SOLUTION)
    base["cells"] = [c for c in base["cells"] if c.get("id") not in (TORCH_DEMO_CELL,)]
    return _cleared(base)


#: chapter 05's torch-code question (an nn.Module answer): its cells import torch (~2 s per submission
#: in the sandbox), so the fault cases leave them out and are graded on the other questions only
MODULE_PREFIX_05 = "sol05-fixed-rnn-classifier-"


def questions_05() -> list:
    """Chapter 05's questions without the nn.Module one: what the fault cases are graded on
    (``grade(..., questions=[q.id for q in questions_05()])``)."""
    from helpers.checks.registry import questions_for_chapter

    return [q for q in questions_for_chapter("05") if q.probe is None]


def _without_torch_05(nb: dict) -> dict:
    """`nb` (chapter 05's solutions or exercises) without its torch-code question's cells."""
    ids = [str(c.get("id", "")) for c in nb["cells"]]
    modules = [c for c, i in zip(nb["cells"], ids) if i.startswith(MODULE_PREFIX_05)]
    assert modules and not any("import torch" in _source(c) for c in nb["cells"] if c not in modules), \
        "chapter 05's torch cells moved: update MODULE_PREFIX_05"
    nb["cells"] = [c for c in nb["cells"] if c not in modules]
    return nb


def base_submission_05() -> dict:
    """The chapter-05 solutions notebook without outputs and without its torch-code question's cells
    (no torch anywhere): full marks on :func:`questions_05`. Checks that its cells are still where
    SOLUTION_CELLS_05 / CHECK_CELLS_05 say (one per question)."""
    base = _without_torch_05(_cleared(_load(SOLUTION_05)))
    questions = questions_05()
    assert len(questions) == len(SOLUTION_CELLS_05), "chapter 05 has a new question: add its cells here"
    for q, solution, check_cell in zip(questions, SOLUTION_CELLS_05, CHECK_CELLS_05):
        assert _source(cell(base, solution)).startswith(f"def {q.answer}("), solution
        assert q.id in _source(cell(base, check_cell)), check_cell
    return base


def write_submissions(folder: Path, cases: dict[str, dict], pattern: str = "01_{}.ipynb") -> dict[str, Path]:
    """Write ``pattern.format(case)`` (default ``01_<case>.ipynb``) for each case; {case: path}."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, notebook in cases.items():
        path = folder / pattern.format(name)
        path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        paths[name] = path
    return paths


def wrong_01() -> dict:
    """Chapter 01 with plausible mistakes, one per kind of answer (int, shape, renamed function, and
    an ``nn.Module`` returned unrepaired: the only fault case whose graded cells import torch)."""
    nb = base_submission()
    set_source(nb, "ex1-solution", "def linear_params(in_features, out_features, bias=True):\n"
                             "    return in_features * out_features + out_features  # forgot bias=False\n")
    set_source(nb, "ex2-solution", "def output_shape(input_shape, layer_sizes):\n"
                             "    return str(tuple(input_shape[:-1]) + (layer_sizes[-1],))\n")
    set_source(nb, "ex5-solution", "def fixed_params(channels, height, width, hidden, classes):  # renamed\n"
                             "    return mlp_params([channels * height * width, hidden, hidden // 2, classes])\n")
    set_source(nb, "ex6-solution", "def fixed_mlp(in_features, hidden, out_features):\n"
                             "    return BrokenMLP(in_features, hidden, out_features)  # returned unrepaired\n")
    return nb


def build_submissions(folder: Path) -> dict[str, Path]:
    """Chapter-05 fault cases ``05_<case>.ipynb`` plus the chapter-01 ``01_wrong.ipynb``; {case: path}."""
    base = base_submission_05()
    questions = questions_05()
    solution = dict(zip((q.answer for q in questions), SOLUTION_CELLS_05))  # answer name → its cell
    cases: dict[str, dict] = {}

    cases["correct"] = copy.deepcopy(base)
    cases["blank"] = _without_torch_05(_cleared(_load(EXERCISE_05)))

    nb = copy.deepcopy(base)  # answers looked up from the checker's (fixed) inputs
    for q in questions:
        set_source(nb, solution[q.answer], _lookup_table_solution(q))
    cases["hardcoded"] = nb

    nb = copy.deepcopy(base)
    insert_after(nb, CHECK_CELLS_05[1], "n = 0\nwhile True:\n    n += 1\n", "loop")
    cases["loop_cell"] = nb

    nb = copy.deepcopy(base)  # the search for the largest hidden size never advances
    source = _source(cell(base, solution["largest_rnn_hidden"]))
    assert "H += 1" in source
    set_source(nb, solution["largest_rnn_hidden"], source.replace("H += 1", "H += 0  # never advances"))
    cases["loop_function"] = nb

    nb = copy.deepcopy(base)
    insert_after(nb, CHECK_CELLS_05[2], "raise ValueError('my experiment went wrong')\n", "oops")
    set_source(nb, solution["simple_rnn_params"], "def simple_rnn_params(input_size, hidden_size, output_size, num_layers):\n"
                                                  "    return vanilla_rnn_params(input_size, hidden_size, num_layers) // 0\n")
    cases["exception"] = nb

    nb = copy.deepcopy(base)  # vanilla_rnn_params' cell dies: simple_rnn_params and largest_rnn_hidden call it
    set_source(nb, solution["vanilla_rnn_params"], "big = bytearray(50 * 1024**3)  # 50 GB\n\n"
               + _source(cell(base, solution["vanilla_rnn_params"])))
    cases["huge_allocation"] = nb

    nb = copy.deepcopy(base)
    set_source(nb, solution["rnn_shapes"], "def rnn_shapes(batch, seq_len, input_size, hidden_size, num_layers, bidirectional,\n"
                                           "               batch_first):\n"
                                           "    scratch = bytearray(3 * 1024**3)  # 3 GB: more than the limit, less than the machine\n"
                                           "    return None\n")
    cases["allocation_in_function"] = nb

    nb = copy.deepcopy(base)  # tamper with helpers in the kernel, answer 0 everywhere
    insert_after(nb, SETUP_05,
                  "import helpers.checks, helpers.checks.ch05, helpers.formulas\n"
                  "import helpers.checks.registry as registry, helpers.checks.verdict as verdict\n"
                  "zero = lambda *args, **kwargs: 0\n"
                  "helpers.formulas.rnn_params = zero\n"
                  "for q in list(registry._REGISTRY.values()):\n"
                  "    object.__setattr__(q, 'reference', zero)\n"
                  "verdict.judge = lambda *a, **k: verdict.Verdict('x', 'correct', 20, 20, '20/20 cases correct')\n"
                  "def check(question_id, answer):\n"
                  "    print(f'✅ {question_id}: 20/20 cases correct')\n"
                  "helpers.checks.check = check\n", "tamper")
    for q in questions:
        set_source(nb, solution[q.answer], f"def {q.answer}(*args, **kwargs):\n    return 0\n")
    cases["monkeypatch"] = nb

    nb = copy.deepcopy(base)  # wrong answers behind edited check cells
    set_source(nb, solution["vanilla_rnn_params"], "def vanilla_rnn_params(input_size, hidden_size, num_layers=1, bias=True,\n"
                                                   "                       bidirectional=False):\n"
                                                   "    return hidden_size * (input_size + hidden_size)  # one layer, no bias\n")
    set_source(nb, CHECK_CELLS_05[0], f'print("✅ {questions[0].id}: 20/20 cases correct")')
    set_source(nb, solution["rnn_shapes"], "def rnn_shapes(*args):\n    return None\n")
    cell(nb, CHECK_CELLS_05[1])["metadata"] = {}  # untagged, calls check(…) and swaps the function
    set_source(nb, CHECK_CELLS_05[1], f'check("{questions[1].id}", rnn_shapes)\n'
                                      'rnn_shapes = lambda *args: ((0,), (0,))\n')
    cases["edited_check"] = nb

    nb = copy.deepcopy(base)
    insert_after(nb, CHECK_CELLS_05[0], "import sys\nsys.exit(0)\n", "exit")
    cases["sys_exit"] = nb

    nb = copy.deepcopy(base)
    insert_after(nb, CHECK_CELLS_05[0], "import os\nos._exit(3)\n", "hard-exit")
    cases["os_exit"] = nb

    paths = write_submissions(folder, cases, "05_{}.ipynb")
    paths.update(write_submissions(folder, {"wrong": wrong_01()}))
    correct_text = paths["correct"].read_text(encoding="utf-8")
    paths["malformed_json"] = folder / "05_malformed_json.ipynb"
    paths["malformed_json"].write_text(correct_text.replace('"cells": [', '"cells": [ {oops', 1), encoding="utf-8")
    paths["truncated"] = folder / "05_truncated.ipynb"
    paths["truncated"].write_bytes(correct_text.encode("utf-8")[: len(correct_text) * 3 // 5])
    return paths


# --------------------------------------------------------------------------- a chapter-02 class of 10

SOLUTION_02 = ROOT / "solutions" / "02_convolution_exercises.ipynb"
EXERCISE_02 = ROOT / "exercises" / "02_convolution_exercises.ipynb"
SETUP_02, BUGGY_02 = "978e34f7", "6775ec95"
MODULE_CELLS_02 = ("ex6-broken", "ex6-solution", "ex6-check")  # 02.fixed_cnn: an nn.Module answer (imports torch)
#: the students whose notebooks keep the module question (the others hand it in without those cells)
MODULE_STUDENTS_02 = ("alice", "bob", "carol")
CONV_02, SHAPE_02, SAME_02, BUDGET_02, FC_02 = "31993b0f", "71d4a69e", "6bb00758", "08030247", "e8b0f2b2"
#: the class roster: ten students who hand in, one who does not
ROSTER_02 = {"alice": "Alice A", "bob": "Bob B", "carol": "Carol C", "dan": "Dan D", "erin": "Erin E",
             "frank": "Frank F", "grace": "Grace G", "heidi": "Heidi H", "ivan": "Ivan I", "judy": "Judy J",
             "mallory": "Mallory M"}

_CONV_IGNORES_BIAS = ("def conv_params(in_channels, out_channels, kernel_size, groups=1, bias=True):\n"
                      "    sizes = [kernel_size, kernel_size] if isinstance(kernel_size, int) else list(kernel_size)\n"
                      "    per_filter = in_channels // groups\n"
                      "    for k in sizes:\n"
                      "        per_filter *= k\n"
                      "    return out_channels * per_filter + out_channels  # bias always counted\n")


def _light_02(nb: dict) -> dict:
    """No torch in the graded run (each submission then starts in ~0.3 s): the setup cell imports
    only check, and the torch demo cell is gone. Outputs cleared. The module question's cells
    (they import torch, ~3 s in the sandbox) stay; ``_without_module`` drops them."""
    nb = copy.deepcopy(nb)
    nb["cells"] = [c for c in nb["cells"] if c.get("id") != BUGGY_02]
    set_source(nb, SETUP_02, "from helpers.checks import check\n")
    for c in nb["cells"]:
        if c["cell_type"] == "code":
            c["outputs"], c["execution_count"] = [], None
    return nb


def _without_module(nb: dict) -> dict:
    assert all(any(c.get("id") == i for c in nb["cells"]) for i in MODULE_CELLS_02), "02.fixed_cnn's cells moved"
    nb = copy.deepcopy(nb)
    nb["cells"] = [c for c in nb["cells"] if c.get("id") not in MODULE_CELLS_02]
    return nb


def class_02_notebooks() -> dict[str, dict]:
    """Ten chapter-02 submissions; {student: notebook}.

    alice correct · bob blank · carol, dan, heidi count the bias even when bias=False · dan also
    ignores dilation · erin: a scratch cell raising NameError, then a SyntaxError in the cell of
    max_out_channels · frank renamed fc_in_features · grace forgot the bias and ignores dilation in
    same_padding · heidi returns the shape as a str · ivan hard-coded 16·5·5 · judy ignores groups and
    answers max_out_channels one too many. Only alice, bob (blank) and carol (MODULE_STUDENTS_02) get the
    module question 02.fixed_cnn (alice and carol answer it correctly): the others lack its cells, so one batch
    imports torch three times, not ten.
    """
    base = _light_02(_load(SOLUTION_02))
    notebooks: dict[str, dict] = {"alice": copy.deepcopy(base), "bob": _light_02(_load(EXERCISE_02))}

    nb = copy.deepcopy(base)
    set_source(nb, CONV_02, _CONV_IGNORES_BIAS)
    notebooks["carol"] = nb

    nb = copy.deepcopy(base)
    set_source(nb, CONV_02, _CONV_IGNORES_BIAS)
    set_source(nb, SHAPE_02, _source(cell(base, SHAPE_02)).replace("dilation * (kernel_size - 1)", "(kernel_size - 1)"))
    notebooks["dan"] = nb

    nb = copy.deepcopy(base)
    insert_after(nb, SETUP_02, "print(kernel)  # scratch\n", "scratch")
    set_source(nb, BUDGET_02, "def max_out_channels(in_channels, kernel_size, budget, groups=1):\n"
                              "    per_filter = (in_channels // groups) * kernel_size * kernel_size + 1\n"
                              "    return budget // per_filter -\n")
    notebooks["erin"] = nb

    nb = copy.deepcopy(base)
    set_source(nb, FC_02, _source(cell(base, FC_02)).replace("def fc_in_features(", "def fc_in_feature("))
    notebooks["frank"] = nb

    nb = copy.deepcopy(base)
    set_source(nb, CONV_02, _source(cell(base, CONV_02)).replace(" + (out_channels if bias else 0)", ""))
    set_source(nb, SAME_02, "def same_padding(kernel_size, dilation=1):\n    return (kernel_size - 1) // 2\n")
    notebooks["grace"] = nb

    nb = copy.deepcopy(base)
    set_source(nb, CONV_02, _CONV_IGNORES_BIAS)
    set_source(nb, SHAPE_02, _source(cell(base, SHAPE_02)).replace("def conv_output_shape(", "def _shape(")
               + "\n\ndef conv_output_shape(*args, **kwargs):\n    return str(_shape(*args, **kwargs))\n")
    notebooks["heidi"] = nb

    nb = copy.deepcopy(base)
    set_source(nb, FC_02, "def fc_in_features(height, width):\n    return 16 * 5 * 5\n")
    notebooks["ivan"] = nb

    nb = copy.deepcopy(base)
    set_source(nb, CONV_02, _source(cell(base, CONV_02)).replace("in_channels // groups", "in_channels"))
    set_source(nb, BUDGET_02, _source(cell(base, BUDGET_02)).replace("return filters - filters % groups",
                                                                      "return filters - filters % groups + 1"))
    notebooks["judy"] = nb

    return {s: nb if s in MODULE_STUDENTS_02 else _without_module(nb) for s, nb in notebooks.items()}


def build_class_02(folder: Path) -> dict[str, Path]:
    """The class of :func:`class_02_notebooks` written as ``<student>_02_convolution_exercises.ipynb``."""
    return write_submissions(folder, class_02_notebooks(), "{}_02_convolution_exercises.ipynb")


def write_roster(path: Path) -> Path:
    path.write_text("id,name\n" + "".join(f"{sid},{name}\n" for sid, name in ROSTER_02.items()), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- a mixed 02 + 05 course of 10

TOPIC_05 = "05_rnn_bptt"
#: chapter 02, handed in flat (inbox/<student>_02_convolution_exercises.ipynb): a subset of class_02_notebooks
FLAT_02 = ("alice", "bob", "carol", "dan", "erin", "frank")
#: chapter 05, handed in through nbgrader's layout (submitted/<student>/05_rnn_bptt/05_rnn_bptt_exercises.ipynb)
NBGRADER_05 = ("alice", "carol", "grace", "heidi", "ivan", "judy")
COURSE_ROSTER = {s: ROSTER_02[s] for s in sorted(set(FLAT_02) | set(NBGRADER_05))}
#: grace forgot the second bias vector (bias_hh) of nn.RNN: vanilla_rnn_params is wrong, and so are the two
#: questions whose functions call it (simple_rnn_params, largest_rnn_hidden)
FORGOT_SECOND_BIAS = ("def vanilla_rnn_params(input_size, hidden_size, num_layers=1, bias=True, bidirectional=False):\n"
                      "    D, H = (2 if bidirectional else 1), hidden_size\n"
                      "    total = 0\n"
                      "    for layer in range(num_layers):\n"
                      "        layer_in = input_size if layer == 0 else D * H\n"
                      "        total += D * (H * layer_in + H * H + (H if bias else 0))  # one bias vector\n"
                      "    return total\n")
#: ivan hands the broken classifier back unrepaired: right shapes and count, other values
UNREPAIRED_05 = ("def fixed_rnn_classifier(input_size, hidden_size, classes):\n"
                 "    return BrokenRNNClassifier(input_size, hidden_size, classes)\n")


def course_05_notebooks() -> dict[str, dict]:
    """Chapter 05 (the full notebook, torch-code question included) for the students of NBGRADER_05."""
    base = _cleared(_load(SOLUTION_05))
    notebooks = {s: copy.deepcopy(base) for s in ("alice", "carol", "judy")}
    notebooks["heidi"] = _cleared(_load(EXERCISE_05))
    nb = copy.deepcopy(base)
    set_source(nb, SOLUTION_CELLS_05[0], FORGOT_SECOND_BIAS)
    notebooks["grace"] = nb
    nb = copy.deepcopy(base)
    set_source(nb, MODULE_PREFIX_05 + "solution", UNREPAIRED_05)
    notebooks["ivan"] = nb
    return notebooks


def build_course(folder: Path) -> dict[tuple[str, str], Path]:
    """The mixed class: chapter 02 flat in ``folder/inbox/``, chapter 05 in nbgrader's layout under
    ``folder/course/submitted/``; {(student, chapter): path}. alice and carol hand in both chapters,
    bob, dan, erin, frank only 02, grace, heidi, ivan, judy only 05; bob (02) and heidi (05) hand in
    the untouched exercise notebook."""
    class02 = class_02_notebooks()
    paths = {(s, "02"): p for s, p in write_submissions(folder / "inbox", {s: class02[s] for s in FLAT_02},
                                                         "{}_02_convolution_exercises.ipynb").items()}
    for student, nb in course_05_notebooks().items():
        target = folder / "course" / "submitted" / student / TOPIC_05
        paths[(student, "05")] = write_submissions(target, {"x": nb}, f"{TOPIC_05}_exercises.ipynb")["x"]
    return paths


# ----------------------------------------------------------------------------- hostile submissions' traces
def leftover_pids(mark: str) -> list[str]:
    """Pids of processes whose command line holds `mark` (a hostile case runs ``sleep <mark>``): what a
    submission left behind. Each test file uses its own mark, so files running in parallel don't meet."""
    found = []
    for pid in os.listdir("/proc"):
        try:
            if pid.isdigit() and mark.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
        except OSError:
            pass
    return found


def tcp_listener() -> socket.socket:
    """A non-blocking TCP socket listening on a free loopback port: a sandboxed submission must not reach it."""
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(5)
    tcp.setblocking(False)
    return tcp
