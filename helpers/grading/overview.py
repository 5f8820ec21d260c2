"""The class overview: ``<out stem>_overview.html`` (+ two PNG figures) beside ``grades.csv``.

Read from the grader's typed report (:class:`helpers.grading.report.ClassReport`): the seed, a score
histogram, each question's pass rate with its most common wrong-answer pattern, the submissions
that need a look (a non-ok run or any wrong answer) and roster problems.

Wrong-answer patterns are found by comparing a student's values with **reference variants** built
from the question's own reference, for any chapter (no per-question table):

* for every keyword argument ``k`` the cases use: the reference called without it ("ignores
  ``k=``": the student always uses the default) and, for a bool default, with the other value
  ("always ``k=False``"; for ``bias`` that is "forgot the bias");
* the question's named mistakes (``Question.mistakes``: "forgot the second bias" for
  ``05.vanilla_rnn_params``), tried first;
* "off by one": every wrong int is the reference ± 1 (same sign);
* "follows from <question>": the function calls another question's wrong function (told once, as
  that question's root cause: :func:`helpers.grading.judge.attribute_root_causes`);
* "the same answer for every input (hard-coded?)";
* for a question answered with an ``nn.Module``: the kind of its first difference from the
  reference module (``verdict.module_fault``: "wrong parameter shape (fc2.weight)", "right shapes,
  different forward", …).

A variant that raises or runs longer than ``VARIANT_SECONDS`` on a case is not compared there.

A submission shows a pattern when its values equal the variant's on every case it answered and
the variant differs from the reference on at least one of them. Otherwise the pattern is the kind
of failure (wrong type, raised, missing, …).
"""

from __future__ import annotations

import html
import inspect
from collections import Counter
from pathlib import Path
from typing import Any, Optional

from helpers.checks.protocol import run_cases  # guarded calls
from helpers.checks.verdict import matches, module_fault  # the grader's comparison
from helpers.grading.gradebook import best_by_student
from helpers.grading.report import ClassReport, QuestionResult, feedback_name, points_text

__all__ = ["variants", "pattern_of", "question_patterns", "need_a_look", "chapter_text", "overview_text", "write_overview"]

#: seconds one reference variant may take on all of a question's cases
VARIANT_SECONDS = 0.5
_NO_ANSWER = object()  # a variant that failed on this case (not compared there)

_FAILURE_KIND = {"wrong_type": "returns the wrong type", "error": "raises an error", "missing": "function not found",
                 "timeout": "too slow (time limit)", "memory": "out of memory", "not_attempted": "not attempted",
                 "forbidden_import": "forbidden import", "crashed": "the notebook crashed",
                 "invalid_notebook": "unreadable notebook", "wrong_notebook": "wrong notebook",
                 "wrong": "other wrong answer"}


def _variant_label(name: str, value: Any = None, dropped: bool = True) -> str:
    if name == "bias" and not dropped and value is False:
        return "forgot the bias (always bias=False)"
    if dropped:
        return f"ignores `{name}=` (always the default)"
    return f"always `{name}={value!r}`"


def variants(question: Any, cases: list) -> list[tuple[str, list]]:
    """(label, normalised answers on `cases`) of each reference variant (see the module docstring);
    a variant whose reference call fails on some case is left out."""
    names = sorted({k for _, kwargs in cases for k in kwargs})
    try:
        params = inspect.signature(question.reference).parameters
    except (TypeError, ValueError):
        params = {}
    specs: list[tuple[str, Any]] = []
    for name in names:
        specs.append((_variant_label(name), lambda kw, n=name: {k: v for k, v in kw.items() if k != n}))
        default = params[name].default if name in params else inspect.Parameter.empty
        if isinstance(default, bool):
            other = not default
            specs.append((_variant_label(name, other, dropped=False), lambda kw, n=name, o=other: {**kw, n: o}))
    calls = [(label, question.reference, change) for label, change in specs]
    calls = [(label, fn, lambda kw: kw) for label, fn in getattr(question, "mistakes", ())] + calls
    out = []
    for label, fn, change in calls:  # a variant may raise or never return on a case (a search with no answer)
        answers = []
        for args, kwargs in cases:
            outcome = run_cases(fn, [(args, change(dict(kwargs)))], VARIANT_SECONDS)[0]
            answers.append(outcome["value"] if "value" in outcome else _NO_ANSWER)
        if sum(a is not _NO_ANSWER for a in answers) * 2 >= len(cases):
            out.append((label, answers))
    return out


def _off_by_one(question: Any, references: list, values: list) -> bool:
    diffs = set()
    for want, got in zip(references, values):
        if matches(question, want, got):
            continue
        if not (isinstance(want, int) and isinstance(got, int)) or isinstance(got, bool) or abs(got - want) != 1:
            return False
        diffs.add(got - want)
    return len(diffs) == 1


