"""helpers.models.blocks: shapes and counts of the "typical CNN block" against torch and the formulas."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from helpers import formulas
from helpers.counting import count_buffers, count_params
from helpers.models import ConvBlock, seed_cnn_block
from helpers.shapes import conv_output_size, pool_output_size


def test_seed_block_shape_and_counts():
    block = seed_cnn_block().eval()
    out = block(torch.zeros(64, 1, 28, 28))
    assert tuple(out.shape) == (64, 16, 13, 13)  # the seed's unpadded conv: 28 → 26 → 13
    assert count_params(block) == formulas.conv_params(1, 16, 3) + formulas.batchnorm_params(16)
    assert count_buffers(block) == formulas.batchnorm_buffers(16)
    assert [type(m) for m in block] == [nn.Conv2d, nn.ReLU, nn.MaxPool2d, nn.BatchNorm2d, nn.Dropout]


@settings(max_examples=40)
@given(cin=st.integers(1, 4), cout=st.integers(1, 6), k=st.sampled_from([1, 3, 5]),
       pool=st.integers(1, 3), size=st.integers(6, 14), bias=st.booleans())
def test_conv_block_matches_formulas(cin, cout, k, pool, size, bias):
    block = ConvBlock(cin, cout, k, pool=pool, conv_bias=bias).eval()
    out = block(torch.zeros(2, cin, size, size + 1))
    h1 = conv_output_size((size, size + 1), k, padding=k // 2)
    assert tuple(out.shape) == (2, cout, *pool_output_size(h1, pool))
    assert count_params(block) == (formulas.conv_params(cin, cout, k, bias=bias)
                                   + formulas.batchnorm_params(cout))
    assert count_buffers(block) == formulas.batchnorm_buffers(cout)


def test_conv_bias_before_batchnorm_is_cancelled():
    torch.manual_seed(0)
    block = ConvBlock(3, 8, conv_bias=True, p=0.0).train()
    x = torch.randn(4, 3, 10, 10)
    before = block(x)
    with torch.no_grad():
        block.conv.bias.add_(torch.randn(8) * 5)
    after = block(x)
    torch.testing.assert_close(before, after, atol=1e-4, rtol=1e-4)
