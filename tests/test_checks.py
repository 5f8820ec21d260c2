"""helpers.checks: the instant checker's messages, the registry, and a contract test over EVERY
registered question of every chapter (cases, references, solutions notebook, check cells)."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hypothesis import given, strategies as st
from torch import nn

from helpers import formulas
from helpers.checks import CheckResult, check, checker_rng, run_cases
from helpers.checks.registry import (Question, UnknownQuestion, all_questions, get, make_cases,
                                     questions_for_chapter, register)
from helpers.checks.verdict import NotPlainData, judge, normalise, reference_answers
from helpers.counting import count_params

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = all_questions()


def correct_linear(in_features, out_features, bias=True):
    return sum(p.numel() for p in nn.Linear(in_features, out_features, bias=bias, device="meta").parameters())


def line(capsys) -> str:
    return capsys.readouterr().out


# --------------------------------------------------------------------------- messages

def test_correct_answer(capsys):
    result = check("01.linear_params", correct_linear)
    assert result and result.status == "correct" and result.correct == result.total == 20
    assert line(capsys) == "✅ 01.linear_params: 20/20 cases correct\n"


def test_wrong_answer_names_first_failing_input_expected_and_hint(capsys):
    def forgot_bias_flag(in_features, out_features, bias=True):
        return in_features * out_features + out_features

    result = check("01.linear_params", forgot_bias_flag)
    out = line(capsys)
    assert not result and result.status == "wrong"
    first, hint = out.rstrip("\n").split("\n")
    cases = make_cases(get("01.linear_params"), checker_rng("01.linear_params"))
    args, kwargs = next((a, k) for a, k in cases if k.get("bias") is False)
    want = correct_linear(*args, **kwargs)
    assert first == (f"❌ 01.linear_params: linear_params({args[0]}, {args[1]}, bias=False) returned "
                     f"{forgot_bias_flag(*args)}, expected {want}.")
    assert hint.startswith("   Hint: ") and "bias" in hint


def test_not_attempted(capsys):
    def linear_params(in_features, out_features, bias=True):
        raise NotImplementedError("linear_params: replace this line with your code")

    result = check("01.linear_params", linear_params)
    assert result.status == "not_attempted" and not result
    assert line(capsys).startswith("⏳ 01.linear_params: not attempted yet — replace the `raise NotImplementedError`")


def _counting_question(monkeypatch, qid: str = "42.double") -> tuple[Question, list]:
    """A registered question whose reference records every call it gets (2·x, on 5 cases)."""
    calls: list = []

    def reference(x):
        calls.append(x)
        return 2 * x

    q = Question(id=qid, title="", cases=lambda rng: [((rng.randint(1, 99),), {}) for _ in range(5)],
                 reference=reference, module=__name__)
    import helpers.checks.registry as registry
    monkeypatch.setitem(registry._REGISTRY, qid, q)
    return q, calls


def test_not_attempted_builds_no_reference(capsys, monkeypatch):
    """The fast path of an exercise notebook: a stub costs one call, no reference answer."""
    _, calls = _counting_question(monkeypatch)

    def double(x):
        raise NotImplementedError("double: replace this line with your code")

    assert check("42.double", double).status == "not_attempted" and calls == []
    assert check("42.double", lambda x: x // 0).status == "error" and calls == []  # fails on its first case
    assert check("42.double", lambda x: 2 * x).status == "correct" and len(calls) == 5
    assert check("42.double", lambda x: 2 * x if x % 2 else 0).status in ("wrong", "correct")
    assert "42.double" in line(capsys)


@given(st.lists(st.sampled_from(["value", "wrong", "raise", "not_implemented"]), min_size=1, max_size=5))
def test_lazy_references_give_the_verdict_of_eager_ones(behaviour):
    """judge without references (computed only when needed) == judge with them computed up front."""
    q = Question(id="42.triple", title="", cases=lambda rng: [((i,), {}) for i in range(len(behaviour))],
                 reference=lambda x: 3 * x)
    cases = make_cases(q, random.Random(0))

    def answer(x):
        kind = behaviour[x]
        if kind == "raise":
            raise ValueError("no")
        if kind == "not_implemented":
            raise NotImplementedError
        return 3 * x if kind == "value" else 3 * x + 1

    outcomes = run_cases(answer, cases, 5.0)
    assert judge(q, cases, outcomes) == judge(q, cases, outcomes, reference_answers(q, cases))


def test_a_not_attempted_module_answer_skips_the_meta_warm_up():
    """A module question's stub raises before any module is built: torch._dynamo (seconds) is never imported."""
    code = ("import sys, torch; from helpers.checks import check\n"
            "def fixed_mlp(i, h, o):\n    raise NotImplementedError\n"
            "print(check('01.fixed_mlp', fixed_mlp).status, 'torch._dynamo' in sys.modules)\n"
            "import gc; gc.freeze()  # after the answer: exit without full collections over torch (~0.6 s)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.splitlines()[-1] == "not_attempted False"


def test_the_meta_warm_up_is_off_the_clock(monkeypatch):
    """The one-off set-up runs after the first module is built, with the time limit paused."""
    from helpers.checks import module_answer

    seen: list = []
    warm_up = module_answer.warm_up

    def slow_warm_up():  # the real set-up, then longer than the whole time limit
        seen.append(True)
        warm_up()
        time.sleep(1.1)

    monkeypatch.setattr(module_answer, "warm_up", slow_warm_up)
    q = get("01.fixed_mlp")
    cases = make_cases(q, checker_rng(q.id))[:2]
    from helpers.checks.verdict import probes

    outcomes = run_cases(q.reference, cases, 1.0, probes=probes(q, cases))
    assert seen == [True] and all("value" in o for o in outcomes) and len(outcomes) == 2

    def spin(*args):
        while True:
            pass

    start = time.monotonic()
    assert "timeout" in run_cases(spin, cases, 0.3, probes=probes(q, cases))[0]
    assert time.monotonic() - start < 5 and seen == [True]  # never built a module: no warm-up


def test_exception_is_one_line_without_traceback(capsys):
    result = check("01.linear_params", lambda i, o, bias=True: i // 0)
    out = line(capsys)
    assert result.status == "error"
    assert "raised ZeroDivisionError: integer division or modulo by zero" in out.split("\n")[0]
    assert "Traceback" not in out and len(out.splitlines()) == 2


@pytest.mark.parametrize("bad, kind, extra", [
    (lambda i, o, bias=True: float(correct_linear(i, o, bias)), "(a float)", "Use // for integer division"),
    (lambda i, o, bias=True: str(correct_linear(i, o, bias)), "(a str)", ""),
    (lambda i, o, bias=True: True, "(a bool)", ""),
    (lambda i, o, bias=True: [correct_linear(i, o, bias)], "(a list)", ""),
])
def test_wrong_type_is_explained(capsys, bad, kind, extra):
    result = check("01.linear_params", bad)
    out = line(capsys)
    assert result.status == "wrong_type" and kind in out and "expected" in out and extra in out


def test_objects_cannot_fake_equality(capsys):
    class AlwaysEqual:
        def __eq__(self, other):
            return True

    result = check("01.linear_params", lambda *a, **k: AlwaysEqual())
    assert result.status == "wrong_type" and "AlwaysEqual" in line(capsys)


def test_passing_the_result_instead_of_the_function(capsys):
    result = check("01.linear_params", 185)
    assert result.status == "wrong_type"
    assert "pass your function itself" in line(capsys)


def test_unknown_question_suggests_close_ids(capsys):
    result = check("01.linear_param", correct_linear)
    assert not result and "did you mean '01.linear_params'" in line(capsys)


def test_timeout_stops_an_infinite_loop():
    def spin(*args, **kwargs):
        while True:
            pass

    q = get("01.linear_params")
    cases = make_cases(q, checker_rng(q.id))
    start = time.monotonic()
    outcomes = run_cases(spin, cases, 0.3)
    assert time.monotonic() - start < 5
    verdict = judge(q, cases, outcomes)
    assert verdict.status == "timeout" and "did not finish within 0.3 s" in verdict.message


def test_mutating_the_inputs_cannot_change_the_reference(capsys):
    def sneaky(layer_sizes, bias=True):
        layer_sizes[:] = [1, 1]
        return 2

    assert check("01.mlp_params", sneaky).status == "wrong"


def test_sys_exit_inside_the_function_is_an_error_not_an_exit(capsys):
    result = check("01.linear_params", lambda *a, **k: sys.exit(1))
    assert result.status == "error" and "SystemExit" in line(capsys)


def test_output_is_deterministic(capsys):
    def wrong(in_features, out_features, bias=True):
        return in_features + out_features

    check("01.mlp_params", wrong)
    first = line(capsys)
    check("01.mlp_params", wrong)
    assert line(capsys) == first
    assert checker_rng("x").random() == checker_rng("x").random()


def test_check_result_displays_nothing_more_in_jupyter(capsys):
    result = check("01.linear_params", correct_linear)
    assert isinstance(result, CheckResult) and result._ipython_display_() is None
    assert repr(result) == line(capsys).rstrip("\n")


# --------------------------------------------------------------------------- normalise / judge

def test_normalise_plain_data():
    assert normalise(torch.Size([2, 3])) == [2, 3]
    assert normalise((1, (2, 3))) == [1, [2, 3]]
    assert normalise(torch.tensor(7)) == 7 and type(normalise(torch.tensor(7))) is int
    np = pytest.importorskip("numpy")
    assert type(normalise(np.int64(5))) is int and normalise(np.arange(3)) == [0, 1, 2]
    assert normalise({"a": (1,)}) == {"a": [1]}
    with pytest.raises(NotPlainData):
        normalise(object())


def test_shapes_are_shown_as_tuples(capsys):
    check("01.output_shape", lambda input_shape, layer_sizes: [0])
    assert "returned (0,), expected (" in line(capsys)


def test_tuple_and_list_answers_are_equivalent_and_floats_use_isclose():
    q = Question(id="99.t", answer="f", title="t", cases=lambda rng: [((1,), {})],
                 reference=lambda x: (0.1 + 0.2, None))
    assert judge(q, [((1,), {})], [{"value": [0.3, None]}]).passed
    assert not judge(q, [((1,), {})], [{"value": [0.31, None]}]).passed


# --------------------------------------------------------------------------- registry

def test_registry_validates_ids_and_duplicates():
    with pytest.raises(ValueError, match="NN.short_name"):
        Question(id="linear", answer="f", title="", cases=lambda r: [], reference=len)
    q = Question(id="01.linear_params", answer="f", title="", cases=lambda r: [((1,), {})], reference=len,
                 module="somewhere.else")
    with pytest.raises(ValueError, match="registered twice"):
        register(q)
    with pytest.raises(UnknownQuestion):
        get("98.nothing")


def test_answer_defaults_to_the_name_after_the_dot():
    q = Question(id="42.max_widget_size", title="", cases=lambda r: [((1,), {})], reference=len)
    assert q.answer == "max_widget_size"
    assert Question(id="42.a", answer="b", title="", cases=lambda r: [], reference=len).answer == "b"
    with pytest.raises(ValueError, match="function name"):
        Question(id="42.a", answer="not a name", title="", cases=lambda r: [], reference=len)


def test_questions_for_chapter_is_in_notebook_order():
    ids = [q.id for q in questions_for_chapter(1)]
    assert ids[0] == "01.linear_params" and len(ids) >= 4


def test_checking_a_chapter_01_answer_does_not_import_torch():
    """The student's kernel stays lean: formulas are pure arithmetic."""
    code = ("import sys; from helpers.checks import check; "
            "check('01.linear_params', lambda i, o, bias=True: i * o + (o if bias else 0)); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.splitlines() == ["✅ 01.linear_params: 20/20 cases correct", "False"]


def test_loading_every_question_imports_no_torch_and_no_other_chapter():
    """The rule for checks modules: torch (and helpers modules that import it: counting, models)
    is imported inside the reference or case function that needs it, never at module level; and
    shared pieces come from helpers.checks._gen, never from another chapter's module."""
    code = ("import sys; from helpers.checks.registry import all_questions; n = len(all_questions()); "
            "print(n, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.split() == [str(len(QUESTIONS)), "False"]
    for path in sorted((ROOT / "helpers" / "checks").glob("ch[0-9][0-9].py")):
        text = path.read_text(encoding="utf-8")
        others = {m for m in re.findall(r"helpers\.checks\.(ch\d\d)", text) if m != path.stem}
        assert not others, f"{path.name} imports {sorted(others)}: move the shared piece to helpers/checks/_gen.py"


def test_core_never_imports_checks():
    for path in (ROOT / "helpers").rglob("*.py"):
        rel = path.relative_to(ROOT / "helpers").parts
        if rel[0] in ("checks", "grade.py", "grading", "exercises.py", "widgets", "__init__.py", "cli.py",
                      "__main__.py"):
            continue
        text = path.read_text(encoding="utf-8")
        assert "helpers.checks" not in text and "from helpers import checks" not in text, path


# --------------------------------------------------------------------------- every question, every chapter

def _solutions_notebook(chapter: str) -> Path:
    found = sorted((ROOT / "solutions").glob(f"{chapter}_*_exercises.ipynb"))
    assert len(found) == 1, f"chapter {chapter}: expected one solutions/{chapter}_*_exercises.ipynb, found {found}"
    return found[0]


@pytest.mark.parametrize("chapter", [f"{n:02d}" for n in range(1, 16)])
def test_every_chapter_has_at_least_four_questions(chapter):
    assert len(questions_for_chapter(chapter)) >= 4


@pytest.mark.parametrize("question", QUESTIONS, ids=[q.id for q in QUESTIONS])
def test_question_contract(question):
    cases = make_cases(question, random.Random(0))
    assert 5 <= len(cases) <= 200
    assert json.loads(json.dumps(cases)) == [[list(a), k] for a, k in cases], "cases must be JSON data"
    assert make_cases(question, random.Random(1)) != make_cases(question, random.Random(2)), \
        "cases must be randomised, or a hard-coded answer passes"
    for seed in (1, 2):  # the grader's fresh inputs: cases and references must work for any seed
        cases = make_cases(question, random.Random(seed))
        references = reference_answers(question, cases)  # a module answer: the reference module's descriptions
        assert not references.failure and len(references.normalised) == len(cases), references.failure
        json.dumps(references.normalised)
    assert question.hint, "a hint helps the student who got it wrong"


@pytest.mark.parametrize("question", QUESTIONS, ids=[q.id for q in QUESTIONS])
def test_question_has_solution_and_check_cell(question):
    nb = json.loads(_solutions_notebook(question.chapter).read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    text = lambda c: "".join(c["source"])  # noqa: E731
    defining = [c for c in code if f"def {question.answer}(" in text(c)]
    assert defining and "### BEGIN SOLUTION" in text(defining[0]), f"no solution cell defines {question.answer}"
    checks = [c for c in code if f'check("{question.id}", {question.answer})' in text(c)]
    assert checks, f'no cell runs check("{question.id}", {question.answer})'
    cell = checks[0]
    assert "check" in cell.get("metadata", {}).get("tags", []), "check cells are tagged 'check'"
    printed = "".join("".join(o.get("text", "")) for o in cell.get("outputs", []) if o.get("output_type") == "stream")
    assert printed.startswith(f"✅ {question.id}: "), f"the committed solution must pass: {printed!r}"


def test_every_check_cell_refers_to_a_registered_question():
    ids = {q.id for q in QUESTIONS}
    for path in sorted((ROOT / "solutions").glob("*_exercises.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        for cell in nb["cells"]:
            if "check" in cell.get("metadata", {}).get("tags", []):
                source = "".join(cell["source"])
                qid = source.split('"')[1] if '"' in source else source.split("'")[1]
                assert qid in ids, f"{path.name}: check cell uses unknown id {qid!r}"


# --------------------------------------------------------------------------- chapter 01 references vs torch

def test_fixed_classifier_runs_and_the_buggy_one_does_not():
    from helpers.checks.ch01 import fixed_classifier

    c, h, w, hidden, classes = 3, 8, 6, 10, 4
    model = fixed_classifier(c, h, w, hidden, classes).to_empty(device="cpu")
    assert tuple(model(torch.zeros(2, c, h, w)).shape) == (2, classes)
    buggy = nn.Sequential(nn.Flatten(), nn.Linear(h * w, hidden), nn.ReLU(), nn.Linear(hidden, hidden // 2),
                          nn.ReLU(), nn.Linear(hidden, classes))
    with pytest.raises(RuntimeError):
        buggy(torch.zeros(2, c, h, w))
    assert get("01.fixed_classifier_params").reference(c, h, w, hidden, classes) == count_params(model)


def test_output_shape_reference_matches_torch_and_fails_like_torch():
    ref = get("01.output_shape").reference
    assert ref([2, 3, 5], [5, 7, 4]) == tuple(nn.Sequential(nn.Linear(5, 7), nn.Linear(7, 4))(torch.zeros(2, 3, 5)).shape)
    assert ref([2, 6], [5, 4]) is None


@given(st.integers(1, 3000), st.integers(1, 1000), st.integers(0, 10**7))
def test_max_hidden_size_is_the_largest_fit(fin, fout, extra):
    params = lambda h: formulas.linear_params(fin, h) + formulas.linear_params(h, h) + formulas.linear_params(h, fout)  # noqa: E731
    budget = params(1) + extra
    h = get("01.max_hidden_size").reference(fin, fout, budget)
    assert params(h) <= budget < params(h + 1)


def test_mlp_params_reference_counts_real_modules():
    ref = get("01.mlp_params").reference
    sizes = [7, 5, 3]
    model = nn.Sequential(nn.Linear(7, 5, bias=False), nn.ReLU(), nn.Linear(5, 3, bias=False))
    assert ref(sizes, bias=False) == count_params(model)
    assert ref(sizes) == sum(formulas.linear_params(a, b) for a, b in zip(sizes, sizes[1:]))


def test_every_chapter_has_a_question_answered_with_torch_code():
    """Issue 17: each exercise notebook asks for PyTorch code at least once — an nn.Module answer
    (graded by its description), or (chapter 12) a function written with torch whose solution
    cell imports it."""
    chapters = sorted({q.chapter for q in QUESTIONS})
    assert chapters == [f"{n:02d}" for n in range(1, 17)]
    for chapter in chapters:
        modules = [q.id for q in QUESTIONS if q.chapter == chapter and q.probe is not None]
        if chapter == "12":
            nb = json.loads(_solutions_notebook(chapter).read_text(encoding="utf-8"))
            solution = next("".join(c["source"]) for c in nb["cells"] if "def gqa_attention(" in "".join(c["source"]))
            assert "torch" in solution and "### BEGIN SOLUTION" in solution
        else:
            assert modules, f"chapter {chapter} has no question answered with an nn.Module"