def pattern_of(result: QuestionResult, question: Any, cases: list, references: list,
               found: Optional[list[tuple[str, list]]] = None) -> Optional[str]:
    """The wrong-answer pattern of one student's question (None when correct)."""
    if result.ok:
        return None
    if result.root_cause:
        return f"follows from {result.root_cause} (calls it)"
    values = result.values
    if result.status == "wrong" and values and getattr(question, "probe", None) is not None:
        for want, got in zip(references, values):  # a module answer: the kind of its first fault
            fault = module_fault(want, got)
            if fault is not None:
                return fault
    if result.status == "wrong" and values and all(v is not None for v in values):
        n = min(len(values), len(references))
        for label, answers in (found if found is not None else variants(question, cases)):
            seen = [i for i in range(n) if answers[i] is not _NO_ANSWER]
            differs = any(not matches(question, references[i], answers[i]) for i in seen)
            if differs and all(matches(question, answers[i], values[i]) for i in seen):
                return label
        if _off_by_one(question, references[:n], values[:n]):
            return "off by one"
        if n > 1 and all(v == values[0] for v in values[:n]) and any(r != references[0] for r in references[:n]):
            return "the same answer for every input (hard-coded?)"
    if result.status == "wrong_type" and result.got:
        return f"returns the wrong type (e.g. {result.got})"
    return _FAILURE_KIND.get(result.status, result.status)


def question_patterns(batch: ClassReport) -> dict[str, Counter]:
    """question id → Counter of wrong-answer patterns over the submissions."""
    out: dict[str, Counter] = {qid: Counter() for qid in batch.questions}
    found = {qid: variants(q, batch.cases.get(qid, [])) for qid, q in batch.questions.items()}
    for sub in batch.reports:
        for r in sub.questions:
            if r.id in batch.questions and not r.ok:
                label = pattern_of(r, batch.questions[r.id], batch.cases.get(r.id, []),
                                   batch.references.get(r.id, []), found[r.id])
                out[r.id][label] += 1
    return out


def _label(sub: Any) -> str:
    """``grace · 05_rnn_bptt_exercises.ipynb``: who, and which file (nbgrader's files all share one name)."""
    name = Path(sub.submission).name
    return name if not sub.student or sub.student in name else f"{sub.student} · {name}"


def need_a_look(batch: ClassReport) -> list[tuple[str, list[str]]]:
    """(submission, reasons) of every submission with a non-ok run, any wrong answer or nothing
    attempted, plus roster problems (a file matching no roster student, a roster student without a
    file) and students with several submissions of one chapter."""
    out = [(_label(sub), sub.look_reasons()) for sub in batch.reports if sub.look_reasons()]
    if batch.roster:
        out += [(_label(sub), [f"student `{sub.student}` is not on the roster"])
                for sub in batch.reports if sub.student not in batch.roster]
        handed_in = {sub.student for sub in batch.reports}
        out += [(f"(no file) {sid}", ["on the roster, no submission"]) for sid in batch.roster if sid not in handed_in]
    counts = Counter((sub.student, sub.chapter) for sub in batch.reports)
    out += [(f"(student) {sid}", [f"{n} submissions of chapter {ch}: the gradebook keeps the best"])
            for (sid, ch), n in counts.items() if n > 1]
    return out


def _all_rows(batch: ClassReport) -> dict[str, list]:
    """Each chapter's question rows (:func:`_rows`), the patterns found once for the whole run."""
    patterns = question_patterns(batch)
    return {chapter: _rows(batch, chapter, patterns) for chapter in batch.chapters()}


def _rows(batch: ClassReport, chapter: str, patterns: dict[str, Counter]) -> list[tuple[str, int, int, float, str]]:
    """(question id, passed, submissions, mean points, most common pattern "label: n/N") of one chapter."""
    rows = []
    for qid in batch.chapter_questions(chapter):
        results = [r for sub in batch.of_chapter(chapter) for r in sub.questions if r.id == qid]
        passed = sum(r.ok for r in results)
        mean = sum(r.points for r in results) / len(results) if results else 0.0
        top = [(label, c) for label, c in patterns[qid].most_common() if label != "not attempted"] or \
            patterns[qid].most_common(1)
        rows.append((qid, passed, len(results), mean,
                     "; ".join(f"{label}: {c}/{len(results)}" for label, c in top[:2])))
    return rows


def chapter_text(batch: ClassReport, chapter: str, rows: Optional[list] = None) -> list[str]:
    """One chapter's section of the overview: its scores (of its own maximum) and its questions."""
    rows = _all_rows(batch)[chapter] if rows is None else rows
    subs = batch.of_chapter(chapter)
    totals = [sub.points for sub in subs]
    lines = [f"chapter {chapter}: {len(subs)} submission(s) · max {points_text(batch.chapter_max(chapter), 2)}"]
    if totals:
        lines.append("  scores: " + ", ".join(points_text(t, 2) for t in sorted(totals, reverse=True))
                     + f" · mean {points_text(round(sum(totals) / len(totals), 2), 2)}")
    lines.append("  question: passed · mean points · most common wrong-answer pattern")
    for qid, passed, n, mean, top in rows:
        lines.append(f"    {qid}: {passed}/{n} · {points_text(round(mean, 2), 2)} · {top or '—'}")
    return lines


