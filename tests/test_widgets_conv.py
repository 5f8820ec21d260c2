"""The conv/pool explorer's pure logic (helpers.widgets.conv.explore) checked against torch."""

import warnings

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from helpers.counting import count_params
from helpers.widgets import conv_explorer
from helpers.widgets import explore_conv as explore
from helpers.widgets.conv import CONV_OUTPUT_CSS_CLASS as OUTPUT_CSS_CLASS
from helpers.widgets.conv import cell_label_fontsize, coverage, coverage_vmax, draw_conv


def _torch_conv(n, size, k, s, p, d, cin, cout, g, bias):
    cls = nn.Conv1d if n == 1 else nn.Conv2d
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 'same' with an even kernel warns about a padded copy
        layer = cls(cin, cout, k, stride=s, padding=p, dilation=d, groups=g, bias=bias)
        y = layer(torch.zeros(1, cin, *([size] * n)))
    return tuple(y.shape[2:]), count_params(layer)


conv_cfg = dict(n=st.sampled_from([1, 2]), size=st.integers(1, 12), k=st.integers(1, 5),
                s=st.integers(1, 3), p=st.one_of(st.integers(0, 3), st.sampled_from(["same", "valid"])),
                d=st.integers(1, 3), cin=st.integers(1, 6), cout=st.integers(1, 6),
                g=st.integers(1, 3), bias=st.booleans())


@given(**conv_cfg)
def test_conv_output_size_and_params_match_torch(n, size, k, s, p, d, cin, cout, g, bias):
    e = explore("conv", size if n == 1 else (size, size), k, s, p, d, in_channels=cin,
                out_channels=cout, groups=g, bias=bias)
    try:
        shape, params = _torch_conv(n, size, k, s, p, d, cin, cout, g, bias)
    except (RuntimeError, ValueError):
        assert not e.ok and e.output_text.startswith("⚠") and e.output_size is None
        return
    assert e.ok, e.error
    assert e.output_size == shape
    assert e.params == params
    assert e.output_text == "output size: " + " × ".join(map(str, shape))
    assert f"= {params:,}" in e.params_text


@given(n=st.sampled_from([1, 2]), size=st.integers(1, 12), k=st.integers(1, 4),
       s=st.one_of(st.none(), st.integers(1, 4)), p=st.integers(0, 2), d=st.integers(1, 2),
       ceil=st.booleans(), pool=st.sampled_from(["max", "avg"]))
def test_pool_output_size_matches_torch(n, size, k, s, p, d, ceil, pool):
    if pool == "avg":
        d = 1
        layer = (nn.AvgPool1d if n == 1 else nn.AvgPool2d)(k, s, p, ceil_mode=ceil)
    else:
        layer = (nn.MaxPool1d if n == 1 else nn.MaxPool2d)(k, s, p, d, ceil_mode=ceil)
    e = explore("pool", size if n == 1 else (size, size), k, s, p, d, ceil_mode=ceil, pool=pool)
    try:
        shape = tuple(layer(torch.zeros(1, 1, *([size] * n))).shape[2:])
    except (RuntimeError, ValueError):
        assert not e.ok and e.output_text.startswith("⚠")
        return
    assert e.ok, e.error
    assert e.output_size == shape and e.params == 0


@given(size=st.integers(1, 12), k=st.integers(1, 4), s=st.integers(1, 3),
       p=st.one_of(st.integers(0, 2), st.just("same")), d=st.integers(1, 3))
def test_windows_are_the_positions_torch_reads(size, k, s, p, d):
    """A one-hot input at position x changes output i exactly when x is one of window i's taps
    (also for padding='same' with an even kernel, where torch pads more on the right)."""
    if p == "same":
        s = 1
    e = explore("conv", size, k, s, p, d)
    if not e.ok:
        return
    conv = nn.Conv1d(1, 1, k, stride=s, padding=p, dilation=d, bias=False)
    nn.init.ones_(conv.weight)
    onehots = torch.eye(size).unsqueeze(1)  # (size, 1, size): sample x is one-hot at x
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        touched = conv(onehots)[:, 0] != 0
    for x in range(size):
        expected = [x in {start + j * d for j in range(k)} for start in e.windows[0]]
        assert touched[x].tolist() == expected


