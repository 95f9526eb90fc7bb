"""Keptn's "quality gates only" use: evaluate an already running service over a time window,
with a real Prometheus scraping a real helloserver; no deployment, no load, no release."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pytest_keptn.prometheus.server import EmbeddedPrometheus

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus binary not installed"),
]

ROOT = Path(__file__).resolve().parents[2]
JOB = "helloservice-pod-tato-head-hardening"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def running_service(tmp_path: Path) -> Iterator[tuple[str, str]]:
    port = _free_port()
    app = subprocess.Popen(
        [sys.executable, "-m", "helloserver", "--port", str(port), "--tag", "v0.1.1"],
        cwd=ROOT / "example_project", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    prom = EmbeddedPrometheus(tmp_path / "prom").start()
    try:
        for job in (JOB, JOB + "-canary"):
            prom.register(job, f"127.0.0.1:{port}")
        prom.wait_targets_up(timeout=20)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(200):
                assert client.get("/").status_code == 200
        time.sleep(2.5)  # two scrapes after the traffic
        yield prom.url, f"http://127.0.0.1:{port}"
    finally:
        prom.stop()
        app.terminate()
        app.wait(10)


def test_timeframe_evaluates_a_running_service(running_service: tuple[str, str],
                                               pytester: pytest.Pytester) -> None:
    # running_service first: pytester restores sys.modules at teardown, which would drop the
    # httpcore modules imported lazily by the first real request and break later httpx users
    prom_url, _ = running_service
    shutil.copytree(ROOT / "example_project" / "keptn", pytester.path / "keptn")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--keptn-stage=hardening", "--keptn-deployer=none",
        f"--keptn-prometheus-url={prom_url}", "--keptn-timeframe=1m",
        "--keptn-project=pod-tato-head", "--keptn-service=helloservice",
        "--keptn-events=events", "--keptn-state-dir=state", "-v", timeout=120,
    )
    out = result.stdout.str()
    assert result.ret == 0, out
    assert "[deployment skipped, test skipped, evaluation pass, release skipped]" in out
    assert "hardening: pass, score 100.0%" in out
    (event_file,) = (pytester.path / "events").glob("*.json")
    event = json.loads(event_file.read_text())
    rows = {r["value"]["metric"]: r for r in event["data"]["evaluation"]["indicatorResults"]}
    assert 0 < rows["http_response_time_seconds_main_page_sum"]["value"]["value"] < 0.5
    assert rows["go_routines"]["value"]["value"] >= 8
    assert rows["request_throughput"]["value"]["value"] > 0
    start, end = event["data"]["evaluation"]["timeStart"], event["data"]["evaluation"]["timeEnd"]
    assert start.endswith("Z") and end.endswith("Z")
    assert not (pytester.path / "state" / "deploy-state.json").exists()


def test_timeframe_shorter_than_a_minute_is_refused(pytester: pytest.Pytester) -> None:
    shutil.copytree(ROOT / "example_project" / "keptn", pytester.path / "keptn")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--keptn-stage=hardening", "--keptn-deployer=none",
        "--keptn-prometheus-url=http://127.0.0.1:9", "--keptn-start=2026-01-01T00:00:00.000Z",
        "--keptn-end=2026-01-01T00:00:30.000Z", "--keptn-service=helloservice", timeout=60,
    )
    assert result.ret != 0
    assert "at least 1 minute" in result.stdout.str() + result.stderr.str()
