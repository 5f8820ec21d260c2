"""nbval's checks on many notebooks in ONE Jupyter kernel (used for exercises/ and solutions/).

What nbval checks on a notebook — every code cell runs without an error (unless tagged
``raises-exception``) and prints what the committed notebook shows (streams merged per name as nbval
does, text sanitised with tests/nbval_sanitize.cfg, the text of results; images and widget ids
ignored; ``nbval-ignore-output`` / ``nbval-skip`` honoured) — but the notebooks share one kernel of
their kernelspec, started in their folder as nbval does, with ``%reset -f`` between notebooks: modules
(torch, the checker) are imported once instead of once per notebook. What a notebook leaves in a
module (a random seed, a cache) can reach the next one; every one of these notebooks seeds what it
prints, so a difference shows up as a failure, never as a pass.

Between notebooks the kernel runs :data:`RESET`: ``gc.freeze()``, then ``%reset -f``. IPython's reset
ends with a full ``gc.collect()``, which walks every object the imports made (torch, transformers:
~0.25 s a reset, 30 resets a `make test`); frozen objects are left out of every later collection, so the
reset then takes milliseconds. Acyclic objects are still freed by their reference counts when
``%reset -f`` clears the namespace; only reference cycles from earlier notebooks stay in memory
(nothing these notebooks print depends on the garbage collector: none calls ``gc``, ``weakref``,
``psutil`` or prints memory use).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
SANITIZE = ROOT / "tests" / "nbval_sanitize.cfg"
_SKIP_MIME = {"image/png", "image/jpeg", "application/vnd.jupyter.widget-view+json"}
CELL_TIMEOUT = 300  # seconds, as `make test`'s --nbval-cell-timeout
#: run before each notebook: what the previous ones imported is frozen out of the cyclic GC, then the
#: namespace is emptied (`%reset -f`'s own full collection no longer walks torch's objects)
RESET = "import gc\ngc.freeze()\n%reset -f"  # the reset also removes the name `gc`


def _tags(cell) -> list[str]:
    return cell.metadata.get("tags", [])


def run_in_one_kernel(paths: list[Path]) -> dict[str, list[list[dict]]]:
    """Run every code cell of every notebook in `paths` (one folder, one kernelspec) in one kernel.

    Returns {file name: [the fresh outputs of each code cell, in order, as nbformat output dicts]}.
    """
    from jupyter_client.manager import start_new_kernel  # noqa: PLC0415

    notebooks = {p: nbformat.read(p, as_version=4) for p in paths}
    kernels = {nb.metadata.kernelspec.name for nb in notebooks.values()}
    folders = {p.parent for p in paths}
    assert len(kernels) == 1 and len(folders) == 1, f"one kernelspec and one folder expected: {kernels}, {folders}"
    km, kc = start_new_kernel(kernel_name=kernels.pop(), cwd=str(folders.pop()))
    results: dict[str, list[list[dict]]] = {}
    try:
        for path, nb in notebooks.items():
            kc.execute_interactive(RESET, store_history=False, timeout=60)
            cells = []
            for cell in nb.cells:
                if cell.cell_type != "code":
                    continue
                outputs: list[dict] = []

                def hook(msg, outputs=outputs):
                    kind, content = msg["msg_type"], msg["content"]
                    if kind == "stream":
                        outputs.append({"output_type": "stream", "name": content["name"], "text": content["text"]})
                    elif kind in ("display_data", "execute_result"):
                        outputs.append({"output_type": kind, "data": content["data"], "metadata": {}})
                    elif kind == "error":
                        outputs.append({"output_type": "error", "ename": content["ename"],
                                        "evalue": content["evalue"], "traceback": content["traceback"]})
                    elif kind == "clear_output":
                        outputs.clear()

                if "nbval-skip" not in _tags(cell):
                    kc.execute_interactive(cell.source, output_hook=hook, allow_stdin=False, timeout=CELL_TIMEOUT)
                cells.append(outputs)
            results[path.name] = cells
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    return results


def comparable(outputs: list, patterns: list[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """(output_type, stream name or MIME type, sanitised text) per output; streams merged per name as nbval does."""
    from nbval.plugin import coalesce_streams  # noqa: PLC0415

    def clean(text: str) -> str:
        for regex, replace in patterns:
            text = re.sub(regex, replace, text)
        return text

    rows = []
    for out in coalesce_streams([nbformat.from_dict(o) for o in outputs]):
        if out.output_type == "stream":
            rows.append(("stream", out.name, clean(out.text)))
        elif out.output_type == "error":
            rows.append(("error", out.ename, clean(out.evalue)))
        else:
            rows += [(out.output_type, mime, clean(value if isinstance(value, str) else json.dumps(value)))
                     for mime, value in sorted(out.get("data", {}).items()) if mime not in _SKIP_MIME]
    return rows


def assert_reproduces(path: Path, fresh: list[list[dict]]) -> None:
    """nbval's verdict on `path` from its `fresh` outputs (see :func:`run_in_one_kernel`)."""
    from nbval.plugin import get_sanitize_patterns  # noqa: PLC0415

    patterns = get_sanitize_patterns(SANITIZE.read_text(encoding="utf-8"))
    code = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    assert len(fresh) == len(code)
    for number, (cell, outputs) in enumerate(zip(code, fresh)):
        where = f"{path.parent.name}/{path.name}, code cell {number} (id {cell.get('id')!r})"
        errors = [o for o in outputs if o["output_type"] == "error"]
        if "raises-exception" not in _tags(cell):
            assert not errors, f"{where} raised:\n" + "\n".join(errors[0]["traceback"])[-2000:]
        if "nbval-ignore-output" in _tags(cell) or "nbval-skip" in _tags(cell):
            continue
        assert comparable(outputs, patterns) == comparable(cell.outputs, patterns), \
            f"{where}: the output differs from the committed one (re-execute the notebook)"
