"""The run's own record: the text printed at the end (:func:`summary`) and ``<out stem>_run.json``
(:func:`write_run_info`: the seed, so ``--seed`` re-draws the same inputs)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from helpers.grading.csvlog import Row, reports_from_rows
from helpers.grading.report import ClassReport, points_text

__all__ = ["summary", "write_run_info"]


def write_run_info(batch: ClassReport, out: Path, argv: list[str]) -> Path:
    """``<out stem>_run.json`` beside the CSV: the seed (``--seed`` re-draws the same inputs),
    partial credit, the sandbox and the command line."""
    path = Path(out).with_name(Path(out).stem + "_run.json")
    path.write_text(json.dumps({"seed": batch.seed, "partial": batch.partial, "sandbox": batch.sandbox,
                                "chapters": sorted({q[:2] for q in batch.questions}),
                                "submissions": len(batch.reports),
                                "graded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                "argv": argv}, indent=1) + "\n", encoding="utf-8")
    return path


def summary(rows: list[Row] | ClassReport, seconds: float, seed: int, jobs: int, out: Path, sandboxed: bool = True) -> str:
    """The text printed at the end: counts, the seed, and every submission that needs a look
    (a non-ok run or any wrong answer)."""
    batch = rows if isinstance(rows, ClassReport) else ClassReport(reports_from_rows(rows), seed)
    totals = batch.reports
    full = sum(1 for r in totals if r.max_points and r.points == r.max_points)
    lines = [f"Graded {len(totals)} submission(s) in {seconds:.1f} s with {jobs} job(s) (seed {seed}) → {out}"]
    lines.append("  sandbox: bubblewrap (no network, own PID namespace, read-only environment, no answers)"
                 if sandboxed else "  WARNING: graded WITHOUT a sandbox (--no-sandbox): the students' code ran "
                                   "with your rights and could read the solutions")
    if totals:
        scored = [r.points / r.max_points for r in totals if r.max_points]
        mean = 100 * sum(scored) / len(scored) if scored else 0.0
        lines.append(f"  full marks: {full}/{len(totals)} · mean score {mean:.0f}% of the maximum"
                     + (" (partial credit)" if batch.partial else ""))
    problems = [(r, r.look_reasons()) for r in totals if r.look_reasons()]
    if problems:
        lines.append(f"  {len(problems)} submission(s) need a look:")
        for r, reasons in problems:
            lines.append(f"  - {r.submission}: {points_text(r.points)}/{points_text(r.max_points)} [{r.status}] "
                         f"{'; '.join(reasons)[:160]}")
    return "\n".join(lines)
