"""`make bench`: run every benchmark section in this folder, in one go.

Each ``tests/benchmarks/bench_<topic>.py`` that defines ``main() -> bool | None`` is a section
(run in name order, each under its own header); ``main`` prints its own table and returns False
when a target is missed. To add a section (e.g. ``bench_grade.py`` for the grader), just drop a
file with a ``main()`` here. Files are named ``bench_*`` / ``run.py``, not ``test_*``, so pytest
never collects them.

Usage: ``python tests/benchmarks/run.py [--full] [SECTION …]`` (e.g. ``summary`` to run bench_summary.py).
Exit status 1 if any section missed a target or crashed.

``make bench`` is the QUICK run (a few minutes on 2 cores): every section still measures both sides of
its comparison and prints its ratios, on fewer copies and rounds (:data:`QUICK`: a keyword its
``main`` accepts, or a module constant such as ``ROUNDS``, set before ``main`` runs). ``make bench-full``
(``--full``) runs the sizes each section's docstring states (≈ 11 min): its absolute targets (e.g. "30
copies in ≤ 180 s") are stated for those sizes, so only the full run checks them as written.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


# per section: keyword arguments of main() / module constants for the quick run (see the docstring)
QUICK: dict[str, dict[str, object]] = {
    "cli": {"ROUNDS": 2},
    "grade": {"copies": 6},            # and its every-chapter pass (solutions full marks, exercises zero), as in full
    "grade_sandbox": {"copies": 10},   # one round of 10 per mode (the full run alternates 3)
    "suite": {"CHAPTERS": ("01", "05", "08", "12", "14", "16")},  # 6 of the 16 chapters, old and new path
    "summary": {"ROUNDS": 1, "REPEATS": 1},  # one fresh process per case, one call after the first
}


def sections(only: list[str]) -> list[Path]:
    files = sorted(HERE.glob("bench_*.py"))
    if only:
        files = [f for f in files if f.stem.removeprefix("bench_") in only or f.stem in only]
    return files


def run_section(path: Path, quick: bool = False) -> bool:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    main = getattr(module, "main", None)
    if not callable(main):
        print(f"(skipped: {path.name} defines no main())")
        return True
    kwargs = {}
    if quick:
        accepted = inspect.signature(main).parameters
        for name, value in QUICK.get(path.stem.removeprefix("bench_"), {}).items():
            if name in accepted:
                kwargs[name] = value
            elif hasattr(module, name):
                setattr(module, name, value)
            else:
                raise AttributeError(f"QUICK[{path.stem!r}]: {name!r} is neither a main() argument nor a constant")
        if kwargs or QUICK.get(path.stem.removeprefix("bench_")):
            print(f"(quick run: {QUICK[path.stem.removeprefix('bench_')]}; `make bench-full` for the stated sizes)")
    result = main(**kwargs)
    return result is not False


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(ROOT))
    full = "--full" in argv
    argv = [a for a in argv if a != "--full"]
    ok = True
    started = time.perf_counter()
    for path in sections(argv):
        title = (path.stem.removeprefix("bench_"))
        print(f"\n##### {title} ({path.relative_to(ROOT)}) " + "#" * max(0, 60 - len(title)), flush=True)
        start = time.perf_counter()
        try:
            passed = run_section(path, quick=not full)
        except Exception:  # noqa: BLE001 — one broken section must not hide the others
            traceback.print_exc()
            passed = False
        print(f"----- {title}: {'ok' if passed else 'TARGET MISSED / FAILED'} "
              f"({time.perf_counter() - start:.1f} s)", flush=True)
        ok &= passed
    print(f"===== {'full' if full else 'quick'} run: {time.perf_counter() - started:.0f} s", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
