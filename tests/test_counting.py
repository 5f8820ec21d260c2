"""helpers.counting: totals equal torch, tied tensors count once, rows sum to the total."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from helpers.counting import bytes_for, count_buffers, count_params, param_table


class TiedLM(nn.Module):
    def __init__(self, vocab: int, dim: int, tie: bool) -> None:
        super().__init__()
        self.wte = nn.Embedding(vocab, dim)
        self.ln = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)
        if tie:
            self.head.weight = self.wte.weight


@given(st.integers(1, 300), st.integers(1, 32), st.booleans())
def test_tied_weights_count_once_and_rows_sum_to_total(vocab, dim, tie):
    model = TiedLM(vocab, dim, tie)
    table = param_table(model)
    naive = sum(t.numel() for t in model.state_dict().values())  # counts the tied matrix twice
    expected = vocab * dim + 2 * dim + (0 if tie else vocab * dim)
    assert count_params(model) == table.total == sum(r.numel for r in table) == expected
    assert naive == vocab * dim * 2 + 2 * dim
    tied_rows = [r for r in table if r.tied_with]
    if tie:
        assert [(r.name, r.tied_with) for r in tied_rows] == [("wte.weight", ("head.weight",))]
        assert "head.weight" in str(table) and "head.weight" in table._repr_html_()
    else:
        assert not tied_rows


def test_trainable_only_excludes_frozen():
    model = nn.Sequential(nn.Linear(10, 5), nn.ReLU(), nn.Linear(5, 2))
    for p in model[0].parameters():
        p.requires_grad_(False)
    assert count_params(model) == 55 + 12
    assert count_params(model, trainable_only=True) == 12 == param_table(model).trainable


def test_reused_module_counts_once():
    block = nn.Linear(8, 8)
    model = nn.Sequential(block, nn.ReLU(), block)
    assert count_params(model) == 72 == param_table(model).total
    assert sum(p.numel() for _, p in model.named_parameters(remove_duplicate=False)) == 144


def test_buffers_are_not_parameters():
    bn = nn.BatchNorm2d(16)
    assert count_params(bn) == 32
    assert count_buffers(bn) == 16 + 16 + 1
    assert count_buffers(nn.BatchNorm2d(16, track_running_stats=False)) == 0


def test_meta_models_count_without_allocating():
    with torch.device("meta"):
        model = nn.Sequential(*[nn.Linear(4096, 4096) for _ in range(8)])
    assert count_params(model) == 8 * (4096 * 4096 + 4096)


def test_table_text_is_aligned_and_html_has_every_row():
    model = nn.Sequential(nn.Conv2d(3, 16, 3), nn.Flatten(), nn.Linear(16, 2))
    text = str(param_table(model)).splitlines()
    assert text[0].split() == ["name", "shape", "numel", "trainable", "tied", "with"]
    assert text[-1].split()[:2] == ["total", f"{count_params(model):,}"]
    html = param_table(model)._repr_html_()
    assert html.count("<tr>") == 1 + 4 + 1


@given(st.integers(0, 10**9), st.sampled_from([torch.float32, torch.float16, torch.bfloat16, torch.int8, torch.float64]))
def test_bytes_for_matches_element_size(n, dtype):
    assert bytes_for(n, dtype) == n * torch.tensor([], dtype=dtype).element_size()


@pytest.mark.parametrize("name,dtype", [("fp32", torch.float32), ("bf16", torch.bfloat16), ("fp16", torch.float16),
                                        ("fp64", torch.float64), ("int8", torch.int8), ("float32", torch.float32)])
def test_bytes_for_accepts_the_shared_dtype_names(name, dtype):
    assert bytes_for(1000, name) == bytes_for(1000, dtype) == 1000 * torch.tensor([], dtype=dtype).element_size()


def test_bytes_for_int4_packs_two_per_byte_and_unknown_names_fail():
    assert bytes_for(1001, "int4") == 501
    with pytest.raises(ValueError, match="unknown dtype"):
        bytes_for(10, "fp12")
