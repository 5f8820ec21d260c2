"""The question registry: every exercise question of the course, one `Question` per answer function.

Questions live in per-chapter modules ``helpers/checks/chNN.py``, built from the shared case
generators and searches of :mod:`helpers.checks._gen`; each module calls :func:`register` at
import time. :func:`all_questions` imports every such module
(discovered with :mod:`pkgutil`, so adding a chapter needs no edit here).

A question never contains a hand-typed answer: ``reference`` is a function of helpers' core
(formulas, shapes, counting, models, trace) or of torch itself, called in the checking/grading
process with the same inputs the student's function receives.

Rules for a chapter module (tests/test_checks.py checks both):

- it imports torch, and the helpers modules that import torch (``helpers.counting``,
  ``helpers.models``, ``helpers.trace``), inside the reference or case function that needs
  them, never at module level: loading the questions stays fast and torch-free, and a question
  whose reference is pure arithmetic never imports torch into the student's kernel;
- it never imports another chapter module: what two chapters share goes in
  :mod:`helpers.checks._gen`.
"""

from __future__ import annotations

import importlib
import pkgutil
import random
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

__all__ = ["Question", "register", "get", "all_questions", "questions_for_chapter", "chapters",
           "Call", "make_cases", "UnknownQuestion"]

#: One case of a question: the call ``answer(*args, **kwargs)`` as (args, kwargs); JSON data only.
#: (Not :class:`helpers.course.cookbook.Case`, which is one cookbook example: a torch layer and its inputs.)
Call = tuple[tuple, dict]

_ID_RE = re.compile(r"^\d\d\.[A-Za-z_][A-Za-z0-9_]*$")
_MODULE_RE = re.compile(r"^ch\d\d$")


class UnknownQuestion(KeyError):
    """Raised by :func:`get` for an id no chapter module registers."""


@dataclass(frozen=True)
class Question:
    """One exercise question.

    Attributes:
        id: ``"NN.short_name"`` (chapter number, dot, name), unique across the course.
        answer: name of the student's function in the notebook (what the grader looks up);
            by default the part of the id after the dot (``"01.linear_params"`` → ``linear_params``).
        title: one-line task description.
        cases: ``cases(rng) -> [(args, kwargs), …]`` (a list of :data:`Call`); ``rng`` is a :class:`random.Random`
            seeded by the checker (from the id: stable notebook outputs) or by the grader
            (fresh every run). Inputs must be JSON-serialisable.
        reference: called as ``reference(*args, **kwargs)`` in the checking/grading process;
            must come from helpers' core or torch, never a hand-typed number.
        hint: shown under a wrong answer.
        points: awarded by the grader when every case is correct (all or nothing).
        compare: optional ``compare(expected, got) -> bool`` on normalised values (tuples →
            lists); default is exact equality with type checks (an int answer must be an int).
        timeout: seconds allowed for all cases of this question (checker and grader).
        probe: set when the answer is an ``nn.Module``: ``probe(*args, **kwargs) -> {"input":
            shape, "values": n}`` (JSON) says how to describe the module the function returns for
            that case (:mod:`helpers.checks.module_answer`); the reference then returns the
            reference module, and the two descriptions are compared.
    """

    id: str
    title: str
    cases: Callable[[random.Random], list]
    reference: Callable[..., Any]
    hint: str = ""
    points: float = 1
    compare: Optional[Callable[[Any, Any], bool]] = None
    timeout: float = 10.0
    probe: Optional[Callable[..., dict]] = None
    module: str = field(default="", compare=False)
    answer: str = field(default="", kw_only=True)
    #: named typical mistakes: (label, function with the reference's signature giving that mistake's answer);
    #: the class overview names a student's wrong answers after the one they equal ("forgot the second bias")
    mistakes: tuple = field(default=(), compare=False, kw_only=True)

    def __post_init__(self) -> None:
        if not _ID_RE.match(self.id):
            raise ValueError(f"question id {self.id!r} must look like 'NN.short_name' (e.g. '01.linear_params')")
        if not self.answer:
            object.__setattr__(self, "answer", self.id.split(".", 1)[1])
        if not self.answer.isidentifier():
            raise ValueError(f"question {self.id}: answer {self.answer!r} must be a function name")
        if not callable(self.cases) or not callable(self.reference) or not (self.probe is None or callable(self.probe)):
            raise TypeError(f"question {self.id}: cases, reference and probe must be callables")
        if self.points < 0 or self.timeout <= 0:
            raise ValueError(f"question {self.id}: points must be >= 0 and timeout > 0")

    @property
    def chapter(self) -> str:
        """The two-digit chapter number, e.g. ``"01"``."""
        return self.id[:2]


