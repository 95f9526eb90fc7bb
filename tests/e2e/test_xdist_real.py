"""``pytest -n 2`` through hardening and production with the real parts.

The xdist workers share one embedded Prometheus (the controller's) and hand the processes
they started to the controller: the worker that deploys a canary (here through a user test
that asks for ``keptn_service_url``) need not be the worker that evaluates and releases it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import psutil  # type: ignore[import-untyped]
import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "example_project"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="no prometheus binary"),
]

USER_TESTS = '''\
import httpx
import pytest


@pytest.mark.keptn_stage("hardening")
@pytest.mark.parametrize("path", ["/", "/health", "/metrics"])
def test_canary_answers(keptn_service_url, path):
    assert httpx.get(keptn_service_url + path, timeout=5).status_code == 200


@pytest.mark.parametrize("n", range(6))
def test_unrelated(n):
    pass
'''


def _run(cwd: Path, tag: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "GITHUB_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(cwd), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2",
         "--keptn-stage=all", f"--keptn-tag={tag}", "--keptn-locust-run-time=3s", "-rA"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=180, check=False,
    )


def _primary(cwd: Path, stage: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "pytest_keptn", "status", "--state-dir", "build/state",
         "--url", stage, "helloservice"],
        cwd=cwd, capture_output=True, text=True, timeout=30, check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return httpx.get(out.stdout.strip(), timeout=5).text




def test_xdist_delivers_and_stops_with_real_parts(tmp_path: Path) -> None:
    cwd = tmp_path / "example"
    cwd.mkdir()
    for part in ("keptn", "helloserver"):
        shutil.copytree(EXAMPLE / part, cwd / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(EXAMPLE / "pytest.ini", cwd / "pytest.ini")
    (cwd / "test_user.py").write_text(USER_TESTS)
    try:
        good = _run(cwd, "v0.1.1")
        out = good.stdout + good.stderr
        assert good.returncode == 0, out[-5000:]
        assert "hardening: pass" in out, out[-5000:]
        assert "v0.1.1" in _primary(cwd, "hardening") and "v0.1.1" in _primary(cwd, "production")
        assert "no data" not in out, out[-5000:]
        # the workers' progress reaches the terminal through the controller, as it happens
        assert "[keptn] [gw" in out and "hardening › load: 1/3s" in out, out[-5000:]
        assert out.index("hardening › evaluation finished") < out.index("Keptn quality gates")

        bad = _run(cwd, "v0.1.2")
        out = bad.stdout + bad.stderr
        assert bad.returncode == 1, out[-5000:]
        assert "hardening: fail" in out, out[-5000:]
        assert "v0.1.1" in _primary(cwd, "hardening") and "v0.1.1" in _primary(cwd, "production")
        # exactly the two primaries remain (the canaries are gone, Prometheus too)
        state = (cwd / "build/state/deploy-state.json").read_text()
        left = [p for p in psutil.process_iter(["pid", "cmdline", "cwd"])
                if "helloserver" in " ".join(p.info["cmdline"] or [])
                and p.info["cwd"] == str(cwd) and f'"pid": {p.info["pid"]},' not in state]
        assert not left, [" ".join(p.info["cmdline"]) for p in left]
        assert not [p for p in psutil.process_iter(["cmdline"])
                    if str(cwd) in " ".join(p.info["cmdline"] or [])
                    and "prometheus" in " ".join(p.info["cmdline"] or [])]
        assert not list((cwd / "build/state/prometheus").glob("keptn-prometheus-*"))
    finally:
        subprocess.run([sys.executable, "-m", "pytest_keptn", "stop", "--state-dir", "build/state"],
                       cwd=cwd, capture_output=True, timeout=60, check=False)
