"""Prometheus: the SLI provider, its query client and an embedded ``prometheus`` process."""

from __future__ import annotations

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
