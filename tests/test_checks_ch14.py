"""Chapter 14 exercise questions: every reference answer agrees with an independent implementation.

The references in helpers/checks/ch14.py count the course's models on meta (or run torch's
FlopCounterMode); here they are compared, on the questions' own randomised cases, with Hugging Face
transformers' layers built on meta, with blocks assembled from plain torch.nn in the test, and with
the pure arithmetic of helpers.models.vit.vit_macs.
"""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from helpers.checks import check
from helpers.checks.registry import get, make_cases
from helpers.counting import count_params
from helpers.models.vit import vit_macs

transformers = pytest.importorskip("transformers")
from transformers.models.resnet import modeling_resnet as hf_resnet  # noqa: E402

SEEDS = [0, 1]


def cases_of(qid, seed):
    return make_cases(get(qid), random.Random(seed))


@pytest.mark.parametrize("seed", SEEDS)
def test_block_references_equal_hugging_face_layers(seed):
    basic, bottleneck = get("14.basic_block_params"), get("14.bottleneck_params")
    with torch.device("meta"):
        for (c_in, planes), kw in cases_of(basic.id, seed):
            layer = hf_resnet.ResNetBasicLayer(c_in, planes, stride=kw.get("stride", 1))
            assert basic.reference(c_in, planes, **kw) == count_params(layer)
        for (c_in, planes), kw in cases_of(bottleneck.id, seed):
            layer = hf_resnet.ResNetBottleNeckLayer(c_in, 4 * planes, stride=kw.get("stride", 1))
            assert bottleneck.reference(c_in, planes, **kw) == count_params(layer)


def test_resnet_reference_equals_hugging_face_model():
    q = get("14.resnet_params")
    for (layers,), kw in cases_of(q.id, 0)[:6]:
        e = 4 if kw.get("bottleneck") else 1
        config = transformers.ResNetConfig(layer_type="bottleneck" if e == 4 else "basic", depths=layers,
                                           hidden_sizes=[64 * e, 128 * e, 256 * e, 512 * e],
                                           num_labels=kw.get("num_classes", 1000))
        with torch.device("meta"):
            hf = transformers.ResNetForImageClassification(config)
        assert q.reference(layers, **kw) == count_params(hf)


@pytest.mark.parametrize("seed", SEEDS)
def test_inverted_residual_reference_equals_a_block_built_from_torch_nn(seed):
    q = get("14.inverted_residual")
    for (c_in, c_out, stride, t, h, w), _ in cases_of(q.id, seed):
        m = int(round(c_in * t))
        with torch.device("meta"):
            layers = [] if t == 1 else [nn.Conv2d(c_in, m, 1, bias=False), nn.BatchNorm2d(m), nn.ReLU6()]
            layers += [nn.Conv2d(m, m, 3, stride, 1, groups=m, bias=False), nn.BatchNorm2d(m), nn.ReLU6(),
                       nn.Conv2d(m, c_out, 1, bias=False), nn.BatchNorm2d(c_out)]
            block = nn.Sequential(*layers)
            shape = list(block(torch.empty(1, c_in, h, w)).shape)
        assert q.reference(c_in, c_out, stride, t, h, w) == [count_params(block), shape]


@pytest.mark.parametrize("seed", SEEDS)
def test_vit_params_reference_equals_hugging_face_vit(seed):
    q = get("14.vit_params")
    for (image, patch, layers, heads, hidden, mlp), kw in cases_of(q.id, seed)[:6]:
        config = transformers.ViTConfig(image_size=image, patch_size=patch, num_hidden_layers=layers,
                                        num_attention_heads=heads, hidden_size=hidden, intermediate_size=mlp,
                                        num_labels=kw.get("num_classes", 1000))
        with torch.device("meta"):
            hf = transformers.ViTForImageClassification(config)
        assert q.reference(image, patch, layers, heads, hidden, mlp, **kw) == count_params(hf)


def test_vit_macs_reference_equals_arithmetic_and_hugging_face_flops():
    q = get("14.vit_macs")
    for i, ((image, patch, layers, hidden, mlp), kw) in enumerate(cases_of(q.id, 1)[1:]):
        expected = q.reference(image, patch, layers, hidden, mlp, **kw)
        assert expected == vit_macs(image, patch, layers, hidden, mlp, **kw)
        if i < 3:  # HF's ViT (attention through F.scaled_dot_product_attention) counts the same
            config = transformers.ViTConfig(image_size=image, patch_size=patch, num_hidden_layers=layers,
                                            num_attention_heads=1, hidden_size=hidden, intermediate_size=mlp,
                                            num_labels=kw.get("num_classes", 1000))
            with torch.device("meta"):
                hf = transformers.ViTForImageClassification(config)
                with FlopCounterMode(display=False) as counter:
                    hf(pixel_values=torch.empty(1, 3, image, image))
            assert counter.get_total_flops() // 2 == expected


@pytest.mark.parametrize("seed", SEEDS)
def test_largest_vit_image_is_tight(seed):
    q, macs = get("14.largest_vit_image"), get("14.vit_macs")
    answers = set()
    for i, ((budget, patch, layers, hidden, mlp), kw) in enumerate(cases_of(q.id, seed)):
        side = q.reference(budget, patch, layers, hidden, mlp, **kw)
        answers.add(side)
        assert side % patch == 0
        if side:  # fits (by torch's own count for a few cases: the arithmetic equals it, tested above)
            fits = macs.reference if i % 4 == 1 else vit_macs
            assert fits(side, patch, layers, hidden, mlp, **kw) <= budget
        assert vit_macs(side + patch, patch, layers, hidden, mlp, **kw) > budget  # the next size does not
    assert 0 in answers  # the case where not even one patch fits


def test_a_wrong_vit_count_gets_a_hint_not_a_traceback(capsys):
    forgot_cls = lambda i, p, L, h, D, F, K=1000: (  # noqa: E731
        3 * p * p * D + D + ((i // p) ** 2) * D + L * (4 * D * D + 2 * D * F + 9 * D + F) + 2 * D + D * K + K)
    result = check("14.vit_params", forgot_cls)
    out = capsys.readouterr().out
    assert not result and out.startswith("❌ 14.vit_params") and "Traceback" not in out and "Hint" in out
