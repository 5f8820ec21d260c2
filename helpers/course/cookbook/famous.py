"""How many parameters does X have? Famous models built from `helpers.models` (or diffusers) on the meta
device and counted with `helpers.counting.count_params`, each beside its published figure and source."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from helpers.course.cookbook.render import header_html, link_html, section_link

__all__ = ["Famous", "FAMOUS", "FamousTable", "famous_models", "active_params", "LLAMA_3_2_1B"]

_CH12, _CH14 = "12_modern_llms", "14_vision_backbones"


@dataclass(frozen=True)
class Famous:
    """A famous model: how to build it (from ``helpers.models``, on the meta device), what the
    published figure says (with its source), and the chapter that counts it layer by layer."""

    name: str
    build: Callable[[], Any]
    published: str
    chapter: Optional[tuple[str, str]] = None
    count: Optional[Callable[[Any], int]] = None  # default: helpers.counting.count_params

    @property
    def link(self) -> Optional[tuple[str, str]]:
        return section_link(self.chapter)


def _gpt2(n_layer: int, n_head: int, n_embd: int) -> Callable[[], Any]:
    def build() -> Any:
        from helpers.models import GPT, GPTConfig  # noqa: PLC0415
        return GPT(GPTConfig(n_layer=n_layer, n_head=n_head, n_embd=n_embd))
    return build


def _model(name: str, *args: Any, config: Optional[str] = None) -> Callable[[], Any]:
    def build() -> Any:
        import helpers.models as models  # noqa: PLC0415
        if config is not None:
            return getattr(models, name)(getattr(models, config)())
        return getattr(models, name)(*args)
    return build


def _llama(hf_config: Optional[dict[str, Any]] = None, planner: Optional[str] = None) -> Callable[[], Any]:
    """The course's Llama from a Hugging Face config dict (or a `PLANNER_MODELS` entry by name)."""
    def build() -> Any:
        from helpers.models import Llama, LlamaConfig  # noqa: PLC0415
        config = hf_config
        if planner is not None:
            from helpers.widgets.planner import PLANNER_MODELS  # noqa: PLC0415
            config = PLANNER_MODELS[planner]
        return Llama(LlamaConfig.from_hf(config))
    return build


def active_params(model: Any) -> int:
    """Parameters one token uses in a Mixtral-style `Llama`: everything minus, per MoE layer, the
    E − k experts it is not routed to (counted from the model's own expert tensors)."""
    from helpers.counting import count_params  # noqa: PLC0415

    unused = sum((m.num_experts - m.top_k) * count_params(m.experts[0]) for m in model.modules()
                 if hasattr(m, "experts") and hasattr(m, "top_k"))
    return count_params(model) - unused


def _sd15_unet() -> Any:
    from diffusers import UNet2DConditionModel  # noqa: PLC0415
    return UNet2DConditionModel(cross_attention_dim=768)  # SD 1.5: CLIP ViT-L/14 text tokens of width 768


#: Llama-3.2-1B's config.json (meta-llama/Llama-3.2-1B): head_dim 64 = 2048 / 32, tied embeddings
LLAMA_3_2_1B: dict[str, Any] = dict(vocab_size=128256, hidden_size=2048, intermediate_size=8192,
                                    num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8,
                                    head_dim=64, tie_word_embeddings=True)


def _transformer_base() -> Any:
    import torch.nn as nn  # noqa: PLC0415
    return nn.Transformer(batch_first=True)


