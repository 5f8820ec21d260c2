"""`make bench`: run every benchmark section in this folder, in one go.

Each ``tests/benchmarks/bench_<topic>.py`` that defines ``main() -> bool | None`` is a section
(run in name order, each under its own header); ``main`` prints its own table and returns False
when a target is missed. To add a section (e.g. ``bench_grade.py`` for the grader), just drop a
file with a ``main()`` here. Files are named ``bench_*`` / ``run.py``, not ``test_*``, so pytest
never collects them.

Usage: ``python tests/benchmarks/run.py [SECTION …]`` (e.g. ``summary`` to run bench_summary.py).
Exit status 1 if any section missed a target or crashed.
"""

from __future__ import annotations

import importlib.util
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def sections(only: list[str]) -> list[Path]:
    files = sorted(HERE.glob("bench_*.py"))
    if only:
        files = [f for f in files if f.stem.removeprefix("bench_") in only or f.stem in only]
    return files


def run_section(path: Path) -> bool:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    main = getattr(module, "main", None)
    if not callable(main):
        print(f"(skipped: {path.name} defines no main())")
        return True
    result = main()
    return result is not False


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(ROOT))
    ok = True
    for path in sections(argv):
        title = (path.stem.removeprefix("bench_"))
        print(f"\n##### {title} ({path.relative_to(ROOT)}) " + "#" * max(0, 60 - len(title)), flush=True)
        start = time.perf_counter()
        try:
            passed = run_section(path)
        except Exception:  # noqa: BLE001 — one broken section must not hide the others
            traceback.print_exc()
            passed = False
        print(f"----- {title}: {'ok' if passed else 'TARGET MISSED / FAILED'} "
              f"({time.perf_counter() - start:.1f} s)", flush=True)
        ok &= passed
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
