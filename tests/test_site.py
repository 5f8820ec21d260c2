"""`python -m helpers.course.site` / `make site`: every chapter page, with its title, figures and navigation, offline.

Builds the whole site (all notebooks, committed outputs, nothing executed: ~6 s on 2 idle cores) into
a temporary folder once for the module; crawls every page's links and assets offline, runs the search
ranking with node, and (Chromium via Playwright) types a query into the search box of the site served
on 127.0.0.1, checking that nothing the pages load answers 404.
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
import re
import shutil
import subprocess
import threading
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers.course import site, site_code, site_mathjax, site_search
from tests.test_browser import ARTIFACTS, CHROMIUM_ARGS, chromium  # noqa: F401 - the Chromium fixture

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
    """The notebook's first markdown heading, as plain text (computed here, not by helpers.course.site)."""
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
    local = site_mathjax.find_mathjax()
    pages = [p.read_text(encoding="utf-8") for p in built.glob("[0-9][0-9]*_*.html")]
    if local is None:
        assert not (built / site_mathjax.STATIC_MATHJAX).exists()
        assert not any("MathJax.js" in p for p in pages)
    else:
        assert (built / site_mathjax.STATIC_MATHJAX / "MathJax.js").is_file()
        config, parts = site_mathjax.mathjax_config(local)
        assert all((built / site_mathjax.STATIC_MATHJAX / part).exists() for part in parts if (local / part).exists())
        assert (built / site_mathjax.STATIC_MATHJAX / "config" / f"{config}.js").is_file()
        assert all(f"config={config}" in p for p in pages)
        assert all(f'src="{site_mathjax.STATIC_MATHJAX}/MathJax.js' in p for p in pages)


def test_missing_notebooks_folder_is_an_error(tmp_path, capsys):
    assert site.main(["--out", str(tmp_path / "out"), "--notebooks", str(tmp_path)]) == 2
    assert "no NN_*.ipynb" in capsys.readouterr().err


# --------------------------------------------------------------------- links and assets, offline
class _Refs(HTMLParser):
    """Every reference of a page: href/src/data-index attributes, url(…) in styles, and element ids."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.refs: list[tuple[str, str]] = []   # (tag.attribute, value)
        self.ids: set[str] = set()
        self._style = False

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if value is None:
                continue
            if name == "id":
                self.ids.add(value)
            elif name in ("href", "src", "data-index"):
                self.refs.append((f"{tag}.{name}", value))
            elif name == "style":
                self.refs += [(f"{tag}.style", u) for u in _css_urls(value)]
        self._style = tag == "style"

    def handle_endtag(self, tag):
        self._style = False

    def handle_data(self, data):
        if self._style:
            self.refs += [("style", u) for u in _css_urls(data)]


def _css_urls(css: str) -> list[str]:
    return [m.strip("'\" ") for m in re.findall(r"url\(([^)]*)\)", css)]


def _parse(page: Path) -> _Refs:
    refs = _Refs()
    refs.feed(page.read_text(encoding="utf-8"))
    return refs


def _has_target(ids: set[str], fragment: str) -> bool:
    """What a browser does with #fragment: an element whose id is the fragment, or the decoded one."""
    return fragment in ids or unquote(fragment) in ids or fragment in ("", "top")


@pytest.fixture(scope="module")
def parsed(built) -> dict[str, _Refs]:
    """Every page of the site parsed once (two tests read them: ~0.7 s a pass)."""
    return {p.name: _parse(p) for p in sorted(built.glob("*.html"))}


def test_every_link_and_asset_resolves(built, parsed):
    missing = []
    for name, refs in parsed.items():
        for where, value in refs.refs:
            url = urlsplit(value)
            if url.scheme in ("data", "mailto", "javascript"):
                continue
            if url.scheme or value.startswith("//"):
                # the web may be linked to (papers, docs), never loaded from
                if not where.startswith("a."):
                    missing.append(f"{name}: {where}={value} loads from the network")
                continue
            target = (built / name).parent / unquote(url.path) if url.path else built / name
            if not target.is_file():
                missing.append(f"{name}: {where}={value} → no file {target.relative_to(built)}")
            elif url.fragment and target.suffix == ".html":
                ids = parsed[target.name].ids if target.name in parsed else _parse(target).ids
                if not _has_target(ids, url.fragment):
                    missing.append(f"{name}: {where}={value} → no id {url.fragment!r} in {target.name}")
    assert not missing, f"{len(missing)} broken references:\n" + "\n".join(missing[:40])
    hrefs = [v for refs in parsed.values() for w, v in refs.refs if w == "a.href"]
    # chapter notebooks → their pages; exercise notebooks are shipped beside the site to download
    assert not [h for h in hrefs if ".ipynb" in h and not h.startswith("exercises/")], \
        "links to notebooks must point at their pages"
    assert any(h.startswith("exercises/") for h in hrefs), "chapter pages link exercise notebooks shipped in exercises/"
    # the cookbook's chapter column: one link per row that names a chapter section, each to a page
    cookbook = [v for w, v in parsed["99_cookbook.html"].refs if w == "a.href" and re.match(r"\d\d\w*\.html#", v)]
    assert len(cookbook) >= 30


