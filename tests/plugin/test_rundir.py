"""Run folders: the next session removes those whose owner was killed, and only those."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from pytest_keptn.session.rundir import new_rundir as _new_rundir
from pytest_keptn.system import processes as procs


def test_stale_run_folders_are_removed_live_ones_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.Popen(["true"])
    dead.wait()
    folders = {name: tmp_path / f"keptn-run-{name}" for name in ("dead", "live", "recycled", "old")}
    for folder in folders.values():
        folder.mkdir()
    me = os.getpid()
    (folders["dead"] / "owner").write_text(f"{dead.pid} 12345")
    (folders["live"] / "owner").write_text(f"{me} {procs.process_start_ticks(me)}")
    (folders["recycled"] / "owner").write_text(f"{me} 1")  # our pid, another process' start
    # "old" has no owner file (a session of an earlier version, or one being created): kept
    new = _new_rundir()
    try:
        assert not folders["dead"].exists() and not folders["recycled"].exists()
        assert folders["live"].exists() and folders["old"].exists()
        assert new.parent == tmp_path and (new / "owner").read_text().split()[0] == str(me)
    finally:
        (new / "owner").unlink()
        new.rmdir()
