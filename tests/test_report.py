"""`python -m helpers report` (issue 28) against the peers, on configs this test writes.

Independent references, each on the very model the report built on meta: accelerate's
`calculate_maximum_sizes` (weight bytes), DeepSpeed's `estimate_zero2/3_model_states_mem_needs`
(model states; its largest layer found here by walking the modules), Hugging Face / diffusers
`num_parameters()` (parameters), the router's top-k (active parameters, from the expert tensors'
names), FlopCounterMode (`helpers.trace.summary`) for the decoder FLOPs formula, jsonschema for
``--json``, the ZeRO paper's 16 bytes per parameter for full mixed-precision training. Plus every
friendly failure of item 4, and the README's report section (the command's output and the peer
table, `tests/_peers.py`) checked against what they print now.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shlex
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
from helpers._text import format_bytes  # noqa: E402
from helpers.report.source import SourceError, build_model  # noqa: E402
from helpers.trace import summary  # noqa: E402
from tests._peers import CONFIGS, PAIRS, build_all, largest_layer, peer_row, peer_table, write  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    return build_all(tmp_path_factory.mktemp("configs"))


@pytest.mark.parametrize("name", list(CONFIGS))
def test_report_equals_the_peers(reports, name):
    built, report, moe = reports[name]
    row = peer_row(built, report, moe)  # each peer's own call on the very model the report built
    unequal = {ours: (row[ours], row[theirs]) for ours, theirs in PAIRS if row[ours] != row[theirs]}
    assert not unequal, f"{name}: ours != the peer's: {unequal}"
    bf16 = accelerate_modeling.compute_module_sizes(built.model, dtype=torch.bfloat16)[""]
    assert report.weight_bytes["bf16"] == bf16
    assert (row["active"] < row["params"]) == (moe is not None)
    jsonschema.validate(json.loads(report.to_json()), JSON_SCHEMA)


@pytest.mark.parametrize("gpus, zero", [(8, 2), (64, 3), (3, 2)])
def test_deepspeed_accounting_over_gpus(reports, gpus, zero):
    built, _, _ = reports["Llama-3-8B"]
    r = make_report(built, Options(gpus=gpus, zero=zero, seq_len=128))
    n = built.model.num_parameters()
    assert r.deepspeed["zero2"] == ds2.estimate_zero2_model_states_mem_needs(n, gpus, 1, cpu_offload=False)[1]
    assert r.deepspeed["zero3"] == ds3.estimate_zero3_model_states_mem_needs(
        n, largest_layer(built.model), gpus, 1, cpu_offload=False)[1]


@pytest.mark.parametrize("name", ["Llama-3-8B", "Mixtral-8x7B", "BERT-base"])
@pytest.mark.parametrize("gpus, zero", [(1, 0), (8, 1), (8, 2), (8, 3)])
def test_full_training_model_states_are_the_zero_papers(reports, name, gpus, zero):
    """Mixed precision + Adam, every parameter trained: 2 + 2 + 12 bytes per parameter (ZeRO paper §3.1,
    K = 12), the optimizer sharded from stage 1, gradients from 2, weights at 3 — nothing counted twice."""
    built, _, _ = reports[name]
    n = built.model.num_parameters()
    parts = make_report(built, Options(gpus=gpus, zero=zero, seq_len=128)).training.parts
    per_param = {0: (2, 2, 12), 1: (2, 2, 12 / gpus), 2: (2, 2 / gpus, 12 / gpus), 3: (2 / gpus, 2 / gpus, 12 / gpus)}
    assert (parts["weights"], parts["grads"], parts["optimizer"]) == pytest.approx(
        tuple(n * b for b in per_param[zero]), rel=1e-12)


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
    built = build_model(str(path), mirror=False)  # transformers' model, run by FlopCounterMode
    r = make_report(str(path), Options(seq_len=seq_len, batch=batch))  # the report's route (the mirror for some)
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
        with pytest.raises(SourceError, match=f"needs {package}, which is not installed: ") as caught:
            build_model(source)
        # the CPU build matching this torch (torch 2.m ↔ torchvision 0.(m + 15)), never PyPI's CUDA build
        major, minor = torch.__version__.split("+")[0].split(".")[:2]
        assert (f".venv/bin/python -m pip install 'torchvision=={int(major) - 2}.{int(minor) + 15}.*' "
                "--index-url https://download.pytorch.org/whl/cpu" in str(caught.value)), caught.value
        assert package != "timm" or str(caught.value).endswith("&& .venv/bin/python -m pip install --no-deps timm")
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


@pytest.mark.parametrize("config, message", [
    (dict(model_type="qqqqzzzz"), r"unknown model_type 'qqqqzzzz'.*\(transformers knows none close to it\)"),
    ([1, 2], "holds a JSON list, not an object with a model_type"),
    (dict(hidden_size=8), "has neither a model_type .* nor a _class_name"),
    (dict(model_type="llama", hidden_size=64, num_attention_heads=0, num_hidden_layers=1, intermediate_size=8,
          vocab_size=10), "transformers cannot read this 'llama' config: ZeroDivisionError"),
    (dict(model_type="llama", hidden_size=64, num_attention_heads=4, num_hidden_layers=1, intermediate_size=8,
          vocab_size=-10), "transformers cannot build LlamaForCausalLM from this config: RuntimeError: .*negative"),
    (dict(_class_name="UNet2DConditionModle"), "diffusers has no model class 'UNet2DConditionModle'; close matches: "
                                               "UNet2DConditionModel"),
    (dict(_class_name="UNet2DConditionModel", block_out_channels=[32, 64], down_block_types=["CrossAttnDownBlock2D"]),
     "diffusers cannot build UNet2DConditionModel from this config: ValueError: Must provide the same number"),
])
def test_bad_configs_are_one_line(tmp_path, config, message):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    with pytest.raises(SourceError, match=message) as caught:
        build_model(str(path))
    assert "\n" not in str(caught.value)


def test_auto_map_with_a_known_model_type_builds_with_a_note(tmp_path):
    cfg = dict(model_type="llama", **SMALL_DECODERS["llama"], auto_map={"AutoModelForCausalLM": "modeling_x.X"})
    built = build_model(str(write(tmp_path, "llama_remote", cfg)))
    assert built.library == "transformers" and any("not the repository's remote code" in n for n in built.notes)


TINY_BERT = dict(model_type="bert", architectures=["BertForMaskedLM"], vocab_size=50, hidden_size=16,
                 num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, max_position_embeddings=16)
TINY_VIT = dict(model_type="vit", architectures=["ViTForImageClassification"], hidden_size=16, num_hidden_layers=1,
                num_attention_heads=2, intermediate_size=32, image_size=32, patch_size=8)


@pytest.mark.parametrize("config, args, message", [
    (dict(model_type="lamma"), [], "unknown model_type 'lamma'.*close matches: .*llama"),
    (TINY_BERT, ["--batch", "0"], "--batch must be at least 1, got 0"),
    (TINY_BERT, ["--seq-len", "0"], "--seq-len must be at least 1, got 0"),
    (TINY_BERT, ["--lora-rank", "-1"], "--lora-rank must be at least 1, got -1"),
    (TINY_BERT, ["--optimizer", "lion"], "--optimizer must be one of .*adamw.*, got 'lion'"),
    (TINY_BERT, ["--seq-len", "32"], r"traced forward pass on input_ids \(1, 32\) failed \(RuntimeError: .*\); "
                                     "check --seq-len and --batch against the config"),
    (TINY_VIT, ["--image-size", "40"], r"traced forward pass on pixel_values \(1, 3, 40, 40\) failed "
                                       r"\(ValueError: .*\); check --image-size and --batch"),
])
def test_cli_failures_are_one_friendly_line(tmp_path, capsys, config, args, message):
    from helpers import cli

    path = write(tmp_path, "config", config)
    assert cli.main(["report", str(path), *args]) == 2
    captured = capsys.readouterr()
    assert not captured.out and captured.err.startswith("error: ") and captured.err.count("\n") == 1, captured.err
    assert re.search(message, captured.err) and "Traceback" not in captured.err, captured.err


def test_the_tiny_configs_report_when_the_options_fit(tmp_path, capsys):
    from helpers import cli

    assert cli.main(["report", str(write(tmp_path, "bert", TINY_BERT)), "--seq-len", "16"]) == 0
    bert = capsys.readouterr().out
    assert cli.main(["report", str(write(tmp_path, "vit", TINY_VIT)), "--image-size", "32"]) == 0
    vit = capsys.readouterr().out
    assert "assumptions" in bert and "assumptions" in vit
    # tokens: a sequence length and per-token counts; images: the image size, nothing per token
    assert "seq_len 16," in bert and "active per token" in bert
    assert "seq_len" not in vit and "per token" not in vit and "image size 32," in vit
    assert "pixel_values (1, 3, 32, 32)" in vit
    # a traced pass's leaf outputs differ in size: their sum and the largest, never "per layer × N"
    traced = make_report(str(tmp_path / "vit.json"), Options(image_size=32)).activations
    assert (f"  {traced['layers']} leaf modules: Σ {format_bytes(traced['total_bytes'])}, the largest "
            f"{format_bytes(traced['per_layer_bytes'])}") in vit.splitlines()
    assert traced["per_layer_bytes"] * traced["layers"] > traced["total_bytes"]


def test_a_seq_len_beyond_the_positions_is_noted(tmp_path):
    """--seq-len past max_position_embeddings: a decoder LM (counted, never run) still reports that length's
    numbers and says so; at the limit it does not; BERT (learned absolute positions, a traced pass) fails
    with one line."""
    config = dict(model_type="llama", **SMALL_DECODERS["llama"], max_position_embeddings=16)
    path = str(write(tmp_path, "llama", config))
    beyond, at = make_report(path, Options(seq_len=17)), make_report(path, Options(seq_len=16))
    assert [n for n in beyond.notes if "beyond the model's" in n] == [
        "--seq-len 17 is beyond the model's 16 positions (max_position_embeddings or n_positions): "
        "the numbers are for that length, which the model was not built to read"]
    assert not any("beyond the model's" in n for n in at.notes)
    with pytest.raises(ValueError, match=r"input_ids \(1, 17\) failed .* check --seq-len"):
        make_report(str(write(tmp_path, "bert", TINY_BERT)), Options(seq_len=17))


def test_training_that_fits_nowhere_names_the_levers(tmp_path):
    """Not even micro-batch 1 fits: the note lists the options that shrink training memory, minus those in use,
    and each named lever does shrink it (weights + grads + optimizer + activations at micro-batch 1)."""
    path = str(write(tmp_path, "llama", dict(model_type="llama", **SMALL_DECODERS["llama"])))
    tiny = dict(gpu_memory_bytes=2**18, seq_len=64)  # 256 KiB per GPU; the model's training takes ~0.5 MiB
    r = make_report(path, Options(**tiny))
    assert r.training.largest_batch == 0 and not r.training.fits
    assert r.notes[-1] == ("training does not fit even at micro-batch 1; levers: --recompute selective or full "
                           "(activations); --zero 3 (shards weights, grads and optimizer); --lora-rank r (train "
                           "adapters only); --quant nf4 with --lora-rank (QLoRA)")
    for lever in (dict(recompute="full"), dict(zero=3, gpus=8), dict(lora_rank=4), dict(lora_rank=4, quant="nf4")):
        assert make_report(path, Options(**tiny, **lever)).training.total < r.training.total, lever
    used = make_report(path, Options(**{**tiny, "gpu_memory_bytes": 2**12}, recompute="full", zero=3, gpus=2,
                                     lora_rank=4, quant="nf4"))
    assert used.notes[-1] == "training does not fit even at micro-batch 1; levers: more --gpus (ZeRO shards over them)"
    assert not any("does not fit even" in n for n in make_report(path, Options(seq_len=64)).notes)


@pytest.mark.parametrize("config, name, kind", [
    ({k: v for k, v in TINY_BERT.items() if k != "architectures"}, "BertForMaskedLM", "encoder"),
    (dict(TINY_BERT, architectures=None, is_decoder=True), "BertLMHeadModel", "decoder_lm"),
    (dict(model_type="llama", **SMALL_DECODERS["llama"]), "LlamaForCausalLM", "decoder_lm"),
    (dict(model_type="t5", vocab_size=32, d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2),
     "T5ForConditionalGeneration", "encoder_decoder"),
])
def test_a_config_without_architectures_gets_the_usual_head(tmp_path, config, name, kind):
    """No `architectures` key: a decoder gets its causal-LM class, an encoder its masked-LM class (not
    BERT's decoder variant), an encoder–decoder its sequence-to-sequence LM."""
    built = build_model(str(write(tmp_path, "noarch", config)))
    assert (built.name, make_report(built, Options(seq_len=8)).kind) == (name, kind)


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
    """`python -m helpers report` once as a command on Llama-3-70B's config (a fresh interpreter; with
    ``-X importtime`` its stderr lists every module it imported: transformers is not among them, the
    config goes through helpers.report.mirror), then the same entry point, ``helpers.cli.main``, in this
    process on GPT-2 (built by transformers) for the text output and the two errors."""
    from helpers import cli  # noqa: PLC0415

    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "helpers", "report",
                           "examples/llama-3-70b/config.json", "--json", "--seq-len", "32", "--gpus", "2", "--zero",
                           "3", "--gpu-memory", "24GiB"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(proc.stdout)
    jsonschema.validate(data, JSON_SCHEMA)
    assert data["options"]["gpu_memory_bytes"] == 24 * 2**30 and data["options"]["zero"] == 3
    imported = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")]
    assert "torch" in imported and "helpers.report.mirror" in imported
    assert not [m for m in imported if m.split(".")[0] in ("transformers", "diffusers", "peft")]

    path = write(tmp_path, "gpt2", dict(model_type="gpt2", **SMALL_DECODERS["gpt2"]))

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


# ------------------------------------------------------------------------------- item 3: the README shows both
def readme_section() -> str:
    text = (ROOT / "README.md").read_text()
    assert "## Your own model: size, cost and fit (`helpers report`)" in text, "the README has no report section"
    return text.split("## Your own model: size, cost and fit (`helpers report`)", 1)[1].split("\n## ", 1)[0]


def differences(shown: str, now: str) -> str:
    return "\n".join(difflib.unified_diff(shown.splitlines(), now.splitlines(), "README", "printed now", lineterm="",
                                          n=1))


def test_readme_report_is_what_the_command_prints_now():
    block = re.search(r"^```text\n\$ (.+?)\n(.*?)^```", readme_section(), re.S | re.M)
    assert block, "the report section shows one ```text block starting with `$ .venv/bin/python -m helpers report`"
    argv = shlex.split(block.group(1))
    assert argv[:4] == [".venv/bin/python", "-m", "helpers", "report"], argv
    done = subprocess.run([sys.executable, *argv[1:]], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    shown, now = block.group(2).rstrip("\n"), done.stdout.rstrip("\n")
    assert shown == now, "the README's report differs from what the command prints now:\n" + differences(shown, now)


def test_readme_peer_table_is_what_the_peers_say_now(reports):
    shown = "\n".join(line for line in readme_section().splitlines() if line.startswith("|"))
    now = peer_table(reports)
    assert shown == now, ("the README's peer table differs from `.venv/bin/python -m tests._peers`:\n"
                          + differences(shown, now))
