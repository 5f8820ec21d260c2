"""The peer comparison of `python -m helpers report` (issue 28, item 3): ten configs, each built on meta
once, its report next to what accelerate, DeepSpeed and Hugging Face say about the very same model.

* parameters: ours vs ``model.num_parameters()`` (transformers / diffusers);
* active parameters: ours vs the router's top-k, counted here from the expert tensors' names
  (``n − experts_params · (E − k) / E``);
* weight bytes (fp32): ours vs accelerate's ``calculate_maximum_sizes(model)[0]``;
* model states per GPU: ours (DeepSpeed's accounting) vs DeepSpeed's ``estimate_zero2_model_states_mem_needs``
  and ``estimate_zero3_model_states_mem_needs`` (its largest layer found here by walking the modules).

`tests/test_report.py` asserts every pair equal; the README shows `peer_table()` and
``tests/test_report.py`` fails when the README's copy differs from what this prints now.
Regenerate the README's table with ``.venv/bin/python -m tests._peers``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Optional

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from helpers.report.build import Options, make_report  # noqa: E402
from helpers.report.schema import Report  # noqa: E402
from helpers.report.source import BuiltModel, build_model  # noqa: E402

#: the peer table's configs: name → (config.json contents, (experts, top-k) or None)
CONFIGS: dict[str, tuple[dict[str, Any], Optional[tuple[int, int]]]] = {
    "Llama-3-8B": (dict(model_type="llama", architectures=["LlamaForCausalLM"], vocab_size=128256, hidden_size=4096,
                        intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                        max_position_embeddings=8192, rope_theta=500000.0), None),
    "Mixtral-8x7B": (dict(model_type="mixtral", architectures=["MixtralForCausalLM"], vocab_size=32000, hidden_size=4096,
                          intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                          num_local_experts=8, num_experts_per_tok=2, max_position_embeddings=32768), (8, 2)),
    "Qwen1.5-MoE-A2.7B": (dict(model_type="qwen2_moe", architectures=["Qwen2MoeForCausalLM"], vocab_size=151936,
                               hidden_size=2048, intermediate_size=5632, moe_intermediate_size=1408,
                               shared_expert_intermediate_size=5632, num_experts=60, num_experts_per_tok=4,
                               num_hidden_layers=24, num_attention_heads=16, num_key_value_heads=16,
                               max_position_embeddings=8192), (60, 4)),
    "Gemma-2B": (dict(model_type="gemma", architectures=["GemmaForCausalLM"], vocab_size=256000, hidden_size=2048,
                      intermediate_size=16384, num_hidden_layers=18, num_attention_heads=8, num_key_value_heads=1,
                      head_dim=256, max_position_embeddings=8192), None),
    "GPT-2": (dict(model_type="gpt2", architectures=["GPT2LMHeadModel"], vocab_size=50257, n_embd=768, n_layer=12,
                   n_head=12, n_positions=1024), None),
    "BERT-base": (dict(model_type="bert", architectures=["BertForMaskedLM"], vocab_size=30522, hidden_size=768,
                       num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                       max_position_embeddings=512), None),
    "T5-small": (dict(model_type="t5", architectures=["T5ForConditionalGeneration"], vocab_size=32128, d_model=512,
                      d_kv=64, d_ff=2048, num_layers=6, num_heads=8, is_encoder_decoder=True), None),
    "ViT-B/16": (dict(model_type="vit", architectures=["ViTForImageClassification"], hidden_size=768,
                      num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072, image_size=224,
                      patch_size=16), None),
    "ResNet-50": (dict(model_type="resnet", architectures=["ResNetForImageClassification"], embedding_size=64,
                       hidden_sizes=[256, 512, 1024, 2048], depths=[3, 4, 6, 3], layer_type="bottleneck"), None),
    "SD-1.5 U-Net": (dict(_class_name="UNet2DConditionModel", block_out_channels=[320, 640, 1280, 1280],
                          cross_attention_dim=768, sample_size=64, in_channels=4, out_channels=4,
                          layers_per_block=2), None),
}

#: (column header, key in a `peer_row`) — "ours" and the peer's number side by side
COLUMNS = [("parameters: ours", "params"), ("HF `num_parameters()`", "hf_params"),
           ("active: ours", "active"), ("router top-k", "topk_active"),
           ("fp32 bytes: ours", "weight_bytes"), ("accelerate `calculate_maximum_sizes`", "accelerate_bytes"),
           ("ZeRO-2 states: ours", "zero2"), ("DeepSpeed `estimate_zero2…`", "deepspeed_zero2"),
           ("ZeRO-3 states: ours", "zero3"), ("DeepSpeed `estimate_zero3…`", "deepspeed_zero3")]
#: each pair that must be equal (ours, the peer's)
PAIRS = [(COLUMNS[i][1], COLUMNS[i + 1][1]) for i in range(0, len(COLUMNS), 2)]


def write(folder: Path, name: str, config: dict[str, Any]) -> Path:
    """Write `config` as ``folder/<name>.json`` (a file name made from `name`) and return its path."""
    path = folder / f"{name.replace('/', '_').replace(' ', '_')}.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def largest_layer(model: torch.nn.Module) -> int:
    """Parameters of the largest single module (its own tensors): DeepSpeed's ``largest_layer_params``."""
    best = 0
    for module in model.modules():
        best = max(best, sum(t.numel() for _, t in module.named_parameters(recurse=False)))
    return best


