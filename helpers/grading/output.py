"""Where a run writes, and how: the output folder and its one permission policy.

* **Folder**: ``--out`` names the CSV; its folder gets everything else. The default is
  ``grading/<chapters>/grades.csv`` (``grading/02+05/``) under the current folder — ``grading/`` is
  git-ignored, so student data never lands among the course's tracked files, and a regrade of the
  same chapters goes to the same folder (reusing its recorded seed: same inputs, same scores).
* **Permissions**: everything a run writes is student data: files ``0600``, folders ``0700``
  (:func:`private_umask` for the whole run, so every folder it creates is ``0700``, then
  :func:`make_private` on each path written, in case a file existed before with wider modes; a
  folder that existed before — ``--out grades.csv`` in the current folder — keeps its mode).
* :func:`write_outputs`: the run record, feedback pages, overview, gradebook and LMS exports.

Imports only the presenting modules (never the grader's pipeline).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator, Sequence

from helpers.grading.report import ClassReport

__all__ = ["OUTPUT_ROOT", "FILE_MODE", "DIR_MODE", "default_out", "private_umask", "make_private", "write_outputs"]

OUTPUT_ROOT = Path("grading")
FILE_MODE, DIR_MODE = 0o600, 0o700


def default_out(chapters: Sequence[str]) -> Path:
    """``grading/<NN+NN…>/grades.csv`` for a run of `chapters` (``grading/run/`` if none is known)."""
    name = "+".join(sorted({c for c in chapters if c})) or "run"
    return OUTPUT_ROOT / name / "grades.csv"


@contextlib.contextmanager
def private_umask() -> Iterator[None]:
    """Files and folders created inside are readable by their owner only (umask 077), restored after."""
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


def make_private(paths: Sequence[Path]) -> None:
    """Files ``0600``, folders ``0700`` (a folder's own files too), for each of `paths` that exists."""
    for path in paths:
        path = Path(path)
        if path.is_dir():
            os.chmod(path, DIR_MODE)
            for inner in path.rglob("*"):
                os.chmod(inner, DIR_MODE if inner.is_dir() else FILE_MODE)
        elif path.exists():
            os.chmod(path, FILE_MODE)


def write_outputs(batch: ClassReport, out: Path, argv: list[str], *, reports: bool = True,
                  lms: Sequence[str] = ()) -> list[Path]:
    """Write the run record and (unless `reports` is False) the feedback pages, overview, gradebook
    and each LMS export of `lms` beside `out`; make them all private. Returns what was written."""
    from helpers.grading.summary import write_run_info

    out = Path(out)
    written = [out, write_run_info(batch, out, argv)]
    if reports:
        from helpers.grading.feedback import write_feedback
        from helpers.grading.gradebook import write_gradebook
        from helpers.grading.lms import write_lms
        from helpers.grading.overview import write_overview

        overview = write_overview(batch, out.with_name(out.stem + "_overview.html"))
        written += [write_feedback(batch, out.parent / "feedback"), write_gradebook(batch, out.with_name("gradebook.csv")),
                    overview, *sorted(out.parent.glob(out.stem + "_overview_*.png"))]
        written += [write_lms(batch, kind, out.parent) for kind in lms]
    make_private(written)  # (the folders a run creates are 0700 already: it writes under private_umask)
    return written
