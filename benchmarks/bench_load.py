"""Load driver overhead: the plugin's Locust driver vs plain ``locust --headless``.

Same locustfile (FastHttpUser, no wait), same users and duration, same local helloserver
(v0.1.1), alternating plugin/plain in one run. Prints ``RESULT name=value`` lines:

* ``rps_ratio``: median plugin rps / median plain rps (goal >= 0.95); both sides
  count requests over the same nominal run time, so the definitions match;
* ``workers2_over_1``: plugin rps with 2 local workers / with 1 worker (on a 2-core machine the
  server competes with the workers for the CPU, so expect about 1).

Run: ``.venv/bin/python benchmarks/bench_load.py [--users 10] [--seconds 5] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytest_keptn.config import Settings  # noqa: E402
from pytest_keptn.load.locust_driver import run_locust  # noqa: E402
from pytest_keptn.model import StageContext  # noqa: E402
from pytest_keptn.system import processes as procs  # noqa: E402

LOCUSTFILE = """
from locust import FastHttpUser, constant, task

class Visitor(FastHttpUser):
    wait_time = constant(0)

    @task
    def index(self):
        self.client.get("/")
"""


def plain(locustfile: Path, url: str, users: int, seconds: float, out: Path) -> float:
    prefix = out / "plain"
    subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "-u", str(users),
         "-r", str(users), "-t", f"{seconds:g}s", "-H", url, "--json-file", str(prefix),
         "--only-summary", "--loglevel", "WARNING"],
        check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=seconds + 60,
    )
    entries = json.loads(prefix.with_suffix(".json").read_text())
    return float(sum(e["num_requests"] for e in entries) / seconds)


def plugin(locustfile: Path, url: str, users: int, seconds: float, out: Path,
           workers: int = 0) -> float:
    ctx = StageContext(project="bench", service="helloservice", stage="bench", image="x",
                       tag="v0.1.1", root=out, workdir=out / ".keptn",
                       settings=Settings(locust_workers=workers))
    result = run_locust(ctx, url, locustfile, users=users, spawn_rate=users, run_time=seconds)
    return result.requests / seconds


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    port = procs.free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "helloserver", "--port", str(port), "--tag", "v0.1.1"],
        env=dict(os.environ, PYTHONPATH=str(ROOT / "example_project")),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        if procs.wait_ready(url + "/health", lambda: server.poll() is None, 15) is not None:
            print("helloserver did not start", file=sys.stderr)
            return 1
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            locustfile = out / "locustfile.py"
            locustfile.write_text(LOCUSTFILE)
            ours: list[float] = []
            theirs: list[float] = []
            for i in range(args.rounds):
                ours.append(plugin(locustfile, url, args.users, args.seconds, out))
                theirs.append(plain(locustfile, url, args.users, args.seconds, out))
                print(f"round {i + 1}: plugin {ours[-1]:.0f} rps, plain {theirs[-1]:.0f} rps",
                      flush=True)
            one = plugin(locustfile, url, args.users, args.seconds, out, workers=1)
            two = plugin(locustfile, url, args.users, args.seconds, out, workers=2)
            print(f"workers: 1 -> {one:.0f} rps, 2 -> {two:.0f} rps", flush=True)
        print(f"RESULT plugin_rps={statistics.median(ours):.1f}")
        print(f"RESULT plain_rps={statistics.median(theirs):.1f}")
        print(f"RESULT rps_ratio={statistics.median(ours) / statistics.median(theirs):.3f}")
        print(f"RESULT workers2_over_1={two / one:.3f}")
        return 0
    finally:
        procs.stop_pid(server.pid)
        server.wait()


if __name__ == "__main__":
    sys.exit(main())