_REGISTRY: dict[str, Question] = {}
_LOADED = False


def register(question: Question) -> Question:
    """Add `question` to the registry (called at import time by ``helpers/checks/chNN.py``).

    Re-registering the same id from the same module (a module reload) replaces it; the same id
    from two different modules is an error.
    """
    module = question.module or _caller_module()
    if module != question.module:
        question = Question(**{**question.__dict__, "module": module})
    old = _REGISTRY.get(question.id)
    if old is not None and old.module != question.module:
        raise ValueError(f"question id {question.id!r} is registered twice ({old.module} and {question.module})")
    _REGISTRY[question.id] = question
    return question


def _caller_module() -> str:
    import sys

    frame = sys._getframe(2)
    return str(frame.f_globals.get("__name__", ""))


def _load_all() -> None:
    global _LOADED
    if _LOADED:
        return
    from helpers import checks as package

    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if _MODULE_RE.match(info.name):
            importlib.import_module(f"{package.__name__}.{info.name}")
    _LOADED = True


def _load_chapter(chapter: str) -> None:
    """Import ``helpers/checks/chNN.py`` only (other chapters' modules are not needed)."""
    if not re.fullmatch(r"\d\d", chapter):
        return
    try:
        importlib.import_module(f"helpers.checks.ch{chapter}")
    except ModuleNotFoundError as exc:
        if exc.name != f"helpers.checks.ch{chapter}":
            raise


def all_questions() -> list[Question]:
    """Every registered question: by chapter, then in the order the chapter module registers them
    (the order of its notebook)."""
    _load_all()
    return sorted(_REGISTRY.values(), key=lambda q: q.chapter)


def chapters() -> list[str]:
    """Chapter numbers that have at least one question, e.g. ``["01", "02"]``."""
    return sorted({q.chapter for q in all_questions()})


def questions_for_chapter(chapter: str | int) -> list[Question]:
    """The questions of one chapter (``"01"`` or ``1``), in registration order."""
    chapter = f"{int(chapter):02d}"
    _load_chapter(chapter)
    return [q for q in _REGISTRY.values() if q.chapter == chapter]


def get(question_id: str) -> Question:
    """The question with this id; :class:`UnknownQuestion` (a KeyError) with suggestions if none."""
    if question_id in _REGISTRY:
        return _REGISTRY[question_id]
    _load_chapter(str(question_id)[:2])
    if question_id in _REGISTRY:
        return _REGISTRY[question_id]
    _load_all()
    try:
        return _REGISTRY[question_id]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(str(question_id), list(_REGISTRY), n=3)
        extra = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownQuestion(f"no exercise question has the id {question_id!r}{extra}") from None


def make_cases(question: Question, rng: random.Random) -> list[Call]:
    """Call ``question.cases(rng)`` and validate the result: a non-empty list of (args, kwargs)."""
    raw = question.cases(rng)
    cases: list[Call] = []
    for i, item in enumerate(raw):
        try:
            args, kwargs = item
        except (TypeError, ValueError):
            raise TypeError(f"question {question.id}: case {i} must be (args, kwargs), got {item!r}") from None
        if not isinstance(args, (tuple, list)) or not isinstance(kwargs, dict):
            raise TypeError(f"question {question.id}: case {i} must be (args tuple, kwargs dict), got {item!r}")
        cases.append((tuple(args), dict(kwargs)))
    if not cases:
        raise ValueError(f"question {question.id}: cases(rng) returned no cases")
    return cases
