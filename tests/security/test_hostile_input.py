"""Hostile Keptn files and names (issue #7): refused quickly with one clear line, nothing in them
runs, label values cannot inject PromQL, and an SLI name cannot inject HTML."""

from __future__ import annotations

import html
import json
import re
import shutil
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest

from pytest_keptn.errors import ProviderError
from pytest_keptn.model import Window
from pytest_keptn.prometheus.provider import jobs_in
from pytest_keptn.prometheus.render import builtin_query, default_filter, render_query
from tests.plugin.conftest import SHIPYARD, Project, project  # noqa: F401

PLACES = {
    "slo": "keptn/hardening/svc/slo.yaml",
    "sli": "keptn/hardening/svc/prometheus/sli.yaml",
    "shipyard": "keptn/shipyard.yaml",
}

BILLION_LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8)
)


def _hostile(marker: Path) -> dict[str, tuple[bytes, str]]:
    """name -> (file content, what the one-line error must say)."""
    return {
        "huge": (b"# " + b"x" * (6 * 1024 * 1024) + b"\n", "larger than"),
        "deep": (b"a: " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested deeper"),
        "aliases": (BILLION_LAUGHS.encode(), "alias"),
        "python-tag": (
            f'a: !!python/object/apply:os.system ["touch {marker}"]\n'.encode(), "unsupported tag"
        ),
        "python-name": (f"a: !!python/name:os.system\nb: {marker}\n".encode(), "unsupported tag"),
        "not-utf8": (b"spec_version: '1.0'\nindicators:\n  x: \xff\xfe\xc3\x28 up\n", "not UTF-8"),
    }


CASES = [(kind, name) for kind in PLACES for name in _hostile(Path("m"))]


@pytest.mark.parametrize(("kind", "name"), CASES, ids=[f"{k}-{n}" for k, n in CASES])
def test_hostile_file_is_refused_quickly(project: Project, kind: str, name: str) -> None:  # noqa: F811
    marker = project.path / "PWNED"
    content, expected = _hostile(marker)[name]
    target = project.path / PLACES[kind]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)
    began = time.monotonic()
    result = project.pytester.runpytest("--keptn-stage=hardening", "--keptn-tag=v1",
                                        "-p", "no:cacheprovider")
    elapsed = time.monotonic() - began
    err = result.stderr.str()
    out = result.stdout.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, out + err
    lines = [line for line in err.splitlines() if "pytest-keptn:" in line]
    assert len(lines) == 1, err
    assert str(target) in lines[0] and expected in lines[0], lines[0]
    assert len(lines[0]) < 400, lines[0]  # one readable line, not the file echoed back
    assert "Traceback" not in err + out and "INTERNALERROR" not in err + out
    assert not marker.exists(), "a Python tag in a Keptn file ran code"
    assert project.calls() == [], "a task ran although a file was refused"
    assert elapsed < 2.0, f"took {elapsed:.1f}s to refuse"


# --- PromQL injection through label values ------------------------------------------------------

WINDOW = Window(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 0, 1, tzinfo=UTC))
EVIL = ['"}', '"} or vector(1) #', "'} or vector(1) #", 'a\\"} or vector(1) #', "x\n} or vector(1)"]


@pytest.mark.parametrize("evil", EVIL)
def test_project_and_service_names_stay_inside_their_literal(evil: str) -> None:
    template = 'sum(rate(x{job="$SERVICE-$PROJECT-$STAGE-canary",p=\'$PROJECT\'}[$DURATION_SECONDS]))'
    query = render_query("x", template, project=evil, stage="hardening", service=evil,
                         window=WINDOW)
    # Reading the matchers back gives exactly the hostile text: it never closed the literal.
    if "\n" in evil:  # jobs_in reads `\n` back as `n`; the escape itself is what matters
        assert '\\n' in query
    else:
        assert jobs_in(query) == [f"{evil}-{evil}-hardening-canary"]
    assert query.startswith("sum(rate(x{job=") and query.endswith("[60s]))")
    assert "\n" not in query  # a newline is escaped, never raw


