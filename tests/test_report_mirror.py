"""helpers.report.mirror (issue 28, item 5): a plain Llama/Mistral/Mixtral config is rebuilt without importing
transformers — and the report it gives is the report of transformers' own built model, number for number.

Random configs of each family (hypothesis), plain ones and hostile ones (odd head dims, sizes of 0, strings,
bools where ints belong, rope scaling, unknown keys, other architectures, out-of-range pad ids): each is
reported twice, through the mirror and with ``mirror=False`` (transformers builds it), with random options;
the two reports are equal as dicts, or both routes raise the same error.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers.report.build import Options, make_report
from helpers.report.mirror import FAMILIES, build_mirror, mirror_config
from helpers.report.render import render
from helpers.report.source import build_model

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = [("head_dim", 5), ("head_dim", 0), ("hidden_size", 0), ("num_attention_heads", -1), ("vocab_size", "100"),
           ("num_hidden_layers", True), ("hidden_act", "gelu"), ("rope_scaling", {"rope_type": "linear"}),
           ("rope_theta", "big"), ("pad_token_id", 10_000), ("num_local_experts", 0), ("architectures", ["LlamaModel"]),
           ("an_unknown_key", 1), ("rms_norm_eps", "small"), ("tie_word_embeddings", "yes"), ("num_key_value_heads", 3),
           ("rope_parameters", {"rope_type": "default", "rope_theta": 1e4, "partial_rotary_factor": 0.5})]


LLAMA31 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
           "original_max_position_embeddings": 8192}
SCALINGS = [None, LLAMA31, {"rope_type": "linear", "factor": 2.0}, {"rope_type": "dynamic", "factor": 4}]
HOSTILE += [("rope_scaling", {k: v for k, v in LLAMA31.items() if k != "high_freq_factor"}),
            ("rope_scaling", {**LLAMA31, "factor": "8"}), ("rope_scaling", {"type": "linear", "factor": 2.0}),
            ("rope_scaling", {"rope_type": "yarn", "factor": 2.0}), ("rope_scaling", {**LLAMA31, "extra": 1}),
            ("rope_scaling", {**LLAMA31, "low_freq_factor": 0.0}), ("rope_scaling", {**LLAMA31, "high_freq_factor": 1.0}),
            ("rope_scaling", {"rope_type": "linear", "factor": 0.5})]


@st.composite
def configs(draw: Any) -> dict[str, Any]:
    model_type = draw(st.sampled_from(sorted(FAMILIES)))
    heads = draw(st.integers(1, 4))
    head_dim = draw(st.sampled_from([2, 4, 6, 8]))
    config: dict[str, Any] = {"model_type": model_type, "num_attention_heads": heads,
                              "hidden_size": heads * head_dim, "intermediate_size": draw(st.integers(1, 24)),
                              "num_hidden_layers": draw(st.integers(1, 3)), "vocab_size": draw(st.integers(8, 64)),
                              "num_key_value_heads": draw(st.sampled_from([d for d in range(1, heads + 1)
                                                                          if heads % d == 0]))}
    if FAMILIES[model_type].moe:
        experts = draw(st.integers(1, 4))
        config.update(num_local_experts=experts, num_experts_per_tok=draw(st.integers(1, experts)))
    config["tie_word_embeddings"] = draw(st.booleans())
    if model_type == "llama":
        config.update(attention_bias=draw(st.booleans()), mlp_bias=draw(st.booleans()))
    optional = {"head_dim": st.sampled_from([2, 4, 6]),
                "max_position_embeddings": st.integers(16, 4096), "rope_theta": st.sampled_from([1e4, 5e5]),
                "architectures": st.just([f"{FAMILIES[model_type].prefix}ForCausalLM"]),
                "pad_token_id": st.integers(0, 7), "sliding_window": st.one_of(st.none(), st.integers(4, 64)),
                "rope_scaling": st.sampled_from(SCALINGS)}
    for key in draw(st.lists(st.sampled_from(sorted(optional)), unique=True, max_size=4)):
        if key == "sliding_window" and model_type == "llama":
            continue
        config[key] = draw(optional[key])
    if draw(st.booleans()):  # transformers' default number of KV heads (all heads for Llama, 8 for Mistral/Mixtral)
        del config["num_key_value_heads"]
    if draw(st.integers(0, 3)) == 0:  # one config in four: a hostile value
        key, value = draw(st.sampled_from(HOSTILE))
        config[key] = value
    return config


options = st.builds(Options, dtype=st.sampled_from(["bf16", "fp32"]), batch=st.integers(1, 3),
                    seq_len=st.one_of(st.none(), st.integers(1, 64)), gpus=st.sampled_from([1, 2, 8]),
                    zero=st.integers(0, 3), lora_rank=st.one_of(st.none(), st.integers(1, 8)),
                    quant=st.sampled_from([None, "int8", "nf4"]), depth=st.integers(1, 6))


def _report(path: Path, o: Options, mirror: bool) -> Any:
    try:
        return dataclasses.asdict(make_report(build_model(str(path), mirror=mirror), o))
    except Exception as exc:  # noqa: BLE001 - the two routes must fail alike
        return (type(exc).__name__, str(exc))


def _structure(model: Any) -> tuple:
    """Every parameter and buffer (name, shape, dtype; tied ones under each name), every module's class name,
    which parameters are shared, and the attributes the report reads off MoE blocks."""
    params = [(n, tuple(p.shape), p.dtype) for n, p in model.named_parameters(remove_duplicate=False)]
    buffers = [(n, tuple(b.shape), b.dtype) for n, b in model.named_buffers(remove_duplicate=False)]
    modules = [(n, type(m).__name__, getattr(m, "top_k", None), getattr(m, "num_experts", None))
               for n, m in model.named_modules()]
    return params, buffers, modules, sum(p.numel() for p in model.parameters())


ROUTES = {"mirror": 0, "transformers": 0}


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(config=configs(), o=options)
def test_the_mirror_reports_what_transformers_builds(tmp_path, config, o):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    mirrored = build_mirror(config)
    ROUTES["mirror" if mirrored is not None else "transformers"] += 1
    assert _report(path, o, True) == _report(path, o, False), config
    if mirrored is not None:  # and the tree itself is transformers' tree
        assert _structure(mirrored[0]) == _structure(build_model(str(path), mirror=False).model), config


def test_most_random_configs_took_the_mirror():
    """The property above is not vacuous: plain configs go through the mirror, hostile ones do not."""
    if sum(ROUTES.values()) == 0:
        pytest.skip("run with the property test")
    assert ROUTES["mirror"] >= 20 and ROUTES["transformers"] >= 5, ROUTES


@pytest.mark.parametrize("model_type", sorted(FAMILIES))
def test_the_defaults_are_transformers_defaults(model_type):
    """A config naming only its model_type reads transformers' default for every field the mirror fills."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING  # noqa: PLC0415

    theirs = CONFIG_MAPPING[model_type]().to_dict()
    family, ours = mirror_config({"model_type": model_type})
    assert {k: ours[k] for k in family.defaults} == {k: theirs.get(k) for k in family.defaults}


