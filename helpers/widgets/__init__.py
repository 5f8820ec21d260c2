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
    for sub in _submodules():
        module = importlib.import_module(f"{__name__}.{sub}")
        if name in getattr(module, "__all__", ()):
            return getattr(module, name)
    raise AttributeError(f"helpers.widgets has no attribute {name!r}; available: {__dir__()}")


def __dir__() -> list[str]:
    names: list[str] = list(_submodules())
    for sub in _submodules():
        names += list(getattr(importlib.import_module(f"{__name__}.{sub}"), "__all__", ()))
    return sorted(names)
