"""The Prometheus SLI provider: ``pytest_keptn_get_sli`` for indicators of ``sli.yaml`` and the built-ins."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest

from pytest_keptn.errors import KeptnError, ProviderError
from pytest_keptn.gate.live import LiveBaseline
from pytest_keptn.model import COMPAT_087, LoadResult, SLIResult, SLIStatus, StageContext, Window
from pytest_keptn.prometheus.render import builtin_query, ratio_numerator, render_query

if TYPE_CHECKING:  # httpx (~0.1 s) is imported in the background at configure (plugin.py)
    from pytest_keptn.prometheus.client import PrometheusClient

# job="x", job='x' (also inside =~ is not matched: only exact job matchers name a target)
_JOB = re.compile(r"""\bjob\s*=\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')""")


def jobs_in(promql: str) -> list[str]:
    """The exact ``job`` matcher values of a rendered query, in order, without duplicates."""
    found: list[str] = []
    for match in _JOB.finditer(promql):
        value = match.group(1) if match.group(1) is not None else match.group(2)
        value = re.sub(r"\\(.)", r"\1", value)
        if value not in found:
            found.append(value)
    return found


def indicator_query(
    ctx: StageContext, name: str, window: Window, deployment: str = "canary"
) -> str | None:
    """The rendered PromQL of ``name``: its sli.yaml query, else a Keptn built-in, else None.

    Raises :class:`ProviderError` naming the indicator when the query cannot be rendered.
    """
    template = ctx.sli_indicators.get(name)
    if template is not None:
        return render_query(
            name,
            template,
            project=ctx.project,
            stage=ctx.stage,
            service=ctx.service,
            window=window,
            filters=ctx.slo_filter,
            deployment=deployment,
        )
    return builtin_query(
        name,
        project=ctx.project,
        stage=ctx.stage,
        service=ctx.service,
        window=window,
        filters=ctx.slo_filter,
        compat=getattr(ctx.settings, "compat", None),
    )


class PrometheusSLIProvider:
    """Answers every indicator that has a query in ``sli.yaml`` or is a Keptn built-in."""

    @pytest.hookimpl(trylast=True)
    def pytest_keptn_get_sli(
        self,
        ctx: StageContext,
        indicators: Sequence[str],
        window: Window,
        deployment: str,
        load: LoadResult | None,
    ) -> Sequence[SLIResult] | None:
        if ctx.prometheus_url is None:
            return None
        settings = ctx.settings
        compat = getattr(settings, "compat", None)
        results: dict[str, SLIResult] = {}
        queries: dict[str, str] = {}
        for name in indicators:
            try:
                query = indicator_query(ctx, name, window, deployment)
            except ProviderError as exc:
                results[name] = SLIResult(
                    metric=name, success=False, status=SLIStatus.QUERY_ERROR, message=str(exc)
                )
                continue
            if query is not None:
                queries[name] = query
            elif not name.startswith("locust_"):
                results[name] = SLIResult(
                    metric=name,
                    success=False,
                    status=SLIStatus.UNKNOWN,
                    message=f"{name}: unsupported SLI (no query in sli.yaml and no built-in)",
                )
        if queries:
            results.update(self._fetch(ctx, queries, window, compat))
        ordered = [results[n] for n in indicators if n in results]
        return ordered

    @pytest.hookimpl(trylast=True)
    def pytest_keptn_get_live_samples(
        self,
        ctx: StageContext,
        indicators: Sequence[str],
        window: Window,
        load: LoadResult | None,
    ) -> LiveBaseline | None:
        if ctx.prometheus_url is None:
            return None
        from pytest_keptn.prometheus.live import live_samples  # (it imports this module)

        return live_samples(ctx, [n for n in indicators if not n.startswith("locust_")], window)

    @staticmethod
    def _fetch(
        ctx: StageContext, queries: dict[str, str], window: Window, compat: str | None
    ) -> dict[str, SLIResult]:
        from pytest_keptn.prometheus.answers import PrometheusOutage
        from pytest_keptn.prometheus.client import client_from_settings

        assert ctx.prometheus_url is not None
        settings = ctx.settings
        jobs: list[str] = []
        for q in queries.values():
            jobs += [j for j in jobs_in(q) if j not in jobs]
        try:
            client = client_from_settings(settings, ctx.prometheus_url)
        except KeptnError as exc:
            return {
                n: SLIResult(metric=n, success=False, status=SLIStatus.QUERY_ERROR,
                             message=str(exc), query=q)
                for n, q in queries.items()
            }
        with client:
            stale = ""
            began = time.monotonic()
            if jobs:
                ctx.say(f"waiting for samples of {', '.join(jobs)} at {Window.keptn_time(window.end)}")
                try:
                    client.wait_fresh(jobs, window.end, float(settings.freshness_timeout),
                                      known_interval(settings))
                except PrometheusOutage as exc:
                    # unreachable or refusing the credentials: every query would say the same
                    ctx.say(f"freshness wait ended: {exc.message}")
                    return {n: exc.result(n, q, compat) for n, q in queries.items()}
                except ProviderError as exc:
                    stale = str(exc)
            waited = time.monotonic() - began
            # what Prometheus scraped of targets that did not serve their job (an empty slot,
            # a released canary until its discovery tick) is not this window's data
            hidden = ctx.targets.hide_unserved(jobs)
            if hidden:
                stale = f"{stale}; {hidden}" if stale else hidden
            fetched = client.query_many(queries, window.end, compat=compat)
            if compat != COMPAT_087:
                fetched.update(_explain_empty_ratios(client, fetched, window))
            ctx.say(f"{len(queries)} quer{'y' if len(queries) == 1 else 'ies'} answered in "
                    f"{time.monotonic() - began - waited:.2f}s (freshness wait {waited:.2f}s)")
        if stale:
            # The values are still read (they may be complete), but the report says why they
            # may not be.
            fetched = {n: replace(r, warnings=(*r.warnings, stale)) for n, r in fetched.items()}
        return fetched


def _explain_empty_ratios(
    client: PrometheusClient, fetched: dict[str, SLIResult], window: Window
) -> dict[str, SLIResult]:
    """A ratio with no data whose numerator has no series (a counter such as the 5xx responses'
    exists only after its first event): say how to write it, instead of only "no data"."""
    numerators = {name: ratio_numerator(r.query) for name, r in fetched.items()
                  if r.status is SLIStatus.NO_DATA}
    asked = {name: q for name, q in numerators.items() if q}
    if not asked:
        return {}
    answers = client.query_many(asked, window.end)
    explained: dict[str, SLIResult] = {}
    for name, numerator in asked.items():
        if answers[name].status is SLIStatus.NO_DATA:
            explained[name] = replace(fetched[name], message=(
                f"query returned no data: its numerator {numerator} has no series (a counter "
                "such as the 5xx responses' appears only with its first event); write it as "
                f"({numerator} or vector(0)) to count none as 0, or run with "
                "--keptn-compat=0.8.7, which counts an empty result as 0 like Keptn: "
                f"{fetched[name].query}"))
    return explained


def known_interval(settings: Any) -> float | None:
    """The scrape interval of the Prometheus the queries go to, when the plugin configured it
    (the embedded one); a Prometheus of your own (``--keptn-prometheus-url``) scrapes at
    intervals only its configuration knows."""
    if getattr(settings, "prometheus_url", None):
        return None
    return float(getattr(settings, "scrape_interval", 1.0) or 1.0)
