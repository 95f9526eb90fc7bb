"""A second signal during the cleanup of an interrupted run (issue 14 item 8).

The canary ignores SIGTERM (it drains forever) and says so in a file the moment it gets one:
that is the moment the cleanup of the interrupted run (the rollback) is waiting for it to stop.
The test sends the second signal exactly then, as an impatient second Ctrl-C or as GitHub
Actions' SIGTERM after its SIGINT. The cleanup must shield itself (no traceback), kill what it
was waiting for at once, record the sequence, and exit 2.
"""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path

import pytest

from pytest_keptn.system import processes as procs

from .runs import Run, state, wait_until

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("second", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_second_signal_during_cleanup(drainer_project: Path, tmp_path: Path,
                                      second: signal.Signals) -> None:
    project = drainer_project
    run = Run(project, "--keptn-tag=v0.1.1", "--keptn-locust-run-time=60s")
    try:
        run.wait_for("load: 1/")
        canary = state(project)["services"]["hardening/helloservice"]["canary"]  # type: ignore[index]
        run.proc.send_signal(signal.SIGINT)
        # the rollback has sent SIGTERM to the canary and waits for it: the cleanup is running
        wait_until(lambda: (tmp_path / "marks" / "v0.1.1").exists(), 120,
                   "the cleanup to stop the canary")
        run.proc.send_signal(second)
        rc = run.finish()
    finally:
        run.proc.kill()
    out = run.out
    assert rc == 2, out[-4000:]
    assert "Traceback" not in out and "INTERNALERROR" not in out, out[-4000:]
    assert f"{second.name} during the cleanup" in out, out[-4000:]
    assert "sequence delivery finished: fail (test task failed: interrupted" in out, out[-4000:]
    # the canary that ignored SIGTERM was killed, not left running
    assert not procs.alive(int(canary["pid"]), canary.get("start_ticks")), out[-4000:]
    # the sequence is recorded in the history
    with sqlite3.connect(project / "build" / "history.sqlite") as db:
        rows = db.execute("SELECT stage, sequence, tag, result FROM sequences").fetchall()
    assert rows == [("hardening", "delivery", "v0.1.1", "fail")], out[-4000:]
