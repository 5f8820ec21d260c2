"""ResNet-18/50 and random ResNets vs Hugging Face's ResNetForImageClassification, built on meta.

Tensor for tensor: every parameter and buffer of ours (torchvision's names) is matched to HF's
tensor of the same role by an explicit name map, with the same shape, and nothing is left over.
Stage outputs are compared with HF's ``hidden_states``; a wrong channel count fails in both; with
HF's random weights copied in, both compute the same logits.
"""

from __future__ import annotations

import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers.counting import count_params
from helpers.models.resnet import BasicBlock, Bottleneck, ResNet, resnet18, resnet50
from tests._state_map import assert_same_logits, assert_same_state

transformers = pytest.importorskip("transformers")  # a dev dependency

# torchvision's published counts (docs of ResNet18_Weights / ResNet50_Weights.IMAGENET1K_V1)
TORCHVISION = {"resnet18": 11_689_512, "resnet50": 25_557_032}


def hf_name(name: str) -> str:
    """torchvision-style name → the name of the same tensor in HF's ResNetForImageClassification."""
    rules = [
        (r"^conv1\.", "resnet.embedder.embedder.convolution."),
        (r"^bn1\.", "resnet.embedder.embedder.normalization."),
        (r"^fc\.", "classifier.1."),
        (r"^layer(\d+)\.(\d+)\.downsample\.0\.",
         lambda m: f"resnet.encoder.stages.{int(m[1]) - 1}.layers.{m[2]}.shortcut.convolution."),
        (r"^layer(\d+)\.(\d+)\.downsample\.1\.",
         lambda m: f"resnet.encoder.stages.{int(m[1]) - 1}.layers.{m[2]}.shortcut.normalization."),
        (r"^layer(\d+)\.(\d+)\.conv(\d)\.",
         lambda m: f"resnet.encoder.stages.{int(m[1]) - 1}.layers.{m[2]}.layer.{int(m[3]) - 1}.convolution."),
        (r"^layer(\d+)\.(\d+)\.bn(\d)\.",
         lambda m: f"resnet.encoder.stages.{int(m[1]) - 1}.layers.{m[2]}.layer.{int(m[3]) - 1}.normalization."),
    ]
    for pattern, repl in rules:
        new, n = re.subn(pattern, repl, name)
        if n:
            return new
    raise AssertionError(f"no HF counterpart for {name}")


def hf_resnet(block: str, depths: list[int], widths: list[int], num_classes: int, device: str = "meta"):
    expansion = 4 if block == "bottleneck" else 1
    config = transformers.ResNetConfig(layer_type=block, depths=depths, embedding_size=widths[0],
                                       hidden_sizes=[w * expansion for w in widths], num_labels=num_classes)
    with torch.device(device):
        return transformers.ResNetForImageClassification(config)


def assert_same_tensors(ours: torch.nn.Module, theirs: torch.nn.Module) -> None:
    assert_same_state(ours, theirs, hf_name)
    assert count_params(ours) == count_params(theirs)


@pytest.mark.parametrize("name, build, block, depths", [
    ("resnet18", resnet18, "basic", [2, 2, 2, 2]),
    ("resnet50", resnet50, "bottleneck", [3, 4, 6, 3]),
])
def test_famous_resnets_equal_hugging_face_tensor_for_tensor(name, build, block, depths):
    with torch.device("meta"):
        ours = build()
    theirs = hf_resnet(block, depths, [64, 128, 256, 512], 1000)
    assert_same_tensors(ours, theirs)
    assert count_params(ours) == TORCHVISION[name]


@settings(max_examples=8, deadline=None)
@given(block=st.sampled_from(["basic", "bottleneck"]),
       depths=st.lists(st.integers(1, 3), min_size=1, max_size=4),
       base=st.integers(1, 12), num_classes=st.integers(1, 20),
       size=st.integers(1, 80), channels=st.sampled_from([3, 4]))
def test_random_resnets_equal_hugging_face(block, depths, base, num_classes, size, channels):
    widths = [base * 2 ** i for i in range(len(depths))]
    cls = Bottleneck if block == "bottleneck" else BasicBlock
    with torch.device("meta"):
        ours = ResNet(cls, depths, num_classes, widths=widths)
    theirs = hf_resnet(block, depths, widths, num_classes)
    assert_same_tensors(ours, theirs)
    # forward on meta: stage by stage the same shapes; a 4-channel image fails in both
    x = torch.empty(2, channels, size, size, device="meta")
    if channels != 3:
        with pytest.raises(RuntimeError):
            ours(x)
        with pytest.raises(ValueError):
            theirs(pixel_values=x)
        return
    out = theirs.resnet(pixel_values=x, output_hidden_states=True)
    h = ours.maxpool(ours.relu(ours.bn1(ours.conv1(x))))
    assert h.shape == out.hidden_states[0].shape
    for i, expected in enumerate(out.hidden_states[1:]):
        h = getattr(ours, f"layer{i + 1}")(h)
        assert h.shape == expected.shape
    assert ours(x).shape == theirs(pixel_values=x).logits.shape == (2, num_classes)


@pytest.mark.parametrize("block, cls", [("basic", BasicBlock), ("bottleneck", Bottleneck)])
def test_same_logits_as_hugging_face_with_its_weights(block, cls):
    torch.manual_seed(0)
    theirs = hf_resnet(block, [1, 2], [4, 8], 5, device="cpu")
    assert_same_logits(ResNet(cls, [1, 2], 5, widths=[4, 8]), theirs, hf_name, torch.randn(2, 3, 33, 29))


def test_blocks_shapes_and_shortcut_on_cpu():
    torch.manual_seed(0)
    x = torch.randn(2, 8, 9, 9)
    basic = BasicBlock(8, 8)
    assert basic.downsample is None and basic(x).shape == (2, 8, 9, 9)
    down = BasicBlock(8, 16, stride=2)
    assert down(x).shape == (2, 16, 5, 5)
    assert tuple(down.downsample[0].weight.shape) == (16, 8, 1, 1)
    bottle = Bottleneck(8, 4, stride=2)
    assert bottle(x).shape == (2, 16, 5, 5)
    assert all(m.bias is None for m in bottle.modules() if isinstance(m, torch.nn.Conv2d))


def test_invalid_layers_refused():
    with pytest.raises(ValueError, match="layers"):
        ResNet(BasicBlock, [2, 0, 2, 2])
    with pytest.raises(ValueError, match="layers"):
        ResNet(BasicBlock, [2, 2])
