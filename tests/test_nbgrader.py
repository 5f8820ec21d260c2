"""The nbgrader export round trip with real nbgrader (0.9.x): export chapter 01 → generate_assignment
→ autograde three students (the solution, the blank release, a typical mistake) and compare
nbgrader's scores with helpers.grade's on the same files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import grade as grader
from helpers.checks.registry import questions_for_chapter
from helpers.exercises import main as exercises_main
from tests.grade_submissions import SANDBOX_ARGS

pytest.importorskip("nbgrader")
N01 = len(questions_for_chapter("01"))  # one point per chapter-01 question
ROOT = Path(__file__).resolve().parent.parent
TOPIC = "01_linear"
FORGOT_BIAS = ("def linear_params(in_features, out_features, bias=True):\n"
               "    return in_features * out_features + out_features  # ignores bias=False\n")


def _nbgrader(course: Path, *args: str) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    course = tmp_path_factory.mktemp("nbgrader")
    assert exercises_main(["--nbgrader", str(course), str(ROOT / "solutions" / f"{TOPIC}_exercises.ipynb")]) == 0
    _nbgrader(course, "generate_assignment", TOPIC, "--force")
    name = f"{TOPIC}_exercises.ipynb"
    mistake = json.loads((course / "source" / TOPIC / name).read_text(encoding="utf-8"))
    cell = next(c for c in mistake["cells"] if c.get("id") == "ex1-solution")
    cell["source"] = FORGOT_BIAS
    students = {"solution": (course / "source" / TOPIC / name).read_text(encoding="utf-8"),
                "blank": (course / "release" / TOPIC / name).read_text(encoding="utf-8"),
                "mistake": json.dumps(mistake)}
    for student, text in students.items():
        folder = course / "submitted" / student / TOPIC
        folder.mkdir(parents=True)
        (folder / name).write_text(text, encoding="utf-8")
    _nbgrader(course, "autograde", TOPIC, "--create", "--force")
    _nbgrader(course, "generate_feedback", TOPIC, "--force")
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        nbgrader_scores = {s: gb.find_submission(TOPIC, s).score for s in students}
    rows, _ = grader.grade([course / "submitted" / s / TOPIC / name for s in students], jobs=2, progress=False,
                           sandbox=not SANDBOX_ARGS, chapter="01")
    ours = {Path(r.submission).parent.parent.name: r.points for r in rows if r.question == grader.TOTAL}
    return {"course": course, "nbgrader": nbgrader_scores, "grader": ours}


def test_the_export_is_an_nbgrader_course(course):
    nb = json.loads((course["course"] / "source" / TOPIC / f"{TOPIC}_exercises.ipynb").read_text(encoding="utf-8"))
    graded = [c["metadata"]["nbgrader"] for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade")]
    assert graded and all(m["locked"] and m["points"] == 1 for m in graded)
    released = (course["course"] / "release" / TOPIC / f"{TOPIC}_exercises.ipynb").read_text(encoding="utf-8")
    assert "BEGIN SOLUTION" not in released and "raise NotImplementedError" in released


def test_nbgrader_scores_equal_the_graders(course):
    assert course["nbgrader"]["solution"] == N01 and course["nbgrader"]["blank"] == 0
    assert 0 < course["nbgrader"]["mistake"] < N01  # linear_params wrong (and what builds on it)
    assert course["nbgrader"] == course["grader"]


def test_generate_feedback_writes_each_students_page(course):
    page = (course["course"] / "feedback" / "solution" / TOPIC / f"{TOPIC}_exercises.html").read_text(encoding="utf-8")
    assert f"Score: {N01:.1f} / {N01:.1f}" in page
    blank = (course["course"] / "feedback" / "blank" / TOPIC / f"{TOPIC}_exercises.html").read_text(encoding="utf-8")
    assert f"Score: 0.0 / {N01:.1f}" in blank
