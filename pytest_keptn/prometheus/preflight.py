"""Setup mistakes about Prometheus, found at configure time before anything is deployed.

An external ``--keptn-prometheus-url`` that does not answer or refuses the credentials, and a
missing ``prometheus`` binary where the embedded one is needed, would otherwise deploy, load and
then record a failed gate that looks exactly like a regression. Each is a :class:`ConfigError`
(pytest's usage error, exit 4) in one line naming the option.
"""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING, Any

from pytest_keptn.errors import ConfigError

if TYPE_CHECKING:
    from pytest_keptn.prometheus.answers import PrometheusOutage

PROBE_TIMEOUT = 10.0  # seconds for the one probe; longer than any healthy answer to vector(1)


def check_prometheus(settings: Any) -> None:
    """Raise :class:`ConfigError` for a Prometheus the run cannot use (call it only when a
    selected stage has an SLI that Prometheus answers)."""
    url = getattr(settings, "prometheus_url", None)
    if not url:
        binary = str(getattr(settings, "prometheus_binary", "prometheus"))
        if shutil.which(binary) is None:
            raise ConfigError(
                f"no {binary!r} executable found for the embedded Prometheus: install it "
                "(Debian/Ubuntu: apt-get install prometheus; macOS: brew install prometheus), "
                "or give --keptn-prometheus-url to use a running Prometheus instead",
                field="--keptn-prometheus-binary",
            )
        return
    # here, not at the top: the embedded Prometheus' sessions need no httpx (~0.1 s) before
    # their first stage
    from pytest_keptn.prometheus.answers import PrometheusOutage
    from pytest_keptn.prometheus.client import client_from_settings

    client = client_from_settings(settings, url)
    with client:
        try:
            client.probe(min(PROBE_TIMEOUT, float(getattr(settings, "query_timeout", 10.0))))
        except PrometheusOutage as exc:
            raise ConfigError(exc.message + _credential_hint(settings, exc),
                              field="--keptn-prometheus-url") from None


def _credential_hint(settings: Any, exc: PrometheusOutage) -> str:
    from pytest_keptn.model import SLIStatus

    if exc.status is not SLIStatus.UNAUTHORIZED:
        return ""
    used = [f"--keptn-prometheus-{name}" for name in
            ("token-env", "user-env", "password-env", "headers")
            if getattr(settings, "prometheus_" + name.replace("-", "_"), None)]
    if not used:
        return "; no credentials are configured (--keptn-prometheus-token-env, -user-env and " \
               "-password-env name the environment variables that hold them)"
    hint = f"; check {', '.join(used)}"
    if ("--keptn-prometheus-user-env" in used) != ("--keptn-prometheus-password-env" in used):
        hint += " (basic auth is sent only when both user and password are set)"
    return hint
