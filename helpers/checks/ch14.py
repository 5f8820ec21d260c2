"""Chapter 14 (vision backbones) exercise questions.

Reference answers are computed by torch on the ``meta`` device from the course's models
(``helpers.models.resnet``, ``helpers.models.mobilenet``, ``helpers.models.vit``, each tested tensor
for tensor against Hugging Face transformers), by torch's ``FlopCounterMode``, or — for the budget
search — by ``helpers.models.vit.vit_macs`` (pure arithmetic, tested equal to ``FlopCounterMode``).
Sizes and budgets come from the shared generators of :mod:`helpers.checks._gen`.
"""

from __future__ import annotations

import random

from helpers.checks._gen import BUDGET_PLACES, budget_for_size, largest_fitting, log_uniform
from helpers.checks.registry import Question, register

_FIRST_META = 30.0  # the first module built on meta loads torch's decompositions (a few seconds, once)


def _count_on_meta(build) -> int:
    import torch

    from helpers.counting import count_params

    with torch.device("meta"):
        return count_params(build())


# --------------------------------------------------------------------------- 1. basic block

def basic_block_params_reference(in_channels: int, planes: int, stride: int = 1) -> int:
    """count_params of helpers.models.resnet.BasicBlock (torchvision's layout), built on meta."""
    from helpers.models.resnet import BasicBlock

    return _count_on_meta(lambda: BasicBlock(in_channels, planes, stride))


def _block_cases(rng: random.Random, first: list, expansion: int) -> list:
    cases = list(first)
    for i in range(16):
        planes = log_uniform(rng, 1, 512)
        kwargs = {"stride": 2} if i % 3 == 1 else ({"stride": 1} if i % 5 == 0 else {})
        # a third of the cases keep the shape (identity shortcut), the others need the projection
        in_channels = planes * expansion if i % 3 == 0 else log_uniform(rng, 1, 2048)
        cases.append(((in_channels, planes), kwargs))
    return cases


register(Question(
    id="14.basic_block_params",
    title="Count a ResNet basic block: basic_block_params(in_channels, planes, stride=1)",
    cases=lambda rng: _block_cases(rng, [((64, 64), {}), ((64, 128), {"stride": 2})], 1),
    reference=basic_block_params_reference,
    timeout=_FIRST_META,
    hint="two 3×3 convs without bias (in·planes·9 and planes·planes·9), a BatchNorm after each (2·planes "
         "each); when stride ≠ 1 or in_channels ≠ planes the shortcut is a 1×1 conv (in·planes, no bias) + "
         "BatchNorm (2·planes). basic_block_params(64, 64) == 73,984.",
))


# --------------------------------------------------------------------------- 2. bottleneck

def bottleneck_params_reference(in_channels: int, planes: int, stride: int = 1) -> int:
    """count_params of helpers.models.resnet.Bottleneck (torchvision's layout), built on meta."""
    from helpers.models.resnet import Bottleneck

    return _count_on_meta(lambda: Bottleneck(in_channels, planes, stride))


register(Question(
    id="14.bottleneck_params",
    title="Count a ResNet bottleneck block (output 4·planes): bottleneck_params(in_channels, planes, stride=1)",
    cases=lambda rng: _block_cases(rng, [((256, 64), {}), ((256, 128), {"stride": 2}), ((64, 64), {})], 4),
    reference=bottleneck_params_reference,
    timeout=_FIRST_META,
    hint="1×1 in → planes, 3×3 planes → planes, 1×1 planes → 4·planes, all without bias, each followed by a "
         "BatchNorm (2 per channel); a 1×1 projection in → 4·planes + BatchNorm when stride ≠ 1 or "
         "in_channels ≠ 4·planes. bottleneck_params(256, 128, stride=2) == 379,392.",
))


# --------------------------------------------------------------------------- 3. whole ResNet

def resnet_params_reference(layers: list, num_classes: int = 1000, bottleneck: bool = False) -> int:
    """count_params of helpers.models.resnet.ResNet(block, layers, num_classes), built on meta."""
    from helpers.models.resnet import BasicBlock, Bottleneck, ResNet

    block = Bottleneck if bottleneck else BasicBlock
    return _count_on_meta(lambda: ResNet(block, list(layers), num_classes))


