"""Many submissions at a time: a pool of `jobs` sandbox slots, rows appended as each is graded, and
a clean Ctrl-C (:func:`grade_all`).

On Ctrl-C the runs under way are killed (:func:`helpers.grading.sandbox.stop_all`: they run in
sessions of their own, so the terminal's SIGINT never reaches them), the submissions not started
are cancelled, and the ones graded so far are kept: the caller writes their feedback and tells the
instructor to run again with ``--resume``.
"""

from __future__ import annotations

import queue
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Callable, Optional

from helpers.grading.csvlog import CsvLog, rows_of
from helpers.grading.report import SubmissionReport
from helpers.grading.sandbox import resume_runs, stop_all
from helpers.grading.submission import Submission

__all__ = ["grade_all"]


def grade_all(subs: list[Submission], grade_one: Callable[[Submission, int], SubmissionReport], jobs: int,
              progress: bool, log: Optional[CsvLog], results: dict[int, SubmissionReport], label: str) -> bool:
    """Fill `results` (each submission's report by its index in `subs`), `jobs` at a time (one sandbox
    slot each); on Ctrl-C stop the runs under way (their reports are not kept) and return True."""
    from tqdm import tqdm

    slots: "queue.Queue[int]" = queue.Queue()
    for slot in range(max(1, jobs)):
        slots.put(slot)

    def one(sub: Submission) -> SubmissionReport:
        slot = slots.get()
        try:
            return grade_one(sub, slot)
        finally:
            slots.put(slot)

    pool = ThreadPoolExecutor(max_workers=max(1, jobs))
    try:
        with tqdm(total=len(subs), desc="grading", unit="nb", disable=not progress, file=sys.stderr) as bar:
            futures = {pool.submit(one, sub): i for i, sub in enumerate(subs)}
            for future in as_completed(futures):
                i = futures[future]
                try:
                    results[i] = future.result()
                except Exception as exc:  # a grader bug must not lose the other submissions
                    results[i] = SubmissionReport(subs[i].name, subs[i].student, subs[i].sha256, subs[i].chapter,
                                                  "crashed", [f"grader error: {type(exc).__name__}: {exc}"])
                if log is not None:
                    log.append(rows_of(results[i], label))
                bar.update(1)
        return False
    except KeyboardInterrupt:
        stop_all()  # the runs are in sessions of their own: the terminal's Ctrl-C never reached them
        return True
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        resume_runs()