def test_notebook_links_are_rewritten_to_page_ids():
    targets = {"06_lstm_gru.html": {"3-%C2%B7-Exact-counts", "Summary"}, "99_cookbook.html": {"x"}}
    page = ("<a href=\"06_lstm_gru.ipynb#3-·-Exact-counts\">a</a> <a href='./06_lstm_gru.ipynb'>b</a> "
            "<a href=\"06_lstm_gru.ipynb#Summary\">c</a> <a href=\"07_embeddings.ipynb\">d</a> "
            "<a href=\"../exercises/06_lstm_gru_exercises.ipynb\">e</a> <a href=\"06_lstm_gru.ipynb#Nope\">f</a>")
    out = site.rewrite_notebook_links(page, targets)
    assert 'href="06_lstm_gru.html#3-%C2%B7-Exact-counts"' in out          # JupyterLab anchor → nbconvert id
    assert "href='06_lstm_gru.html'" in out and 'href="06_lstm_gru.html#Summary"' in out
    assert 'href="07_embeddings.ipynb"' in out                             # no such page: left alone
    assert 'href="../exercises/06_lstm_gru_exercises.ipynb"' in out        # not a course page
    assert 'href="06_lstm_gru.html#Nope"' in out                           # page found, heading not: kept


# ------------------------------------------------------------------- code cells without bleach/soup
def _bleach_then_soup(code_html: str) -> str:
    """What nbconvert does to a code cell's highlighted HTML: bleach (clean_html), then BeautifulSoup."""
    from bs4 import BeautifulSoup  # noqa: PLC0415
    from nbconvert.filters.strings import clean_html  # noqa: PLC0415

    return str(BeautifulSoup(clean_html(code_html), features="html.parser"))


@functools.lru_cache(maxsize=1)
def _highlight():
    from nbconvert.filters.highlight import Highlight2HTML  # noqa: PLC0415

    return Highlight2HTML(pygments_lexer="ipython3")


_CODE = st.lists(st.sampled_from(["x = 1", "def f(a, b='s'):", "    return a & b < 3 > 2", '"q"', "'it''s'",
                                  "# é ∑ 😀 \t", "%timeit f()", "!ls", "x[1:2]", "@dec", "\n", "  ", "&amp;",
                                  "<b>", "\r\n", "\x0c", "\x00", "\ufffe", "lambda: 0"]), max_size=8).map("\n".join)


@settings(max_examples=60, deadline=None)
@given(st.one_of(_CODE, st.text(max_size=40)))
def test_settled_code_is_what_bleach_and_soup_make_of_it(source):
    """site_code.settled(pygments' HTML of any code) is exactly bleach + BeautifulSoup's result, or None."""
    highlighted = _highlight()(source)
    done = site_code.settled(highlighted)
    assert done is None or done == _bleach_then_soup(highlighted), highlighted
    if all(c == "\n" or c.isprintable() for c in source) and "\ufffe" not in source:
        assert done is not None, f"plain code must take the quick way: {highlighted!r}"


_PIECES = st.sampled_from(['<span>', '<span class="k">', '<span class=" a  b ">', '</span>', '<b>', '</pre>',
                           '<span class="">', "<span id='x'>", 'x', ' ', '\n', '\t', '"', "'", '&amp;', '&lt;',
                           '&gt;', '&quot;', '&#39;', '&nbsp;', '&', '>', '\r', '\x00', '\x0c', '\x85', 'é',
                           '\ufdd0', '\U0001ffff', '😀'])


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(['<div class="highlight hl-ipython3"><pre>', '<div class=" highlight x"><pre>',
                        '<div class="a"><pre>\n', '<div><pre>']),
       st.lists(_PIECES, max_size=12).map("".join), st.sampled_from(["</pre></div>\n", "</pre></div>", "</pre>"]))
