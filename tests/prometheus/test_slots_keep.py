"""Pre-registered target slots and a kept embedded Prometheus (issue 17), against the real
binary: a slot is scraped before its build listens, so registering the build there changes
nothing Prometheus has to discover; a kept Prometheus outlives its session, is reused by the
next, and stops after its idle time, on ``pytest_keptn stop``, or after a killed session."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from pytest_keptn.model import TargetSlot
from pytest_keptn.prometheus import keep
from pytest_keptn.prometheus.server import EmbeddedPrometheus, _job_file
from pytest_keptn.system.processes import process_start_ticks

pytestmark = pytest.mark.slow

CANARY = "helloservice-pod-tato-head-hardening-canary"
TRAFFIC = "helloservice-pod-tato-head-hardening"
LABELS = {"keptn_stage": "hardening", "keptn_deployment": "canary", "tag": "v1"}


class _Metrics(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        body = b"demo_up 1\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Broken(_Metrics):
    def do_GET(self) -> None:
        self.send_response(500)
        self.send_header("Content-Length", "0")
        self.end_headers()


def _serve(port: int, handler: type[BaseHTTPRequestHandler] = _Metrics) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _active(prom: EmbeddedPrometheus) -> list[dict[str, object]]:
    answer = httpx.get(prom.url + "/api/v1/targets", params={"state": "active"}, timeout=5)
    return list(answer.json()["data"]["activeTargets"])


def _wait(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not callable(condition) or not condition():
        assert time.monotonic() < deadline, f"not within {timeout:g}s: {what}"
        time.sleep(0.05)


@pytest.fixture
def prom(tmp_path: Path) -> Iterator[EmbeddedPrometheus]:
    server = EmbeddedPrometheus(tmp_path).spawn()
    server.add_slots([TargetSlot(jobs=(CANARY, TRAFFIC), labels=LABELS)])
    server.wait_started()
    try:
        yield server
    finally:
        server.stop()


def _slot_address(prom: EmbeddedPrometheus) -> str:
    assert prom.folder is not None
    entries = json.loads((prom.folder / "slots.json").read_text())
    return str(next(e["address"] for e in entries if not e["claimed"]))


def test_a_slot_is_scraped_before_its_build_listens(prom: EmbeddedPrometheus) -> None:
    address = _slot_address(prom)
    # discovered with the labels the build will have, down while nothing listens
    _wait(lambda: any(t["scrapeUrl"] == f"http://{address}/metrics" and t["labels"]["job"] == CANARY
                      and t["health"] == "down" for t in _active(prom)), 30, "slot discovered")
    assert prom.wait_targets_up(timeout=0.1) is None  # a free slot is not waited for
    port = prom.slot(CANARY, LABELS)
    assert port is not None and address.endswith(f":{port}")
    files = {job: (prom.sd_dir / _job_file(job)).stat().st_mtime_ns for job in (CANARY, TRAFFIC)}
    server = _serve(port)
    try:
        prom.register(CANARY, address, LABELS)
        prom.register(TRAFFIC, address, LABELS)
        # nothing for Prometheus to discover: the files are as they were
        assert {job: (prom.sd_dir / _job_file(job)).stat().st_mtime_ns for job in files} == files
        prom.wait_targets_up(addresses=[address], timeout=30)
        spare = prom.slot(CANARY, LABELS)  # claimed: the next build gets the spare armed then
        assert spare is not None and spare != port
    finally:
        server.shutdown()
        server.server_close()


def test_the_load_starts_before_the_first_scrape_and_is_checked_after(
        prom: EmbeddedPrometheus) -> None:
    """A discovered slot whose build listens now is scraped within one interval: the window
    may start at once (ending it just after a scrape would cost the freshness wait a whole
    interval); after the load the target must be up, else the load says so."""
    from pytest_keptn.errors import ProviderError

    address = _slot_address(prom)
    _wait(lambda: any(t["scrapeUrl"] == f"http://{address}/metrics" and t["health"] == "down"
                      for t in _active(prom)), 30, "slot discovered")
    port = prom.slot(CANARY, LABELS)
    assert port is not None
    spare = _slot_address(prom)
    servers = [_serve(port)]
    try:
        prom.register(CANARY, address, LABELS)
        prom.wait_scraped([address], timeout=0.5)  # discovered: no wait for the next scrape
        prom.check_scraped([address])  # it is up (waiting for a scrape if none came yet)
        assert any(t["scrapeUrl"] == f"http://{address}/metrics" and t["health"] == "up"
                   for t in _active(prom))
        second = prom.slot(CANARY, LABELS)  # the spare: its /metrics fails
        assert second is not None and spare.endswith(f":{second}")
        servers.append(_serve(second, _Broken))
        prom.register(CANARY, spare, LABELS)
        # scraped with the broken build's answer (wait_scraped would return, or not, depending
        # on whether that scrape came before its first poll: a race, not what is tested here)
        _wait(lambda: any(t["scrapeUrl"] == f"http://{spare}/metrics"
                          and "500" in (t.get("lastError") or "") for t in _active(prom)),
              30, "the spare scraped with its 500")
        with pytest.raises(ProviderError, match=r"not up at the end of the load:.*500"):
            prom.check_scraped([spare])
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def test_a_slot_whose_port_is_taken_is_dropped(prom: EmbeddedPrometheus) -> None:
    address = _slot_address(prom)
    with socket.socket() as other:
        other.bind(("127.0.0.1", int(address.rsplit(":", 1)[1])))
        other.listen()
        assert prom.slot(CANARY, LABELS) is None  # the deployer takes any port instead
    assert not (prom.sd_dir / _job_file(CANARY)).exists()
    assert not (prom.sd_dir / _job_file(TRAFFIC)).exists()


def test_claiming_a_slot_arms_the_next_builds_spare(prom: EmbeddedPrometheus) -> None:
    first = _slot_address(prom)
    assert prom.slot(CANARY, LABELS) is not None
    second = _slot_address(prom)  # armed at the claim: discovered before the next build
    assert second != first
    prom.register(CANARY, first, LABELS)
    prom.register(TRAFFIC, first, {**LABELS, "keptn_deployment": "primary"})  # released
    prom.unregister(CANARY)
    assert _slot_address(prom) == second  # no new slot: the spare is the next build's
    canary = json.loads((prom.sd_dir / _job_file(CANARY)).read_text())
    assert [g["targets"] for g in canary] == [[second]]
    traffic = {g["targets"][0]: g["labels"]["keptn_deployment"]
               for g in json.loads((prom.sd_dir / _job_file(TRAFFIC)).read_text())}
    assert traffic == {first: "primary", second: "canary"}


def _count(prom: EmbeddedPrometheus, selector: str, start: float, end: float) -> int:
    """How many samples ``selector`` has in (start, end]."""
    answer = httpx.get(prom.url + "/api/v1/query", timeout=5, params={
        "query": f"count_over_time({selector}[{max(int((end - start) * 1000), 1)}ms])",
        "time": f"{end:.3f}"}).json()["data"]["result"]
    return sum(int(r["value"][1]) for r in answer)


def test_what_a_target_scraped_while_not_serving_its_job_is_hidden(
        prom: EmbeddedPrometheus) -> None:
    """A released canary is still scraped as the canary until Prometheus' discovery tick, and
    an empty slot (up 0) until a build claims it: the queries see neither (issue 17: the
    next run's canary takes the spare slot at once, within the old canary's tick)."""
    first = _slot_address(prom)
    port = prom.slot(CANARY, LABELS)
    assert port is not None
    spare = _slot_address(prom)
    armed = time.time()
    servers = [_serve(port)]
    try:
        prom.register(CANARY, first, LABELS)
        prom.wait_targets_up(addresses=[first], timeout=30)
        _wait(lambda: any(t["scrapeUrl"] == f"http://{spare}/metrics" and t["health"] == "down"
                          for t in _active(prom)), 30, "spare discovered")
        released = time.time()
        prom.replace(TRAFFIC, first, {**LABELS, "keptn_deployment": "primary"})
        prom.unregister(CANARY)
        second = prom.slot(CANARY, LABELS)
        assert second is not None and spare.endswith(f":{second}")
        claimed = time.time()
        servers.append(_serve(second))
        prom.register(CANARY, spare, LABELS)
        prom.wait_targets_up(addresses=[spare], timeout=30)
        # the old canary is scraped as the canary until the discovery tick applies its
        # release: the call waits until its samples since then can be deleted
        assert prom.hide_unserved([CANARY]) == ""
        now = time.time()
        assert not any(t["scrapeUrl"] == f"http://{first}/metrics" and t["labels"]["job"] == CANARY
                       for t in _active(prom))
        old = f'{{job="{CANARY}",instance="{first}"}}'
        new = f'{{job="{CANARY}",instance="{spare}"}}'
        assert _count(prom, "demo_up" + old, released, now) == 0
        assert _count(prom, "up" + old, released, now) == 0
        assert _count(prom, "demo_up" + old, armed, released) > 0  # its own time stays
        assert _count(prom, "up" + new, armed, claimed) == 0  # the empty slot's up 0
        assert _count(prom, "demo_up" + new, claimed, now) > 0
        # an instant query (5 min lookback) does not find the old canary's sample from before
        # its release either: its series ended with Prometheus' staleness marker
        answer = httpx.get(prom.url + "/api/v1/query", timeout=5, params={
            "query": f"up{old}", "time": f"{now:.3f}"}).json()["data"]["result"]
        assert answer == []
        assert prom.folder is not None
        left = json.loads((prom.folder / "unserved.json").read_text())
        assert not any(e["instance"] == first for e in left)  # done: no longer scraped
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def _alive(pid: int) -> bool:
    return process_start_ticks(pid) is not None


_OWNER = """\
import os, sys, time
from pathlib import Path
from pytest_keptn.prometheus.server import EmbeddedPrometheus
prom = EmbeddedPrometheus(Path(sys.argv[1]), keep_seconds=float(sys.argv[2])).start()
prom.publish()
print(prom.pid, prom.folder, flush=True)
if sys.argv[3] == "end":
    prom.close()
