from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_keptn.errors import LoadError
from pytest_keptn.load.locust_driver import (
    LocustDriver,
    overrides,
    parse_run_time,
)
from pytest_keptn.model import StageContext

from .conftest import write_locust

MakeCtx = Callable[..., StageContext]
STATUS = re.compile(r"^load: \d+/3s users=\d+ rps=\d+ requests=\d+ failures=\d+ p95=\d+ms$")


def test_locust_is_never_imported_in_this_process() -> None:
    import pytest_keptn.load.locust_driver
    import pytest_keptn.load.provider  # noqa: F401

    assert "locust" not in sys.modules
    assert "gevent" not in sys.modules


@pytest.mark.slow
def test_load_against_helloserver_with_progress(
    make_ctx: MakeCtx, keptn_root: Path, helloserver: str
) -> None:
    write_locust(keptn_root, conf="users = 3\nspawn-rate = 30\nrun-time = 30s\n")
    lines: list[str] = []
    ctx = make_ctx(lines, locust_run_time="3s")  # the setting beats locust.conf's 30s
    result = LocustDriver().pytest_keptn_run_load(ctx, helloserver, {"users": 4}, None)
    assert result is not None
    status = [line for line in lines if STATUS.match(line)]
    assert len(status) >= 2, lines  # at least every 2 s over 3 s
    assert all("\r" not in line for line in lines)
    assert "users=4" in status[-1]  # the task property beats locust.conf
    applied = [line for line in lines if "locust.conf: applied" in line]
    assert len(applied) == 1, lines  # said once
    assert "users = 3" not in applied[0]
    assert "users=3 (overridden: 4), spawn-rate=30, run-time=30s (overridden: 3)" in applied[0]
    assert 2.9 <= result.window.seconds <= 4.0
    assert result.requests > 50 and result.failures == 0
    assert result.rps == pytest.approx(result.requests / result.window.seconds, rel=0.05)
    assert 0 < result.p50_ms <= result.p95_ms <= result.p99_ms
    assert result.details["endpoints"][0]["name"] == "/"
    assert result.details["endpoints"][0]["requests"] == result.requests
    assert result.details["users"] == 4 and result.details["run_time"] == 3.0


@pytest.mark.slow
def test_local_workers(make_ctx: MakeCtx, keptn_root: Path, helloserver: str) -> None:
    write_locust(keptn_root)
    lines: list[str] = []
    ctx = make_ctx(lines, locust_workers=2, locust_users=4, locust_run_time="3s")
    result = LocustDriver().pytest_keptn_run_load(ctx, helloserver, {}, None)
    assert result is not None
    assert result.requests > 50 and result.failures == 0
    assert result.details["workers"] == 2
    assert any("2 workers" in line for line in lines)


def test_no_locustfile_means_no_load(make_ctx: MakeCtx) -> None:
    assert LocustDriver().pytest_keptn_run_load(make_ctx(), "http://127.0.0.1:9", {}, None) is None


def test_crashing_locustfile(make_ctx: MakeCtx, keptn_root: Path) -> None:
    path = write_locust(keptn_root, "import locust\nraise RuntimeError('no config for carts')\n")
    with pytest.raises(LoadError) as info:
        LocustDriver().pytest_keptn_run_load(make_ctx(), "http://127.0.0.1:9", {}, None)
    message = str(info.value)
    assert "\n" not in message
    assert f"locustfile {path} failed to import: RuntimeError: no config for carts" in message


@pytest.mark.slow
def test_refused_host(make_ctx: MakeCtx, keptn_root: Path) -> None:
    from pytest_keptn.system.processes import free_port

    write_locust(keptn_root)
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(LoadError) as info:
        LocustDriver().pytest_keptn_run_load(make_ctx(locust_run_time="1s", locust_users=2), url, {}, None)
    message = str(info.value)
    assert message.startswith(f"every request failed against {url}")
    assert "Connection refused" in message and "locustfile" in message


