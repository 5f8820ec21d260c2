"""helpers.shapes == torch: output sizes compared with real forward passes on tiny CPU tensors.

Random configurations include invalid ones (kernel larger than the padded input, pooling padding
over half the kernel, output_padding ≥ stride and dilation, zero and negative sizes, kernel 0,
stride 0, ...): then both must fail. Sizes of the wrong type (None, float, bool) must be refused
with a TypeError that names the argument (torch's own errors for them are inconsistent: it builds
nn.Conv2d(1, 1, True) but refuses nn.Conv2d(1, 1, 2.0)).
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from helpers._args import SizeTypeError
from helpers.shapes import (ShapeError, check_shape, conv_output_size, conv_transpose_output_size, pool_output_size,
                            rnn_shapes)
from tests._compare import agree

CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
CONVT = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
MAXPOOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
AVGPOOL = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}
MAX_SIDE = {1: 24, 2: 12, 3: 6}


def per_dim(draw, dim, strategy):
    """An int (same for every dim) or a tuple with one value per dim."""
    return draw(st.one_of(strategy, st.tuples(*[strategy] * dim)))


def spatial_output(module: nn.Module, sizes: tuple[int, ...]) -> tuple[int, ...]:
    with torch.no_grad():
        return tuple(module(torch.zeros(1, 1, *sizes)).shape[2:])


def forward(make, sizes: tuple[int, ...], scalar: bool):
    """torch's answer: build the layer (it may refuse) and run it on a (1, 1, *sizes) input."""
    return lambda: as_result(spatial_output(make(), sizes), scalar)


def as_result(sizes: tuple[int, ...], scalar: bool):
    return sizes[0] if scalar else sizes


@st.composite
def inputs(draw, dim):
    scalar = dim == 1 and draw(st.booleans())
    side = st.one_of(st.integers(1, MAX_SIDE[dim]), st.integers(-2, 0))  # 0 and negative sides too
    sizes = tuple(draw(side) for _ in range(dim))
    return sizes, scalar


#: a layer argument drawn mostly valid, but 0 and negative values as well (torch refuses them)
def arg(lo: int, hi: int, bad_lo: int = -2) -> st.SearchStrategy[int]:
    return st.one_of(st.integers(lo, hi), st.integers(bad_lo, lo - 1)) if bad_lo < lo else st.integers(lo, hi)


@given(st.data())
def test_conv_output_size(data):
    dim = data.draw(st.sampled_from([1, 2, 3]))
    sizes, scalar = data.draw(inputs(dim))
    k = per_dim(data.draw, dim, arg(1, 6))  # kernel 0 and negative kernels included
    s = per_dim(data.draw, dim, arg(1, 3))
    d = per_dim(data.draw, dim, arg(1, 3))
    p = data.draw(st.one_of(arg(0, 3), st.tuples(*[arg(0, 3)] * dim), st.sampled_from(["same", "valid"])))
    if isinstance(p, str) and p == "same":
        s = 1  # torch refuses 'same' with stride > 1 at construction; tested separately
    agree(lambda: conv_output_size(sizes[0] if scalar else sizes, k, stride=s, padding=p, dilation=d),
          forward(lambda: CONV[dim](1, 1, k, stride=s, padding=p, dilation=d, bias=False), sizes, scalar))


def test_conv_same_rejects_stride_like_torch():
    with pytest.raises(ValueError):
        nn.Conv2d(1, 1, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="strided"):
        conv_output_size((8, 8), 3, stride=2, padding="same")


@given(st.data())
def test_conv_transpose_output_size(data):
    dim = data.draw(st.sampled_from([1, 2, 3]))
    sizes, scalar = data.draw(inputs(dim))
    k = per_dim(data.draw, dim, arg(1, 5))
    s = per_dim(data.draw, dim, arg(1, 3, -1))
    d = per_dim(data.draw, dim, arg(1, 2, -1))
    p = per_dim(data.draw, dim, arg(0, 3, -1))
    op = per_dim(data.draw, dim, arg(0, 2, -1))
    agree(lambda: conv_transpose_output_size(sizes[0] if scalar else sizes, k, stride=s, padding=p,
                                             output_padding=op, dilation=d),
          forward(lambda: CONVT[dim](1, 1, k, stride=s, padding=p, output_padding=op, dilation=d, bias=False),
                  sizes, scalar))


