"""Issue 13 point 3: an outage during the evaluation is an errored evaluation, not a failed
build. Prometheus stopped during the load (real), answering 5xx after the retries (a stub: a
real Prometheus cannot be made to), and an evaluation aborted because the SLIs do not see the
load: each ends ``status: errored`` (result fail), is stored as errored and never compared
with, and shows as errored in the terminal, the markdown summary, the HTML report and JUnit
(pytest's ERROR outcome for the objectives); the canary is rolled back, the session fails."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from pytest_keptn.gate.history import History
from pytest_keptn.prometheus.server import EmbeddedPrometheus
from tests.plugin.conftest import FAKES, GOOD, Project

# The built-in Prometheus provider answers; the load stand-in stops Prometheus (its pid in
# PROM_PID) and waits until its port refuses connections, so the evaluation finds it gone.
PROMETHEUS_FAKES = FAKES.replace(
    'config.pluginmanager.set_blocked("keptn-sli-prometheus")', "pass"
).replace("def pytest_keptn_get_sli(", "def _not_a_hook(") + '''

def pytest_keptn_run_load(ctx, url, properties):
    import signal, socket, time
    record(task="load", stage=ctx.stage, tag=ctx.tag)
    pid = os.environ.get("PROM_PID")
    if pid:
        os.kill(int(pid), signal.SIGKILL)
        host, port = os.environ["PROM_ADDR"].split(":")
        while True:  # until the port refuses: Prometheus is gone
            try:
                socket.create_connection((host, int(port)), timeout=1).close()
            except OSError:
                break
            time.sleep(0.05)
    end = datetime.now(UTC)
    return LoadResult(window=Window(end - timedelta(seconds=10), end), requests=100)
'''

SLI = """\
spec_version: "1.0"
indicators:
  response_time: vector(0.5)
  throughput: vector(100)
  goroutines: vector(10)
"""

# every earlier evaluation is a comparison basis, whatever its result
SLO_ALL = """\
comparison: {compare_with: several_results, number_of_comparison_results: 3,
             include_result_with_score: all, aggregate_function: avg}
objectives:
  - sli: response_time
    pass: [{criteria: ["<=1", "<=+50%"]}]
  - sli: throughput
    pass: [{criteria: [">=-80%"]}]
  - sli: goroutines
    pass: [{criteria: ["<=100"]}]
