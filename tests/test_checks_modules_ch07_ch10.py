"""Module-repair questions of chapters 07–10 (07.fixed_tiny_lm, 08.fixed_self_attention,
09.fixed_unet_level, 10.fixed_mamba_mixer): each reference equals an independent build, the
notebook's broken module and a plausible wrong fix fail with friendly words, the repair passes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from torch import nn

from helpers.checks import check
from tests._feedback import assert_friendly_failure
from helpers.checks.module_answer import build_and_describe, describe_module
from helpers.checks.registry import get
from helpers.models.mamba import MambaBlock

LM, ATTN, UNET, MIXER = (get(q) for q in ("07.fixed_tiny_lm", "08.fixed_self_attention",
                                          "09.fixed_unet_level", "10.fixed_mamba_mixer"))


# --------------------------------------------------------------------------- the notebooks' broken modules

class BrokenTinyLM(nn.Module):
    def __init__(self, vocab_size, d_model):
        super().__init__()
        self.tok_emb = nn.Embedding(vocab_size, d_model)
        self.lm_head = nn.Linear(vocab_size, d_model)

    def forward(self, idx):
        return self.lm_head(self.tok_emb(idx))


class BrokenSelfAttention(nn.Module):
    def __init__(self, d_model, num_heads):
        super().__init__()
        self.attn = nn.MultiheadAttention(d_model, num_heads)

    def forward(self, x):
        out, _ = self.attn(x, x, x)
        return out


class BrokenUNetLevel(nn.Module):
    def __init__(self, in_channels, channels):
        super().__init__()
        C = channels
        self.enc = nn.Conv2d(in_channels, C, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.mid = nn.Conv2d(C, 2 * C, 3, padding=1)
        self.up = nn.ConvTranspose2d(2 * C, C, 2, stride=2)
        self.dec = nn.Conv2d(C, C, 3, padding=1)

    def forward(self, x):
        skip = torch.relu(self.enc(x))
        h = torch.relu(self.mid(self.pool(skip)))
        h = torch.cat([self.up(h), skip], dim=1)
        return torch.relu(self.dec(h))


class BrokenMambaMixer(nn.Module):
    def __init__(self, d_model, expand, d_conv):
        super().__init__()
        d_inner = expand * d_model
        self.in_proj = nn.Linear(d_model, 2 * d_inner, bias=False)
        self.conv1d = nn.Conv1d(d_inner, d_inner, d_conv, padding=d_conv - 1)
        self.out_proj = nn.Linear(d_inner, d_model, bias=False)

    def forward(self, u):
        L = u.shape[1]
        x, z = self.in_proj(u).chunk(2, dim=-1)
        x = self.conv1d(x.transpose(1, 2))[..., :L]
        x = F.silu(x).transpose(1, 2)
        return self.out_proj(x * F.silu(z))


# --------------------------------------------------------------------------- repairs and wrong fixes

def fixed_tiny_lm(vocab_size, d_model):
    model = BrokenTinyLM(vocab_size, d_model)
    model.lm_head = nn.Linear(d_model, vocab_size)
    return model


def tied_tiny_lm(vocab_size, d_model):  # wrong: a tied head has no bias and no weight of its own
    model = BrokenTinyLM(vocab_size, d_model)
    model.lm_head = nn.Linear(d_model, vocab_size, bias=False)
    model.lm_head.weight = model.tok_emb.weight
    return model


def fixed_self_attention(d_model, num_heads):
    model = BrokenSelfAttention(d_model, num_heads)
    model.attn = nn.MultiheadAttention(d_model, num_heads, batch_first=True)
    return model


def swapped_self_attention(d_model, num_heads):  # wrong: embed_dim and num_heads swapped
    model = BrokenSelfAttention(d_model, num_heads)
    model.attn = nn.MultiheadAttention(num_heads, d_model, batch_first=True)
    return model


def fixed_unet_level(in_channels, channels):
    model = BrokenUNetLevel(in_channels, channels)
    model.dec = nn.Conv2d(2 * channels, channels, 3, padding=1)
    return model


def wide_unet_level(in_channels, channels):  # wrong: 2C → 2C keeps the concatenated width
    model = BrokenUNetLevel(in_channels, channels)
    model.dec = nn.Conv2d(2 * channels, 2 * channels, 3, padding=1)
    return model


def fixed_mamba_mixer(d_model, expand, d_conv):
    model = BrokenMambaMixer(d_model, expand, d_conv)
    d_inner = expand * d_model
    model.conv1d = nn.Conv1d(d_inner, d_inner, d_conv, groups=d_inner, padding=d_conv - 1)
    return model


def unpadded_mamba_mixer(d_model, expand, d_conv):  # wrong: groups right, no causal padding: L shrinks
    model = BrokenMambaMixer(d_model, expand, d_conv)
    d_inner = expand * d_model
    model.conv1d = nn.Conv1d(d_inner, d_inner, d_conv, groups=d_inner)
    return model


# --------------------------------------------------------------------------- references == independent builds

def _same(question, args, real):
    want = build_and_describe(question.reference, args, {}, question.probe(*args))
    assert want["parameters"] == [[n, list(p.shape)] for n, p in real.named_parameters()]
    assert want["count"] == sum(p.numel() for p in real.parameters())
    assert describe_module(real, question.probe(*args)) == want  # same fixed weights → same values
    return want


@settings(max_examples=6, deadline=None)
@given(st.integers(2, 300), st.integers(1, 64))
def test_tiny_lm_reference_is_embedding_then_head(vocab, d):
    real = nn.Sequential()
    real.tok_emb, real.lm_head = nn.Embedding(vocab, d), nn.Linear(d, vocab)
    want = _same(LM, (vocab, d), real)
    assert want["output"] == [3, 5, vocab]


@settings(max_examples=6, deadline=None)
@given(st.sampled_from([1, 2, 4]), st.integers(1, 16))
def test_self_attention_reference_attends_over_time(heads, head_dim):
    d = heads * head_dim
    real = fixed_self_attention(d, heads)
    want = _same(ATTN, (d, heads), real)
    x = torch.rand(want["input"])
    with torch.no_grad():  # batch_first=True is the sequence-first module on x.transpose(0, 1)
        seq_first = nn.MultiheadAttention(d, heads)
        seq_first.load_state_dict(real.attn.state_dict())
        assert torch.allclose(real(x), seq_first(*(x.transpose(0, 1),) * 3)[0].transpose(0, 1), atol=1e-6)
    assert want["output"] == [3, 5, d]


@settings(max_examples=6, deadline=None)
@given(st.integers(1, 5), st.integers(1, 24))
def test_unet_level_reference_is_the_written_out_level(cin, c):
    real = fixed_unet_level(cin, c)
    want = _same(UNET, (cin, c), real)
    assert want["output"] == [3, c, 8, 12]
    assert want["count"] == (9 * cin * c + c) + (9 * c * 2 * c + 2 * c) + (4 * 2 * c * c + c) + (9 * 2 * c * c + c)


@settings(max_examples=6, deadline=None)
@given(st.integers(1, 64), st.sampled_from([1, 2, 3]), st.sampled_from([2, 3, 4]))
def test_mamba_mixer_reference_has_the_mamba_block_shapes(d, expand, k):
    want = _same(MIXER, (d, expand, k), fixed_mamba_mixer(d, expand, k))
    with torch.device("meta"):
        block = dict((n, list(p.shape)) for n, p in MambaBlock(d, d_conv=k, expand=expand).named_parameters())
    assert want["parameters"] == [[n, block[n]] for n, _ in want["parameters"]]
    assert want["output"] == [3, 7, d]


# --------------------------------------------------------------------------- verdicts

@pytest.mark.parametrize("question, answer", [
    ("07.fixed_tiny_lm", fixed_tiny_lm), ("08.fixed_self_attention", fixed_self_attention),
    ("09.fixed_unet_level", fixed_unet_level), ("10.fixed_mamba_mixer", fixed_mamba_mixer),
])
def test_the_repairs_pass(capsys, question, answer):
    assert check(question, answer)
    assert "✅" in capsys.readouterr().out


@pytest.mark.parametrize("question, answer, status, words", [
    ("07.fixed_tiny_lm", BrokenTinyLM, "wrong", "parameter lm_head.weight has shape"),
    ("07.fixed_tiny_lm", tied_tiny_lm, "wrong", "lm_head.bias"),
    ("08.fixed_self_attention", BrokenSelfAttention, "wrong", "on fixed weights its forward gives different values"),
    ("08.fixed_self_attention", swapped_self_attention, "error", "raised AssertionError: embed_dim must be divisible"),
    ("09.fixed_unet_level", BrokenUNetLevel, "wrong", "parameter dec.weight has shape"),
    ("09.fixed_unet_level", wide_unet_level, "wrong", "parameter dec.weight has shape"),
    ("10.fixed_mamba_mixer", BrokenMambaMixer, "wrong", "parameter conv1d.weight has shape"),
    ("10.fixed_mamba_mixer", unpadded_mamba_mixer, "wrong", "returned a module, but its forward on an input of shape"),
])
def test_a_wrong_module_gets_friendly_feedback(capsys, question, answer, status, words):
    assert_friendly_failure(capsys, question, answer, status, words)


def test_the_broken_attention_has_the_right_shape_and_mixes_the_batch():
    torch.manual_seed(0)
    broken, fixed = BrokenSelfAttention(8, 2), fixed_self_attention(8, 2)
    fixed.load_state_dict(broken.state_dict())
    x = torch.rand(3, 5, 8)
    with torch.no_grad():
        assert broken(x).shape == fixed(x).shape == x.shape
        assert not torch.allclose(broken(x), fixed(x), atol=1e-3)
        y = x.clone()
        y[1] += 1.0  # change sequence 1 only: the fixed block keeps sequences 0 and 2, the broken one does not
        assert torch.allclose(fixed(y)[[0, 2]], fixed(x)[[0, 2]], atol=1e-6)
        assert not torch.allclose(broken(y)[[0, 2]], broken(x)[[0, 2]], atol=1e-3)
