"""The pytest11 entry of pytest-keptn: options, the marker, the public fixtures.

Without ``--keptn-stage`` (or the ``keptn_stage`` ini key) nothing else happens: an ordinary
test suite runs exactly as before. When a stage is selected, ``pytest_configure`` imports the
runtime (:mod:`pytest_keptn.session`) once; it plans the run and registers the session's
plugins. See docs/architecture.md for the rooms of the runtime.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_keptn import hookspecs
from pytest_keptn.config import add_options, resolve_settings

if TYPE_CHECKING:
    from pytest_keptn.model import StageContext
    from pytest_keptn.session import KeptnSession


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)  # every --keptn-* option and typed keptn_* ini key, from config.Settings


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "keptn_stage(name): run this test inside the stage's test task (after deployment, "
        "before the evaluation); objectives and sequences carry it too",
    )
    settings = resolve_settings(config)
    if settings.enabled:
        # Before the runtime's import (0.3-1 s): Prometheus scrapes a first target only on a
        # discovery tick counted from its own start, so its start comes first (issue 17).
        from pytest_keptn.prometheus.server import spawn_early

        early = spawn_early(config, settings)
        if early is not None:
            # httpx (~0.1 s, a third of it its CLI's rich and click) is first needed when the
            # first stage's load is about to start: imported meanwhile, in the waits
            threading.Thread(target=_import_httpx, name="keptn-import", daemon=True).start()
        from pytest_keptn.session import start  # the one import of the runtime

        start(config, settings, early)  # registers "keptn-session", closed in its pytest_unconfigure


def _import_httpx() -> None:
    with contextlib.suppress(Exception):
        import httpx  # noqa: F401


def _session(config: pytest.Config) -> KeptnSession | None:
    return config.pluginmanager.get_plugin("keptn-session")


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def keptn_session(request: pytest.FixtureRequest) -> KeptnSession:
    """The pytest-keptn session (skips the test when no stage is selected)."""
    session = _session(request.config)
    if session is None:
        pytest.skip("pytest-keptn is off: no --keptn-stage given")
    return session


@pytest.fixture
def keptn_stage_context(request: pytest.FixtureRequest, keptn_session: KeptnSession) -> StageContext:
    """The :class:`pytest_keptn.model.StageContext` of the test's stage."""
    return keptn_session.stage_context(request.node)


@pytest.fixture
def keptn_service_url(request: pytest.FixtureRequest, keptn_session: KeptnSession) -> str:
    """The URL of the build under test in the test's stage (the canary for blue/green)."""
    return keptn_session.service_url(request.node)


@pytest.fixture(scope="session")
def keptn_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real Prometheus (Debian's ``prometheus`` binary) on a free 127.0.0.1 port for the
    session: ``.url``, ``.register(job, "host:port", labels)``, ``.wait_targets_up()``.
    Stopped, with its folder removed, at the end of the session."""
    from pytest_keptn.prometheus.server import EmbeddedPrometheus

    server = EmbeddedPrometheus(tmp_path_factory.mktemp("keptn-prometheus")).start()
    try:
        yield server
    finally:
        server.stop()
