"""Per-student feedback: one HTML and one Markdown page per graded submission.

``write_feedback(batch, folder)`` writes ``folder/<student>_…_exercises.html`` and ``.md`` from the
grader's typed report (:mod:`helpers.grading.report`): the score, then for each question its
verdict, points, cases passed, the first failing input with expected vs got, the hint, and why a
function is missing (the cell that defines it, numbered as the student counts code cells and
quoted by its first line); then what the grader ignored (check cells, ``check(…)`` lines) and
what went wrong in the run (cell errors, time, memory). Standard library only.
"""

from __future__ import annotations

import html
from pathlib import Path

from helpers.grading.report import ClassReport, QuestionResult, SubmissionReport, feedback_name, points_text

__all__ = ["feedback_markdown", "feedback_html", "write_feedback", "STATUS_TEXT"]

#: status → what the student reads
STATUS_TEXT = {
    "correct": "✅ correct", "wrong": "❌ wrong answer", "wrong_type": "❌ wrong type", "error": "❌ raised an error",
    "not_attempted": "⏳ not attempted", "timeout": "⏱ too slow (time limit)", "memory": "❌ out of memory",
    "missing": "❌ function not found", "forbidden_import": "⛔ forbidden import", "crashed": "💥 the notebook crashed",
    "invalid_notebook": "❌ unreadable notebook", "wrong_notebook": "❌ wrong notebook",
}


def _details(q: QuestionResult) -> list[tuple[str, str]]:
    """(label, text) lines of one question's feedback."""
    out = [("Verdict", STATUS_TEXT.get(q.status, q.status)),
           ("Points", f"{points_text(q.points, 2)} / {points_text(q.max_points, 2)}")]
    if q.cases:
        out.append(("Cases passed", f"{q.passed} / {q.cases}"))
    if q.status != "correct":
        if q.root_cause:
            out.append(("Root cause", f"{q.root_cause} (this function calls it): fix that one first"))
        if q.call:
            out.append(("First failing input", q.call))
        if q.expected or q.got:
            out += [("Expected", q.expected), ("Got", q.got)]
        if q.reason:
            out.append(("Why", q.reason))
        if q.hint:
            out.append(("Hint", q.hint))
    return out


def _intro(sub: SubmissionReport) -> list[tuple[str, str]]:
    who = f"{sub.student} ({sub.name})" if sub.name else sub.student
    return [("Student", who), ("Submission", Path(sub.submission).name), ("Chapter", sub.chapter or "?"),
            ("Score", f"{points_text(sub.points, 2)} / {points_text(sub.max_points, 2)}")]


def _run_notes(sub: SubmissionReport) -> list[str]:
    notes = list(sub.ignored)
    if sub.status != "ok":
        notes.insert(0, f"run status: {sub.status}")
    return notes + [f"not counted: {n}" for n in sub.notes]


def feedback_markdown(sub: SubmissionReport, partial: bool = False) -> str:
    """The submission's feedback as Markdown."""
    lines = [f"# Feedback · {sub.student}", ""]
    lines += [f"- **{k}:** {v}" for k, v in _intro(sub)]
    lines += ["", f"Points are {'proportional to the cases passed' if partial else 'all or nothing per question'}; "
                  "the grader calls your functions on fresh random inputs.", ""]
    for q in sub.questions:
        lines += [f"## {q.id} — {q.title}", ""]
        lines += [f"- **{k}:** {'`' + v + '`' if k in ('First failing input', 'Expected', 'Got') else v}"
                  for k, v in _details(q)]
        lines.append("")
    notes = _run_notes(sub)
    if notes:
        lines += ["## What the grader ignored or noticed", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(lines)


_CSS = ("body{font-family:system-ui,sans-serif;max-width:52em;margin:2em auto;line-height:1.45}"
        "table{border-collapse:collapse}td,th{padding:.2em .6em;vertical-align:top;text-align:left}"
        "section{border:1px solid #ddd;border-radius:6px;padding:.3em 1em;margin:1em 0}"
        ".correct{border-left:6px solid #2a2}.lost{border-left:6px solid #c33}code{background:#f4f4f4}")


def feedback_html(sub: SubmissionReport, partial: bool = False) -> str:
    """The submission's feedback as a self-contained HTML page (every value escaped)."""
    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>Feedback · {e(sub.student)}</title>"
             f"<style>{_CSS}</style></head><body><h1>Feedback · {e(sub.student)}</h1><table>"]
    parts += [f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in _intro(sub)]
    parts.append(f"</table><p>Points are {'proportional to the cases passed' if partial else 'all or nothing per question'}; "
                 "the grader calls your functions on fresh random inputs.</p>")
    for q in sub.questions:
        parts.append(f"<section class='{'correct' if q.ok else 'lost'}'><h2>{e(q.id)} — {e(q.title)}</h2><table>")
        for k, v in _details(q):
            cell = f"<code>{e(v)}</code>" if k in ("First failing input", "Expected", "Got") else e(v)
            parts.append(f"<tr><th>{e(k)}</th><td>{cell}</td></tr>")
        parts.append("</table></section>")
    notes = _run_notes(sub)
    if notes:
        parts.append("<h2>What the grader ignored or noticed</h2><ul>" + "".join(f"<li>{e(n)}</li>" for n in notes)
                     + "</ul>")
    parts.append("</body></html>\n")
    return "".join(parts)


def write_feedback(batch: ClassReport, folder: Path) -> Path:
    """``folder/<name>.html`` + ``.md`` per submission: the file's stem, prefixed with the student id
    where the stem does not name the student (:func:`~helpers.grading.report.feedback_name`); a
    numbered suffix only where two still clash (``--allow-duplicates``)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    for sub in batch.reports:
        stem, n = feedback_name(sub), 1
        name = stem
        while name in used:
            n += 1
            name = f"{stem}-{n}"
        used.add(name)
        (folder / f"{name}.md").write_text(feedback_markdown(sub, batch.partial), encoding="utf-8")
        (folder / f"{name}.html").write_text(feedback_html(sub, batch.partial), encoding="utf-8")
    return folder
