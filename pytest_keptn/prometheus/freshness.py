"""The freshness wait: before the queries at a window's end, wait until Prometheus holds every
sample it will ever hold at or before that end.

Two ways to know it, per target:

* **a sample at or after the end** (any Prometheus-compatible backend): samples of a series are
  appended in time order, so nothing older can arrive after it. This costs up to a scrape
  interval after the end (two thirds of one on average with two jobs).
* **its next scrape is due after the end** (only where the scrape interval is known: the
  embedded Prometheus, whose configuration the plugin wrote). Prometheus scrapes each target
  on a fixed schedule (an offset within the interval derived from the target's labels) and
  stamps a scrape that starts within 2 ms of its due time with exactly that time
  (``--scrape.adjust-timestamps``, on by default since 2.30). So the target's last few
  sample times give its schedule; when the scrape after the newest sample is due after the
  end, the only scrapes still to come have later times and cannot change what a query at the
  end sees (each of its selectors reads samples at or before its evaluation time). A scrape
  that started before the end but is not answered yet is due before the end, so it is waited
  for. A schedule that does not fit the interval falls back to the first way.

A query at the end cannot see a sample after it, so both ways give the same data; the second
returns at once for most windows instead of waiting for the next scrape.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from pytest_keptn.errors import ProviderError
from pytest_keptn.prometheus.answers import promql_string, regex_literal

if TYPE_CHECKING:
    from pytest_keptn.prometheus.client import PrometheusClient

T = TypeVar("T")
Reader = Callable[[Sequence[Mapping[str, Any]]], T]  # a query's result list -> what is wanted

POLL = 0.05  # the freshness wait is on every stage's critical path
SCHEDULE_SPAN = 4.5  # scrape intervals of samples read to find each target's schedule
# how far off its schedule a sample may be and still count as on it (a late scrape is not
# stamped with its due time), and the margin kept before the next due scrape
_OFF_SCHEDULE = 0.1
_MARGIN = 0.005
_MARGIN_SHARE = 0.05


def next_scrape_due(samples: Sequence[float], interval: float) -> float | None:
    """When the scrape after the newest of ``samples`` (one target's sample times, oldest
    first, seconds) is due, or None when they do not follow a schedule at ``interval``.

    A late scrape is stamped late, never early: the earliest phase among the samples is the
    schedule's, and the next scrape is due one interval after it."""
    if len(samples) < 2 or interval <= 0:
        return None
    newest = samples[-1]
    half = interval / 2
    phases = [((t - newest + half) % interval) - half for t in samples]
    if any(abs(p) > _OFF_SCHEDULE * interval for p in phases):
        return None
    return newest + min(phases) + interval


def settled(samples: Sequence[float], end: float, interval: float | None) -> bool:
    """Whether every sample of this target at or before ``end`` has been stored."""
    if not samples:
        return False
    if samples[-1] >= end:
        return True
    if interval is None:
        return False
    due = next_scrape_due(samples, interval)
    # the margin covers the 2 ms stamping tolerance and a schedule read from late samples only
    return due is not None and due - (_MARGIN + _MARGIN_SHARE * interval) > end


def freshness_query(jobs: Sequence[str]) -> str:
    """One series per job: the time of the newest ``up`` sample of its target scraped least
    recently among those that are up (every target that serves data must have a sample at or
    after the window's end, not just one of them: an empty target slot, ``up`` 0, is scraped at
    its own phase); for a job with no target up, the newest ``up`` sample of any."""
    up = _up_of(jobs)
    # timestamp() of a selector gives the samples' own times; of a comparison, the evaluation
    # time: so the filter is an ``and``, after timestamp()
    return f"min by (job) (timestamp({up}) and {up} == 1) or max by (job) (timestamp({up}))"


def schedule_query(jobs: Sequence[str], interval: float) -> str:
    """Every target's ``up`` samples of the last few scrape intervals (a range selector: raw
    samples with their own times)."""
    return f"{_up_of(jobs)}[{max(1, round(SCHEDULE_SPAN * interval * 1000))}ms]"


def _up_of(jobs: Sequence[str]) -> str:
    """The ``up`` series of exactly these jobs."""
    return f"up{{job=~{promql_string('|'.join(regex_literal(j) for j in sorted(set(jobs))))}}}"


