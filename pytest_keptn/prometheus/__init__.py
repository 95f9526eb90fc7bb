"""Prometheus: the SLI provider, its query client and an embedded ``prometheus`` process.

The names are imported on first use (PEP 562): the plugin spawns the embedded Prometheus
(:mod:`.server`) before anything imports httpx.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_keptn.prometheus.client import PrometheusClient, client_from_settings
    from pytest_keptn.prometheus.render import builtin_query, render_query
    from pytest_keptn.prometheus.server import EmbeddedPrometheus

__all__ = [
    "EmbeddedPrometheus",
    "PrometheusClient",
    "builtin_query",
    "client_from_settings",
    "render_query",
]
_WHERE = {"EmbeddedPrometheus": "server", "PrometheusClient": "client",
          "client_from_settings": "client", "builtin_query": "render", "render_query": "render"}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
