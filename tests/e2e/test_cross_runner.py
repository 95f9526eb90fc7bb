"""Two CI runners, one PostgreSQL history (issue 15): two copies of the example project with
separate state folders and no shared files. Runner A delivers through hardening; runner B's
production job trusts only what the shared history says about the build."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "example_project"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgresql,
    pytest.mark.skipif(shutil.which("prometheus") is None,
                       reason="Debian's prometheus is not installed"),
]


def _copy(folder: Path) -> Path:
    folder.mkdir()
    for part in ("keptn", "helloserver"):
        shutil.copytree(EXAMPLE / part, folder / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(EXAMPLE / "pytest.ini", folder / "pytest.ini")
    return folder


@pytest.fixture
def runners(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    a, b = _copy(tmp_path / "runner-a"), _copy(tmp_path / "runner-b")
    yield a, b
    for folder in (a, b):
        subprocess.run([sys.executable, "-m", "pytest_keptn", "stop"], cwd=folder,
                       capture_output=True, timeout=60, check=False)


def _pytest(cwd: Path, history: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "GITHUB_"))}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--keptn-history={history}",
         "--keptn-locust-run-time=4s", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=180, check=False)


def _primary(cwd: Path, stage: str) -> str | None:
    out = subprocess.run([sys.executable, "-m", "pytest_keptn", "status", "--url", stage,
                          "helloservice"], cwd=cwd, capture_output=True, text=True, timeout=60,
                         check=False)
    if out.returncode != 0:
        return None
    return httpx.get(out.stdout.strip(), timeout=10).text


def test_production_on_another_runner_follows_the_shared_history(
    runners: tuple[Path, Path], postgres_url: str
) -> None:
    a, b = runners
    passed = _pytest(a, postgres_url, "--keptn-stage=hardening", "--keptn-tag=v0.1.1")
    assert passed.returncode == 0, passed.stdout[-3000:]
    allowed = _pytest(b, postgres_url, "--keptn-stage=production", "--keptn-tag=v0.1.1")
    assert allowed.returncode == 0, allowed.stdout[-3000:]
    assert ("triggered: hardening.delivery finished with pass for "
            "gabrieltanner/hello-server:v0.1.1 (history)") in allowed.stdout
    assert "v0.1.1" in (_primary(b, "production") or "")

    failed = _pytest(a, postgres_url, "--keptn-stage=hardening", "--keptn-tag=v0.1.2")
    assert failed.returncode == 1, failed.stdout[-3000:]
    refused = _pytest(b, postgres_url, "--keptn-stage=production", "--keptn-tag=v0.1.2")
    assert refused.returncode == 1, refused.stdout[-3000:]
    assert ("production.delivery refused: not triggered: hardening.delivery finished with fail"
            " for gabrieltanner/hello-server:v0.1.2 (history)") in refused.stdout
    assert "deployment started" not in refused.stdout  # refused without deploying
    assert "v0.1.1" in (_primary(b, "production") or "")  # production keeps serving v0.1.1
    assert list(b.rglob("*.sqlite*")) == []  # nothing of the history lives on runner B
