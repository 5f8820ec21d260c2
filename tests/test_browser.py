"""The real student experience: JupyterLab in headless Chromium, explorers moved with the keyboard.

What this test does, as a student would:

1. starts JupyterLab from the project's venv (``.venv/bin/jupyter lab``), on 127.0.0.1 only, with a
   random token, on a COPY of the chapter notebooks in a temporary folder (the committed files are
   never touched), with its config/data/runtime/settings folders in that temporary folder too;
2. opens the chapter's explorer in Debian's Chromium (driven by Playwright for Python, pointed at
   ``/usr/bin/chromium``; no browser is ever downloaded) by double-clicking it in JupyterLab's file
   browser, runs every cell with the menu *Run → Run All Cells*, and waits until every code cell has
   an execution count; when done, *File → Close and Shut Down Notebook*, as a student going from one
   chapter to the next in one JupyterLab tab (the tab is loaded once for the three tests: JupyterLab's
   start in the browser is ~3 s of CPU per load; a test that fails closes the tab, and the next one
   loads a fresh one). Every test has its own notebook panel and its own kernel. The notebook is
   the chapter cut down to its explorer (:func:`explorer_notebook`: an import, then the chapter's own
   explorer cell, verbatim): that every cell of every chapter runs is nbval's job (``make test``); what
   only a browser shows is the live widget, and the other cells cost 10-20 s of each "Run All";
3. finds the explorer's slider (ipywidgets), reads every slider value the page shows, checks the
   displayed output line equals what ``helpers.shapes`` / ``helpers.formulas`` compute for those
   values, moves the slider with the keyboard arrows and checks the output changes to the new
   right value;
4. saves screenshots to ``artifacts/browser/`` (git-ignored) before and after each move.

Chromium: used from ``/usr/bin/chromium``; when it is missing and we are root, the fixture tries
``apt-get install -y chromium`` (with ``apt-get update`` first if needed), bounded in time. If it still
cannot be had, the test is SKIPPED with the precise reason, never silently passed.
Set ``DP_BROWSER_INSTALL=0`` to forbid the install attempt (the test then skips when Chromium is absent).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from contextlib import contextmanager
from pathlib import Path

import pytest

from helpers import formulas, shapes

# Its own file, so `--dist loadfile` runs it on one worker; the group name also serves `--dist loadgroup`.
pytestmark = pytest.mark.xdist_group("browser")

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts" / "browser"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# The three explorers the course is built around (conv/pool, RNN unrolling, attention heads): chapter
# notebook → the helpers.widgets function its explorer cell calls. The others (pool in 03, recurrent
# in 06) share the same ipywidgets plumbing and have unit-tested logic.
NOTEBOOKS = {"02_convolution.ipynb": "conv_explorer", "05_rnn_bptt.ipynb": "rnn_explorer",
             "08_attention_transformers.ipynb": "attention_explorer"}
INSTALL_TIMEOUT = 300   # seconds for apt-get update + install
SERVER_TIMEOUT = 90     # seconds for JupyterLab to answer
RUN_ALL_TIMEOUT = 180   # seconds for "Run All Cells" to finish on a loaded 2-core machine
UI_TIMEOUT = 30_000     # ms for any selector


# --------------------------------------------------------------------------------------- chromium
def _try_install_chromium() -> str | None:
    """Try to put Chromium at /usr/bin/chromium with apt-get; return None on success, else why not."""
    if os.environ.get("DP_BROWSER_INSTALL", "1") == "0":
        return "DP_BROWSER_INSTALL=0 forbids installing it"
    apt = shutil.which("apt-get")
    if apt is None:
        return "apt-get is not available on this machine"
    if os.geteuid() != 0:
        return "not running as root, so `apt-get install -y chromium` cannot be tried"
    deadline = time.monotonic() + INSTALL_TIMEOUT
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    log = []

    def run(*args: str) -> bool:
        remaining = deadline - time.monotonic()
        if remaining <= 5:
            log.append(f"apt-get {' '.join(args)}: no time left")
            return False
        try:
            proc = subprocess.run([apt, *args], env=env, capture_output=True, text=True,
                                  timeout=remaining, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            log.append(f"apt-get {' '.join(args)} timed out")
            return False
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["?"]
            log.append(f"apt-get {' '.join(args)} exited {proc.returncode}: {tail[0]}")
        return proc.returncode == 0

    install = ("install", "-y", "-q", "--no-install-recommends", "chromium")
    if not run(*install):  # package lists may be missing or stale on a fresh machine
        run("update", "-q")
        run(*install)
    if CHROMIUM.exists():
        return None
    return "; ".join(log) or "apt-get install chromium did not provide /usr/bin/chromium"


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        why = _try_install_chromium()
        if why is not None:
            reason = f"Chromium is not installed at {CHROMIUM} and could not be installed: {why}"
            # `make test` runs pytest -q, which lists skip reasons only with -rs: a warning is
            # always shown in the summary, so CI logs say why the browser test did not run
            # (a builtin category: pytest-xdist must unpickle it in the controller process)
            warnings.warn(f"browser test skipped: {reason}", UserWarning, stacklevel=1)
            pytest.skip(reason)
    try:
        from playwright.sync_api import sync_playwright  # noqa: F401
    except ImportError as exc:  # a dev dependency: its absence is a broken set-up, but say so
        pytest.skip(f"playwright-python is not importable ({exc}); run `make venv`")
    return CHROMIUM


# ------------------------------------------------------------------------------------ jupyterlab
def explorer_notebook(chapter: Path, explorer: str) -> dict:
    """The chapter notebook cut down to its explorer: a cell ``from helpers.widgets import <explorer>``,
    then the chapter's own cell that calls ``<explorer>(…)`` (source, tags and committed outputs
    verbatim), with the chapter's metadata (its kernel). Fails if the chapter has no such cell, or several."""
    nb = json.loads(chapter.read_text(encoding="utf-8"))
    calls = [c for c in nb["cells"] if c["cell_type"] == "code"
             and re.search(rf"^{re.escape(explorer)}\(", "".join(c["source"]), re.M)]
    assert len(calls) == 1, f"{chapter.name}: expected one cell calling {explorer}(…), found {len(calls)}"
    imports = {"cell_type": "code", "id": "explorer-import", "metadata": {}, "execution_count": None,
               "outputs": [], "source": f"from helpers.widgets import {explorer}"}
    return {**nb, "cells": [imports, calls[0]]}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_settings(settings_dir: Path) -> None:
    """JupyterLab user settings: every cell attached to the DOM, no news or update checks."""
    files = {
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings":
            {"windowingMode": "none", "autoStartDefaultKernel": True},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
            {"checkForUpdates": False, "fetchNews": "false"},
    }
    for rel, content in files.items():
        path = settings_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content))


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, chromium: Path):
    """A JupyterLab server on the explorer-only notebooks (same names as the chapters); yields
    (base_url, token, notebooks_dir)."""
    jupyter = Path(sys.executable).with_name("jupyter")
    if not jupyter.exists():
        pytest.fail(f"{jupyter} is missing: the project venv is not set up (`make venv`)")
    tmp = tmp_path_factory.mktemp("lab")
    notebooks = tmp / "notebooks"
    notebooks.mkdir()
    for name, explorer in NOTEBOOKS.items():
        (notebooks / name).write_text(json.dumps(explorer_notebook(ROOT / "notebooks" / name, explorer)),
                                      encoding="utf-8")
    settings = tmp / "user-settings"
    _write_settings(settings)
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp / "config"), JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
               JUPYTER_DATA_DIR=str(tmp / "data"), JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"),
               IPYTHONDIR=str(tmp / "ipython"), MPLBACKEND="module://matplotlib_inline.backend_inline")
    env.pop("JUPYTER_PATH", None)
    log = open(tmp / "server.log", "wb")  # noqa: SIM115 - closed in the finaliser
    cmd = [str(jupyter), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--port-retries=0",
           f"--IdentityProvider.token={token}", f"--notebook-dir={notebooks}",
           f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={tmp / 'workspaces'}",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           "--LabApp.news_url=None", "--LabApp.extension_manager=readonly",
           "--ServerApp.terminals_enabled=False",
           # a test's kernel is stopped when the test is done: SIGTERM/SIGKILL after 0.1/0.2 s instead
           # of up to 2.5/5 s while an interpreter with torch and matplotlib tears itself down
           "--KernelManager.shutdown_wait_time=0.2"]
    if os.geteuid() == 0:  # CI runs as root; JupyterLab refuses that without the flag
        cmd.append("--allow-root")
    proc = subprocess.Popen(cmd, cwd=notebooks, env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited with {proc.returncode}:\n{(tmp / 'server.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not answer within {SERVER_TIMEOUT}s:\n"
                            f"{(tmp / 'server.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield base, token, notebooks
    finally:
        # the server and its kernels share the new session/process group started above
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def browser(chromium: Path, tmp_path_factory: pytest.TempPathFactory):
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    profile = tmp_path_factory.mktemp("chromium-profile")
    for stale in ARTIFACTS.glob("FAILED_*.png"):  # from an earlier run: only this run's failures remain
        stale.unlink()
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile), executable_path=str(chromium), headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(UI_TIMEOUT)
        try:
            yield context
        finally:
            context.close()


# ------------------------------------------------------------------------------------ page helpers
def _shut_down_kernels(base: str, token: str) -> None:
    """Delete every session (and its kernel): each test starts from an idle server."""
    headers = {"Authorization": f"token {token}"}
    with urllib.request.urlopen(urllib.request.Request(f"{base}/api/sessions", headers=headers), timeout=30) as r:
        sessions = json.load(r)
    for s in sessions:
        req = urllib.request.Request(f"{base}/api/sessions/{s['id']}", method="DELETE", headers=headers)
        with urllib.request.urlopen(req, timeout=30):
            pass


class _LabTab:
    """The browser tab with JupyterLab in it, loaded when first needed and kept for the next test;
    `discard` closes it (after a failure), so that the next test loads a fresh one."""

    def __init__(self, context, lab) -> None:
        self.context, self.lab, self.page = context, lab, None

    def get(self):
        if self.page is None:
            base, token, _ = self.lab
            page = self.context.new_page()
            self.page = page
            # ?reset: a fresh workspace, so no tab of an earlier session is restored (a restored tab
            # can become the "current" notebook that the menu commands would act on)
            page.goto(f"{base}/lab?reset&token={token}", wait_until="domcontentloaded")
            page.locator(".jp-DirListing-item").first.wait_for()  # the file browser lists the notebooks
        return self.page

    def discard(self) -> None:
        if self.page is not None:
            page, self.page = self.page, None
            page.close()


@pytest.fixture(scope="module")
def lab_tab(browser, lab):
    """One JupyterLab tab for the module's tests (see the module's docstring)."""
    tab = _LabTab(browser, lab)
    try:
        yield tab
    finally:
        tab.discard()


@contextmanager
def _page(tab: _LabTab, name: str):
    """The JupyterLab tab, for one notebook: the test opens it (`_open_and_run_all`); when the test is
    done it is closed with File → Close and Shut Down Notebook. On any failure a screenshot
    FAILED_<name>.png is saved next to the others and the tab is closed (the next test loads a new one)."""
    try:
        page = tab.get()
        yield page
        _menu(page, "File", "Close and Shut Down Notebook…")
        page.locator(".jp-Dialog", has_text="Shut down the notebook?").locator(".jp-mod-accept").click()
        page.locator(".jp-NotebookPanel").first.wait_for(state="detached")
    except BaseException:
        try:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            tab.page.screenshot(path=str(ARTIFACTS / f"FAILED_{name}.png"), full_page=True)
        except Exception:  # noqa: BLE001 - the original failure matters more
            pass
        tab.discard()
        raise
    finally:
        _shut_down_kernels(*tab.lab[:2])


def _menu(page, menu: str, item: str) -> None:
    """Click a main-menu entry, as a student would: e.g. Run → Run All Cells."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(rf"^{menu}$")).click()
    page.locator(".lm-Menu-content .lm-Menu-itemLabel", has_text=re.compile(rf"^{re.escape(item)}$")).click()


def _open_and_run_all(page, notebook: str) -> None:
    """Open `notebook` from JupyterLab's file browser, Run → Run All Cells, wait until every code cell has run."""
    assert page.locator(".jp-NotebookPanel").count() == 0, "the previous test's notebook is still open"
    page.locator(".jp-DirListing-item").filter(
        has=page.locator(".jp-DirListing-itemText", has_text=re.compile(rf"^{re.escape(notebook)}$"))).dblclick()
    panel = ".jp-NotebookPanel:not(.lm-mod-hidden)"
    page.locator(f"{panel} .jp-Notebook .jp-Cell").first.wait_for(state="attached")
    # the kernel: started automatically (settings), or accepted in the "Select Kernel" dialog
    # that JupyterLab shows a student by default (the notebook's dims-params is preselected)
    page.wait_for_function(
        r"""() => document.querySelector('.jp-Dialog') ||
                 /dims-params\)\s*\|\s*Idle/.test(document.querySelector('#jp-main-statusbar')?.textContent || '')""",
        timeout=SERVER_TIMEOUT * 1000, polling=250)
    dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
    if dialog.count():
        dialog.locator(".jp-mod-accept").click()
    page.locator("#jp-main-statusbar", has_text=re.compile(r"dims-params\)\s*\|\s*Idle")).wait_for(
        timeout=SERVER_TIMEOUT * 1000)
    # make sure the menu commands act on this notebook: focus it, and check the active tab
    page.locator(f"{panel} .jp-Notebook .jp-Cell").first.click()
    page.locator(".lm-TabBar-tab.lm-mod-current", has_text=notebook).first.wait_for()
    # the committed outputs carry execution counts and dead widget views: clear them first, so
    # that every count and every widget we see afterwards comes from this run
    _menu(page, "Edit", "Clear Outputs of All Cells")
    page.wait_for_function(
        f"() => document.querySelectorAll('{panel} .jp-OutputArea-output').length === 0", polling=250)
    _menu(page, "Run", "Run All Cells")
    # done when every code cell's prompt shows [n]: (none [ ]:, none [*]:) — or, fail fast, when a
    # cell raised (JupyterLab then stops the run) and nothing is queued any more.
    # windowingMode "none" keeps every cell in the DOM.
    from playwright.sync_api import TimeoutError as PlaywrightTimeout  # noqa: PLC0415

    try:
        page.wait_for_function(
            f"""() => {{
                const prompts = [...document.querySelectorAll('{panel} .jp-CodeCell .jp-InputArea-prompt')];
                if (prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent))) return true;
                const raised = [...document.querySelectorAll(
                    '{panel} .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
                    .some(o => o.textContent.includes('Traceback'));
                return raised && !prompts.some(p => p.textContent.includes('*'));
            }}""", timeout=RUN_ALL_TIMEOUT * 1000, polling=500)
    except PlaywrightTimeout:
        state = page.evaluate(f"""() => ({{
            prompts: [...document.querySelectorAll('{panel} .jp-CodeCell .jp-InputArea-prompt')]
                .map(p => p.textContent.trim()).join(' '),
            stderr: [...document.querySelectorAll(
                '{panel} .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
                .map(o => o.textContent.slice(-400)),
            dialogs: [...document.querySelectorAll('.jp-Dialog')].map(d => d.textContent.slice(0, 300)),
            status: document.querySelector('#jp-main-statusbar')?.textContent.trim(),
        }})""")
        pytest.fail(f"{notebook}: Run All Cells did not finish within {RUN_ALL_TIMEOUT}s: {state}")
    errors = page.locator(f"{panel} .jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
                          has_text="Traceback")
    if errors.count():
        cell = page.locator(f"{panel} .jp-CodeCell").filter(has=page.locator(
            ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']", has_text="Traceback")).first
        source = cell.locator(".jp-InputArea-editor").inner_text()[:600]
        pytest.fail(f"{notebook}: a cell raised during Run All Cells:\n{source}\n---\n"
                    f"{errors.first.inner_text()[-1500:]}")


def _explorer(page, css_class: str):
    """The explorer's root widget box, located by the CSS class its output line carries."""
    out = page.locator(f".{css_class}")
    out.first.wait_for(state="visible")
    assert out.count() == 1, f"expected one .{css_class} on the page, found {out.count()}"
    out.scroll_into_view_if_needed()
    root = page.locator(".jp-OutputArea-output").filter(has=page.locator(f".{css_class}"))
    return out, root.last


def _slider(root, label: str):
    return root.locator(".widget-slider").filter(
        has=root.page.locator(".widget-label", has_text=re.compile(rf"^{re.escape(label)}$")))


def _slider_value(root, label: str) -> int:
    return int(_slider(root, label).locator(".widget-readout").inner_text().strip())


def _expect_slider(root, label: str, value: int) -> None:
    from playwright.sync_api import expect  # noqa: PLC0415

    expect(_slider(root, label).locator(".widget-readout")).to_have_text(str(value))


def _press(root, label: str, key: str, times: int = 1) -> None:
    handle = _slider(root, label).locator(".noUi-handle")
    handle.focus()
    for _ in range(times):
        handle.press(key)


def _wait_text(out, pattern: str) -> str:
    """Wait until the output line contains `pattern` (a plain substring); return its text."""
    from playwright.sync_api import expect  # noqa: PLC0415

    expect(out).to_contain_text(pattern, timeout=UI_TIMEOUT)
    return out.inner_text()


def _shot(page, root, name: str) -> Path:
    """Screenshot of the explorer (the whole widget, even beyond the viewport) once the kernel is idle."""
    page.locator("#jp-main-statusbar", has_text=re.compile(r"\|\s*Idle")).wait_for()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    root.screenshot(path=str(path))
    assert path.stat().st_size > 10_000, f"screenshot {path} looks empty"
    return path


def _size_text(size: tuple[int, ...]) -> str:
    return " × ".join(map(str, size))


# ------------------------------------------------------------------------------------------ tests
def test_conv_explorer_stride_slider(lab_tab):
    """02_convolution: the conv explorer's output size follows the stride and input-size sliders."""
    with _page(lab_tab, "02_convolution") as page:
        _open_and_run_all(page, "02_convolution.ipynb")
        out, root = _explorer(page, "dp-conv-output")
        names = ("input size", "kernel_size", "stride", "padding", "dilation", "in_channels", "out_channels", "groups")
        v = {n: _slider_value(root, n) for n in names}

        def expected(v: dict[str, int]) -> tuple[int, int]:
            n = v["input size"]
            return shapes.conv_output_size((n, n), v["kernel_size"], v["stride"], v["padding"], v["dilation"])

        before = expected(v)
        _wait_text(out, f"output size: {_size_text(before)}")
        params = formulas.conv_params(v["in_channels"], v["out_channels"], v["kernel_size"], groups=v["groups"])
        assert f"= {params:,} " in root.inner_text(), "the parameter count shown is not formulas.conv_params"
        _shot(page, root, "02_convolution_explorer_before.png")

        _press(root, "stride", "ArrowRight")
        v["stride"] += 1
        _expect_slider(root, "stride", v["stride"])
        after = expected(v)
        assert after != before, "test set-up: the move must change the output size"
        _wait_text(out, f"output size: {_size_text(after)}")

        _press(root, "input size", "ArrowRight", times=3)
        v["input size"] += 3
        _expect_slider(root, "input size", v["input size"])
        _wait_text(out, f"output size: {_size_text(expected(v))}")
        assert f"= {params:,} " in root.inner_text(), "stride/input size must not change the parameter count"
        _shot(page, root, "02_convolution_explorer_after.png")


def test_attention_explorer_heads_slider(lab_tab):
    """08_attention_transformers: num_heads changes head_dim and the score shape, never the params."""
    with _page(lab_tab, "08_attention") as page:
        _open_and_run_all(page, "08_attention_transformers.ipynb")
        out, root = _explorer(page, "dp-attention-output")
        E = int(root.locator(".widget-dropdown select").input_value())
        h, T, B = (_slider_value(root, n) for n in ("num_heads", "seq_len T", "batch B"))

        def expected(h: int) -> list[str]:
            d_k = E // h
            return [f"head_dim = {E} / {h} = {d_k}", str((B, h, T, d_k)), str((B, h, T, T)),
                    f"params: {formulas.mha_params(E, h):,}"]

        for piece in expected(h):
            _wait_text(out, piece)
        _shot(page, root, "08_attention_explorer_before.png")

        # one step right: usually an invalid split, which the explorer must explain, not crash on
        _press(root, "num_heads", "ArrowRight")
        if E % (h + 1):
            _wait_text(out, f"cannot be split into {h + 1} heads")
        # keep going to the next head count that divides E
        target = next(k for k in range(h + 1, 65) if E % k == 0)
        _press(root, "num_heads", "ArrowRight", times=target - h - 1)
        _expect_slider(root, "num_heads", target)
        for piece in expected(target):
            _wait_text(out, piece)
        assert formulas.mha_params(E, target) == formulas.mha_params(E, h)
        _shot(page, root, "08_attention_explorer_after.png")



def test_rnn_explorer_seq_len_slider(lab_tab):
    """05_rnn_bptt: T changes the output shape (not h_n, not the params); BPTT memory is linear in T."""
    with _page(lab_tab, "05_rnn") as page:
        _open_and_run_all(page, "05_rnn_bptt.ipynb")
        out, root = _explorer(page, "dp-rnn-output")
        T, B, I, H, L = (_slider_value(root, n) for n in
                         ("seq_len T", "batch B", "input_size I", "hidden_size H", "num_layers L"))
        flags = {c: root.locator(".widget-checkbox").filter(has_text=c).locator("input").is_checked()
                 for c in ("bidirectional", "batch_first")}
        D = 2 if flags["bidirectional"] else 1
        params = formulas.rnn_params("RNN", I, H, L, bidirectional=flags["bidirectional"])
        memory = root.locator(".widget-html", has_text="BPTT keeps")

        def check(T: int) -> int:
            """Wait for the shapes at this T; return the activation count the page shows."""
            output = (B, T, D * H) if flags["batch_first"] else (T, B, D * H)
            _wait_text(out, f"output {output}")
            _wait_text(out, f"h_n {(D * L, B, H)}")
            page.locator("#jp-main-statusbar", has_text=re.compile(r"\|\s*Idle")).wait_for()
            assert f"parameters: {params:,}" in root.inner_text(), "T must not change the parameter count"
            return int(re.search(r"BPTT keeps ([\d,]+)", memory.inner_text()).group(1).replace(",", ""))

        saved = [check(T)]
        _shot(page, root, "05_rnn_explorer_before.png")
        for step in (1, 2):
            _press(root, "seq_len T", "ArrowLeft")
            _expect_slider(root, "seq_len T", T - step)
            saved.append(check(T - step))
        # one fewer step frees the same number of activations each time: memory linear in T
        assert saved[0] - saved[1] == saved[1] - saved[2] > 0, saved
        _shot(page, root, "05_rnn_explorer_after.png")


def test_each_chapter_has_one_explorer_cell_for_its_cut_down_notebook():
    """Without a browser too: the cut-down notebook is an import then the chapter's explorer cell, verbatim."""
    for name, explorer in NOTEBOOKS.items():
        chapter = json.loads((ROOT / "notebooks" / name).read_text(encoding="utf-8"))
        nb = explorer_notebook(ROOT / "notebooks" / name, explorer)
        assert nb["metadata"] == chapter["metadata"], "the chapter's kernel"
        assert [c["source"] for c in nb["cells"]][0] == f"from helpers.widgets import {explorer}"
        assert nb["cells"][1] in chapter["cells"] and f"{explorer}(" in "".join(nb["cells"][1]["source"])
