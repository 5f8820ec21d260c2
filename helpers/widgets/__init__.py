"""Interactive ipywidgets explorers, one module per topic (``helpers/widgets/<name>.py``).

``from helpers.widgets import conv_explorer`` finds the name in whichever submodule lists it in
its ``__all__``, so a chapter adds an explorer by adding a module, without editing this file.
Each module keeps its pure logic (what is displayed: sizes, formulas, positions, error text)
importable and testable without ipywidgets; ipywidgets is imported only when a widget is built.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any


def _submodules() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def __getattr__(name: str) -> Any:
    if name in _submodules():  # helpers.widgets.conv as an attribute
        return importlib.import_module(f"{__name__}.{name}")
    broken: dict[str, str] = {}
    for sub in _submodules():
        try:
            module = importlib.import_module(f"{__name__}.{sub}")
        except Exception as exc:  # one broken explorer must not hide the others
            broken[sub] = f"{type(exc).__name__}: {exc}"
            continue
        if name in getattr(module, "__all__", ()):
            return getattr(module, name)
    detail = "".join(f"\n  helpers.widgets.{m} failed to import ({err})" for m, err in broken.items())
    raise AttributeError(f"helpers.widgets has no attribute {name!r}{detail}")


def __dir__() -> list[str]:
    names = set(_submodules())
    for sub in _submodules():
        try:
            names.update(getattr(importlib.import_module(f"{__name__}.{sub}"), "__all__", ()))
        except Exception:  # reported by __getattr__ when a name is looked up
            continue
    return sorted(names)