@pytest.mark.parametrize("kind", ["max", "avg"])
@given(data=st.data())
def test_pool_output_size(kind, data):
    dim = data.draw(st.sampled_from([1, 2, 3]))
    sizes, scalar = data.draw(inputs(dim))
    k = per_dim(data.draw, dim, arg(1, 5))
    s = data.draw(st.one_of(st.none(), arg(1, 4, -1), st.tuples(*[arg(1, 4, -1)] * dim)))
    p = per_dim(data.draw, dim, arg(0, 3, -1))
    ceil = data.draw(st.booleans())
    kw = dict(stride=s, padding=p, ceil_mode=ceil)
    if kind == "max":  # average pooling has no dilation argument
        kw["dilation"] = per_dim(data.draw, dim, arg(1, 3, -1))
    agree(lambda: pool_output_size(sizes[0] if scalar else sizes, k, **kw, kind=kind),
          forward(lambda: (MAXPOOL if kind == "max" else AVGPOOL)[dim](k, **kw), sizes, scalar))


@pytest.mark.parametrize("ours, make, sizes", [
    # the configurations issue 12 found accepted (torch refuses every one of them)
    (lambda: conv_output_size(5, kernel_size=0), lambda: nn.Conv1d(1, 1, 0), (5,)),
    (lambda: conv_output_size(5, kernel_size=-1), lambda: nn.Conv1d(1, 1, -1), (5,)),
    (lambda: conv_transpose_output_size(4, 0), lambda: nn.ConvTranspose1d(1, 1, 0), (4,)),
    (lambda: conv_transpose_output_size(0, 3), lambda: nn.ConvTranspose1d(1, 1, 3), (0,)),
    (lambda: conv_output_size(0, 1, padding=1), lambda: nn.Conv1d(1, 1, 1, padding=1), (0,)),
    (lambda: pool_output_size(0, 2, padding=1), lambda: nn.MaxPool1d(2, padding=1), (0,)),
    (lambda: pool_output_size((0, 3), 2, padding=1, kind="avg"), lambda: nn.AvgPool2d(2, padding=1), (0, 3)),
    (lambda: conv_output_size((7, 7), (3,)), lambda: nn.Conv2d(1, 1, (3,)), (7, 7)),  # a 1-d kernel in Conv2d
    (lambda: pool_output_size((3, 3, 3, 3), 1), lambda: nn.MaxPool3d(1), (3, 3, 3, 3)),  # no 4-d pooling
])
def test_zero_sizes_and_kernels_refused_like_torch(ours, make, sizes):
    with pytest.raises((RuntimeError, ValueError)):
        spatial_output(make(), sizes)
    with pytest.raises(ValueError) as exc:
        ours()
    assert "Traceback" not in str(exc.value) and str(exc.value)


BAD_TYPES = st.sampled_from([None, 2.0, 1.5, True, False, "3"])


@given(st.sampled_from(["conv", "transpose", "max", "avg"]), st.sampled_from(["input_size", "kernel_size", "stride",
                                                                             "padding", "dilation"]),
       BAD_TYPES, st.booleans())
def test_wrong_types_refused_with_a_readable_type_error(which, name, bad, in_tuple):
    """None, floats, bools and strings as sizes: a TypeError naming the argument (also a ValueError), never a
    raw arithmetic error; and torch refuses all of them except bools (nn.Conv1d(1, 1, True) builds)."""
    if (which == "avg" and name == "dilation" or which == "conv" and name == "padding" and bad == "3"
            or which in ("max", "avg") and name == "stride" and bad is None and not in_tuple):
        return  # AvgPool has no dilation; padding="3" is a bad *string* padding; pooling's stride=None is valid
    kw = {"input_size": 6, "kernel_size": 2, "stride": 1, "padding": 0, "dilation": 1}
    kw[name] = (bad,) if in_tuple else bad
    fn = {"conv": conv_output_size, "transpose": conv_transpose_output_size}.get(which, pool_output_size)
    extra = {"kind": which} if which in ("max", "avg") else {}
    with pytest.raises(TypeError, match=name) as exc:
        fn(**kw, **extra)
    assert isinstance(exc.value, ValueError) and isinstance(exc.value, SizeTypeError)
    if not isinstance(bad, bool):
        layer = {"conv": nn.Conv1d, "transpose": nn.ConvTranspose1d, "max": nn.MaxPool1d, "avg": nn.AvgPool1d}[which]
        args = {k: v for k, v in kw.items() if k not in ("input_size", "kernel_size")}
        sizes = kw["input_size"] if isinstance(kw["input_size"], tuple) else (kw["input_size"],)
        with pytest.raises((TypeError, RuntimeError, ValueError)):
            spatial_output((layer(1, 1, kw["kernel_size"], **args) if which in ("conv", "transpose")
                            else layer(kw["kernel_size"], **args)), sizes)


