"""Re-execute notebooks in place so their committed outputs match the code (`make notebooks`).

    python -m helpers.course.notebooks notebooks/01_linear.ipynb [more.ipynb …]

Runs each notebook top to bottom in the course kernel from its own folder, with no timing
metadata (so re-running an unchanged notebook produces an unchanged file), and stops with a
readable message naming the failing cell.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import nbformat

#: the course's Jupyter kernel (``make venv`` registers it); importing this module stays cheap —
#: nbclient and nbformat are imported only when a notebook is executed
KERNEL_NAME = "dims-params"


def execute(nb: nbformat.NotebookNode, workdir: Path, *, timeout: int = 600,
            kernel_name: str = KERNEL_NAME) -> nbformat.NotebookNode:
    """Execute `nb` in place, in `workdir`, reproducibly.

    No execution timing is recorded, and the saved ipywidgets state (``metadata.widgets``, whose
    random model ids change on every run) is dropped, so re-executing an unchanged notebook gives
    an unchanged file. Raises nbclient's CellExecutionError naming the failing cell.
    """
    from nbclient import NotebookClient

    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel_name, record_timing=False,
                            resources={"metadata": {"path": str(workdir)}})
    client.execute()
    # nbclient's store_widget_state=False breaks Output widgets (KeyError), so drop the state here
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = _merge_streams(cell.outputs)
    return nb


def _merge_streams(outputs: list) -> list:
    """Join consecutive stdout (or stderr) chunks: how a print is split depends on timing."""
    merged: list = []
    for out in outputs:
        prev = merged[-1] if merged else None
        if (out.get("output_type") == "stream" and prev is not None
                and prev.get("output_type") == "stream" and prev.get("name") == out.get("name")):
            prev["text"] = prev["text"] + out["text"]
        else:
            merged.append(out)
    return merged


def execute_notebook(path: Path, *, timeout: int = 600, kernel_name: str = KERNEL_NAME) -> None:
    """Execute the notebook file `path` in place (see `execute`)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nbformat.write(execute(nb, path.parent, timeout=timeout, kernel_name=kernel_name), path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = parser.parse_args(argv)
    from nbclient.exceptions import CellExecutionError
    from tqdm import tqdm

    failed = 0
    for path in tqdm(args.paths, desc="executing", unit="nb"):
        try:
            execute_notebook(path, timeout=args.timeout)
        except CellExecutionError as exc:
            failed += 1
            print(f"\n{path}: a cell failed\n{str(exc)[-2000:]}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
