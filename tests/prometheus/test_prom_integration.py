"""The real prometheus binary scraping a real helloserver; the tutorial's indicators and faults."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from pytest_keptn.config import Settings
from pytest_keptn.errors import ProviderError
from pytest_keptn.model import SLIResult, SLIStatus, StageContext, Window
from pytest_keptn.prometheus.client import PrometheusClient
from pytest_keptn.prometheus.provider import PrometheusSLIProvider
from pytest_keptn.prometheus.server import EmbeddedPrometheus

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus binary not installed"),
]

ROOT = Path(__file__).resolve().parents[2]
JOB = "helloservice-pod-tato-head-hardening"
CANARY = JOB + "-canary"
DEAD = "deadservice-pod-tato-head-hardening"
TUTORIAL_SLI = {
    "http_response_time_seconds_main_page_sum": 'sum(rate(http_server_request_duration_seconds_sum{method="GET",route="/",status_code="200",job="$SERVICE-$PROJECT-$STAGE-canary"}[$DURATION_SECONDS])/rate(http_server_request_duration_seconds_count{method="GET",route="/",status_code="200",job="$SERVICE-$PROJECT-$STAGE-canary"}[$DURATION_SECONDS]))',
    "http_requests_total_sucess": 'http_requests_total{status="success"}',
    "go_routines": 'go_goroutines{job="$SERVICE-$PROJECT-$STAGE"}',
    "request_throughput": 'sum(rate(http_requests_total{status="success"}[$DURATION_SECONDS]))',
}
REQUESTS = 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Env:
    prom: EmbeddedPrometheus
    app_port: int
    window: Window


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    port = _free_port()
    app = subprocess.Popen(
        [sys.executable, "-m", "helloserver", "--port", str(port), "--tag", "v0.1.1"],
        env=dict(os.environ, PYTHONPATH=str(ROOT / "example_project")),
        stdout=subprocess.DEVNULL,
    )
    prom = EmbeddedPrometheus(tmp_path_factory.mktemp("prom"))
    try:
        prom.start()
        # the same process under the direct and the canary job names (§11)
        prom.register(JOB, f"127.0.0.1:{port}", {"stage": "hardening"})
        prom.register(CANARY, f"127.0.0.1:{port}", {"stage": "hardening"})
        prom.register(DEAD, f"127.0.0.1:{_free_port()}")  # nothing listens there
        prom.wait_targets_up([JOB, CANARY], timeout=20)
        time.sleep(2.2)  # a few idle samples before the traffic
        start = datetime.now(UTC)
        with httpx.Client(timeout=5) as http:
            for _ in range(REQUESTS):
                assert http.get(f"http://127.0.0.1:{port}/").status_code == 200
                time.sleep(4.0 / REQUESTS)
        # Keptn queries at the window's end, which sees the latest sample at or before it:
        # end the window over a scrape interval after the traffic, as a load test's end is.
        time.sleep(1.6)
        end = datetime.now(UTC)
        yield Env(prom, port, Window(start, end))
    finally:
        prom.stop()
        app.terminate()
        app.wait(5)


def ctx_for(url: str | None, settings: Settings | None = None, **kw: object) -> StageContext:
    return StageContext(
        project="pod-tato-head",
        service="helloservice",
        stage="hardening",
        image="helloserver",
        tag="v0.1.1",
        root=ROOT,
        workdir=ROOT,
        settings=settings or Settings(query_timeout=5, freshness_timeout=8),
        sli_indicators=TUTORIAL_SLI,
        prometheus_url=url,
        **kw,  # type: ignore[arg-type]
    )


def by_name(results: object) -> dict[str, SLIResult]:
    assert results is not None
    return {r.metric: r for r in results}  # type: ignore[attr-defined]


def test_tutorial_indicators_match_the_traffic(env: Env) -> None:
    names = [*TUTORIAL_SLI, "throughput", "error_rate", "response_time_p95", "locust_rps", "bogus"]
    got = by_name(PrometheusSLIProvider().pytest_keptn_get_sli(
        ctx_for(env.prom.url), names, env.window, "canary", None))
    seconds = env.window.seconds
    latency = got["http_response_time_seconds_main_page_sum"]
    assert latency.status is SLIStatus.VALUE, latency.message
    assert 0.004 < latency.value < 0.05  # v0.1.1 sleeps 5 ms per request
    assert got["go_routines"].value == 8 and got["go_routines"].success
    throughput = got["request_throughput"]  # two jobs scrape the same process: twice the rate
    assert throughput.status is SLIStatus.VALUE
    assert throughput.value == pytest.approx(2 * REQUESTS / seconds, rel=0.35)
    # no job matcher: one series per job; strictly an error, Keptn 0.8.7 takes the first
    assert got["http_requests_total_sucess"].status is SLIStatus.MULTIPLE
    assert "2 series" in got["http_requests_total_sucess"].message
    assert got["http_requests_total_sucess"].query == 'http_requests_total{status="success"}'
    # the built-in throughput reads the canary job only
    assert got["throughput"].value == pytest.approx(REQUESTS / seconds, rel=0.35)
    assert "job='helloservice-pod-tato-head-hardening-canary'" in got["throughput"].query
    # helloserver exports no http_response_time_milliseconds histogram
    assert got["response_time_p95"].status is SLIStatus.NO_DATA
    assert got["bogus"].status is SLIStatus.UNKNOWN and "unsupported SLI" in got["bogus"].message
    assert "locust_rps" not in got


def test_compat_087_first_series_and_empty_is_zero(env: Env) -> None:
    settings = Settings(query_timeout=5, freshness_timeout=8, compat="0.8.7")
    got = by_name(PrometheusSLIProvider().pytest_keptn_get_sli(
        ctx_for(env.prom.url, settings), ["http_requests_total_sucess", "response_time_p95"],
        env.window, "canary", None))
    assert got["http_requests_total_sucess"].value == REQUESTS
    assert got["http_requests_total_sucess"].success
    p95 = got["response_time_p95"]
    assert (p95.value, p95.success, p95.status) == (0.0, True, SLIStatus.VALUE)
    assert any("counted as 0" in w for w in p95.warnings)


def test_typed_results_from_real_prometheus(env: Env) -> None:
    queries = {
        "empty": 'up{job="no-such-job"}',
        "nan": "vector(0)/0",
        "inf": "vector(1)/0",
        "several": f'up{{job=~"{JOB}|{CANARY}"}}',
        "bad": "sum(rate(up[1m]",
        "exec": 'label_replace(vector(1), "dst", "$1", "src", "(")',
        "many": 'sum(label_replace(vector(1),"a","x","","") or label_replace(vector(2),"a","y","","")) by (a)'
                ' * on() group_left sum(label_replace(vector(1),"a","x","","")'
                ' or label_replace(vector(2),"a","y","","")) by (a)',
        "ok": f'up{{job="{CANARY}"}}',
    }
    with PrometheusClient(env.prom.url) as client:
        got = client.query_many(queries, env.window.end)
        assert client.query(queries["several"], env.window.end, aggregate=True).value == 2
    assert got["empty"].status is SLIStatus.NO_DATA
    assert got["nan"].status is SLIStatus.INVALID and "NaN" in got["nan"].message
    assert got["inf"].status is SLIStatus.INVALID and "+Inf" in got["inf"].message
    assert got["several"].status is SLIStatus.MULTIPLE
    assert got["bad"].status is SLIStatus.QUERY_ERROR
    assert got["bad"].message.startswith("HTTP 400 bad_data: ")
    assert got["bad"].message.endswith(queries["bad"])
    assert got["exec"].message.startswith("HTTP 422 execution: invalid regular expression")
    assert got["many"].message.startswith("HTTP 422 execution: ") and "many-to-many" in got["many"].message
    assert (got["ok"].status, got["ok"].value) == (SLIStatus.VALUE, 1.0)
    assert all(not r.success for n, r in got.items() if n != "ok")


def test_target_that_never_comes_up(env: Env) -> None:
    began = time.monotonic()
    with pytest.raises(ProviderError) as info:
        env.prom.wait_targets_up([DEAD, CANARY], timeout=2)
    assert time.monotonic() - began < 4
    message = str(info.value)
    assert DEAD in message and CANARY not in message
    assert "connection refused" in message


def _newest_up(client: PrometheusClient, job: str) -> float:
    """The time of ``job``'s newest ``up`` sample, asked on its own (a plain selector)."""
    got = client.query(f'timestamp(up{{job="{job}"}})', datetime.now(UTC), metric=job)
    assert got.status is SLIStatus.VALUE, got.message
    return got.value


