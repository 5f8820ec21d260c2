"""What a fresh clone installs: requirements.lock agrees with pyproject.toml, the venv holds exactly the
lock, and every module a notebook imports comes from the runtime (non-dev) dependencies.

Three sources must agree: ``pyproject.toml`` (ranges, what we mean), ``requirements.lock`` (every package,
direct and transitive, pinned with hashes: what we tested; ``make lock`` writes it with pip-tools) and
``environment.yml`` (conda users; compared with pyproject in test_project.py).
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _lock() -> dict[str, str]:
    """{canonical name: pinned version} of requirements.lock; every pin carries a hash."""
    text = (ROOT / "requirements.lock").read_text()
    pins: dict[str, str] = {}
    for block in re.split(r"\n(?=\S)", text):
        first = block.splitlines()[0]
        if not first or first.startswith("#"):
            continue
        m = re.fullmatch(r"([A-Za-z0-9._-]+)==(\S+) \\", first)
        assert m, f"requirements.lock: not a hashed pin: {first!r}"
        assert "--hash=sha256:" in block, f"requirements.lock: {first} has no hash"
        pins[canonicalize_name(m[1])] = m[2]
    return pins


def test_every_direct_dependency_is_locked_within_its_range():
    pins = _lock()
    for raw in PROJECT["dependencies"] + PROJECT["optional-dependencies"]["dev"]:
        req = Requirement(raw)
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is in pyproject.toml but not in requirements.lock: run `make lock`"
        # a local label (torch 2.13.0+cpu) satisfies ==2.13.0, as pip sees it
        assert req.specifier.contains(Version(pins[name]), prereleases=True), \
            f"requirements.lock pins {req.name}=={pins[name]}, outside pyproject.toml's {req.specifier}: run `make lock`"


def test_the_lock_pins_the_cpu_torch_and_no_cuda():
    pins = _lock()
    assert pins["torch"].startswith("2.13.0"), pins["torch"]
    assert not [n for n in pins if n.startswith(("nvidia-", "triton"))], "CUDA packages in the lock"


def test_the_venv_holds_exactly_the_lock():
    """`make venv` installs the lock with --no-deps --require-hashes: every pin is what is installed."""
    wrong = {}
    for name, version in _lock().items():
        try:
            installed = md.version(name)
        except md.PackageNotFoundError:
            installed = None
        if installed != version:
            wrong[name] = (version, installed)
    assert not wrong, f"lock vs installed (run `make venv`): {wrong}"


def _runtime_closure() -> set[str]:
    """Distributions the non-dev dependencies pull in, transitively, from installed metadata."""
    env = default_environment()
    todo = [Requirement(r) for r in PROJECT["dependencies"]]
    seen: set[str] = set()
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in seen:
            continue
        seen.add(name)
        for sub in md.requires(name) or []:
            r = Requirement(sub)
            if r.marker is None or r.marker.evaluate({**env, "extra": ""}):
                todo.append(r)
    return seen


def _notebook_imports() -> dict[str, set[str]]:
    """{top-level module: notebooks importing it} over notebooks/, solutions/ and exercises/."""
    found: dict[str, set[str]] = {}
    for nb in sorted(ROOT.glob("[nse]*/*.ipynb")):
        if nb.parent.name not in ("notebooks", "solutions", "exercises"):
            continue
        for cell in json.loads(nb.read_text())["cells"]:
            if cell["cell_type"] != "code":
                continue
            src = "".join(cell["source"])
            src = "\n".join(line for line in src.splitlines() if not line.lstrip().startswith(("%", "!")))
            for node in ast.walk(ast.parse(src)):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                         else [])
                for n in names:
                    found.setdefault(n.split(".")[0], set()).add(nb.name)
    return found


def test_every_module_a_notebook_imports_is_a_runtime_dependency():
    imports = _notebook_imports()
    assert {"torch", "helpers", "transformers"} <= imports.keys()  # the scan sees real imports
    owners = md.packages_distributions()
    runtime = _runtime_closure()
    outside = {}
    for module, where in sorted(imports.items()):
        if module in sys.stdlib_module_names or module == "helpers":
            continue
        dists = {canonicalize_name(d) for d in owners.get(module, [])}
        assert dists, f"{module} (imported by {sorted(where)}) is not installed"
        if not dists & runtime:
            outside[module] = (sorted(dists), sorted(where))
    assert not outside, f"imported by notebooks but only a dev dependency (move to [project].dependencies): {outside}"


def test_every_module_a_notebook_imports_imports(tmp_path):
    modules = sorted(m for m in _notebook_imports() if m not in sys.stdlib_module_names)
    # gc.freeze() once every import succeeded: the exit then skips full collections over everything
    # imported (~1.2 s for torch, transformers, diffusers, deepspeed, peft); what is tested is the imports
    code = "import importlib\nfor m in %r: importlib.import_module(m)\nprint('ok')\nimport gc\ngc.freeze()" % modules
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=240,
                          env={"PATH": "/usr/bin:/bin", "DS_ACCELERATOR": "cpu", "HOME": str(tmp_path)})
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-2000:]
