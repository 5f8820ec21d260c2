"""Item 1 of `python -m helpers report`: read a SOURCE and build its model on the meta device.

A SOURCE is one of

* a path to a Hugging Face ``config.json`` (any architecture transformers can build from a config:
  a ``model_type`` key) or a diffusers ``config.json`` (a ``_class_name`` key: a U-Net, a transformer,
  a VAE…);
* ``torchvision:resnet50`` (``torchvision.models.get_model(name, weights=None)``);
* ``timm:convnext_tiny`` (``timm.create_model(name, pretrained=False)``; timm is optional);
* ``package.module:callable`` — a Python callable of the engineer's own code returning an ``nn.Module``
  (it is imported and called, as ``python -m package.module`` would run it: only name code you trust).

Every model is built inside ``torch.device("meta")`` in fp32 (parameters have shapes, no storage), so
nothing is allocated and nothing is downloaded (``HF_HUB_OFFLINE=1`` is set before transformers is
imported). Whatever goes wrong becomes a `SourceError` with one readable line: an unknown
``model_type`` lists the closest known ones, a config that needs ``trust_remote_code`` says so, a
malformed JSON file names the line and column, a missing optional library says what to install.
"""

from __future__ import annotations

import difflib
import importlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["SourceError", "BuiltModel", "build_model", "read_config", "install_hint"]


class SourceError(ValueError):
    """The SOURCE cannot be read or built; the message is one line meant for the engineer."""


@dataclass
class BuiltModel:
    """A model built on meta, where it came from, and its config (a plain dict, or None)."""

    model: nn.Module
    source: str
    library: str  # "transformers", "diffusers", "torchvision", "timm" or "python"
    name: str  # the architecture (class name, model name)
    config: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    kind: str | None = None  # set when known without asking transformers (see helpers.report.flops.model_kind)


