"""Shared test configuration: hypothesis profiles.

- "ci" (default): 200 examples per property, no deadline (2-core CI machines are slow and shared).
- "thorough": 2,000 examples — `HYPOTHESIS_PROFILE=thorough make test-fast`.
- "dev": 30 examples for quick local iterations.
"""

import os
import warnings

from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=200, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
settings.register_profile("thorough", max_examples=2000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
settings.register_profile("dev", max_examples=30, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# torch warns when it initialises zero-element tensors; irrelevant to counting.
warnings.filterwarnings("ignore", message="Initializing zero-element tensors is a no-op")

# Notebooks under tests/ (e.g. synthetic, deliberately broken homework submissions) are data for
# the grader tests, never notebooks for nbval to run.
collect_ignore_glob = ["*.ipynb", "**/*.ipynb"]


# ------------------------------------------------------------------ process start and exit (test speed)
def _is_xdist_controller(config) -> bool:
    """True in the process that runs `-n N` workers and no test itself."""
    return bool(getattr(config.option, "numprocesses", None)) and not hasattr(config, "workerinput")


def pytest_configure(config):
    # One intra-op thread per pytest worker: with `-n 2` on 2 cores, tiny torch ops only contend otherwise.
    # Not in the xdist controller: it loads this file before it starts the workers, and importing torch
    # there (~1.2 s) only delays them.
    if not _is_xdist_controller(config):
        import torch

        torch.set_num_threads(1)


def pytest_unconfigure(config):
    # The run is over: freeze the garbage collector, so that the interpreter's exit does not end with full
    # collections over every object torch, transformers and the tests made (~2 s per pytest process, each
    # xdist worker included, at the very end of `make test`). The process is exiting: its memory goes
    # back to the system either way.
    import gc

    gc.freeze()


# --- grader tests: session fixtures (tests/_grader_fixtures.py) --------------------------------
# `fork_servers`: one pair of warm fork servers per worker, lent to every grader batch inside
# `tests._grader_fixtures.sharing(...)` instead of each batch starting its own (≈ 3 s each).
from tests._grader_fixtures import fork_servers  # noqa: E402,F401
