"""Fetch 200 indicators from a real embedded Prometheus, concurrently and sequentially.

Prints ``RESULT name=value`` lines:

* ``prometheus_start_to_ready_seconds``: binary start until ``/-/ready`` answers 200;
* ``target_registration_seconds``: file_sd registration until the target is up;
* ``sequential_seconds`` / ``concurrent_seconds`` for the 200 queries;
* ``concurrent_speedup`` = sequential / concurrent (goal >= 5);
* ``concurrent_over_slowest`` = concurrent total / slowest single query (goal <= 3).

Each indicator is a subquery over Prometheus' own metrics, heavy enough (tens of ms) that the
time is spent in Prometheus, as with real SLI queries over long windows.

Usage: ``python benchmarks/bench_sli_fetch.py [--indicators 200] [--workers 16]``
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

from pytest_keptn.model import SLIStatus
from pytest_keptn.prometheus.client import PrometheusClient
from pytest_keptn.prometheus.server import EmbeddedPrometheus


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--indicators", type=int, default=200)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--step", default="1s",
                        help="subquery resolution (query weight; 2ms makes Prometheus CPU-bound)")
    args = parser.parse_args()
    with EmbeddedPrometheus() as prom:
        print(f"RESULT prometheus_start_to_ready_seconds={prom.start_to_ready_seconds:.3f}")
        began = time.monotonic()
        prom.register("prometheus-self", f"127.0.0.1:{prom.port}")
        prom.wait_targets_up(timeout=20)
        print(f"RESULT target_registration_seconds={time.monotonic() - began:.2f}")
        time.sleep(2.5)
        queries = {
            f"sli_{i}": f"max_over_time(sum(rate(prometheus_http_requests_total[{5 + i % 7}s]))"
            f"[{30 + i % 11}s:{args.step}])"
            for i in range(args.indicators)
        }
        at = datetime.now(UTC)
        with PrometheusClient(prom.url, max_workers=args.workers, timeout=30) as client:
            client.query("vector(1)", at)  # warm the connection
            began = time.monotonic()
            single: list[float] = []
            sequential = {}
            for name, q in queries.items():
                t = time.monotonic()
                sequential[name] = client.query(q, at, metric=name)
                single.append(time.monotonic() - t)
            seq_total = time.monotonic() - began
            began = time.monotonic()
            concurrent = client.query_many(queries, at)
            con_total = time.monotonic() - began
        bad = [r for r in (*sequential.values(), *concurrent.values()) if r.status is not SLIStatus.VALUE]
        if bad:
            raise SystemExit(f"{len(bad)} queries failed, e.g. {bad[0].message}")
        assert all(sequential[n].value == concurrent[n].value for n in queries)
    print(f"RESULT indicators={len(queries)}")
    print(f"RESULT sequential_seconds={seq_total:.3f}")
    print(f"RESULT concurrent_seconds={con_total:.3f}")
    print(f"RESULT slowest_single_query_seconds={max(single):.4f}")
    print(f"RESULT concurrent_speedup={seq_total / con_total:.2f}")
    print(f"RESULT concurrent_over_slowest={con_total / max(single):.2f}")


if __name__ == "__main__":
    main()
