"""helpers.formulas == torch: every breakdown is compared tensor by tensor with named_parameters().

Modules are built on the meta device, so even large random configurations allocate nothing.
Configurations are drawn so that some are invalid (groups not dividing the channels, zero and
negative sizes, kernel 0, groups 0, ...); then torch and the formula must both fail. Two documented
exceptions, where the formula refuses what torch happens to build: a negative size whose layer
allocates no tensor (``nn.LayerNorm(-3, elementwise_affine=False)``, ``nn.GroupNorm(-2, 4)``, torch
never looks at it) and sizes of the wrong type (None, float, bool: torch builds ``nn.Linear(True, 3)``
but refuses ``nn.BatchNorm1d(True)``); both are a TypeError/ValueError naming the argument.
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
#: a size: mostly valid, with 0 and negative values often enough
sizes0 = st.one_of(st.integers(min_value=0, max_value=64), st.integers(-2, 0))


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


@given(sizes0, sizes0, sizes0, st.booleans())
def test_bilinear(a, b, o, bias):
    """torch refuses in1_features=0 (issue 12: bilinear_params(0, 4, 5) was accepted) but builds in2 or out 0."""
    agree(lambda: F.bilinear_params(a, b, o, bias),
          lambda: sum(p.numel() for p in nn.Bilinear(a, b, o, bias=bias, device=META).parameters()))


kernel = st.one_of(st.integers(min_value=0, max_value=7), st.just(-1))  # torch builds a 0 kernel, not -1


@st.composite
def conv_configs(draw):
    dim = draw(st.sampled_from([1, 2, 3]))
    groups = draw(st.integers(min_value=-1, max_value=6))
    cin = draw(st.integers(min_value=-1, max_value=12)) * draw(st.sampled_from([1, groups]))
    cout = draw(st.integers(min_value=-1, max_value=12)) * draw(st.sampled_from([1, groups]))
    ks = draw(st.one_of(kernel, st.tuples(*[kernel] * dim)))
    stride = draw(st.one_of(st.integers(1, 3), st.tuples(*[st.integers(1, 3)] * dim)))
    padding = draw(st.one_of(st.integers(0, 3), st.sampled_from(["same", "valid"])))
    bias = draw(st.booleans())
    mode = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
    # torch's constructor reads dilation only for padding='same' (to compute d·(k−1)); None fails there only
    dilation = draw(st.one_of(st.integers(-1, 3), st.none()))
    return dim, dict(in_channels=cin, out_channels=cout, kernel_size=ks, stride=stride, padding=padding,
                     dilation=dilation, groups=groups, bias=bias, padding_mode=mode)


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


@given(st.integers(-1, 5000), st.integers(-1, 64),
       st.one_of(st.none(), st.integers(-6000, 6000), st.sampled_from([1.5, 2.0, -1.0])),
       st.one_of(st.none(), st.floats(0.1, 5)))
def test_embedding(v, d, padding_idx, max_norm):
    check(F.embedding_params_breakdown, F.embedding_params,
          lambda: nn.Embedding(v, d, padding_idx=padding_idx, max_norm=max_norm, device=META),
          v, d, padding_idx=padding_idx, max_norm=max_norm)


def refused_though_torch_builds_it(formula, *args, **kwargs) -> None:
    """A negative size torch never reads (it allocates nothing from it): the formula refuses it anyway."""
    with pytest.raises(ValueError, match="must be"):
        formula(*args, **kwargs)


@given(st.integers(-2, 512), st.booleans(), st.booleans(), st.sampled_from([nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d]))
def test_batchnorm_params_and_buffers(c, affine, track, cls):
    if c < 0 and not affine and not track:
        return refused_though_torch_builds_it(F.batchnorm_params, c, affine=affine, track_running_stats=track)
    try:
        module = cls(c, affine=affine, track_running_stats=track, device=META)
    except RuntimeError:  # a negative size
        with pytest.raises(ValueError, match="num_features"):
            F.batchnorm_params(c, affine=affine, track_running_stats=track)
        with pytest.raises(ValueError, match="num_features"):
            F.batchnorm_buffers(c, affine=affine, track_running_stats=track)
        return
    check(F.batchnorm_params_breakdown, F.batchnorm_params, lambda: module, c, affine=affine, track_running_stats=track)
    assert F.batchnorm_buffers(c, affine=affine, track_running_stats=track) == sum(b.numel() for b in module.buffers())


@given(st.one_of(st.integers(-1, 64), st.lists(st.integers(-1, 8), min_size=1, max_size=3).map(tuple)),
       st.booleans(), st.booleans())
def test_layernorm(shape, affine, bias):
    if not affine and min((shape,) if isinstance(shape, int) else shape) < 0:
        return refused_though_torch_builds_it(F.layernorm_params, shape, elementwise_affine=affine, bias=bias)
    check(F.layernorm_params_breakdown, F.layernorm_params,
          lambda: nn.LayerNorm(shape, elementwise_affine=affine, bias=bias, device=META),
          shape, elementwise_affine=affine, bias=bias)


@given(st.integers(-2, 16), st.integers(-1, 64), st.booleans())
def test_groupnorm(groups, channels, affine):
    if groups < 0 or channels < 0:  # torch builds some (nn.GroupNorm(-2, 4), nn.GroupNorm(-1, -1, affine=False))
        return refused_though_torch_builds_it(F.groupnorm_params, groups, channels, affine=affine)

    def build() -> nn.Module:
        if groups == 0:
            with pytest.raises(ZeroDivisionError):  # torch's own check divides by num_groups
                nn.GroupNorm(groups, channels, affine=affine, device=META)
            raise ValueError("torch refuses num_groups=0")
        return nn.GroupNorm(groups, channels, affine=affine, device=META)

    check(F.groupnorm_params_breakdown, F.groupnorm_params, build, groups, channels, affine=affine)


@given(sizes0)
def test_prelu(n):
    agree(lambda: F.prelu_params(n), lambda: sum(p.numel() for p in nn.PReLU(n, device=META).parameters()))


RNN_CLASSES = {"RNN": nn.RNN, "GRU": nn.GRU, "LSTM": nn.LSTM}


@given(st.sampled_from(sorted(RNN_CLASSES)), st.integers(-1, 40), st.integers(-1, 40), st.integers(-1, 4),
       st.booleans(), st.booleans(), st.integers(-1, 12), st.sampled_from([0.0, 0.3, 1.0, 1.5]))
def test_rnn_family(mode, inp, hidden, layers, bias, bidirectional, proj, dropout):
    kw = dict(num_layers=layers, bias=bias, bidirectional=bidirectional, proj_size=proj, dropout=dropout)
    if mode != "LSTM" and proj == 0:
        del kw["proj_size"]  # nn.GRU/nn.RNN reject the keyword itself, even proj_size=0
    check(F.rnn_params_breakdown, F.rnn_params,
          lambda: RNN_CLASSES[mode](inp, hidden, **kw, device=META), mode, inp, hidden, **kw)


@given(st.integers(-1, 96), st.integers(-1, 12), st.booleans(), st.booleans(),
       st.one_of(st.none(), st.integers(-1, 40)), st.one_of(st.none(), st.integers(-1, 40)))
def test_mha(embed_dim, heads, bias, add_bias_kv, kdim, vdim):
    kw = dict(bias=bias, add_bias_kv=add_bias_kv, kdim=kdim, vdim=vdim)
    check(F.mha_params_breakdown, F.mha_params,
          lambda: nn.MultiheadAttention(embed_dim, heads, **kw, device=META), embed_dim, heads, **kw)


@given(st.integers(1, 12).flatmap(lambda h: st.tuples(st.just(h), st.integers(1, 8).map(lambda k: h * k))),
       st.integers(-1, 256), st.booleans(), st.booleans())
def test_transformer_layers(heads_and_d, ff, bias, decoder):
    nhead, d = heads_and_d
    cls = nn.TransformerDecoderLayer if decoder else nn.TransformerEncoderLayer
    check(F.transformer_layer_params_breakdown, F.transformer_layer_params,
          lambda: cls(d, nhead, dim_feedforward=ff, bias=bias, device=META), d, nhead, ff, bias=bias, decoder=decoder)


def test_issue_12_cases_agree_with_torch():
    """The configurations issue 12 found wrongly accepted or refused, each against torch."""
    with pytest.raises(ValueError):
        nn.Bilinear(0, 4, 5, device=META)
    with pytest.raises(ValueError, match="in1_features"):
        F.bilinear_params(0, 4, 5)
    with pytest.raises(IndexError):
        nn.Embedding(10, 3, padding_idx=1.5, device=META)
    with pytest.raises(TypeError, match="padding_idx"):
        F.embedding_params(10, 3, padding_idx=1.5)
    built = nn.MultiheadAttention(8, 2, kdim=0, device=META)
    assert F.mha_params(8, 2, kdim=0) == sum(p.numel() for p in built.parameters())
    assert F.mha_params_breakdown(8, 2, kdim=0) == torch_breakdown(built)


def test_kernel_tuple_must_match_the_dims():
    """nn.Conv2d(1, 1, (3,)) builds a 1-d kernel that no input can run; the formula refuses it
    instead of counting a 3×3 kernel (what it used to do)."""
    conv = nn.Conv2d(1, 1, (3,))
    with pytest.raises(RuntimeError):
        conv(torch.zeros(1, 1, 7, 7))
    with pytest.raises(ValueError, match="kernel_size"):
        F.conv_params(1, 1, (3,), dim=2)
    assert F.conv_params(1, 1, (3,)) == count(nn.Conv1d(1, 1, (3,), device=META))  # no dim: the tuple decides


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


WRONG_TYPES = [None, 2.0, 1.5, True, "3"]


@pytest.mark.parametrize("bad", WRONG_TYPES)
@pytest.mark.parametrize("formula, args, position, name", [
    (F.linear_params, (4, 5), 0, "in_features"),
    (F.bilinear_params, (4, 5, 6), 1, "in2_features"),
    (F.conv_params, (3, 8, 3), 2, "kernel_size"),
    (F.conv_params, (3, 8, 3), 0, "in_channels"),
    (F.conv_transpose_params, (3, 8, 3), 1, "out_channels"),
    (F.embedding_params, (10, 4), 1, "embedding_dim"),
    (F.batchnorm_params, (16,), 0, "num_features"),
    (F.layernorm_params, (16,), 0, "normalized_shape"),
    (F.groupnorm_params, (4, 16), 0, "num_groups"),
    (F.prelu_params, (3,), 0, "num_parameters"),
    (F.mha_params, (8, 2), 0, "embed_dim"),
    (F.transformer_layer_params, (8, 2, 16), 2, "dim_feedforward"),
])
def test_wrong_types_are_a_readable_type_error(formula, args, position, name, bad):
    """None, floats (even 2.0), bools and strings as sizes: a TypeError (also a ValueError) naming the argument
    and what was given, never a raw error from arithmetic on None."""
    args = list(args)
    args[position] = bad
    with pytest.raises(TypeError, match=name) as exc:
        formula(*args)
    assert isinstance(exc.value, ValueError) and repr(bad) in str(exc.value)


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
