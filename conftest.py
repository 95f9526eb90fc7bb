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

import pytest  # noqa: E402

# What the pytest sessions a test starts (pytester, subprocess) leave out, all of it about this
# repository's dev environment, none of it about the plugin: Hypothesis' pytest plugin (dev-only:
# 0.7 s of a child's 1.2 s start here) and anyio's (httpx's dependency: 0.1 s); and, where the
# machine sets PYTHONDONTWRITEBYTECODE, the cache of pytest's assertion rewriting, without which
# every child rewrites every plugin module again (0.3 s). A child session then starts in 0.5 s.
CHILD_ADDOPTS = "-p no:hypothesispytest -p no:anyio"


def _lean_children(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_ADDOPTS", CHILD_ADDOPTS)
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)


@pytest.fixture(autouse=True)
def _lean_child_sessions(monkeypatch: pytest.MonkeyPatch) -> None:
    _lean_children(monkeypatch)


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """pytester with lean child sessions (pytester clears PYTEST_ADDOPTS as it starts)."""
    _lean_children(monkeypatch)
    return pytester