def test_settings_beat_properties(make_ctx: MakeCtx) -> None:
    # None: the child decides from locust.conf (Locust's parser), else 10 users, 10/s, 10 s
    assert overrides(make_ctx(), {}) == (None, None, None)
    assert overrides(make_ctx(), {"users": 5, "run_time": "1m30s"}) == (5, None, 90.0)
    assert overrides(make_ctx(locust_users=2, locust_spawn_rate=1.5, locust_run_time="2s"),
                     {"users": 5}) == (2, 1.5, 2.0)
    with pytest.raises(LoadError, match="at least 1 user"):
        overrides(make_ctx(), {"users": 0})


TAGGED = """
from locust import FastHttpUser, constant, events, tag, task

@events.init_command_line_parser.add_listener
def _(parser):
    parser.add_argument("--page", default="/missing")

class Visitor(FastHttpUser):
    wait_time = constant(0.01)

    @tag("main")
    @task
    def page(self):
        self.client.get(self.environment.parsed_options.page)

    @tag("other")
    @task
    def health(self):
        self.client.get("/health")
"""


@pytest.mark.slow
def test_locust_conf_is_read_by_locust_as_locust_reads_it(
    make_ctx: MakeCtx, keptn_root: Path, helloserver: str
) -> None:
    conf = ("# as for `locust --config`\nusers = 2\nrun-time = 2s\ntags = [main]\n"
            "page = /\nhost = http://elsewhere.invalid\nweb-port = 9999\n")
    write_locust(keptn_root, TAGGED, conf=conf)
    lines: list[str] = []
    ctx = make_ctx(lines)
    result = LocustDriver().pytest_keptn_run_load(ctx, helloserver, {}, None)
    assert result is not None
    # tags and the locustfile's own --page argument applied: only GET / ran, against the canary
    assert [e["name"] for e in result.details["endpoints"]] == ["/"]
    assert result.failures == 0 and result.details["users"] == 2
    assert result.details["run_time"] == 2.0 and result.window.seconds < 3.5
    applied = [line for line in lines if "locust.conf: applied" in line]
    assert len(applied) == 1, lines
    assert "users=2, run-time=2s, tags=main, page=/" in applied[0]
    assert "not applied: host (the host is the canary's URL)" in applied[0]
    assert "web-port (no web UI: the load runs headless)" in applied[0]
    ctx.processes.cleanup()  # the runner writes its HTML report after its result
    report = Path(result.details["html_report"])
    assert report.parent == Path(result.details["log"]).parent and report.suffix == ".html"
    assert "locust" in report.read_text(encoding="utf-8").lower()


def test_a_locust_conf_locust_cannot_read_names_the_file(
    make_ctx: MakeCtx, keptn_root: Path
) -> None:
    write_locust(keptn_root, conf="users = many\n")
    conf = keptn_root / "hardening" / "helloservice" / "locust" / "locust.conf"
    with pytest.raises(LoadError) as info:
        LocustDriver().pytest_keptn_run_load(make_ctx(), "http://127.0.0.1:9", {}, None)
    message = str(info.value)
    assert f"{conf}: Locust cannot read it:" in message and "many" in message, message
    assert "\n" not in message


def test_run_time_parsing() -> None:
    assert parse_run_time("10s") == 10
    assert parse_run_time("1h2m3s") == 3723
    assert parse_run_time(45) == 45
    with pytest.raises(LoadError, match="not a duration"):
        parse_run_time("soon")
    with pytest.raises(LoadError, match="must be positive"):
        parse_run_time("0s")


