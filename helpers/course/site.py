"""Build the course as a static HTML site: ``python -m helpers.course.site --out _site`` (``make site``).

Every notebook in ``notebooks/`` is rendered with nbconvert's ``lab`` template **from its committed
outputs** (nothing is executed), figures embedded as ``data:image/png`` — plus an ``index.html``
listing the chapters by their titles (each notebook's first heading), and prev / index / next
links at the top and bottom of every page. Links to another notebook (``06b_sequence_models.ipynb``,
``06_lstm_gru.ipynb#3-·-Exact…`` in markdown or in the cookbook's chapter column) are rewritten to its
page and to the id nbconvert gave that heading. A search box on every page ranks the course's
sections offline (`helpers.course.site_search`: an index written at build time, a few lines of JavaScript).

Offline: the pages load nothing from the network. nbconvert's template would fetch require.js,
MathJax and mermaid from a CDN; this builder leaves require.js and mermaid out (no output of the
course needs them: widget state is never saved, so no widget JavaScript is emitted either) and
uses a LOCAL MathJax when one is installed (`helpers.course.site_mathjax`: ``--mathjax DIR``, else
the ``jupyter_server_mathjax`` package, else Debian's ``libjs-mathjax``). Without any of them the
formulas stay readable TeX source (``$G·(H·in + H·H + 2H)$``), never a request to a CDN.

Interactive explorers (ipywidgets) need a live kernel: their output is replaced on the site by a
note saying so (the committed notebooks are not modified).
"""

from __future__ import annotations

import argparse
import functools
import html
import json
import re
import secrets
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence
from urllib.parse import unquote

from helpers.course import site_code, site_search
from helpers.course.site_mathjax import STATIC_MATHJAX, copy_mathjax, find_mathjax

__all__ = ["Chapter", "chapters", "notebook_title", "render_page", "rewrite_notebook_links", "element_ids", "build",
           "main"]

ROOT = Path(__file__).resolve().parents[2]
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"

_TEMPLATE = r"""{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block html_head_js_mathjax -%}
{%- if resources.dp_mathjax_url -%}{{ mathjax(resources.dp_mathjax_url) }}{{ resources.dp_mathjax_config }}{%- endif -%}
{%- endblock html_head_js_mathjax -%}
{%- block extra_css -%}<style>{{ resources.dp_css }}</style>{%- endblock extra_css -%}
{%- block body_header -%}{{ super() }}{{ resources.dp_nav_top }}{%- endblock body_header -%}
{%- block body_footer -%}{{ resources.dp_nav_bottom }}{{ super() }}{%- endblock body_footer -%}
"""

_CSS = """
nav.dp-nav { display: flex; justify-content: space-between; gap: 1em; padding: 0.6em 1em;
  margin: 0 0 1em 0; background: #f3f5f7; border-bottom: 1px solid #d0d7de; font: 14px sans-serif; }
nav.dp-nav.dp-bottom { margin: 2em 0 0 0; border-top: 1px solid #d0d7de; border-bottom: none; }
nav.dp-nav a { text-decoration: none; color: #0969da; }
nav.dp-nav span.dp-none { color: #8c959f; }
nav.dp-nav { align-items: center; }
.dp-widget-note { padding: 0.5em 0.8em; border-left: 4px solid #d4a72c; background: #fff8c5; font: 14px sans-serif; }
"""