def _resnet_cases(rng: random.Random) -> list:
    cases: list = [(([2, 2, 2, 2],), {}), (([3, 4, 6, 3],), {"bottleneck": True})]
    for i in range(10):
        kwargs: dict = {}
        if i % 2:
            kwargs["bottleneck"] = rng.random() < 0.7
        if rng.random() < 0.6:
            kwargs["num_classes"] = log_uniform(rng, 1, 22_000)
        cases.append((([rng.randint(1, 8) for _ in range(4)],), kwargs))
    return cases


register(Question(
    id="14.resnet_params",
    title="Count a whole ResNet: resnet_params(layers, num_classes=1000, bottleneck=False)",
    cases=_resnet_cases,
    reference=resnet_params_reference,
    timeout=_FIRST_META,
    hint="stem: Conv2d(3, 64, 7, bias=False) + BatchNorm (2·64); stages with planes 64, 128, 256, 512 and "
         "layers[i] blocks, the first block of stages 2–4 with stride 2 (stage 1's first block needs a "
         "projection only for bottlenecks: 64 → 256); fc: C·num_classes + num_classes with C = 512 "
         "(basic) or 2048 (bottleneck). ResNet-18 = 11,689,512, ResNet-50 = 25,557,032.",
))


# --------------------------------------------------------------------------- 4. inverted residual (torch code)

def inverted_residual_reference(in_channels: int, out_channels: int, stride: int, expand_ratio: int,
                                height: int, width: int) -> list:
    """[parameters, output shape] of helpers.models.mobilenet.InvertedResidual on a meta input (1, C, H, W)."""
    import torch

    from helpers.counting import count_params
    from helpers.models.mobilenet import InvertedResidual

    with torch.device("meta"):
        block = InvertedResidual(in_channels, out_channels, stride, expand_ratio)
        y = block(torch.empty(1, in_channels, height, width))
    return [count_params(block), list(y.shape)]


def _inverted_cases(rng: random.Random) -> list:
    cases: list = [((24, 32, 2, 6, 56, 56), {}), ((32, 16, 1, 1, 112, 112), {})]
    for i in range(10):
        c_in = rng.choice([8, 16, 24, 32, 64, 96, 160]) if i % 2 else log_uniform(rng, 1, 200)
        c_out = c_in if i % 4 == 0 else log_uniform(rng, 1, 320)
        cases.append(((c_in, c_out, rng.choice([1, 2]), rng.choice([1, 2, 3, 4, 6]),
                       rng.randint(1, 64), rng.randint(1, 64)), {}))
    return cases


register(Question(
    id="14.inverted_residual",
    title="Build MobileNetV2's inverted residual with torch.nn and return [parameters, output shape]: "
          "inverted_residual(in_channels, out_channels, stride, expand_ratio, height, width)",
    cases=_inverted_cases,
    reference=inverted_residual_reference,
    timeout=_FIRST_META,
    hint="M = round(in_channels·expand_ratio). Without expansion when expand_ratio == 1, else "
         "Conv2d(in, M, 1, bias=False) + BatchNorm2d(M) + ReLU6; then Conv2d(M, M, 3, stride, padding=1, "
         "groups=M, bias=False) + BatchNorm2d(M) + ReLU6; then Conv2d(M, out, 1, bias=False) + "
         "BatchNorm2d(out). Run it on torch.empty(1, in, height, width, device='meta').",
))


# --------------------------------------------------------------------------- 5. ViT count

def vit_params_reference(image_size: int, patch_size: int, num_layers: int, num_heads: int, hidden_dim: int,
                         mlp_dim: int, num_classes: int = 1000) -> int:
    """count_params of helpers.models.vit.VisionTransformer (torchvision's layout), built on meta."""
    from helpers.models.vit import VisionTransformer

    return _count_on_meta(lambda: VisionTransformer(image_size, patch_size, num_layers, num_heads, hidden_dim,
                                                    mlp_dim, num_classes))


