"""Real pytest runs of a small Keptn project, watched line by line while they run.

The project delivers ``helloservice`` (the demo's ``helloserver``) with the local deployer
through one stage, ``hardening``: deployment (blue/green unless told), test (a 2 s Locust
load on ``/``), an evaluation on Locust's own SLIs (no Prometheus needed: v0.1.3, which fails
half of its requests, fails the gate) and release. ``test_hold.py`` is a user
test of the stage: when ``HOLD_DIR`` is set it writes ``HOLD_DIR/holding`` once the build is
deployed and waits for ``HOLD_DIR/go``, so a test can act while a run is in the middle of its
sequence without sleeping and hoping.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "example_project"
STAGE, SERVICE = "hardening", "helloservice"

SHIPYARD = """\
apiVersion: "spec.keptn.sh/0.2.0"
kind: "Shipyard"
metadata: {name: "pod-tato-head"}
spec:
  stages:
    - name: "hardening"
      sequences:
        - name: "delivery"
          tasks:
            - name: "deployment"
              properties: {deploymentstrategy: "%s"}
            - name: "test"
            - name: "evaluation"
            - name: "release"
"""

SLO = """\
spec_version: "0.1.0"
comparison: {compare_with: "single_result", include_result_with_score: "pass", aggregate_function: avg}
objectives:
  - sli: locust_failure_ratio
    pass:
      - criteria: ["<=0.1"]
total_score: {pass: "90%", warning: "75%"}
"""

LOCUSTFILE = """\
from locust import FastHttpUser, constant, task


class Visitor(FastHttpUser):
    wait_time = constant(0.05)

    @task
    def index(self):
        self.client.get("/")
"""

HOLD = """\
import os
import time
from pathlib import Path

import pytest


@pytest.mark.keptn_stage("hardening")
def test_hold(keptn_service_url):
    folder = os.environ.get("HOLD_DIR")
    if not folder:
        return
    (Path(folder) / "holding").write_text(keptn_service_url)
    deadline = time.monotonic() + 180
    while not (Path(folder) / "go").exists():
        assert time.monotonic() < deadline, "nobody said go"
        time.sleep(0.05)
"""

INI = """\
[pytest]
keptn_root = keptn
keptn_project = pod-tato-head
keptn_service = helloservice
keptn_image = gabrieltanner/hello-server
keptn_deployer = local
keptn_local_command = %s
keptn_health_path = /health
keptn_history = build/history.sqlite
keptn_state_dir = build/state
keptn_locust_users = 2
keptn_locust_spawn_rate = 10
keptn_locust_run_time = 2s
"""

COMMAND = "{python} -m helloserver --port {port} --tag {tag}"


# A build that ignores SIGTERM (a primary that drains forever) and writes ``<marks>/<tag>`` the
# moment it gets one: a test knows exactly when a stop is waiting for it.
DRAINER = """\
import signal, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

port, tag, marks = int(sys.argv[1]), sys.argv[2], Path(sys.argv[3])


def draining(signum, frame):  # a primary that drains forever: it ignores SIGTERM
    (marks / tag).write_text("draining")


signal.signal(signal.SIGTERM, draining)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"hello from {tag}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""


def make_drainer_project(tmp_path: Path) -> Path:
    """The project with DRAINER as the build; its marks go to ``tmp_path/marks``."""
    marks = tmp_path / "marks"
    marks.mkdir()
    path = make_project(tmp_path / "project",
                        command=f"{{python}} drainer.py {{port}} {{tag}} {marks}")
    (path / "drainer.py").write_text(DRAINER)
    return path


def make_project(path: Path, *, strategy: str = "blue_green_service",
                 command: str = COMMAND) -> Path:
    (path / "keptn" / STAGE / SERVICE / "locust").mkdir(parents=True)
    (path / "keptn" / "shipyard.yaml").write_text(SHIPYARD % strategy)
    (path / "keptn" / STAGE / SERVICE / "slo.yaml").write_text(SLO)
    (path / "keptn" / STAGE / SERVICE / "locust" / "locustfile.py").write_text(LOCUSTFILE)
    (path / "test_hold.py").write_text(HOLD)
    (path / "pytest.ini").write_text(INI % command)
    return path


class Run:
    """One ``pytest --keptn-stage=hardening`` child process, its output collected as it comes."""

    def __init__(self, project: Path, *args: str, env: dict[str, str] | None = None,
                 prefix: tuple[str, ...] = (), xdist: bool = False) -> None:
        self.env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [str(EXAMPLE), os.environ.get("PYTHONPATH", "")]), PYTHONUNBUFFERED="1",
            COLUMNS="200")
        self.env.pop("PYTEST_ADDOPTS", None)
        self.env.pop("GITHUB_STEP_SUMMARY", None)
        self.env.update(env or {})
        argv = [*prefix, sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                *(() if xdist else ("-p", "no:xdist")), "-s", f"--keptn-stage={STAGE}", *args]
        self.proc = subprocess.Popen(argv, cwd=project, env=self.env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def out(self) -> str:
        with self._changed:
            return "".join(self.lines)

    def wait_for(self, text: str, timeout: float = 120) -> str:
        """The first output line containing ``text``; AssertionError if the run ends first."""
        deadline = time.monotonic() + timeout
        with self._changed:
            seen = 0
            while True:
                for line in self.lines[seen:]:
                    if text in line:
                        return line
                seen = len(self.lines)
                if not self._reader.is_alive() and seen == len(self.lines):
                    raise AssertionError(f"the run ended without {text!r}:\n{''.join(self.lines)[-4000:]}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {text!r} within {timeout}s:\n{''.join(self.lines)[-4000:]}")
                self._changed.wait(min(left, 0.5))

    def finish(self, timeout: float = 180) -> int:
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"the run did not finish in time:\n{self.out[-4000:]}") from None
        self._reader.join(timeout=10)
        return rc


def wait_until(condition: Callable[[], bool], timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def state(project: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads(
        (project / "build" / "state" / "deploy-state.json").read_text())
    return data


def stop_all(project: Path) -> None:
    subprocess.run([sys.executable, "-m", "pytest_keptn", "stop", "--state-dir",
                    str(project / "build" / "state")], capture_output=True, timeout=60)


def dedent(text: str) -> str:
    return textwrap.dedent(text)
