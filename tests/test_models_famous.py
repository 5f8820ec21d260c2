"""LeNet-5 and BERT-base: counts from independent formulas, published counts, shapes (meta and CPU)."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import formulas, shapes
from helpers.counting import count_params
from helpers.models.bert import Bert, BertConfig
from helpers.models.lenet import LeNet5

BERT_BASE = 109_482_240  # HF BertModel("bert-base-uncased"), pooler included


def test_lenet5_count_and_shapes():
    model = LeNet5()
    c1 = formulas.conv_params(1, 6, 5)
    c3 = formulas.conv_params(6, 16, 5)
    hw = shapes.pool_output_size(shapes.conv_output_size(
        shapes.pool_output_size(shapes.conv_output_size((32, 32), 5), 2), 5), 2)  # (5, 5)
    flat = 16 * hw[0] * hw[1]
    fc = formulas.linear_params(flat, 120) + formulas.linear_params(120, 84) + formulas.linear_params(84, 10)
    assert count_params(model) == c1 + c3 + fc == 61_706
    x = torch.randn(3, 1, 32, 32)
    assert tuple(model(x).shape) == (3, 10)
    assert tuple(model.features(x).shape) == (3, 16, *hw)


def test_lenet5_paper_count_is_60000_with_sparse_c3_and_trainable_subsampling():
    # LeCun et al. 1998: C3's connection table uses 60 of the 6×16 (input map, output map) pairs
    table_inputs = [3] * 6 + [4] * 6 + [4] * 3 + [6]
    c3_sparse = sum(n * 5 * 5 for n in table_inputs) + 16
    assert sum(table_inputs) == 60 and c3_sparse == 1516
    model = LeNet5()
    c1 = count_params(model.features[0])
    c5, f6 = count_params(model.classifier[1]), count_params(model.classifier[3])
    s2, s4 = 2 * 6, 2 * 16  # one coefficient and one bias per map
    assert c1 + s2 + c3_sparse + s4 + c5 + f6 == 60_000


def bert_formula(c: BertConfig) -> int:
    emb = (formulas.embedding_params(c.vocab_size, c.hidden_size)
           + formulas.embedding_params(c.max_position_embeddings, c.hidden_size)
           + formulas.embedding_params(c.type_vocab_size, c.hidden_size)
           + formulas.layernorm_params(c.hidden_size))
    layers = c.num_hidden_layers * formulas.transformer_layer_params(
        c.hidden_size, c.num_attention_heads, c.intermediate_size)
    pooler = formulas.linear_params(c.hidden_size, c.hidden_size) if c.add_pooler else 0
    return emb + layers + pooler


def test_bert_base_count_on_meta():
    with torch.device("meta"):
        model = Bert()
        hidden, pooled = model(torch.zeros(2, 16, dtype=torch.long))
    assert count_params(model) == BERT_BASE == bert_formula(BertConfig())
    assert tuple(hidden.shape) == (2, 16, 768) and tuple(pooled.shape) == (2, 768)


def test_bert_large_and_no_pooler_counts():
    for cfg in (BertConfig(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
                BertConfig(add_pooler=False)):
        with torch.device("meta"):
            assert count_params(Bert(cfg)) == bert_formula(cfg)


def test_small_bert_runs_on_cpu_with_padding():
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32)
    model = Bert(cfg).eval()
    ids = torch.randint(0, 50, (2, 6))
    pad = torch.zeros(2, 6, dtype=torch.bool)
    pad[1, 4:] = True
    hidden, pooled = model(ids, padding_mask=pad)
    assert tuple(hidden.shape) == (2, 6, 16) and tuple(pooled.shape) == (2, 16)
    changed = ids.clone()
    changed[1, 4:] = (changed[1, 4:] + 1) % 50  # padding tokens must not influence real tokens
    torch.testing.assert_close(model(changed, padding_mask=pad)[0][1, :4], hidden[1, :4])


@given(st.integers(1, 4), st.sampled_from([(32, 2), (48, 4), (64, 8)]), st.integers(8, 96), st.booleans())
@settings(max_examples=15)
def test_bert_matches_hugging_face_bert_count(layers, width_heads, intermediate, pooler):
    """Hugging Face's BertModel, built on meta from the same config (no weights), has the same count."""
    import transformers  # a dev dependency

    hidden, heads = width_heads
    ours = BertConfig(vocab_size=101, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                      intermediate_size=intermediate, max_position_embeddings=40, add_pooler=pooler)
    theirs = transformers.BertConfig(vocab_size=101, hidden_size=hidden, num_hidden_layers=layers,
                                     num_attention_heads=heads, intermediate_size=intermediate,
                                     max_position_embeddings=40, type_vocab_size=2)
    with torch.device("meta"):
        hf = transformers.BertModel(theirs, add_pooling_layer=pooler)
        assert count_params(Bert(ours)) == count_params(hf)