@pytest.mark.slow
def test_live_baseline_splits_users_and_records_samples_per_side(
    make_ctx: MakeCtx, keptn_root: Path, helloserver: str
) -> None:
    from pytest_keptn.load.provider import INDICATORS, live_samples

    from .conftest import start_helloserver

    baseline, baseline_url = start_helloserver("v0.1.1")
    try:
        write_locust(keptn_root)
        lines: list[str] = []
        ctx = make_ctx(lines, locust_users=3, locust_run_time="3s")  # odd: 2 per side
        result = LocustDriver().pytest_keptn_run_load(ctx, helloserver, {}, baseline_url)
        served = {  # what each server counted itself: the load really was split
            url: _served(url) for url in (helloserver, baseline_url)
        }
    finally:
        from pytest_keptn.system import processes as procs

        procs.stop_pid(baseline.pid)
        baseline.wait()
    assert result is not None
    assert any(
        "4 users" in line and f"baseline at {baseline_url} (half each)" in line for line in lines
    ), lines
    side = result.details["baseline"]
    # each server served its side's recorded requests (plus those begun as the users stopped)
    for url, recorded in ((helloserver, result.requests), (baseline_url, side["requests"])):
        assert recorded <= served[url] <= recorded * 1.05 + 5, (url, served, recorded)
    # the result (and so every locust_* SLI) is the canary's: both sides were loaded alike
    assert result.requests > 30 and side["requests"] > 30
    assert result.details["all_requests"] >= result.requests + side["requests"]
    assert 0.6 < result.requests / side["requests"] < 1.0 / 0.6
    samples = live_samples(result, list(INDICATORS)).samples
    assert set(samples) == set(INDICATORS)
    times = samples["locust_p95_ms"]
    assert len(times.canary.values) == result.requests
    assert len(times.baseline.values) == side["requests"]
    rate = samples["locust_failure_ratio"]
    assert (rate.canary.trials, rate.canary.events) == (result.requests, 0)
    per_second = samples["locust_rps"].canary.values  # whole seconds of the window only
    assert len(per_second) == 3 and sum(per_second) <= result.requests
    assert live_samples(None, ["locust_p95_ms"]).missing == {
        "locust_p95_ms": "the load recorded no per-request samples of a baseline"
    }


@pytest.mark.slow
def test_live_baseline_needs_the_local_runner(
    make_ctx: MakeCtx, keptn_root: Path, helloserver: str
) -> None:
    write_locust(keptn_root)
    ctx = make_ctx(locust_workers=1, locust_users=2, locust_run_time="2s")
    result = LocustDriver().pytest_keptn_run_load(ctx, helloserver, {}, "http://127.0.0.1:9")
    assert result is not None and result.failures == 0  # nothing went to the baseline
    assert result.details["live_unavailable"] == "Locust workers cannot record per-request samples"
    assert "samples" not in result.details


def _served(url: str) -> int:
    import urllib.request

    with urllib.request.urlopen(url + "/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in text.splitlines()
        if line.startswith("http_server_request_duration_seconds_count") and 'route="/"' in line
    )


@pytest.mark.slow
def test_a_prepared_runner_takes_the_next_load(
    make_ctx: MakeCtx, keptn_root: Path, helloserver: str
) -> None:
    """pytest_keptn_prepare_load starts a runner that imports Locust ahead of the test task;
    the next load runs in it (same settings, same result), and its log gets the stderr."""
    from pytest_keptn.load import locust_driver

    write_locust(keptn_root, conf="users = 2\nspawn-rate = 20\nrun-time = 2s\n")
    lines: list[str] = []
    ctx = make_ctx(lines)
    driver = LocustDriver()
    driver.pytest_keptn_prepare_load(ctx)
    assert len(locust_driver._SPARE) == 1
    spare = locust_driver._SPARE[0][1]
    result = driver.pytest_keptn_run_load(ctx, helloserver, {}, None)
    assert not locust_driver._SPARE  # used
    ctx.processes.cleanup()  # it writes Locust's HTML report after its result, then quits
    assert spare.wait(0) == 0  # done, by itself
    assert Path(str(result.details["html_report"])).stat().st_size > 0
    assert result is not None and result.requests > 10 and result.failures == 0
    assert result.details["users"] == 2 and result.details["run_time"] == 2.0
    assert Path(str(result.details["log"])).exists()
