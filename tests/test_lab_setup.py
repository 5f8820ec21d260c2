"""`make lab` as a student sees it: the course venv's own JupyterLab settings, checked in Chromium.

The set-up (`make venv` → `make lab-settings`, and `make trust`) writes everything into `.venv`:
no "get notified about Jupyter news" pop-up, nbgrader's lab and server extensions disabled (instructors:
`make instructor`), every course notebook signed as trusted. Unlike test_browser.py, this server is
started WITHOUT any settings of the test's own, so what is checked is what `make lab` opens; only the
user-level folders (config, data, runtime, workspaces) point into a temporary folder, so nothing in the
home folder can help or hurt.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.test_browser import _free_port, browser, chromium  # noqa: F401  (fixtures)

pytestmark = pytest.mark.xdist_group("browser")

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(sys.prefix)
NOTEBOOK = "01_linear.ipynb"


def _get(url: str, token: str):
    req = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


@pytest.fixture(scope="module")
def course_lab(tmp_path_factory: pytest.TempPathFactory, chromium: Path):  # noqa: F811
    jupyter = VENV / "bin" / "jupyter"
    if not (VENV / "share" / "jupyter" / "lab" / "settings" / "overrides.json").exists():
        pytest.fail(f"{VENV} has no lab settings: run `make venv` (it runs `make lab-settings`)")
    tmp = tmp_path_factory.mktemp("course-lab")
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp / "config"), JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
               JUPYTER_DATA_DIR=str(tmp / "data"), JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"),
               IPYTHONDIR=str(tmp / "ipython"), JUPYTERLAB_SETTINGS_DIR=str(tmp / "user-settings"))
    env.pop("JUPYTER_PATH", None)
    log = open(tmp / "server.log", "wb")  # noqa: SIM115 - closed below
    cmd = [str(jupyter), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--port-retries=0",
           f"--IdentityProvider.token={token}", f"--notebook-dir={ROOT / 'notebooks'}",
           "--LabApp.expose_app_in_browser=True", "--ServerApp.terminals_enabled=False"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited with {proc.returncode}:\n{(tmp / 'server.log').read_text()[-3000:]}")
            try:
                _get(f"{base}/api/status", token)
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer:\n{(tmp / 'server.log').read_text()[-3000:]}")
                time.sleep(0.5)
        yield base, token
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(timeout=10)
        log.close()
        shutil.rmtree(tmp / "runtime", ignore_errors=True)


def test_news_is_off_and_nbgrader_is_not_loaded(course_lab):
    base, token = course_lab
    news = _get(f"{base}/lab/api/settings/@jupyterlab/apputils-extension:notification", token)
    # overrides.json changes the schema's defaults; a student's own settings (none here) would win
    defaults = {k: v.get("default") for k, v in news["schema"]["properties"].items()}
    assert defaults["fetchNews"] == "false", defaults
    assert defaults["checkForUpdates"] is False, defaults
    extensions = {e["name"]: e for e in _get(f"{base}/lab/api/extensions", token)}
    assert extensions.get("@jupyter/nbgrader", {}).get("enabled") is not True
    # the server extensions: formgrader's page is not served
    req = urllib.request.Request(f"{base}/formgrader", headers={"Authorization": f"token {token}"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=30)
    assert err.value.code == 404


def test_a_student_opens_a_chapter(course_lab, browser):  # noqa: F811
    base, token = course_lab
    page = browser.new_page()
    try:
        page.goto(f"{base}/lab/tree/{NOTEBOOK}?reset&token={token}", wait_until="domcontentloaded")
        page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(state="attached")
        page.locator("#jp-main-statusbar", has_text=re.compile(r"dims-params\)\s*\|\s*Idle")).wait_for(timeout=90_000)
        page.wait_for_timeout(3000)  # the news question would be shown by now
        menus = page.locator(".lm-MenuBar-itemLabel").all_inner_texts()
        assert menus and not [m for m in menus if "nbgrader" in m.lower()], menus
        assert page.locator("text=Create Assignment").count() == 0
        assert page.locator(".jp-toast-message, .Toastify__toast", has_text=re.compile("news", re.I)).count() == 0
        trusted = page.evaluate("""() => {
            const nb = window.jupyterapp.shell.currentWidget.content.model;
            return Array.from({length: nb.cells.length}, (_, i) => nb.cells.get(i))
                .filter(c => c.type === 'code').map(c => c.trusted);
        }""")
        assert trusted and all(trusted), f"{NOTEBOOK}: untrusted code cells {trusted}"
    finally:
        page.close()