total_score: {pass: "90%", warning: "60%"}
"""


def _prometheus(tmp: Path) -> EmbeddedPrometheus:
    if shutil.which("prometheus") is None:
        pytest.skip("prometheus binary not installed")
    return EmbeddedPrometheus(tmp).start()


def _history_list(project: Project) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "pytest_keptn", "history", "--history",
         str(project.path / "build" / "history.sqlite"), "list"],
        capture_output=True, text=True, timeout=60, cwd=project.path)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _junit_cases(project: Project) -> dict[str, ET.Element]:
    return {str(c.get("name")): c
            for c in ET.parse(project.path / "junit.xml").iter("testcase")}


def _assert_errored_everywhere(project: Project, out: str, headline: str) -> None:
    assert "hardening: errored" in out
    assert f"errored: {headline}" in out
    assert "Traceback" not in out and "INTERNALERROR" not in out
    # the canary is rolled back
    assert "rollback" in [c["task"] for c in project.calls()]
    # JUnit: the objectives are errors, not failures
    cases = _junit_cases(project)
    for name in ("response_time", "throughput", "goroutines"):
        (error,) = cases[name].iter("error")
        assert f"errored: {headline}" in str(error.get("message"))
        assert not list(cases[name].iter("failure"))
    # the history stores it as errored
    with History(project.path / "build" / "history.sqlite") as history:
        (row,) = history.evaluations()
    assert row.result == "errored"
    assert row.data["status"] == "errored" and row.data["result"] == "fail"
    assert headline in row.data["message"]
    assert "errored" in _history_list(project)
    # the event says so too
    (event,) = project.events()
    assert event["data"]["status"] == "errored"  # type: ignore[index]
    # markdown summary and HTML report
    summary = (project.path / "build" / "state" / "summary.md").read_text()
    assert "errored" in summary and headline in summary
    report = (project.path / "report.html").read_text()
    assert "errored" in report and headline in report
    assert "kq-cell kq-errored" in report  # the heatmap cell is grey and hatched, not red


RUN = ("--keptn-stage=hardening", "--junitxml=junit.xml", "--html=report.html",
       "--self-contained-html")


@pytest.mark.slow
def test_prometheus_stopped_during_the_load_errors_the_evaluation(
        project: Project, tmp_path_factory: pytest.TempPathFactory,
        monkeypatch: pytest.MonkeyPatch) -> None:
    (project.path / "conftest.py").write_text(PROMETHEUS_FAKES)
    project.write("keptn/hardening/svc/prometheus/sli.yaml", SLI)
    project.write("keptn/hardening/svc/slo.yaml", SLO_ALL)
    doomed = _prometheus(tmp_path_factory.mktemp("doomed"))
    try:
        monkeypatch.setenv("PROM_PID", str(doomed.pid))
        monkeypatch.setenv("PROM_ADDR", str(doomed.url).split("//")[1].rstrip("/"))
        result = project.run(*RUN, "--keptn-tag=v1", f"--keptn-prometheus-url={doomed.url}",
                             "--keptn-freshness-timeout=2")
    finally:
        doomed.stop()
    out = result.stdout.str()
    assert result.ret == 1, out
    _assert_errored_everywhere(project, out, "Prometheus unreachable")

    # the next evaluation does not compare with the errored one
    monkeypatch.delenv("PROM_PID")
    alive = _prometheus(tmp_path_factory.mktemp("alive"))
    try:
        again = project.run("--keptn-stage=hardening", "--keptn-tag=v1",
                            f"--keptn-prometheus-url={alive.url}")
    finally:
        alive.stop()
    assert again.ret == 0, again.stdout.str()
    newest = project.events()[-1]
    assert "comparedEvents" not in newest["data"]["evaluation"]  # type: ignore[index]


@pytest.fixture
def failing_prometheus() -> Iterator[str]:
    """Answers the setup probe, then 503 to every SLI query (after the client's retries)."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def _answer(self, query: str) -> None:
            if self.path.startswith("/api/v1/status/buildinfo") or query == "vector(1)":
                body = json.dumps({"status": "success", "data": {
                    "resultType": "vector", "result": [{"metric": {}, "value": [1, "1"]}],
                    "version": "2.45.0"}})
                code = 200
            else:
                body, code = "upstream overloaded", 503
            self.send_response(code)
            self.send_header("Content-Type", "application/json" if code == 200 else "text/plain")
            self.send_header("Content-Length", str(len(body.encode())))
            self.end_headers()
            self.wfile.write(body.encode())

        def do_GET(self) -> None:
            self._answer(parse_qs(self.path.partition("?")[2]).get("query", [""])[0])

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(length).decode())
            self._answer(form.get("query", [""])[0])

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_prometheus_answering_5xx_errors_the_evaluation(project: Project,
                                                        failing_prometheus: str) -> None:
    (project.path / "conftest.py").write_text(PROMETHEUS_FAKES)
    project.write("keptn/hardening/svc/prometheus/sli.yaml", SLI)
    result = project.run(*RUN, "--keptn-tag=v1", f"--keptn-prometheus-url={failing_prometheus}")
    out = result.stdout.str()
    assert result.ret == 1, out
    _assert_errored_everywhere(project, out, "Prometheus failed")


def test_slis_that_do_not_see_the_load_are_recorded_as_errored(project: Project) -> None:
    project.write("keptn/hardening/svc/prometheus/sli.yaml", """\
        indicators:
          keptn_request_count: sum(increase(http_requests_total[$DURATION_SECONDS]))
    """)
    project.write("values.json", json.dumps({"v4": {**GOOD, "keptn_request_count": 5}}))
    result = project.run(*RUN, "--keptn-tag=v4")
    out = result.stdout.str()
    assert result.ret == 1, out
    _assert_errored_everywhere(project, out, "the SLIs do not see the load")


def test_compat_records_an_outage_as_keptn_087_does(project: Project,
                                                     failing_prometheus: str) -> None:
    """Keptn 0.8.7's lighthouse ignores the get-sli status: the SLIs fail ("metric could not
    be received"), the evaluation is an ordinary ``fail`` and a comparison basis."""
    (project.path / "conftest.py").write_text(PROMETHEUS_FAKES)
    project.write("keptn/hardening/svc/prometheus/sli.yaml", SLI)
    result = project.run("--keptn-stage=hardening", "--keptn-tag=v1", "--keptn-compat=0.8.7",
                         f"--keptn-prometheus-url={failing_prometheus}")
    out = result.stdout.str()
    assert result.ret == 1, out
    assert "errored" not in out
    (event,) = project.events()
    assert event["data"]["status"] == "succeeded"  # type: ignore[index]
    assert event["data"]["result"] == "fail"  # type: ignore[index]
