"""Credentials never appear in any output (issue #7).

Each run gets a sentinel credential through the environment variables named by
``--keptn-prometheus-token-env`` / ``-user-env`` / ``-password-env`` (or inside the URL's
userinfo), and afterwards every byte the run left behind is searched for it: terminal output,
JUnit XML, the pytest-html report, events, the history SQLite file, the markdown summary, every
file under the state dir and every file the run put in its temp dir (``TMPDIR``).
"""

from __future__ import annotations

import base64
import json
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
from typing import Any
from urllib.parse import parse_qs, quote, quote_plus

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
URL_PASSWORD = "pw#SENTINEL/x?y"  # unencoded: ends the host for a URL parser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _forms(secret: str) -> list[bytes]:
    """The secret as it could leak: raw, inside a repr or JSON string, URL-encoded, and base64
    (alone, and inside a basic-auth header)."""
    texts = {secret, repr(secret)[1:-1], json.dumps(secret)[1:-1], quote(secret, safe=""),
             quote_plus(secret)}
    forms = [t.encode() for t in texts]
    forms.append(base64.b64encode(secret.encode()))
    for user, pw in ((USER, PASSWORD), ("user", secret), (USER, URL_PASSWORD)):
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

    def check_no_leak(self, *secrets: str, artifacts: bool = True) -> None:
        texts = {"stdout": self.result.stdout, "stderr": self.result.stderr}
        searched = assert_nowhere(list(secrets), texts, [self.project, self.tmp])
        if artifacts:
            for artifact in ("junit.xml", "report.html", "history.sqlite", "state/summary.md"):
                assert (self.project / artifact).is_file(), f"{artifact} was not written"
            assert list((self.project / "events").glob("*.json")), "no event was written"
            assert searched >= 5

    def usage_error(self) -> str:
        """The one line a setup mistake gives (exit 4, nothing started, nothing recorded)."""
        assert self.result.returncode == 4, self.output[-3000:]
        lines = [line for line in self.result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("ERROR: pytest-keptn: "), lines
        for nothing in ("junit.xml", "report.html", "history.sqlite", "events"):
            assert not (self.project / nothing).exists(), f"{nothing} was written"
        state = self.project / "state"  # at most the .gitignore the session puts there at once
        assert not state.exists() or [p.name for p in state.iterdir()] == [".gitignore"]
        return lines[0]


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
def scraping_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPrometheus]:
    """A helloserver scraped by a real Prometheus under the tutorial's job names, with traffic;
    the Prometheus also reads every file_sd file a run writes into its ``sd_dir``."""
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
        yield prom
    finally:
        prom.stop()
        app.terminate()
        app.wait(10)


class _AuthStub:
    """A Prometheus behind an auth proxy that, worst case, echoes what it was sent.

    It accepts only the Authorization header ``accept`` (nobody when None), and only for the
    first ``accepted`` requests when that is given (credentials revoked mid-run). Refused: 401
    with the header, decoded, in the body and in ``WWW-Authenticate``. Accepted: the freshness
    query gets no series (nothing scraped), every other query two series whose label and
    sample value are the Authorization header.
    """

    def __init__(self, accept: str | None = None, accepted: int | None = None) -> None:
        self.seen: list[str] = []
        seen = self.seen

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                query = parse_qs(self.rfile.read(length).decode()).get("query", [""])[0]
                auth = self.headers.get("Authorization") or self.headers.get("X-Api-Key") or ""
                seen.append(auth)
                ok = auth == accept and (accepted is None or len(seen) <= accepted)
                extra: dict[str, str] = {}
                if not ok:
                    decoded = ""
                    if auth.startswith("Basic "):
                        decoded = base64.b64decode(auth[6:]).decode(errors="replace")
                    answer: Any = {"status": "error", "errorType": "unauthorized",
                                   "error": f"bad credentials {auth} {decoded} {auth!r}"}
                    extra["WWW-Authenticate"] = f'Bearer realm="{auth}"'
                elif "timestamp(up{" in query:  # the freshness wait: nothing scraped
                    answer = {"status": "success", "data": {"resultType": "vector", "result": []}}
                else:
                    answer = {"status": "success", "data": {"resultType": "vector", "result": [
                        {"metric": {"auth": auth, "echo": repr(auth)}, "value": [1, auth]},
                        {"metric": {"auth": auth}, "value": [1, f"{auth!r}"]}]},
                        "warnings": [f"proxy saw {auth}"]}
                body = json.dumps(answer).encode()
                self.send_response(200 if ok else 401)
                self.send_header("Content-Type", "application/json")
                for key, value in extra.items():
                    self.send_header(key, value)
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
def stubs() -> Iterator[Any]:
    made: list[_AuthStub] = []

    def make(accept: str | None = None, accepted: int | None = None) -> _AuthStub:
        made.append(_AuthStub(accept, accepted))
        return made[-1]

    try:
        yield make
    finally:
        for stub in made:
            stub.close()


