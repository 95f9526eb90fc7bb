"""Top-level conftest (the pytester plugin is enabled through ``addopts`` in pyproject.toml)."""

from __future__ import annotations

import signal

from hypothesis import settings

# A shell without job control starts a background job (`cmd &`, as many CI wrappers do) with
# SIGINT ignored, and every child inherits that: the plugin then rightly leaves SIGINT alone, and
# the tests that send SIGINT to a pytest they started see nothing happen. The suite restores
# Python's own handler so that what it starts gets SIGINT's default action, however it was run.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# CI machines have 2 cores shared with real Prometheus, Locust and service processes that other
# tests start: a per-example deadline would turn load into flaky failures, not find bugs.
settings.register_profile("keptn", deadline=None, print_blob=True)
settings.load_profile("keptn")

# pytester's in-process runs drop every module first imported during the run. libyaml's C
# extension cannot be re-imported (it keeps the yaml node classes of its first import), and
# httpcore imports its backends lazily, so both are imported here, before any pytester run.
import httpcore._backends.sync  # noqa: E402, F401
import httpx  # noqa: E402
import yaml._yaml  # noqa: E402, F401

import pytest_keptn.spec._yaml  # noqa: E402

assert httpx and pytest_keptn.spec._yaml
