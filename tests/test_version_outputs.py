"""No committed notebook output that depends on a library version is compared by nbval (issue 22, item 2).

A version string in a compared output breaks `make test` on the next release of that library (it did: notebook
12 printed ``transformers 5.24.0`` and a fresh install resolved 5.25.0). So a cell that prints a version must be
tagged ``nbval-ignore-output`` (nbval still runs it, and an error in it still fails) and sit next to a markdown
cell saying what was tested (the versions pinned in ``requirements.lock``). A version string is found two ways,
so that neither a new print nor a new package slips through: the cell's source reads a version
(``torch.__version__``, ``importlib.metadata.version(…)``, ``sys.version``), or its committed output shows
``<package> X.Y`` for any package of the lock (or Python).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for folder in ("notebooks", "solutions", "exercises") for p in (ROOT / folder).glob("*.ipynb"))
IGNORE = "nbval-ignore-output"

#: source that reads a version: ``x.__version__``, ``version("torch")``, ``sys.version``, ``platform.python_version()``
READS_VERSION = re.compile(r"__version__|\bversion\s*\(|\bsys\.version\b|\bpython_version\s*\(")


def _package_names() -> list[str]:
    """Every package of requirements.lock (its distribution name), plus Python and PyTorch's spelling."""
    names = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", (ROOT / "requirements.lock").read_text(), re.M)
    assert "torch" in names, "requirements.lock lists no torch: the parser is broken"
    return sorted({*names, "python", "pytorch"}, key=len, reverse=True)


def _version_pattern(names: list[str]) -> re.Pattern[str]:
    """``<name> 2.13.0``, ``name==5.24``, ``name: v1.2``, ``name version 3.11`` (``-``, ``_``, ``.`` alike)."""
    alternatives = "|".join(r"[-_.]".join(map(re.escape, re.split(r"[-_.]", n))) for n in names)
    return re.compile(rf"(?<![\w.-])(?:{alternatives})(?![\w-])\s*(?:==|=|:)?\s*(?:version\s*)?v?\d+\.\d+",
                      re.IGNORECASE)


VERSION_TEXT = _version_pattern(_package_names())


def _output_text(cell: dict) -> str:
    parts = []
    for out in cell.get("outputs", []):
        parts.append("".join(out.get("text", "")))
        for mime, value in out.get("data", {}).items():
            if mime.startswith("text/"):
                parts.append("".join(value))
        parts.append(str(out.get("evalue", "")))
    return "\n".join(parts)


def shows_a_version(cell: dict) -> str | None:
    """Why `cell` shows a library version (the matched source or output text), or None."""
    if cell["cell_type"] != "code":
        return None
    m = READS_VERSION.search("".join(cell["source"]))
    if m:
        return f"its source reads {m.group(0)!r}"
    m = VERSION_TEXT.search(_output_text(cell))
    return f"its output shows {m.group(0)!r}" if m else None


def problems(nb: dict) -> list[str]:
    """Every version-showing cell of `nb` that nbval would compare, or that no markdown next to it explains."""
    cells = nb["cells"]
    found = []
    for i, cell in enumerate(cells):
        why = shows_a_version(cell)
        if why is None:
            continue
        if IGNORE not in cell["metadata"].get("tags", []):
            found.append(f"cell {i}: {why}, and nbval compares it: tag it {IGNORE}")
        near = [c for c in cells[max(i - 1, 0):i + 2] if c["cell_type"] == "markdown"]
        if not any("requirements.lock" in "".join(c["source"]) for c in near):
            found.append(f"cell {i}: {why}; the markdown right before or after it must say what was tested "
                         "(the versions pinned in requirements.lock)")
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_compared_output_shows_a_library_version(path):
    found = problems(json.loads(path.read_text()))
    assert not found, f"{path.relative_to(ROOT)}: " + "; ".join(found)


def test_the_course_prints_the_versions_it_depends_on():
    """The exemption is used, not a dead letter: the notebooks built on transformers say which one they ran."""
    shown = {p.name for p in NOTEBOOKS if any(shows_a_version(c) for c in json.loads(p.read_text())["cells"])}
    assert {"00_introduction.ipynb", "12_modern_llms.ipynb", "15_inference.ipynb"} <= shown


def _cell(source: str, output: str = "", tags: tuple[str, ...] = ()) -> dict:
    return {"cell_type": "code", "source": [source], "metadata": {"tags": list(tags)} if tags else {},
            "outputs": [{"output_type": "stream", "name": "stdout", "text": [output]}] if output else []}


NOTE = {"cell_type": "markdown", "source": ["Tested with the versions pinned in `requirements.lock`."], "metadata": {}}


@pytest.mark.parametrize("cell", [
    _cell('print("torch", torch.__version__)'),
    _cell("from importlib.metadata import version\nprint(version('peft'))"),
    _cell("import sys; print(sys.version)"),
    _cell("print(report)", "built with transformers 5.24.0 on meta"),
    _cell("show()", "Transformers==4.57"),
    _cell("show()", "safetensors: v0.6.2"),
    _cell("show()", "Python 3.11.9"),
    _cell("show()", "jupyter-core 5.8"),
    _cell("show()", "jupyter_core 5.8"),
    _cell("show()", "PyTorch version 2.13"),
], ids=["__version__", "metadata.version", "sys.version", "transformers", "==", "colon-v", "python", "dash",
        "underscore", "pytorch-version"])
def test_an_untagged_version_cell_is_found(cell):
    assert problems({"cells": [NOTE, cell]}) and problems({"cells": [cell]})
    tagged = {**cell, "metadata": {"tags": [IGNORE]}}
    assert not problems({"cells": [NOTE, tagged]}), "tagged, with the note before it"
    assert not problems({"cells": [tagged, NOTE]}), "tagged, with the note after it"
    assert problems({"cells": [tagged]}), "tagged, but nothing says what was tested"


@pytest.mark.parametrize("output", [
    "torch.Size([2, 13, 0])", "LSTM(20, 64) has 2.13 M parameters", "ResNet-50: 25.56 M parameters",
    "the 4.127 bits of QLoRA", "Llama-3 8B: 8.03e9", "numpy arrays: 3 of them", "fc1 expects 4096 features",
])
def test_numbers_the_course_teaches_are_not_versions(output):
    assert shows_a_version(_cell("print(x)", output)) is None
