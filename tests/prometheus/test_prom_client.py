"""Client faults that need a stub (timeouts, 503 before ready, auth) and settings handling."""

from __future__ import annotations

import base64
import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from prom_stub import Stub, ok_vector, sleeper

from pytest_keptn.errors import ConfigError, ProviderError
from pytest_keptn.model import SLIStatus
from pytest_keptn.prometheus.client import PrometheusClient, PrometheusOutage, client_from_settings

NOW = datetime.now(UTC)
SENTINEL = "s3cr3t-SENTINEL-token-9f8e"


def test_value_and_warnings(stub: Stub) -> None:
    with PrometheusClient(stub.url + "/prometheus") as client:
        r = client.query("up", NOW, metric="m")
    assert (r.status, r.value, r.success, r.metric, r.query) == (SLIStatus.VALUE, 1.0, True, "m", "up")
    assert r.warnings == ("partial data",)


def test_query_timeout_is_bounded(stub: Stub) -> None:
    stub.set(sleeper(5))
    with PrometheusClient(stub.url, timeout=0.5, retries=2) as client:
        began = time.monotonic()
        r = client.query("slow_query", NOW)
        took = time.monotonic() - began
    assert r.status is SLIStatus.TIMEOUT and not r.success
    assert "timed out after 0.5s" in r.message and "slow_query" in r.message
    assert took < 1.5
    assert len(stub.requests) == 1  # a timeout is not retried


def test_503_before_ready_is_retried_then_reported(stub: Stub) -> None:
    stub.set(lambda h: (503, "Service Unavailable", {"X-Prometheus-Stopping": "false"}))
    with PrometheusClient(stub.url, retries=2) as client:
        r = client.query("up", NOW)
    assert r.status is SLIStatus.SERVER_ERROR and r.status.outage and not r.success
    assert r.message == "HTTP 503 Service Unavailable: up"
    assert len(stub.requests) == 3


def test_503_then_ready_succeeds(stub: Stub) -> None:
    calls: list[int] = []

    def flaky(h: object) -> tuple[int, str, dict[str, str]]:
        calls.append(1)
        if len(calls) == 1:
            return 503, "Service Unavailable", {}
        return ok_vector("7")(h)  # type: ignore[arg-type]

    stub.set(flaky)
    with PrometheusClient(stub.url, retries=2) as client:
        r = client.query("up", NOW)
    assert (r.status, r.value) == (SLIStatus.VALUE, 7.0)


def test_prometheus_query_timeout_error_is_typed(stub: Stub) -> None:
    body = json.dumps({"status": "error", "errorType": "timeout", "error": "query timed out in expression evaluation"})
    stub.set(lambda h: (503, body, {"Content-Type": "application/json"}))
    with PrometheusClient(stub.url) as client:
        r = client.query("up", NOW)
    assert r.status is SLIStatus.TIMEOUT
    assert len(stub.requests) == 1