def build_all(folder: Path) -> dict[str, tuple[BuiltModel, Report, Optional[tuple[int, int]]]]:
    """Every config of `CONFIGS` written to `folder`, reported with default options (T5 at seq_len 512: its
    config has no position limit), with transformers' (or diffusers', torchvision's) own model of it built on meta."""
    out = {}
    for name, (config, moe) in CONFIGS.items():
        path = str(write(folder, name, config))
        # the report as the command makes it (a Llama/Mixtral config through helpers.report.mirror); the
        # peers on transformers' own model of the same config
        report = make_report(path, Options(seq_len=512 if config.get("model_type") == "t5" else None))
        out[name] = (build_model(path, mirror=False), report, moe)
    return out


def peer_row(built: BuiltModel, report: Report, moe: Optional[tuple[int, int]]) -> dict[str, float]:
    """Our numbers and the peers' for one model (see the module docstring for each peer's call)."""
    from accelerate.utils.modeling import calculate_maximum_sizes  # noqa: PLC0415 - dev dependencies
    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs  # noqa: PLC0415
    from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs  # noqa: PLC0415

    model = built.model
    n = model.num_parameters()
    if moe is None:
        topk = n
    else:
        experts, k = moe
        expert_params = sum(p.numel() for name, p in model.named_parameters() if ".experts." in name)
        topk = n - expert_params * (experts - k) // experts
    return {"params": report.params["total"], "hf_params": n,
            "active": report.params["active"], "topk_active": topk,
            "weight_bytes": report.weight_bytes["fp32"], "accelerate_bytes": calculate_maximum_sizes(model)[0],
            "zero2": report.deepspeed["zero2"],
            "deepspeed_zero2": estimate_zero2_model_states_mem_needs(n, 1, 1, cpu_offload=False)[1],
            "zero3": report.deepspeed["zero3"],
            "deepspeed_zero3": estimate_zero3_model_states_mem_needs(n, largest_layer(model), 1, 1,
                                                                     cpu_offload=False)[1]}


def peer_table(reports: dict[str, tuple[BuiltModel, Report, Optional[tuple[int, int]]]]) -> str:
    """The Markdown table of every model's `peer_row`, one GPU; bytes are bytes (every value is a whole
    number, printed exactly)."""
    lines = ["| model | " + " | ".join(header for header, _ in COLUMNS) + " |",
             "|---|" + "---:|" * len(COLUMNS)]
    for name, (built, report, moe) in reports.items():
        row = peer_row(built, report, moe)
        lines.append(f"| {name} | " + " | ".join(f"{row[key]:,.0f}" for _, key in COLUMNS) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        print(peer_table(build_all(Path(tmp))))
