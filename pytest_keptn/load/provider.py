"""Locust's own statistics as SLIs, so a gate can run without Prometheus; and reconciliation."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from pytest_keptn.model import LoadResult, SLIResult, StageContext, Window

INDICATORS: dict[str, Callable[[LoadResult], float]] = {
    "locust_requests": lambda r: float(r.requests),
    "locust_failures": lambda r: float(r.failures),
    "locust_failure_ratio": lambda r: r.failures / r.requests if r.requests else 0.0,
    "locust_rps": lambda r: r.rps,
    "locust_p50_ms": lambda r: r.p50_ms,
    "locust_p95_ms": lambda r: r.p95_ms,
    "locust_p99_ms": lambda r: r.p99_ms,
    "locust_avg_ms": lambda r: float(r.details.get("avg_ms", 0.0)),
}


class LocustSLIProvider:
    """Answers the ``locust_*`` indicators from the test task's :class:`LoadResult`."""

    @pytest.hookimpl
    def pytest_keptn_get_sli(
        self,
        ctx: StageContext,
        indicators: Sequence[str],
        window: Window,
        deployment: str,
        load: LoadResult | None,
    ) -> Sequence[SLIResult] | None:
        if load is None:
            return None
        wanted = [name for name in indicators if name in INDICATORS]
        if not wanted:
            return None
        return [SLIResult(metric=name, value=INDICATORS[name](load), query=f"locust:{name}")
                for name in wanted]


def reconcile(load: LoadResult, counted: float, *, tolerance: float = 0.2) -> str | None:
    """Compare what Locust sent with what the SLIs counted; a message when they disagree.

    ``tolerance`` is relative to the requests Locust sent (0.2: within 20 %).
    """
    sent = load.requests
    if abs(counted - sent) <= tolerance * max(sent, 1):
        return None
    return (f"the SLIs do not see the load: Locust sent {sent} requests, "
            f"Prometheus counted {counted:.0f}")