def test_the_examples_take_the_mirror_and_never_import_transformers(monkeypatch):
    """The bench's config (issue 28 item 5) and Llama-3-8B are reported with transformers, diffusers and peft
    made unimportable (a None in sys.modules: any import of them raises ImportError). tests/test_report.py runs
    the command itself in a fresh interpreter and reads its import list."""
    for package in ("transformers", "diffusers", "peft"):
        monkeypatch.setitem(sys.modules, package, None)
    for example in ("llama-3-70b", "llama-3-8b"):
        path = ROOT / "examples" / example / "config.json"
        assert build_mirror(json.loads(path.read_text())) is not None
        assert "LlamaRMSNorm" in render(make_report(str(path)))
    with pytest.raises(ImportError):  # the block is real: transformers' own route cannot run here
        build_model(str(ROOT / "examples" / "llama-3-8b" / "config.json"), mirror=False)


def test_the_command_prints_the_same_report_with_either_build(tmp_path, capsys):
    """``--build-with-transformers`` (transformers' classes) and the default (the mirror) print the same JSON."""
    from helpers.cli import main  # noqa: PLC0415

    config = {"model_type": "mixtral", "hidden_size": 16, "intermediate_size": 24, "num_hidden_layers": 2,
              "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 40, "num_local_experts": 4}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    printed = []
    for extra in ([], ["--build-with-transformers"]):
        assert main(["report", str(path), "--json", "--lora-rank", "2", *extra]) == 0
        printed.append(json.loads(capsys.readouterr().out))
    assert printed[0] == printed[1] and printed[0]["params"]["active"] < printed[0]["params"]["total"]
