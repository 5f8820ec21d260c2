"""Per-student feedback, the class overview, the gradebook and partial credit, on a fixed class of
ten chapter-02 submissions (tests/grade_submissions.py: build_class_02) graded in ONE run
(``--partial --roster``, 2 jobs, seed 17) by the session's warm fork servers (tests/_grader_fixtures.py)."""

from __future__ import annotations

import csv
import json

import pytest

from helpers import grade as grader
from helpers.checks.registry import get, questions_for_chapter
from helpers.grading.plan import GradingPlan
from tests._grader_fixtures import sharing
from tests.grade_submissions import ROSTER_02, SANDBOX_ARGS, build_class_02, write_roster

SEED = 17


@pytest.fixture(scope="module")
def graded(tmp_path_factory, fork_servers):
    folder = tmp_path_factory.mktemp("class02")
    paths = build_class_02(folder / "inbox")
    roster = write_roster(folder / "roster.csv")
    out = folder / "out" / "grades.csv"
    argv = [str(p) for p in paths.values()] + ["--out", str(out), "--jobs", "2", "--timeout", "10", "--seed", str(SEED),
                                               "--partial", "--roster", str(roster), "--quiet"] + SANDBOX_ARGS
    with sharing(fork_servers):
        assert grader.main(argv) == 0
    with out.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    with (out.parent / "gradebook.csv").open(newline="", encoding="utf-8") as f:
        book = {r["student_id"]: r for r in csv.DictReader(f)}
    feedback = {s: (out.parent / "feedback" / f"{p.stem}.md").read_text(encoding="utf-8") for s, p in paths.items()}
    return {"paths": paths, "out": out, "rows": rows, "book": book, "feedback": feedback,
            "overview": (out.parent / "grades_overview.html").read_text(encoding="utf-8")}


def _section(text: str, qid: str) -> str:
    return text.split(f"## {qid}")[1].split("\n## ")[0]


def test_one_html_and_markdown_page_per_submission(graded):
    folder = graded["out"].parent / "feedback"
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{p.stem}.{ext}" for p in graded["paths"].values()
                                                               for ext in ("html", "md"))
    html = (folder / f"{graded['paths']['heidi'].stem}.html").read_text(encoding="utf-8")
    assert "&#x27;(" in html and "<code>'(" not in html  # the str answer is escaped


def test_the_cause_of_a_missing_function_is_the_cell_that_defines_it(graded):
    why = _section(graded["feedback"]["erin"], "02.max_out_channels")
    # code cells counted as the student sees them: the scratch cell is code cell 2, the answer cell 9
    assert "code cell 9 (`def max_out_channels(" in why and "raised SyntaxError" in why
    assert "NameError" not in why
    assert "code cell 2 (`print(kernel)" in graded["feedback"]["erin"]  # the other error is still reported
    renamed = _section(graded["feedback"]["frank"], "02.tiny_cnn_fc_in_features")
    assert "no cell defines it" in renamed and "`fc_in_feature` — renamed?" in renamed


def test_feedback_names_the_first_failing_input_expected_got_and_hint(graded):
    text = _section(graded["feedback"]["carol"], "02.conv_params")
    assert "**First failing input:** `conv_params(" in text and "bias=False" in text
    assert "**Expected:**" in text and "**Got:**" in text
    assert get("02.conv_params").hint in text
    assert "check cell(s) not run" in graded["feedback"]["carol"]


def test_the_hint_is_in_the_csv(graded):
    row = next(r for r in graded["rows"] if "carol" in r["submission"] and r["question"] == "02.conv_params")
    assert row["hint"] == get("02.conv_params").hint
    assert all(r["hint"] == "" for r in graded["rows"] if r["status"] == "correct")


def test_partial_credit_is_proportional_to_the_cases_passed(graded):
    """carol counts the bias always: right exactly on the cases without bias=False."""
    plan = GradingPlan.build("02", SEED)
    cases = plan.cases["02.conv_params"]
    passed = sum(kwargs.get("bias", True) is not False for _, kwargs in cases)
    assert 0 < passed < len(cases)
    book = graded["book"]
    assert float(book["carol"]["02.conv_params"]) == round(passed / len(cases), 2)  # points: 2 decimals
    others = len(questions_for_chapter("02")) - 1  # carol's other answers are right
    assert float(book["carol"]["02 total"]) == round(others + round(passed / len(cases), 2), 2)
    assert book["bob"]["02 total"] == "0"  # not attempted earns nothing
    assert book["alice"]["02 total"] == str(len(questions_for_chapter("02")))


def test_gradebook_has_one_row_per_roster_student(graded):
    book = graded["book"]
    assert list(book) == list(ROSTER_02)
    assert book["mallory"]["02 status"] == "no_submission" and book["mallory"]["02 total"] == ""  # absent: empty
    assert book["erin"]["name"] == "Erin E" and book["erin"]["02 status"] == "cell_errors"


def test_overview_patterns_need_a_look_and_seed(graded):
    page = graded["overview"]
    assert "ignores `bias=` (always the default): 3/10" in page
    assert "forgot the bias (always bias=False): 1/10" in page
    assert "ignores `dilation=` (always the default): 1/10" in page  # dan (shape) and grace (padding)
    assert "hard-coded?" in page  # ivan
    look = page.split("Need a look")[1].split("<h2>")[0]
    for student in ("carol", "dan", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory"):
        assert student in look, student
    assert "alice" not in look
    assert "bob_02" in look and "[blank] none of the" in look  # the untouched notebook is flagged
    assert f"--seed {SEED}" in page
    for name in ("grades_overview_scores.png", "grades_overview_questions.png"):
        assert (graded["out"].parent / name).read_bytes()[:4] == b"\x89PNG"
    info = json.loads((graded["out"].parent / "grades_run.json").read_text(encoding="utf-8"))
    assert info["seed"] == SEED and info["partial"] is True
