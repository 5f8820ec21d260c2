"""The nbgrader export round trip with real nbgrader (0.9.x): export chapter 05 → generate_assignment
→ autograde three students (the solution, the blank release, a typical mistake) and compare
nbgrader's scores with helpers.grade's on the same files. Chapter 05 imports no torch (its six
questions are plain functions). nbgrader runs in this process through its own API (NbGraderAPI, what its
command-line apps call): one nbgrader import instead of three interpreter starts."""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import sys
from pathlib import Path

import pytest

from helpers import grade as grader
from helpers.checks.registry import questions_for_chapter
from helpers.grading.csvlog import TOTAL
from helpers.exercises import main as exercises_main
from tests.grade_submissions import SANDBOX_ARGS, SOLUTION_CELLS_05

pytest.importorskip("nbgrader")
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


def _nbgrader_api(course: Path):
    """nbgrader's own API (what its command-line apps call) on the course, with the course's
    nbgrader_config.py: in this process, so the three steps pay for one nbgrader import, not three
    interpreter starts (~6 s each here)."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    return NbGraderAPI(coursedir=CourseDirectory(config=config, root=str(course)), config=config)


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


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    course = tmp_path_factory.mktemp("nbgrader")
    assert exercises_main(["--nbgrader", str(course), str(ROOT / "solutions" / f"{TOPIC}_exercises.ipynb")]) == 0
    with _nbgrader_env(), pytest.MonkeyPatch.context() as patch:
        patch.setattr("nbgrader.api.get_alembic_version", _alembic_head)
        api = _nbgrader_api(course)
        _ok(api.generate_assignment(TOPIC, force=True))
        name = f"{TOPIC}_exercises.ipynb"
        mistake = json.loads((course / "source" / TOPIC / name).read_text(encoding="utf-8"))
        cell = next(c for c in mistake["cells"] if c.get("id") == SOLUTION_CELLS_05[0])
        cell["source"] = FORGOT_W_HH
        students = {"solution": (course / "source" / TOPIC / name).read_text(encoding="utf-8"),
                    "blank": (course / "release" / TOPIC / name).read_text(encoding="utf-8"),
                    "mistake": json.dumps(mistake)}
        for student, text in students.items():
            folder = course / "submitted" / student / TOPIC
            folder.mkdir(parents=True)
            (folder / name).write_text(text, encoding="utf-8")
        for student in students:
            _ok(api.autograde(TOPIC, student, force=True, create=True))
        _ok(api.generate_feedback(TOPIC, force=True))
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        nbgrader_scores = {s: gb.find_submission(TOPIC, s).score for s in students}
    rows, _ = grader.grade([course / "submitted" / s / TOPIC / name for s in students], jobs=2, progress=False,
                           sandbox=not SANDBOX_ARGS, chapter=CHAPTER)
    ours = {Path(r.submission).parent.parent.name: r.points for r in rows if r.question == TOTAL}
    return {"course": course, "nbgrader": nbgrader_scores, "grader": ours}


def test_the_export_is_an_nbgrader_course(course):
    nb = json.loads((course["course"] / "source" / TOPIC / f"{TOPIC}_exercises.ipynb").read_text(encoding="utf-8"))
    graded = [c["metadata"]["nbgrader"] for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade")]
    assert graded and all(m["locked"] and m["points"] == 1 for m in graded)
    released = (course["course"] / "release" / TOPIC / f"{TOPIC}_exercises.ipynb").read_text(encoding="utf-8")
    assert "BEGIN SOLUTION" not in released and "raise NotImplementedError" in released


def test_nbgrader_scores_equal_the_graders(course):
    assert course["nbgrader"]["solution"] == N05 and course["nbgrader"]["blank"] == 0
    assert 0 < course["nbgrader"]["mistake"] < N05  # vanilla_rnn_params wrong (and what builds on it)
    assert course["nbgrader"] == course["grader"]


def test_generate_feedback_writes_each_students_page(course):
    page = (course["course"] / "feedback" / "solution" / TOPIC / f"{TOPIC}_exercises.html").read_text(encoding="utf-8")
    assert f"Score: {N05:.1f} / {N05:.1f}" in page
    blank = (course["course"] / "feedback" / "blank" / TOPIC / f"{TOPIC}_exercises.html").read_text(encoding="utf-8")
    assert f"Score: 0.0 / {N05:.1f}" in blank


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