def test_freshness_waits_for_every_job(env: Env) -> None:
    """Two jobs: ``timestamp(up{job="A"} or up{job="B"})`` answered the evaluation time, so the
    wait returned before either job was scraped again. Each job must have its own sample at or
    after the moment waited for."""
    with PrometheusClient(env.prom.url) as client:
        after = datetime.now(UTC)
        client.wait_fresh([JOB, CANARY], after, timeout=10)
        for job in (JOB, CANARY):
            assert _newest_up(client, job) >= after.timestamp() - 0.0005, job  # ms resolution


def test_freshness_waits_for_every_up_target_of_a_job(env: Env) -> None:
    """An empty target slot (nothing listens: ``up`` 0) in the same job is scraped at its own
    phase: its fresh ``up`` sample must not stand in for the serving target's."""
    empty = f"127.0.0.1:{_free_port()}"
    prom = env.prom
    prom.register(JOB, empty, {"stage": "hardening"})
    try:
        deadline = time.monotonic() + 20
        with PrometheusClient(prom.url) as client:
            while _up_of(client, JOB, empty) is None:  # discovered (up 0) on Prometheus' tick
                assert time.monotonic() < deadline, "the empty target was never scraped"
                time.sleep(0.1)
            for _ in range(3):
                after = datetime.now(UTC)
                client.wait_fresh([JOB], after, timeout=10)
                newest = _up_of(client, JOB, f"127.0.0.1:{env.app_port}")
                assert newest is not None and newest >= after.timestamp() - 0.0005
    finally:
        prom.replace(JOB, f"127.0.0.1:{env.app_port}", {"stage": "hardening"})


