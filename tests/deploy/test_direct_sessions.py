"""The ``direct`` strategy of the local deployer through real pytest sessions (issue 12 point 9).

Rolling back a direct deployment restarts the previous build (Keptn scales the stage to zero
instead: a documented difference); with no earlier build the failed one is stopped and the
run says the stage now serves nothing. Nothing says "canary" for a direct deployment.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_keptn.system import processes as procs
from tests.faults.runs import SERVICE, STAGE, Run, make_project, state, stop_all

pytestmark = pytest.mark.slow


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    path = make_project(tmp_path / "project", strategy="direct")
    try:
        yield path
    finally:
        stop_all(path)


def _entry(project: Path) -> dict[str, dict[str, object]]:
    services = state(project)["services"]
    assert isinstance(services, dict)
    entry = services.get(f"{STAGE}/{SERVICE}", {})
    assert isinstance(entry, dict)
    return entry


def _keptn_lines(out: str) -> str:
    return "\n".join(line for line in out.splitlines()
                     if "[keptn]" in line or line.startswith(("hardening", "RESULT")))


def test_failed_first_direct_build_is_stopped(project: Path) -> None:
    run = Run(project, "--keptn-tag=v0.1.3")
    assert run.finish() == 1, run.out[-4000:]
    out = _keptn_lines(run.out)
    assert "rollback: stopped helloservice:v0.1.3 (direct, pid" in out, run.out[-4000:]
    assert "no earlier build to return to: hardening now serves nothing" in out
    assert "canary" not in out.lower(), out
    assert "primary" not in _entry(project)
    pid = int(run.out.split("(direct, pid ")[1].split(")")[0].split(";")[0])
    assert not procs.alive(pid)


def test_failed_direct_build_restarts_the_previous_one(project: Path) -> None:
    good = Run(project, "--keptn-tag=v0.1.1")
    assert good.finish() == 0, good.out[-4000:]
    bad = Run(project, "--keptn-tag=v0.1.3")
    assert bad.finish() == 1, bad.out[-4000:]
    out = _keptn_lines(bad.out)
    assert "rollback: restarted the previous build helloservice:v0.1.1 (direct) in place of " \
           "v0.1.3" in out, bad.out[-4000:]
    assert "canary" not in out.lower(), out
    primary = _entry(project)["primary"]
    assert primary["tag"] == "v0.1.1"
    with urllib.request.urlopen(str(primary["url"]) + "/", timeout=5) as answer:
        assert b"v0.1.1" in answer.read()


def test_compat_scales_a_failed_direct_build_to_zero(project: Path) -> None:
    """--keptn-compat=0.8.7: Keptn scales the stage to zero instead of restarting v0.1.1."""
    assert Run(project, "--keptn-tag=v0.1.1").finish() == 0
    bad = Run(project, "--keptn-tag=v0.1.3", "--keptn-compat=0.8.7")
    assert bad.finish() == 1, bad.out[-4000:]
    out = _keptn_lines(bad.out)
    assert "as Keptn 0.8.7 does (--keptn-compat=0.8.7): hardening now serves nothing" in out, out
    assert "primary" not in _entry(project)
