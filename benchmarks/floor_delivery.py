"""The floor of ``bench_delivery.py``: the same three blue/green stages done by hand, as fast
as a script that knows everything in advance honestly can.

It starts Prometheus first, with every canary's target already in its file_sd file (so no
stage waits for discovery but the first, for Prometheus' first tick), then per stage: starts
the canary and Locust at once (Locust's start-up hidden in the waits; it holds its load until
told to go), waits for the canary's health and its target's discovery (not its first scrape:
see below), lets the load run, checks the target was scraped up, waits for a sample after the
window's end (polling every 50 ms; with ``--freshness=schedule``, by the plugin's rule in
``pytest_keptn/prometheus/freshness.py`` instead: until each target's next scrape is due after
the end), asks the stage's four SLI queries over
one HTTP client, scores them against the SLO's fixed criteria, and "releases" (the canary stays
as the primary). Prints per-stage finish times and the wall time as ``FLOOR`` lines.

Usage: ``python benchmarks/floor_delivery.py PROJECT_DIR [--load 10] [--freshness sample]`` (a project made by
``delivery_project.make_project``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

T0 = time.monotonic()

import httpx  # noqa: E402  (after T0: the import is part of the floor's cost)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from delivery_project import PROJECT, SERVICE, STAGES, TAG  # noqa: E402

from pytest_keptn.prometheus.freshness import read_schedules, schedule_query  # noqa: E402

GO_LOCUSTFILE = """\
import os, time
from locust import events
from locustfile import *  # noqa: F401,F403  the stage's own user classes

@events.init.add_listener
def _wait_for_go(environment, **kwargs):
    while not os.path.exists(os.environ["FLOOR_GO"]):
        time.sleep(0.01)
