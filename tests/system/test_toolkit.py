"""The process and file toolkit: registries belong to their session, writes are whole, locks
give up after their timeout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pytest_keptn.system.files import atomic_write, file_lock
from pytest_keptn.system.processes import ProcessRegistry, Started, alive

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


def test_two_sessions_registries_do_not_share_processes() -> None:
    a, b = ProcessRegistry("run-a"), ProcessRegistry("run-b", hand_over=True)
    pa = subprocess.Popen(SLEEPER, start_new_session=True)
    pb = subprocess.Popen(SLEEPER, start_new_session=True)
    try:
        a.track(Started(pa.pid, "load", popen=pa))
        b.track(Started(pb.pid, "primary", keep=True, popen=pb))
        assert a.pids() == {pa.pid: "load"} and b.pids() == {pb.pid: "primary"}
        assert a.cleanup() == [pa.pid]
        assert not alive(pa.pid) and alive(pb.pid)
        assert b.cleanup() == [] and b.remaining()[0].pid == pb.pid  # kept serving
    finally:
        for p in (pa, pb):
            p.kill()
            p.wait()


def test_atomic_write_replaces_whole_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    atomic_write(target, "old")
    atomic_write(target, "new", durable=True)
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_a_file_lock_gives_up_after_its_timeout(tmp_path: Path) -> None:
    lock = tmp_path / "x.lock"
    with file_lock(lock), pytest.raises(TimeoutError, match=r"x.lock: still locked after 0.2s"):
        # flock is per open file: a second open of the same file in this process conflicts
        with file_lock(lock, timeout=0.2):
            pass
    with file_lock(lock, timeout=0.2):  # free again
        pass