def test_ceil_mode_last_window_rule():
    """torch's documented formula gives 4 here; torch returns 3 because the 4th window would
    start in the right padding. pool_output_size follows torch."""
    naive = -(-(5 + 2 * 1 - 2) // 2) + 1
    real = spatial_output(nn.MaxPool1d(2, stride=2, padding=1, ceil_mode=True), (5,))[0]
    assert naive == 4 and real == 3 == pool_output_size(5, 2, stride=2, padding=1, ceil_mode=True)


class Shaped:
    def __init__(self, *shape: int) -> None:
        self.shape = shape


def test_check_shape_binds_and_names_the_failing_dimension():
    x = torch.zeros(64, 1, 28, 28)
    assert check_shape(x, "B C H W", C=1) == {"B": 64, "C": 1, "H": 28, "W": 28}
    with pytest.raises(ShapeError, match=r"dimension C \(axis 1\) should be 3 but is 1"):
        check_shape(x, "B C H W", C=3)
    with pytest.raises(ShapeError, match="expected 3 dims"):
        check_shape(x, "B T D")
    with pytest.raises(ShapeError, match="appears twice"):
        check_shape(Shaped(2, 3, 4), "B N N")
    assert check_shape(Shaped(2, 3, 4, 5), "... D") == {"D": 5}
    assert check_shape(Shaped(5), "... D") == {"D": 5}
    assert check_shape(Shaped(2, 3, 5), "B * 5") == {"B": 2}
    with pytest.raises(ShapeError, match="axis 2 should be 4"):
        check_shape(Shaped(2, 3, 5), "B * 4")
    with pytest.raises(ValueError, match="not in pattern"):
        check_shape(x, "B C H W", T=3)
    with pytest.raises(ValueError, match="cannot read"):
        check_shape(x, "B C-H W")


@pytest.mark.parametrize("value", ["3", 3.0, None, True])
def test_check_shape_known_size_must_be_an_int(value):
    """check_shape(x, "B C H W", C="3") used to say "should be 3 but is 3"."""
    x = torch.zeros(2, 3, 4, 4)
    with pytest.raises(TypeError, match=r"known size C=.* must be an integer") as exc:
        check_shape(x, "B C H W", C=value)
    assert "should be 3 but is 3" not in str(exc.value) and isinstance(exc.value, ValueError)
    if value == "3":
        assert "write C=3" in str(exc.value)


@given(st.lists(st.integers(1, 9), min_size=1, max_size=5))
def test_check_shape_accepts_any_tensor_with_matching_rank(shape):
    names = [f"d{i}" for i in range(len(shape))]
    assert check_shape(torch.empty(*shape, device="meta"), " ".join(names)) == dict(zip(names, shape))


RNN_CLASSES = {"RNN": nn.RNN, "GRU": nn.GRU, "LSTM": nn.LSTM}


@given(st.sampled_from(sorted(RNN_CLASSES)), st.integers(-1, 6), st.integers(-1, 6), st.integers(-1, 3),
       st.integers(-1, 4), st.one_of(st.none(), st.integers(-1, 3)), st.booleans(), st.booleans(), st.integers(-1, 6))
def test_rnn_shapes(mode, inp, hidden, layers, seq_len, batch, batch_first, bidirectional, proj):
    kwargs = dict(batch_first=batch_first, bidirectional=bidirectional)
    if mode == "LSTM" or proj:
        kwargs["proj_size"] = proj   # GRU/RNN reject the keyword itself

    def theirs():
        module = RNN_CLASSES[mode](inp, hidden, layers, **kwargs)
        shape = (seq_len, inp) if batch is None else ((batch, seq_len, inp) if batch_first else (seq_len, batch, inp))
        with torch.no_grad():
            out, state = module(torch.zeros(shape))
        names = ("h_n", "c_n") if mode == "LSTM" else ("h_n",)
        states = state if mode == "LSTM" else (state,)
        return {"input": shape, "output": tuple(out.shape), **{n: tuple(s.shape) for n, s in zip(names, states)}}

    agree(lambda: rnn_shapes(mode, inp, hidden, layers, seq_len=seq_len, batch=batch, **kwargs), theirs)


def test_rnn_shapes_empty_batch_like_torch():
    """torch runs an RNN on an empty batch (batch=0) but refuses an empty sequence (seq_len=0)."""
    out, (h_n, c_n) = nn.LSTM(3, 4, 2)(torch.zeros(5, 0, 3))
    assert rnn_shapes("LSTM", 3, 4, 2, seq_len=5, batch=0) == {"input": (5, 0, 3), "output": tuple(out.shape),
                                                               "h_n": tuple(h_n.shape), "c_n": tuple(c_n.shape)}
    with pytest.raises(RuntimeError):
        nn.LSTM(3, 4)(torch.zeros(0, 2, 3))
    with pytest.raises(ValueError, match="seq_len"):
        rnn_shapes("LSTM", 3, 4, seq_len=0, batch=2)
