"""SIGTERM in the middle of a release (issue 14 item 5).

The old primary ignores SIGTERM (it keeps draining) and says so in a file the moment it gets
it: the test sends SIGTERM to pytest exactly then, while the release waits for the old
primary to stop. The release must finish (the new build is the primary, the old one stopped,
nothing left unrecorded) and the run must not report a rollback that did not happen.
"""

from __future__ import annotations

import signal
import urllib.request
from pathlib import Path

import pytest

from pytest_keptn.system import processes as procs

from .runs import SERVICE, STAGE, Run, state, wait_until

pytestmark = pytest.mark.slow


def _entry(project: Path) -> dict[str, dict[str, object]]:
    services = state(project)["services"]
    assert isinstance(services, dict)
    entry = services.get(f"{STAGE}/{SERVICE}", {})
    assert isinstance(entry, dict)
    return entry


def test_sigterm_while_the_old_primary_drains(drainer_project: Path, tmp_path: Path) -> None:
    project = drainer_project
    first = Run(project, "--keptn-tag=v0.1.1")
    assert first.finish() == 0, first.out[-4000:]
    old = _entry(project)["primary"]
    old_pid = int(str(old["pid"]))

    run = Run(project, "--keptn-tag=v0.2.0")
    try:
        wait_until(lambda: (tmp_path / "marks" / "v0.1.1").exists(), 180,
                   "the release to stop the old primary")
        run.proc.send_signal(signal.SIGTERM)
        rc = run.finish()
    finally:
        run.proc.kill()
    out = run.out
    assert rc == 2, out[-4000:]
    assert "Traceback" not in out and "INTERNALERROR" not in out, out[-4000:]
    assert "release: helloservice:v0.2.0 is the primary of hardening" in out, out[-4000:]
    assert "release finished" in out, out[-4000:]
    assert "rollback" not in out.lower(), out[-4000:]  # no rollback claimed, none happened
    entry = _entry(project)
    assert set(entry) == {"primary"}, entry  # nothing retiring, no canary left recorded
    primary = entry["primary"]
    assert primary["tag"] == "v0.2.0"
    with urllib.request.urlopen(str(primary["url"]) + "/", timeout=5) as answer:
        assert answer.read() == b"hello from v0.2.0"
    # the old primary ignored SIGTERM: it was killed, not left running unrecorded
    assert not procs.alive(old_pid, old.get("start_ticks"))  # type: ignore[arg-type]