"""

QUERIES = {
    "response_time": 'sum(rate(http_server_request_duration_seconds_sum{{method="GET",route="/",'
                     'status_code="200",job="{canary}"}}[{d}s])/rate(http_server_request_duration'
                     '_seconds_count{{method="GET",route="/",status_code="200",job="{canary}"}}[{d}s]))',
    "requests": 'http_requests_total{{status="success"}}',
    "go_routines": 'go_goroutines{{job="{traffic}"}}',
    "throughput": 'sum(rate(http_requests_total{{status="success"}}[{d}s]))',
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def poll(what: str, check: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if callable(check) and check():
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"floor: {what} not within {timeout:g}s")
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("project", type=Path)
    parser.add_argument("--load", type=float, default=10.0)
    parser.add_argument("--freshness", choices=("sample", "schedule"), default="sample",
                        help="wait for a sample at or after the window's end (the floor issue 17 "
                             "set), or the plugin's rule since: until each target's next scrape "
                             "is due after the end")
    args = parser.parse_args()
    project: Path = args.project.resolve()
    work = Path(tempfile.mkdtemp(prefix="floor-"))
    ports = {stage: free_port() for stage in STAGES}
    jobs = {stage: (f"{SERVICE}-{PROJECT}-{stage}-canary", f"{SERVICE}-{PROJECT}-{stage}")
            for stage in STAGES}
    groups = [{"targets": [f"127.0.0.1:{ports[s]}"], "labels": {"job": job}}
              for s in STAGES for job in jobs[s]]
    (work / "sd.json").write_text(json.dumps(groups))
    (work / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n  - job_name: floor\n"
        f"    file_sd_configs: [{{files: [{json.dumps(str(work / 'sd.json'))}]}}]\n")
    prom_port = free_port()
    procs: list[subprocess.Popen[bytes]] = []
    procs.append(subprocess.Popen(
        [shutil.which("prometheus") or "prometheus", f"--config.file={work / 'prometheus.yml'}",
         f"--storage.tsdb.path={work / 'data'}", f"--web.listen-address=127.0.0.1:{prom_port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
    prom = f"http://127.0.0.1:{prom_port}"
    http = httpx.Client(timeout=5.0)
    finished: list[float] = []
    try:
        for stage in STAGES:
            canary, traffic = jobs[stage]
            port = ports[stage]
            host = f"http://127.0.0.1:{port}"
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "helloserver", "--port", str(port), "--tag", TAG],
                cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True))
            locust_dir = project / "keptn" / stage / SERVICE / "locust"
            go = work / f"go-{stage}"
            (locust_dir / "floor_go.py").write_text(GO_LOCUSTFILE)
            locust = subprocess.Popen(
                [sys.executable, "-m", "locust", "-f", "floor_go.py", "--headless", "-u", "10",
                 "-r", "10", "-t", f"{args.load:g}s", "--host", host, "--only-summary",
                 "--skip-log-setup"],
                cwd=locust_dir, env=dict(os.environ, FLOOR_GO=str(go)),
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            procs.append(locust)
            poll("Prometheus ready", lambda: http.get(prom + "/-/ready").status_code == 200)
            poll(f"{stage} canary health",
                 lambda host=host: http.get(host + "/health").status_code == 200)

            def scraped(addr: str = f"127.0.0.1:{port}", names: tuple[str, ...] = (canary, traffic),
                        up: bool = False) -> bool:
                active = http.get(prom + "/api/v1/targets", params={"state": "active"}).json()
                found = {t["labels"]["job"] for t in active["data"]["activeTargets"]
                         if t["labels"]["instance"] == addr and (t["health"] == "up" or not up)}
                return set(names) <= found

            # discovered, and the canary answers: its next scrape (within 1 s) is in the window;
            # waiting for that scrape would end the window just after one (a whole interval of
            # freshness wait). Checked up after the window.
            poll(f"{stage} discovery", scraped)
            go.touch()
            start = time.time()
            locust.wait()
            end = start + args.load
            poll(f"{stage} scraped up", lambda: scraped(up=True), timeout=5.0)
            if args.freshness == "schedule":
                # the plugin's rule (prometheus/freshness.py): each target has a sample at or
                # after the end, or its next scrape is due after it
                fresh = schedule_query([canary, traffic], 1.0)

                def is_fresh(fresh: str = fresh, end: float = end) -> bool:
                    result = http.post(prom + "/api/v1/query", data={"query": fresh}).json()
                    jobs = read_schedules(result["data"]["result"], end, 1.0)
                    return len(jobs) == 2 and all(ok for _, ok in jobs.values())
            else:  # a sample at or after the end for both jobs
                fresh = f'max by (job) (timestamp(up{{job=~"{canary}|{traffic}"}}))'

                def is_fresh(fresh: str = fresh, end: float = end) -> bool:
                    result = http.post(prom + "/api/v1/query", data={"query": fresh}).json()
                    stamps = [float(r["value"][1]) for r in result["data"]["result"]]
                    return len(stamps) == 2 and min(stamps) >= end

            poll(f"{stage} fresh samples", is_fresh)
            d = max(1, round(end - start))
            texts = {n: q.format(canary=canary, traffic=traffic, d=d) for n, q in QUERIES.items()}
            at = f"{end:.3f}"
            with ThreadPoolExecutor(4) as pool:
                answers = dict(zip(texts, pool.map(
                    lambda q, at=at: http.post(prom + "/api/v1/query",
                                               data={"query": q, "time": at}).json(),
                    texts.values()), strict=True))
            values = {n: float(a["data"]["result"][0]["value"][1]) if a["data"]["result"] else None
                      for n, a in answers.items()}
            passed = (values["response_time"] or 0) <= 1 and (values["go_routines"] or 0) <= 100
            finished.append(time.monotonic() - T0)
            print(f"FLOOR {stage} finished at {finished[-1]:.2f}s ({'pass' if passed else 'fail'})",
                  flush=True)
    finally:
        http.close()
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(work, ignore_errors=True)
    print(f"FLOOR wall {time.monotonic() - T0:.3f}", flush=True)


if __name__ == "__main__":
    main()
