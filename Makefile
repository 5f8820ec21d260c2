# Two commands matter: `make lab` and `make test`. Everything else is a helper target.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
KERNEL := dims-params
STAMP := $(VENV)/.installed
JOBS ?= 2
NBVAL := --nbval --nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout=300
NOTEBOOKS := $(wildcard notebooks/*.ipynb solutions/*.ipynb exercises/*.ipynb)
# nbval runs the chapters, one kernel each; solutions/ and exercises/ run with nbval's checks (every cell
# runs and prints its committed output) in ONE kernel per folder — tests/test_solutions_run.py,
# tests/test_exercises.py (tests/_one_kernel.py) — instead of 32 kernels each importing torch
NBVAL_NOTEBOOKS := $(wildcard notebooks/*.ipynb)

.PHONY: venv startup-hook lab-settings trust instructor lock upgrade bubblewrap lab test test-fast test-notebooks exercises exercises-check grade bench bench-full lint notebooks site clean

## venv: create .venv and install exactly requirements.lock (every package pinned with its hash: no
## resolution at install time), then the course itself (editable), the Jupyter kernel and the lab settings.
## Re-runs only when the lock or pyproject.toml changed (idempotent and instant otherwise).
venv: $(STAMP)
# DeepSpeed installs from source: compile none of its CUDA/C++ ops (pure-Python wheel, keeps torch==2.13.0)
$(STAMP): export DS_BUILD_OPS := 0
$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python ($(KERNEL))"
	@$(MAKE) --no-print-directory lab-settings
	@$(MAKE) --no-print-directory bubblewrap
	@touch $@

## startup-hook: a .pth line in .venv's site-packages that runs helpers/_lazy_rfc3987.py at interpreter start:
## `import nbformat` (nbval, nbgrader, JupyterLab) no longer spends ≈ 1 s building rfc3987-syntax's IRI parser,
## which nothing here uses (jsonschema#1428; its docstring says how). Re-written by `make test` / `make lab`.
LAZY_PTH := import os; p = '$(CURDIR)/helpers/_lazy_rfc3987.py'; os.path.exists(p) and exec(compile(open(p, 'rb').read(), p, 'exec'), {'__name__': '_dp_lazy_rfc3987'})
startup-hook: venv
	@$(BIN)/python -c "import sys, sysconfig, pathlib; pathlib.Path(sysconfig.get_paths()['purelib'], 'dp_lazy_rfc3987.pth').write_text(sys.argv[1] + '\n')" "$(LAZY_PTH)"

## lab-settings: JupyterLab as students see it, written into .venv only (nothing in your home folder):
## notebooks open in the course kernel, no "Jupyter news" pop-up, no nbgrader menus (instructors:
## `make instructor`), and the course notebooks trusted (signatures kept in .venv/share/jupyter/notary).
LABCONF := $(VENV)/etc/jupyter
NOTARY := $(CURDIR)/$(VENV)/share/jupyter/notary
NBGRADER_SERVER := $(addprefix nbgrader.server_extensions.,formgrader validate_assignment assignment_list course_list)
lab-settings:
	@mkdir -p $(VENV)/share/jupyter/lab/settings $(LABCONF)
	@echo '{"@jupyterlab/notebook-extension:tracker": {"autoStartDefaultKernel": true}, "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": false}}' \
	    > $(VENV)/share/jupyter/lab/settings/overrides.json
	@for f in jupyter_server_config jupyter_notebook_config; do \
	    echo '{"NotebookNotary": {"data_dir": "$(NOTARY)"}}' > $(LABCONF)/$$f.json; done
	@$(BIN)/jupyter labextension disable --level=sys_prefix @jupyter/nbgrader >/dev/null 2>&1
	@for e in $(NBGRADER_SERVER); do $(BIN)/jupyter server extension disable --sys-prefix $$e >/dev/null 2>&1; done

## trust: sign the course notebooks as trusted (their figures and widgets show without a "not trusted"
## warning); re-run by `make lab` and `make test`, since re-executed notebooks need a new signature.
trust: venv
	@mkdir -p $(NOTARY)
	@JUPYTER_DATA_DIR=$(NOTARY) $(BIN)/jupyter trust notebooks/*.ipynb solutions/*.ipynb exercises/*.ipynb >/dev/null 2>&1

## instructor: enable nbgrader's lab and server extensions in .venv (formgrader, Create Assignment).
instructor: venv
	$(BIN)/jupyter labextension enable --level=sys_prefix @jupyter/nbgrader
	for e in $(NBGRADER_SERVER); do $(BIN)/jupyter server extension enable --sys-prefix $$e; done

## lock: re-resolve requirements.lock from pyproject.toml (pip-tools; reads pip's configuration, so the
## torch CPU wheel comes from where pip is told to look). make upgrade = lock with newest releases + full suite.
PIPTOOLS := pip-tools==7.7.0
LOCKFLAGS := --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links --extra dev
# pip-tools lives in its own venv (.lock-venv): installing it into .venv would change locked packages
LOCKVENV := .lock-venv
lock:
	@test -x $(LOCKVENV)/bin/pip-compile || { $(PYTHON) -m venv $(LOCKVENV) && $(LOCKVENV)/bin/python -m pip install --quiet $(PIPTOOLS); }
	$(LOCKVENV)/bin/pip-compile $(LOCKFLAGS) $(LOCKARGS) -o requirements.lock pyproject.toml

upgrade:
	$(MAKE) lock LOCKARGS=--upgrade
	$(MAKE) test

## bubblewrap: the grader's sandbox (`make grade` refuses to run without it). Installed with apt
## where it is missing and apt is available (as root, or with passwordless sudo); never fatal,
## never hangs (time-limited, quiet; `apt-get update` only if the first install fails).
bubblewrap:
	@if command -v bwrap >/dev/null; then exit 0; fi; \
	if ! command -v apt-get >/dev/null; then \
	    echo "note: bubblewrap (bwrap) is missing and apt-get is not available: install it with your package manager; the grader refuses to grade without it (or use --no-sandbox)"; exit 0; fi; \
	SUDO=; if [ "$$(id -u)" != 0 ]; then \
	    if sudo -n true 2>/dev/null; then SUDO="sudo -n"; else \
	    echo "note: bubblewrap (bwrap) is missing: run 'sudo apt-get install bubblewrap' (the grader needs it)"; exit 0; fi; fi; \
	echo "installing bubblewrap (the grader's sandbox) with apt-get…"; \
	export DEBIAN_FRONTEND=noninteractive; \
	timeout 300 $$SUDO apt-get install -y -qq bubblewrap >/dev/null 2>&1 \
	    || { timeout 300 $$SUDO apt-get update -qq >/dev/null 2>&1; \
	         timeout 300 $$SUDO apt-get install -y -qq bubblewrap >/dev/null 2>&1; }; \
	if command -v bwrap >/dev/null; then echo "bubblewrap installed: $$(bwrap --version)"; \
	else echo "note: could not install bubblewrap with apt-get; the grader refuses to grade without it (or use --no-sandbox)"; fi

## lab: open JupyterLab on notebooks/ (headless machines: the server starts and prints its URL).
lab: venv startup-hook trust
	$(BIN)/jupyter lab --notebook-dir=notebooks $(if $(DISPLAY)$(WAYLAND_DISPLAY),,--no-browser) \
	    $(if $(filter 0,$(shell id -u)),--allow-root)

# one torch thread per pytest worker / nbval kernel: with 2 workers on 2 cores, more threads only contend
test test-fast test-notebooks: export OMP_NUM_THREADS := 1

## test: the whole suite: helpers' tests, exercise sync, nbval on every chapter notebook, and nbval's
## checks on every solutions/ and exercises/ notebook (one kernel per folder: tests/_one_kernel.py).
test: venv startup-hook trust
	$(BIN)/python -m pytest -n $(JOBS) --dist loadfile tests $(NBVAL_NOTEBOOKS) $(NBVAL) -q -rs

test-fast: venv startup-hook
	$(BIN)/python -m pytest -n $(JOBS) --dist loadfile tests -q

test-notebooks: venv startup-hook
	$(BIN)/python -m pytest -n $(JOBS) --dist loadfile $(NBVAL_NOTEBOOKS) tests/test_solutions_run.py tests/test_exercises.py $(NBVAL) -q

## notebooks: re-execute every notebook in place (after changing helpers), so committed outputs stay current.
notebooks: venv
	$(BIN)/python -m helpers.course.notebooks $(NOTEBOOKS)

## exercises: regenerate exercises/ from solutions/ (single source).
exercises: venv
	$(BIN)/python -m helpers.exercises

exercises-check: venv
	$(BIN)/python -m helpers.exercises --check

## grade: grade submissions: make grade SUBMISSIONS="path/*.ipynb" [OUT=grading/x/grades.csv] [GRADE_ARGS="--lms canvas"]
## (default output folder: grading/<chapters>/, git-ignored; student data: files 0600, folders 0700)
grade: venv
	$(BIN)/python -m helpers.grade $(SUBMISSIONS) $(if $(OUT),--out $(OUT)) --jobs $(JOBS) $(GRADE_ARGS)

## bench: every benchmark section, quick sizes (a few minutes; each still prints its before/after ratios);
## bench-full: the sizes each section states (e.g. 30 copies for the grader; ≈ 11 min on 2 cores).
bench: venv
	$(BIN)/python tests/benchmarks/run.py

bench-full: venv
	$(BIN)/python tests/benchmarks/run.py --full

## site: render notebooks/ (committed outputs, nothing executed) into a static HTML site in _site/
## (index + prev/next navigation, figures embedded, links between notebooks → their pages, a search box
## over every section; offline: a local MathJax is used if installed — jupyter-server-mathjax, a dev
## dependency, or Debian's libjs-mathjax — else formulas stay TeX source).
site: venv
	$(BIN)/python -m helpers.course.site --out _site

clean:
	rm -rf $(VENV) $(LOCKVENV) _site .pytest_cache
