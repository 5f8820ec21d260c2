"""The run's own record: the text printed at the end (:func:`summary`) and ``<out stem>_run.json``
(:func:`write_run_info`: the seed, so ``--seed`` re-draws the same inputs; :func:`recorded_seed`
reads it back, so a regrade into the same folder and ``--resume`` reuse it)."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Optional

from helpers.grading.csvlog import Row, reports_from_rows
from helpers.grading.report import ClassReport, points_text

__all__ = ["summary", "write_run_info", "run_info_path", "recorded_seed", "run_seed"]


def run_info_path(out: Path) -> Path:
    """``<out stem>_run.json`` beside the CSV."""
    return Path(out).with_name(Path(out).stem + "_run.json")


def recorded_seed(out: Path) -> Optional[int]:
    """The seed an earlier run into `out` recorded in its ``_run.json`` (None: none readable)."""
    try:
        seed = json.loads(run_info_path(out).read_text(encoding="utf-8")).get("seed")
    except (OSError, ValueError, AttributeError):
        return None
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else None


def run_seed(seed: Optional[int], out: Optional[Path], resume: bool) -> int:
    """The seed of a run: `seed` (``--seed``), else the one recorded beside `out` by an earlier run (a
    regrade into the same folder, ``--resume``: same inputs, same scores), else a fresh one (recorded).
    ValueError when ``--resume`` would mix two seeds in one CSV."""
    recorded = recorded_seed(out) if out is not None else None
    if seed is not None and resume and recorded is not None and recorded != seed:
        raise ValueError(f"--resume: {out} was graded with seed {recorded}; --seed {seed} would mix two sets of "
                         f"inputs in one gradebook (drop --seed, or grade into another --out)")
    if seed is not None:
        return seed
    return recorded if recorded is not None else random.SystemRandom().randrange(2**32)


def write_run_info(batch: ClassReport, out: Path, argv: list[str]) -> Path:
    """``<out stem>_run.json`` beside the CSV: the seed (``--seed`` re-draws the same inputs),
    partial credit, the sandbox and the command line."""
    path = run_info_path(out)
    path.write_text(json.dumps({"seed": batch.seed, "partial": batch.partial, "sandbox": batch.sandbox,
                                "chapters": batch.chapters(), "interrupted": batch.interrupted,
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
    skipped = f", skipped {batch.kept} already graded" if batch.kept else ""
    lines = [f"Graded {len(totals) - batch.kept} submission(s){skipped} in {seconds:.1f} s with {jobs} job(s) "
             f"(seed {seed}) → {out}"]
    if batch.interrupted:
        lines.append(f"  INTERRUPTED: {len(totals)} of {batch.asked} graded; run again with --resume")
    lines.append("  sandbox: bubblewrap (no network, own PID namespace, read-only environment, no answers)"
                 if sandboxed else "  WARNING: graded WITHOUT a sandbox (--no-sandbox): the students' code ran "
                                   "with your rights and could read the solutions")
    if totals:
        scored = [r.points / r.max_points for r in totals if r.max_points]
        mean = 100 * sum(scored) / len(scored) if scored else 0.0
        lines.append(f"  full marks: {full}/{len(totals)} · mean score {mean:.0f}% of the maximum"
                     + (" (partial credit)" if batch.partial else ""))
        for chapter in batch.chapters():
            subs = batch.of_chapter(chapter)
            mean_points = sum(r.points for r in subs) / len(subs) if subs else 0.0
            lines.append(f"  chapter {chapter}: {len(subs)} submission(s), max {points_text(batch.chapter_max(chapter))}"
                         f", mean {points_text(round(mean_points, 2), 2)}")
    problems = [(r, r.look_reasons()) for r in totals if r.look_reasons()]
    if problems:
        lines.append(f"  {len(problems)} submission(s) need a look:")
        for r, reasons in problems:
            lines.append(f"  - {r.submission}: {points_text(r.points)}/{points_text(r.max_points)} [{r.status}] "
                         f"{'; '.join(reasons)[:160]}")
    return "\n".join(lines)