def read_config(path: Path) -> dict[str, Any]:
    """The JSON object in `path`; a malformed file is a SourceError naming the line and column."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        line = text.splitlines()[exc.lineno - 1] if 0 < exc.lineno <= len(text.splitlines()) else ""
        raise SourceError(f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
                          + (f": {line.strip()[:80]!r}" if line.strip() else "")) from None
    if not isinstance(data, dict):
        raise SourceError(f"{path} holds a JSON {type(data).__name__}, not an object with a model_type "
                          "(transformers) or a _class_name (diffusers)")
    return data


def _meta() -> torch.device:
    return torch.device("meta")


def _transformers(config: dict[str, Any], source: str, mirror: bool = True) -> BuiltModel:
    if mirror:  # a plain Llama/Mistral/Mixtral config: the same tree without importing transformers
        from helpers.report.mirror import build_mirror  # noqa: PLC0415

        rebuilt = build_mirror(config)
        if rebuilt is not None:
            model, name, full = rebuilt
            return BuiltModel(model, source, "transformers", name, full, kind="decoder_lm")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import transformers  # noqa: PLC0415 - only for a transformers config
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING  # noqa: PLC0415

    model_type = config.get("model_type")
    remote = config.get("auto_map")
    if model_type not in CONFIG_MAPPING:
        if remote:
            raise SourceError(f"model_type {model_type!r} needs remote code (its config has an auto_map: "
                              f"{', '.join(sorted(remote))}); the report never runs downloaded code — install "
                              "the package that defines it and pass its class as module:callable")
        close = difflib.get_close_matches(str(model_type), list(CONFIG_MAPPING.keys()), n=5, cutoff=0.6)
        raise SourceError(f"unknown model_type {model_type!r} in {source}"
                          + (f"; close matches: {', '.join(close)}" if close else
                             " (transformers knows none close to it)"))
    notes = []
    if remote:
        notes.append(f"the config has an auto_map ({', '.join(sorted(remote))}): built with transformers' own "
                     f"{model_type!r} classes, not the repository's remote code")
    fields = {k: v for k, v in config.items() if k not in ("model_type", "auto_map", "transformers_version")}
    try:
        cfg = CONFIG_MAPPING[model_type].from_dict(fields)
    except Exception as exc:  # noqa: BLE001 - one line, not a traceback
        raise SourceError(f"transformers cannot read this {model_type!r} config: {type(exc).__name__}: "
                          f"{_first_line(exc)}") from None
    cls = _transformers_class(transformers, cfg, config.get("architectures"))
    try:
        with _meta():
            model = cls._from_config(cfg, dtype=torch.float32)
    except Exception as exc:  # noqa: BLE001
        raise SourceError(f"transformers cannot build {cls.__name__} from this config: {type(exc).__name__}: "
                          f"{_first_line(exc)}") from None
    return BuiltModel(model.eval(), source, "transformers", cls.__name__, cfg.to_dict(), notes)


def _transformers_class(transformers: Any, cfg: Any, architectures: Any) -> Any:
    """The config's first ``architectures`` class if transformers has it, else the usual head: a
    sequence-to-sequence LM for an encoder–decoder (T5), a masked LM for an encoder (BERT, whose
    causal-LM class is a decoder variant), a causal LM otherwise; else AutoModel."""
    for name in architectures or []:
        cls = getattr(transformers, str(name), None)
        if isinstance(cls, type) and hasattr(cls, "_from_config"):
            return cls
    from transformers.models.auto import modeling_auto  # noqa: PLC0415

    encoder = not getattr(cfg, "is_decoder", False) and type(cfg) in modeling_auto.MODEL_FOR_MASKED_LM_MAPPING
    first = (modeling_auto.MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING if getattr(cfg, "is_encoder_decoder", False)
             else modeling_auto.MODEL_FOR_MASKED_LM_MAPPING if encoder else modeling_auto.MODEL_FOR_CAUSAL_LM_MAPPING)
    for mapping in (first, modeling_auto.MODEL_MAPPING):
        try:
            return mapping[type(cfg)]
        except KeyError:
            continue
    raise SourceError(f"transformers has no model class for {type(cfg).__name__}")


def _diffusers(config: dict[str, Any], source: str) -> BuiltModel:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import diffusers  # noqa: PLC0415

    name = str(config["_class_name"])
    cls = getattr(diffusers, name, None)
    if not isinstance(cls, type) or not hasattr(cls, "from_config"):
        known = [n for n in dir(diffusers) if n.endswith(("Model", "Model2D", "Model3D")) or "UNet" in n]
        close = difflib.get_close_matches(name, known, n=5, cutoff=0.6)
        raise SourceError(f"diffusers has no model class {name!r}"
                          + (f"; close matches: {', '.join(close)}" if close else ""))
    try:
        with _meta():
            model = cls.from_config(config)
    except Exception as exc:  # noqa: BLE001
        raise SourceError(f"diffusers cannot build {name} from this config: {type(exc).__name__}: "
                          f"{_first_line(exc)}") from None
    return BuiltModel(model.eval(), source, "diffusers", name, dict(model.config))


def install_hint(package: str) -> str:
    """The command that adds `package` to the course environment without replacing its CPU torch.

    torchvision's CPU build must match torch's minor version: torchvision 0.(m + 15) for torch 2.m (the table
    in torchvision's README; torchvision 0.28.0's wheel requires torch==2.13.0). A plain ``pip install
    torchvision`` (or ``timm``, which depends on it) fetches PyPI's CUDA build, which cannot load next to a
    CPU torch and may replace torch itself with gigabytes of CUDA packages."""
    pip = ".venv/bin/python -m pip install"
    major, minor = (int(x) for x in torch.__version__.split("+")[0].split(".")[:2])
    vision = f"{pip} 'torchvision=={major - 2}.{minor + 15}.*' --index-url https://download.pytorch.org/whl/cpu"
    if package == "torchvision":
        return vision
    if package == "timm":
        return f"{vision} && {pip} --no-deps timm"
    return f"{pip} {package}"


def _optional(package: str, what: str) -> Any:
    try:
        return importlib.import_module(package)
    except ImportError:
        raise SourceError(f"{what} needs {package}, which is not installed: {install_hint(package)}") from None


def _torchvision(name: str, source: str) -> BuiltModel:
    tv = _optional("torchvision", source)
    try:
        with _meta():
            model = tv.models.get_model(name, weights=None)
    except ValueError:
        close = difflib.get_close_matches(name, tv.models.list_models(), n=5, cutoff=0.6)
        raise SourceError(f"torchvision has no model {name!r}"
                          + (f"; close matches: {', '.join(close)}" if close else "")) from None
    return BuiltModel(model.eval(), source, "torchvision", name)


def _timm(name: str, source: str) -> BuiltModel:
    timm = _optional("timm", source)
    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=5, cutoff=0.6)
        raise SourceError(f"timm has no model {name!r}" + (f"; close matches: {', '.join(close)}" if close else ""))
    with _meta():
        model = timm.create_model(name, pretrained=False)
    return BuiltModel(model.eval(), source, "timm", name)


def _callable(spec: str) -> BuiltModel:
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SourceError(f"cannot import {module_name!r} (from {spec!r}): {_first_line(exc)}") from None
    target: Any = module
    for part in attr.split("."):
        target = getattr(target, part, None)
        if target is None:
            names = [n for n in dir(module) if not n.startswith("_")]
            close = difflib.get_close_matches(attr, names, n=5, cutoff=0.6)
            raise SourceError(f"{module_name} has no {attr!r}" + (f"; close matches: {', '.join(close)}" if close else ""))
    if not callable(target):
        raise SourceError(f"{spec} is a {type(target).__name__}, not a callable returning an nn.Module")
    try:
        with _meta():
            model = target()
    except Exception as exc:  # noqa: BLE001
        raise SourceError(f"{spec}() failed: {type(exc).__name__}: {_first_line(exc)}") from None
    if not isinstance(model, nn.Module):
        raise SourceError(f"{spec}() returned a {type(model).__name__}, not an nn.Module")
    config = getattr(model, "config", None)
    as_dict = config.to_dict() if hasattr(config, "to_dict") else None
    return BuiltModel(model.eval(), spec, "python", type(model).__name__, as_dict)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else "(no message)"


def build_model(source: str, *, mirror: bool = True) -> BuiltModel:
    """Build the model named by `source` on the meta device (see the module docstring for the forms).

    With `mirror` (the default), a plain Llama, Mistral or Mixtral config is rebuilt by
    `helpers.report.mirror` without importing transformers (the same tree, tested equal); ``mirror=False``
    always builds with transformers."""
    for prefix, build in (("torchvision:", _torchvision), ("timm:", _timm)):
        if source.startswith(prefix):
            return build(source[len(prefix):], source)
    path = Path(source)
    if path.suffix == ".json" or path.is_file() or path.is_dir():
        if path.is_dir():
            path = path / "config.json"
        if not path.is_file():
            raise SourceError(f"no such file: {path}")
        config = read_config(path)
        if "_class_name" in config:
            return _diffusers(config, str(path))
        if "model_type" in config:
            return _transformers(config, str(path), mirror)
        raise SourceError(f"{path} has neither a model_type (a transformers config) nor a _class_name "
                          "(a diffusers config)")
    if ":" in source and all(p.isidentifier() for p in source.split(":", 1)[0].split(".")):
        return _callable(source)
    raise SourceError(f"{source!r} is not a config.json path, torchvision:NAME, timm:NAME or module:callable")