@pytest.mark.parametrize("evil", EVIL)
def test_names_outside_a_literal_are_refused(evil: str) -> None:
    with pytest.raises(ProviderError):
        render_query("x", "x{$PROJECT}", project=evil, stage="s", service="v", window=WINDOW)


@pytest.mark.parametrize("evil", EVIL)
def test_slo_filter_values_outside_a_literal_are_pasted_as_keptn_does(evil: str) -> None:
    # The slo.yaml's author also writes the sli.yaml: a filter outside a literal is query text
    # (``sum by ($GROUPBY)``), pasted verbatim after losing its quotes, as Keptn pastes it.
    query = render_query("x", "x{job='a'} offset $handler", project="p", stage="s",
                         service="v", window=WINDOW, filters={"handler": evil})
    assert query == "x{job='a'} offset " + evil.replace("'", "").replace('"', "")


@pytest.mark.parametrize("evil", EVIL)
def test_slo_filter_values_are_escaped_in_builtin_queries(evil: str) -> None:
    for value in (evil, "=~" + evil, "!=" + evil):
        try:
            f = default_filter("throughput", project="p", stage="s", service="v",
                               filters={"handler": value})
        except ProviderError as exc:
            assert "control character" in str(exc) or "handler" in str(exc)
            continue
        # one literal per matcher: job='...' and handler<op>'...'; the value is escaped in it
        assert f.startswith("job='v-p-s-canary',handler")
        literal = f.split("handler", 1)[1].lstrip("=~!")
        assert literal.startswith("'") and literal.endswith("'")
        inner = literal[1:-1]
        assert "'" not in inner.replace("\\'", "")
    query = builtin_query("throughput", project="p", stage="s", service="v", window=WINDOW,
                          filters={"handler": '"} or vector(1) #'})
    assert query == "sum(rate(http_requests_total{job='v-p-s-canary',handler='} or vector(1) #'}[60s]))"


def test_slo_filter_key_must_be_a_label_name() -> None:
    with pytest.raises(ProviderError, match="not a Prometheus label name"):
        default_filter("x", project="p", stage="s", service="v",
                       filters={'a="b"} or vector(1) #': "x"})


