"""What a backend of your own costs a gate: the deployment wait and the freshness wait with
``--keptn-prometheus-file-sd``, for VictoriaMetrics flag settings and for Prometheus.

Per round, a fresh helloserver (a new canary on a new port) is registered in the file_sd file
the backend reads, then:

* ``confirm_s``: the deployment task's wait until the backend reports the canary's job up
  (``FileSDTargets.confirm``, bounded by ``--deploy-timeout`` like ``--keptn-deploy-timeout``);
* ``fresh_s``: the evaluation's freshness wait for one job, from "the load window ends now"
  until the backend answers a sample at or after it (``PrometheusClient.wait_fresh``).

Prints ``RESULT backend setting confirm_s=... fresh_s=...`` lines (medians).

Run: ``.venv/bin/python benchmarks/bench_external_backend.py [--rounds 3] [--deploy-timeout 30]``
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from e2e.victoria import VictoriaMetrics  # noqa: E402

from pytest_keptn.config import Settings  # noqa: E402
from pytest_keptn.errors import KeptnError  # noqa: E402
from pytest_keptn.prometheus.client import PrometheusClient  # noqa: E402
from pytest_keptn.prometheus.file_sd import FileSDTargets  # noqa: E402
from pytest_keptn.prometheus.server import EmbeddedPrometheus  # noqa: E402
from pytest_keptn.system import processes as procs  # noqa: E402

JOB = "helloservice-pod-tato-head-hardening-canary"
ROUNDS = iter(range(1_000_000))


def one_round(url: str, path: Path, deploy_timeout: float) -> tuple[float | None, float | None]:
    # a job of its own each round: the last round's series stay visible for minutes
    job = f"{JOB}-{next(ROUNDS)}"
    port = procs.free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "helloserver", "--port", str(port), "--tag", "v0.1.1"],
        cwd=ROOT / "example_project", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert procs.wait_ready(f"http://127.0.0.1:{port}/health", lambda: True, 10) is None
        targets = FileSDTargets(path, url, Settings())
        targets.register(job, f"127.0.0.1:{port}", {
            "__meta_keptn_pid": str(server.pid),
            "__meta_keptn_start_ticks": str(procs.process_start_ticks(server.pid))})
        began = time.monotonic()
        try:
            targets.confirm(deploy_timeout)
        except KeptnError:
            return None, None  # not within the deployment timeout: the deployment fails
        confirm = time.monotonic() - began
        end = datetime.now(UTC)
        began = time.monotonic()
        with PrometheusClient(url) as client:
            client.wait_fresh([job], end, 120)
        fresh = time.monotonic() - began
        targets.unregister(job)
        return confirm, fresh
    finally:
        server.terminate()
        server.wait(10)


def measure(name: str, setting: str, url: str, path: Path, rounds: int,
            deploy_timeout: float) -> None:
    got = [one_round(url, path, deploy_timeout) for _ in range(rounds)]
    confirms = [c for c, _ in got if c is not None]
    freshes = [f for _, f in got if f is not None]
    if len(confirms) < len(got):
        result = f"confirm_s=never<{deploy_timeout:g} fresh_s=n/a"
    else:
        result = (f"confirm_s={statistics.median(confirms):.1f} "
                  f"fresh_s={statistics.median(freshes):.1f}")
    print(f"RESULT {name} {setting} {result} rounds={rounds}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--deploy-timeout", type=float, default=30.0)
    args = parser.parse_args()
    settings = [("5m", "30s"), ("1s", "30s"), ("1s", "5s"), ("1s", "1s")]
    with tempfile.TemporaryDirectory() as tmp:
        for check, offset in settings:
            folder = Path(tmp) / f"vm-{check}-{offset}"
            path = folder / "keptn.json"
            # the defaults cost at least the whole timeout per round: one round tells
            rounds = 1 if check == "5m" else args.rounds
            with VictoriaMetrics(folder, [path], file_sd_check=check,
                                 latency_offset=offset) as vm:
                measure("victoria-metrics",
                        f"-promscrape.fileSDCheckInterval={check} -search.latencyOffset={offset}",
                        vm.url, path, rounds, args.deploy_timeout)
        with EmbeddedPrometheus(Path(tmp) / "prometheus") as prom:
            measure("prometheus", "file_sd_configs (scrape_interval 1s)", prom.url,
                    prom.sd_dir / "keptn.json", args.rounds, args.deploy_timeout)


if __name__ == "__main__":
    main()