def _up_of(client: PrometheusClient, job: str, instance: str) -> float | None:
    got = client.query(f'timestamp(up{{job="{job}",instance="{instance}"}})', datetime.now(UTC),
                       metric=job)
    return got.value if got.status is SLIStatus.VALUE else None


def test_freshness_does_not_wait_for_a_job_nobody_scrapes(env: Env) -> None:
    with PrometheusClient(env.prom.url) as client:
        client.wait_fresh([CANARY], env.window.end, timeout=5)  # fresh already
        began = time.monotonic()
        after = datetime.now(UTC)
        with pytest.raises(ProviderError, match=r"no up series for job\(s\) never-scraped-job: "
                           "Prometheus does not scrape them") as info:
            client.wait_fresh(["never-scraped-job", CANARY], after, timeout=20)
        assert CANARY not in str(info.value)
        assert _newest_up(client, CANARY) >= after.timestamp() - 0.0005  # still waited for it
        assert time.monotonic() - began < 10  # a few scrape intervals, not the 20 s timeout


def test_freshness_names_a_job_that_stays_stale(env: Env) -> None:
    with PrometheusClient(env.prom.url) as client:
        future = datetime.now(UTC) + timedelta(hours=1)
        with pytest.raises(ProviderError, match=rf"job\(s\) {JOB}, {CANARY} within 1s") as info:
            client.wait_fresh([JOB, CANARY], future, timeout=1)
        assert "latest 20" in str(info.value)


class _StopsAfter(PrometheusClient):
    """A client that stops the real Prometheus, synchronously, once ``answered`` queries got
    their answer: no timer, so the point where Prometheus goes away is the same every run."""

    def __init__(self, prom: EmbeddedPrometheus, answered: int, **kwargs: Any) -> None:
        super().__init__(prom.url, **kwargs)
        self._prom, self._left = prom, answered

    def post(self, path: str, data: Mapping[str, str], deadline: float) -> httpx.Response:
        if self._left == 0:
            self._prom.stop()  # SIGTERM, waits for the process to exit
        self._left -= 1
        return super().post(path, data, deadline)


