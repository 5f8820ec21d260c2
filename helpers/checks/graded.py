"""What graded work may import: the one policy behind the grader's sandbox and the exercise headers.

In a graded run (``python -m helpers.grade``) the student's notebook runs in a sandbox whose only
copy of ``helpers`` is a *graded view* built by :func:`build_view`: a few files that hold no answer.
Everything else of ``helpers`` — the question references in ``helpers.checks`` (every chapter,
present and future: the rule is "all of helpers except an allow-list", not a list of chapters),
``helpers.formulas``, ``helpers.shapes``' size functions, ``helpers.cost``, ``helpers.counting``,
``helpers.models`` (with their ``*_params``/size helpers), ``helpers.trace`` … — is simply not in
the sandbox. An import of it raises :class:`ForbiddenImport` naming the module, and the grader
gives the affected questions the status ``forbidden_import``.

Available in graded work (:data:`AVAILABLE`): Python's standard library, the installed third-party
packages (torch, numpy, …), ``helpers.shapes.check_shape`` / ``ShapeError`` (also as
``helpers.check_shape``), and ``helpers.checks.check``, which does nothing in a graded run (the
grader computes every verdict itself, on fresh inputs).

Standard library only: this module is copied into the graded view (the sandboxed runner installs
:class:`ImportGuard` from it before any student code runs).
"""

from __future__ import annotations

import ast
import importlib.abc
import re
import sys
from pathlib import Path
from typing import Optional

__all__ = ["AVAILABLE", "ForbiddenImport", "refused_name", "refuse_attribute", "forbidden_message", "forbidden_module",
           "ImportGuard",
           "build_view", "header_markdown", "HEADER_CELL_ID", "INFRASTRUCTURE",
           "NOTEBOOK_METADATA_KEY"]

#: helpers modules graded work may import, and the public names each offers there
AVAILABLE: dict[str, tuple[str, ...]] = {
    "helpers": ("check_shape", "ShapeError"),
    "helpers.shapes": ("check_shape", "ShapeError"),
    "helpers.checks": ("check",),
}
#: files of the grader's own machinery copied into the view (hold no answer; not for students)
INFRASTRUCTURE = ("helpers/checks/graded.py", "helpers/grading/__init__.py", "helpers/grading/runner.py",
                  "helpers/checks/protocol.py", "helpers/checks/module_answer.py", "helpers/checks/refusal.py")
_INFRA_MODULES = {p[:-3].replace("/", ".").removesuffix(".__init__") for p in INFRASTRUCTURE}
HEADER_CELL_ID = "graded-work"
#: notebook metadata key under which helpers.exercises records the chapter (``{"chapter": "02"}``)
NOTEBOOK_METADATA_KEY = "dims_params"
_ROOT = Path(__file__).resolve().parents[2]


class ForbiddenImport(ImportError):
    """An import of a helpers module (or name) that graded work may not use."""


def forbidden_message(module: str, name: Optional[str] = None) -> str:
    """``helpers.formulas is not available in graded work: write the formula yourself``."""
    what = f"{module}.{name}" if name else module
    allowed = AVAILABLE.get(module)
    also = f" (from {module} only {', '.join(allowed)} is available)" if allowed and name else ""
    return f"{what} is not available in graded work: write the formula yourself{also}"


_NAMED = re.compile(r"(helpers(?:\.[A-Za-z_]\w*)*) is not available in graded work")
_NO_MODULE = re.compile(r"No module named '(helpers(?:\.[A-Za-z_]\w*)*)'")


def forbidden_module(type_name: str, message: str) -> Optional[str]:
    """The forbidden module an error names (a :class:`ForbiddenImport`, or a plain "No module named
    'helpers.…'" if the student removed the guard: the file is absent either way), else None."""
    match = _NAMED.search(message) if type_name == "ForbiddenImport" else None
    if match is None and type_name in ("ModuleNotFoundError", "ImportError"):
        match = _NO_MODULE.search(message)
    return match.group(1) if match else None


def _is_available(fullname: str) -> bool:
    return fullname in AVAILABLE or fullname in _INFRA_MODULES


def refused_name(module: str, name: Optional[str] = None) -> Optional[str]:
    """What graded work may not use in ``module`` (or ``from module import name``): the dotted name
    the grader refuses (``helpers.formulas``, ``helpers.shapes.conv2d_output_shape``), else None.

    THE rule, used by everything that refuses (the sandbox's :class:`ImportGuard` and view, the
    instant check's warning and nbgrader's kernel, :mod:`helpers.checks.refusal`): every ``helpers``
    module outside :data:`AVAILABLE` and the grader's own files is refused; of an AVAILABLE module
    only its listed names (and dunders, and available submodules) are available. Modules outside
    helpers are never refused.
    """
    if module != "helpers" and not module.startswith("helpers."):
        return None
    if not _is_available(module):
        return module
    if (name is None or name.startswith("__") or module not in AVAILABLE or name in AVAILABLE[module]
            or _is_available(f"{module}.{name}")):
        return None
    return f"{module}.{name}"


class ImportGuard(importlib.abc.MetaPathFinder):
    """Meta-path finder refusing every ``helpers.*`` module outside the allow-list, by name, with a
    readable :class:`ForbiddenImport` (the files are absent from the sandbox anyway)."""

    def find_spec(self, fullname, path=None, target=None):  # type: ignore[override]
        if refused_name(fullname):
            raise ForbiddenImport(forbidden_message(fullname), name=fullname)
        return None

    @classmethod
    def install(cls) -> None:
        if not any(isinstance(f, cls) for f in sys.meta_path):
            sys.meta_path.insert(0, cls())


