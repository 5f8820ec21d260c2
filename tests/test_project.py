"""Project wiring: dependency lists agree, notebooks name the registered kernel, CI runs `make test`."""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _norm(req: str) -> str:
    return re.sub(r"\s+", "", req).lower()


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_norm(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    env = (ROOT / "environment.yml").read_text()
    pip_section = env.split("- pip:", 1)[1]
    listed = {_norm(m) for m in re.findall(r"^\s+-\s+(?!-e)(\S.*?)\s*$", pip_section, flags=re.M)}
    assert listed == wanted, f"only in pyproject: {wanted - listed}; only in environment.yml: {listed - wanted}"


def test_torch_is_pinned_to_the_cpu_wheel_version():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "torch==2.13.0" in deps


def test_every_notebook_names_the_course_kernel():
    notebooks = sorted(ROOT.glob("*/*.ipynb"))
    for nb in notebooks:
        if nb.parts[-2] not in ("notebooks", "solutions", "exercises"):
            continue
        spec = json.loads(nb.read_text())["metadata"].get("kernelspec", {})
        assert spec.get("name") == "dims-params", f"{nb.relative_to(ROOT)} uses kernel {spec.get('name')!r}"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```")[1]
    assert "make lab" in first_block and "make test" in first_block
    assert "exec make test" in (ROOT / ".ci" / "run").read_text()


def test_makefile_registers_the_kernel_that_notebooks_use():
    makefile = (ROOT / "Makefile").read_text()
    assert "KERNEL := dims-params" in makefile and "ipykernel install --sys-prefix --name $(KERNEL)" in makefile


#: the modules each package re-exports with explicit ``from .x import Name`` lines: for helpers
#: only the pure-arithmetic core (counting, trace and models import torch and are imported by name)
REEXPORTED = {"helpers": ("formulas", "shapes", "cost"),
              "helpers.models": None, "helpers.widgets": None}  # None: every public submodule


@pytest.mark.parametrize("package", sorted(REEXPORTED))
def test_package_re_exports_every_public_name_of_its_modules_once(package):
    """The explicit import lists in __init__.py match the modules' __all__: nothing missing (a
    module's new name without its import line), nothing defined in two modules (the later import
    would silently win), and each re-exported object is the defining module's."""
    pkg = importlib.import_module(package)
    subs = REEXPORTED[package] or [m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_")]
    owners: dict[str, list[str]] = {}
    for sub in subs:
        for name in importlib.import_module(f"{package}.{sub}").__all__:
            owners.setdefault(name, []).append(sub)
    clashes = {name: where for name, where in owners.items() if len(where) > 1}
    assert not clashes, f"{package}: names exported by several modules: {clashes}"
    missing = sorted(set(owners) - set(pkg.__all__))
    assert not missing, f"add one import line per name to {package.replace('.', '/')}/__init__.py: {missing}"
    extra = sorted(set(pkg.__all__) - set(owners))
    assert not extra, f"{package} exports names no submodule lists in __all__: {extra}"
    for name, (sub,) in owners.items():
        assert getattr(pkg, name) is getattr(importlib.import_module(f"{package}.{sub}"), name), name


@pytest.mark.parametrize("statement, absent", [
    ("import helpers", ("torch", "ipywidgets", "matplotlib", "helpers.widgets", "helpers.checks", "helpers.models")),
    ("from helpers import conv_params, check_shape, kv_cache_bytes", ("torch",)),
    ("import helpers.widgets", ("torch", "ipywidgets", "matplotlib")),
])
def test_imports_stay_light(statement, absent):
    """Explicit re-exports are eager, so what they pull in is policed: the core and the explorers'
    logic import without torch, ipywidgets or matplotlib (those load when a model is built, a
    widget shown or a figure drawn)."""
    code = f"import sys; {statement}; print(sorted(m for m in {absent!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]", f"{statement!r} imports {out.stdout.strip()}"
