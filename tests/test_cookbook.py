"""helpers.course.cookbook: the table covers every formula and shape rule, and every row is proven vs torch."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from helpers import formulas, shapes
from helpers.course import cookbook


def _public(module, suffix: str) -> set[str]:
    return {n for n in module.__all__ if n.endswith(suffix) and inspect.isfunction(getattr(module, n))}


def test_every_formula_and_shape_function_has_a_row():
    used = {e.formula.rpartition(".")[2] for e in cookbook.ENTRIES if e.formula is not None}
    used |= {e.shape_doc.rpartition(".")[2] for e in cookbook.ENTRIES if e.shape_doc is not None}
    # not torch.nn layers: decoder_lm_params is proven vs Hugging Face (test_decoder_lm_params),
    # lora_params vs peft (test_scale)
    models = {"decoder_lm_params", "lora_params"}
    assert _public(formulas, "_params") - models <= used, "a new formula needs a row in cookbook/entries.py"
    assert _public(shapes, "_output_size") <= used, "a new shape rule needs a row in cookbook/entries.py"


def test_table_text_comes_from_the_docstrings():
    html = cookbook.table()._repr_html_()
    text = str(cookbook.table())
    for entry in cookbook.ENTRIES:
        if entry.formula is not None:
            first = inspect.getdoc(getattr(formulas, entry.formula.removeprefix("helpers.formulas."))).split("\n\n")[0]
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
    entry = cookbook.ENTRIES[0]  # nn.Linear(10, 5) on (4, 10): 55 parameters, output (4, 5)
    assert entry.layer == "nn.Linear" and cookbook.prove([entry]).ok
    # Embedding's formula (10·5 = 50) and the "output = input" rule ((4, 10)) on the Linear: both wrong
    wrong = dataclasses.replace(entry, formula="helpers.formulas.embedding_params",
                                expected="helpers.course.cookbook.expected.same", cases=entry.cases[:1])
    proofs = cookbook.prove([wrong])
    assert not proofs.ok and (proofs[0].formula, proofs[0].torch) == (50, 55)
    assert (proofs[0].expected_shape, proofs[0].torch_shape) == ((4, 10), (4, 5))
    assert "mismatch" in proofs._repr_html_() and "MISMATCH" in str(proofs)


def test_every_dotted_path_of_the_rows_names_a_real_object():
    """The rows are data: each names its formula, shape rule, builder and count by dotted path."""
    assert cookbook.unresolved(cookbook.ENTRIES) == []
    assert {p.rpartition(".")[0] for e in cookbook.ENTRIES for p in e.paths} >= {
        "helpers.formulas", "helpers.shapes", "helpers.course.cookbook.expected", "helpers.course.cookbook.recipes"}


def test_a_path_that_names_nothing_is_reported_by_name():
    entry = cookbook.ENTRIES[0]
    typo = dataclasses.replace(entry, formula="helpers.formulas.linear_param",
                               cases=(dataclasses.replace(entry.cases[0], factory="helpers.no_such_module.Linear"),))
    wrong = cookbook.unresolved([entry, typo])
    assert len(wrong) == 2 and all(w.startswith("nn.Linear: a cookbook row names `helpers.") for w in wrong)
    assert "`helpers.formulas.linear_param`" in wrong[0] and "`helpers.no_such_module.Linear`" in wrong[1]
    with pytest.raises(LookupError, match="linear_param"):
        typo.formula_text


def test_first_paragraph_adds_the_formula_paragraph():
    assert "G·(H·in + H·H + 2·H)" in cookbook.first_paragraph(formulas.rnn_params, formula=True)
    assert cookbook.first_paragraph(formulas.linear_params, formula=True) == \
        "Parameters of ``nn.Linear``: ``out·in + out`` (``out·in`` without bias)."


def _headings(notebook: str) -> set[str]:
    import json
    from pathlib import Path

    nb = json.loads((Path(__file__).parents[1] / "notebooks" / f"{notebook}.ipynb").read_text())
    return {line.lstrip("#").strip() for cell in nb["cells"] if cell["cell_type"] == "markdown"
            for line in "".join(cell["source"]).splitlines() if line.startswith("#")}


def test_every_chapter_link_names_a_real_heading():
    linked = [*cookbook.ENTRIES, *cookbook.FAMOUS]
    assert sum(e.chapter is not None for e in cookbook.ENTRIES) >= len(cookbook.ENTRIES) - 1
    for entry in linked:
        if entry.chapter is not None:
            notebook, heading = entry.chapter
            assert heading in _headings(notebook), (entry, notebook)
            assert entry.link[1] == f"{notebook}.ipynb#{cookbook.heading_anchor(heading)}"
            assert " " not in entry.link[1]


def test_look_alike_rows_differ():
    by_layer = {e.layer: e for e in cookbook.ENTRIES}
    pools = [by_layer["nn.MaxPool1d / 2d / 3d"], by_layer["nn.AvgPool1d / 2d / 3d"]]
    assert pools[0].shape_text != pools[1].shape_text
    recurrent = [by_layer[n] for n in ("nn.RNN", "nn.GRU", "nn.LSTM")]
    assert len({e.formula_text for e in recurrent}) == 3 and len({e.shape_text for e in recurrent}) == 3


def test_worked_count_is_torchs():
    import torch

    from helpers.counting import count_params

    for entry in cookbook.ENTRIES:
        case = entry.cases[0]
        module = case.build()
        n = case.counted(module, [torch.randn(s) for s in case.inputs])
        assert entry.worked == f"{case.module_text} → {n:,} parameters"
        if case.count is None:
            assert n == count_params(module)


def test_rows_of_chapters_12_to_14_build_the_real_modules():
    """Each new row is proven on the module it names: torch's own where it exists, else the course's class
    or an independent reference (peft, Hugging Face)."""
    import torch.nn as nn

    by_layer = {e.layer: e for e in cookbook.ENTRIES}
    built = {layer: type(by_layer[layer].cases[0].build()).__name__ for layer in (
        "nn.RMSNorm", "RoPE (rotary position embedding)", "GQA attention (LlamaAttention)", "SwiGLU MLP (LlamaMLP)",
        "MoE FFN (SparseMoE, total vs active)", "LoRA-adapted nn.Linear (peft)", "ResNet basic block",
        "ResNet bottleneck", "MobileNetV2 inverted residual")}
    assert built == {"nn.RMSNorm": "RMSNorm", "RoPE (rotary position embedding)": "LlamaRotaryEmbedding",
                     "GQA attention (LlamaAttention)": "LlamaAttention", "SwiGLU MLP (LlamaMLP)": "LlamaMLP",
                     "MoE FFN (SparseMoE, total vs active)": "SparseMoE", "LoRA-adapted nn.Linear (peft)": "PeftModel",
                     "ResNet basic block": "BasicBlock", "ResNet bottleneck": "Bottleneck",
                     "MobileNetV2 inverted residual": "InvertedResidual"}
    assert isinstance(by_layer["nn.RMSNorm"].cases[0].build(), nn.RMSNorm)
    assert by_layer["GQA attention (LlamaAttention)"].cases[0].module_text == \
        "LlamaAttention(LlamaConfig(dim=64, n_heads=8, n_kv_heads=2))"
    # the MoE row proves total AND active: the active case counts what the router really picks
    moe = by_layer["MoE FFN (SparseMoE, total vs active)"]
    assert {c.count for c in moe.cases} == {None, "helpers.course.cookbook.recipes.routed_params"}


def test_famous_models_match_independent_references():
    """The table's counts are count_params of helpers' models; two of them are also compared with
    Hugging Face's implementations built on meta from their default configs."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, ResNetConfig, ResNetForImageClassification

    from helpers.counting import count_params

    from transformers import LlamaConfig, LlamaForCausalLM, MixtralConfig, MixtralForCausalLM

    from helpers.formulas import decoder_lm_params
    from helpers.widgets.planner import PLANNER_MODELS

    wanted = [f for f in cookbook.FAMOUS if f.name in ("GPT-2 small", "ResNet-50", "LeNet-5 (modern form)",
                                                       "Llama-3.2-1B", "Mixtral-8x7B (total)",
                                                       "Mixtral-8x7B (active per token)")]
    rows = {name: n for name, n, _, _ in cookbook.famous_models(wanted)}
    mixtral = PLANNER_MODELS["Mixtral-8x7B"]
    with torch.device("meta"):
        hf_gpt2 = count_params(GPT2LMHeadModel(GPT2Config()))
        hf_resnet50 = count_params(ResNetForImageClassification(ResNetConfig(num_labels=1000)))
        hf_llama_1b = count_params(LlamaForCausalLM(LlamaConfig(**cookbook.LLAMA_3_2_1B)))
        hf_mixtral = count_params(MixtralForCausalLM(MixtralConfig(**mixtral)))
    assert rows["GPT-2 small"] == hf_gpt2
    assert rows["ResNet-50"] == hf_resnet50
    assert rows["Llama-3.2-1B"] == hf_llama_1b
    assert rows["Mixtral-8x7B (total)"] == hf_mixtral
    # active: the total minus 6 of the 8 experts in each of the 32 layers (decoder_lm_params is proven vs HF)
    assert rows["Mixtral-8x7B (active per token)"] == decoder_lm_params(**mixtral)["active"] < hf_mixtral
    # LeNet-5 by hand: conv 1→6 5×5, conv 6→16 5×5, 400→120→84→10 (weights + biases)
    assert rows["LeNet-5 (modern form)"] == (6 * 25 + 6) + (16 * 6 * 25 + 16) + (400 * 120 + 120) + (120 * 84 + 84) + (84 * 10 + 10)
    html = cookbook.famous_models(wanted)._repr_html_()
    assert "GPT-2 small" in html and f"{hf_gpt2:,}" in html


def test_table_html_shows_every_column():
    """Issue 25: the table cut its shape and chapter columns. Every row has all six cells, the cells
    wrap (long names too), and the table sits in a box that scrolls sideways where it cannot fit."""
    from html.parser import HTMLParser

    class Cells(HTMLParser):
        def __init__(self):
            super().__init__()
            self.rows, self.styles = [], {}

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == "tr":
                self.rows.append([])
            elif tag in ("td", "th"):
                self.rows[-1].append(a.get("style") or "")
            elif tag in ("div", "table"):
                self.styles[tag] = a.get("style") or ""

    parsed = Cells()
    parsed.feed(cookbook.table()._repr_html_())
    assert len(parsed.rows) == len(cookbook.ENTRIES) + 1
    assert all(len(r) == 6 for r in parsed.rows)
    assert "overflow-x:auto" in parsed.styles["div"] and "table-layout:auto" in parsed.styles["table"]
    assert all("overflow-wrap:anywhere" in style and "white-space:normal" in style
               for row in parsed.rows[1:] for style in row[1:5])
