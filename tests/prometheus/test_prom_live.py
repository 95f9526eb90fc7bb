"""Prometheus samples for the live-baseline comparison: range queries per side, real Prometheus."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from pytest_keptn.config import Settings
from pytest_keptn.gate.live import judge
from pytest_keptn.model import StageContext, Window
from pytest_keptn.prometheus.live import baseline_query, live_samples
from pytest_keptn.prometheus.server import EmbeddedPrometheus
from pytest_keptn.spec.criteria import parse_criterion
from pytest_keptn.system import processes as procs

ROOT = Path(__file__).resolve().parents[2]
JOB = "helloservice-pod-tato-head-hardening"
SLI = {
    "response_time": 'sum(rate(http_server_request_duration_seconds_sum{route="/",job="$SERVICE-$PROJECT-$STAGE-canary"}[$DURATION_SECONDS])/rate(http_server_request_duration_seconds_count{route="/",job="$SERVICE-$PROJECT-$STAGE-canary"}[$DURATION_SECONDS]))',
    "go_routines": 'go_goroutines{job="$SERVICE-$PROJECT-$STAGE"}',
}


def test_baseline_query_points_the_canary_job_at_the_baseline() -> None:
    q = "sum(rate(x{job=\"s-p-h-canary\"}[4s])) / sum(rate(y{job='s-p-h-canary'}[4s]))"
    assert baseline_query(q, "s-p-h-canary", "s-p-h-baseline") == (
        "sum(rate(x{job=\"s-p-h-baseline\"}[4s])) / sum(rate(y{job='s-p-h-baseline'}[4s]))"
    )
    assert baseline_query('up{job="s-p-h"}', "s-p-h-canary", "s-p-h-baseline") is None
    assert baseline_query('up{job=~"s-p-h-canary"}', "s-p-h-canary", "s-p-h-baseline") is None


def _server(tag: str) -> tuple[subprocess.Popen[bytes], int]:
    port = procs.free_port()
    app = subprocess.Popen(
        [sys.executable, "-m", "helloserver", "--port", str(port), "--tag", tag],
        env=dict(os.environ, PYTHONPATH=str(ROOT / "example_project")),
        stdout=subprocess.DEVNULL,
    )
    why = procs.wait_ready(f"http://127.0.0.1:{port}/health", lambda: app.poll() is None, 15)
    assert why is None, why
    return app, port


@pytest.fixture
def two_sides(tmp_path: Path) -> Iterator[tuple[EmbeddedPrometheus, Window]]:
    canary, cport = _server("v0.1.2")  # 1.2 s per request: far slower
    baseline, bport = _server("v0.1.1")
    prom = EmbeddedPrometheus(tmp_path / "prom")
    try:
        prom.start()
        prom.register(JOB + "-canary", f"127.0.0.1:{cport}")
        prom.register(JOB + "-baseline", f"127.0.0.1:{bport}")
        prom.wait_targets_up([JOB + "-canary", JOB + "-baseline"], timeout=20)
        start = datetime.now(UTC)
        stop = threading.Event()

        def hit(port: int) -> None:
            with httpx.Client(timeout=5) as http:
                while not stop.is_set():
                    http.get(f"http://127.0.0.1:{port}/")
                    time.sleep(0.02)

        # two clients per side: the slow canary (1.2 s a request) completes one every ~0.6 s
        threads = [threading.Thread(target=hit, args=(p,)) for p in (cport, cport, bport, bport)]
        for t in threads:
            t.start()
        time.sleep(11)
        stop.set()
        for t in threads:
            t.join()
        yield prom, Window(start, datetime.now(UTC))
    finally:
        prom.stop()
        for app in (canary, baseline):
            app.terminate()
            app.wait(5)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus binary not installed")
def test_range_samples_per_side(two_sides: tuple[EmbeddedPrometheus, Window]) -> None:
    prom, window = two_sides
    ctx = StageContext(
        project="pod-tato-head", service="helloservice", stage="hardening", image="helloserver",
        tag="v0.1.2", root=ROOT, workdir=ROOT,
        settings=Settings(query_timeout=5, freshness_timeout=8, scrape_interval=1.0),
        sli_indicators=SLI, prometheus_url=prom.url,
    )
    live = live_samples(ctx, ["response_time", "go_routines", "locust_p95_ms"], window)
    assert set(live.samples) == {"response_time"}
    assert live.missing == {
        "go_routines": 'its query selects no job="helloservice-pod-tato-head-hardening-canary"'
    }
    samples = live.samples["response_time"]
    assert "step 2s" in samples.source and "[2s]" in samples.source
    assert len(samples.canary.values) >= 2 and len(samples.baseline.values) >= 2
    assert min(samples.canary.values) > 1.0 > 0.1 > max(samples.baseline.values)
    verdict = judge(parse_criterion("<=+10%"), samples)
    assert verdict.violated and verdict.kind == "ratio"