@pytest.fixture
def auth_stub(stubs: Any) -> _AuthStub:
    return stubs()  # type: ignore[no-any-return]


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture(scope="module")
def service_and_prometheus(scraping_prometheus: EmbeddedPrometheus) -> str:
    return scraping_prometheus.url


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
def test_basic_auth_never_appears_in_a_full_stage(scraping_prometheus: EmbeddedPrometheus,
                                                   tmp_path: Path) -> None:
    # Deployer, Locust child and their logs all run with the credentials in their environment.
    run = run_stage(tmp_path, f"--keptn-prometheus-url={scraping_prometheus.url}",
                    f"--keptn-prometheus-file-sd={scraping_prometheus.sd_dir / 'secrets-run.json'}",
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


# --- a full stage against a proxy that echoes the credentials into every answer --------------
# Each run writes every artifact (terminal, JUnit, HTML, events, history, markdown summary,
# state folder and its logs); the gate fails on the echoed values, which must be scrubbed.

ECHO_SCENARIOS = {
    "token with a trailing CR LF (read from a file)": (
        f"Bearer {TOKEN}", ["--keptn-prometheus-token-env=KEPTN_TEST_TOKEN"],
        {"KEPTN_TEST_TOKEN": f"{TOKEN}\r\n"}, [TOKEN]),
    "basic auth with surrounding whitespace": (
        _basic(USER, PASSWORD), ["--keptn-prometheus-user-env=KEPTN_TEST_USER",
                                 "--keptn-prometheus-password-env=KEPTN_TEST_PASSWORD"],
        {"KEPTN_TEST_USER": f" {USER}\n", "KEPTN_TEST_PASSWORD": f"{PASSWORD}\n"},
        [USER, PASSWORD]),
    "a URL password with unencoded # / ?": (
        _basic(USER, URL_PASSWORD), [], {}, [USER, URL_PASSWORD]),
    "a header credential": (
        TOKEN, [f"--keptn-prometheus-headers=X-Org: t1; X-Api-Key: {TOKEN}"], {}, [TOKEN]),
}


@pytest.mark.parametrize("scenario", list(ECHO_SCENARIOS))
def test_echoed_credentials_reach_no_artifact(scenario: str, stubs: Any, tmp_path: Path) -> None:
    accept, args, env, secrets = ECHO_SCENARIOS[scenario]
    stub = stubs(accept)
    url = stub.url.replace("http://", f"http://{USER}:{URL_PASSWORD}@") if "URL" in scenario \
        else stub.url
    run = run_stage(tmp_path, f"--keptn-prometheus-url={url}", *args, env=env)
    assert run.result.returncode == 1, run.output[-3000:]
    assert set(stub.seen) == {accept}, "the credentials were not sent as configured"
    assert "***" in run.result.stdout  # the echoed values are there, scrubbed
    run.check_no_leak(*secrets)


def test_basic_auth_only_with_both_user_and_password(stubs: Any, tmp_path: Path) -> None:
    """As Keptn's provider: basic auth needs a non-empty user and password (a password
    variable holding only whitespace sends none); spaces in the URL are removed."""
    stub = stubs("")
    url = stub.url.replace("127.0.0.1:", " 127.0.0.1: ")
    run = run_stage(tmp_path, f"--keptn-prometheus-url={url}",
                    "--keptn-prometheus-user-env=KEPTN_TEST_USER",
                    "--keptn-prometheus-password-env=KEPTN_TEST_PASSWORD",
                    env={"KEPTN_TEST_USER": USER, "KEPTN_TEST_PASSWORD": " \n"})
    assert run.result.returncode == 1, run.output[-3000:]  # the stub's values are not numbers
    assert set(stub.seen) == {""}, "basic auth was sent without a password"
    run.check_no_leak(USER)


def test_credentials_revoked_mid_run(stubs: Any, tmp_path: Path) -> None:
    """Accepted by the configure-time probe, refused afterwards: the freshness wait ends at
    once (not after --keptn-freshness-timeout), every objective says so."""
    stub = stubs(f"Bearer {TOKEN}", accepted=1)
    began = time.monotonic()
    run = run_stage(tmp_path, f"--keptn-prometheus-url={stub.url}",
                    "--keptn-prometheus-token-env=KEPTN_TEST_TOKEN", "--keptn-freshness-timeout=60",
                    env={"KEPTN_TEST_TOKEN": TOKEN})
    assert time.monotonic() - began < 45, "the freshness wait ran out its 60 s"
    assert run.result.returncode == 1, run.output[-3000:]
    assert "refused the credentials (HTTP 401" in run.result.stdout
    run.check_no_leak(TOKEN)


# --- setup mistakes: one line, exit 4, before anything runs -------------------------------------


def test_401_at_the_start_names_the_problem_not_the_token(auth_stub: _AuthStub,
                                                          tmp_path: Path) -> None:
    run = run_stage(tmp_path, f"--keptn-prometheus-url={auth_stub.url}",
                    "--keptn-prometheus-token-env=KEPTN_TEST_TOKEN",
                    env={"KEPTN_TEST_TOKEN": TOKEN})
    line = run.usage_error()
    assert f"Bearer {TOKEN}" in auth_stub.seen, "the token was not sent"
    assert "--keptn-prometheus-url: Prometheus at" in line and "(HTTP 401" in line
    assert "check --keptn-prometheus-token-env" in line
    run.check_no_leak(TOKEN, artifacts=False)


def test_401_with_basic_auth(auth_stub: _AuthStub, tmp_path: Path) -> None:
    run = run_stage(tmp_path, f"--keptn-prometheus-url={auth_stub.url}",
                    "--keptn-prometheus-user-env=KEPTN_TEST_USER",
                    "--keptn-prometheus-password-env=KEPTN_TEST_PASSWORD",
                    env={"KEPTN_TEST_USER": USER, "KEPTN_TEST_PASSWORD": PASSWORD})
    assert "refused the credentials (HTTP 401" in run.usage_error()
    assert any(a.startswith("Basic ") for a in auth_stub.seen)
    run.check_no_leak(USER, PASSWORD, artifacts=False)


def test_401_with_the_password_in_the_url(auth_stub: _AuthStub, tmp_path: Path) -> None:
    url = f"http://{USER}:{PASSWORD}@127.0.0.1:{auth_stub.port}/"
    run = run_stage(tmp_path, f"--keptn-prometheus-url={url}")
    assert "refused the credentials (HTTP 401" in run.usage_error()
    run.check_no_leak(PASSWORD, artifacts=False)


def test_unreachable_url_with_a_password(tmp_path: Path) -> None:
    url = f"http://{USER}:{URL_PASSWORD}@127.0.0.1:{_free_port()}/prom"
    run = run_stage(tmp_path, f"--keptn-prometheus-url={url}", "--keptn-query-timeout=2")
    line = run.usage_error()
    assert "unreachable" in line and "127.0.0.1" in line  # still says where it tried
    run.check_no_leak(URL_PASSWORD, artifacts=False)


def test_header_credentials_never_appear(auth_stub: _AuthStub, tmp_path: Path) -> None:
    run = run_stage(tmp_path, f"--keptn-prometheus-url={auth_stub.url}",
                    f"--keptn-prometheus-headers=X-Scope-OrgID: tenant1; X-Api-Key: {TOKEN}")
    assert "(HTTP 401" in run.usage_error()
    run.check_no_leak(TOKEN, artifacts=False)


@pytest.mark.parametrize(("args", "says"), [
    ([f"--keptn-prometheus-token-env={TOKEN}"],  # the shell expanded $TOKEN
     "--keptn-prometheus-token-env: names an environment variable, and what it was given is not "
     "a valid variable name"),
    ([f"--keptn-prometheus-password-env={TOKEN.replace('-', '_')}"],
     "--keptn-prometheus-password-env: names an environment variable that is not set"),
    ([f"--keptn-prometheus-headers=Authorization=Bearer {TOKEN}"],
     "--keptn-prometheus-headers: header 1 of 1 is not 'Name: value'"),
    ([f"--keptn-prometheus-headers=Cookie: a={TOKEN}; b={TOKEN}"],
     "--keptn-prometheus-headers: header 2 of 2 is not 'Name: value'"),
    (["--keptn-prometheus-token-env=KEPTN_TEST_TOKEN"],
     "--keptn-prometheus-token-env: names an environment variable whose value has a control "
     "character"),
    ([f"--keptn-prometheus-url=ftp://{USER}:{PASSWORD}@127.0.0.1:1"],
     "--keptn-prometheus-url: the URL's scheme must be http:// or https://"),
])
def test_credential_settings_are_refused_without_their_value(
    args: list[str], says: str, auth_stub: _AuthStub, tmp_path: Path
) -> None:
    if not any(a.startswith("--keptn-prometheus-url") for a in args):
        args = [f"--keptn-prometheus-url={auth_stub.url}", *args]
    run = run_stage(tmp_path, *args, env={"KEPTN_TEST_TOKEN": f"{TOKEN}\nX-Evil: 1"})
    line = run.usage_error()
    assert says in line, line
    assert "SENTINEL" not in run.output
    assert not auth_stub.seen, "nothing may be sent with a bad setting"


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
