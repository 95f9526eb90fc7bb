"""The ``prometheus_proc`` fixture: one embedded Prometheus per test session.

The plugin registers this module. When an external Prometheus URL is configured
(``--keptn-prometheus-url``) nothing is started and the fixture gives ``None``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_keptn.prometheus.server import EmbeddedPrometheus


def _option(config: pytest.Config, name: str, default: object) -> object:
    try:
        value = config.getoption(name)
    except ValueError:
        return default
    return default if value is None else value


@pytest.fixture(scope="session")
def prometheus_proc(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EmbeddedPrometheus | None]:
    """A running :class:`EmbeddedPrometheus` (stopped, with its folder removed, at session end)."""
    if _option(request.config, "keptn_prometheus_url", None):
        yield None
        return
    binary = str(_option(request.config, "keptn_prometheus_binary", "prometheus"))
    interval = float(str(_option(request.config, "keptn_scrape_interval", 1.0)))
    workdir = Path(tmp_path_factory.mktemp("keptn-prometheus"))
    with EmbeddedPrometheus(workdir, binary=binary, scrape_interval=interval) as prom:
        yield prom
