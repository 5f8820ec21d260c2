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

# One intra-op thread per pytest worker: with `-n 2` on 2 cores, tiny torch ops only contend otherwise.
import torch  # noqa: E402

torch.set_num_threads(1)

# --- grader tests: session fixtures (tests/_grader_fixtures.py) --------------------------------
# `fork_servers`: one pair of warm fork servers per worker, lent to every grader batch inside
# `tests._grader_fixtures.sharing(...)` instead of each batch starting its own (≈ 3 s each).
from tests._grader_fixtures import fork_servers  # noqa: E402,F401
