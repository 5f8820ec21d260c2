"""helpers.cookbook: the table covers every formula and shape rule, and every row is proven vs torch."""

from __future__ import annotations

import inspect

from helpers import cookbook, formulas, shapes


def _public(module, suffix: str) -> set[str]:
    return {n for n in module.__all__ if n.endswith(suffix) and inspect.isfunction(getattr(module, n))}


def test_every_formula_and_shape_function_has_a_row():
    used = {e.formula.__name__ for e in cookbook.ENTRIES if e.formula is not None}
    used |= {e.shape_doc.__name__ for e in cookbook.ENTRIES if e.shape_doc is not None}
    # whole models are not torch.nn layers: decoder_lm_params is proven vs Hugging Face in test_decoder_lm_params
    models = {"decoder_lm_params"}
    assert _public(formulas, "_params") - models <= used, "a new formula needs a row in helpers.cookbook.ENTRIES"
    assert _public(shapes, "_output_size") <= used, "a new shape rule needs a row in helpers.cookbook.ENTRIES"


def test_table_text_comes_from_the_docstrings():
    html = cookbook.table()._repr_html_()
    text = str(cookbook.table())
    for entry in cookbook.ENTRIES:
        if entry.formula is not None:
            first = inspect.getdoc(entry.formula).split("\n\n")[0]
            assert " ".join(first.split()) in text
        assert entry.title in text and entry.title in html
    for title in ("nn.LSTM parameters", "nn.GRU parameters", "nn.Conv1d / nn.Conv2d / nn.Conv3d parameters",
                  "nn.MultiheadAttention parameters"):
        assert title in html  # findable with Ctrl-F


def test_every_case_agrees_with_torch():
    proofs = cookbook.prove()
    assert proofs.ok, [p for p in proofs if not p.ok]
    assert {p.layer for p in proofs} == {e.layer for e in cookbook.ENTRIES}
    assert len(proofs) == sum(len(e.cases) for e in cookbook.ENTRIES)


def test_a_wrong_rule_is_reported_not_hidden():
    entry = cookbook.ENTRIES[0]
    wrong = cookbook.Entry(entry.layer, lambda *a, **k: entry.formula(*a, **k) + 1, entry.shape_doc,
                           lambda case, x: (0,), entry.cases[:1])
    proofs = cookbook.prove([wrong])
    assert not proofs.ok and not proofs[0].ok
    assert "mismatch" in proofs._repr_html_() and "MISMATCH" in str(proofs)


def test_first_paragraph_adds_the_formula_paragraph():
    assert "G·(H·in + H·H + 2·H)" in cookbook.first_paragraph(formulas.rnn_params, formula=True)
    assert cookbook.first_paragraph(formulas.linear_params, formula=True) == \
        "Parameters of ``nn.Linear``: ``out·in + out`` (``out·in`` without bias)."
