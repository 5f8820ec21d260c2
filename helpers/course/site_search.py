"""The course site's offline search: an index of every page's sections, written at build time.

`helpers.course.site` renders the pages; this module cuts each rendered page into sections (one per
heading with an ``id``, the anchor nbconvert gives markdown headings), and writes

* ``_static/search-index.js`` — ``window.dpSearchIndex = {docs, lengths, avgdl, terms}``: one doc per
  section (page, anchor, page title, heading, snippet) and an inverted index term → (doc, tf) pairs;
* ``_static/search.js`` — `site_search.js` beside this module: BM25 ranking (k1 = 1.2, b = 0.75) of
  the query's terms, the last one also as a prefix, and the search box's wiring.

Nothing is fetched from a network: the index is a plain script, loaded when the box is first used,
so the search also works from ``file://``. Terms are runs of ASCII letters and digits, lower-cased,
with a small plural stemmer (``parameters`` → ``parameter``); `terms` here and ``terms`` in the
JavaScript must agree (the tests run both on the same texts).
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Sequence

__all__ = ["Section", "tokenize", "stem", "terms", "sections", "build_index", "write", "search_box",
           "SEARCH_JS", "INDEX_JS"]

SEARCH_JS = "_static/search.js"
INDEX_JS = "_static/search-index.js"
HEADING_WEIGHT = 3     # a term in a section's heading counts as this many occurrences
SNIPPET_CHARS = 160
_SKIP_CLASSES = {"dp-nav", "dp-search", "anchor-link", "jp-InputPrompt", "jp-OutputPrompt"}


def tokenize(text: str) -> list[str]:
    """Runs of ASCII letters and digits, lower-cased: ``"nn.LSTM(20, 64)"`` → ``nn lstm 20 64``."""
    return re.findall(r"[a-z0-9]+", text.lower())


def stem(word: str) -> str:
    """English plurals to singular, a few rules only: parameters → parameter, biases → bias,
    entries → entry; words ending in ss/us/is/as are kept (bias, class)."""
    n = len(word)
    if n > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if n > 4 and word.endswith(("sses", "xes", "ches", "shes", "ses")):
        return word[:-2]
    if n > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is", "as")):
        return word[:-1]
    return word


def terms(text: str) -> list[str]:
    """The index terms of `text`: `tokenize`, then `stem`."""
    return [stem(w) for w in tokenize(text)]


@dataclass
class Section:
    """One searchable section of a page: from a heading (its ``id`` is `anchor`) to the next one."""

    page: str            # "06_lstm_gru.html"
    anchor: str          # the heading's id ("" for text before the first heading)
    title: str           # the page's title
    heading: str         # the section's heading, as plain text
    text: list[str] = field(default_factory=list)        # every visible text of the section
    paragraphs: list[str] = field(default_factory=list)  # the text of its <p> elements, for the snippet

    @property
    def snippet(self) -> str:
        first = next((p for p in self.paragraphs if p), "")
        return first if len(first) <= SNIPPET_CHARS else first[:SNIPPET_CHARS].rsplit(" ", 1)[0] + " …"


class _Sections(HTMLParser):
    """Cuts a rendered page into `Section` s: headings with an id start one; scripts, styles, the
    navigation, prompts and anchor links are left out."""

    def __init__(self, page: str, title: str) -> None:
        super().__init__(convert_charrefs=True)
        self.page, self.title = page, title
        self.found = [Section(page, "", title, title)]
        self.skip: list[str] = []            # open tags of a skipped element (script, nav, …)
        self.heading: list[str] | None = None
        self.heading_tag = ""
        self.paragraph: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        classes = set((a.get("class") or "").split())
        if self.skip:
            if tag == self.skip[0]:
                self.skip.append(tag)
            return
        if tag in ("head", "script", "style", "nav") or classes & _SKIP_CLASSES:
            self.skip.append(tag)
            return
        if re.fullmatch(r"h[1-6]", tag) and a.get("id"):
            self.heading, self.heading_tag = [], tag
            self.found.append(Section(self.page, a["id"] or "", self.title, ""))
        elif tag == "p" and self.heading is None:
            self.paragraph = []

    def handle_endtag(self, tag: str) -> None:
        if self.skip:
            if tag == self.skip[0]:
                self.skip.pop()
            return
        if self.heading is not None and tag == self.heading_tag:
            self.found[-1].heading = " ".join("".join(self.heading).split())
            self.heading = None
        elif tag == "p" and self.paragraph is not None:
            self.found[-1].paragraphs.append(" ".join("".join(self.paragraph).split()))
            self.paragraph = None

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if self.heading is not None:
            self.heading.append(data)
            return
        self.found[-1].text.append(data)
        if self.paragraph is not None:
            self.paragraph.append(data)


def sections(page_html: str, page: str, title: str) -> list[Section]:
    """The sections of one rendered page (empty ones dropped)."""
    parser = _Sections(page, title)
    parser.feed(page_html)
    parser.close()
    return [s for s in parser.found if s.anchor or "".join(s.text).strip()]


def build_index(found: Sequence[Section]) -> dict:
    """The index the JavaScript ranks: ``docs``, ``lengths``, ``avgdl`` and ``terms`` (postings)."""
    docs, lengths, postings = [], [], {}
    for i, s in enumerate(found):
        counts: dict[str, int] = {}
        for t in terms(s.heading) * HEADING_WEIGHT + terms(" ".join(s.text)):
            counts[t] = counts.get(t, 0) + 1
        docs.append([s.page, s.anchor, s.title, s.heading, s.snippet])
        lengths.append(sum(counts.values()))
        for t, tf in counts.items():
            postings.setdefault(t, []).extend((i, tf))
    avgdl = sum(lengths) / len(lengths) if lengths else 1.0
    return {"docs": docs, "lengths": lengths, "avgdl": round(avgdl, 3), "terms": dict(sorted(postings.items()))}


def write(out: Path, found: Sequence[Section]) -> dict:
    """Write ``_static/search-index.js`` and ``_static/search.js`` into the site `out`; returns the index."""
    index = build_index(found)
    target = Path(out) / INDEX_JS
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = json.dumps(index, ensure_ascii=False, separators=(",", ":"))
    target.write_text(f"window.dpSearchIndex = {payload};\n", encoding="utf-8")
    shutil.copy2(Path(__file__).with_suffix(".js"), Path(out) / SEARCH_JS)
    return index


#: the search box's CSS (inside the navigation bar, results in a drop-down list)
CSS = """
.dp-search { position: relative; flex: 0 1 22em; }
.dp-search input { width: 100%; box-sizing: border-box; padding: 0.25em 0.5em; font: 14px sans-serif;
  border: 1px solid #d0d7de; border-radius: 4px; }
.dp-search ul { position: absolute; z-index: 10; left: 0; right: 0; margin: 2px 0 0 0; padding: 0.3em 0;
  list-style: none; background: #fff; border: 1px solid #d0d7de; border-radius: 4px; max-height: 70vh;
  overflow-y: auto; box-shadow: 0 4px 12px rgba(0,0,0,0.12); min-width: 24em; }
.dp-search li { padding: 0.3em 0.7em; font: 14px/1.35 sans-serif; }
.dp-search li a { display: block; }
.dp-search .dp-search-page { display: block; color: #57606a; font-size: 12px; }
.dp-search .dp-search-none { color: #57606a; }
"""


def search_box() -> str:
    """The search box's HTML (input + results list + the script), for every page and the index."""
    return (f'<div class="dp-search" role="search"><input id="dp-search" type="search" '
            f'placeholder="Search the course (e.g. LSTM parameters)" aria-label="Search the course" '
            f'autocomplete="off" data-index="{INDEX_JS}"><ul id="dp-search-results" hidden></ul>'
            f'<script src="{SEARCH_JS}"></script></div>')
