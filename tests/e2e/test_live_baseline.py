"""The live baseline end to end (issue #18): real helloservers as canary, primary and baseline,
real Locust splitting the load, a real embedded Prometheus sampled per side, calibrate."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
RT = "http_response_time_seconds_main_page_sum"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus not installed"),
]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("live") / "example_project"
    shutil.copytree(REPO / "example_project", folder,
                    ignore=shutil.ignore_patterns("build", "__pycache__"))
    slo = folder / "keptn/hardening/helloservice/slo.yaml"
    text = slo.read_text()
    text = text.replace("  aggregate_function: avg\n", "  aggregate_function: avg\n  baseline: live\n")
    slo.write_text(text.replace('          - "<=1"\n', '          - "<=1"\n          - "<=+10%"\n', 1))
    yield folder
    subprocess.run([sys.executable, "-m", "pytest_keptn", "stop", "--state-dir",
                    str(folder / "build/state")], cwd=folder, capture_output=True, check=False)


def deliver(
    project: Path, tag: str, *extra: str, seconds: int = 6
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    events = project / "build" / f"events-{tag}-{len(list(project.glob('build/events-*')))}"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--keptn-stage=hardening", f"--keptn-tag={tag}",
         f"--keptn-locust-run-time={seconds}s", f"--keptn-events={events}", "-p", "no:cacheprovider",
         *extra],
        cwd=project, capture_output=True, text=True, timeout=300, check=False,
    )
    (event_file,) = events.glob("*.json")
    return proc, json.loads(event_file.read_text())


def rows(event: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["value"]["metric"]: r for r in event["data"]["evaluation"]["indicatorResults"]}


def state(project: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((project / "build/state/deploy-state.json").read_text())
    return data["services"]["hardening/helloservice"]


def test_live_baseline_life_cycle(project: Path) -> None:
    # no earlier build: the relative criterion compares with the (empty) history, and says so
    proc, event = deliver(project, "v0.1.1")
    assert proc.returncode == 0, proc.stdout[-2000:]
    note = rows(event)[RT]["liveComparison"]["note"]
    assert note == "no live baseline (no earlier build in the stage): compared with history"
    assert "baseline" not in state(project)

    # v0.1.2 (1.2 s a request) beside a fresh v0.1.1 baseline, half the users each; 12 s give
    # 5 points of 2 s per side (2 x 2 points could never be significant: p >= 1/6)
    report = project / "build" / "live-report.html"
    proc, event = deliver(project, "v0.1.2", f"--html={report}", "--self-contained-html",
                          seconds=12)
    out = proc.stdout
    assert "deployment: baseline helloservice:v0.1.1 (the primary's build) ready" in out, out
    assert "(half each)" in out
    (judged,) = rows(event)[RT]["liveComparison"]["criteria"]
    assert judged["criteria"] == "<=+10%" and judged["decision"] == "worse"
    assert judged["samples"]["canary"] >= 2 and judged["samples"]["baseline"] >= 2
    assert judged["baseline"] < 0.05 < 1.0 < judged["canary"]
    assert judged["pValue"] < 0.05 and judged["effect"] > 10
    # the table row, the failure message and the report say it in the same words
    assert "    live: <=+10% vs live baseline: canary " in out
    assert "  live:     <=+10% vs live baseline: canary " in out  # the failing objective
    assert ", tolerance +10.0%: worse" in out
    html = report.read_text()
    assert "kq-live" in html and "vs live baseline" in html
    notes = rows(event)["request_throughput"]["liveComparison"]["note"]
    assert "its query selects no job=" in notes  # the tutorial's throughput sums every job
    assert "baseline: stopped helloservice:v0.1.1" in out  # at the end of the stage
    services = state(project)
    assert "baseline" not in services and services["primary"]["tag"] == "v0.1.1"

    # Keptn 0.8.7 knows no live baseline: none starts, the event has no liveComparison
    proc, event = deliver(project, "v0.1.2", "--keptn-compat=0.8.7")
    assert "comparison.baseline: ignored under --keptn-compat=0.8.7, as Keptn does" in proc.stdout
    assert "deployment: baseline" not in proc.stdout and "(half each)" not in proc.stdout
    assert all("liveComparison" not in r for r in rows(event).values())


def test_calibrate_prints_spread_and_a_draft_slo(project: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_keptn", "calibrate", "--stage", "hardening", "--runs", "2",
         "--", "--keptn-locust-run-time=5s"],
        cwd=project, capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    out = proc.stdout
    assert "A/A calibration of hardening (gabrieltanner/hello-server:v0.1.1), 2 runs:" in out
    assert f"  {RT} <=+10%: effect from " in out and "smallest tolerance that fails none" in out
    draft = out.split("# draft slo.yaml (A/A calibrated)\n", 1)[1]
    assert "  baseline: live\n" in draft and "- <=1\n" in draft
    assert state(project)["primary"]["tag"] == "v0.1.1"  # still the same build
