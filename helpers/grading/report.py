"""The grader's typed report: what :mod:`helpers.grade` found, for the modules that present it.

:mod:`helpers.grading.feedback` (one page per submission), :mod:`helpers.grading.overview` (the class page) and
:mod:`helpers.grading.gradebook` (one row per student) read these records and nothing else; the grader
builds them once per run. Standard library only.

Points: a question scores ``max_points`` when every case is correct; with partial credit
(``--partial``) it scores ``max_points · passed / cases`` (cases answered correctly, each on its
own), except ``forbidden_import`` (0 either way); points are rounded to 2 decimals, so a regrade
with the same seed reads exactly the same.

A run may grade several chapters: :meth:`ClassReport.chapters` lists them, and every per-class
view (gradebook, overview, summary) is built per chapter, each with its own maximum.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

__all__ = ["QuestionResult", "SubmissionReport", "ClassReport", "question_points", "points_text", "LOOK_STATUSES",
           "feedback_name"]

#: question statuses that make a submission "need a look" (a wrong answer or something went wrong)
LOOK_STATUSES = ("wrong", "wrong_type", "error", "missing", "timeout", "memory", "forbidden_import", "crashed",
                 "invalid_notebook", "wrong_notebook")


def question_points(max_points: float, status: str, passed: int, cases: int, partial: bool) -> float:
    """Points of one question: all or nothing, or (partial) proportional to the cases passed."""
    if status == "correct":
        return max_points
    if not partial or status == "forbidden_import" or cases <= 0:
        return 0
    return round(max_points * passed / cases, 2)


def points_text(x: float, decimals: Optional[int] = None) -> str:
    """Points as read: ``3``, ``2.5``; with `decimals`, rounded to that many (``0.33``), else ``:g``."""
    if float(x).is_integer():
        return str(int(x))
    return f"{x:g}" if decimals is None else f"{x:.{decimals}f}".rstrip("0").rstrip(".")


@dataclass
class QuestionResult:
    """One question of one submission."""

    id: str
    title: str
    answer: str                 # the function's name
    status: str
    reason: str                 # "" when correct
    points: float
    max_points: float
    passed: int = 0             # cases answered correctly (each on its own)
    cases: int = 0              # cases asked
    hint: str = ""
    call: str = ""              # first failing call
    expected: str = ""          # what it should have returned there (short repr)
    got: str = ""               # what it returned there (short repr)
    values: list = field(default_factory=list)  # the student's normalised return values, one per case answered
    root_cause: str = ""        # id of the wrong question this one fails because of (its function calls that one)

    @property
    def ok(self) -> bool:
        return self.status == "correct"


@dataclass
class SubmissionReport:
    """One handed-in file: its questions and what went wrong in the run as a whole."""

    submission: str             # path as given
    student: str                # student id (roster, file-name pattern, or the file's stem)
    sha256: str
    chapter: Optional[str]
    status: str                 # TOTAL status (ok, cell_errors, timeout, …)
    notes: list[str] = field(default_factory=list)     # run-wide notes (cell errors, crashes, …)
    ignored: list[str] = field(default_factory=list)   # what the grader did not use (check cells, …)
    questions: list[QuestionResult] = field(default_factory=list)
    seconds: float = 0.0
    name: str = ""              # the student's name from the roster, if any

    @property
    def points(self) -> float:
        return round(sum(q.points for q in self.questions), 2)

    @property
    def max_points(self) -> float:
        return sum(q.max_points for q in self.questions)

    @property
    def blank(self) -> bool:
        """Every question "not attempted": the untouched exercise notebook (or a wrong file) was handed in."""
        return bool(self.questions) and all(q.status == "not_attempted" for q in self.questions)

    def look_reasons(self) -> list[str]:
        """Why an instructor should look at this submission (empty: nothing to see)."""
        reasons = [] if self.status == "ok" else [f"[{self.status}] {self.notes[0] if self.notes else ''}".strip()]
        if self.blank:
            reasons.append(f"[blank] none of the {len(self.questions)} questions attempted (the untouched exercise "
                           f"notebook handed in?)")
        followers = {q.id: [f.id for f in self.questions if f.root_cause == q.id] for q in self.questions}
        reasons += [f"{q.id} {q.status}" + (f" (root cause: {', '.join(followers[q.id])} call it and fail too)"
                                             if followers[q.id] else "") + f": {q.reason}"
                    for q in self.questions if q.status in LOOK_STATUSES and not q.root_cause
                    and not (self.status in ("invalid_notebook", "wrong_notebook", "crashed") and q.status == self.status)]
        return reasons


def feedback_name(sub: SubmissionReport) -> str:
    """The stem of a submission's feedback pages: the file's stem, prefixed with the student id when
    the stem does not already name the student (nbgrader's ``<student>/<assignment>/<nb>.ipynb``)."""
    stem = sub.submission.replace("\\", "/").rsplit("/", 1)[-1].removesuffix(".ipynb")
    if not sub.student or sub.student.lower() in stem.lower():
        return stem
    return f"{sub.student}_{stem}"


@dataclass
class ClassReport:
    """One grading run: every submission's report plus what is needed to read them."""

    reports: list[SubmissionReport]
    seed: int
    partial: bool = False
    sandbox: str = ""
    questions: dict[str, Any] = field(default_factory=dict)    # id → registry Question (every chapter graded)
    cases: dict[str, list] = field(default_factory=dict)       # id → this run's cases [(args, kwargs), …]
    references: dict[str, list] = field(default_factory=dict)  # id → normalised reference answers
    roster: dict[str, str] = field(default_factory=dict)       # student id → name ("" if none given)
    interrupted: bool = False   # Ctrl-C: `reports` holds only the submissions graded before it
    asked: int = 0              # submissions given to the run (graded, kept by --resume, or not reached)
    kept: int = 0               # submissions --resume kept from an earlier run (not graded again)

    def chapters(self) -> list[str]:
        """The chapters of this run, in order (those of its questions and of its submissions)."""
        return sorted({qid[:2] for qid in self.questions} | {r.chapter for r in self.reports if r.chapter})

    def chapter_questions(self, chapter: str) -> list[str]:
        """The question ids graded in `chapter` (registry order)."""
        return [qid for qid in self.questions if qid[:2] == chapter]

    def chapter_max(self, chapter: str) -> float:
        """The maximum points of `chapter` in this run."""
        return sum(self.questions[qid].points for qid in self.chapter_questions(chapter))

    def of_chapter(self, chapter: str) -> list[SubmissionReport]:
        return [r for r in self.reports if r.chapter == chapter]
