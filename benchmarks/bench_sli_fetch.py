"""Fetch 200 indicators from a real embedded Prometheus, sequentially and concurrently, in one run.

Two query mixes, each measured sequentially (one ``query`` after another) and concurrently
(``query_many``: batched, deduplicated, batches in parallel) against the same Prometheus,
scraping itself once a second:

* ``sli`` (the headline figures): the shapes of the tutorial's ``sli.yaml`` and of the built-in
  indicators (throughput, error rate, mean response time from ``_sum/_count``, p50/p90/p95 from
  histogram buckets, a gauge), each over its own ``$DURATION_SECONDS`` window, so that no two
  indicators are the same query;
* ``subquery``: ``max_over_time(sum(rate(...))[w:1s])`` subqueries, each distinct, heavier for
  Prometheus per indicator (``--step`` sets their resolution; ``2ms`` makes Prometheus
  CPU-bound on the machine's cores).

Prints ``RESULT name=value`` lines:

* ``prometheus_start_to_ready_seconds``: binary start until ``/-/ready`` answers 200;
* ``target_registration_seconds``: file_sd registration until the target is up;
* per mix (``subquery_`` prefix for the second): ``sequential_seconds``, ``concurrent_seconds``,
  ``slowest_single_query_seconds``, ``concurrent_speedup`` = sequential / concurrent (goal
  >= 5) and ``concurrent_over_slowest`` = concurrent total / slowest single query (goal <= 3).

Concurrent runs are repeated ``--repeat`` times and the median is reported; the slowest single
query is the slowest of the sequential run. During the concurrent runs the CPU seconds of the
Prometheus process and of this process are measured, and ``cpu_floor_over_slowest`` =
(their sum / cores) / slowest single query: the ``concurrent_over_slowest`` that a perfect
schedule would reach on this machine, the bound no client design gets below while Prometheus
does this much work per indicator.

Usage: ``python benchmarks/bench_sli_fetch.py [--indicators 200] [--workers 16] [--step 1s]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

from pytest_keptn.model import SLIStatus
from pytest_keptn.prometheus.client import PrometheusClient
from pytest_keptn.prometheus.server import EmbeddedPrometheus


def sli_mix(i: int) -> str:
    """One indicator shaped like the tutorial's and the built-in SLIs, over its own window."""
    window = f"{20 + i}s"
    sel = 'job="prometheus-self",handler="/metrics"'  # scraped every second: always data
    shapes: list[Callable[[], str]] = [
        lambda: f"sum(rate(prometheus_http_requests_total{{{sel}}}[{window}]))",
        lambda: (f'(sum(rate(prometheus_http_requests_total{{{sel},code!~"2.."}}[{window}]))'
                 f" or vector(0)) / sum(rate(prometheus_http_requests_total{{{sel}}}[{window}]))"),
        lambda: (f"sum(rate(prometheus_http_request_duration_seconds_sum{{{sel}}}[{window}]))"
                 f" / sum(rate(prometheus_http_request_duration_seconds_count{{{sel}}}[{window}]))"),
        lambda: (f"histogram_quantile(0.{(50, 90, 95)[i % 3]}, sum by (le) "
                 f"(rate(prometheus_http_request_duration_seconds_bucket{{{sel}}}[{window}])))"),
        lambda: f'max(max_over_time(go_goroutines{{job="prometheus-self"}}[{window}]))',
    ]
    return shapes[i % len(shapes)]()


def subquery_mix(i: int, step: str) -> str:
    return (f"max_over_time(sum(rate(prometheus_http_requests_total[{5 + i % 7}s]))"
            f"[{30 + i}s:{step}])")


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(client: PrometheusClient, queries: dict[str, str], at: datetime, prefix: str,
            repeat: int, prom_pid: int) -> None:
    single: list[float] = []
    sequential = {}
    began = time.monotonic()
    for name, q in queries.items():
        t = time.monotonic()
        sequential[name] = client.query(q, at, metric=name)
        single.append(time.monotonic() - t)
    seq_total = time.monotonic() - began
    runs: list[float] = []
    concurrent = {}
    prom_cpu, own_cpu = process_cpu(prom_pid), time.process_time()
    for _ in range(repeat):
        began = time.monotonic()
        concurrent = client.query_many(queries, at)
        runs.append(time.monotonic() - began)
    con_total = statistics.median(runs)
    cpu = (process_cpu(prom_pid) - prom_cpu + time.process_time() - own_cpu) / repeat
    cores = len(os.sched_getaffinity(0))
    bad = [r for r in (*sequential.values(), *concurrent.values())
           if r.status is not SLIStatus.VALUE]
    if bad:
        raise SystemExit(f"{len(bad)} {prefix or 'sli'} queries failed, e.g. {bad[0].message}")
    differ = [n for n in queries if sequential[n].value != concurrent[n].value]
    if differ:
        raise SystemExit(f"concurrent and sequential values differ for {differ[:3]}")
    print(f"RESULT {prefix}indicators={len(queries)}")
    print(f"RESULT {prefix}sequential_seconds={seq_total:.3f}")
    print(f"RESULT {prefix}concurrent_seconds={con_total:.3f}")
    print(f"RESULT {prefix}slowest_single_query_seconds={max(single):.4f}")
    print(f"RESULT {prefix}concurrent_speedup={seq_total / con_total:.2f}")
    print(f"RESULT {prefix}concurrent_over_slowest={con_total / max(single):.2f}")
    print(f"RESULT {prefix}cpu_seconds_per_fetch={cpu:.3f}")
    print(f"RESULT {prefix}cpu_floor_over_slowest={cpu / cores / max(single):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--indicators", type=int, default=200)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--step", default="1s",
                        help="subquery resolution (query weight; 2ms makes Prometheus CPU-bound)")
    args = parser.parse_args()
    with EmbeddedPrometheus() as prom:
        assert prom.pid is not None
        print(f"RESULT prometheus_start_to_ready_seconds={prom.start_to_ready_seconds:.3f}")
        began = time.monotonic()
        prom.register("prometheus-self", f"127.0.0.1:{prom.port}")
        prom.wait_targets_up(timeout=20)
        print(f"RESULT target_registration_seconds={time.monotonic() - began:.2f}")
        time.sleep(3.5)  # a few scrapes, so that rate() has samples in every window
        mixes = {
            "": {f"sli_{i}": sli_mix(i) for i in range(args.indicators)},
            "subquery_": {f"sub_{i}": subquery_mix(i, args.step) for i in range(args.indicators)},
        }
        at = datetime.now(UTC)
        with PrometheusClient(prom.url, max_workers=args.workers, timeout=30) as client:
            client.query("vector(1)", at)  # warm the connection
            for prefix, queries in mixes.items():
                assert len(set(queries.values())) == len(queries), "indicators must be distinct"
                measure(client, queries, at, prefix, args.repeat, prom.pid)


if __name__ == "__main__":
    main()
