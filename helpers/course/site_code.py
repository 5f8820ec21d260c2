"""The site's code cells: pygments' HTML, byte for byte as bleach and BeautifulSoup would leave it, without running them.

nbconvert's lab template passes every code cell's highlighted source through ``clean_html`` (bleach: an
html5lib parse and serialisation of the cell), and nbconvert's HTML exporter then parses and re-writes
the whole page with BeautifulSoup (``html.parser``) to add alt texts and tab indexes. The highlighted
code is ~83% of a page's tags, so these two passes were most of ``make site``'s time.

For HTML in the narrow form pygments writes — ``<div class="…"><pre>``, then ``<span>`` /
``<span class="…">`` / ``</span>`` (balanced) and text, then ``</pre></div>`` — the result of both is
known: bleach keeps it as it is (allowed tags and attribute, text escaped the same way) and
BeautifulSoup re-writes only the spacing of a ``class`` value (a list of words to it). `settled`
returns that result, or None for anything outside the form (another tag or attribute, an entity other
than ``&amp; &lt; &gt;``, a control character or a non-character, a newline right after ``<pre>``,
which html5lib drops), which then goes the slow way. The tests compare `settled` with bleach +
BeautifulSoup on random code and on random HTML, and the site with and without it.
"""

from __future__ import annotations

import re
from typing import Optional

__all__ = ["settled"]

# what html5lib or bleach would change in text: C0/C1 controls (but tab and newline), surrogates,
# and Unicode's non-characters (U+FDD0-U+FDEF, U+xFFFE and U+xFFFF of every plane)
_BAD = "\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef" + "".join(
    chr(plane * 0x10000 + 0xFFFE) + chr(plane * 0x10000 + 0xFFFF) for plane in range(17))
_CLASS = r"[ A-Za-z0-9_-]*[A-Za-z0-9_-][ A-Za-z0-9_-]*"
# possessive (*+, ++): a text that does not match fails at once, without backtracking
_BLOCK = re.compile(rf'<div class="({_CLASS})"><pre>((?!\n)(?:<span>|<span class="{_CLASS}">|</span>'
                    rf'|&(?:amp|lt|gt);|[^<>&{_BAD}]++)*+)</pre></div>(\n?)')
_SPAN = re.compile(rf'<(/?)span(?: class="({_CLASS})")?>')


def _words(value: str) -> str:
    """A class attribute as BeautifulSoup writes it back: its words, one space apart."""
    return " ".join(value.split())


def settled(code_html: str) -> Optional[str]:
    """``str(BeautifulSoup(bleach-clean(code_html), "html.parser"))`` for pygments-form HTML (see the
    module's docstring), computed without either; None when `code_html` is not in that form."""
    block = _BLOCK.fullmatch(code_html)
    if block is None:
        return None
    depth = 0
    for span in _SPAN.finditer(block[2]):
        depth += -1 if span[1] else 1
        if depth < 0:
            return None
    if depth:
        return None
    body = _SPAN.sub(lambda m: f'<span class="{_words(m[2])}">' if m[2] is not None else m[0], block[2])
    return f'<div class="{_words(block[1])}"><pre>{body}</pre></div>{block[3]}'