class _RecordingPrometheus:
    """Answers every query with an empty vector and remembers what it was asked."""

    def __init__(self) -> None:
        self.queries: list[str] = []
        queries = self.queries

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                query = form.get("query", [""])[0]
                if "timestamp(up{" not in query:  # not the freshness wait
                    queries.append(query)
                body = json.dumps({"status": "success",
                                   "data": {"resultType": "vector", "result": []}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"


@pytest.fixture
def recording_prometheus() -> Iterator[_RecordingPrometheus]:
    prom = _RecordingPrometheus()
    try:
        yield prom
    finally:
        prom.server.shutdown()
        prom.server.server_close()


_BATCHED = re.compile(r'label_replace\(\((.*?)\), "keptn_sli_index", "\d+", "", ""\)')


def _sub_queries(sent: list[str]) -> list[str]:
    """The indicators' own queries, also out of the client's batched queries."""
    out: list[str] = []
    for query in sent:
        parts = _BATCHED.findall(query) if '"keptn_sli_index"' in query else []
        out += parts or [query]
    return out


def test_hostile_names_reach_prometheus_escaped(pytester: pytest.Pytester,
                                               recording_prometheus: _RecordingPrometheus) -> None:
    evil_project = 'demo"} or vector(1) #'
    (pytester.path / "keptn/hardening/svc/prometheus").mkdir(parents=True)
    (pytester.path / "keptn/shipyard.yaml").write_text(SHIPYARD)
    (pytester.path / "keptn/hardening/svc/slo.yaml").write_text(
        "spec_version: '0.1.0'\n"
        "filter:\n  handler: '\"} or vector(1) #'\n"
        "objectives:\n  - sli: latency\n    pass:\n      - criteria: ['<=1']\n"
        "  - sli: throughput\n"
        "total_score: {pass: '90%', warning: '75%'}\n"
    )
    (pytester.path / "keptn/hardening/svc/prometheus/sli.yaml").write_text(
        "spec_version: '1.0'\nindicators:\n"
        "  latency: 'x{job=\"$SERVICE-$PROJECT-$STAGE\",h=\"$handler\"}'\n"
    )
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--keptn-stage=hardening", "--keptn-deployer=none",
        f"--keptn-prometheus-url={recording_prometheus.url}", f"--keptn-project={evil_project}",
        "--keptn-service=svc", f"--keptn-start={(end - timedelta(minutes=1)).strftime(KEPTN_TIME)}",
        f"--keptn-end={end.strftime(KEPTN_TIME)}", "--keptn-state-dir=state", "--keptn-history=h.sqlite",
        timeout=60,
    )
    out = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in out and "INTERNALERROR" not in out
    assert result.ret == 1, out  # no data: the gate fails, nothing was injected
    sent = _sub_queries(recording_prometheus.queries)
    latency = next(q for q in sent if q.startswith("x{"))
    assert latency == 'x{job="svc-demo\\"} or vector(1) #-hardening",h="} or vector(1) #"}', latency
    assert jobs_in(latency) == [f"svc-{evil_project}-hardening"]
    throughput = next(q for q in sent if "http_requests_total" in q)
    assert "job='svc-demo\"} or vector(1) #-hardening-canary'" in throughput, throughput
    assert "handler='} or vector(1) #'" in throughput, throughput
    # And Prometheus itself reads them as plain label values: no series, not vector(1).
    if shutil.which("prometheus"):
        from pytest_keptn.prometheus.server import EmbeddedPrometheus

        with EmbeddedPrometheus(pytester.path / "prom") as prom:
            for query in (latency, throughput):
                answer = httpx.post(prom.url + "/api/v1/query", data={"query": query}, timeout=10)
                assert answer.status_code == 200, answer.text
                assert answer.json()["data"]["result"] == [], (query, answer.text)


# --- HTML injection through an SLI name ---------------------------------------------------------

KEPTN_TIME = "%Y-%m-%dT%H:%M:%S.000Z"
XSS = "<script>alert(1)</script>"


def test_sli_name_is_escaped_in_the_html_report_and_summary(project: Project) -> None:  # noqa: F811
    project.write("keptn/hardening/svc/slo.yaml", f"""\
        spec_version: '0.1.0'
        objectives:
          - sli: "{XSS}"
            displayName: "<img src=x onerror=alert(2)>"
            pass:
              - criteria: ["<=1"]
          - sli: response_time
            pass:
              - criteria: ["<=1"]
        total_score: {{pass: "90%", warning: "75%"}}
        """)
    project.write("values.json", json.dumps({"v1": {XSS: 5, "response_time": 0.5}}))
    result = project.run("--keptn-stage=hardening", "--keptn-tag=v1", "--html=report.html",
                         "--self-contained-html")
    out = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in out and "INTERNALERROR" not in out
    assert result.ret == 1, out
    report = (project.path / "report.html").read_text(encoding="utf-8")
    summary = (project.path / "build/state/summary.md").read_text(encoding="utf-8")
    for text, where in ((report, "report.html"), (summary, "summary.md")):
        assert XSS not in text, f"raw <script> in {where}"
        assert "<img src=x" not in text, f"raw <img> in {where}"
    keptn_section = report[report.index('<div class="keptn-report"'):]
    assert html.escape(XSS, quote=False) in keptn_section or html.escape(XSS) in keptn_section
    assert "&lt;script&gt;" in summary or "\\<script\\>" in summary or "&lt;" in summary