def test_prometheus_stopped_mid_evaluation(tmp_path: Path) -> None:
    prom = EmbeddedPrometheus(tmp_path).start()
    folder = prom.folder
    assert folder is not None and folder.is_dir()
    pid = prom._proc.pid if prom._proc else None
    queries = {f"q{i:02d}": f"sum(rate(up[{i + 1}m]))" for i in range(40)}
    # one query per round trip and one at a time, so that Prometheus goes away between two
    # queries: after the 5th answer, deterministically
    with _StopsAfter(prom, 5, timeout=3, retries=1, max_workers=1, batch_size=1) as client:
        began = time.monotonic()
        got = client.query_many(queries, datetime.now(UTC))
        took = time.monotonic() - began
    statuses = [got[name].status for name in sorted(got)]
    assert set(statuses[:5]) <= {SLIStatus.VALUE, SLIStatus.NO_DATA}, statuses
    assert statuses[5:] == [SLIStatus.UNREACHABLE] * 35, statuses
    bad = got["q05"]
    assert "unreachable" in bad.message and bad.query in bad.message
    assert took < 30  # 35 refused connections, each retried once after 0.2 s
    prom.stop()  # idempotent
    assert not folder.exists()
    assert pid is not None and not Path(f"/proc/{pid}").exists()


def test_missing_binary_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(ProviderError, match="binary 'no-such-prometheus' not found") as info:
        EmbeddedPrometheus(tmp_path, binary="no-such-prometheus").start()
    assert "\n" not in str(info.value)


def test_binary_that_does_not_start(tmp_path: Path) -> None:
    fake = tmp_path / "fakeprom"
    fake.write_text("#!/bin/sh\necho 'err: bad flag' >&2\nexit 3\n")
    fake.chmod(0o755)
    began = time.monotonic()
    with pytest.raises(ProviderError, match=r"exited with code 3 before it was ready.*bad flag"):
        EmbeddedPrometheus(tmp_path / "w", binary=str(fake)).start(timeout=30)
    assert time.monotonic() - began < 20  # said when it exited, not after the timeout
    assert list((tmp_path / "w").glob("keptn-prometheus-*")) == []


def test_a_fractional_scrape_interval_starts(tmp_path: Path) -> None:
    """--keptn-scrape-interval=0.5: Prometheus refuses "0.5s" in its config (it said "did not
    become ready" for every stage); the config gives milliseconds."""
    with EmbeddedPrometheus(tmp_path, scrape_interval=0.5) as prom:
        assert prom.folder is not None
        assert "scrape_interval: 500ms" in (prom.folder / "prometheus.yml").read_text()


def test_no_url_no_answer() -> None:
    assert PrometheusSLIProvider().pytest_keptn_get_sli(
        ctx_for(None), ["go_routines"], Window(datetime.now(UTC), datetime.now(UTC)), "canary", None
    ) is None


def test_batched_queries_read_like_single_ones(env: Env) -> None:
    """query_many batches queries into one round trip; each indicator's result must be the
    one a query of its own gives, including the ones that force a fallback."""
    queries = {
        "value": f'sum(http_requests_total{{job="{CANARY}"}})',
        "no_data": 'sum(rate(nothing_here_total[1m]))',
        "several": 'http_requests_total',
        "nan": f'sum(rate(http_requests_total{{job="{CANARY}"}}[1m])) * 0 / 0',
        "goroutines": f'go_goroutines{{job="{JOB}"}}',
        **{f"up_{i}": f'sum(up{{job="{CANARY}"}}) + {i}' for i in range(60)},
    }
    at = env.window.end
    with PrometheusClient(env.prom.url) as client:
        batched = client.query_many(queries, at)
        single = {n: client.query(q, at, metric=n) for n, q in queries.items()}
        # a scalar and bad PromQL make Prometheus refuse the batch: one by one then
        refused = client.query_many({**queries, "scalar": "scalar(vector(7))",
                                     "broken": "sum(rate(x[1m]"}, at)
    for name in queries:
        assert (batched[name].status, batched[name].value, batched[name].query) == (
            single[name].status, single[name].value, single[name].query), name
        assert refused[name].status == single[name].status, name
    assert batched["value"].status is SLIStatus.VALUE and batched["value"].value >= REQUESTS
    assert batched["several"].status is SLIStatus.MULTIPLE
    assert "keptn_sli_index" not in batched["several"].message
    assert batched["up_59"].value == 60.0
    assert (refused["scalar"].status, refused["scalar"].value) == (SLIStatus.VALUE, 7.0)
    assert refused["broken"].status is SLIStatus.QUERY_ERROR and "sum(rate(x[1m]" in refused["broken"].message