def read_schedules(
    result: Sequence[Mapping[str, Any]], end: float, interval: float
) -> dict[str, tuple[float, bool]]:
    """Per job in a :func:`schedule_query` answer: the least recent newest sample among its up
    targets (of every target when none is up, as :func:`freshness_query` asks), and whether
    all those targets are settled at ``end``."""
    targets: dict[str, list[tuple[list[float], bool]]] = {}
    for series in result:
        values = series["values"]
        if not values:
            continue
        times = [float(v[0]) for v in values]
        targets.setdefault(str(series["metric"].get("job", "")), []).append(
            (times, str(values[-1][1]) == "1"))
    out: dict[str, tuple[float, bool]] = {}
    for job, found in targets.items():
        serving = [times for times, up in found if up] or [times for times, _ in found]
        out[job] = (min(t[-1] for t in serving), all(settled(t, end, interval) for t in serving))
    return out


def wait(client: PrometheusClient, jobs: Sequence[str], after: datetime, timeout: float,
         interval: float | None = None) -> None:
    """Wait until every job in ``jobs`` that Prometheus scrapes is settled at ``after``: each
    of its up targets has a sample at or after it or, with the ``interval`` the backend is
    known to scrape at, its next scrape is due after it (see the module's text).

    A job with no ``up`` series at all is not scraped, so there is nothing to wait for. Raises
    :class:`PrometheusOutage` at once when Prometheus is unreachable or refuses the
    credentials, and :class:`ProviderError` naming the jobs that are not scraped or have no
    fresh sample within ``timeout``.
    """
    wanted = sorted(set(jobs))
    if not wanted:
        return
    threshold = after.timestamp() if after.tzinfo else after.replace(tzinfo=UTC).timestamp()
    newest_query = freshness_query(wanted)
    ranged: tuple[str, Reader[dict[str, tuple[float, bool]]]] | None = None
    if interval:
        ranged = (schedule_query(wanted, interval),
                  functools.partial(read_schedules, end=threshold, interval=interval))
    deadline = time.monotonic() + timeout
    last: dict[str, float] | None = None
    problem = ""
    while True:
        remaining = min(client.timeout, max(deadline - time.monotonic(), 0.5))
        done: set[str] = set()
        res: dict[str, float] | str = {}
        if ranged is not None:
            got = _ask(client, *ranged, remaining)
            if isinstance(got, str):
                res = got
            else:
                res = {j: newest for j, (newest, _) in got.items()}
                done = {j for j, (_, ok) in got.items() if ok}
        if isinstance(res, dict) and not all(j in res for j in wanted):
            # not scraped in the last few intervals: is it scraped at all (5 min lookback)?
            older = _ask(client, newest_query, _newest, remaining)
            res = older if isinstance(older, str) else {**older, **res}
        if isinstance(res, str):
            problem = res
        else:
            problem, last = "", res
            if all(j in done or t >= threshold for j, t in res.items() if j in wanted):
                break
        if time.monotonic() >= deadline:
            break
        time.sleep(min(POLL, max(0.0, deadline - time.monotonic())))
    answer = last or {}
    unscraped = [j for j in wanted if j not in answer] if last is not None else []
    stale = [j for j in wanted if j in answer and answer[j] < threshold and j not in done] \
        if last is not None else wanted
    if not unscraped and not stale:
        return
    parts = []
    if stale:
        seen = "; ".join(
            f"{j}: latest {datetime.fromtimestamp(answer[j], UTC).isoformat()}" if j in answer
            else f"{j}: no samples" for j in stale
        )
        parts.append(f"no samples at or after {after.astimezone(UTC).isoformat()} for job(s) "
                     f"{', '.join(stale)} within {timeout:g}s [{seen}]"
                     + (f" ({problem})" if problem else ""))
    if unscraped:
        parts.append(f"no up series for job(s) {', '.join(unscraped)}: Prometheus does not "
                     "scrape them (check the job names in the queries)")
    raise ProviderError("; ".join(parts), field="freshness")


def _newest(result: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    return {str(r["metric"].get("job", "")): float(r["value"][1]) for r in result}


def _ask(client: PrometheusClient, promql: str, read: Reader[T], timeout: float) -> T | str:
    """The query's result read by ``read``, or what went wrong; raises
    :class:`PrometheusOutage` when waiting longer cannot help."""
    data = {"query": promql, "time": f"{datetime.now(UTC).timestamp():.3f}"}
    try:
        response = client.post("/api/v1/query", data, time.monotonic() + timeout)
    except httpx.TimeoutException:
        return f"no answer within {timeout:g}s"
    except httpx.TransportError as exc:
        raise client.outage(exc) from None
    if response.status_code in (401, 403):
        raise client.outage(response)
    if response.status_code != 200:
        return f"HTTP {response.status_code}"
    try:
        return read(response.json()["data"]["result"])
    except (ValueError, KeyError, TypeError, IndexError, AttributeError):
        return "malformed answer"
