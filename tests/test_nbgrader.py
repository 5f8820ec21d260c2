"""The nbgrader export round trip with real nbgrader (0.9.x): export chapter 05 → generate_assignment
→ autograde five students (the solution, the blank release, a typical mistake, one whose answer
uses helpers.formulas, and a correct `exercises/` notebook — not the release) and compare
nbgrader's scores with helpers.grade's (and, for helpers.formulas, the instant check's) on the same files. nbgrader runs in this process through its own API (NbGraderAPI, what its
command-line apps call): one nbgrader import instead of three interpreter starts, and one autograde
of every submitted student (``student_id="*"``, as ``nbgrader autograde 05_rnn_bptt`` does) instead of
one call per student. nbgrader is imported in the tests that use it, not at collection (each pytest
worker imports every test module: ~1 s for nbgrader and jupyter_server).

Where the time goes (CPU seconds, measured 2026-12-07): each of the eleven notebook runs — five
autograde kernels, five graded by helpers.grade, one Validate kernel — starts a Python that imports
torch (chapter 05's references and its `nn.Module` question need it) and checks seven questions,
~2-3 s each: autograde ≈ 15, helpers.grade ≈ 9, Validate ≈ 4; nbgrader's own steps ≈ 2."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import re
import sqlite3
import sys
from pathlib import Path

import pytest

from helpers import grade as grader
from helpers.checks.refusal import NOT_THE_RELEASE, refusal_warning
from helpers.checks.registry import questions_for_chapter
from helpers.grading.csvlog import TOTAL
from helpers.exercises import main as exercises_main
from tests._grader_fixtures import sharing
from tests.grade_submissions import EXERCISE_05, SANDBOX_ARGS, SOLUTION_05, SOLUTION_CELLS_05

if importlib.util.find_spec("nbgrader") is None:
    pytest.skip("nbgrader is not installed", allow_module_level=True)
CHAPTER = "05"
N05 = len(questions_for_chapter(CHAPTER))  # one point per chapter-05 question
ROOT = Path(__file__).resolve().parent.parent
TOPIC = "05_rnn_bptt"
# a typical mistake that is wrong on EVERY input (both graders draw fresh random inputs: a mistake
# that only some inputs expose, such as ignoring bias=False, can pass one grader's draw and not the other's)
FORGOT_W_HH = ("def vanilla_rnn_params(input_size, hidden_size, num_layers=1, bias=True, bidirectional=False):\n"
               "    D, H = (2 if bidirectional else 1), hidden_size\n"
               "    return sum(D * (H * (input_size if layer == 0 else D * H) + (2 * H if bias else 0))  # no W_hh\n"
               "               for layer in range(num_layers))\n")
# right on every input, but with the formula the grader refuses: vanilla_rnn_params and the two
# questions whose functions call it (simple_rnn_params, largest_rnn_hidden) score 0 in both graders
USES_FORMULAS = ("from helpers.formulas import rnn_params\n\n\n"
                 "def vanilla_rnn_params(input_size, hidden_size, num_layers=1, bias=True, bidirectional=False):\n"
                 "    return rnn_params('RNN', input_size, hidden_size, num_layers, bias=bias, bidirectional=bidirectional)\n")
REFUSED = 3  # vanilla_rnn_params, simple_rnn_params, largest_rnn_hidden


def _nbgrader_api(course: Path):
    """nbgrader's own API (what its command-line apps call) on the course, with the course's
    nbgrader_config.py: in this process, so the three steps pay for one nbgrader import, not three
    interpreter starts (~6 s each here)."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    config.merge(_kernel_exit_config())
    return NbGraderAPI(coursedir=CourseDirectory(config=config, root=str(course)), config=config)


def _kernel_exit_config():
    """Test-only: each notebook's kernel is stopped at once when its last cell has run
    (``shutdown_kernel = "immediate"``) instead of being left to exit by itself ("graceful", nbgrader's
    default: ~0.6 s a kernel for an interpreter with torch loaded to tear down). The outputs, and so
    the scores, are all in by then; six kernels run here (five autogrades and Validate)."""
    from traitlets.config import Config

    config = Config()
    config.ExecutePreprocessor.shutdown_kernel = "immediate"
    return config


