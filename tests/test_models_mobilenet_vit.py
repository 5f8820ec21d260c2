"""MobileNetV2 and ViT vs Hugging Face's MobileNetV2ForImageClassification / ViTForImageClassification.

Built on meta from configs (no weights): every tensor of ours (torchvision's names) maps to HF's
tensor of the same role with the same shape; stage shapes agree; invalid inputs fail in both; on
small CPU configs with HF's random weights copied in, both compute the same logits.
"""

from __future__ import annotations

import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers.counting import count_params
from helpers.models.mobilenet import InvertedResidual, MobileNetV2
from helpers.models.vit import VisionTransformer, vit_b_16, vit_macs, vit_macs_breakdown
from tests._state_map import assert_same_logits, assert_same_state

transformers = pytest.importorskip("transformers")  # a dev dependency

# torchvision's published counts (MobileNet_V2_Weights / ViT_B_16_Weights.IMAGENET1K_V1)
TORCHVISION = {"mobilenet_v2": 3_504_872, "vit_b_16": 86_567_656}


# --------------------------------------------------------------------------- MobileNetV2 ------

def hf_mobilenet_name(name: str) -> str:
    """torchvision-style name → HF MobileNetV2ForImageClassification's name of the same tensor."""
    conv_bn = {"0": "convolution", "1": "normalization"}
    base = "mobilenet_v2."
    if m := re.match(r"features\.0\.(\d)\.(.*)", name):  # stem conv 3×3/2
        return f"{base}conv_stem.first_conv.{conv_bn[m[1]]}.{m[2]}"
    if m := re.match(r"features\.18\.(\d)\.(.*)", name):  # last 1×1 conv to 1280
        return f"{base}conv_1x1.{conv_bn[m[1]]}.{m[2]}"
    if m := re.match(r"features\.1\.conv\.(.*)", name):  # t = 1: depthwise, projection
        rest = {"0.0": "conv_3x3.convolution", "0.1": "conv_3x3.normalization",
                "1": "reduce_1x1.convolution", "2": "reduce_1x1.normalization"}
        key, tail = m[1].rsplit(".", 1)
        return f"{base}conv_stem.{rest[key]}.{tail}"
    if m := re.match(r"features\.(\d+)\.conv\.(.*)", name):  # t = 6: expand, depthwise, projection
        rest = {"0.0": "expand_1x1.convolution", "0.1": "expand_1x1.normalization",
                "1.0": "conv_3x3.convolution", "1.1": "conv_3x3.normalization",
                "2": "reduce_1x1.convolution", "3": "reduce_1x1.normalization"}
        key, tail = m[2].rsplit(".", 1)
        return f"{base}layer.{int(m[1]) - 2}.{rest[key]}.{tail}"
    if name.startswith("classifier.1."):
        return name.replace("classifier.1.", "classifier.")
    raise AssertionError(f"no HF counterpart for {name}")


def hf_mobilenet(width_mult: float, num_classes: int, device: str = "meta", **kw):
    config = transformers.MobileNetV2Config(depth_multiplier=width_mult, num_labels=num_classes, **kw)
    with torch.device(device):
        return transformers.MobileNetV2ForImageClassification(config)


def test_mobilenet_v2_equals_hugging_face_and_torchvision_count():
    with torch.device("meta"):
        ours = MobileNetV2()
    assert_same_state(ours, hf_mobilenet(1.0, 1000), hf_mobilenet_name)
    assert count_params(ours) == TORCHVISION["mobilenet_v2"]


@settings(max_examples=5, deadline=None)
@given(width_mult=st.sampled_from([0.35, 0.5, 0.75, 1.0, 1.3, 1.4]), num_classes=st.integers(1, 30),
       size=st.integers(1, 100), channels=st.sampled_from([3, 1]))