def test_wrong_credential_never_shows_the_token(
    stub: Stub, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    def auth(h: object) -> tuple[int, str, dict[str, str]]:
        got = h.headers.get("Authorization", "")  # type: ignore[attr-defined]
        if got != "Bearer right-token":
            return 401, f"unauthorized: got {got}", {"Content-Type": "text/plain"}
        return ok_vector()(h)  # type: ignore[arg-type]

    stub.set(auth)
    client = PrometheusClient(stub.url, token=SENTINEL, headers={"X-Scope-OrgID": "tenant-1"})
    with client:
        r = client.query("up", NOW)
    assert stub.requests[0]["authorization"] == f"Bearer {SENTINEL}"
    assert stub.requests[0]["x-scope-orgid"] == "tenant-1"
    assert r.status is SLIStatus.UNAUTHORIZED and "HTTP 401" in r.message
    assert "credentials" in r.message
    assert len(stub.requests) == 1  # 4xx is never retried
    everything = repr(r) + str(r) + repr(client) + str(client) + str(r.to_keptn())
    captured = capsys.readouterr()
    everything += captured.out + captured.err + caplog.text
    assert SENTINEL not in everything


def test_basic_auth_from_settings_env(stub: Stub, monkeypatch: pytest.MonkeyPatch) -> None:
    @dataclass(frozen=True)
    class S:
        prometheus_headers: str | None = "X-Scope-OrgID: t1; X-Other: b"
        prometheus_token_env: str | None = None
        prometheus_user_env: str | None = "PK_USER"
        prometheus_password_env: str | None = "PK_PASS"
        query_timeout: float = 3.0

    monkeypatch.setenv("PK_USER", "alice")
    monkeypatch.setenv("PK_PASS", SENTINEL)
    with client_from_settings(S(), stub.url) as client:
        assert SENTINEL not in repr(client)
        assert client.query("up", NOW).status is SLIStatus.VALUE
    sent = stub.requests[0]
    assert sent["authorization"] == "Basic " + base64.b64encode(f"alice:{SENTINEL}".encode()).decode()
    assert (sent["x-scope-orgid"], sent["x-other"]) == ("t1", "b")
    monkeypatch.delenv("PK_PASS")
    with pytest.raises(ConfigError, match="password-env: names an environment variable that "
                       "is not set") as info:
        client_from_settings(S(), stub.url)
    assert "PK_PASS" not in str(info.value)  # the option's value is never echoed
    with pytest.raises(ConfigError, match="Name: value"):
        client_from_settings(S(prometheus_headers="novalue"), stub.url)


def test_unreachable_after_retries() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with PrometheusClient(f"http://127.0.0.1:{port}", retries=2, timeout=5) as client:
        began = time.monotonic()
        r = client.query("up", NOW)
    assert r.status is SLIStatus.UNREACHABLE and "unreachable" in r.message
    assert time.monotonic() - began < 3


def test_compat_087_http_error(stub: Stub) -> None:
    stub.set(lambda h: (400, json.dumps({"status": "error", "errorType": "bad_data", "error": "parse error"}), {}))
    with PrometheusClient(stub.url) as client:
        r = client.query("sum(", NOW, compat="0.8.7")
    assert (r.success, r.value, r.message) == (False, 0.0, "metric could not be received")
    assert r.status is SLIStatus.QUERY_ERROR


def test_hung_prometheus_costs_one_timeout_not_one_per_indicator(stub: Stub) -> None:
    """Nothing answers: the batches time out once, vector(1) does not answer either, and every
    indicator is a timeout; no one-by-one retry (120 indicators / 16 workers x 1 s)."""
    stub.set(sleeper(5))
    queries = {f"q{i}": f"sum(rate(x_{i}[1m]))" for i in range(120)}
    with PrometheusClient(stub.url, timeout=1, retries=0) as client:
        began = time.monotonic()
        got = client.query_many(queries, NOW)
        took = time.monotonic() - began
    assert {r.status for r in got.values()} == {SLIStatus.TIMEOUT}
    assert "did not answer vector(1) within 1s either: sum(rate(x_7[1m]))" in got["q7"].message
    assert took < 3.5, took


def test_slow_batch_of_a_live_prometheus_is_asked_one_by_one(stub: Stub) -> None:
    """A batch that times out while Prometheus answers short queries: one query each."""
    fast = ok_vector("2")

    def behave(h: Any) -> tuple[int, str, dict[str, str]]:
        if int(h.headers.get("Content-Length") or 0) > 400:  # a batch
            time.sleep(1.4)  # past the 1 s timeout; the one-thread stub then answers again
        return fast(h)

    stub.set(behave)
    queries = {f"q{i}": f"sum(rate(x_{i}[1m]))" for i in range(20)}
    # 4 workers: the stub's listen backlog is socketserver's 5
    with PrometheusClient(stub.url, timeout=1, retries=0, max_workers=4) as client:
        got = client.query_many(queries, NOW)
    assert {(r.status, r.value) for r in got.values()} == {(SLIStatus.VALUE, 2.0)}, [
        r.message for r in got.values() if r.message][:2]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_freshness_wait_ends_at_once_when_refused() -> None:
    with PrometheusClient(f"http://127.0.0.1:{_free_port()}", timeout=5) as client:
        began = time.monotonic()
        with pytest.raises(PrometheusOutage, match="unreachable") as info:
            client.wait_fresh(["a", "b"], NOW, timeout=30)
    assert info.value.status is SLIStatus.UNREACHABLE and info.value.status.outage
    assert time.monotonic() - began < 3  # two retries after 0.2 s and 0.4 s, not the 30 s
    result = info.value.result("throughput", "sum(x)")
    assert (result.status, result.success, result.query) == (SLIStatus.UNREACHABLE, False, "sum(x)")


@pytest.mark.parametrize("code", [401, 403])
def test_freshness_wait_ends_at_once_when_credentials_are_refused(stub: Stub, code: int) -> None:
    stub.set(lambda h: (code, f"denied {h.headers.get('Authorization')}", {}))  # type: ignore[attr-defined]
    with PrometheusClient(stub.url, token=SENTINEL, timeout=5) as client:
        began = time.monotonic()
        with pytest.raises(PrometheusOutage, match=f"refused the credentials \\(HTTP {code}") as info:
            client.wait_fresh(["a"], NOW, timeout=30)
    assert info.value.status is SLIStatus.UNAUTHORIZED
    assert time.monotonic() - began < 2 and len(stub.requests) == 1
    assert SENTINEL not in str(info.value) and "***" in str(info.value)


def test_freshness_wait_keeps_waiting_through_a_503(stub: Stub) -> None:
    """A Prometheus that is restarting may come back: only the timeout ends this wait."""
    stub.set(lambda h: (503, "Service Unavailable", {}))
    with PrometheusClient(stub.url, timeout=1, retries=0) as client:
        with pytest.raises(ProviderError, match=r"no samples .* within 1s .*\(HTTP 503\)") as info:
            client.wait_fresh(["a"], NOW, timeout=1)
    assert not isinstance(info.value, PrometheusOutage) and len(stub.requests) > 1


@pytest.mark.parametrize(("given", "base", "auth"), [
    ("prom.example:9090", "https://prom.example:9090", None),  # Keptn: no scheme means https
    (" http://prom .example:9090/ ", "http://prom.example:9090", None),  # spaces removed
    ("HTTP://u:pw99@h:1/prom", "HTTP://h:1/prom", ("u", "pw99")),
    ("http://u:pa/ss?w#rd@h:9090/prom", "http://h:9090/prom", ("u", "pa/ss?w#rd")),
    ("http://u:p@ss:w@[::1]:9090", "http://[::1]:9090", ("u", "p@ss:w")),
    ("http://u:pa%2Fw0rd@h", "http://h", ("u", "pa/w0rd")),
])
def test_urls_are_read_as_keptn_reads_them(given: str, base: str, auth: object) -> None:
    with PrometheusClient(given) as client:
        assert client.base_url == base
        secret = auth[1] if isinstance(auth, tuple) else None
        if secret:
            assert secret not in repr(client)
            assert client.scrub(f"x {secret} y") == "x *** y"


def test_a_url_that_cannot_be_read_is_refused_without_showing_it() -> None:
    for url in ("ftp://u:SENTINEL@h", "http://u:SENTINEL@/path"):
        with pytest.raises(ConfigError, match="--keptn-prometheus-url") as info:
            PrometheusClient(url)
        assert "SENTINEL" not in str(info.value)


@dataclass(frozen=True)
class _Creds:
    prometheus_headers: str | None = None
    prometheus_token_env: str | None = None
    prometheus_user_env: str | None = None
    prometheus_password_env: str | None = None
    prometheus_ca_bundle: str | None = None
    prometheus_insecure_skip_verify: bool = False


@pytest.mark.parametrize(("settings", "says"), [
    (_Creds(prometheus_token_env=SENTINEL), "token-env: names an environment variable, and what "
     "it was given is not a valid variable name"),
    (_Creds(prometheus_token_env="tok_" + SENTINEL.replace("-", "_")), "token-env: names an "
     "environment variable that is not set"),
    (_Creds(prometheus_headers=f"Authorization=Bearer {SENTINEL}"), "header 1 of 1 is not "
     "'Name: value'"),
    (_Creds(prometheus_headers=f"X-Org: t1; Cookie: a={SENTINEL}; b={SENTINEL}"),
     "header 3 of 3 is not 'Name: value'"),
    (_Creds(prometheus_headers=f"X-Api-Key: {SENTINEL}\x01"), "header 1 of 1 (X-Api-Key) has a "
     "control character"),
    (_Creds(prometheus_token_env="PK_CTRL_TOKEN"), "token-env: names an environment variable "
     "whose value has a control character"),
    (_Creds(prometheus_ca_bundle="/no/such/ca.pem"), "--keptn-prometheus-ca-bundle: cannot read "
     "/no/such/ca.pem"),
])
def test_bad_credential_settings_never_show_a_secret(
    settings: _Creds, says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PK_CTRL_TOKEN", f"{SENTINEL}\nmore")
    with pytest.raises(ConfigError) as info:
        client_from_settings(settings, "http://127.0.0.1:9")
    assert says in str(info.value)
    assert SENTINEL not in str(info.value) and "SENTINEL" not in str(info.value)


def test_credentials_are_stripped_and_basic_auth_needs_both(
    stub: Stub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PK_TOKEN", f"  {SENTINEL}\r\n")  # read from a file or a k8s secret
    monkeypatch.setenv("PK_USER", "alice\n")
    monkeypatch.setenv("PK_EMPTY", " ")
    with client_from_settings(_Creds(prometheus_token_env="PK_TOKEN"), stub.url) as client:
        assert client.query("up", NOW).status is SLIStatus.VALUE
    with client_from_settings(_Creds(prometheus_user_env="PK_USER",
                                     prometheus_password_env="PK_EMPTY"), stub.url) as client:
        assert client.query("up", NOW).status is SLIStatus.VALUE
    assert stub.requests[0]["authorization"] == f"Bearer {SENTINEL}"
    assert "authorization" not in stub.requests[1]  # Keptn: user and password, or nothing


def test_echoed_credentials_in_values_and_labels_are_scrubbed(stub: Stub) -> None:
    """A proxy that echoes the Authorization header into a sample value or a label."""
    def echo(h: Any) -> tuple[int, str, dict[str, str]]:
        auth = h.headers.get("Authorization", "")
        body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"auth": auth}, "value": [1, auth]},
            {"metric": {"auth": repr(auth), "b": "2"}, "value": [1, "1"]}]},
            "warnings": [f"echo {auth!r}"]})
        return 200, body, {"Content-Type": "application/json"}

    stub.set(echo)
    with PrometheusClient(stub.url, token=SENTINEL + "\\x") as client:
        many = client.query("up", NOW)
        first = client.query("up", NOW, compat="0.8.7")
        batch = client.query_many({"a": "up", "b": "sum(up)"}, NOW, aggregate=["a"])
    texts = [many.message, first.message, *many.warnings, *first.warnings,
             *(r.message for r in batch.values()), *(w for r in batch.values() for w in r.warnings)]
    assert many.status is SLIStatus.MULTIPLE and "***" in many.message
    assert batch["a"].status is SLIStatus.INVALID
    assert not [t for t in texts if "SENTINEL" in t], texts
