"""Reference models shared by the chapters, each defined once in its own module.

``from helpers.models import SimpleNet`` finds the class in whichever submodule defines it
(``helpers/models/<topic>.py``, each listing its public names in ``__all__``), so chapters can
add models without editing this file.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any


def _submodules() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def __getattr__(name: str) -> Any:
    owners = [sub for sub in _submodules()
              if name in getattr(importlib.import_module(f"{__name__}.{sub}"), "__all__", ())]
    if len(owners) > 1:
        raise AttributeError(f"{name!r} is exported by several modules ({', '.join(owners)}); "
                             f"import it from one of them, e.g. helpers.models.{owners[0]}")
    if owners:
        return getattr(importlib.import_module(f"{__name__}.{owners[0]}"), name)
    raise AttributeError(f"helpers.models has no model {name!r}; available: {__dir__()}")


def __dir__() -> list[str]:
    names: list[str] = []
    for sub in _submodules():
        names += list(getattr(importlib.import_module(f"{__name__}.{sub}"), "__all__", ()))
    return sorted(names)
