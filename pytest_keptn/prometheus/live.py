"""Samples of Prometheus SLIs for the live-baseline comparison (slo.yaml ``comparison.baseline:
live``): each indicator's query evaluated as a range query over the load window, once for the
canary and once with the canary's job replaced by the baseline's.

Why these steps: a point of the range query is the indicator over the last ``span`` seconds
(``$DURATION_SECONDS`` becomes the span), with ``span = step = 2 scrape intervals``, so the
points' windows do not overlap (Mann-Whitney assumes independent samples; rate() needs two
scrapes in its window). A 30 s window at a 1 s scrape gives about 15 points per side.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import timedelta

from pytest_keptn.errors import KeptnError, ProviderError
from pytest_keptn.gate.live import LiveBaseline, LiveSamples, Samples
from pytest_keptn.model import StageContext, Window
from pytest_keptn.prometheus.client import client_from_settings
from pytest_keptn.prometheus.provider import indicator_query, jobs_in, known_interval


def baseline_query(promql: str, canary_job: str, baseline_job: str) -> str | None:
    """The query with its exact ``job="<canary job>"`` matchers pointed at the baseline."""
    if canary_job not in jobs_in(promql):
        return None
    out = promql
    for quote in ('"', "'"):
        out = out.replace(f"{quote}{canary_job}{quote}", f"{quote}{baseline_job}{quote}")
    return out


def live_samples(ctx: StageContext, indicators: Sequence[str], window: Window) -> LiveBaseline:
    """Canary and baseline samples of every indicator whose query selects the canary's job;
    the others get a reason (their objectives then compare with the history)."""
    if ctx.prometheus_url is None:
        return LiveBaseline(missing={n: "no Prometheus" for n in indicators})
    settings = ctx.settings
    step = 2.0 * float(getattr(settings, "scrape_interval", 1.0) or 1.0)
    span = Window(window.end - timedelta(seconds=step), window.end)
    canary_job, baseline_job = ctx.job + "-canary", ctx.job + "-baseline"
    queries: dict[str, tuple[str, str]] = {}
    missing: dict[str, str] = {}
    for name in indicators:
        try:
            promql = indicator_query(ctx, name, span)
        except ProviderError as exc:
            missing[name] = str(exc)
            continue
        if promql is None:
            continue  # not a Prometheus indicator (locust_*)
        other = baseline_query(promql, canary_job, baseline_job)
        if other is None:
            missing[name] = f'its query selects no job="{canary_job}"'
            continue
        queries[name] = (promql, other)
    if not queries:
        return LiveBaseline(missing=missing)
    try:
        client = client_from_settings(settings, ctx.prometheus_url)
    except KeptnError as exc:
        return LiveBaseline(missing={**missing, **{n: str(exc) for n in queries}})
    start = window.start + timedelta(seconds=step)
    if start >= window.end:
        start = window.end
    out: dict[str, LiveSamples] = {}
    with client:
        try:
            client.wait_fresh([baseline_job], window.end, float(settings.freshness_timeout),
                              known_interval(settings))
        except ProviderError as exc:
            return LiveBaseline(missing={**missing, **{n: str(exc) for n in queries}})
        ctx.targets.hide_unserved([canary_job, baseline_job])  # the point queries say a failure
        for name, (canary_q, baseline_q) in queries.items():
            sides = [client.query_range(q, start, window.end, step) for q in (canary_q, baseline_q)]
            problem = next((s for s in sides if isinstance(s, str)), None)
            if problem is not None:
                missing[name] = problem
                continue
            c, b = (
                tuple(v for v in s if math.isfinite(v)) for s in sides if not isinstance(s, str)
            )
            out[name] = LiveSamples(
                Samples(c), Samples(b), f"Prometheus range query, step {step:g}s: {canary_q}"
            )
    return LiveBaseline(samples=out, missing=missing)
