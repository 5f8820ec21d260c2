"""Project wiring: dependency lists agree, notebooks name the registered kernel, CI runs `make test`."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

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


def test_model_and_widget_names_are_defined_once():
    """`from helpers.models import X` must not depend on which module sorts first."""
    import importlib
    import pkgutil

    for package in ("helpers.models", "helpers.widgets"):
        pkg = importlib.import_module(package)
        owners: dict[str, list[str]] = {}
        for info in pkgutil.iter_modules(pkg.__path__):
            if info.name.startswith("_"):
                continue
            module = importlib.import_module(f"{package}.{info.name}")
            for name in getattr(module, "__all__", ()):
                owners.setdefault(name, []).append(info.name)
        clashes = {n: subs for n, subs in owners.items() if len(subs) > 1}
        assert not clashes, f"{package}: names exported by several modules: {clashes}"
