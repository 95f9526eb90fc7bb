"""The freshness wait that reads each target's scrape schedule (the embedded Prometheus, whose
scrape interval is known): it ends before the next scrape when that is due after the window's
end, waits for a scrape that began before the end, and gives exactly the data a wait for a
sample after the end gives."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pytest_keptn.errors import ProviderError
from pytest_keptn.model import SLIStatus
from pytest_keptn.prometheus.client import PrometheusClient
from pytest_keptn.prometheus.freshness import next_scrape_due, read_schedules, settled
from pytest_keptn.prometheus.server import EmbeddedPrometheus

# ---- the rule, on sample times --------------------------------------------------------------


def test_the_next_scrape_is_due_one_interval_after_the_schedule() -> None:
    assert next_scrape_due([10.397, 11.397, 12.397], 1.0) == pytest.approx(13.397)
    # a late scrape is stamped late, never early: the schedule is the earliest phase
    assert next_scrape_due([10.397, 11.397, 12.401], 1.0) == pytest.approx(13.397)
    assert next_scrape_due([10.401, 11.397, 12.397], 1.0) == pytest.approx(13.397)
    # a skipped scrape keeps the phase
    assert next_scrape_due([9.397, 11.397], 1.0) == pytest.approx(12.397)
    # phases near the interval's edge (x.999 and x+1.000 are 1 ms apart, not 999)
    assert next_scrape_due([10.999, 12.000, 13.000], 1.0) == pytest.approx(13.999)


@pytest.mark.parametrize("samples,interval", [
    ([12.397], 1.0),  # one sample says nothing of a schedule
    ([10.0, 10.5, 11.0], 1.0),  # scraped twice as often as said
    ([10.0, 11.3, 12.0], 1.0),  # off any schedule at 1 s
    ([10.0, 11.0], 0.0),
])
def test_no_schedule(samples: list[float], interval: float) -> None:
    assert next_scrape_due(samples, interval) is None


@pytest.mark.parametrize("end,expected", [
    (12.397, True),  # the newest sample is at the end
    (12.0, True),  # ... or after it
    (13.30, True),  # the next scrape is due after the end: nothing more at or before it
    (13.35, False),  # due 47 ms after the end: within the margin
    (13.397, False),  # due at the end
    (13.45, False),  # due before the end: that scrape may still be under way
    (15.0, False),
])
def test_settled(end: float, expected: bool) -> None:
    assert settled([10.397, 11.397, 12.397], end, 1.0) is expected


def test_without_a_known_interval_only_a_sample_at_or_after_the_end_settles() -> None:
    assert settled([10.397, 11.397, 12.397], 13.3, None) is False
    assert settled([10.397, 11.397, 12.397], 12.3, None) is True
    assert settled([], 1.0, 1.0) is False
    assert settled([10.0, 11.3, 12.0], 12.5, 1.0) is False  # off schedule: wait for a sample


def test_a_job_is_settled_when_every_up_target_is() -> None:
    def series(job: str, times: list[float], up: str = "1") -> dict[str, object]:
        return {"metric": {"job": job}, "values": [[t, up] for t in times]}

    got = read_schedules([
        series("a", [10.2, 11.2, 12.2]),
        series("a", [10.9, 11.9, 12.9]),  # due 13.9
        series("a", [10.5, 11.5, 12.5], up="0"),  # an empty slot: not the job's data
        series("b", [10.5, 11.5, 12.5], up="0"),  # nothing up: every target counts
        series("c", []),
    ], 13.18, 1.0)  # a's first target is due 20 ms after the end
    assert got == {"a": (12.2, False), "b": (12.5, True)}
    assert read_schedules([series("a", [10.2, 11.2, 12.2]), series("a", [10.9, 11.9, 12.9])],
                          12.5, 1.0)["a"] == (12.2, True)


# ---- a real Prometheus ----------------------------------------------------------------------

INTERVAL = 3.0  # long enough that "before the next scrape" has seconds to spare
SLOW = 0.8  # seconds the slow target takes to answer a scrape
FAST_JOB, SLOW_JOB = "fresh-fast", "fresh-slow"


@dataclass
class Env:
    prom: EmbeddedPrometheus
    fast: str
    slow: str


def _metrics_server(delay: float) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            time.sleep(delay)
            body = b"# TYPE thing gauge\nthing 1\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    if shutil.which("prometheus") is None:
        pytest.skip("prometheus binary not installed")
    servers = [_metrics_server(0.0), _metrics_server(SLOW)]
    fast, slow = (f"127.0.0.1:{s.server_address[1]}" for s in servers)
    prom = EmbeddedPrometheus(tmp_path_factory.mktemp("prom"), scrape_interval=INTERVAL)
    try:
        prom.start()
        prom.register(FAST_JOB, fast)
        prom.register(SLOW_JOB, slow)
        prom.wait_targets_up([FAST_JOB, SLOW_JOB], timeout=30)
        env = Env(prom, fast, slow)
        with PrometheusClient(prom.url) as client:
            for job in (FAST_JOB, SLOW_JOB):
                _schedule(client, job)  # a schedule to read
        yield env
    finally:
        prom.stop()
        for s in servers:
            s.shutdown()


def _samples(client: PrometheusClient, job: str, at: datetime | None = None) -> list[float]:
    """``job``'s ``up`` sample times of the last 20 s before ``at`` (default now)."""
    moment = at or datetime.now(UTC)
    response = client.post("/api/v1/query", {"query": f'up{{job="{job}"}}[20s]',
                                             "time": f"{moment.timestamp():.3f}"},
                           time.monotonic() + 5)
    result = response.json()["data"]["result"]
    return [float(v[0]) for v in result[0]["values"]] if result else []


