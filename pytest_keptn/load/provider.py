"""Locust's own statistics as SLIs, so a gate can run without Prometheus; and reconciliation."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from pytest_keptn.gate.live import LiveBaseline, LiveSamples, Samples
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

    @pytest.hookimpl
    def pytest_keptn_get_live_samples(
        self,
        ctx: StageContext,
        indicators: Sequence[str],
        window: Window,
        load: LoadResult | None,
    ) -> LiveBaseline | None:
        wanted = [name for name in indicators if name in INDICATORS]
        return live_samples(load, wanted) if wanted else None


# What each Locust SLI is compared on under a live baseline: the whole distribution of the
# per-request response times (Mann-Whitney compares distributions, not one percentile), the
# failed requests as a rate, and the requests per second of the window.
_RESPONSE_TIMES = ("locust_avg_ms", "locust_p50_ms", "locust_p95_ms", "locust_p99_ms")
_RATES = ("locust_failure_ratio", "locust_failures")
_PER_SECOND = ("locust_rps", "locust_requests")


def live_samples(load: LoadResult | None, indicators: Sequence[str]) -> LiveBaseline:
    """Canary and baseline samples of the ``locust_*`` indicators from the recorded requests;
    without them (no baseline load, workers, an unreadable file) each says why."""
    path = (load.details.get("samples") if load is not None else None) or ""
    why = str(load.details.get("live_unavailable") or "") if load is not None else ""
    if not path:
        why = why or "the load recorded no per-request samples of a baseline"
        return LiveBaseline(missing={n: why for n in indicators})
    try:
        data: Any = json.loads(Path(str(path)).read_text(encoding="utf-8"))
        sides = {side: data[side] for side in ("canary", "baseline")}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        why = f"the samples file {path} cannot be read: {type(exc).__name__}"
        return LiveBaseline(missing={n: why for n in indicators})
    out: dict[str, LiveSamples] = {}
    source = f"Locust, per request ({path})"
    for name in indicators:
        if name in _RESPONSE_TIMES:
            c, b = (Samples(tuple(sides[s]["response_times_ms"])) for s in ("canary", "baseline"))
        elif name in _RATES:
            c, b = (
                Samples(events=int(sides[s]["failures"]), trials=int(sides[s]["requests"]))
                for s in ("canary", "baseline")
            )
        elif name in _PER_SECOND:
            c, b = (
                Samples(tuple(float(n) for n in sides[s]["per_second"]))
                for s in ("canary", "baseline")
            )
        else:
            continue
        out[name] = LiveSamples(c, b, source)
    return LiveBaseline(samples=out)


def reconcile(load: LoadResult, counted: float, *, tolerance: float = 0.2) -> str | None:
    """Compare what Locust sent with what the SLIs counted; a message when they disagree.

    ``tolerance`` is relative to the requests Locust sent (0.2: within 20 %).
    """
    sent = load.requests
    if abs(counted - sent) <= tolerance * max(sent, 1):
        return None
    return (f"the SLIs do not see the load: Locust sent {sent} requests, "
            f"Prometheus counted {counted:.0f}")