_INDEX = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>{title}</title>
<style>
body {{ font: 16px/1.5 sans-serif; max-width: 52em; margin: 2em auto; padding: 0 1em; color: #1f2328; }}
h1 {{ font-size: 1.8em; }} ol, ul {{ padding-left: 1.4em; }} li {{ margin: 0.35em 0; }}
a {{ color: #0969da; text-decoration: none; }} a:hover {{ text-decoration: underline; }}
code {{ background: #f3f5f7; padding: 0 0.2em; }} .dp-file {{ color: #8c959f; font-size: 0.85em; }}
{search_css}
</style></head>
<body>
<h1>{title}</h1>
{search}
<p>The course notebooks with their outputs and figures, as committed. To run them and move the
interactive explorers, open them in JupyterLab (<code>make lab</code>).</p>
<h2>Chapters</h2>
<ul>
{chapters}
</ul>
{reference}
</body></html>
"""


@dataclass(frozen=True)
class Chapter:
    source: Path   # the .ipynb
    page: str      # its page name in the site, e.g. "02_convolution.html"
    title: str     # the notebook's first heading, as plain text


def _plain(markdown: str) -> str:
    """A heading's markdown as plain text: no `code` ticks, **emphasis** or [link](targets)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", markdown)
    text = re.sub(r"[`*_]", "", text)
    return " ".join(text.split())


def notebook_title(nb: dict, fallback: str) -> str:
    """The first markdown heading (``# …`` or ``## …``) of the notebook, as plain text."""
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "markdown":
            continue
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        for line in source.splitlines():
            m = re.match(r"\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", line)
            if m:
                return _plain(m.group(1))
    return fallback


def chapters(notebooks: Path) -> list[Chapter]:
    """Every ``NN_*.ipynb`` (and split chapter ``NNb_*.ipynb``, after ``NN_``) in `notebooks`, in
    file-name order, with its title."""
    found = []
    for path in sorted(notebooks.glob("[0-9][0-9]*_*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        found.append(Chapter(path, path.with_suffix(".html").name, notebook_title(nb, path.stem)))
    return found


def _nav(chapters_: Sequence[Chapter], i: int, where: str) -> str:
    def link(j: int, arrow: str) -> str:
        if 0 <= j < len(chapters_):
            c = chapters_[j]
            label = f"{arrow} {html.escape(c.title)}" if arrow == "←" else f"{html.escape(c.title)} {arrow}"
            rel = "prev" if arrow == "←" else "next"
            return f'<a rel="{rel}" href="{c.page}">{label}</a>'
        return '<span class="dp-none"></span>'
    search = site_search.search_box() if where == "top" else ""
    return (f'<nav class="dp-nav dp-{where}">{link(i - 1, "←")}'
            f'<a href="index.html">↑ all chapters</a>{search}{link(i + 1, "→")}</nav>')


def _strip_widgets(nb) -> None:
    """Replace live-widget outputs (nothing to show without a kernel) by a short note."""
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        for k, out in enumerate(cell.get("outputs", [])):
            if WIDGET_MIME in out.get("data", {}):
                cell.outputs[k] = {
                    "output_type": "display_data", "metadata": {},
                    "data": {"text/html": '<div class="dp-widget-note">Interactive explorer: it runs in '
                                          "JupyterLab (<code>make lab</code>), not on this static page.</div>",
                             "text/plain": "Interactive explorer: open the notebook in JupyterLab."}}


_NOTEBOOK_HREF = re.compile(r"""(?P<attr>href=(?P<q>["']))(?:\./)?(?P<stem>[0-9][0-9][a-z]?_[\w-]+)\.ipynb"""
                            r"""(?P<frag>#(?:(?!(?P=q))[^\s<>])*)?(?P=q)""")


def element_ids(page_html: str) -> set[str]:
    """Every ``id`` attribute of a page (HTML entities decoded): the targets of ``#fragment`` links."""
    return {html.unescape(m[2]) for m in re.finditer(r"""\sid=(["'])(.*?)\1""", page_html)}


def _fragment_key(fragment: str) -> str:
    """A fragment as a heading's text: nbconvert's ids are percent-encoded (``3-%C2%B7-Exact…``),
    JupyterLab's links are not (``3-·-Exact…``); both name the same heading."""
    return unquote(fragment).replace(" ", "-")


def rewrite_notebook_links(page_html: str, targets: dict[str, set[str]]) -> str:
    """Links to course notebooks (``href="06_lstm_gru.ipynb#3-·-Exact…"``, in markdown or in an
    output such as the cookbook's chapter column) → their pages, the fragment spelled as the target
    page's id (``href="06_lstm_gru.html#3-%C2%B7-Exact…"``). `targets`: page name → its element ids.
    Links to a notebook with no page (an exercise notebook) are left alone, and so is a fragment
    that names no heading of the page (the site's link test reports it)."""
    keys = {page: {_fragment_key(i): i for i in ids} for page, ids in targets.items()}

    def page(m: re.Match) -> str:
        name = f"{m['stem']}.html"
        if name not in targets:
            return m.group(0)
        fragment = html.unescape(m["frag"] or "")[1:]
        if fragment and fragment not in targets[name]:
            fragment = keys[name].get(_fragment_key(fragment), fragment)
        link = name + (f"#{fragment}" if fragment else "")
        return f"{m['attr']}{html.escape(link, quote=True)}{m['q']}"
    return _NOTEBOOK_HREF.sub(page, page_html)


def _exporter_options() -> dict:
    """nbconvert's ``HTMLExporter`` options for a site page: the lab template, extended by :data:`_TEMPLATE`."""
    from jinja2 import DictLoader  # noqa: PLC0415

    return dict(template_name="lab", extra_loaders=[DictLoader({"dp_site.html.j2": _TEMPLATE})],
                template_file="dp_site.html.j2")


@functools.lru_cache(maxsize=1)
def _exporter():
    """nbconvert's HTML exporter with the site's template, one per process: its Jinja environment
    compiles the lab template's ~10 files once, not once per page (as `jupyter nbconvert` does for
    several notebooks; each page's resources are its own). Code cells skip bleach and BeautifulSoup
    (`helpers.course.site_code`, ~2/3 of the build's time): the template gets a placeholder for each,
    swapped for its HTML once BeautifulSoup is done; the pages are the same bytes."""
    from nbconvert import HTMLExporter  # noqa: PLC0415
    from nbconvert.filters.strings import clean_html  # noqa: PLC0415

    class SiteExporter(HTMLExporter):
        _settled: Optional[dict[str, str]] = None   # placeholder → a code cell's HTML, while a page renders
        _nonce = ""

        def default_filters(self):
            yield from super().default_filters()
            yield ("clean_html", self._clean_html)  # the last filter of a name wins

        def _clean_html(self, element):
            done = site_code.settled(element.decode() if isinstance(element, bytes) else str(element))
            if done is None or self._settled is None:
                return clean_html(element)
            # an element in its place: BeautifulSoup sees the text around it (whitespace it collapses) as before
            key = f"dp{self._nonce}n{len(self._settled)}"
            self._settled[key] = done.removesuffix("\n")
            return f'<dp-code id="{key}"></dp-code>' + done[len(self._settled[key]):]

        def from_notebook_node(self, nb, resources=None, **kw):
            self._settled, self._nonce = {}, secrets.token_hex(8)
            try:
                body, out = super().from_notebook_node(nb, resources=resources, **kw)
                pieces = re.split(rf'<dp-code id="(dp{self._nonce}n\d+)"></dp-code>', body)
                if sorted(pieces[1::2]) == sorted(self._settled):  # each placeholder once, as written
                    pieces[1::2] = [self._settled[k] for k in pieces[1::2]]
                    return "".join(pieces), out
            finally:
                self._settled = None
            # the page had a placeholder's text of its own (a 64-bit random nonce: never seen): the slow way
            return super().from_notebook_node(nb, resources=resources, **kw)

    return SiteExporter(**_exporter_options())


def render_page(chapters_: Sequence[Chapter], i: int, mathjax_url: Optional[str],
                mathjax_config: str = "") -> str:
    """The HTML of chapter `i`: nbconvert's lab template from the committed outputs, plus navigation
    and search (links to other notebooks are rewritten by `build`, which knows every page's ids)."""
    import nbformat  # noqa: PLC0415

    chapter = chapters_[i]
    nb = nbformat.read(chapter.source, as_version=4)
    nb.metadata["title"] = chapter.title
    _strip_widgets(nb)
    exporter = _exporter()
    resources = {"dp_nav_top": _nav(chapters_, i, "top"), "dp_nav_bottom": _nav(chapters_, i, "bottom"),
                 "dp_mathjax_url": mathjax_url, "dp_mathjax_config": mathjax_config,
                 "dp_css": _CSS + site_search.CSS,
                 "metadata": {"name": chapter.title, "path": str(chapter.source.parent)}}
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    return body


def _render_to(args: tuple[list[Chapter], int, Optional[str], str, Path]
               ) -> tuple[str, set[str], list[site_search.Section]]:
    """Render one page into `out`; (its name, its ids, its sections for the search index)."""
    chapters_, i, mathjax_url, mathjax_config_, out = args
    chapter = chapters_[i]
    text = render_page(chapters_, i, mathjax_url, mathjax_config_)
    (out / chapter.page).write_text(text, encoding="utf-8")
    return chapter.page, element_ids(text), site_search.sections(text, chapter.page, chapter.title)


_EXERCISE_HREF = re.compile(r"""href=(["'])\.\./exercises/([\w-]+\.ipynb)\1""")


def _link_exercises(page_html: str, exercises: Path) -> tuple[str, set[str]]:
    """Links to an exercise notebook (``href="../exercises/01_linear_exercises.ipynb"``) → the copy
    shipped with the site (``exercises/01_linear_exercises.ipynb``, to download and open in
    JupyterLab). Returns the page and the notebooks it links; a link to a notebook that does not
    exist is left for the link test."""
    linked: set[str] = set()

    def local(m: re.Match) -> str:
        if not (exercises / m[2]).is_file():
            return m.group(0)
        linked.add(m[2])
        return f"href={m[1]}exercises/{m[2]}{m[1]}"
    return _EXERCISE_HREF.sub(local, page_html), linked


def _rewrite_links(out: Path, pages: Sequence[str], targets: dict[str, set[str]], exercises: Path) -> None:
    """Second pass over the written `pages`, once every page's ids are known; then each exercise
    notebook a page links is copied into ``out/exercises/`` once."""
    shipped: set[str] = set()
    for name in pages:
        page = out / name
        text = page.read_text(encoding="utf-8")
        fixed, linked = _link_exercises(rewrite_notebook_links(text, targets), exercises)
        shipped |= linked
        if fixed != text:
            page.write_text(fixed, encoding="utf-8")
    if shipped:
        (out / "exercises").mkdir(exist_ok=True)
    for notebook in sorted(shipped):
        shutil.copy2(exercises / notebook, out / "exercises" / notebook)


def build(out: Path, notebooks: Path = ROOT / "notebooks", *, only: Optional[Sequence[str]] = None,
          jobs: int = 2, mathjax: Optional[Path] = None) -> list[Chapter]:
    """Render the site into `out`; returns the chapters written (all, or those whose file stem is in `only`).

    `only` keeps the navigation of the whole course (prev/next point at every chapter) and renders
    just those pages — for quick checks (the search index then covers those pages only). `jobs` > 1
    renders pages in parallel processes.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    all_chapters = chapters(Path(notebooks))
    if not all_chapters:
        raise FileNotFoundError(f"no NN_*.ipynb notebooks in {notebooks}")
    source = find_mathjax(mathjax)
    mathjax_url, font_config = copy_mathjax(source, out) if source is not None else (None, "")
    todo = [i for i, c in enumerate(all_chapters) if only is None or c.source.stem in set(only)]
    work = [(all_chapters, i, mathjax_url, font_config, out) for i in todo]
    if jobs > 1 and len(work) > 1:
        _exporter()  # imported and compiled once here: the forked workers inherit it
        with ProcessPoolExecutor(max_workers=min(jobs, len(work))) as pool:
            rendered = list(pool.map(_render_to, work))
    else:
        rendered = [_render_to(w) for w in work]
    targets = {c.page: element_ids((out / c.page).read_text(encoding="utf-8")) if (out / c.page).is_file() else set()
               for c in all_chapters}  # pages not rendered now (`only`): the ids of an earlier build, if any
    targets.update({name: ids for name, ids, _ in rendered})
    _rewrite_links(out, [name for name, _, _ in rendered], targets, Path(notebooks).parent / "exercises")
    site_search.write(out, [s for _, _, found in rendered for s in found])
    (out / "index.html").write_text(_index(all_chapters), encoding="utf-8")
    return [all_chapters[i] for i in todo]


def _course_title() -> str:
    readme = ROOT / "README.md"
    if readme.is_file():
        for line in readme.read_text(encoding="utf-8").splitlines():
            if line.startswith("# "):
                return _plain(line[2:])
    return "Dimensions and Parameters of Neural Networks"


def _index(chapters_: Sequence[Chapter]) -> str:
    def item(c: Chapter) -> str:
        return f'<li><a href="{c.page}">{html.escape(c.title)}</a> <span class="dp-file">{c.source.name}</span></li>'

    course = [c for c in chapters_ if not c.source.name.startswith("99")]
    reference = [c for c in chapters_ if c.source.name.startswith("99")]
    ref_html = ("<h2>Reference</h2>\n<ul>\n" + "\n".join(map(item, reference)) + "\n</ul>") if reference else ""
    return _INDEX.format(title=html.escape(_course_title()), chapters="\n".join(map(item, course)),
                         reference=ref_html, search=site_search.search_box(), search_css=site_search.CSS)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.course.site", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "_site", help="output folder (default: _site)")
    parser.add_argument("--notebooks", type=Path, default=ROOT / "notebooks")
    parser.add_argument("--jobs", type=int, default=2, help="pages rendered in parallel (default 2)")
    parser.add_argument("--mathjax", type=Path, default=None, help="a local MathJax 2.7 folder (with MathJax.js)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        written = build(args.out, args.notebooks, jobs=args.jobs, mathjax=args.mathjax)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    math = "local MathJax" if (args.out / STATIC_MATHJAX).exists() else "no MathJax found: formulas shown as TeX"
    print(f"{len(written)} pages + index.html in {args.out} ({time.perf_counter() - start:.1f} s; {math})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
