"""What one grading run asks: each chapter's questions with THIS run's random cases and their
reference answers (:class:`GradingPlan`), and the run's limits (:class:`Settings`).

Cases are drawn from the run's seed (``grade:<seed>:<question id>``), not the checker's, and
sent through a JSON round trip so the grader judges exactly what the student's process receives.
The reference answers are computed here, in the grader's own process
(:func:`helpers.checks.verdict.reference_answers`): nothing the student's code does can change them.
"""

from __future__ import annotations

import json
import random
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Sequence

from helpers.checks.registry import Question, all_questions, make_cases, questions_for_chapter
from helpers.checks.verdict import References, reference_answers
from helpers.grading.sandbox import Sandbox

if TYPE_CHECKING:
    from helpers.grading.warm import ForkServers

__all__ = ["GradingPlan", "Settings", "check_question_ids"]


def check_question_ids(questions: Optional[Sequence[str]]) -> None:
    """Raise ValueError naming the ids of `questions` (``--questions``) that no chapter has."""
    if questions is None:
        return
    known = {q.id for q in all_questions()}
    unknown = [qid for qid in questions if qid not in known]
    if unknown:
        raise ValueError(f"unknown question id(s): {', '.join(unknown)} (ids look like 05.rnn_shapes: "
                         f"the names in each exercise notebook's check cells)")


@dataclass
class GradingPlan:
    """One chapter's questions with this run's random cases and their reference answers."""

    chapter: str
    questions: list[Question]
    cases: dict[str, list]
    references: dict[str, References]

    @classmethod
    def build(cls, chapter: str, seed: int, only: Optional[Sequence[str]] = None) -> "GradingPlan":
        """`only`: grade just these question ids (those of other chapters are ignored here)."""
        questions = questions_for_chapter(chapter)
        if only is not None:
            wanted = set(only)
            questions = [q for q in questions if q.id in wanted]
            if not questions:
                raise ValueError(f"none of the questions to grade ({', '.join(only)}) is in chapter {chapter}; its "
                                 f"questions: {', '.join(q.id for q in questions_for_chapter(chapter))}")
        cases, references = {}, {}
        for q in questions:
            cs = make_cases(q, random.Random(f"grade:{seed}:{q.id}"))
            # JSON round trip: exactly what the student's process will receive
            cases[q.id] = [(tuple(a), dict(k)) for a, k in json.loads(json.dumps(cs))]
            references[q.id] = reference_answers(q, cases[q.id])
            if references[q.id].failure:
                raise RuntimeError(f"question {q.id}: {references[q.id].failure} on this run's inputs; fix {q.module}")
        return cls(chapter, questions, cases, references)

    @property
    def max_points(self) -> float:
        return sum(q.points for q in self.questions)

    def question_seconds(self, settings: "Settings") -> float:
        """Seconds all the questions may take together (each its own limit)."""
        return sum(settings.limit_for(q) for q in self.questions)


@dataclass
class Settings:
    """The limits of one run (``--timeout``, ``--question-timeout``, ``--memory-mb``, ``--partial``)."""

    timeout: float = 60.0           # seconds for the notebook's cells
    question_timeout: Optional[float] = None  # cap on each question's own limit
    memory_mb: int = 2048
    python: str = sys.executable
    startup_slack: float = 15.0     # seconds for the sandboxed process to start (Python, IPython)
    sandbox: Optional[Sandbox] = None  # None: a plain child process (tests of single steps)
    partial: bool = False           # points proportional to the cases passed (--partial)
    fork_servers: Optional["ForkServers"] = None  # warm sandboxes, one per job slot (None: a fresh one each)

    def limit_for(self, q: Question) -> float:
        """Seconds question `q` may take: its own limit, capped by ``question_timeout``."""
        return q.timeout if self.question_timeout is None else min(q.timeout, self.question_timeout)
