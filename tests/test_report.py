"""`python -m helpers report` (issue 28) against the peers, on configs this test writes.

Independent references, each on the very model the report built on meta: accelerate's
`calculate_maximum_sizes` (weight bytes), DeepSpeed's `estimate_zero2/3_model_states_mem_needs`
(model states; its largest layer found here by walking the modules), Hugging Face / diffusers
`num_parameters()` (parameters), the router's top-k (active parameters, from the expert tensors'
names), FlopCounterMode (`helpers.trace.summary`) for the decoder FLOPs formula, jsonschema for
``--json``. Plus every friendly failure of item 4.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
transformers = pytest.importorskip("transformers")
accelerate_modeling = pytest.importorskip("accelerate.utils.modeling")
ds2 = pytest.importorskip("deepspeed.runtime.zero.stage_1_and_2")
ds3 = pytest.importorskip("deepspeed.runtime.zero.stage3")
jsonschema = pytest.importorskip("jsonschema")

from helpers.report.build import Options, make_report  # noqa: E402
from helpers.report.schema import JSON_SCHEMA  # noqa: E402
from helpers.report.source import SourceError, build_model  # noqa: E402
from helpers.trace import summary  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

#: the peer table's configs: (name, config.json contents, (experts, top-k) or None)
CONFIGS = {
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


def write(tmp: Path, name: str, config: dict) -> Path:
    path = tmp / f"{name.replace('/', '_').replace(' ', '_')}.json"
    path.write_text(json.dumps(config, indent=2))
    return path


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("configs")
    out = {}
    for name, (config, moe) in CONFIGS.items():
        built = build_model(str(write(tmp, name, config)))
        out[name] = (built, make_report(built, Options(seq_len=512 if config.get("model_type") == "t5" else None)), moe)
    return out


def largest_layer(model: torch.nn.Module) -> int:
    best = 0
    for module in model.modules():
        best = max(best, sum(t.numel() for _, t in module.named_parameters(recurse=False)))
    return best


@pytest.mark.parametrize("name", list(CONFIGS))
def test_report_equals_the_peers(reports, name):
    built, report, moe = reports[name]
    model = built.model
    assert report.params["total"] == model.num_parameters()  # HF / diffusers
    total, _ = accelerate_modeling.calculate_maximum_sizes(model)
    assert report.weight_bytes["fp32"] == total
    bf16 = accelerate_modeling.compute_module_sizes(model, dtype=torch.bfloat16)[""]
    assert report.weight_bytes["bf16"] == bf16
    n, big = model.num_parameters(), largest_layer(model)
    assert report.deepspeed["zero2"] == ds2.estimate_zero2_model_states_mem_needs(n, 1, 1, cpu_offload=False)[1]
    assert report.deepspeed["zero3"] == ds3.estimate_zero3_model_states_mem_needs(n, big, 1, 1, cpu_offload=False)[1]
    if moe is None:
        assert report.params["active"] == report.params["total"]
    else:
        experts, k = moe
        expert_params = sum(p.numel() for pname, p in model.named_parameters() if ".experts." in pname)
        assert report.params["active"] == n - expert_params * (experts - k) // experts < n
    jsonschema.validate(json.loads(report.to_json()), JSON_SCHEMA)


@pytest.mark.parametrize("gpus, zero", [(8, 2), (64, 3), (3, 2)])
def test_deepspeed_accounting_over_gpus(reports, gpus, zero):
    built, _, _ = reports["Llama-3-8B"]
    r = make_report(built, Options(gpus=gpus, zero=zero, seq_len=128))
    n = built.model.num_parameters()
    assert r.deepspeed["zero2"] == ds2.estimate_zero2_model_states_mem_needs(n, gpus, 1, cpu_offload=False)[1]
    assert r.deepspeed["zero3"] == ds3.estimate_zero3_model_states_mem_needs(
        n, largest_layer(built.model), gpus, 1, cpu_offload=False)[1]


SMALL = dict(vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4)
SMALL_DECODERS = {
    "llama": dict(SMALL, num_key_value_heads=2),
    "mixtral": dict(SMALL, num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2),
    "qwen2_moe": dict(SMALL, num_key_value_heads=2, moe_intermediate_size=16, shared_expert_intermediate_size=32,
                      num_experts=4, num_experts_per_tok=2),
    "gemma": dict(SMALL, num_key_value_heads=1, head_dim=8),
    "gpt2": dict(vocab_size=96, n_embd=32, n_layer=2, n_head=4, n_positions=64),
}


@pytest.mark.parametrize("model_type", list(SMALL_DECODERS))
@pytest.mark.parametrize("seq_len, batch", [(8, 1), (13, 3)])
def test_decoder_flops_formula_equals_flop_counter(tmp_path, model_type, seq_len, batch):
    path = write(tmp_path, model_type, dict(model_type=model_type, **SMALL_DECODERS[model_type]))
    built = build_model(str(path))
    r = make_report(built, Options(seq_len=seq_len, batch=batch))
    measured = summary(built.model, example_inputs=torch.zeros(batch, seq_len, dtype=torch.long)).total_flops
    assert r.kind == "decoder_lm" and r.flops["forward"] == measured


# ------------------------------------------------------------------------------- item 4: friendly failures
def test_unknown_model_type_lists_close_matches(tmp_path):
    with pytest.raises(SourceError, match=r"unknown model_type 'lamma'.*close matches: .*llama"):
        build_model(str(write(tmp_path, "x", dict(model_type="lamma", hidden_size=8))))


def test_remote_code_is_named(tmp_path):
    cfg = dict(model_type="my_secret_lm", auto_map={"AutoModelForCausalLM": "modeling_x.XForCausalLM"})
    with pytest.raises(SourceError, match="needs remote code.*auto_map.*never runs downloaded code"):
        build_model(str(write(tmp_path, "remote", cfg)))


def test_malformed_json_points_at_the_line(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{\n  "model_type": "llama",\n  "hidden_size": 64,,\n  "x": 1\n}\n')
    with pytest.raises(SourceError, match=r"not valid JSON: .* at line 3, column 21"):
        build_model(str(path))


@pytest.mark.parametrize("source, package", [("timm:convnext_tiny", "timm"), ("torchvision:resnet50", "torchvision")])
def test_optional_libraries_say_what_to_install(source, package):
    try:
        __import__(package)
    except ImportError:
        with pytest.raises(SourceError, match=f"needs {package}, which is not installed: pip install {package}"):
            build_model(source)
    else:
        assert build_model(source).library == package


@pytest.mark.parametrize("source, message", [
    ("helpers.models.resnet:no_such_thing", "has no 'no_such_thing'"),
    ("helpers.models.resnet:BasicBlock", "failed: TypeError"),
    ("no_such_package_xyz:f", "cannot import 'no_such_package_xyz'"),
    ("helpers.cost:BYTES_PER_ELEMENT", "not a callable"),
    ("/nope/config.json", "no such file"),
])
def test_bad_sources_are_one_line(source, message):
    with pytest.raises(SourceError, match=message):
        build_model(source)


def test_course_resnet50_callable():
    from helpers.counting import count_params
    from helpers.models import resnet50

    r = make_report("helpers.models.resnet:resnet50", Options(batch=2))
    assert r.kind == "other" and r.params["total"] == count_params(resnet50())
    assert r.flops["unit"] == "image" and r.flops["forward"] == 2 * r.flops["per_unit"] > 0
    jsonschema.validate(json.loads(r.to_json()), JSON_SCHEMA)


def test_lora_and_qlora_trainable_equal_peft(tmp_path):
    peft = pytest.importorskip("peft")
    cfg = dict(model_type="llama", **SMALL_DECODERS["llama"])
    built = build_model(str(write(tmp_path, "llama", cfg)))
    r = make_report(built, Options(lora_rank=4, quant="nf4", seq_len=16))
    model = peft.get_peft_model(transformers.LlamaForCausalLM(transformers.LlamaConfig(**SMALL_DECODERS["llama"])),
                                peft.LoraConfig(r=4))
    assert r.params["trainable"] == model.get_nb_trainable_parameters()[0]
    assert r.training.parts["grads"] == 2 * r.params["trainable"]
    assert r.weight_bytes["chosen"] < r.weight_bytes["bf16"]


def test_fit_search_is_the_largest(reports):
    built, _, _ = reports["Llama-3-8B"]
    r = make_report(built, Options(seq_len=2048, zero=3, gpus=8))
    b = r.training.largest_batch
    assert b and make_report(built, Options(seq_len=2048, zero=3, gpus=8, batch=b)).training.fits
    assert not make_report(built, Options(seq_len=2048, zero=3, gpus=8, batch=b + 1)).training.fits
    c = r.inference.largest_context
    assert make_report(built, Options(seq_len=c, zero=3, gpus=8)).inference.fits
    assert not make_report(built, Options(seq_len=c + 1, zero=3, gpus=8)).inference.fits


def test_cli_report_json_and_errors(tmp_path, capsys):
    """`python -m helpers report` once as a command (a fresh interpreter: ~3 s of imports), then the
    same entry point, ``helpers.cli.main``, in this process for the text output and the two errors."""
    from helpers import cli  # noqa: PLC0415

    path = write(tmp_path, "gpt2", dict(model_type="gpt2", **SMALL_DECODERS["gpt2"]))
    proc = subprocess.run([sys.executable, "-m", "helpers", "report", str(path), "--json", "--seq-len", "32",
                           "--gpus", "2", "--zero", "3", "--gpu-memory", "24GiB"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    jsonschema.validate(data, JSON_SCHEMA)
    assert data["options"]["gpu_memory_bytes"] == 24 * 2**30 and data["options"]["zero"] == 3

    def run(*args: str) -> tuple[int, str, str]:
        code = cli.main(["report", *args])
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _ = run(str(path), "--seq-len", "32")
    assert code == 0 and "fits in 80.00 GiB" in out and "assumptions" in out
    code, _, err = run(str(tmp_path / "missing.json"))
    assert code == 2 and err.startswith("error: ") and "Traceback" not in err
    code, _, err = run(str(path), "--gpu-memory", "lots")
    assert code == 2 and "--gpu-memory must be a size" in err