def test_random_mobilenets_equal_hugging_face(width_mult, num_classes, size, channels):
    with torch.device("meta"):
        ours = MobileNetV2(num_classes, width_mult)
    theirs = hf_mobilenet(width_mult, num_classes)
    assert_same_state(ours, theirs, hf_mobilenet_name)
    x = torch.empty(2, channels, size, size, device="meta")
    if channels != 3:  # a grey image into an RGB stem fails in both
        with pytest.raises(RuntimeError):
            ours(x)
        with pytest.raises(RuntimeError):
            theirs(pixel_values=x)
        return
    out = theirs(pixel_values=x, output_hidden_states=True)
    h = ours.features[1](ours.features[0](x))
    for block, expected in zip(ours.features[2:18], out.hidden_states, strict=True):
        h = block(h)  # block by block: the same shapes as HF's 16 inverted residuals
        assert h.shape == expected.shape
    logits = ours.classifier(ours.features[18](h).mean((2, 3)))
    assert logits.shape == out.logits.shape == (2, num_classes)


def test_mobilenet_same_logits_as_hugging_face_with_its_weights():
    torch.manual_seed(0)
    # torchvision's padding and BatchNorm eps (HF defaults to TensorFlow's SAME padding, eps 1e-3)
    theirs = hf_mobilenet(0.35, 7, device="cpu", tf_padding=False, layer_norm_eps=1e-5)
    assert_same_logits(MobileNetV2(7, 0.35), theirs, hf_mobilenet_name, torch.randn(2, 3, 40, 36))


def test_inverted_residual_shapes_residual_and_depthwise_switch():
    torch.manual_seed(0)
    x = torch.randn(2, 8, 9, 9)
    same = InvertedResidual(8, 8, 1, 6)
    assert same.use_res_connect and same(x).shape == (2, 8, 9, 9)
    down = InvertedResidual(8, 16, 2, 6)
    assert not down.use_res_connect and down(x).shape == (2, 16, 5, 5)
    assert down.conv[1][0].groups == 48 and down.conv[1][0].weight.shape == (48, 1, 3, 3)
    dense = InvertedResidual(8, 16, 2, 6, depthwise=False)
    assert dense.conv[1][0].weight.shape == (48, 48, 3, 3) and dense(x).shape == (2, 16, 5, 5)
    with pytest.raises(ValueError, match="stride"):
        InvertedResidual(8, 8, 3, 6)


# --------------------------------------------------------------------------- ViT --------------

def hf_vit_name(name: str) -> str | tuple[str, ...]:
    """torchvision-style name → HF ViTForImageClassification's name(s) (transformers ≥ 5 layout)."""
    if name == "class_token":
        return "vit.embeddings.cls_token"
    if name == "encoder.pos_embedding":
        return "vit.embeddings.position_embeddings"
    if name.startswith("conv_proj."):
        return name.replace("conv_proj.", "vit.embeddings.patch_embeddings.projection.")
    if name.startswith("encoder.ln."):
        return name.replace("encoder.ln.", "vit.layernorm.")
    if name.startswith("heads.head."):
        return name.replace("heads.head.", "classifier.")
    m = re.match(r"encoder\.layers\.encoder_layer_(\d+)\.(.*)", name)
    assert m, f"no HF counterpart for {name}"
    layer, rest = f"vit.layers.{m[1]}.", m[2]
    if rest.startswith("self_attention.in_proj_"):  # packed (3D, D) = q; k; v
        kind = rest.rsplit("_", 1)[1]
        return tuple(f"{layer}attention.{p}_proj.{kind}" for p in "qkv")
    renames = {"ln_1.": "layernorm_before.", "ln_2.": "layernorm_after.", "mlp.0.": "mlp.fc1.",
               "mlp.3.": "mlp.fc2.", "self_attention.out_proj.": "attention.o_proj."}
    for ours, theirs in renames.items():
        if rest.startswith(ours):
            return layer + theirs + rest[len(ours):]
    raise AssertionError(f"no HF counterpart for {name}")


def hf_vit(image_size, patch_size, layers, heads, hidden, mlp, num_classes, device="meta", **kw):
    config = transformers.ViTConfig(image_size=image_size, patch_size=patch_size, num_hidden_layers=layers,
                                    num_attention_heads=heads, hidden_size=hidden, intermediate_size=mlp,
                                    num_labels=num_classes, **kw)
    with torch.device(device):
        return transformers.ViTForImageClassification(config)


