"""The batch grader on synthetic submissions: every fault case gets the right row.

The fault cases are chapter-05 submissions (torch-free: ~0.2 s each in the sandbox) plus one
chapter-01 submission with typical mistakes, among them an unrepaired ``nn.Module`` answer (its
cells import torch). All are graded in ONE grader run (module-scoped fixture, 2 jobs, 5 s cell
limit, 2 s per question) to keep the suite fast, by the session's warm fork servers
(tests/_grader_fixtures.py).
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pytest

from helpers import grade as grader
from helpers.checks import check
from helpers.checks.registry import questions_for_chapter
from helpers.grading.collect import collect
from helpers.grading.csvlog import COLUMNS, Row, read_csv, write_csv
from helpers.grading.judge import question_result
from helpers.grading.notes import session_notes
from helpers.grading.plan import GradingPlan, Settings
from helpers.grading.submission import (ROOT, InvalidNotebook, cells_to_run, infer_chapter, name_chapter,
                                        parse_notebook, read_submission)
from helpers.grading.summary import summary
from tests._grader_fixtures import sharing
from tests.grade_submissions import SANDBOX_ARGS, SOLUTION_CELLS_05, build_submissions, questions_05

QUESTIONS = [q.id for q in questions_05()]  # chapter 05 without its torch-code question (--questions)
# vanilla_rnn_params · rnn_shapes · bptt_step · tbptt_saved_activations · simple_rnn_params (calls
# vanilla_rnn_params) · largest_rnn_hidden (calls vanilla_rnn_params and tbptt_saved_activations)
VAN, SHAPES, BPTT, SAVED, SIMPLE, LARGEST = QUESTIONS
N = len(QUESTIONS)
QUESTIONS_01 = [q.id for q in questions_for_chapter("01")]
LIN, SHAPE, MLP, HIDDEN, FIXED, MODULE = QUESTIONS_01
TIMEOUT, QUESTION_TIMEOUT = 5, 2

# case → (total points, TOTAL status, {question: status}, substrings of the TOTAL reason)
EXPECTED = {
    "correct": (N, "ok", dict.fromkeys(QUESTIONS, "correct"), []),
    "blank": (0, "ok", dict.fromkeys(QUESTIONS, "not_attempted"), []),
    # chapter 01 (the module answer): linear_params is wrong, and mlp_params (built on it) too
    "wrong": (1, "ok", {LIN: "wrong", SHAPE: "wrong_type", MLP: "wrong", HIDDEN: "correct", FIXED: "missing",
                         MODULE: "wrong"}, []),
    # (a table miss returns 0: "wrong_type" for the tuple answers rnn_shapes and bptt_step)
    "hardcoded": (0, "ok", {VAN: "wrong", SAVED: "wrong", SIMPLE: "wrong", LARGEST: "wrong"}, []),
    "loop_cell": (2, "timeout", {VAN: "correct", SHAPES: "correct", BPTT: "timeout", SAVED: "timeout",
                                 SIMPLE: "timeout", LARGEST: "timeout"},
                  [f"did not finish within {TIMEOUT} s", "infinite loop"]),
    "loop_function": (N - 1, "ok", {**dict.fromkeys(QUESTIONS, "correct"), LARGEST: "timeout"}, []),
    "exception": (N - 1, "cell_errors", {SIMPLE: "error", LARGEST: "correct"}, ["ValueError: my experiment went wrong"]),
    "huge_allocation": (3, "memory", {VAN: "missing", SHAPES: "correct", BPTT: "correct", SAVED: "correct",
                                      SIMPLE: "error", LARGEST: "error"}, ["memory limit (2048 MB)", "MemoryError"]),
    "allocation_in_function": (N - 1, "ok", {SHAPES: "memory", VAN: "correct"}, []),
    # the tampering cell imports answer-bearing modules: refused in graded work, by name
    "monkeypatch": (0, "forbidden_import", dict.fromkeys(QUESTIONS, "forbidden_import"),
                    ["helpers.checks.ch05 is not available in graded work"]),
    "edited_check": (2, "ok", {VAN: "wrong", SHAPES: "wrong", BPTT: "correct", SAVED: "correct", SIMPLE: "wrong",
                               LARGEST: "wrong"}, []),
    "sys_exit": (N, "cell_errors", dict.fromkeys(QUESTIONS, "correct"), ["sys.exit(0)", "grading went on"]),
    "os_exit": (0, "crashed", dict.fromkeys(QUESTIONS, "crashed"), ["exit code 3"]),
    "malformed_json": (0, "invalid_notebook", dict.fromkeys(QUESTIONS, "invalid_notebook"), ["not valid JSON"]),
    "truncated": (0, "invalid_notebook", dict.fromkeys(QUESTIONS, "invalid_notebook"), ["truncated"]),
}


def _questions(case: str) -> list[str]:
    return QUESTIONS_01 if case == "wrong" else QUESTIONS


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def graded(tmp_path_factory, fork_servers):
    folder = tmp_path_factory.mktemp("submissions")
    paths = build_submissions(folder)
    before = {name: _sha(p) for name, p in paths.items()}
    listing = sorted(p.name for p in folder.iterdir())
    out = tmp_path_factory.mktemp("out") / "grades.csv"
    argv = [str(p) for p in paths.values()] + ["--out", str(out), "--jobs", "2", "--timeout", str(TIMEOUT),
                                               "--question-timeout", str(QUESTION_TIMEOUT), "--quiet",
                                               "--questions", ",".join(QUESTIONS + QUESTIONS_01)] + SANDBOX_ARGS
    with sharing(fork_servers):
        assert grader.main(argv) == 0
    with out.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        header = reader.fieldnames
    by_case = {name: {r["question"]: r for r in rows if r["submission"] == str(p)} for name, p in paths.items()}
    return {"paths": paths, "before": before, "listing": listing, "folder": folder, "rows": rows,
            "header": header, "by_case": by_case, "out": out}


def test_every_fault_case_is_built(graded):
    assert set(graded["paths"]) == set(EXPECTED)


@pytest.mark.parametrize("case", list(EXPECTED))
def test_fault_case(graded, case):
    points, status, question_statuses, reasons = EXPECTED[case]
    questions = _questions(case)
    rows = graded["by_case"][case]
    assert set(rows) == set(questions) | {"TOTAL"}, f"{case}: one row per question plus TOTAL"
    total = rows["TOTAL"]
    summary = {q: (rows[q]["status"], rows[q]["reason"]) for q in questions}
    assert (float(total["points"]), total["status"]) == (points, status), f"{case}: {total} {summary}"
    assert float(total["max_points"]) == len(questions)
    for question, expected_status in question_statuses.items():
        assert rows[question]["status"] == expected_status, f"{case}/{question}: {rows[question]}"
    for text in reasons:
        assert text in total["reason"], f"{case}: {text!r} not in {total['reason']!r}"
    for q in questions:
        row = rows[q]
        assert float(row["points"]) == (1.0 if row["status"] == "correct" else 0.0)
        assert (row["reason"] == "") == (row["status"] == "correct"), f"{case}/{q}: every failure has a reason"


def test_reasons_name_the_failing_input(graded):
    wrong = graded["by_case"]["wrong"]
    assert wrong[LIN]["reason"].startswith("linear_params(") and "bias=False" in wrong[LIN]["reason"]
    assert "expected" in wrong[LIN]["reason"]
    assert "(a str)" in wrong[SHAPE]["reason"]
    assert "`fixed_classifier_params`" in wrong[FIXED]["reason"]
    assert "returned a module, but parameter fc2.weight has shape" in wrong[MODULE]["reason"]
    assert f"did not finish within {QUESTION_TIMEOUT} s" in graded["by_case"]["loop_function"][LARGEST]["reason"]
    assert "ZeroDivisionError" in graded["by_case"]["exception"][SIMPLE]["reason"]
    assert "MemoryError" in graded["by_case"]["allocation_in_function"][SHAPES]["reason"]


def test_the_hardcoded_table_fools_the_checker_but_not_the_grader(graded, capsys):
    """The lookup table passes ``check`` (fixed, id-seeded inputs) yet scores 0: fresh inputs."""
    nb = json.loads(graded["paths"]["hardcoded"].read_text(encoding="utf-8"))
    source = "".join(next(c for c in nb["cells"] if c.get("id") == SOLUTION_CELLS_05[0])["source"])
    namespace: dict = {}
    exec(source, namespace)
    assert check(VAN, namespace["vanilla_rnn_params"])
    assert capsys.readouterr().out.startswith(f"✅ {VAN}: 20/20")
    assert graded["by_case"]["hardcoded"][VAN]["status"] == "wrong"


def test_submissions_are_never_modified(graded):
    assert {name: _sha(p) for name, p in graded["paths"].items()} == graded["before"]
    assert sorted(p.name for p in graded["folder"].iterdir()) == graded["listing"]


def test_csv_layout(graded):
    assert graded["header"] == COLUMNS
    assert len(graded["rows"]) == sum(len(_questions(case)) + 1 for case in EXPECTED)
    for case, rows in graded["by_case"].items():
        assert float(rows["TOTAL"]["points"]) == sum(float(rows[q]["points"]) for q in _questions(case))
    written = {"grades.csv", "grades_run.json", "gradebook.csv", "feedback", "grades_overview.html",
               "grades_overview_scores.png", "grades_overview_questions.png"}
    assert sorted(p.name for p in graded["out"].parent.iterdir()) == sorted(written), "no temporary file left"


def test_scores_are_reproducible_with_fresh_inputs(graded, fork_servers):
    names = ["correct", "exception", "edited_check", "hardcoded", "blank"]
    paths = [graded["paths"][n] for n in names]
    with sharing(fork_servers):
        rows, seed = grader.grade(paths, jobs=2, timeout=TIMEOUT, question_timeout=QUESTION_TIMEOUT,
                                  seed=12345, progress=False, sandbox=not SANDBOX_ARGS, questions=QUESTIONS)
    again = {(r.submission, r.question): (r.points, r.status) for r in rows}
    first = {(str(graded["paths"][n]), q): (float(r["points"]), r["status"])
             for n in names for q, r in graded["by_case"][n].items()}
    assert again == first
    a, b = GradingPlan.build("05", 1), GradingPlan.build("05", 2)
    assert a.cases != b.cases, "each run draws new inputs"
    assert GradingPlan.build("05", 1).cases == a.cases


def test_csv_write_is_atomic(tmp_path, monkeypatch):
    out = tmp_path / "grades.csv"
    out.write_text("previous grades\n", encoding="utf-8")
    rows = [Row("a.ipynb", "TOTAL", 1, 2, "ok", "")]

    class Boom(RuntimeError):
        pass

    def broken_writer(*args, **kwargs):
        raise Boom()

    monkeypatch.setattr(csv, "writer", broken_writer)
    with pytest.raises(Boom):
        write_csv(rows, out)
    assert out.read_text(encoding="utf-8") == "previous grades\n"
    assert [p.name for p in tmp_path.iterdir()] == ["grades.csv"]
    monkeypatch.undo()
    write_csv(rows, out)
    assert out.read_text(encoding="utf-8").splitlines() == [",".join(COLUMNS), "a.ipynb,TOTAL,1,2,ok,,,,,"]


def test_check_cells_are_not_executed():
    nb = {"cells": [
        {"cell_type": "code", "source": "from helpers.checks import check", "metadata": {}},
        {"cell_type": "code", "source": "x = 1", "metadata": {"tags": ["check"]}},
        {"cell_type": "code", "source": "# verify\ncheck('01.a', f)\n", "metadata": {}},
        {"cell_type": "code", "source": "def f():\n    return 1\ncheck('01.a', f)", "metadata": {}},
        {"cell_type": "markdown", "source": "check(", "metadata": {}},
    ]}
    assert cells_to_run(nb) == [(1, "from helpers.checks import check"), (4, "def f():\n    return 1")]


@pytest.mark.parametrize("data, reason", [
    (b"", "empty"),
    (b"\xff\xfe\x00", "UTF-8"),
    (b"[1, 2]", "not a notebook"),
    (b'{"cells": 3}', "no list of cells"),
    (b'{"cells": [{"source": "x"}]}', "malformed"),
    (b'{"cells": [', "truncated"),
])
def test_invalid_notebooks_are_explained(data, reason):
    with pytest.raises(InvalidNotebook, match=reason):
        parse_notebook(data)


def test_nbformat3_and_list_sources_are_read():
    nb = parse_notebook(json.dumps({"worksheets": [{"cells": [
        {"cell_type": "code", "input": ["x = ", "1"]}]}], "nbformat": 3}).encode())
    assert cells_to_run(nb) == [(1, "x = 1")]


def test_chapter_inference(tmp_path):
    assert infer_chapter(Path("01_linear_exercises.ipynb"), None) == "01"
    assert infer_chapter(Path("alice-07_lstm.ipynb"), None) == "07"
    nb = {"cells": [{"cell_type": "code", "source": 'check("03.pool", f)'}]}
    assert infer_chapter(Path("alice.ipynb"), nb) == "03"
    assert infer_chapter(Path("alice.ipynb"), {"cells": []}) is None


def test_unknown_chapter_and_unreadable_file(tmp_path):
    rows = grader.grade_submission(tmp_path / "missing.ipynb", {}, Settings())
    assert rows[0].status == "invalid_notebook" and "cannot read" in rows[0].reason
    path = tmp_path / "alice.ipynb"
    path.write_text('{"cells": []}', encoding="utf-8")
    rows = grader.grade_submission(path, {}, Settings())
    assert rows[0].status == "invalid_notebook" and "--chapter" in rows[0].reason


def test_code_that_ignores_the_soft_timeout_is_killed(tmp_path):
    """SIGALRM ignored + busy loop: the grader kills the process group at the hard limit."""
    nb = {"cells": [{"cell_type": "code", "metadata": {}, "source": "def tbptt_saved_activations(k, b, i, h, n):\n"
                     "    return sum(k * b * (i if l == 0 else h) + (k + 1) * b * h for l in range(n))"},
                    {"cell_type": "code", "metadata": {}, "source": "import signal\n"
                     "signal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True:\n    pass"}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "05_stubborn.ipynb"
    path.write_text(json.dumps(nb), encoding="utf-8")
    settings = Settings(timeout=1, question_timeout=0.5, startup_slack=15)
    rows = grader.grade_submission(path, {}, settings, seed=1)
    total = rows[-1]
    assert total.status == "timeout" and "killed after the time limit while running code cell 2" in total.reason
    assert {r.status for r in rows[:-1]} == {"timeout"} and total.points == 0


# --------------------------------------------------------------------------- chapters, CSV log, defensive parsing

def _copy_exercise(chapter_file: str, dest: Path) -> Path:
    dest.write_bytes((ROOT / "exercises" / chapter_file).read_bytes())
    return dest


def test_the_chapter_comes_from_the_notebook_metadata(tmp_path):
    conv, pool = "02_convolution_exercises.ipynb", "03_pooling_exercises.ipynb"
    assert name_chapter(Path("team12_02_convolution_exercises.ipynb")) == "02"
    sub = read_submission(_copy_exercise(conv, tmp_path / "team12_02_convolution_exercises.ipynb"))
    assert (sub.chapter, sub.problem) == ("02", "")
    sub = read_submission(_copy_exercise(pool, tmp_path / "renamed.ipynb"))
    assert (sub.chapter, sub.problem) == ("03", "")
    wrong = _copy_exercise(pool, tmp_path / "team12_02_convolution_exercises_v2.ipynb")
    sub = read_submission(wrong)
    assert sub.status == "wrong_notebook" and "chapter-03 exercise notebook, handed in as chapter 02" in sub.problem
    sub = read_submission(tmp_path / "renamed.ipynb", chapter="02")
    assert sub.status == "wrong_notebook"
    rows = grader.grade_submission(wrong, {}, Settings())
    assert {r.status for r in rows} == {"wrong_notebook"} and [r.question for r in rows][-1] == "TOTAL"
    assert [r.question for r in rows[:-1]] == [q.id for q in questions_for_chapter("02")]


def _completed(*events, **kwargs):
    from helpers.grading.sandbox import Completed

    return Completed(events=list(events), returncode=0, **kwargs)


@pytest.mark.parametrize("answer, status, reason", [
    ({"outcomes": "not a list"}, "crashed", "malformed answer"),
    ({"outcomes": [{"timeout": "soon"}]}, "crashed", "cannot be read"),
    ({"outcomes": [{"raised": 7}]}, "error", "raised 7"),
    ({"not_callable": "x" * 500}, "wrong_type", "not a function"),
])
def test_whatever_comes_back_is_parsed_defensively(answer, status, reason):
    plan = GradingPlan.build("01", 0)
    run = _completed({"event": "start"}, {"event": "cell", "index": "three"}, {"event": "cells_done"},
                     {"event": "answer", "id": LIN, **answer}, {"event": "done"})
    report = collect(run)
    session = session_notes(report, run, {}, Settings())
    row = question_result(plan.questions[0], plan, report, run, session)
    assert row.status == status and reason in row.reason and row.points == 0
    other = question_result(plan.questions[1], plan, report, run, session)
    assert other.status == "error" and other.reason == "no answer received"


def test_an_oversized_or_missing_report_is_a_crash_with_a_reason():
    plan = GradingPlan.build("01", 0)
    for run, reason in [(_completed({"event": "start"}, overflow="it sent more than 10 bytes of results"), "sent more than"),
                        (_completed(malformed=3), "3 malformed result line(s)")]:
        report = collect(run)
        session = session_notes(report, run, {}, Settings())
        assert "crashed" in session.statuses and reason in session.notes[-1]
        row = question_result(plan.questions[0], plan, report, run, session)
        assert row.status == "crashed" and reason in row.reason


def test_reading_results_is_bounded(tmp_path):
    """A flood without newlines, garbage lines, and a child that keeps the pipe open: run() returns."""
    from helpers.grading.sandbox import run

    def go(code: str, **kw):
        import sys as _sys

        return run([_sys.executable, "-c", code], b"", env={"PATH": "/usr/bin:/bin"}, cwd=str(tmp_path),
                   deadline=lambda events, end=__import__("time").monotonic() + 20: end,
                   max_bytes=kw.get("max_bytes", 1 << 20), max_line=kw.get("max_line", 1 << 16), kinds=("done",))

    flood = go("import sys\nsys.stdout.write('x' * 3_000_000)")
    assert flood.overflow and flood.seconds < 15
    garbage = go("print('not json'); print('[1]'); print('{\"event\": \"done\"}')")
    assert (garbage.malformed, garbage.events) == (2, [{"event": "done"}])
    held = go("import os, time\nif os.fork() == 0:\n    os.setsid(); time.sleep(30)\nprint('{\"event\": \"done\"}')")
    assert held.events == [{"event": "done"}] and held.seconds < 10 and not held.killed_for_time


def _invalid(path: Path) -> Path:
    path.write_text("{not json", encoding="utf-8")
    return path


def test_rows_are_appended_as_graded_and_resume_skips_what_is_done(tmp_path, monkeypatch):
    out = tmp_path / "grades.csv"
    a, b, c = (_invalid(tmp_path / f"01_{n}.ipynb") for n in "abc")
    real = grader.report_submission

    def interrupted(sub, *args, **kwargs):
        if sub.path == b:
            raise KeyboardInterrupt
        return real(sub, *args, **kwargs)

    monkeypatch.setattr(grader, "report_submission", interrupted)
    with pytest.raises(KeyboardInterrupt):
        grader.grade([a, b, c], jobs=1, sandbox=False, out=out, progress=False)
    kept = read_csv(out)
    assert {r.submission for r in kept} == {str(a)} and kept[-1].question == "TOTAL"
    with out.open("a", encoding="utf-8") as f:  # a crash in the middle of a submission's write
        f.write(f"{b},01.linear_params,0,1,invalid_notebook,x,{'0' * 64},none,\n{b},01.output")
    monkeypatch.undo()
    graded = []
    monkeypatch.setattr(grader, "report_submission", lambda sub, *a, **k: graded.append(sub.path) or real(sub, *a, **k))
    rows, _ = grader.grade([a, b, c], jobs=1, sandbox=False, out=out, progress=False, resume=True)
    assert graded == [b, c], "a is complete in the CSV: skipped"
    final = read_csv(out)
    assert [r.submission for r in final if r.question == "TOTAL"] == [str(a), str(b), str(c)]
    assert len(final) == 3 * (len(QUESTIONS_01) + 1)
    assert {r.sandbox for r in final} == {"NONE (--no-sandbox)"}
    assert "WITHOUT a sandbox" in summary(rows, 1.0, 0, 1, out, sandboxed=False)


def test_without_bubblewrap_the_grader_refuses(tmp_path, monkeypatch, capsys):
    import helpers.grading.sandbox

    monkeypatch.setattr(helpers.grading.sandbox.shutil, "which", lambda name: None)
    monkeypatch.setattr(helpers.grading.sandbox, "_PROBE", {})
    assert grader.main([str(_invalid(tmp_path / "01_a.ipynb")), "--out", str(tmp_path / "g.csv"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "bubblewrap" in err and "--no-sandbox" in err and not (tmp_path / "g.csv").exists()
    monkeypatch.undo()  # bwrap present but unable to create namespaces: refused too, with bwrap's words
    monkeypatch.setattr(helpers.grading.sandbox, "_PROBE", {})
    monkeypatch.setattr(helpers.grading.sandbox.Sandbox, "_bwrap_args", lambda self, dirs: ["bwrap", "--no-such-option"])
    assert grader.main([str(tmp_path / "01_a.ipynb"), "--out", str(tmp_path / "g.csv"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "could not create a sandbox" in err and "--no-sandbox" in err


def test_the_graded_view_holds_check_shape_and_no_answer(tmp_path):
    import subprocess
    import sys

    from helpers.checks.graded import build_view

    view = build_view(tmp_path)
    files = sorted(str(p.relative_to(view)) for p in view.rglob("*.py"))
    assert files == ["helpers/__init__.py", "helpers/checks/__init__.py", "helpers/checks/graded.py",
                     "helpers/checks/module_answer.py", "helpers/checks/protocol.py", "helpers/checks/refusal.py",
                     "helpers/grading/__init__.py",
                     "helpers/grading/runner.py", "helpers/shapes.py"]
    code = ("import types\n"
            "from helpers.checks.graded import ImportGuard, ForbiddenImport\n"
            "ImportGuard.install()\n"
            "from helpers import check_shape, ShapeError\n"
            "assert check_shape(types.SimpleNamespace(shape=(2, 3)), 'B C', C=3) == {'B': 2, 'C': 3}\n"
            "try:\n    check_shape(types.SimpleNamespace(shape=(2, 4)), 'B C', C=3)\nexcept ShapeError as e:\n"
            "    print('ShapeError', e)\n"
            "for stmt in ['from helpers.shapes import conv_output_size', 'import helpers.cost',\n"
            "             'from helpers import formulas', 'import helpers.checks.ch12', 'from helpers.checks import ch03',\n"
            "             'from helpers.models import unet']:\n"
            "    try:\n        exec(stmt)\n    except ForbiddenImport as e:\n        print('refused', e)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60,
                          env={"PYTHONPATH": str(view), "PATH": "/usr/bin:/bin"})
    lines = done.stdout.splitlines()
    assert done.returncode == 0, done.stderr
    assert lines[0].startswith("ShapeError dimension C (axis 1) should be 3 but is 4")
    refused = [line.split(" ")[1] for line in lines[1:]]
    assert refused == ["helpers.shapes.conv_output_size", "helpers.cost", "helpers.formulas", "helpers.checks.ch12",
                       "helpers.checks.ch03", "helpers.models"], lines
    assert all("is not available in graded work: write the formula yourself" in line for line in lines[1:])


def test_the_grader_does_not_import_nbclient():
    import subprocess
    import sys

    code = "import sys, helpers.grade; print(sorted(m for m in sys.modules if m.startswith('nbclient')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr[-500:]


def test_questions_grades_only_the_ids_given_and_refuses_unknown_ones(tmp_path, capsys):
    path = _invalid(tmp_path / "05_a.ipynb")
    rows, _ = grader.grade([path], sandbox=False, progress=False, questions=QUESTIONS[:2])
    assert [r.question for r in rows] == QUESTIONS[:2] + ["TOTAL"]
    out = tmp_path / "g.csv"
    assert grader.main([str(path), "--out", str(out), "--quiet", "--no-sandbox", "--questions", "05.nope"]) == 2
    assert "unknown question id(s): 05.nope" in capsys.readouterr().err and not out.exists()
    with pytest.raises(ValueError, match="none of the questions to grade"):
        grader.grade([path], sandbox=False, progress=False, questions=QUESTIONS_01[:1])


def _python_without_torch() -> str | None:
    """An interpreter on PATH (3.11: what the project needs) in which torch cannot be imported."""
    import shutil
    import subprocess

    python = shutil.which("python3.11", path="/root/.pyenv/shims:/usr/local/bin:/usr/bin")
    if python is None:
        return None
    probe = subprocess.run([python, "-c", "import importlib.util as u; print(u.find_spec('torch') is None)"],
                           capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    return python if probe.stdout.strip() == "True" else None


@pytest.mark.parametrize("how", ["torch blocked", "an interpreter without torch"])
def test_without_torch_the_grader_says_to_use_the_course_environment(tmp_path, how):
    import os
    import subprocess
    import sys

    path = tmp_path / "05_rnn_bptt_exercises.ipynb"  # a real notebook: grading it needs torch's references
    path.write_bytes((ROOT / "exercises" / path.name).read_bytes())
    args = [str(path), "--out", str(tmp_path / "g.csv"), "--quiet", "--no-sandbox"]
    if how == "torch blocked":
        code = "import sys\nsys.modules['torch'] = None\nfrom helpers.grade import main\nraise SystemExit(main(sys.argv[1:]))"
        command = [sys.executable, "-c", code, *args]
    else:
        python = _python_without_torch()
        if python is None:
            pytest.skip("no Python 3.11 without torch on this machine")
        command = [python, "-m", "helpers.grade", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 2, done.stderr[-800:]
    assert "run it with the course environment: .venv/bin/python -m helpers.grade or make grade" in done.stderr
    assert "Traceback" not in done.stderr and "fix helpers.checks" not in done.stderr
    assert not (tmp_path / "g.csv").exists()


GRADING = ROOT / "helpers" / "grading"


def _grading_imports() -> dict[str, set[str]]:
    """Each module of helpers/grading (and ``grade`` for helpers/grade.py) → the grading modules (and
    ``grade``) it imports anywhere in its text, read from the source (nothing is imported)."""
    import ast

    files = {p.stem: p for p in sorted(GRADING.glob("*.py"))} | {"grade": ROOT / "helpers" / "grade.py"}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for target in targets:
                parts = target.split(".")
                if parts[:2] == ["helpers", "grading"] and len(parts) > 2:
                    deps.add(parts[2])
                elif parts[:2] == ["helpers", "grade"]:
                    deps.add("grade")
        graph[name] = deps & set(files) - {name}
    return graph


def test_the_grading_package_imports_flow_one_way():
    import graphlib

    graph = _grading_imports()
    assert "overview" in graph and "judge" in graph["grade"], graph  # the reader sees what it should
    assert [m for m, deps in graph.items() if "grade" in deps] == [], "only helpers.grade imports the parts"
    try:
        order = list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        pytest.fail(f"import cycle in helpers/grading: {exc.args[1]}")
    assert order[-1] == "grade"
    for base in ("report", "sandbox", "runner"):  # the leaves: typed records, the sandbox, what runs inside it
        assert graph[base] == set(), f"{base} imports {graph[base]}"


def test_the_grading_modules_stay_small():
    import ast

    for path in [*sorted(GRADING.glob("*.py")), ROOT / "helpers" / "grade.py"]:
        text = path.read_text(encoding="utf-8")
        limit = 250 if path.name == "grade.py" else 400
        assert text.count("\n") <= limit, f"{path.name}: {text.count(chr(10))} lines > {limit}"
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                assert lines <= 60, f"{path.name}: {node.name} has {lines} lines > 60"