def _queries_evaluated(prom: EmbeddedPrometheus) -> float:
    """Prometheus' own live count of evaluated queries, read from its /metrics page."""
    for line in httpx.get(f"{prom.url}/metrics", timeout=5).text.splitlines():
        if line.startswith('prometheus_engine_query_duration_seconds_count{slice="inner_eval"}'):
            return float(line.split()[-1])
    raise AssertionError("no inner_eval counter on /metrics")


def test_identical_queries_are_asked_once(env: Env) -> None:
    """Several indicators over the same PromQL cost one evaluation in Prometheus, and each
    indicator still gets its own result; the same PromQL with aggregation asked is kept apart."""
    same = f'sum(http_requests_total{{job="{CANARY}"}})'
    queries = {"a": same, "b": same, "c": same, "goroutines": f'go_goroutines{{job="{JOB}"}}',
               "several": "http_requests_total", "several_agg": "http_requests_total"}
    at = env.window.end
    # batch_size=1: one HTTP query per distinct indicator, so Prometheus' own counter of
    # evaluated queries says how many were asked
    with PrometheusClient(env.prom.url, batch_size=1) as client:
        before = _queries_evaluated(env.prom)
        got = client.query_many(queries, at, aggregate={"several_agg"})
        after = _queries_evaluated(env.prom)
        single = {n: client.query(q, at, metric=n) for n, q in queries.items()}
    assert after - before == 4  # distinct (query, aggregation) pairs
    assert [got[n].metric for n in queries] == list(queries)
    assert got["a"].status is SLIStatus.VALUE and got["a"].value >= REQUESTS
    assert got["a"].value == got["b"].value == got["c"].value == single["a"].value
    assert got["several"].status is SLIStatus.MULTIPLE
    assert got["several_agg"].status is SLIStatus.VALUE


def test_owner_killed_leaves_no_prometheus(tmp_path: Path) -> None:
    """SIGKILL of the process that started the embedded Prometheus (no atexit, no signal
    handler runs): its watchdog stops Prometheus and removes the temporary folder."""
    script = (
        "import sys, time\n"
        "from pytest_keptn.prometheus.server import EmbeddedPrometheus\n"
        "prom = EmbeddedPrometheus(sys.argv[1]).start()\n"
        "print(prom._proc.pid, prom.folder, flush=True)\n"
        "time.sleep(60)\n"
    )
    owner = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)],
                             stdout=subprocess.PIPE, text=True)
    assert owner.stdout is not None
    pid_text, folder_text = owner.stdout.readline().split()
    prom_pid, folder = int(pid_text), Path(folder_text)
    assert folder.is_dir() and Path(f"/proc/{prom_pid}").exists()
    owner.kill()
    owner.wait(5)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (Path(f"/proc/{prom_pid}").exists() or folder.exists()):
        time.sleep(0.1)
    outlived = Path(f"/proc/{prom_pid}").exists()
    if outlived:  # do not leave it running for the rest of the suite
        os.kill(prom_pid, 9)
    assert not outlived, "Prometheus outlived its owner"
    assert not folder.exists(), "the temporary folder was left behind"
    assert not [p for p in Path("/proc").iterdir() if p.name.isdigit()
                and "_watchdog.py" in _cmdline(p) and f" {prom_pid} " in _cmdline(p)], \
        "the watchdog is still running"


def test_normal_stop_ends_the_watchdog(tmp_path: Path) -> None:
    prom = EmbeddedPrometheus(tmp_path).start()
    watchdog = prom._watchdog
    assert watchdog is not None and watchdog.poll() is None
    prom.stop()
    assert watchdog.poll() is not None


