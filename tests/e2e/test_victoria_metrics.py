"""Bring your own backend (issue 20): the example project against a real VictoriaMetrics that
discovers the local deployer's targets through ``--keptn-prometheus-file-sd``.

One VictoriaMetrics for the module (tests/e2e/victoria.py: a free 127.0.0.1 port, a temp data
folder, stopped at the end, a watchdog if the run dies), configured as the README says
(``-promscrape.fileSDCheckInterval=1s -search.latencyOffset=1s``, one file_sd scrape job).
Short load windows keep it lean.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from pytest_keptn.system import processes as procs

from .victoria import BINARY, VictoriaMetrics

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "example_project"
JOB = "helloservice-pod-tato-head-hardening"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(BINARY is None, reason="victoria-metrics is not installed (scripts/setup.sh)"),
]


@dataclass
class Backend:
    vm: VictoriaMetrics
    file_sd: Path  # what the runs write
    static: Path  # what a test writes by hand


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    folder = tmp_path_factory.mktemp("victoria")
    file_sd, static = folder / "keptn.json", folder / "static.json"
    with VictoriaMetrics(folder / "vm", [file_sd, static]) as vm:
        yield Backend(vm, file_sd, static)


def _project(tmp_path: Path) -> Path:
    folder = tmp_path / "example"
    for part in ("keptn", "helloserver"):
        shutil.copytree(EXAMPLE / part, folder / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(EXAMPLE / "pytest.ini", folder / "pytest.ini")
    return folder


def _pytest(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "GITHUB_"))}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist",
         "--keptn-stage=hardening", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert "Traceback" not in run.stdout + run.stderr, run.stdout[-3000:] + run.stderr[-2000:]
    return run


def _stop(project: Path, *, left: bool = True) -> str:
    """``python -m pytest_keptn stop``; ``left``: whether something is left to stop (exit 0),
    or nothing (exit 1, "nothing to stop")."""
    stop = subprocess.run(
        [sys.executable, "-m", "pytest_keptn", "stop", "--state-dir", "build/state"],
        cwd=project, capture_output=True, text=True, timeout=60, check=False)
    assert stop.returncode == (0 if left else 1), stop.stdout + stop.stderr
    assert left or "nothing to stop" in stop.stderr, stop.stderr
    return stop.stdout


def _fresh(out: str) -> None:
    """The freshness wait saw VictoriaMetrics' samples at the window's end (no warning)."""
    assert "no samples at or after" not in out and "no up series" not in out, out[-3000:]


def _values(project: Path) -> dict[str, float]:
    newest = max((project / "build" / "events").glob("*.json"), key=lambda p: p.stat().st_mtime)
    results = json.loads(newest.read_text())["data"]["evaluation"]["indicatorResults"]
    return {r["value"]["metric"]: r["value"]["value"] for r in results}


def _jobs(path: Path) -> dict[str, tuple[list[str], str]]:
    return {g["labels"]["job"]: (g["targets"], g["labels"].get("tag", ""))
            for g in json.loads(path.read_text())}


def test_hardening_passes_for_v011_and_fails_for_v012(backend: Backend, tmp_path: Path) -> None:
    project = _project(tmp_path)
    own = (f"--keptn-prometheus-url={backend.vm.url}",
           f"--keptn-prometheus-file-sd={backend.file_sd}",
           # v0.1.2 answers in 1.2 s: 5 s give the new canary's histogram 2+ samples to rate
           "--keptn-locust-run-time=5s")
    try:
        first = _pytest(project, "--keptn-tag=v0.1.1", *own)
        out = first.stdout
        assert first.returncode == 0, out[-4000:] + first.stderr[-2000:]
        assert "hardening: pass, score 100.0% >= 90% (pass)" in out, out[-3000:]
        assert f"{backend.vm.url} scrapes {JOB}, {JOB}-canary" in out  # the deployment waited
        _fresh(out)
        values = _values(project)
        assert 0 < values["http_response_time_seconds_main_page_sum"] < 0.5, values
        assert values["request_throughput"] > 1 and 1 <= values["go_routines"] <= 100, values
        # the released primary stays in the file (kept primaries), the canary job is gone
        primary = httpx.get(_primary_url(project), timeout=5)
        assert "v0.1.1" in primary.text
        address = _primary_url(project).removeprefix("http://")
        assert _jobs(backend.file_sd) == {JOB: ([address], "v0.1.1"),
                                          JOB + "-primary": ([address], "v0.1.1")}

        second = _pytest(project, "--keptn-tag=v0.1.2", *own)
        out2 = second.stdout
        assert second.returncode == 1, out2[-4000:] + second.stderr[-2000:]
        assert "hardening: fail, score" in out2 and "rolled back" in out2, out2[-3000:]
        _fresh(out2)
        values = _values(project)
        assert values["http_response_time_seconds_main_page_sum"] > 1, (values, out2[-4000:])
        assert _jobs(backend.file_sd) == {JOB: ([address], "v0.1.1"),
                                          JOB + "-primary": ([address], "v0.1.1")}
    finally:
        stopped = _stop(project)
    assert f"{backend.file_sd}: removed 2 target(s) of stopped processes" in stopped, stopped
    assert json.loads(backend.file_sd.read_text()) == []


def _primary_url(project: Path) -> str:
    status = subprocess.run(
        [sys.executable, "-m", "pytest_keptn", "status", "--state-dir", "build/state",
         "--url", "hardening", "helloservice"],
        cwd=project, capture_output=True, text=True, timeout=30, check=True)
    return status.stdout.strip()


def test_evaluation_only_scores_what_victoria_metrics_scraped(
        backend: Backend, tmp_path: Path) -> None:
    """Keptn's quality-gates-only use: a service running on its own, scraped by the user's
    VictoriaMetrics; the run deploys nothing and evaluates the last minute."""
    project = _project(tmp_path)
    port = procs.free_port()
    service = subprocess.Popen(
        [sys.executable, "-m", "helloserver", "--port", str(port), "--tag", "v0.1.1"],
        cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    job = "helloservice-evalonly-hardening"  # a project of its own: no series of other tests
    try:
        assert procs.wait_ready(f"http://127.0.0.1:{port}/health", lambda: service.poll() is None,
                                30) is None
        backend.static.write_text(json.dumps(
            [{"targets": [f"127.0.0.1:{port}"], "labels": {"job": name}}
             for name in (job, job + "-canary")]))
        served = f'sum(http_server_request_duration_seconds_count{{job="{job}-canary"}})'
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            # the counters must grow between two scrapes (a first sample of 50 is a rate of 0)
            assert client.get("/").status_code == 200
            _until(backend.vm, served, lambda v: v >= 1)
            for _ in range(50):
                assert client.get("/").status_code == 200
        _until(backend.vm, served, lambda v: v >= 51)
        run = _pytest(project, "--keptn-deployer=none", "--keptn-timeframe=1m",
                      "--keptn-project=evalonly", f"--keptn-prometheus-url={backend.vm.url}")
        assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
        assert "hardening: pass, score 100.0% >= 90% (pass)" in run.stdout, run.stdout[-3000:]
        _fresh(run.stdout)
        values = _values(project)
        assert 0 < values["http_response_time_seconds_main_page_sum"] < 0.5, values
        assert 1 <= values["go_routines"] <= 100, values
    finally:
        backend.static.write_text("[]")
        service.terminate()
        service.wait(10)


def _until(vm: VictoriaMetrics, promql: str, ok: Callable[[float], bool],
           timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    seen: list[tuple[dict[str, str], float]] = []
    while time.monotonic() < deadline:
        seen = vm.query(promql)
        if seen and ok(seen[0][1]):
            return
        time.sleep(0.2)
    raise AssertionError(f"{promql}: {seen} after {timeout}s")


def test_a_backend_that_does_not_read_the_file_fails_the_deployment(
        backend: Backend, tmp_path: Path) -> None:
    """VictoriaMetrics answers, but nobody told it about this file: a setup error naming the
    file and the scrape config, not an evaluation of no data; the canary is removed."""
    project = _project(tmp_path)
    unread = tmp_path / "nobody-reads-this.json"
    try:
        run = _pytest(project, "--keptn-tag=v0.1.1", f"--keptn-prometheus-url={backend.vm.url}",
                      f"--keptn-prometheus-file-sd={unread}", "--keptn-deploy-timeout=5")
        out = run.stdout
        assert run.returncode == 1, out[-4000:] + run.stderr[-2000:]
        line = next(line for line in out.splitlines() if "deployment FAILED" in line)
        assert "setup error" in line and str(unread) in line and "file_sd_configs" in line, line
        assert f"{JOB}-canary at 127.0.0.1:" in line and "not discovered" in line, line
        assert "test started" not in out and "evaluation started" not in out
        assert json.loads(unread.read_text()) == []  # rolled back: the canary left the file
    finally:
        _stop(project, left=False)  # the canary was stopped by the rollback
