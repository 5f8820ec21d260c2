"""FLOPs and activation memory of a built model: a formula for decoder LMs, a traced pass for the rest.

* **Decoder LMs** (a transformers ``…ForCausalLM``/``…LMHeadModel``): `helpers.inference.prefill_flops`
  and `decode_flops` with P_mm = `counts.matmul_params_per_token` (FlopCounterMode's count, tested on
  Llama, Mixtral, Qwen-MoE, Gemma and GPT-2); their activations are `helpers.planner`'s (see
  `helpers.report.memory`). No forward pass runs, so a 70B config costs what building it on meta costs.
* **Everything else** (encoders, encoder–decoders, vision models, diffusion U-Nets): one traced forward
  pass on meta (`helpers.trace.summary`: FlopCounterMode) on inputs made from the config; activation
  memory is the sum of every leaf module's output — an estimate, not a bound: functional ops between
  modules (softmax and attention probabilities, residual adds, F.gelu) are not counted, while in-place
  activations and fused kernels keep less than a module's output.
"""

from __future__ import annotations

from typing import Any

import torch

from helpers import inference
from helpers.planner import model_dims
from helpers.report.counts import matmul_params_per_token
from helpers.report.source import BuiltModel, _first_line

__all__ = ["model_kind", "decoder_flops", "example_inputs", "traced_costs"]


def model_kind(built: BuiltModel) -> str:
    """"decoder_lm", "encoder", "encoder_decoder", "vision", "diffusion" or "other"."""
    if built.kind is not None:
        return built.kind
    if built.library == "diffusers":
        return "diffusion"
    if built.library in ("torchvision", "timm"):
        return "vision"
    if built.library != "transformers":
        return "other"
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES  # noqa: PLC0415

    config = built.config or {}
    if config.get("is_encoder_decoder"):
        return "encoder_decoder"
    if type(built.model).__name__ in set(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values()):
        return "decoder_lm"
    if getattr(built.model, "main_input_name", "") == "pixel_values":
        return "vision"
    return "encoder"


def decoder_flops(built: BuiltModel, seq_len: int, batch: int) -> dict[str, Any]:
    """Prefill FLOPs (per token and for the batch) and one decode step's FLOPs at `seq_len` of context."""
    dims = model_dims(built.model)
    p_mm = matmul_params_per_token(built.model)
    L, h, hd = dims.num_hidden_layers, dims.num_attention_heads, dims.head_dim
    forward = inference.prefill_flops(p_mm, L, h, hd, seq_len, batch)
    return {"unit": "token", "forward": forward, "per_unit": forward / (seq_len * batch),
            "decode_per_token": inference.decode_flops(p_mm, L, h, hd, seq_len, 1),
            "method": (f"helpers.inference: prefill B·(2·P_mm·T + 4·L·h·hd·T²), decode 2·P_mm + 4·L·h·hd·(T + 1) "
                       f"with P_mm = {p_mm:,} matrix-product parameters per token (top-k experts only), "
                       f"L = {L}, h·hd = {h}·{hd}; full T×T attention as FlopCounterMode counts it")}


def _side(config: dict[str, Any], image_size: int | None, default: int) -> int:
    if image_size is not None:
        return image_size
    size = config.get("image_size", config.get("sample_size", default))
    return int(size[0] if isinstance(size, (list, tuple)) else size)


def example_inputs(built: BuiltModel, kind: str, seq_len: int, batch: int,
                   image_size: int | None) -> tuple[Any, str]:
    """Inputs for the traced pass (on meta) and a description of them."""
    config = built.config or {}
    meta = torch.device("meta")
    if kind in ("encoder", "encoder_decoder"):
        ids = torch.zeros(batch, seq_len, dtype=torch.long, device=meta)
        inputs: dict[str, Any] = {"input_ids": ids}
        if kind == "encoder_decoder":
            inputs["decoder_input_ids"] = ids
        return inputs, f"input_ids {tuple(ids.shape)}" + (" (and decoder_input_ids alike)" if kind == "encoder_decoder" else "")
    if kind == "diffusion":
        side = _side(config, None if image_size is None else image_size // 8, 64)
        sample = torch.zeros(batch, config.get("in_channels", 4), side, side, device=meta)
        inputs = {"sample": sample}
        if "cross_attention_dim" in config:
            inputs["timestep"] = torch.ones(batch, device=meta)
            inputs["encoder_hidden_states"] = torch.zeros(batch, 77, config["cross_attention_dim"], device=meta)
        return inputs, f"sample {tuple(sample.shape)} (latents: image side / 8)" + \
            (f", 77 text tokens × {config['cross_attention_dim']}" if "cross_attention_dim" in config else "")
    side = _side(config, image_size, 224)
    pixels = torch.zeros(batch, config.get("num_channels", 3), side, side, device=meta)
    if built.library == "transformers":
        return {"pixel_values": pixels}, f"pixel_values {tuple(pixels.shape)}"
    return pixels, f"images {tuple(pixels.shape)}"


def _numel(structure: Any) -> int:
    if structure is None:
        return 0
    if isinstance(structure, tuple) and all(isinstance(v, int) for v in structure):
        n = 1
        for v in structure:
            n *= v
        return n
    values = structure.values() if isinstance(structure, dict) else structure
    return sum(_numel(v) for v in values)


def traced_costs(built: BuiltModel, inputs: Any, batch: int, units: int, unit: str, described: str,
                 activation_bytes: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """FLOPs (FlopCounterMode on meta) and Σ leaf outputs of one forward pass of `inputs`.

    `units` = tokens or images in the batch (FLOPs per unit = forward / units). A forward pass that
    fails (a --seq-len beyond the positions a BERT has, an image size a ViT does not take) is a
    ValueError naming the options to check."""
    from helpers.trace import summary  # noqa: PLC0415

    try:
        s = summary(built.model, example_inputs=inputs)
    except Exception as exc:  # noqa: BLE001 - one line for the engineer, not a traceback
        options = "--seq-len and --batch" if unit == "token" else "--image-size and --batch"
        raise ValueError(f"the traced forward pass on {described} failed ({type(exc).__name__}: {_first_line(exc)}); "
                         f"check {options} against the config") from None
    names = [r.name for r in s.rows]
    leaves = [r for r in s.rows if r.name and not any(n.startswith(r.name + ".") for n in names)]
    sizes = [_numel(r.output_shapes) * activation_bytes for r in leaves]
    flops = {"unit": unit, "forward": s.total_flops, "per_unit": s.total_flops / units, "decode_per_token": None,
             "method": f"FlopCounterMode on meta (helpers.trace.summary), one forward pass of {described}"
                       + f"; per {unit} = forward / {units}"}
    acts = {"per_layer_bytes": max(sizes, default=0), "layers": len(leaves), "total_bytes": sum(sizes),
            "formula": (f"Σ of the outputs of the {len(leaves)} leaf modules of the traced pass × {activation_bytes:g} B "
                        "(an estimate, not a bound: functional ops between modules — attention probabilities, residual adds — "
                        "are missed, in-place activations and fused kernels keep less); "
                        "per_layer_bytes = the largest one")}
    return flops, acts
