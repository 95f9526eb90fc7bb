"""The example project reproduces the tutorial: its files match the tutorial's text and the demo
service's builds behave the way the tutorial's SLO expects."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "example_project"
KEPTN = EXAMPLE / "keptn"
SERVICE = KEPTN / "hardening" / "helloservice"
TUTORIAL = REPO.parent / "shared" / "reference" / "keptn-multistage-quality-gates-tutorial.md"


# --- the files against the tutorial -------------------------------------------------------------


@pytest.fixture(scope="module")
def tutorial_blocks() -> list[str]:
    if not TUTORIAL.is_file():
        pytest.skip(f"tutorial text not found at {TUTORIAL} (CI clones ../shared beside the repo)")
    text = TUTORIAL.read_text(encoding="utf-8")
    return re.findall(r"^[ \t]*```[^\n]*\n(.*?)^[ \t]*```[ \t]*$", text, re.S | re.M)


def _block(blocks: list[str], marker: str) -> str:
    found = [b for b in blocks if marker in b]
    assert len(found) == 1, f"expected one tutorial block containing {marker!r}, got {len(found)}"
    return found[0]


def test_shipyard_is_the_tutorials_verbatim(tutorial_blocks: list[str]) -> None:
    expected = _block(tutorial_blocks, 'kind: "Shipyard"')
    assert (KEPTN / "shipyard.yaml").read_text(encoding="utf-8") == expected


def test_slo_is_the_tutorials_verbatim(tutorial_blocks: list[str]) -> None:
    expected = _block(tutorial_blocks, "objectives:")
    assert (SERVICE / "slo.yaml").read_text(encoding="utf-8") == expected


def test_sli_has_the_tutorials_indicators_and_queries(tutorial_blocks: list[str]) -> None:
    expected = _block(tutorial_blocks, "indicators:")
    text = (SERVICE / "prometheus" / "sli.yaml").read_text(encoding="utf-8")
    # Only leading comments (why nothing changed) are added; the YAML itself is the tutorial's.
    body = "".join(line for line in text.splitlines(keepends=True) if not line.startswith("#"))
    assert body == expected
    indicators = yaml.safe_load(text)["indicators"]
    assert list(indicators) == [
        "http_response_time_seconds_main_page_sum",
        "http_requests_total_sucess",  # sic, the tutorial's spelling
        "go_routines",
        "request_throughput",
    ]


def test_slo_objectives_have_sli_queries() -> None:
    slo = yaml.safe_load((SERVICE / "slo.yaml").read_text(encoding="utf-8"))
    sli = yaml.safe_load((SERVICE / "prometheus" / "sli.yaml").read_text(encoding="utf-8"))
    assert {o["sli"] for o in slo["objectives"]} <= set(sli["indicators"])


def test_locust_files() -> None:
    conf = (SERVICE / "locust" / "locust.conf").read_text(encoding="utf-8")
    settings = dict(
        (k.strip(), v.strip())
        for k, _, v in (line.partition("=") for line in conf.splitlines())
        if k.strip() and not k.lstrip().startswith("#")
    )
    assert settings == {"users": "10", "spawn-rate": "10", "run-time": "10s"}
    source = (SERVICE / "locust" / "locustfile.py").read_text(encoding="utf-8")
    compile(source, "locustfile.py", "exec")
    assert "FastHttpUser" in source and 'get("/"' in source


def test_helm_chart_is_complete() -> None:
    chart = EXAMPLE / "helm-charts" / "helloserver"
    meta = yaml.safe_load((chart / "Chart.yaml").read_text(encoding="utf-8"))
    assert meta["apiVersion"] == "v2" and meta["name"] == "helloservice"
    values = yaml.safe_load((chart / "values.yaml").read_text(encoding="utf-8"))
    assert values["image"]["repository"] == "gabrieltanner/hello-server"
    assert values["image"]["tag"] == "v0.1.1"
    deployment = (chart / "templates" / "deployment.yaml").read_text(encoding="utf-8")
    service = (chart / "templates" / "service.yaml").read_text(encoding="utf-8")
    assert "kind: Deployment" in deployment and "{{ .Values.image.tag }}" in deployment
    assert 'prometheus.io/scrape: "true"' in deployment
    assert "kind: Service" in service and "name: metrics" in service
    assert (chart / "templates" / "_helpers.tpl").is_file()


def test_pytest_ini_configures_the_demo() -> None:
    import configparser

    ini = configparser.ConfigParser(interpolation=None)
    ini.read(EXAMPLE / "pytest.ini", encoding="utf-8")
    section = ini["pytest"]
    assert section["keptn_root"] == "keptn"
    assert section["keptn_project"] == "pod-tato-head"
    assert section["keptn_service"] == "helloservice"
    assert section["keptn_local_command"] == "{python} -m helloserver --port {port} --tag {tag}"
    assert section["keptn_health_path"] == "/health"


# --- the demo service, as a real process --------------------------------------------------------


Sample = tuple[str, dict[str, str], float]


def parse_metrics(text: str) -> list[Sample]:
    samples: list[Sample] = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)", line)
        assert m, f"not Prometheus text format: {line!r}"
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        samples.append((m.group(1), labels, float(m.group(3))))
    return samples


def value(samples: list[Sample], name: str, **labels: str) -> float:
    found = [v for n, ls, v in samples if n == name and all(ls.get(k) == x for k, x in labels.items())]
    return sum(found)


class Helloserver:
    def __init__(self, tag: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "helloserver", "--port", "0", "--tag", tag],
            cwd=EXAMPLE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert m, f"helloserver did not start: {line!r} {self.proc.stderr.read() if self.proc.stderr else ''}"
        self.url = f"http://127.0.0.1:{m.group(1)}"

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def metrics(self) -> list[Sample]:
        status, body = self.get("/metrics")
        assert status == 200
        return parse_metrics(body)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def helloserver(request: pytest.FixtureRequest) -> Iterator[Helloserver]:
    server = Helloserver(request.param)
    try:
        assert server.get("/health") == (200, "ok")
        yield server
    finally:
        server.stop()


@pytest.mark.slow
@pytest.mark.parametrize("helloserver", ["v0.1.1"], indirect=True)
def test_v0_1_1_is_healthy(helloserver: Helloserver) -> None:
    for _ in range(20):
        status, body = helloserver.get("/")
        assert status == 200 and "v0.1.1" in body
    s = helloserver.metrics()
    ok = {"method": "GET", "route": "/", "status_code": "200"}
    count = value(s, "http_server_request_duration_seconds_count", **ok)
    assert count == 20
    assert value(s, "http_server_request_duration_seconds_sum", **ok) / count <= 0.5  # SLO warning
    assert value(s, "http_requests_total", status="success") == 20
    assert value(s, "http_requests_total", status="error") == 0
    assert value(s, "go_goroutines") <= 100  # SLO pass
    inf = value(s, "http_server_request_duration_seconds_bucket", le="+Inf", **ok)
    assert inf == count


@pytest.mark.slow
@pytest.mark.parametrize("helloserver", ["v0.1.2"], indirect=True)
def test_v0_1_2_is_the_regression_the_slo_catches(helloserver: Helloserver) -> None:
    started = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: helloserver.get("/"), range(4)))
    assert all(status == 200 for status, _ in results)
    assert time.perf_counter() - started < 5  # concurrent, not serialised
    s = helloserver.metrics()
    ok = {"method": "GET", "route": "/", "status_code": "200"}
    mean = value(s, "http_server_request_duration_seconds_sum", **ok) / value(
        s, "http_server_request_duration_seconds_count", **ok
    )
    assert mean > 1  # fails "<=1"
    assert value(s, "go_goroutines") > 100  # fails "<=100"


@pytest.mark.slow
@pytest.mark.parametrize("helloserver", ["v0.1.3"], indirect=True)
def test_v0_1_3_returns_errors(helloserver: Helloserver) -> None:
    codes = [helloserver.get("/")[0] for _ in range(60)]
    errors = codes.count(500)
    assert set(codes) <= {200, 500}
    assert 10 <= errors <= 50, errors
    s = helloserver.metrics()
    assert value(s, "http_requests_total", status="error") == errors
    assert value(s, "http_requests_total", status="success") == 60 - errors
    assert value(s, "http_server_request_duration_seconds_count", status_code="500") == errors


@pytest.mark.slow
def test_crash_build_cannot_start() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "helloserver", "--port", "0", "--tag", "crash"],
        cwd=EXAMPLE,
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert proc.returncode != 0
    assert "cannot start" in proc.stderr


def test_metrics_parser_reads_the_text_format() -> None:
    s = parse_metrics('# HELP x\nfoo{a="1",b="2"} 3.5\nbar 2\n')
    assert s == [("foo", {"a": "1", "b": "2"}, 3.5), ("bar", {}, 2.0)]
    assert value(s, "foo", a="1") == 3.5
