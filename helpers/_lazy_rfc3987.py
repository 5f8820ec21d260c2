"""Defer rfc3987-syntax's grammar build from ``import`` to the first IRI it checks (run at interpreter start).

``import nbformat`` (nbval, nbclient, nbgrader, JupyterLab's server: every process here that reads a
notebook) imports jsonschema, which imports ``rfc3987_syntax`` if installed (it is: jupyter-events asks
for ``jsonschema[format-nongpl]``). That package builds a Lark *Earley* parser of RFC 3987's grammar
when it is imported: ≈ 1 s of CPU, ~85 % of ``import nbformat``, for a parser that only jsonschema's
``"iri"`` / ``"iri-reference"`` format checks use — and nothing in the course validates an IRI.
(Reported upstream: python-jsonschema/jsonschema#1428, closed without a change; still so in 4.26.0.)

This module installs a meta-path finder: ``import rfc3987_syntax`` then gives the package with its
``__init__`` not yet run (``__path__`` is the real one, so its submodules import as usual);
``is_valid_syntax`` and ``parse`` are stand-ins that run the real ``__init__`` (the grammar build) on
their first call and from then on call the real functions; any other attribute does the same on first
access. Results are the real package's: tests/test_lazy_rfc3987.py compares them on many strings.

Installed by ``make startup-hook`` (which ``make test`` and ``make lab`` run) as a ``.pth`` line in the venv's
site-packages (nothing outside ``.venv``).
Only for the version this was written against (:data:`VERSION`); any other is imported as it is.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from pathlib import Path

NAME = "rfc3987_syntax"
VERSION = "1.1.0"
_LAZY = ("is_valid_syntax", "parse")  # what `from rfc3987_syntax import …` takes first (jsonschema: is_valid_syntax)


class _Loader(importlib.abc.Loader):
    def __init__(self, spec: importlib.machinery.ModuleSpec) -> None:
        self.real = spec

    def create_module(self, spec):
        return None  # the default module object

    def exec_module(self, module) -> None:
        init = self.real.origin
        state = {"done": False}

        def load():
            if not state["done"]:
                state["done"] = True
                for name in _LAZY:
                    module.__dict__.pop(name, None)
                del module.__getattr__
                code = compile(Path(init).read_bytes(), init, "exec")
                exec(code, module.__dict__)  # the package's own __init__: builds the grammar
            return module

        def stand_in(name):
            def call(*args, **kwargs):
                return getattr(load(), name)(*args, **kwargs)
            call.__name__ = call.__qualname__ = name
            call.__doc__ = f"rfc3987_syntax.{name} (its grammar is built on the first call)"
            return call

        for name in _LAZY:
            module.__dict__[name] = stand_in(name)

        def __getattr__(name):
            if name.startswith("__"):
                raise AttributeError(name)
            return getattr(load(), name)

        module.__getattr__ = __getattr__


class _Finder(importlib.abc.MetaPathFinder):
    dp_lazy_rfc3987 = True  # the mark install() looks for (this file may run twice: .pth, then import)

    def find_spec(self, fullname, path, target=None):
        if fullname != NAME:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.origin is None or not _version_matches(spec):
            return None
        if importlib.machinery.PathFinder.find_spec("lark") is None:
            return None  # the real import fails at once (jsonschema then skips IRI checks): let it
        lazy = importlib.machinery.ModuleSpec(fullname, _Loader(spec), origin=spec.origin, is_package=True)
        lazy.submodule_search_locations = list(spec.submodule_search_locations or [])
        lazy.has_location = True
        return lazy


def _version_matches(spec: importlib.machinery.ModuleSpec) -> bool:
    site = Path(spec.origin).parent.parent
    return (site / f"{NAME}-{VERSION}.dist-info").is_dir()


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (once)."""
    if not any(getattr(f, "dp_lazy_rfc3987", False) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())


install()
