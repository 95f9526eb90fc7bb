"""Prometheus setup mistakes are usage errors found before anything is deployed (issue 13), and
the URL and TLS settings behave as documented (issue 12): real pytest sessions."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN = ("-p", "no:cacheprovider", "--keptn-stage=hardening", "--keptn-tag=v0.1.1",
       "--keptn-project=pod-tato-head", "--keptn-service=helloservice",
       "--keptn-local-command={python} -m helloserver --port {port} --tag {tag}",
       "--keptn-state-dir=state", "--keptn-history=h.sqlite", "--keptn-events=events")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(pytester: pytest.Pytester, *args: str) -> tuple[int, str, list[str]]:
    if not (pytester.path / "keptn").exists():
        shutil.copytree(ROOT / "example_project" / "keptn", pytester.path / "keptn")
    result = pytester.runpytest_subprocess(*RUN, *args, timeout=120)
    errors = [line for line in result.stderr.lines if line.strip()]
    return int(result.ret), result.stdout.str() + result.stderr.str(), errors


def _nothing_started(pytester: pytest.Pytester, out: str) -> None:
    assert "Traceback" not in out and "[keptn]" not in out, out
    for nothing in ("h.sqlite", "events"):
        assert not (pytester.path / nothing).exists(), nothing
    state = pytester.path / "state"  # at most the .gitignore the session puts there at once
    assert not state.exists() or [p.name for p in state.iterdir()] == [".gitignore"]


def test_external_prometheus_that_refuses_connections(pytester: pytest.Pytester) -> None:
    port = _free_port()
    ret, out, errors = _run(pytester, f"--keptn-prometheus-url=http://127.0.0.1:{port}",
                            "--keptn-prometheus-file-sd=targets.json")
    assert ret == 4, out
    assert errors == ["ERROR: pytest-keptn: --keptn-prometheus-url: Prometheus at "
                      f"http://127.0.0.1:{port} unreachable ([Errno 111] Connection refused)"]
    _nothing_started(pytester, out)


def test_external_prometheus_whose_name_does_not_resolve(pytester: pytest.Pytester) -> None:
    # .invalid never resolves (RFC 6761)
    ret, out, errors = _run(pytester, "--keptn-prometheus-url=http://prometheus.invalid:9090",
                            "--keptn-prometheus-file-sd=targets.json")
    assert ret == 4, out
    assert len(errors) == 1 and errors[0].startswith(
        "ERROR: pytest-keptn: --keptn-prometheus-url: Prometheus at http://prometheus.invalid:9090 "
        "unreachable ("), errors
    _nothing_started(pytester, out)


def test_no_prometheus_binary_for_the_embedded_one(pytester: pytest.Pytester,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))  # python, but no prometheus
    ret, out, errors = _run(pytester)
    assert ret == 4, out
    assert len(errors) == 1, errors
    line = errors[0]
    assert line.startswith("ERROR: pytest-keptn: --keptn-prometheus-binary: no 'prometheus' "
                           "executable found"), line
    for hint in ("apt-get install prometheus", "brew install prometheus", "--keptn-prometheus-url"):
        assert hint in line, line
    _nothing_started(pytester, out)


def test_a_prometheus_that_does_not_start_fails_the_run(pytester: pytest.Pytester) -> None:
    """The deployment fails (the embedded Prometheus exits at once): the sequence closes as
    failed and the summary says so (it said "RESULT: pass": closing the sequence started
    Prometheus again, failed the same way, and left the sequence running)."""
    ret, out, _ = _run(pytester, "--keptn-prometheus-binary=/bin/false")
    assert ret == 1, out
    assert "hardening.delivery: fail [deployment fail]" in out, out
    assert "RESULT: fail — hardening.delivery: deployment task failed:" in out, out
    assert "RESULT: pass" not in out, out


def test_no_prometheus_needed_no_check(pytester: pytest.Pytester,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """--collect-only starts nothing, so it checks nothing either."""
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))
    ret, out, _ = _run(pytester, "--collect-only", "-q")
    assert ret == 0, out


# --- TLS: a real Prometheus serving https with a certificate of its own -----------------------


@pytest.fixture(scope="module")
def tls_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    if shutil.which("prometheus") is None or shutil.which("openssl") is None:
        pytest.skip("needs the prometheus and openssl binaries")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    (folder / "web.yml").write_text(f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n")
    (folder / "prometheus.yml").write_text("global: {scrape_interval: 1s}\n")
    port = _free_port()
    with open(folder / "prometheus.log", "wb") as log:
        proc = subprocess.Popen(
            ["prometheus", f"--config.file={folder / 'prometheus.yml'}",
             f"--web.config.file={folder / 'web.yml'}", f"--storage.tsdb.path={folder / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"https://127.0.0.1:{port}"
    trusted = ssl.create_default_context(cafile=str(cert))
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/-/ready", verify=trusted, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, \
                (folder / "prometheus.log").read_text()[-2000:]
            time.sleep(0.2)
        yield url, cert
    finally:
        proc.terminate()
        proc.wait(10)


EVALUATE = ("--keptn-deployer=none", "--keptn-timeframe=1m")


@pytest.mark.slow
def test_tls_is_verified(tls_prometheus: tuple[str, Path], pytester: pytest.Pytester) -> None:
    url, _ = tls_prometheus
    ret, out, errors = _run(pytester, *EVALUATE, f"--keptn-prometheus-url={url}")
    assert ret == 4, out
    assert len(errors) == 1 and errors[0].startswith(
        f"ERROR: pytest-keptn: --keptn-prometheus-url: Prometheus at {url} unreachable "), errors
    assert "CERTIFICATE_VERIFY_FAILED" in errors[0]
    _nothing_started(pytester, out)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["ca-bundle", "insecure-skip-verify"])
def test_tls_with_a_private_ca_or_without_verification(
    tls_prometheus: tuple[str, Path], pytester: pytest.Pytester, how: str
) -> None:
    url, cert = tls_prometheus
    # without a scheme the URL means https://, as in Keptn's provider
    option = (f"--keptn-prometheus-ca-bundle={cert}" if how == "ca-bundle"
              else "--keptn-prometheus-insecure-skip-verify")
    ret, out, _ = _run(pytester, *EVALUATE, f"--keptn-prometheus-url={url[len('https://'):]}",
                       option, "-rA")
    # this Prometheus scrapes nothing: the queries reach it and come back empty
    assert ret == 1, out
    assert "query returned no data" in out and "Traceback" not in out, out