def test_settled_html_is_what_bleach_and_soup_make_of_it(head, body, tail):
    """On HTML in and out of pygments' form: settled is bleach + BeautifulSoup's result, or None."""
    code_html = head + body + tail
    done = site_code.settled(code_html)
    assert done is None or done == _bleach_then_soup(code_html), code_html


def test_settled_takes_the_quick_way_on_pygments_form():
    code_html = '<div class=" highlight hl-ipython3"><pre><span></span><span class="n">a</span> &amp;&lt; "b"\n</pre></div>\n'
    assert site_code.settled(code_html) == _bleach_then_soup(code_html) == code_html.replace('" highlight', '"highlight')


def test_page_is_the_same_bytes_as_with_plain_nbconvert(monkeypatch):
    """A page rendered with the site's exporter (code cells the quick way) and with nbconvert's own."""
    from nbconvert import HTMLExporter  # noqa: PLC0415

    chapters = site.chapters(ROOT / "notebooks")
    i = next(k for k, c in enumerate(chapters) if c.source.stem == "06b_sequence_models")
    quick = site.render_page(chapters, i, "x/MathJax.js")
    plain = HTMLExporter(**site._exporter_options())
    monkeypatch.setattr(site, "_exporter", lambda: plain)
    assert site.render_page(chapters, i, "x/MathJax.js") == quick
    assert quick.count('<div class="highlight hl-ipython3">') >= 5 and "dp-code" not in quick