@given(size=st.integers(3, 9), k=st.integers(1, 3), s=st.integers(1, 3), p=st.integers(0, 1))
def test_coverage_counts_match_conv_transpose_of_ones(size, k, s, p):
    """The number of windows reading each input cell = the gradient of sum(conv(x)) w.r.t. x for
    an all-ones kernel (padding cells excluded)."""
    e = explore("conv", (size, size), k, s, p)
    if not e.ok:
        return
    x = torch.zeros(1, 1, size, size, requires_grad=True)
    F.conv2d(x, torch.ones(1, 1, k, k), stride=s, padding=p).sum().backward()
    grid = torch.tensor(coverage(e))[p:p + size, p:p + size]
    assert torch.equal(grid, x.grad[0, 0].to(grid.dtype))


def test_formula_text_shows_the_numbers_and_the_ceil_mode_drop():
    e = explore("pool", 7, 2, stride=3, padding=1, ceil_mode=True)
    torch_size = nn.MaxPool1d(2, 3, 1, ceil_mode=True)(torch.zeros(1, 1, 7)).shape[-1]
    assert e.output_size == (torch_size,)
    assert "⌈(7 + 2·1 − 1·(2−1) − 1) / 3⌉" in e.formula
    assert "drops it" in e.formula and e.formula.endswith(f": {torch_size}")


def test_friendly_errors_instead_of_exceptions():
    assert "divisible by groups" in explore("conv", 8, 3, in_channels=3, groups=2).output_text
    assert "stride" in explore("conv", 8, 3, stride=2, padding="same").output_text
    assert "kernel larger than the input" in explore("conv", 2, 5).output_text
    assert explore("pool", 8, 2, padding="same").output_text.startswith("⚠")
    with pytest.raises(ValueError):
        explore("dense", 8, 3)


def test_widget_builds_updates_and_exposes_the_css_class():
    box = conv_explorer("conv", input_size=28, kernel_size=3, padding=1, dims=2)
    html = [w for w in box.children[0].children[1].children if OUTPUT_CSS_CLASS in w._dom_classes]
    assert len(html) == 1 and "28 × 28" in html[0].value
    sliders = {c.description: c for c in box.children[0].children[0].children
               if hasattr(c, "description")}
    sliders["stride"].value = 2
    assert "14 × 14" in html[0].value
    assert box.explore().output_text in html[0].value
    pool = conv_explorer("pool", input_size=5, kernel_size=2, ceil_mode=True, dims=1)
    assert pool.explore().output_size == (3,)


def _numbers_drawn(e):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = draw_conv(e)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.texts]
    norm = ax.images[0].norm
    plt.close(fig)
    return labels, norm


def test_uniform_coverage_is_not_one_solid_square_and_small_cells_hide_numbers():
    """A large input with stride = kernel = 3: every cell is read once. The colour scale must leave
    those cells a mid-tone (not the top of the map), and 60×60 cells are too small for numbers."""
    e = explore("conv", (60, 60), 3, stride=3)
    grid = coverage(e)
    assert {v for row in grid for v in row} == {1}            # torch reads each cell once (tested above)
    labels, norm = _numbers_drawn(e)
    assert norm.vmax > 1 and norm(1) < 0.75                    # count 1 is not the darkest colour
    assert labels == []                                        # no unreadable numbers
    small_labels, _ = _numbers_drawn(explore("conv", (6, 6), 3, stride=1))
    assert len(small_labels) == 36 and set(small_labels) <= {str(v) for v in range(10)}


@given(points=st.floats(0.5, 200), digits=st.integers(1, 4))
def test_cell_label_fontsize_fits_the_cell(points, digits):
    size = cell_label_fontsize(points, digits)
    if size is None:
        assert 0.8 * points / (0.6 * digits + 0.4) < 5
    else:
        assert 5 <= size <= 7 and 0.6 * size * digits < points   # the label is narrower than the cell


@given(grid=st.lists(st.lists(st.integers(0, 30), min_size=1, max_size=5), min_size=1, max_size=5))
def test_coverage_vmax_leaves_headroom(grid):
    assert coverage_vmax(grid) > max(max(row) for row in grid)
