"""The example project's hardening stage end to end (issue #6).

Real processes (helloserver as canary and primary), real Locust in a child process, a real
embedded Prometheus, the real pytest-html report opened in headless Chromium. Two runs in one
copy of ``example_project/``: v0.1.1 passes and is released, v0.1.2 fails and is rolled back
while v0.1.1 keeps serving as the primary.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "example_project"
ARTIFACTS = REPO / "build" / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PROMETHEUS = shutil.which("prometheus")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(PROMETHEUS is None, reason="Debian's prometheus is not installed"),
]

OBJECTIVES = ["http_response_time_seconds_main_page_sum", "request_throughput", "go_routines"]

# Runs inside the page after pytest-html's own scripts: is each part of the gate laid out and
# visible, and how many evaluation columns does the heatmap have?
PROBE = """<script>
window.addEventListener("load", function () { setTimeout(function () {
  function visible(sel) {
    var el = document.querySelector(sel);
    if (!el) return "missing";
    var r = el.getBoundingClientRect(), s = getComputedStyle(el);
    return (r.width > 0 && r.height > 0 && s.visibility !== "hidden" && s.display !== "none")
      ? "visible" : "hidden";
  }
  var out = {};
  [".keptn-report", ".kq-summary", ".kq-verdict", ".kq-heatmap", ".kq-objectives"]
    .forEach(function (s) { out[s] = visible(s); });
  var heat = document.querySelector(".kq-heatmap");
  out.columns = heat ? heat.querySelectorAll("thead th").length - 1 : -1;
  out.heatRows = heat ? heat.querySelectorAll("tbody tr").length : -1;
  var objectives = document.querySelector(".kq-objectives");
  out.objectiveRows = objectives ? objectives.querySelectorAll("tr.kq-row").length : -1;
  out.verdict = (document.querySelector(".kq-verdict") || {}).textContent || "";
  out.summary = (document.querySelector(".kq-summary") || {}).textContent || "";
  out.objectivesText = objectives ? objectives.textContent : "";
  document.documentElement.setAttribute("data-e2e-probe", JSON.stringify(out));
}, 0); });
</script>"""


class _ProbeReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.probe: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name == "data-e2e-probe" and value is not None:
                self.probe = value


def _pytest(cwd: Path, tag: str, name: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "GITHUB_"))}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--keptn-stage=hardening",
         f"--keptn-tag={tag}", "--keptn-locust-run-time=4s",
         f"--html={name}.html", "--self-contained-html", f"--junitxml={name}.xml"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=90, check=False,
    )


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={profile}", *args],
            capture_output=True, text=True, timeout=60, check=False,
        )


def _events(project: Path) -> list[dict]:  # type: ignore[type-arg]
    files = sorted((project / "build" / "events").glob("*.json"), key=lambda p: p.stat().st_mtime)
    return [json.loads(p.read_text()) for p in files]


@pytest.fixture
def project(tmp_path: Path):  # type: ignore[no-untyped-def]
    folder = tmp_path / "example"
    folder.mkdir()
    for part in ("keptn", "helloserver"):
        shutil.copytree(EXAMPLE / part, folder / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(EXAMPLE / "pytest.ini", folder / "pytest.ini")
    yield folder
    stop = subprocess.run(
        [sys.executable, "-m", "pytest_keptn", "stop", "--state-dir", str(folder / "build/state")],
        cwd=folder, capture_output=True, text=True, timeout=30, check=False,
    )
    assert stop.returncode == 0, stop.stdout + stop.stderr


def test_hardening_v011_passes_then_v012_is_rolled_back(project: Path) -> None:
    began = time.monotonic()

    # --- v0.1.1: the gate passes, the canary becomes the primary -----------------------------
    first = _pytest(project, "v0.1.1", "pass")
    out = first.stdout
    assert first.returncode == 0, out[-4000:] + first.stderr[-2000:]
    assert "Keptn quality gates" in out
    table = out[out.index("Keptn quality gates"):]
    for name in OBJECTIVES:
        assert name in table
    assert "hardening: pass, score 100.0% >= 90% (pass)" in table, table
    # after the load, Locust's per-endpoint table and its own HTML report
    assert re.search(r"^    GET /\s+\d+\s+0\s+\d+\s+\d+\s+\d+\s+[\d.]+$", table, re.M), table
    locust_report = re.search(r"Locust's report: (\S+\.html)$", table, re.M)
    assert locust_report and Path(locust_report.group(1)).is_file(), table
    assert "Traceback" not in out + first.stderr

    (event,) = _events(project)
    assert event["type"] == "sh.keptn.event.evaluation.finished"
    data = event["data"]
    assert (data["project"], data["stage"], data["service"]) == (
        "pod-tato-head", "hardening", "helloservice")
    assert data["result"] == "pass" and data["evaluation"]["score"] == 100.0
    results = {r["value"]["metric"]: r for r in data["evaluation"]["indicatorResults"]}
    assert sorted(results) == sorted(OBJECTIVES)
    assert all(r["value"]["success"] and r["status"] == "pass" for r in results.values()), results
    response_time = results["http_response_time_seconds_main_page_sum"]["value"]["value"]
    throughput = results["request_throughput"]["value"]["value"]
    goroutines = results["go_routines"]["value"]["value"]
    assert 0 < response_time < 0.5, response_time  # seconds; v0.1.1 answers in milliseconds
    assert 1 < throughput < 10_000, throughput  # requests/s of 10 Locust users
    assert 1 <= goroutines <= 100 and goroutines == int(goroutines), goroutines

    junit = (project / "pass.xml").read_text()
    assert 'errors="0"' in junit and 'failures="0"' in junit

    # --- v0.1.2: the gate fails, the canary is rolled back ----------------------------------
    second = _pytest(project, "v0.1.2", "fail")
    out2 = second.stdout
    assert second.returncode == 1, out2[-4000:] + second.stderr[-2000:]
    table2 = out2[out2.index("Keptn quality gates"):]
    assert "hardening: fail, score" in table2, table2
    assert "rolled back" in table2
    assert "Traceback" not in out2 + second.stderr
    events = _events(project)
    assert len(events) == 2 and events[-1]["data"]["result"] == "fail"
    failed = {r["value"]["metric"]: r for r in events[-1]["data"]["evaluation"]["indicatorResults"]}
    assert sorted(failed) == sorted(OBJECTIVES)
    assert failed["http_response_time_seconds_main_page_sum"]["value"]["value"] > 1  # the regression

    status = subprocess.run(
        [sys.executable, "-m", "pytest_keptn", "status", "--state-dir", "build/state",
         "--url", "hardening", "helloservice"],
        cwd=project, capture_output=True, text=True, timeout=30, check=False,
    )
    assert status.returncode == 0, status.stdout + status.stderr
    primary = status.stdout.strip()
    assert primary.startswith("http://127.0.0.1:"), primary
    body = httpx.get(primary, timeout=5).text
    assert "v0.1.1" in body, body
    assert time.monotonic() - began < 60

    # --- the real pytest-html report of the failing run, in headless Chromium ----------------
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    report = project / "fail.html"
    text = report.read_text(encoding="utf-8")
    probed = report.with_name("probed.html")
    probed.write_text(text.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dumped = _chromium("--virtual-time-budget=5000", "--dump-dom", probed.as_uri())
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    reader = _ProbeReader()
    reader.feed(dumped.stdout)
    assert reader.probe is not None, "the probe did not run (the page did not load?)"
    seen = json.loads(reader.probe)
    for part in (".keptn-report", ".kq-summary", ".kq-verdict", ".kq-heatmap", ".kq-objectives"):
        assert seen[part] == "visible", (part, seen)
    assert seen["columns"] == 2, seen  # v0.1.1 and v0.1.2
    assert seen["heatRows"] == 1 + len(OBJECTIVES), seen  # score row + one per objective
    assert seen["objectiveRows"] == len(OBJECTIVES), seen
    assert "hardening: fail" in seen["verdict"], seen
    assert "v0.1.2" in seen["summary"], seen
    for name in OBJECTIVES:
        assert name in seen["objectivesText"], seen

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTIFACTS / "e2e-example-project-report.png"
    screenshot.unlink(missing_ok=True)
    shot = _chromium(f"--screenshot={screenshot}", "--window-size=1400,1600", report.as_uri())
    assert shot.returncode == 0 and screenshot.stat().st_size > 10_000, shot.stderr[-2000:]
    shutil.copyfile(report, ARTIFACTS / "e2e-example-project-report.html")