_CH11_FAMOUS = ("11_capacity_and_cost", "6. Famous models, counted from code")
FAMOUS: tuple[Famous, ...] = (
    Famous("LeNet-5 (modern form)", _model("LeNet5"),
           "≈ 60,000 trainable (LeCun et al. 1998, §II.B; sparse C3, trainable pooling, fixed RBF output)",
           _CH11_FAMOUS),
    Famous("ResNet-18", _model("resnet18"), "11,689,512 (torchvision ResNet18_Weights.IMAGENET1K_V1)"),
    Famous("ResNet-50", _model("resnet50"), "25,557,032 (torchvision ResNet50_Weights.IMAGENET1K_V1)",
           ("11_capacity_and_cost", "2. FLOPs vs MACs")),
    Famous("U-Net (original, 2 classes)", _model("original_unet"),
           "architecture of Ronneberger et al. 2015, arXiv:1505.04597, Fig. 1",
           ("09_unet", "7 · How many parameters does the original U-Net have?")),
    Famous("nn.Transformer() (base, no embeddings)", _transformer_base,
           "65M with embeddings (Vaswani et al. 2017, arXiv:1706.03762, Table 3, base)",
           ("08_attention_transformers", "4. The feed-forward network and the transformer block")),
    Famous("BERT-base", _model("Bert", config="BertConfig"),
           "110M (Devlin et al. 2018, arXiv:1810.04805, §3)", _CH11_FAMOUS),
    Famous("GPT-2 small", _gpt2(12, 12, 768), "117M in Radford et al. 2019, Table 2; 124M on the Hugging Face hub",
           ("08_attention_transformers", "5. GPT-2 small from a config: 124,439,808 parameters")),
    Famous("GPT-2 medium", _gpt2(24, 16, 1024), "345M (Radford et al. 2019, Table 2)"),
    Famous("GPT-2 large", _gpt2(36, 20, 1280), "762M (Radford et al. 2019, Table 2)"),
    Famous("GPT-2 XL", _gpt2(48, 25, 1600), "1542M (Radford et al. 2019, Table 2)"),
    Famous("Llama-2-7B", _model("Llama", config="LlamaConfig"),
           "7B (Touvron et al. 2023, arXiv:2307.09288, Table 1)", _CH11_FAMOUS),
    Famous("Llama-3-8B", _llama(planner="Llama-3-8B"), "8B (Llama Team 2024, arXiv:2407.21783, Table 3)",
           (_CH12, "6 · Exact counts: closed form == Hugging Face == the course's Llama")),
    Famous("Llama-3.2-1B", _llama(LLAMA_3_2_1B), "1.23B (Meta's Llama 3.2 model card, meta-llama/Llama-3.2-1B)",
           (_CH12, "5 · Tied vs untied embeddings")),
    Famous("Mixtral-8x7B (total)", _llama(planner="Mixtral-8x7B"),
           "47B (Jiang et al. 2024, arXiv:2401.04088, abstract); 46.7B in Mistral AI's announcement",
           (_CH12, "8 · Mixture of experts: total vs active parameters")),
    Famous("Mixtral-8x7B (active per token)", _llama(planner="Mixtral-8x7B"),
           "13B (Jiang et al. 2024, arXiv:2401.04088, abstract); 12.9B in Mistral AI's announcement",
           (_CH12, "8 · Mixture of experts: total vs active parameters"), count=active_params),
    Famous("ViT-B/16", _model("vit_b_16"),
           "86,567,656 (torchvision ViT_B_16_Weights.IMAGENET1K_V1); 86M in Dosovitskiy et al. 2020, "
           "arXiv:2010.11929, Table 1", (_CH14, "4 · ViT: an image as 197 tokens")),
    Famous("MobileNetV2", _model("MobileNetV2"),
           "3,504,872 (torchvision MobileNet_V2_Weights.IMAGENET1K_V1); 3.4M in Sandler et al. 2018, "
           "arXiv:1801.04381, Table 4", (_CH14, "3 · MobileNetV2: the inverted residual")),
    Famous("Stable Diffusion 1.5 U-Net (diffusers)", _sd15_unet,
           "860M (CompVis/stable-diffusion README: \"a 860M UNet and 123M text encoder\"; the model of "
           "Rombach et al. 2022, arXiv:2112.10752)",
           ("09_unet", "8 · A modern U-Net: Stable Diffusion 1.5's denoiser")),
)


class FamousTable(list):
    """Rows (name, parameters, published figure, chapter link); text or HTML."""

    def __str__(self) -> str:
        width = max(len(r[0]) for r in self)
        lines = [f"{'model':{width}}  {'parameters':>15}  published"]
        lines += [f"{name:{width}}  {n:>15,}  {published}" for name, n, published, _ in self]
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        e = html.escape
        head = header_html(("model", "parameters (count_params, built on meta)", "published", "chapter"))
        body = "".join(
            f"<tr><td style='text-align:left'><b>{e(name)}</b></td><td style='text-align:right'>{n:,}</td>"
            f"<td style='text-align:left'>{e(published)}</td><td style='text-align:left'>{link_html(link)}</td></tr>"
            for name, n, published, link in self)
        return f"<table>{head}{body}</table>"


def famous_models(models: Sequence[Famous] = FAMOUS) -> FamousTable:
    """Build every model of `models` on the meta device (no memory, no weights) and count it with
    `helpers.counting.count_params` (tied tensors once)."""
    import torch  # noqa: PLC0415

    from helpers.counting import count_params  # noqa: PLC0415

    rows = FamousTable()
    for famous in models:
        with torch.device("meta"):
            model = famous.build()
        rows.append((famous.name, (famous.count or count_params)(model), famous.published, famous.link))
    return rows
