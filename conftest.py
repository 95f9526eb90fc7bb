"""Top-level conftest (the pytester plugin is enabled through ``addopts`` in pyproject.toml)."""

from __future__ import annotations

from hypothesis import settings

# CI machines have 2 cores shared with real Prometheus, Locust and service processes that other
# tests start: a per-example deadline would turn load into flaky failures, not find bugs.
settings.register_profile("keptn", deadline=None, print_blob=True)
settings.load_profile("keptn")
