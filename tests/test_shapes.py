"""helpers.shapes == torch: output sizes compared with real forward passes on tiny CPU tensors.

Random configurations include invalid ones (kernel larger than the padded input, pooling padding
over half the kernel, output_padding ≥ stride and dilation, ...): then both must fail.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

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


def as_result(sizes: tuple[int, ...], scalar: bool):
    return sizes[0] if scalar else sizes


@st.composite
def inputs(draw, dim):
    scalar = dim == 1 and draw(st.booleans())
    sizes = tuple(draw(st.integers(1, MAX_SIDE[dim])) for _ in range(dim))
    return sizes, scalar


@given(st.data())
def test_conv_output_size(data):
    dim = data.draw(st.sampled_from([1, 2, 3]))
    sizes, scalar = data.draw(inputs(dim))
    k = per_dim(data.draw, dim, st.integers(1, 6))
    s = per_dim(data.draw, dim, st.integers(1, 3))
    d = per_dim(data.draw, dim, st.integers(1, 3))
    p = data.draw(st.one_of(st.integers(0, 3), st.tuples(*[st.integers(0, 3)] * dim),
                            st.sampled_from(["same", "valid"])))
    if isinstance(p, str) and p == "same":
        s = 1  # torch refuses 'same' with stride > 1 at construction; tested separately
    module = CONV[dim](1, 1, k, stride=s, padding=p, dilation=d, bias=False)
    agree(lambda: conv_output_size(sizes[0] if scalar else sizes, k, stride=s, padding=p, dilation=d),
          lambda: as_result(spatial_output(module, sizes), scalar))


def test_conv_same_rejects_stride_like_torch():
    with pytest.raises(ValueError):
        nn.Conv2d(1, 1, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="strided"):
        conv_output_size((8, 8), 3, stride=2, padding="same")


@given(st.data())
def test_conv_transpose_output_size(data):
    dim = data.draw(st.sampled_from([1, 2, 3]))
    sizes, scalar = data.draw(inputs(dim))
    k = per_dim(data.draw, dim, st.integers(1, 5))
    s = per_dim(data.draw, dim, st.integers(1, 3))
    d = per_dim(data.draw, dim, st.integers(1, 2))
    p = per_dim(data.draw, dim, st.integers(0, 3))
    op = per_dim(data.draw, dim, st.integers(0, 2))
    module = CONVT[dim](1, 1, k, stride=s, padding=p, output_padding=op, dilation=d, bias=False)
    agree(lambda: conv_transpose_output_size(sizes[0] if scalar else sizes, k, stride=s, padding=p,
                                             output_padding=op, dilation=d),
          lambda: as_result(spatial_output(module, sizes), scalar))


@pytest.mark.parametrize("kind", ["max", "avg"])
@given(data=st.data())
def test_pool_output_size(kind, data):
    dim = data.draw(st.sampled_from([1, 2, 3]))
    sizes, scalar = data.draw(inputs(dim))
    k = per_dim(data.draw, dim, st.integers(1, 5))
    s = data.draw(st.one_of(st.none(), st.integers(1, 4), st.tuples(*[st.integers(1, 4)] * dim)))
    p = per_dim(data.draw, dim, st.integers(0, 3))
    ceil = data.draw(st.booleans())
    kw = dict(stride=s, padding=p, ceil_mode=ceil)
    if kind == "max":  # average pooling has no dilation argument
        kw["dilation"] = per_dim(data.draw, dim, st.integers(1, 3))
    module = (MAXPOOL if kind == "max" else AVGPOOL)[dim](k, **kw)
    agree(lambda: pool_output_size(sizes[0] if scalar else sizes, k, **kw, kind=kind),
          lambda: as_result(spatial_output(module, sizes), scalar))


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


@given(st.lists(st.integers(1, 9), min_size=1, max_size=5))
def test_check_shape_accepts_any_tensor_with_matching_rank(shape):
    names = [f"d{i}" for i in range(len(shape))]
    assert check_shape(torch.empty(*shape, device="meta"), " ".join(names)) == dict(zip(names, shape))


RNN_CLASSES = {"RNN": nn.RNN, "GRU": nn.GRU, "LSTM": nn.LSTM}


@given(st.sampled_from(sorted(RNN_CLASSES)), st.integers(1, 6), st.integers(1, 6), st.integers(1, 3),
       st.integers(1, 4), st.one_of(st.none(), st.integers(1, 3)), st.booleans(), st.booleans(), st.integers(0, 6))
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