else:
    time.sleep(120)
"""


def _owner(workdir: Path, keep_seconds: float, how: str) -> tuple[subprocess.Popen[str], int, Path]:
    owner = subprocess.Popen([sys.executable, "-c", _OWNER, str(workdir), str(keep_seconds), how],
                             stdout=subprocess.PIPE, text=True)
    assert owner.stdout is not None
    pid, folder = owner.stdout.readline().split()
    return owner, int(pid), Path(folder)


def _kill_leftover(pid: int) -> None:
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)


def test_a_kept_prometheus_is_reused_and_stopped_by_the_stop_command(tmp_path: Path) -> None:
    owner, pid, folder = _owner(tmp_path, 600, "end")
    try:
        assert owner.wait(30) == 0
        assert _alive(pid), "a kept Prometheus stopped with its session"
        again = EmbeddedPrometheus.reuse(tmp_path, keep_seconds=600)
        assert again is not None and again.pid == pid and again.folder == folder
        assert httpx.get(again.url + "/-/ready", timeout=5).status_code == 200
        again.close()  # the second session ends: still kept
        assert _alive(pid)
        assert EmbeddedPrometheus.reuse(tmp_path, scrape_interval=2.0, keep_seconds=600) is None
        said = keep.stop_kept(tmp_path)
        assert said is not None and str(pid) in said
        assert not _alive(pid) and not folder.exists()
        assert not (tmp_path / keep.RECORD).exists()
        assert EmbeddedPrometheus.reuse(tmp_path, keep_seconds=600) is None
    finally:
        _kill_leftover(pid)


def test_a_kept_prometheus_stops_after_the_idle_time(tmp_path: Path) -> None:
    owner, pid, folder = _owner(tmp_path, 2, "end")
    try:
        assert owner.wait(30) == 0
        _wait(lambda: not _alive(pid) and not folder.exists(), 60, "stopped after 2 s idle")
        assert not (tmp_path / keep.RECORD).exists()
    finally:
        _kill_leftover(pid)


def test_a_killed_session_lets_go_of_a_kept_prometheus(tmp_path: Path) -> None:
    """SIGKILL of the session using it: no atexit runs, nobody says it is done; the watchdog
    sees the session die and stops Prometheus once it has been idle that long since."""
    owner, pid, folder = _owner(tmp_path, 2, "sleep")
    try:
        assert _alive(pid) and (folder / "users" / str(owner.pid)).exists()
        owner.kill()
        owner.wait(10)
        _wait(lambda: not _alive(pid) and not folder.exists(), 60, "stopped after its user died")
        assert not (tmp_path / keep.RECORD).exists()
    finally:
        _kill_leftover(pid)


def test_in_use_it_is_not_stopped(tmp_path: Path) -> None:
    """A second session that joined keeps it running past the idle time of the first."""
    owner, pid, folder = _owner(tmp_path, 1, "sleep")
    try:
        second = EmbeddedPrometheus.reuse(tmp_path, keep_seconds=1)
        assert second is not None and second.pid == pid
        owner.kill()
        owner.wait(10)
        _wait(lambda: not (folder / "users" / str(owner.pid)).exists(), 30, "the watchdog saw it")
        idle = (folder / "idle").stat().st_mtime
        _wait(lambda: time.time() > idle + 3, 10, "past the idle time")
        assert _alive(pid), "stopped while a session used it"
        second.close()
        _wait(lambda: not _alive(pid) and not folder.exists(), 60, "stopped after the second")
    finally:
        _kill_leftover(pid)
