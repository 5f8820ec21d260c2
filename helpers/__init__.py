"""helpers — the importable toolkit of the "Dimensions and Parameters" course.

Core (pure arithmetic or torch introspection, nothing about homework or widgets):
    helpers.formulas  closed-form parameter counts, one per torch layer, with breakdowns
    helpers.shapes    output-size arithmetic and check_shape
    helpers.counting  count_params, count_buffers, param_table (tied tensors counted once)
    helpers.cost      FLOPs/MACs, weight and training memory, attention and KV-cache bytes
    helpers.trace     summary (per-layer shapes, params, FLOPs; meta device) and explain
    helpers.models    the reference models the chapters share, each defined once
Course machinery (built on the core):
    helpers.checks    instant exercise feedback;  helpers.exercises  solutions/ → exercises/
    helpers.grade     batch grader;               helpers.widgets    ipywidgets explorers

Public names are re-exported lazily, so ``from helpers import conv_params`` works and
``import helpers`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_SUBMODULES = ("formulas", "shapes", "counting", "cost", "trace")

__all__ = ["formulas", "shapes", "counting", "cost", "trace", "models", "checks", "exercises", "grade", "widgets"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    for sub in _SUBMODULES:
        try:
            module = importlib.import_module(f"{__name__}.{sub}")
        except ModuleNotFoundError as exc:  # a submodule not written yet
            if exc.name != f"{__name__}.{sub}":
                raise
            continue
        if name in getattr(module, "__all__", ()):
            return getattr(module, name)
    raise AttributeError(f"module 'helpers' has no attribute {name!r}")


def __dir__() -> list[str]:
    names = set(__all__)
    for sub in _SUBMODULES:
        try:
            names.update(importlib.import_module(f"{__name__}.{sub}").__all__)
        except ModuleNotFoundError:
            continue
    return sorted(names)
