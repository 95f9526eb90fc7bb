from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from pytest_keptn.config import Settings
from pytest_keptn.load.provider import LocustSLIProvider, reconcile
from pytest_keptn.model import LoadResult, StageContext, Window

START = datetime(2026, 1, 1, tzinfo=UTC)
WINDOW = Window(START, START + timedelta(seconds=10))
LOAD = LoadResult(window=WINDOW, requests=1000, failures=50, rps=100.0, p50_ms=5.0,
                  p95_ms=9.0, p99_ms=20.0, details={"avg_ms": 6.5})
CTX = StageContext(project="p", service="s", stage="st", image="i", tag="t", root=Path("."),
                   workdir=Path("."), settings=Settings())


def test_locust_indicators() -> None:
    results = LocustSLIProvider().pytest_keptn_get_sli(
        CTX, ["locust_requests", "locust_failure_ratio", "response_time_p95", "locust_rps",
              "locust_p50_ms", "locust_p95_ms", "locust_p99_ms", "locust_avg_ms",
              "locust_failures"], WINDOW, "canary", LOAD)
    assert results is not None
    values = {r.metric: r.value for r in results}
    assert values == {"locust_requests": 1000, "locust_failure_ratio": 0.05, "locust_rps": 100,
                      "locust_p50_ms": 5, "locust_p95_ms": 9, "locust_p99_ms": 20,
                      "locust_avg_ms": 6.5, "locust_failures": 50}
    assert all(r.success for r in results)


def test_no_load_or_no_locust_indicator() -> None:
    provider = LocustSLIProvider()
    assert provider.pytest_keptn_get_sli(CTX, ["locust_rps"], WINDOW, "canary", None) is None
    assert provider.pytest_keptn_get_sli(CTX, ["throughput"], WINDOW, "canary", LOAD) is None


def test_reconcile() -> None:
    assert reconcile(LOAD, 1000) is None
    assert reconcile(LOAD, 850) is None
    assert reconcile(LOAD, 0) == (
        "the SLIs do not see the load: Locust sent 1000 requests, Prometheus counted 0")
    assert reconcile(LOAD, 1300) is not None
    assert reconcile(LOAD, 1050, tolerance=0.01) is not None
