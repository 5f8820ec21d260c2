"""`python -m helpers.site` / `make site`: every chapter page, with its title, figures and navigation, offline.

Builds the whole site (all notebooks, committed outputs, nothing executed: ~6 s on 2 cores) into a
temporary folder once for the module.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from pathlib import Path

import pytest

from helpers import site

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]*_*.ipynb"))  # 06b_… included


def _digest(paths) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    before = _digest(NOTEBOOKS)
    assert site.main(["--out", str(out), "--jobs", "2"]) == 0
    assert _digest(NOTEBOOKS) == before, "building the site must not modify the notebooks"
    return out


def _first_heading(nb_path: Path) -> str:
    """The notebook's first markdown heading, as plain text (computed here, not by helpers.site)."""
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("#"):
                    return " ".join(line.lstrip("#").replace("`", "").replace("**", "").split())
    raise AssertionError(f"{nb_path.name} has no heading")


def _text(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", fragment)).replace("¶", "").split())


def test_there_are_chapters():
    assert len(NOTEBOOKS) >= 12  # 00 … 11 and the cookbook


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_chapter_page(built, nb_path):
    page = built / nb_path.with_suffix(".html").name
    assert page.is_file(), f"{page.name} was not built"
    text = page.read_text(encoding="utf-8")
    title = _first_heading(nb_path)
    assert _text(re.search(r"<title>(.*?)</title>", text, re.S).group(1)) == title
    h1 = re.search(r"<h1[^>]*>(.*?)</h1>", text, re.S)
    assert h1 and _text(h1.group(1)) == title, "the page shows the notebook's title as its heading"
    assert re.search(r'<img[^>]+src="data:image/png;base64,', text), f"{page.name} has no embedded figure"
    # offline: no script, stylesheet or image is loaded from the network
    assert not re.search(r'<(script|img|link|iframe)[^>]+(src|href)="(https?:)?//', text)
    assert "url(http" not in text
    # live widgets cannot run on a static page: a note replaces them
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    widgets = sum("application/vnd.jupyter.widget-view+json" in o.get("data", {})
                  for c in nb["cells"] if c["cell_type"] == "code" for o in c["outputs"])
    assert text.count('class="dp-widget-note"') == widgets


def test_navigation(built):
    pages = [nb.with_suffix(".html").name for nb in NOTEBOOKS]
    for i, name in enumerate(pages):
        text = (built / name).read_text(encoding="utf-8")
        prev = re.findall(r'<a[^>]*rel="prev"[^>]*href="([^"]+)"|<a[^>]*href="([^"]+)"[^>]*rel="prev"', text)
        nxt = re.findall(r'<a[^>]*rel="next"[^>]*href="([^"]+)"|<a[^>]*href="([^"]+)"[^>]*rel="next"', text)
        prev = {a or b for a, b in prev}
        nxt = {a or b for a, b in nxt}
        assert prev == ({pages[i - 1]} if i > 0 else set()), name
        assert nxt == ({pages[i + 1]} if i + 1 < len(pages) else set()), name
        assert text.count('href="index.html"') == 2, "index link at the top and at the bottom"
    index = (built / "index.html").read_text(encoding="utf-8")
    for nb, name in zip(NOTEBOOKS, pages):
        link = re.search(rf'<a href="{re.escape(name)}">(.*?)</a>', index)
        assert link and _text(link.group(1)) == _first_heading(nb)


def test_mathjax_is_local_or_absent(built):
    local = site.find_mathjax()
    pages = [p.read_text(encoding="utf-8") for p in built.glob("[0-9][0-9]*_*.html")]
    if local is None:
        assert not (built / site.STATIC_MATHJAX).exists()
        assert not any("MathJax.js" in p for p in pages)
    else:
        assert (built / site.STATIC_MATHJAX / "MathJax.js").is_file()
        config, parts = site.mathjax_config(local)
        assert all((built / site.STATIC_MATHJAX / part).exists() for part in parts if (local / part).exists())
        assert (built / site.STATIC_MATHJAX / "config" / f"{config}.js").is_file()
        assert all(f"config={config}" in p for p in pages)
        assert all(f'src="{site.STATIC_MATHJAX}/MathJax.js' in p for p in pages)


def test_missing_notebooks_folder_is_an_error(tmp_path, capsys):
    assert site.main(["--out", str(tmp_path / "out"), "--notebooks", str(tmp_path)]) == 2
    assert "no NN_*.ipynb" in capsys.readouterr().err
