"""SIGINT or SIGTERM to the pytest-xdist controller alone (issue 14 item 2).

CI runners and ``kill`` signal one process, not the process group: with ``-n 2`` the workers
never see the signal. The controller must stop the workers' sequences as a group Ctrl-C does:
no new task (no release), the canary rolled back, the sequence recorded, exit 2.
"""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path

import pytest

from pytest_keptn.system import processes as procs

from .runs import Run, make_project, state, stop_all

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_to_the_controller_stops_the_workers(tmp_path: Path, sig: signal.Signals) -> None:
    project = make_project(tmp_path / "project")
    run = Run(project, "-n", "2", "--keptn-tag=v0.1.1", "--keptn-locust-run-time=60s",
              xdist=True)
    try:
        run.wait_for("load: 1/")
        canary = state(project)["services"]["hardening/helloservice"]["canary"]  # type: ignore[index]
        run.proc.send_signal(sig)  # the controller only: the workers are not signalled
        rc = run.finish()
    finally:
        run.proc.kill()
        stop_all(project)
    out = run.out
    why = "terminated (SIGTERM)" if sig == signal.SIGTERM else "interrupted (KeyboardInterrupt)"
    assert rc == 2, out[-4000:]
    assert "Traceback" not in out and "INTERNALERROR" not in out, out[-4000:]
    assert f"{sig.name} to the xdist controller: stopping the workers' sequences" in out, out[-4000:]
    assert "release started" not in out and "RESULT: pass" not in out, out[-4000:]
    assert f"sequence delivery finished: fail (test task failed: {why}" in out, out[-4000:]
    assert "rollback: stopped canary helloservice:v0.1.1" in out, out[-4000:]
    assert not procs.alive(int(canary["pid"]), canary.get("start_ticks")), out[-4000:]
    services = state(project)["services"]
    assert not services.get("hardening/helloservice"), services  # type: ignore[union-attr]
    with sqlite3.connect(project / "build" / "history.sqlite") as db:
        rows = db.execute("SELECT stage, sequence, tag, result FROM sequences").fetchall()
    assert rows == [("hardening", "delivery", "v0.1.1", "fail")], out[-4000:]
