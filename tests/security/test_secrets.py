"""Credentials never appear in any output (issue #7).

Each run gets a sentinel credential through the environment variables named by
``--keptn-prometheus-token-env`` / ``-user-env`` / ``-password-env`` (or inside the URL's
userinfo), and afterwards every byte the run left behind is searched for it: terminal output,
JUnit XML, the pytest-html report, events, the history SQLite file, the markdown summary, every
file under the state dir and every file the run put in its temp dir (``TMPDIR``).
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from pytest_keptn.prometheus.client import PrometheusClient
from pytest_keptn.prometheus.server import EmbeddedPrometheus

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "example_project"
JOB = "helloservice-pod-tato-head-hardening"
TOKEN = "tok-SENTINEL-7f3a9c1e5b"
USER = "usr-SENTINEL-42d1"
PASSWORD = "pw-SENTINEL-c0ffee99"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _forms(secret: str) -> list[bytes]:
    """The secret as it could leak: raw, and inside a base64 basic-auth header."""
    forms = [secret.encode()]
    for user, pw in ((USER, PASSWORD), ("user", secret)):
        forms.append(base64.b64encode(f"{user}:{pw}".encode()))
    return forms


def assert_nowhere(secrets: list[str], texts: dict[str, str], folders: list[Path]) -> int:
    """Fail naming the artifact if any secret appears; return how many files were searched."""
    needles = [(s, f) for s in secrets for f in _forms(s)]
    for where, text in texts.items():
        for secret, form in needles:
            assert form.decode() not in text, f"{secret!r} leaked into {where}"
    searched = 0
    for folder in folders:
        for path in folder.rglob("*"):
            if not path.is_file() or path.is_symlink():
                continue
            data = path.read_bytes()
            searched += 1
            for secret, form in needles:
                assert form not in data, f"{secret!r} leaked into {path}"
    return searched


@dataclass
class Run:
    result: subprocess.CompletedProcess[str]
    project: Path
    tmp: Path

    @property
    def output(self) -> str:
        return self.result.stdout + self.result.stderr

    def check_no_leak(self, *secrets: str) -> None:
        texts = {"stdout": self.result.stdout, "stderr": self.result.stderr}
        searched = assert_nowhere(list(secrets), texts, [self.project, self.tmp])
        for artifact in ("junit.xml", "report.html", "history.sqlite", "state/summary.md"):
            assert (self.project / artifact).is_file(), f"{artifact} was not written"
        assert searched >= 5


def run_stage(tmp_path: Path, *args: str, env: dict[str, str] | None = None,
              timeframe: bool = True) -> Run:
    project = tmp_path / "project"
    if not project.exists():
        project.mkdir()
        shutil.copytree(EXAMPLE / "keptn", project / "keptn")
        shutil.copytree(EXAMPLE / "helloserver", project / "helloserver",
                        ignore=shutil.ignore_patterns("__pycache__"))
    tmp = tmp_path / "tmp"
    tmp.mkdir(exist_ok=True)
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "GITHUB_"))}
    full_env.update(env or {})
    full_env["TMPDIR"] = str(tmp)  # the run's temp files land here, to be searched
    mode = (["--keptn-deployer=none", "--keptn-timeframe=1m"] if timeframe else
            ["--keptn-deployer=local", "--keptn-tag=v0.1.1", "--keptn-locust-run-time=2s",
             "--keptn-local-command={python} -m helloserver --port {port} --tag {tag}",
             "--keptn-health-path=/health", "--keptn-freshness-timeout=2"])
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v", "-rA",
         "--keptn-stage=hardening", *mode,
         "--keptn-project=pod-tato-head", "--keptn-service=helloservice",
         "--keptn-image=gabrieltanner/hello-server",
         "--keptn-events=events", "--keptn-state-dir=state", "--keptn-history=history.sqlite",
         "--junitxml=junit.xml", "--html=report.html", "--self-contained-html", *args],
        cwd=project, env=full_env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert "Traceback" not in result.stdout + result.stderr, result.stdout[-3000:]
    return Run(result, project, tmp)


@pytest.fixture(scope="module")
def service_and_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A helloserver scraped by a real Prometheus under the tutorial's job names, with traffic."""
    if shutil.which("prometheus") is None:
        pytest.skip("prometheus binary not installed")
    port = _free_port()
    app = subprocess.Popen(
        [sys.executable, "-m", "helloserver", "--port", str(port), "--tag", "v0.1.1"],
        cwd=EXAMPLE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    prom = EmbeddedPrometheus(tmp_path_factory.mktemp("prom")).start()
    try:
        for job in (JOB, JOB + "-canary"):
            prom.register(job, f"127.0.0.1:{port}")
        prom.wait_targets_up(timeout=20)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            for _ in range(200):
                assert client.get("/").status_code == 200
        time.sleep(2.5)  # two scrapes after the traffic
        yield prom.url
    finally:
        prom.stop()
        app.terminate()
        app.wait(10)


class _AuthStub:
    """A Prometheus that refuses everyone with 401 and, worst case, echoes what it was sent."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        seen = self.seen

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                auth = self.headers.get("Authorization") or ""
                seen.append(auth)
                decoded = ""
                if auth.startswith("Basic "):
                    decoded = base64.b64decode(auth[6:]).decode(errors="replace")
                body = (f'{{"status":"error","errorType":"unauthorized",'
                        f'"error":"bad credentials {auth} {decoded}"}}').encode()
                self.send_response(401)
                self.send_header("Content-Type", "application/json")
                self.send_header("WWW-Authenticate", f'Bearer realm="{auth}"')
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def auth_stub() -> Iterator[_AuthStub]:
    stub = _AuthStub()
    try:
        yield stub
    finally:
        stub.close()


# --- runs against a real Prometheus -----------------------------------------------------------


@pytest.mark.slow
def test_bearer_token_never_appears(service_and_prometheus: str, tmp_path: Path) -> None:
    run = run_stage(tmp_path, f"--keptn-prometheus-url={service_and_prometheus}",
                    "--keptn-prometheus-token-env=KEPTN_TEST_TOKEN",
                    env={"KEPTN_TEST_TOKEN": TOKEN})
    assert run.result.returncode == 0, run.output[-3000:]
    assert "hardening: pass" in run.result.stdout
    run.check_no_leak(TOKEN)


@pytest.mark.slow
def test_basic_auth_never_appears_in_a_full_stage(service_and_prometheus: str,
                                                   tmp_path: Path) -> None:
    # Deployer, Locust child and their logs all run with the credentials in their environment.
    run = run_stage(tmp_path, f"--keptn-prometheus-url={service_and_prometheus}",
                    "--keptn-prometheus-user-env=KEPTN_TEST_USER",
                    "--keptn-prometheus-password-env=KEPTN_TEST_PASSWORD",
                    env={"KEPTN_TEST_USER": USER, "KEPTN_TEST_PASSWORD": PASSWORD},
                    timeframe=False)
    assert run.result.returncode in (0, 1), run.output[-3000:]
    assert "Keptn quality gates" in run.result.stdout
    logs = list((run.project / "state").rglob("*.log"))
    assert logs, "the full stage wrote no log files to search"
    try:
        run.check_no_leak(USER, PASSWORD)
    finally:
        subprocess.run([sys.executable, "-m", "pytest_keptn", "stop", "--state-dir", "state"],
                       cwd=run.project, capture_output=True, timeout=30, check=False)


@pytest.mark.slow
def test_password_in_the_url_never_appears(service_and_prometheus: str, tmp_path: Path) -> None:
    url = service_and_prometheus.replace("http://", f"http://{USER}:{PASSWORD}@")
    run = run_stage(tmp_path, f"--keptn-prometheus-url={url}")
    assert run.result.returncode == 0, run.output[-3000:]
    run.check_no_leak(PASSWORD)


# --- runs against a Prometheus that says 401 ----------------------------------------------------


def test_401_error_names_the_problem_not_the_token(auth_stub: _AuthStub, tmp_path: Path) -> None:
    run = run_stage(tmp_path, f"--keptn-prometheus-url={auth_stub.url}",
                    "--keptn-prometheus-token-env=KEPTN_TEST_TOKEN",
                    env={"KEPTN_TEST_TOKEN": TOKEN})
    assert run.result.returncode == 1, run.output[-3000:]
    assert f"Bearer {TOKEN}" in auth_stub.seen, "the token was not sent"
    assert "HTTP 401" in run.result.stdout and "check the Prometheus credentials" in run.result.stdout
    run.check_no_leak(TOKEN)


def test_401_with_basic_auth(auth_stub: _AuthStub, tmp_path: Path) -> None:
    run = run_stage(tmp_path, f"--keptn-prometheus-url={auth_stub.url}",
                    "--keptn-prometheus-user-env=KEPTN_TEST_USER",
                    "--keptn-prometheus-password-env=KEPTN_TEST_PASSWORD",
                    env={"KEPTN_TEST_USER": USER, "KEPTN_TEST_PASSWORD": PASSWORD})
    assert run.result.returncode == 1, run.output[-3000:]
    assert any(a.startswith("Basic ") for a in auth_stub.seen)
    assert "HTTP 401" in run.result.stdout
    run.check_no_leak(USER, PASSWORD)


def test_401_with_the_password_in_the_url(auth_stub: _AuthStub, tmp_path: Path) -> None:
    url = f"http://{USER}:{PASSWORD}@127.0.0.1:{auth_stub.port}/"
    run = run_stage(tmp_path, f"--keptn-prometheus-url={url}")
    assert run.result.returncode == 1, run.output[-3000:]
    assert "HTTP 401" in run.result.stdout
    run.check_no_leak(PASSWORD)


def test_unreachable_url_with_a_password(tmp_path: Path) -> None:
    url = f"http://{USER}:{PASSWORD}@127.0.0.1:{_free_port()}/prom"
    run = run_stage(tmp_path, f"--keptn-prometheus-url={url}", "--keptn-query-timeout=2")
    assert run.result.returncode == 1, run.output[-3000:]
    assert "unreachable" in run.result.stdout
    assert "127.0.0.1" in run.result.stdout  # still says where it tried
    run.check_no_leak(PASSWORD)


def test_header_credentials_never_appear(auth_stub: _AuthStub, tmp_path: Path) -> None:
    run = run_stage(tmp_path, f"--keptn-prometheus-url={auth_stub.url}",
                    f"--keptn-prometheus-headers=X-Scope-OrgID: tenant1; X-Api-Key: {TOKEN}")
    assert run.result.returncode == 1, run.output[-3000:]
    # Headers given on the command line are the user's own choice to pass them; they still must
    # not be echoed back from the server's answer.
    stdout = run.result.stdout
    assert f"X-Api-Key: {TOKEN}" not in stdout.replace("keptn-prometheus-headers", "")


# --- the client on its own ---------------------------------------------------------------------


def test_client_repr_and_messages_hide_url_userinfo(auth_stub: _AuthStub) -> None:
    url = f"http://{USER}:{PASSWORD}@127.0.0.1:{auth_stub.port}"
    from datetime import UTC, datetime

    with PrometheusClient(url, timeout=2, retries=0) as client:
        assert PASSWORD not in repr(client) and PASSWORD not in str(client)
        assert PASSWORD not in client.base_url
        result = client.query("up", datetime.now(UTC), metric="up")
    assert result.message and "401" in result.message
    assert PASSWORD not in result.message and PASSWORD not in repr(result)
    with PrometheusClient(f"http://u:{PASSWORD}@127.0.0.1:{_free_port()}", timeout=1,
                          retries=0) as client:
        result = client.query("up", datetime.now(UTC), metric="up")
        assert "unreachable" in result.message and PASSWORD not in result.message
        with pytest.raises(Exception) as info:
            client.wait_fresh(["job"], datetime.now(UTC), timeout=0.5)
        assert PASSWORD not in str(info.value)
