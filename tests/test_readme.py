"""The README runs as written, and the course's reading path lists every notebook (issue 22, item 5).

* every ```python block of the README executes with the course interpreter, in a fresh process, and every
  ``# … → text`` comment is checked against what that statement prints;
* every ``python -m`` names ``.venv/bin/python`` (from a shell, a bare ``python`` is the system one, which has
  no torch);
* the student path (README's *Three ways* row, notebook 00's *Three ways* box and *Where next* table) and the
  README's chapter table list exactly the notebooks in ``notebooks/`` — derived from the folder, so a new
  chapter fails here until it is listed.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
#: "00", "06b", "99": each notebook's chapter id, as the course numbers them
CHAPTERS = {p.name.split("_", 1)[0] for p in (ROOT / "notebooks").glob("*.ipynb")}
NOTEBOOK_STEMS = {p.stem for p in (ROOT / "notebooks").glob("*.ipynb")}
#: the course interpreter (what `make venv` builds); the suite itself runs on it
PYTHON = ROOT / ".venv" / "bin" / "python" if (ROOT / ".venv" / "bin" / "python").exists() else Path(sys.executable)

#: runs a block statement by statement, recording what each prints: [[first line, last line, stdout], …]
RUNNER = r"""
import ast, contextlib, io, json, sys
source = sys.stdin.read()
scope = {"__name__": "__main__"}
printed = []
for stmt in ast.parse(source).body:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(ast.Module([stmt], type_ignores=[]), "README.md", "exec"), scope)
    printed.append([stmt.lineno, stmt.end_lineno, out.getvalue()])
print(json.dumps(printed))
"""


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)


def chapter_ids(text: str) -> set[str]:
    """The chapter ids ("00", "06b", "99") a piece of text names."""
    return set(re.findall(r"(?<![\w.×])(\d\d[a-z]?)(?![\w.×])", text))


def run_block(block: str) -> list[tuple[int, int, str]]:
    done = subprocess.run([str(PYTHON), "-c", RUNNER], input=block, capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    assert done.returncode == 0, f"a README python block fails as written:\n{done.stderr[-3000:]}"
    return [tuple(row) for row in json.loads(done.stdout.splitlines()[-1])]


def arrow_claims(block: str) -> list[tuple[int, str]]:
    """(line number, claimed text) for each ``# … → text`` comment of the block."""
    return [(i, m.group(1).strip()) for i, line in enumerate(block.splitlines(), 1)
            if (m := re.search(r"#[^\n]*→\s*(.+)$", line))]


def unmet_claims(block: str, printed: list[tuple[int, int, str]]) -> list[str]:
    wrong = []
    for line, claim in arrow_claims(block):
        out = next((text for first, last, text in printed if first <= line <= last), "")
        if claim not in out:
            wrong.append(f"line {line} claims {claim!r} but prints {out.strip()[:200]!r}")
    return wrong


def test_the_readme_has_the_engineer_snippet():
    blocks = python_blocks(README)
    assert blocks, "the README has no ```python block"
    assert any(re.search(r"^model = ", b, re.M) and "summary(model" in b for b in blocks), \
        "the engineer snippet must define the `model` it summarises"


@pytest.mark.parametrize("index", range(len(python_blocks(README))))
def test_every_python_block_runs_and_prints_what_it_claims(index):
    block = python_blocks(README)[index]
    printed = run_block(block)
    assert any(text for *_, text in printed), "the block prints nothing: show the reader the numbers"
    wrong = unmet_claims(block, printed)
    assert not wrong, "README python block: " + "; ".join(wrong)


def test_a_wrong_arrow_is_caught():
    block = 'print(2 + 2)  # → 4\nx = 1\nprint(x,\n      x)  # → 1 1\n'
    assert not unmet_claims(block, run_block(block))
    assert unmet_claims(block.replace("→ 4", "→ 5"), run_block(block))


def bare_python_m(text: str) -> list[str]:
    """Every ``python -m …`` (or ``python3 -m``) line that does not name the course interpreter."""
    return [line.strip() for line in text.splitlines()
            if re.search(r"(?<![\w/.-])python3?\s+-m\b", line)]


def test_every_python_m_names_the_course_interpreter():
    assert not bare_python_m(README), "use `.venv/bin/python -m …` (or a make target): " + " | ".join(
        bare_python_m(README))
    assert ".venv/bin/python -m helpers.grade" in README


def test_a_bare_python_m_is_caught():
    assert bare_python_m("or `python -m helpers.grade x.ipynb`")
    assert bare_python_m("python3 -m helpers summary")
    assert not bare_python_m("`.venv/bin/python -m helpers.grade`, `make grade`")


def _student_row(markdown: str) -> str:
    rows = [line for line in markdown.splitlines() if re.match(r"\|\s*(\*\*)?a student", line)]
    assert len(rows) == 1, "one 'a student' row in the Three ways table"
    return rows[0]


def _notebook_00() -> list[str]:
    nb = json.loads((ROOT / "notebooks" / "00_introduction.ipynb").read_text())
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]


def _table_first_column(markdown: str) -> list[str]:
    return [line.split("|")[1].strip() for line in markdown.splitlines()
            if line.startswith("|") and not re.match(r"\|\s*-", line)][1:]   # without the header row


def test_the_readme_student_path_lists_every_notebook():
    assert chapter_ids(_student_row(README)) == CHAPTERS


def test_the_readme_chapter_table_lists_every_notebook():
    section = README.split("## Chapters", 1)[1].split("\n## ", 1)[0]
    listed = [cell.strip("`") for cell in _table_first_column(section)]
    assert sorted(listed) == listed and set(listed) == NOTEBOOK_STEMS


def test_notebook_00_three_ways_lists_every_notebook():
    box = next(text for text in _notebook_00() if "Three ways" in text)
    assert chapter_ids(_student_row(box)) == CHAPTERS


def test_notebook_00_where_next_links_every_notebook():
    table = next(text for text in _notebook_00() if text.startswith("## Where next"))
    links = [re.fullmatch(r"\[(\w+)\]\((\w+)\.ipynb\)", cell) for cell in _table_first_column(table)]
    assert all(links), "each Where next row starts with a link [NN](NN_topic.ipynb)"
    assert {m.group(1) for m in links} == CHAPTERS
    assert {m.group(2) for m in links} == NOTEBOOK_STEMS
    assert all(m.group(2).split("_", 1)[0] == m.group(1) for m in links), "each link goes to its own chapter"


def test_notebook_00_ends_with_how_the_exercises_work():
    last = _notebook_00()[-1]
    assert last.startswith("## How the exercises work")
    named = set(re.findall(r"exercises/(\d\d\w*\.ipynb)", last))   # not the NN_topic pattern
    assert named and all((ROOT / "exercises" / n).exists() for n in named)
    assert "check(" in last and "NotImplementedError" in last


@pytest.mark.parametrize("text", ["00, 01, 02, 06b, 99", "| [06b](06b_x.ipynb) |"])
def test_chapter_ids_are_read(text):
    assert {"06b"} <= chapter_ids(text)


def test_sizes_are_not_chapter_ids():
    assert chapter_ids("32×32 images, 16×16 maps, 2.13 and v10.5") == set()
