"""Two runs on one state folder (two CI jobs on one self-hosted runner), issue 14 item 1.

Run A delivers v0.1.1 and is held in its test task (the build deployed, the load not yet
run); run B starts in the same folder meanwhile. B must not touch A's canary: it waits for A
to finish the stage (a progress line says so) or, with ``--keptn-stage-lock-timeout=0``,
refuses in one line. A passes and releases its own build; the stage always has a primary.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from .runs import SERVICE, STAGE, Run, make_project, state, stop_all

pytestmark = pytest.mark.slow


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    path = make_project(tmp_path / "project")
    try:
        yield path
    finally:
        stop_all(path)


def _primary(project: Path) -> dict[str, object]:
    services = state(project)["services"]
    assert isinstance(services, dict)
    primary = services[f"{STAGE}/{SERVICE}"]["primary"]
    assert isinstance(primary, dict)
    return primary


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return str(answer.read().decode())


def test_second_run_waits_for_the_first(project: Path, tmp_path: Path) -> None:
    hold = tmp_path / "hold"
    hold.mkdir()
    a = Run(project, "--keptn-tag=v0.1.1", env={"HOLD_DIR": str(hold)})
    try:
        canary_line = a.wait_for("deployment: canary helloservice:v0.1.1 ready")
        b = Run(project, "--keptn-tag=v0.2.0")
        waiting = b.wait_for("deployment: waiting for the run of pid")
        assert f"pid {a.proc.pid} delivering v0.1.1" in waiting, waiting
        assert "--keptn-stage-lock-timeout" in waiting
        (hold / "go").touch()
        assert a.finish() == 0, a.out[-4000:]
        assert b.finish() == 0, b.out[-4000:]
    finally:
        (hold / "go").touch()
        a.proc.kill()
    assert "(pid " in canary_line
    assert "release: helloservice:v0.1.1 is the primary of hardening" in a.out, a.out[-4000:]
    assert "stopped during the test" not in a.out
    assert "left by an earlier run" not in b.out, b.out[-4000:]
    # B deployed beside A's released build and promoted its own one
    assert "beside primary v0.1.1" in b.out, b.out[-4000:]
    assert "release: helloservice:v0.2.0 is the primary of hardening" in b.out
    primary = _primary(project)
    assert primary["tag"] == "v0.2.0"
    assert "v0.2.0" in _get(str(primary["url"]) + "/")
    assert "leases" not in state(project) or not state(project)["leases"]


def test_second_run_refuses_at_once_with_no_wait(project: Path, tmp_path: Path) -> None:
    hold = tmp_path / "hold"
    hold.mkdir()
    a = Run(project, "--keptn-tag=v0.1.1", env={"HOLD_DIR": str(hold)})
    try:
        a.wait_for("deployment: canary helloservice:v0.1.1 ready")
        b = Run(project, "--keptn-tag=v0.2.0", "--keptn-stage-lock-timeout=0")
        assert b.finish() == 1, b.out[-4000:]
        canary_url = (hold / "holding").read_text()
        assert "v0.1.1" in _get(canary_url + "/")  # A's canary is untouched
        (hold / "go").touch()
        assert a.finish() == 0, a.out[-4000:]
    finally:
        (hold / "go").touch()
        a.proc.kill()
    refused = [line for line in b.out.splitlines() if "is being delivered by another run" in line]
    assert refused, b.out[-4000:]
    assert f"the run of pid {a.proc.pid} delivering v0.1.1" in refused[0]
    assert "Traceback" not in b.out and "INTERNALERROR" not in b.out
    assert "canary helloservice:v0.2.0" not in b.out  # nothing deployed
    assert "release: helloservice:v0.1.1 is the primary of hardening" in a.out, a.out[-4000:]
    primary = _primary(project)
    assert primary["tag"] == "v0.1.1"
    assert "v0.1.1" in _get(str(primary["url"]) + "/")
