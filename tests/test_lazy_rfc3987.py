"""helpers/_lazy_rfc3987.py, installed in .venv by `make startup-hook` (`make test`, `make lab`): ``import
nbformat`` no longer builds rfc3987-syntax's Earley parser, and jsonschema's IRI checks answer as the grammar does."""

from __future__ import annotations

import importlib.machinery
import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

ROOT = Path(__file__).resolve().parents[1]
PTH = Path(sysconfig.get_paths()["purelib"]) / "dp_lazy_rfc3987.pth"
CURATED = ["http://例え.jp/a?b#c", "https://user@[::1]:8080/p/a/t/h?q=1#f", "urn:isbn:0451450523", "mailto:a@b.c",
           "not an iri", "", "http://", "//host/only", "../relative/path", "?q", "#frag", "http://a b",
           "ftp://[v1.fe]/", "http://%zz", "file:///tmp/x", "a:", ":a", "http://host:port/"]
ALPHABET = st.sampled_from(list("ab:/?#[]@!$&'()*+,;=%-._~09AF ") + ["例", "é", "\u200b", "%20", "%zz"])
STRINGS = st.lists(ALPHABET, max_size=25).map("".join)


def test_the_startup_hook_is_installed():
    if not PTH.exists():
        pytest.fail(f"{PTH} is missing: run `make startup-hook`")
    assert str(ROOT / "helpers" / "_lazy_rfc3987.py") in PTH.read_text()


def test_import_nbformat_does_not_build_the_grammar_and_the_first_iri_check_does():
    code = """
import json, sys
import nbformat, jsonschema
before = sorted(m for m in sys.modules if m.startswith(("lark", "rfc3987_syntax.")))
checker = jsonschema.FormatChecker()
answers = [checker.conforms(s, "iri") for s in ("http://a/b", "no iri")]
after = "rfc3987_syntax.syntax_helpers" in sys.modules
print(json.dumps([before, answers, after]))
"""
    before, answers, after = json.loads(subprocess.run([sys.executable, "-c", code], check=True,
                                                        capture_output=True, text=True).stdout)
    assert before == [], f"imported before any IRI was checked: {before}"
    assert answers == [True, False] and after


@pytest.fixture(scope="module")
def grammar():
    """The grammar's own parser, built here from the package's grammar file (not through the module)."""
    import lark

    spec = importlib.machinery.PathFinder.find_spec("rfc3987_syntax")
    text = (Path(spec.origin).parent / "syntax_rfc3987.lark").read_text(encoding="utf-8")
    return lark.Lark(text, start=["iri", "iri_reference", "absolute_iri"], parser="earley")


def _valid(parser, term: str, value: str) -> bool:
    import lark

    try:
        parser.parse(value, start=term)
        return True
    except lark.exceptions.LarkError:
        return False


def _agree(grammar, value: str) -> None:
    import jsonschema

    checker = jsonschema.FormatChecker()
    assert checker.conforms(value, "iri") == _valid(grammar, "iri", value), value
    assert checker.conforms(value, "iri-reference") == _valid(grammar, "iri_reference", value), value


def test_jsonschemas_iri_checks_answer_as_the_grammar_on_chosen_strings(grammar):
    for value in CURATED:
        _agree(grammar, value)
    assert {_valid(grammar, "iri", v) for v in CURATED} == {True, False}  # both answers occur


@settings(max_examples=40)
@given(STRINGS)
def test_jsonschemas_iri_checks_answer_as_the_grammar(grammar, s):
    _agree(grammar, s)


def test_the_lazy_package_keeps_the_real_names_and_submodules():
    code = """
import json, rfc3987_syntax
from rfc3987_syntax.utils import load_grammar
lazy = rfc3987_syntax.__dict__.get("RFC3987_SYNTAX_PARSER_TYPE")
print(json.dumps([lazy, rfc3987_syntax.RFC3987_SYNTAX_PARSER_TYPE, rfc3987_syntax.parse("iri", "a:b").data,
                  callable(load_grammar), rfc3987_syntax.__path__ == [__import__("os").path.dirname(rfc3987_syntax.__file__)]]))
"""
    out = json.loads(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout)
    assert out == [None, "earley", "iri", True, True]


def test_another_version_is_imported_as_it_is(tmp_path):
    from helpers import _lazy_rfc3987 as lazy

    pkg = tmp_path / "rfc3987_syntax"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("X = 1\n")
    (tmp_path / "rfc3987_syntax-9.9.dist-info").mkdir()
    assert lazy._Finder().find_spec("rfc3987_syntax", [str(tmp_path)]) is None
    (tmp_path / f"rfc3987_syntax-{lazy.VERSION}.dist-info").mkdir()
    assert lazy._Finder().find_spec("rfc3987_syntax", [str(tmp_path)]) is not None
    assert lazy._Finder().find_spec("something_else", [str(tmp_path)]) is None