# ----------------------------------------------------------------------------------------- search
def _node(script: str, *args: str) -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the search ranking is checked by the browser test only")
    done = subprocess.run([node, "-e", script, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


_SEARCH = """
const fs = require("fs"), api = require(process.argv[1]);
const window = {}; eval(fs.readFileSync(process.argv[2], "utf8"));
const hits = api.search(window.dpSearchIndex, process.argv[3], 5);
console.log(JSON.stringify(hits.map(h => h.doc)));
"""


@pytest.mark.parametrize("query", ["LSTM parameters", "lstm parameter", "nn.LSTM Parameters"])
def test_search_finds_chapter_06_and_the_cookbook(built, query):
    js = Path(site_search.__file__).with_suffix(".js")
    top = json.loads(_node(_SEARCH, str(js), str(built / site_search.INDEX_JS), query))
    pages = [doc[0] for doc in top]
    assert "06_lstm_gru.html" in pages and "99_cookbook.html" in pages, top


def test_search_index_points_at_real_sections(built, parsed):
    text = (built / site_search.INDEX_JS).read_text(encoding="utf-8")
    index = json.loads(text.removeprefix("window.dpSearchIndex = ").rstrip().rstrip(";"))
    assert {d[0] for d in index["docs"]} == {nb.with_suffix(".html").name for nb in NOTEBOOKS}
    ids = {name: refs.ids for name, refs in parsed.items() if re.match(r"\d\d\w*_", name)}
    for page, anchor, title, heading, _ in index["docs"]:
        assert anchor == "" or anchor in ids[page], (page, anchor)
        assert heading
    assert len(index["lengths"]) == len(index["docs"])
    # every posting is (doc, tf) with tf ≥ 1, and the doc lengths are the sums of the tfs
    sums = [0] * len(index["docs"])
    for postings in index["terms"].values():
        for d, tf in zip(postings[::2], postings[1::2]):
            assert tf >= 1
            sums[d] += tf
    assert sums == index["lengths"]


_TERMS = """
const api = require(process.argv[1]);
require("readline").createInterface({input: process.stdin})
    .on("line", line => console.log(JSON.stringify(JSON.parse(line).map(api.terms))));
"""

_WORDS = st.sampled_from(["LSTM", "parameters", "biases", "entries", "class", "bias", "gates", "İstanbul",
                          "Kelvin", "ß", "nn.Conv2d(3,", "x²", "ﬁlters", "—", "σ(Wx+b)", "boxes", "matches"])


@pytest.fixture(scope="module")
def js_terms():
    """The JavaScript `terms`, in one node process for every example: a JSON list of texts a line in
    (ASCII-escaped JSON: no newline inside), their terms a line out (a node start is ~0.3 s)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    js = Path(site_search.__file__).with_suffix(".js")
    proc = subprocess.Popen([node, "-e", _TERMS, str(js)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, encoding="utf-8")

    def terms(texts: list[str]) -> list[list[str]]:
        proc.stdin.write(json.dumps(texts) + "\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        assert line, f"node stopped: {proc.stderr.read()}"
        return json.loads(line)
    try:
        yield terms
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)


@settings(max_examples=5, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=30), st.lists(_WORDS, max_size=8).map(" ".join)), min_size=50, max_size=50))
def test_python_and_javascript_terms_agree(js_terms, texts):
    """The index is written with site_search.terms and queried with the JavaScript terms: same words."""
    assert js_terms(texts) == [site_search.terms(t) for t in texts]


def test_stem_examples():
    assert [site_search.stem(w) for w in ("parameters", "biases", "bias", "entries", "class", "lstm", "gates")] == \
        ["parameter", "bias", "bias", "entry", "class", "lstm", "gate"]


# ------------------------------------------------------------------------------ in a real browser
@pytest.fixture(scope="module")
def served(built):
    """The built site on a local HTTP server (127.0.0.1, a free port): what a reader's browser sees,
    with every request's status (file:// would hide a 404)."""
    handler = functools.partial(_QuietHandler, directory=str(built))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # noqa: D102 - no request log in the test output
        pass


@pytest.fixture(scope="module")
def site_page(chromium):
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        failures: list[str] = []
        page.on("response", lambda r: r.status >= 400 and failures.append(f"{r.status} {r.url}"))
        # a request the page itself abandoned by navigating on (a font MathJax was still fetching on a loaded
        # machine) is not a missing file: those come back as responses >= 400 above
        page.on("requestfailed", lambda r: r.url.startswith("http") and "ERR_ABORTED" not in (r.failure or "")
                and failures.append(f"failed ({r.failure}) {r.url}"))
        page.failures = failures
        try:
            yield page
        finally:
            browser.close()


_MATHJAX_DONE = ("() => window.MathJax && MathJax.Hub && MathJax.Hub.queue.pending === 0 && "
                 "document.querySelectorAll('.MathJax, .MathJax_CHTML').length > 0")


def test_browser_search_box_finds_chapter_06_and_the_cookbook(served, site_page, built):
    page = site_page
    page.goto(f"{served}/06_lstm_gru.html")
    if site_mathjax.find_mathjax() is not None:
        page.wait_for_function(_MATHJAX_DONE)  # formulas typeset with the local MathJax, fonts found
    page.locator("#dp-search").press_sequentially("LSTM parameters", delay=20)
    page.wait_for_selector("#dp-search-results a")
    hrefs = page.eval_on_selector_all("#dp-search-results a", "els => els.map(a => a.getAttribute('href'))")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "site_search.png"))
    top = [h.split("#")[0] for h in hrefs[:5]]
    assert "06_lstm_gru.html" in top and "99_cookbook.html" in top, hrefs
    # the cookbook's result opens its section; its LSTM row links to chapter 06's section
    page.locator("#dp-search-results a[href^='99_cookbook.html']").first.click()
    page.wait_for_url("**/99_cookbook.html*")
    page.locator("tr#nn-lstm-parameters-and-shapes a").click()
    page.wait_for_url("**/06_lstm_gru.html#*")
    assert page.evaluate("document.querySelector(':target') !== null"), page.url
    assert page.evaluate("document.querySelector(':target').textContent").startswith("3 · Exact parameter counts")
    assert not page.failures, page.failures  # nothing 404s: MathJax's fonts, the index, the pages


def test_browser_cookbook_table_shows_every_column(served, site_page):
    """Issue 25: the cookbook's table cut its shape and chapter columns. On the site every column's
    header lies inside the output box at a wide window, and at a narrow one the box scrolls."""
    page = site_page
    boxes = ("() => { const t = document.querySelector('table'); const box = t.closest('.dp-wide-table');"
             " const r = box.getBoundingClientRect();"
             " return {right: r.right, scroll: box.scrollWidth > box.clientWidth,"
             " overflow: getComputedStyle(box).overflowX,"
             " ths: [...t.querySelectorAll('th')].map(th => [th.textContent, th.getBoundingClientRect().right])}; }")
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(f"{served}/99_cookbook.html")
    wide = page.evaluate(boxes)
    assert [name for name, _ in wide["ths"]] == ["layer", "parameters", "torch call → count", "shapes", "helpers",
                                                 "chapter"]
    assert all(right <= wide["right"] + 1 for _, right in wide["ths"]), wide
    page.set_viewport_size({"width": 700, "height": 1000})
    narrow = page.evaluate(boxes)
    assert narrow["overflow"] == "auto" and narrow["scroll"], narrow  # the rest is a sideways scroll away
    page.set_viewport_size({"width": 1400, "height": 1000})