def _vit_config(rng: random.Random) -> tuple[int, int, int, int, int]:
    """(image_size, patch_size, num_layers, hidden_dim multiple of the heads, num_heads)."""
    patch = rng.choice([2, 4, 7, 8, 14, 16, 32])
    image = patch * rng.randint(1, 24) + rng.choice([0, 0, 0, rng.randint(1, patch - 1)])  # sometimes not divisible
    heads = rng.choice([1, 2, 3, 4, 6, 8, 12])
    return image, patch, rng.randint(1, 12), heads * rng.choice([8, 16, 32, 64]), heads


def _vit_params_cases(rng: random.Random) -> list:
    cases: list = [((224, 16, 12, 12, 768, 3072), {}), ((224, 32, 12, 12, 768, 3072), {"num_classes": 10})]
    for _ in range(10):
        image, patch, layers, hidden, heads = _vit_config(rng)
        kwargs = {"num_classes": log_uniform(rng, 1, 22_000)} if rng.random() < 0.5 else {}
        cases.append(((image, patch, layers, heads, hidden, rng.choice([hidden, 2 * hidden, 4 * hidden])), kwargs))
    return cases


register(Question(
    id="14.vit_params",
    title="Count a Vision Transformer: vit_params(image_size, patch_size, num_layers, num_heads, hidden_dim, "
          "mlp_dim, num_classes=1000)",
    cases=_vit_params_cases,
    reference=vit_params_reference,
    timeout=_FIRST_META,
    hint="patch conv 3·p²·D + D; [CLS] D; positions T·D with T = (image_size // p)² + 1; per block "
         "4D² + 4D (attention) + 2·D·F + F + D (MLP) + 4D (two LayerNorms); final LayerNorm 2D; head D·K + K. "
         "num_heads changes nothing. ViT-B/16 = 86,567,656.",
))


# --------------------------------------------------------------------------- 6. ViT MACs

