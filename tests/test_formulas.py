"""helpers.formulas == torch: every breakdown is compared tensor by tensor with named_parameters().

Modules are built on the meta device, so even large random configurations allocate nothing.
Configurations are drawn so that some are invalid (e.g. groups not dividing the channels);
then torch and the formula must both fail.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from helpers import formulas as F
from tests._compare import agree

META = torch.device("meta")
small = st.integers(min_value=1, max_value=64)
sizes0 = st.integers(min_value=0, max_value=64)


def torch_breakdown(module: nn.Module) -> dict[str, int]:
    return {name: p.numel() for name, p in module.named_parameters()}


def check(formula_breakdown, total_fn, make_module, *args, **kwargs):
    got = agree(lambda: formula_breakdown(*args, **kwargs), lambda: torch_breakdown(make_module()))
    if got is not None:
        assert total_fn(*args, **kwargs) == sum(got.values())
    return got


@given(sizes0, sizes0, st.booleans())
def test_linear(fin, fout, bias):
    check(F.linear_params_breakdown, F.linear_params,
          lambda: nn.Linear(fin, fout, bias=bias, device=META), fin, fout, bias)


@given(small, small, small, st.booleans())
def test_bilinear(a, b, o, bias):
    assert F.bilinear_params(a, b, o, bias) == sum(p.numel() for p in nn.Bilinear(a, b, o, bias=bias, device=META).parameters())


kernel = st.integers(min_value=1, max_value=7)


@st.composite
def conv_configs(draw):
    dim = draw(st.sampled_from([1, 2, 3]))
    groups = draw(st.integers(min_value=1, max_value=6))
    cin = draw(st.integers(min_value=1, max_value=12)) * draw(st.sampled_from([1, groups]))
    cout = draw(st.integers(min_value=1, max_value=12)) * draw(st.sampled_from([1, groups]))
    ks = draw(st.one_of(kernel, st.tuples(*[kernel] * dim)))
    stride = draw(st.one_of(st.integers(1, 3), st.tuples(*[st.integers(1, 3)] * dim)))
    padding = draw(st.one_of(st.integers(0, 3), st.sampled_from(["same", "valid"])))
    bias = draw(st.booleans())
    mode = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
    return dim, dict(in_channels=cin, out_channels=cout, kernel_size=ks, stride=stride, padding=padding,
                     groups=groups, bias=bias, padding_mode=mode)


CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
CONVT = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}


@given(conv_configs())
def test_conv(config):
    dim, kw = config
    check(F.conv_params_breakdown, F.conv_params, lambda: CONV[dim](**kw, device=META), **kw, dim=dim)


@given(conv_configs(), st.integers(0, 2))
def test_conv_transpose(config, output_padding):
    dim, kw = config
    kw = dict(kw, output_padding=output_padding)
    if isinstance(kw["padding"], str):
        kw["padding"] = 0
    check(F.conv_transpose_params_breakdown, F.conv_transpose_params,
          lambda: CONVT[dim](**kw, device=META), **kw, dim=dim)


def test_conv_positional_reads_like_torch():
    assert F.conv_params(3, 16, 3, groups=1) == sum(p.numel() for p in nn.Conv2d(3, 16, 3, groups=1).parameters())
    assert F.conv_params(12, 64, (3,)) == sum(p.numel() for p in nn.Conv1d(12, 64, 3).parameters())


@given(st.integers(0, 5000), st.integers(0, 64), st.one_of(st.none(), st.integers(-6000, 6000)),
       st.one_of(st.none(), st.floats(0.1, 5)))
def test_embedding(v, d, padding_idx, max_norm):
    check(F.embedding_params_breakdown, F.embedding_params,
          lambda: nn.Embedding(v, d, padding_idx=padding_idx, max_norm=max_norm, device=META),
          v, d, padding_idx=padding_idx, max_norm=max_norm)


@given(st.integers(0, 512), st.booleans(), st.booleans(), st.sampled_from([nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d]))
def test_batchnorm_params_and_buffers(c, affine, track, cls):
    module = cls(c, affine=affine, track_running_stats=track, device=META)
    check(F.batchnorm_params_breakdown, F.batchnorm_params, lambda: module, c, affine=affine, track_running_stats=track)
    assert F.batchnorm_buffers(c, affine=affine, track_running_stats=track) == sum(b.numel() for b in module.buffers())


@given(st.one_of(st.integers(0, 64), st.lists(st.integers(1, 8), min_size=1, max_size=3).map(tuple)),
       st.booleans(), st.booleans())
def test_layernorm(shape, affine, bias):
    check(F.layernorm_params_breakdown, F.layernorm_params,
          lambda: nn.LayerNorm(shape, elementwise_affine=affine, bias=bias, device=META),
          shape, elementwise_affine=affine, bias=bias)


@given(st.integers(1, 16), st.integers(0, 64), st.booleans())
def test_groupnorm(groups, channels, affine):
    check(F.groupnorm_params_breakdown, F.groupnorm_params,
          lambda: nn.GroupNorm(groups, channels, affine=affine, device=META), groups, channels, affine=affine)


@given(st.integers(0, 64))
def test_prelu(n):
    assert F.prelu_params(n) == sum(p.numel() for p in nn.PReLU(n, device=META).parameters())


RNN_CLASSES = {"RNN": nn.RNN, "GRU": nn.GRU, "LSTM": nn.LSTM}


@given(st.sampled_from(sorted(RNN_CLASSES)), st.integers(0, 40), st.integers(0, 40), st.integers(0, 4),
       st.booleans(), st.booleans(), st.integers(0, 12), st.sampled_from([0.0, 0.3, 1.0, 1.5]))
def test_rnn_family(mode, inp, hidden, layers, bias, bidirectional, proj, dropout):
    kw = dict(num_layers=layers, bias=bias, bidirectional=bidirectional, proj_size=proj, dropout=dropout)
    if mode != "LSTM" and proj == 0:
        del kw["proj_size"]  # nn.GRU/nn.RNN reject the keyword itself, even proj_size=0
    check(F.rnn_params_breakdown, F.rnn_params,
          lambda: RNN_CLASSES[mode](inp, hidden, **kw, device=META), mode, inp, hidden, **kw)


@given(st.integers(0, 96), st.integers(0, 12), st.booleans(), st.booleans(),
       st.one_of(st.none(), st.integers(1, 40)), st.one_of(st.none(), st.integers(1, 40)))
def test_mha(embed_dim, heads, bias, add_bias_kv, kdim, vdim):
    kw = dict(bias=bias, add_bias_kv=add_bias_kv, kdim=kdim, vdim=vdim)
    check(F.mha_params_breakdown, F.mha_params,
          lambda: nn.MultiheadAttention(embed_dim, heads, **kw, device=META), embed_dim, heads, **kw)


@given(st.integers(1, 12).flatmap(lambda h: st.tuples(st.just(h), st.integers(1, 8).map(lambda k: h * k))),
       st.integers(0, 256), st.booleans(), st.booleans())
def test_transformer_layers(heads_and_d, ff, bias, decoder):
    nhead, d = heads_and_d
    cls = nn.TransformerDecoderLayer if decoder else nn.TransformerEncoderLayer
    check(F.transformer_layer_params_breakdown, F.transformer_layer_params,
          lambda: cls(d, nhead, dim_feedforward=ff, bias=bias, device=META), d, nhead, ff, bias=bias, decoder=decoder)


@pytest.mark.parametrize("bad", [dict(mode="LSTMX"), dict(hidden_size=2.5), dict(num_layers=0), dict(dropout=-0.1)])
def test_rnn_rejects_bad_arguments(bad):
    args = dict(mode="LSTM", input_size=4, hidden_size=8) | bad
    with pytest.raises(ValueError):
        F.rnn_params(**args)


def test_formulas_never_import_torch():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(F))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])}
    assert "torch" not in imported, "formulas must be pure arithmetic"


def test_common_estimate_is_wrong_for_mha():
    """The "4·d²" rule of thumb misses the 4·d biases."""
    d = 512
    exact = sum(p.numel() for p in nn.MultiheadAttention(d, 8, device=META).parameters())
    assert F.mha_params(d, 8) == exact == 4 * d * d + 4 * d != 4 * d * d
    assert math.isclose(F.mha_params(d, 8, bias=False), 4 * d * d)