def _schedule(client: PrometheusClient, job: str) -> float:
    """When ``job``'s next scrape is due, once its samples show a schedule (a few scrapes after
    its discovery; a scrape Prometheus started late on a busy machine hides it for a while)."""
    deadline = time.monotonic() + 60
    while True:
        due = next_scrape_due(_samples(client, job), INTERVAL)
        if due is not None:
            return due
        assert time.monotonic() < deadline, _samples(client, job)
        time.sleep(0.2)


def _sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.time()))


def _seen_at(client: PrometheusClient, job: str, at: datetime) -> tuple[float, float]:
    """What a query at ``at`` sees of ``job``: its newest sample's time and the samples in the
    minute before."""
    got = [client.query(q, at, metric=job) for q in (
        f'timestamp(up{{job="{job}"}})', f'count_over_time(up{{job="{job}"}}[1m])')]
    assert all(g.status is SLIStatus.VALUE for g in got), [g.message for g in got]
    return got[0].value, got[1].value


@pytest.mark.slow
def test_the_wait_ends_before_the_next_scrape_when_it_is_due_after_the_end(env: Env) -> None:
    with PrometheusClient(env.prom.url) as client:
        for _attempt in range(5):
            due = _schedule(client, FAST_JOB)
            # a window ending mid-interval: the next scrape is due 2.5 s after it
            end = due - INTERVAL + 0.5
            while end < time.time() + 0.05:
                end += INTERVAL
            _sleep_until(end)
            after = datetime.fromtimestamp(end, UTC)
            client.wait_fresh([FAST_JOB], after, timeout=10, interval=INTERVAL)
            newest = _samples(client, FAST_JOB)[-1]
            if next_scrape_due(_samples(client, FAST_JOB, after), INTERVAL) is None:
                continue  # a scrape Prometheus started late hid the schedule: the wait fell back
            # it returned with the newest sample still before the end: it did not wait for
            # the scrape after the end, which a query at the end cannot see
            assert newest < end
            seen = _seen_at(client, FAST_JOB, after)
            # without the interval it waits for a sample after the end; the data at the end
            # is the same
            client.wait_fresh([FAST_JOB], after, timeout=10)
            assert _samples(client, FAST_JOB)[-1] >= end
            assert _seen_at(client, FAST_JOB, after) == seen
            return
        pytest.fail("the samples showed no schedule in 5 windows")


@pytest.mark.slow
def test_the_wait_waits_for_a_scrape_that_began_before_the_end(env: Env) -> None:
    """The slow target answers a scrape 0.8 s after it began; a window that ends 0.3 s into
    such a scrape must wait for its sample, which Prometheus stores with the scrape's start."""
    with PrometheusClient(env.prom.url) as client:
        due = _schedule(client, SLOW_JOB)
        while due + 0.3 < time.time():
            due += INTERVAL
        end = due + 0.3
        _sleep_until(end)
        after = datetime.fromtimestamp(end, UTC)
        client.wait_fresh([SLOW_JOB], after, timeout=10, interval=INTERVAL)
        seen = _seen_at(client, SLOW_JOB, after)
        # without the interval it waits for the scrape after the end; the data at the end is
        # the same: the scrape under way at the end was waited for
        client.wait_fresh([SLOW_JOB], after, timeout=10)
        assert _seen_at(client, SLOW_JOB, after) == seen
        began = [t for t in _samples(client, SLOW_JOB) if due - 0.001 <= t <= end]
        if began:  # (it always has, unless Prometheus started that scrape 0.3 s late)
            assert seen[0] == pytest.approx(began[-1], abs=0.0005)


@pytest.mark.slow
def test_a_stale_and_an_unscraped_job_are_named(env: Env) -> None:
    with PrometheusClient(env.prom.url) as client:
        future = datetime.now(UTC).replace(year=datetime.now(UTC).year + 1)
        with pytest.raises(ProviderError) as info:
            client.wait_fresh([FAST_JOB, "fresh-nobody"], future, timeout=1, interval=INTERVAL)
    message = str(info.value)
    assert f"for job(s) {FAST_JOB} within 1s" in message
    assert "no up series for job(s) fresh-nobody" in message

