"""The cookbook table: every layer's parameter formula and shape rule, generated and proven (notebook 99).

The text of the table is not written here: it is the first paragraph of each formula's docstring
in `helpers.formulas` (and its ``Shapes:`` paragraph) and of each output-size function in
`helpers.shapes`. What IS written, as data, is per layer a few configurations to prove it on
(`entries`): `prove()` builds each real ``torch.nn`` module on the CPU, compares the formula with
`helpers.counting.count_params`, runs one forward pass and compares the output shape with the
shape rule (computed with `helpers.shapes` for conv/pool, by the docstring's rule otherwise).
Layers that are not one ``torch.nn`` call (chapters 12–14: GQA attention, SwiGLU, MoE, ResNet and
MobileNetV2 blocks, LoRA, RoPE) name what builds them (`Case.factory`, by dotted path: a course class
of `helpers.models`, or a recipe around peft / Hugging Face) and, where the formula is not the
plain parameter count, what it is compared with (`Case.count`: LoRA's trainable, MoE's routed).

    >>> from helpers.course.cookbook import table, prove
    >>> table()            # HTML in Jupyter, aligned text in a terminal
    >>> proofs = prove()   # one row per configuration; proofs.ok is True when all agree

One row per layer, titled "nn.LSTM parameters and shapes" etc., so Ctrl-F "LSTM parameters" finds it.
One job per module:

    entry       `Entry` (a row) and `Case` (a configuration), dotted paths resolved on use, `unresolved`
    entries     ENTRIES, the rows: data only (dotted paths, literals)
    expected    the shape rules ``(case, input shapes) → output shape(s)`` the rows name
    recipes     modules that are not one torch.nn call (MoE, LoRA, Hugging Face RoPE) and their counts
    docstrings  text read from docstrings (first paragraph, ``Shapes:`` paragraph) and call text
    render      HTML pieces (chapter links, wide tables, shape text)
    table       `table()`: the rows as HTML / text
    proof       `prove()`: every configuration vs torch
    famous      `famous_models()`: famous models counted on meta, beside their published figures

Importing this package imports no torch (the rows resolve their paths only when drawn or proven).
"""

from helpers.course.cookbook.docstrings import call_text, first_paragraph, shapes_paragraph
from helpers.course.cookbook.entries import ENTRIES
from helpers.course.cookbook.entry import Case, Entry, resolve, unresolved
from helpers.course.cookbook.famous import FAMOUS, LLAMA_3_2_1B, Famous, FamousTable, active_params, famous_models
from helpers.course.cookbook.proof import Proof, ProofTable, prove
from helpers.course.cookbook.render import heading_anchor
from helpers.course.cookbook.table import CookbookTable, table

__all__ = ["Case", "Entry", "ENTRIES", "resolve", "unresolved", "first_paragraph", "shapes_paragraph",
           "heading_anchor", "call_text", "table", "CookbookTable", "prove", "Proof", "ProofTable", "Famous",
           "FAMOUS", "FamousTable", "famous_models", "active_params", "LLAMA_3_2_1B"]