# --------------------------------------------------------------------------- the graded view

def _extract(source: str, names: tuple[str, ...], root: Path = _ROOT, *, future: bool = True) -> str:
    """The top-level definitions of `source` that `names` need (transitively), with the imports
    they use and nothing else: how ``check_shape`` reaches the view without the size functions.

    A name the definitions take from another helpers module (``from helpers._args import is_int``)
    is extracted from that module's source in turn and inlined above them, so the view holds only
    the definitions it runs, never a whole helpers module.
    """
    tree = ast.parse(source)
    defs: dict[str, ast.stmt] = {}
    imports: dict[str, ast.stmt] = {}
    from_helpers: dict[str, str] = {}  # name -> the helpers module it is imported from
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            defs[node.name] = node
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    defs[target.id] = node
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("helpers"):
            for alias in node.names:
                from_helpers[alias.asname or alias.name] = node.module or ""
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                imports[(alias.asname or alias.name).split(".")[0]] = node
    needed, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in needed or name not in defs:
            continue
        needed.add(name)
        todo += [n.id for n in ast.walk(defs[name]) if isinstance(n, ast.Name)]
    used = {n.id for name in needed for n in ast.walk(defs[name]) if isinstance(n, ast.Name)}
    keep = {id(defs[n]) for n in needed} | {id(imports[n]) for n in used if n in imports}
    body = [node for node in tree.body if id(node) in keep
            or (future and isinstance(node, ast.ImportFrom) and node.module == "__future__")]
    inlined: dict[str, list[str]] = {}
    for name in sorted(used - set(defs)):
        if name in from_helpers:
            inlined.setdefault(from_helpers[name], []).append(name)
    prefix = "".join(
        _extract((root / (module.replace(".", "/") + ".py")).read_text(encoding="utf-8"), tuple(wanted), root,
                 future=False) + "\n\n"
        for module, wanted in sorted(inlined.items()))
    code = ast.unparse(ast.Module(body=body, type_ignores=[]))
    if future and prefix and code.startswith("from __future__"):
        head, _, rest = code.partition("\n")
        return f"{head}\n{prefix}{rest}"
    return prefix + code


def refuse_attribute(module: str, name: str) -> None:
    """What a graded-view module's ``__getattr__`` does for a name it lacks: AttributeError for
    dunders and for an available submodule (so the import system goes on and imports it), else a
    :class:`ForbiddenImport` naming ``module.name``."""
    if refused_name(module, name) is None:
        raise AttributeError(name)
    raise ForbiddenImport(forbidden_message(module, name))


def _guard_tail(module: str) -> str:
    """Module-level ``__getattr__``: any other name of `module` is a ForbiddenImport, by name."""
    return (f"\n\n__all__ = {list(AVAILABLE[module])!r}\n\n\n"
            f"def __getattr__(name):\n"
            f"    from helpers.checks.graded import refuse_attribute\n"
            f"    refuse_attribute({module!r}, name)\n")


_VIEW_DOC = '"""Graded view of helpers (built by helpers.checks.graded.build_view): {what}."""\n'


def build_view(dest: Path, root: Path = _ROOT) -> Path:
    """Write the graded view of ``helpers`` under `dest` (``dest/helpers/…``) and return `dest`."""
    pkg = dest / "helpers"
    (pkg / "checks").mkdir(parents=True, exist_ok=True)
    for rel in INFRASTRUCTURE:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_text((root / rel).read_text(encoding="utf-8"), encoding="utf-8")
    shapes = _extract((root / "helpers" / "shapes.py").read_text(encoding="utf-8"), AVAILABLE["helpers.shapes"])
    (pkg / "shapes.py").write_text(_VIEW_DOC.format(what="check_shape only") + shapes
                                   + _guard_tail("helpers.shapes"), encoding="utf-8")
    (pkg / "__init__.py").write_text(_VIEW_DOC.format(what="check_shape only")
                                     + "from helpers.shapes import ShapeError, check_shape\n"
                                     + _guard_tail("helpers"), encoding="utf-8")
    (pkg / "checks" / "__init__.py").write_text(
        _VIEW_DOC.format(what="check() does nothing here: the grader computes every verdict")
        + "\n\ndef check(question_id, answer):\n    return None\n" + _guard_tail("helpers.checks"),
        encoding="utf-8")
    return dest


# --------------------------------------------------------------------------- what students read

def header_markdown() -> str:
    """The "graded work" note every exercise notebook carries (inserted by helpers.exercises)."""
    from helpers.checks.refusal import refusal_warning  # noqa: PLC0415 - refusal imports this module

    return (
        "### How this notebook is graded\n\n"
        "The instructor's grader runs your notebook in a sandbox (no network, no other files) and "
        "calls each of your functions on **fresh random inputs**, so a table of the answers the "
        "check cells print will not pass. In graded work you may import Python's standard library, "
        "`torch` and `numpy`, and from the course's helpers only `check_shape` "
        "(`from helpers.shapes import check_shape`) and `check` (which does nothing when graded). "
        "Every other helpers module — `helpers.formulas`, `helpers.shapes`' size functions, "
        "`helpers.cost`, `helpers.counting`, `helpers.models`, `helpers.checks`' reference "
        "answers — is not available there: importing one gives the affected questions the status "
        "`forbidden_import` and no points. Write the formula yourself. The instant check tells you "
        "before the grader does: when a function of yours uses one of them, it prints a ⚠️ warning next "
        f"to its ✅ (\"{refusal_warning('helpers.formulas')}\").")