def _cmdline(proc_dir: Path) -> str:
    try:
        return (proc_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_subqueries_go_in_smaller_batches(env: Env) -> None:
    """40 plain indicators are one batch of 40; 40 subqueries two batches of 20 (Prometheus
    spends more CPU on many subqueries in one query): 3 evaluations in Prometheus."""
    plain = {f"p{i}": f'sum(http_requests_total{{job="{CANARY}"}}) + {i}' for i in range(40)}
    sub = {f"s{i}": f'max_over_time(sum(up{{job="{CANARY}"}})[{10 + i}s:1s])' for i in range(40)}
    with PrometheusClient(env.prom.url) as client:
        before = _queries_evaluated(env.prom)
        got = client.query_many({**plain, **sub}, env.window.end)
        after = _queries_evaluated(env.prom)
    assert after - before == 3
    assert {r.status for r in got.values()} == {SLIStatus.VALUE}
    assert got["s39"].value == 1.0 and got["p39"].value >= REQUESTS + 39


MESSAGES_SHIPYARD = """\
apiVersion: spec.keptn.sh/0.2.0
kind: Shipyard
metadata: {name: pod-tato-head}
spec:
  stages:
    - name: hardening
      sequences:
        - name: delivery
          tasks: [{name: evaluation}]
"""
MESSAGES_SLI = """\
spec_version: '1.0'
indicators:
  server_errors: sum(rate(http_requests_total{status="teapot",job="$SERVICE-$PROJECT-$STAGE-canary"}[$DURATION_SECONDS]))/sum(rate(http_requests_total{job="$SERVICE-$PROJECT-$STAGE-canary"}[$DURATION_SECONDS]))
  served: sum(rate(http_requests_total{job="$SERVICE-$PROJECT-$STAGE-canary"}[$DURATION_SECONDS]))
"""
MESSAGES_SLO = """\
spec_version: '0.1.0'
objectives:
  - sli: server_errors
    pass: [{criteria: ['<=0.1']}]
  - sli: served
    pass: [{criteria: ['>=-50%']}]
  - sli: error_rate
    pass: [{criteria: ['<=0.5']}]
total_score: {pass: '90%', warning: '75%'}
"""


@pytest.mark.parametrize("compat", [False, True])
def test_messages_point_at_the_fix(env: Env, pytester: pytest.Pytester, compat: bool) -> None:
    """Issue 13 point 4 and issue 12 point 6, through a real pytest session: an empty ratio
    says how to write it, a relative criterion with nothing to compare with says so in the
    table, and the built-in error_rate is Keptn's exact text under --keptn-compat=0.8.7."""
    folder = pytester.path / "keptn"
    (folder / "hardening" / "helloservice" / "prometheus").mkdir(parents=True)
    (folder / "shipyard.yaml").write_text(MESSAGES_SHIPYARD)
    (folder / "hardening" / "helloservice" / "slo.yaml").write_text(MESSAGES_SLO)
    (folder / "hardening" / "helloservice" / "prometheus" / "sli.yaml").write_text(MESSAGES_SLI)
    end = env.window.end
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--keptn-stage=hardening", "--keptn-deployer=none",
        f"--keptn-prometheus-url={env.prom.url}", "--keptn-state-dir=state",
        f"--keptn-start={Window.keptn_time(end - timedelta(minutes=1))}",
        f"--keptn-end={Window.keptn_time(end)}", *(["--keptn-compat=0.8.7"] if compat else []),
        timeout=120)
    out = result.stdout.str()
    assert result.ret == 1 and "Traceback" not in out, out  # error_rate fails: every status is "success"
    numerator = f'sum(rate(http_requests_total{{status="teapot",job="{CANARY}"}}[60s]))'
    assert ("served" in out and ">=-50% (no earlier evaluation to compare with)" in out), out
    keptn_error_rate = (f"sum(rate(http_requests_total{{job='{CANARY}',status!~'2..'}}[60s]))"
                        f"/sum(rate(http_requests_total{{job='{CANARY}'}}[60s]))")
    if compat:
        assert f"query:    {keptn_error_rate}\n" in out, out
        assert "has no series" not in out  # Keptn counts the empty ratio as 0
    else:
        assert (f"query returned no data: its numerator {numerator} has no series" in out
                and f"write it as ({numerator} or vector(0))" in out
                and "--keptn-compat=0.8.7, which counts an empty result as 0" in out), out
        assert ("query:    (sum(rate(http_requests_total{job='" + CANARY
                + "',status!~'2..'}[60s])) or vector(0))/sum(") in out, out