@contextlib.contextmanager
def _nbgrader_env():
    """What a shell running ``nbgrader`` from the venv would have: its bin/ on PATH (nbgrader runs
    ``alembic`` from there) and one torch thread per kernel. Restored afterwards."""
    saved = {k: os.environ.get(k) for k in ("PATH", "OMP_NUM_THREADS")}
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{saved['PATH'] or ''}"
    os.environ["OMP_NUM_THREADS"] = "1"
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _alembic_head() -> str:
    """The gradebook schema's version, as ``alembic heads`` prints it: nbgrader writes it into every new
    gradebook, asking a fresh ``alembic`` process for it (~3 s on 2 idle cores, 14 s on a loaded one);
    here alembic's own API answers the same question on nbgrader's migration scripts, in this process."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from nbgrader.dbutil import _temp_alembic_ini

    with _temp_alembic_ini("sqlite://") as ini:
        (head,) = ScriptDirectory.from_config(Config(ini)).get_heads()
    return head


def _ok(result: dict) -> None:
    assert result["success"], (result.get("log") or "")[-3000:] + str(result.get("error"))[-2000:]


def _with_answer(path: Path, source: str) -> str:
    """The notebook at `path` with chapter 05's first solution cell replaced by `source` (JSON text)."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    next(c for c in nb["cells"] if c.get("id") == SOLUTION_CELLS_05[0])["source"] = source
    return json.dumps(nb)


def _correct_exercises_notebook() -> str:
    """`exercises/05…` with every function filled in from `solutions/` (JSON text): right answers, but
    not the nbgrader release (no nbgrader metadata, no release cell)."""
    solved = {c["id"]: c["source"] for c in json.loads(SOLUTION_05.read_text(encoding="utf-8"))["cells"]}
    nb = json.loads(EXERCISE_05.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and "NotImplementedError" in "".join(cell["source"]):
            cell["source"] = solved[cell["id"]]
    assert not any(c["metadata"].get("nbgrader") for c in nb["cells"])
    return json.dumps(nb)


def _instant_check(path: Path) -> list[str]:
    """What the student's own Jupyter shows: the printed line of each check cell, the notebook's code
    cells run in order in one fresh `__main__` namespace (not under nbgrader's autograder)."""
    assert os.environ.get("NBGRADER_EXECUTION") is None
    nb = json.loads(path.read_text(encoding="utf-8"))
    namespace: dict = {"__name__": "__main__"}
    lines = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile("".join(cell["source"]), "<cell>", "exec"), namespace)
        if "check" in cell["metadata"].get("tags", []):
            lines.append(out.getvalue().strip())
    return lines


@pytest.fixture(scope="module")
def course(tmp_path_factory, fork_servers):
    course = tmp_path_factory.mktemp("nbgrader")
    assert exercises_main(["--nbgrader", str(course), str(ROOT / "solutions" / f"{TOPIC}_exercises.ipynb")]) == 0
    with _nbgrader_env(), pytest.MonkeyPatch.context() as patch:
        patch.setattr("nbgrader.api.get_alembic_version", _alembic_head)
        api = _nbgrader_api(course)
        _ok(api.generate_assignment(TOPIC, force=True))
        name = f"{TOPIC}_exercises.ipynb"
        students = {"solution": (course / "source" / TOPIC / name).read_text(encoding="utf-8"),
                    "blank": (course / "release" / TOPIC / name).read_text(encoding="utf-8"),
                    "mistake": _with_answer(course / "source" / TOPIC / name, FORGOT_W_HH),
                    "formulas": _with_answer(course / "source" / TOPIC / name, USES_FORMULAS),
                    "foreign": _correct_exercises_notebook()}
        for student, text in students.items():
            folder = course / "submitted" / student / TOPIC
            folder.mkdir(parents=True)
            (folder / name).write_text(text, encoding="utf-8")
        _ok(api.autograde(TOPIC, "*", force=True, create=True))  # every folder of submitted/
        _ok(api.generate_feedback(TOPIC, force=True))
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        nbgrader_scores = {s: gb.find_submission(TOPIC, s).score for s in students}
    with sharing(fork_servers):  # the worker's warm fork servers (tests/_grader_fixtures.py), not two new ones
        rows, _ = grader.grade([course / "submitted" / s / TOPIC / name for s in students], jobs=2, progress=False,
                               sandbox=not SANDBOX_ARGS, chapter=CHAPTER)
    ours = {Path(r.submission).parent.parent.name: r.points for r in rows if r.question == TOTAL}
    instant = _instant_check(course / "submitted" / "formulas" / TOPIC / name)
    return {"course": course, "nbgrader": nbgrader_scores, "grader": ours, "instant": instant}