def test_vit_b_16_equals_hugging_face_and_torchvision_count():
    with torch.device("meta"):
        ours = vit_b_16()
    assert_same_state(ours, hf_vit(224, 16, 12, 12, 768, 3072, 1000), hf_vit_name)
    assert count_params(ours) == TORCHVISION["vit_b_16"]
    assert ours.seq_length == (224 // 16) ** 2 + 1


@settings(max_examples=8, deadline=None)
@given(image_size=st.integers(4, 64), patch_size=st.integers(1, 16), layers=st.integers(1, 3),
       heads=st.integers(1, 4), head_dim=st.integers(1, 8), mlp=st.integers(1, 40),
       num_classes=st.integers(1, 20), wrong_size=st.booleans())
def test_random_vits_equal_hugging_face(image_size, patch_size, layers, heads, head_dim, mlp, num_classes,
                                        wrong_size):
    patch_size = min(patch_size, image_size)
    hidden = heads * head_dim
    with torch.device("meta"):
        ours = VisionTransformer(image_size, patch_size, layers, heads, hidden, mlp, num_classes)
    theirs = hf_vit(image_size, patch_size, layers, heads, hidden, mlp, num_classes)
    assert_same_state(ours, theirs, hf_vit_name)
    side = image_size + 1 if wrong_size else image_size
    x = torch.empty(2, 3, side, side, device="meta")
    if wrong_size:  # the position table fixes the image size: both refuse another one
        with pytest.raises(ValueError):
            ours(x)
        with pytest.raises(ValueError):
            theirs(pixel_values=x)
        return
    assert ours.patchify(x).shape == (2, ours.seq_length - 1, hidden)
    assert ours(x).shape == theirs(pixel_values=x).logits.shape == (2, num_classes)


def test_vit_same_logits_as_hugging_face_with_its_weights():
    torch.manual_seed(0)
    theirs = hf_vit(20, 5, 2, 2, 8, 12, 3, device="cpu", layer_norm_eps=1e-6)
    assert_same_logits(VisionTransformer(20, 5, 2, 2, 8, 12, 3), theirs, hf_vit_name, torch.randn(2, 3, 20, 20))


@settings(max_examples=6, deadline=None)
@given(image_size=st.integers(1, 48), patch_size=st.integers(1, 16), layers=st.integers(1, 3),
       heads=st.integers(1, 3), head_dim=st.integers(1, 6), mlp=st.integers(1, 30), num_classes=st.integers(1, 9),
       in_channels=st.integers(1, 4))
def test_vit_macs_equal_torch_flop_counter(image_size, patch_size, layers, heads, head_dim, mlp, num_classes,
                                           in_channels):
    from torch.utils.flop_counter import FlopCounterMode

    args = (image_size, patch_size, layers, heads * head_dim, mlp, num_classes)
    if patch_size > image_size:  # no patch fits: the model refuses and so does the arithmetic
        with pytest.raises(ValueError):
            VisionTransformer(image_size, patch_size, layers, heads, heads * head_dim, mlp, num_classes)
        with pytest.raises(ValueError):
            vit_macs(*args, in_channels=in_channels)
        return
    with torch.device("meta"):
        model = VisionTransformer(image_size, patch_size, layers, heads, heads * head_dim, mlp, num_classes,
                                  in_channels=in_channels)
    with FlopCounterMode(display=False) as counter:
        model(torch.empty(1, in_channels, image_size, image_size, device="meta"))
    assert 2 * vit_macs(*args, in_channels=in_channels) == counter.get_total_flops()
    assert sum(vit_macs_breakdown(*args, in_channels=in_channels).values()) == vit_macs(*args, in_channels=in_channels)


def test_vit_b_16_macs_match_torchvision_table():
    assert round(vit_macs(224, 16, 12, 768, 3072) / 1e9, 3) == 17.564  # ViT_B_16_Weights "_ops"