def overview_text(batch: ClassReport, rows: Optional[dict] = None) -> str:
    """The overview as plain text (what the HTML page shows, without the figures): one section per chapter."""
    rows = _all_rows(batch) if rows is None else rows
    lines = [f"{len(batch.reports)} submission(s) · seed {batch.seed} · "
             f"{'partial credit' if batch.partial else 'all-or-nothing'} · sandbox: {batch.sandbox or '?'}"
             + (" · INTERRUPTED (graded ones only)" if batch.interrupted else "")]
    for chapter in batch.chapters():
        lines += chapter_text(batch, chapter, rows[chapter])
    look = need_a_look(batch)
    lines.append(f"need a look: {len(look)}")
    for name, reasons in look:
        lines.append(f"  - {name}: {'; '.join(reasons)[:200]}")
    return "\n".join(lines)


def _figures(batch: ClassReport, stem: Path, rows: dict) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chapters = batch.chapters() or ["?"]
    fig, axes = plt.subplots(1, len(chapters), figsize=(4 * len(chapters), 3), squeeze=False)
    for ax, chapter in zip(axes[0], chapters):
        maximum = batch.chapter_max(chapter) or 1
        totals = [sub.points for sub in batch.of_chapter(chapter)]
        ax.hist(totals, bins=[x - 0.5 for x in range(int(maximum) + 2)], color="#4a7ebb", edgecolor="white")
        ax.set_xlabel("points")
        ax.set_ylabel("submissions")
        ax.set_title(f"Chapter {chapter} ({len(totals)} submissions, max {points_text(maximum, 2)})")
    fig.tight_layout()
    paths = [stem.with_name(stem.name + "_scores.png")]
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)
    flat = [r for ch in chapters for r in rows.get(ch, [])]
    fig, ax = plt.subplots(figsize=(6, 0.5 + 0.45 * max(1, len(flat))))
    ax.barh([r[0] for r in flat][::-1], [r[1] / r[2] if r[2] else 0 for r in flat][::-1], color="#55a868")
    ax.set_xlim(0, 1)
    ax.set_xlabel("pass rate")
    ax.set_title("Questions")
    fig.tight_layout()
    paths.append(stem.with_name(stem.name + "_questions.png"))
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)
    return paths


def write_overview(batch: ClassReport, out: Path, feedback: str = "feedback") -> Path:
    """Write the overview page `out` and its figures beside it; returns `out`."""
    out = Path(out)
    e = html.escape
    rows = _all_rows(batch)
    text = overview_text(batch, rows)
    figures = _figures(batch, out.with_suffix(""), rows)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>Class overview</title><style>"
             "body{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border-bottom:1px solid #ddd;padding:.2em .6em;text-align:left;vertical-align:top}</style>"
             "</head><body><h1>Class overview</h1><pre>" + e(text.split("\n")[0]) + "</pre>"]
    parts += [f"<img src='{e(p.name)}' alt='{e(p.stem)}'> " for p in figures]
    for chapter in batch.chapters():
        head, *scores = chapter_text(batch, chapter, rows[chapter])[:2]
        parts.append(f"<h2>Chapter {e(chapter)}</h2><p>{e(head)}<br>{e(scores[0].strip() if scores else '')}</p>"
                     "<table><tr><th>question</th><th>passed</th><th>mean points</th>"
                     "<th>most common wrong-answer pattern</th></tr>")
        for qid, passed, n, mean, top in rows[chapter]:
            parts.append(f"<tr><td>{e(qid)}</td><td>{passed}/{n}</td><td>{points_text(round(mean, 2), 2)}</td>"
                         f"<td>{e(top or '—')}</td></tr>")
        parts.append("</table>")
    parts.append("<h2>Need a look</h2><ul>")
    for name, reasons in need_a_look(batch):
        parts.append(f"<li><b>{e(name)}</b>: " + "<br>".join(e(r) for r in reasons) + "</li>")
    parts.append("</ul><h2>Students</h2><table><tr><th>student</th><th>chapter</th><th>points</th><th>status</th>"
                 "<th>feedback</th></tr>")
    for (sid, chapter), sub in sorted(best_by_student(batch).items()):
        link = f"{feedback}/{feedback_name(sub)}.html"
        parts.append(f"<tr><td>{e(sid)}</td><td>{e(chapter)}</td><td>{points_text(sub.points, 2)}/"
                     f"{points_text(sub.max_points, 2)}</td><td>{e(sub.status)}</td>"
                     f"<td><a href='{e(link)}'>{e(Path(link).name)}</a></td></tr>")
    parts.append(f"</table><p>Seed {batch.seed}: <code>--seed {batch.seed}</code> draws the same inputs again.</p>"
                 "</body></html>\n")
    out.write_text("".join(parts), encoding="utf-8")
    return out
