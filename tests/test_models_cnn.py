"""SimpleNet and DepthwiseSeparableConv2d: shapes and parameter counts vs formulas and torch."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from helpers import formulas, shapes
from helpers.counting import count_params, param_table
from helpers.models import DepthwiseSeparableConv2d, SimpleNet


def test_seed_configuration_matches_the_seed_printout():
    model = SimpleNet()  # the seed's layers: 3×32×32 in, 2 classes
    # the seed printed [432, 16, 131072, 32, 64, 2] and 131618; rebuild them from formulas
    expected = [
        *formulas.conv_params_breakdown(3, 16, 3, padding=1).values(),
        *formulas.linear_params_breakdown(16 * 16 * 16, 32).values(),
        *formulas.linear_params_breakdown(32, 2).values(),
    ]
    assert [p.numel() for p in model.parameters()] == expected
    assert count_params(model) == sum(expected) == param_table(model).total
    assert model.fc1.in_features == 16 * 16 * 16


def test_forward_shape_for_the_seed_input():
    torch.manual_seed(0)
    out = SimpleNet()(torch.randn(5, 3, 32, 32))
    assert tuple(out.shape) == (5, 2)


@given(h=st.integers(2, 40), w=st.integers(2, 40), c=st.integers(1, 4), k=st.integers(1, 5),
       o=st.integers(1, 8), u=st.integers(1, 16), b=st.integers(1, 3))
def test_any_input_size_builds_and_runs(h, w, c, k, o, u, b):
    model = SimpleNet(in_channels=c, num_classes=k, input_size=(h, w), conv_channels=o,
                      hidden=u).to("meta")
    out = model(torch.empty(b, c, h, w, device="meta"))
    assert tuple(out.shape) == (b, k)
    # flatten size == what torch actually produces after conv + pool
    feats = model.pool(model.conv1(torch.empty(b, c, h, w, device="meta")))
    assert model.flatten_features == feats[0].numel() == o * (h // 2) * (w // 2)
    assert count_params(model) == (formulas.conv_params(c, o, 3, padding=1)
                                   + formulas.linear_params(model.flatten_features, u)
                                   + formulas.linear_params(u, k))


def test_wrong_input_size_is_a_clear_error_not_a_silent_reshape():
    model = SimpleNet()  # built for 32×32
    with pytest.raises(ValueError, match=r"input_size=\(32, 32\).*\(28, 28\)"):
        model(torch.randn(64, 3, 28, 28))


def test_simplenet_28x28_grayscale():
    model = SimpleNet(in_channels=1, num_classes=10, input_size=(28, 28))
    assert model.fc1.in_features == 16 * shapes.pool_output_size(28, 2) ** 2 == 16 * 14 * 14
    assert tuple(model(torch.randn(64, 1, 28, 28)).shape) == (64, 10)


@given(c=st.integers(1, 16), o=st.integers(1, 16), k=st.integers(1, 5), s=st.integers(1, 3),
       p=st.integers(0, 2), d=st.integers(1, 2), bias=st.booleans(), hw=st.integers(10, 20))
def test_depthwise_separable_matches_standard_conv_shape(c, o, k, s, p, d, bias, hw):
    block = DepthwiseSeparableConv2d(c, o, k, stride=s, padding=p, dilation=d, bias=bias).to("meta")
    standard = nn.Conv2d(c, o, k, stride=s, padding=p, dilation=d, bias=bias).to("meta")
    x = torch.empty(2, c, hw, hw, device="meta")
    assert block(x).shape == standard(x).shape
    assert count_params(block) == (formulas.conv_params(c, c, k, groups=c, bias=bias)
                                   + formulas.conv_params(c, o, 1, bias=bias))
    assert count_params(block.depthwise) == c * k * k + (c if bias else 0)