def test_the_export_is_an_nbgrader_course(course):
    nb = json.loads((course["course"] / "source" / TOPIC / f"{TOPIC}_exercises.ipynb").read_text(encoding="utf-8"))
    graded = [c["metadata"]["nbgrader"] for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade")]
    assert graded and all(m["locked"] and m["points"] == 1 for m in graded)
    released = (course["course"] / "release" / TOPIC / f"{TOPIC}_exercises.ipynb").read_text(encoding="utf-8")
    assert "BEGIN SOLUTION" not in released and "raise NotImplementedError" in released


def test_nbgrader_scores_equal_the_graders(course):
    assert course["nbgrader"]["solution"] == N05 and course["nbgrader"]["blank"] == 0
    assert 0 < course["nbgrader"]["mistake"] < N05  # vanilla_rnn_params wrong (and what builds on it)
    release = {s: v for s, v in course["nbgrader"].items() if s != "foreign"}
    assert release == {s: v for s, v in course["grader"].items() if s != "foreign"}


def test_a_refused_import_scores_the_same_in_the_instant_check_the_grader_and_nbgrader(course):
    """The student's own ✅ lines say which functions will score 0, and why; both graders agree."""
    lines = course["instant"]
    assert len(lines) == N05 and all(line.startswith("✅") for line in lines), lines
    warned = [line for line in lines if refusal_warning("helpers.formulas") in line]
    assert len(warned) == REFUSED, lines
    assert {line.split(":")[0].removeprefix("✅ ") for line in warned} == {
        "05.vanilla_rnn_params", "05.simple_rnn_params", "05.largest_rnn_hidden"}
    instant = len(lines) - len(warned)  # one point per question
    assert instant == course["grader"]["formulas"] == course["nbgrader"]["formulas"] == N05 - REFUSED


def test_a_notebook_that_is_not_the_release_is_told_so_in_nbgraders_feedback(course):
    """`exercises/` (right answers, no nbgrader metadata) scores 0 under nbgrader — with the reason in
    its feedback; helpers.grade grades it as any notebook."""
    assert course["nbgrader"]["foreign"] == 0 and course["grader"]["foreign"] == N05
    page = (course["course"] / "feedback" / "foreign" / TOPIC / f"{TOPIC}_exercises.html").read_text(encoding="utf-8")
    assert NOT_THE_RELEASE.split(" — ")[0] in page


def test_generate_feedback_writes_each_students_page(course):
    page = (course["course"] / "feedback" / "solution" / TOPIC / f"{TOPIC}_exercises.html").read_text(encoding="utf-8")
    assert f"Score: {N05:.1f} / {N05:.1f}" in page
    blank = (course["course"] / "feedback" / "blank" / TOPIC / f"{TOPIC}_exercises.html").read_text(encoding="utf-8")
    assert f"Score: 0.0 / {N05:.1f}" in blank


def test_validate_predicts_the_autograders_score(course):
    """nbgrader's "Validate" (``NBGRADER_EXECUTION=validate``) fails exactly the checks autograde scores 0."""
    from nbgrader.validator import Validator

    name = f"{TOPIC}_exercises.ipynb"
    with _nbgrader_env():
        results = Validator(config=_kernel_exit_config()).validate(str(course["course"] / "submitted" / "formulas" / TOPIC / name))
    failed = [c["source"] for c in results.get("failed", [])]
    assert sorted(f.split('"')[1] for f in failed) == ["05.largest_rnn_hidden", "05.simple_rnn_params",
                                                        "05.vanilla_rnn_params"], results


def test_the_in_process_alembic_head_is_what_nbgrader_recorded(course):
    """The gradebook's schema version is the newest of nbgrader's migration scripts (read independently:
    the ``down_revision`` chain of nbgrader/alembic/versions/*.py)."""
    import nbgrader.dbutil

    scripts = {}
    for script in Path(nbgrader.dbutil.ALEMBIC_DIR, "versions").glob("*.py"):
        text = script.read_text(encoding="utf-8")
        rev = re.search(r"^revision\s*=\s*['\"](\w+)['\"]", text, re.M).group(1)
        down = re.search(r"^down_revision\s*=\s*['\"]?(\w+)['\"]?", text, re.M).group(1)
        scripts[rev] = down
    heads = set(scripts) - set(scripts.values())
    with contextlib.closing(sqlite3.connect(course["course"] / "gradebook.db")) as db:
        recorded = db.execute("SELECT version_num FROM alembic_version").fetchall()
    assert recorded == [(h,) for h in heads] and len(heads) == 1