def vit_macs_reference(image_size: int, patch_size: int, num_layers: int, hidden_dim: int, mlp_dim: int,
                       num_classes: int = 1000) -> int:
    """MACs of one image through VisionTransformer: torch's FlopCounterMode on meta, FLOPs / 2."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from helpers.models.vit import VisionTransformer

    with torch.device("meta"):
        model = VisionTransformer(image_size, patch_size, num_layers, 1, hidden_dim, mlp_dim, num_classes)
        with FlopCounterMode(display=False) as counter:
            model(torch.empty(1, 3, image_size, image_size))
    return counter.get_total_flops() // 2


def _vit_macs_cases(rng: random.Random) -> list:
    cases: list = [((224, 16, 12, 768, 3072), {}), ((224, 16, 12, 384, 1536), {"num_classes": 100})]  # B/16, S/16
    for _ in range(8):
        image, patch, layers, hidden, _heads = _vit_config(rng)
        kwargs = {"num_classes": log_uniform(rng, 1, 22_000)} if rng.random() < 0.5 else {}
        cases.append(((image, patch, layers, hidden, rng.choice([hidden, 4 * hidden])), kwargs))
    return cases


register(Question(
    id="14.vit_macs",
    title="MACs of one image through a ViT: vit_macs(image_size, patch_size, num_layers, hidden_dim, mlp_dim, "
          "num_classes=1000)",
    cases=_vit_macs_cases,
    reference=vit_macs_reference,
    timeout=_FIRST_META,
    hint="patch conv: N·(3·p²)·D for N = (image_size // p)² patches; per block, once per token (T = N + 1): "
         "4·D² (q, k, v, out) + 2·D·F (MLP); attention Q·Kᵀ and A·V: 2·T²·D per block; head D·K (the [CLS] token "
         "only). Norms, softmax and additions are not counted. ViT-B/16 at 224² = 17,563,828,224.",
))


# --------------------------------------------------------------------------- 7. largest image in a budget

def largest_vit_image_reference(budget_macs: int, patch_size: int, num_layers: int, hidden_dim: int,
                                mlp_dim: int, num_classes: int = 1000) -> int:
    """Largest image side, a multiple of patch_size, whose ViT MACs (helpers.models.vit.vit_macs) fit
    the budget; 0 if not even one patch fits."""
    from helpers.models.vit import vit_macs

    return largest_fitting(lambda side: vit_macs(side, patch_size, num_layers, hidden_dim, mlp_dim, num_classes),
                           budget_macs, step=patch_size)


def _largest_cases(rng: random.Random) -> list:
    from helpers.models.vit import vit_macs

    cases: list = []
    for i in range(12):
        if i == 0:
            patch, layers, hidden, mlp, kwargs = 16, 12, 768, 3072, {}
        else:
            patch, layers = rng.choice([4, 8, 14, 16, 32]), rng.randint(1, 12)
            hidden = rng.choice([64, 128, 192, 384, 768])
            mlp, kwargs = 4 * hidden, ({"num_classes": log_uniform(rng, 1, 22_000)} if i % 3 else {})
        count = lambda side: vit_macs(side, patch, layers, hidden, mlp, **kwargs)  # noqa: E731
        if i == 11:  # not even one patch fits
            budget = max(0, count(patch) - rng.randint(1, 1000))
        else:
            budget = budget_for_size(rng, count, patch * rng.randint(1, 40), BUDGET_PLACES[i % 3], step=patch)
        cases.append(((budget, patch, layers, hidden, mlp), kwargs))
    return cases


register(Question(
    id="14.largest_vit_image",
    title="Largest image side (a multiple of patch_size) a ViT can process within a MAC budget: "
          "largest_vit_image(budget_macs, patch_size, num_layers, hidden_dim, mlp_dim, num_classes=1000)",
    cases=_largest_cases,
    reference=largest_vit_image_reference,
    hint="reuse your vit_macs: try side = patch_size, 2·patch_size, … while vit_macs(side, …) <= budget_macs "
         "and return the last side that fitted (0 if even side = patch_size does not fit). A budget exactly "
         "equal to a size's MACs still fits.",
))


# --------------------------------------------------------------------------- 8. repair a basic block in torch

def fixed_basic_block_reference(in_channels: int, out_channels: int, stride: int):
    """helpers.models.resnet.BasicBlock (torchvision's layout): a 1×1 conv + BatchNorm projection
    ``downsample`` only when stride ≠ 1 or in_channels ≠ out_channels, else the identity (None)."""
    from helpers.models.resnet import BasicBlock

    return BasicBlock(in_channels, out_channels, stride)


def _fixed_block_cases(rng: random.Random) -> list:
    cases = []
    for i in range(8):
        out_channels = log_uniform(rng, 4, 64)
        if i % 3 == 0:  # identity shortcut: same channels, stride 1 (an always-on projection fails here)
            cases.append(((out_channels, out_channels, 1), {}))
            continue
        stride = 2 if i % 3 == 1 else 1
        in_channels = log_uniform(rng, 4, 64)
        while stride == 1 and in_channels == out_channels:  # a channel change must need the projection
            in_channels = log_uniform(rng, 4, 64)
        cases.append(((in_channels, out_channels, stride), {}))
    return cases


def _fixed_block_probe(in_channels: int, out_channels: int, stride: int) -> dict:
    """A (2, C_in, 6, 6) batch (B = 2 ≠ the 6×6 map); 6 output values on fixed weights, eval mode."""
    return {"input": [2, in_channels, 6, 6], "values": 6}


register(Question(
    id="14.fixed_basic_block",
    title="Repair a ResNet basic block in torch: return the block with the right shortcut",
    cases=_fixed_block_cases,
    reference=fixed_basic_block_reference,
    probe=_fixed_block_probe,
    timeout=_FIRST_META,
    hint="out + identity needs identity of shape (B, out_channels, H', W'): when stride ≠ 1 or in_channels ≠ "
         "out_channels, set downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), "
         "nn.BatchNorm2d(out_channels)); otherwise keep downsample = None (the identity adds no parameters).",
))
