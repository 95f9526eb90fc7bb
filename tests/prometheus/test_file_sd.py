"""The file_sd file the local deployer's targets go to for a backend of the user's own (issue 20):
its format, ownership, several writers, and ``python -m pytest_keptn stop``. Real files, real
processes as owners; the waits against a real VictoriaMetrics are in tests/e2e."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_keptn.config import Settings
from pytest_keptn.errors import ConfigError
from pytest_keptn.prometheus.file_sd import RECORD, FileSDTargets, prune, read
from pytest_keptn.system import processes as procs

JOB = "helloservice-pod-tato-head-hardening"
CLOSED = "http://127.0.0.1:9"  # nothing listens


def owner(pid: int) -> dict[str, str]:
    return {"__meta_keptn_pid": str(pid),
            "__meta_keptn_start_ticks": str(procs.process_start_ticks(pid))}


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A process that owns targets until the test stops it."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    yield proc
    proc.kill()
    proc.wait()


def groups(path: Path) -> dict[str, tuple[list[str], dict[str, str]]]:
    return {g["labels"]["job"]: (g["targets"], g["labels"]) for g in json.loads(path.read_text())}


def test_one_group_per_keptn_job_with_its_labels(tmp_path: Path) -> None:
    path = tmp_path / "sd" / "keptn.json"
    targets = FileSDTargets(path, CLOSED, Settings())
    labels = {"keptn_stage": "hardening", "keptn_deployment": "canary", **owner(os.getpid())}
    targets.register(JOB + "-canary", "127.0.0.1:4001", labels)
    targets.register(JOB, "127.0.0.1:4001", labels)
    found = groups(path)
    assert sorted(found) == [JOB, JOB + "-canary"]
    addresses, got = found[JOB + "-canary"]
    assert addresses == ["127.0.0.1:4001"]
    assert got["job"] == JOB + "-canary" and got["keptn_stage"] == "hardening"
    assert got["__meta_keptn_pid"] == str(os.getpid()) and float(got["__meta_keptn_since"]) > 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # a backend running as another user reads it
    assert not [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")]

    # the traffic job follows the newest registration (the primary after a rollback)
    targets.register(JOB, "127.0.0.1:4002", labels)
    assert groups(path)[JOB][0] == ["127.0.0.1:4002"]
    targets.unregister(JOB + "-canary")
    assert sorted(groups(path)) == [JOB]


def test_an_existing_mode_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "keptn.json"
    path.write_text("[]")
    path.chmod(0o640)
    FileSDTargets(path, CLOSED, Settings()).register(JOB, "127.0.0.1:4001", owner(os.getpid()))
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_runs_keep_each_others_targets_and_exited_owners_leave(
        tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    path = tmp_path / "keptn.json"
    first = FileSDTargets(path, CLOSED, Settings())
    second = FileSDTargets(path, CLOSED, Settings())
    first.register("svc-a-hardening-primary", "127.0.0.1:4001", owner(sleeper.pid))
    second.register("svc-b-hardening-canary", "127.0.0.1:4002", owner(os.getpid()))
    second.register("user-job", "127.0.0.1:4003")  # no owner: stays until unregistered
    assert sorted(groups(path)) == ["svc-a-hardening-primary", "svc-b-hardening-canary", "user-job"]
    first.close()  # the end of the first run: nothing of the second goes
    assert len(groups(path)) == 3

    sleeper.kill()
    sleeper.wait()
    assert prune(path) == 1
    assert sorted(groups(path)) == ["svc-b-hardening-canary", "user-job"]


def test_concurrent_writers_lose_nothing_and_readers_never_see_half_a_file(tmp_path: Path) -> None:
    path = tmp_path / "keptn.json"
    writer = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from pytest_keptn.config import Settings
        from pytest_keptn.prometheus.file_sd import FileSDTargets
        targets = FileSDTargets(Path({str(path)!r}), {CLOSED!r}, Settings())
        for i in range(40):
            targets.register(f"{{sys.argv[1]}}-{{i}}", f"127.0.0.1:{{5000 + i}}",
                             {{"__meta_keptn_pid": "{os.getpid()}"}})
    """)
    seen: list[int] = []
    broken: list[str] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            try:
                seen.append(len(json.loads(path.read_text())))
            except FileNotFoundError:
                continue
            except ValueError as exc:
                broken.append(str(exc))

    watching = threading.Thread(target=reader)
    watching.start()
    try:
        writers = [subprocess.Popen([sys.executable, "-c", writer, name]) for name in ("a", "b", "c")]
        assert [w.wait(60) for w in writers] == [0, 0, 0]
    finally:
        done.set()
        watching.join()
    assert not broken, broken[:3]
    assert seen, "the reader never saw the file"
    assert len(groups(path)) == 120


def test_a_file_that_is_not_file_sd_is_named(tmp_path: Path) -> None:
    path = tmp_path / "keptn.json"
    path.write_text('{"targets": []}')
    with pytest.raises(ConfigError) as caught:
        FileSDTargets(path, CLOSED, Settings()).register(JOB, "127.0.0.1:4001")
    assert str(caught.value).startswith(f"{path}: --keptn-prometheus-file-sd: not a file_sd file")
    assert read(tmp_path / "missing.json") == []


def test_an_unreachable_backend_is_not_a_setup_error(tmp_path: Path) -> None:
    """The deployment cannot ask a backend that does not answer: it says so and goes on, and
    the evaluation records the outage."""
    targets = FileSDTargets(tmp_path / "keptn.json", CLOSED, Settings(query_timeout=2))
    targets.register(JOB, "127.0.0.1:4001", owner(os.getpid()))
    note = targets.confirm(timeout=5)
    assert note.startswith("cannot tell whether it scrapes the targets (Prometheus at "
                           "http://127.0.0.1:9 unreachable"), note
    targets.wait_targets_up(None, timeout=5)  # the load driver's wait: no error either


def test_stop_removes_the_stopped_processes_from_the_recorded_files(
        tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    state = tmp_path / "state"
    path = tmp_path / "keptn.json"
    targets = FileSDTargets(path, CLOSED, Settings(), workdir=state)
    targets.register(JOB + "-primary", "127.0.0.1:4001", owner(sleeper.pid))
    targets.register("other-project-job", "127.0.0.1:4002", owner(os.getpid()))
    assert (state / RECORD).read_text().splitlines() == [str(path)]
    sleeper.kill()  # as `stop` would (the deploy state records nothing here)
    sleeper.wait()
    stop = subprocess.run([sys.executable, "-m", "pytest_keptn", "stop", "--state-dir", str(state)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert stop.returncode == 0, stop.stderr
    assert f"{path}: removed 1 target(s) of stopped processes" in stop.stdout
    assert sorted(groups(path)) == ["other-project-job"]
