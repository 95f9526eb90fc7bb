"""A kept embedded Prometheus (``--keptn-prometheus-keep``): reused by the next compatible
session of the same state folder, stopped after a bounded idle time.

The state folder's ``prometheus/kept.json`` names the running instance (pid and its start
ticks, port, folder, a compatibility key); ``kept.lock`` orders sessions, ``pytest_keptn stop``
and the watchdog. Inside the instance's own folder, ``users/<pid>`` marks each session using it
(with the pid's start ticks, so a reused pid is not mistaken for it) and ``idle``'s mtime is
when the last one let go. The watchdog (``_watchdog.py --keep``) waits on the users' pidfds;
once none is left (ended or killed), it stops Prometheus when ``idle`` is older than the idle
time. Standard library only: the watchdog and the early spawn import nothing heavy.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from pytest_keptn.system.files import file_lock
from pytest_keptn.system.processes import alive, process_start_ticks

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)?")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
RECORD = "kept.json"
LOCK = "kept.lock"


@dataclass(frozen=True)
class Kept:
    pid: int
    ticks: int | None
    port: int
    folder: Path


def parse_duration(text: str) -> float:
    """``10m``, ``600s``, ``1.5h``, ``600`` (seconds), ``0``: seconds; ValueError otherwise."""
    match = _DURATION.fullmatch(str(text).strip().lower())
    if match is None:
        raise ValueError(text)
    return float(match.group(1)) * _UNIT[match.group(2) or "s"]


def locked(workdir: Path) -> contextlib.AbstractContextManager[None]:
    """``kept.lock``: sessions, ``pytest_keptn stop`` and the watchdog in turn."""
    return file_lock(workdir / LOCK)


def _read(workdir: Path) -> dict[str, object] | None:
    try:
        raw = json.loads((workdir / RECORD).read_text())
    except (OSError, ValueError):
        return None
    return raw if isinstance(raw, dict) else None


def join(folder: Path, pid: int) -> None:
    """Count session ``pid`` as using the Prometheus of ``folder``."""
    users = folder / "users"
    users.mkdir(exist_ok=True)
    (users / str(pid)).write_text(str(process_start_ticks(pid) or ""))
    (folder / "idle").touch()


def leave(folder: Path, pid: int) -> None:
    """Session ``pid`` is done with it: the idle time counts from now."""
    with contextlib.suppress(OSError):
        (folder / "users" / str(pid)).unlink()
    with contextlib.suppress(OSError):
        (folder / "idle").touch()


def publish(workdir: Path, *, pid: int, port: int, folder: Path, key: str,
            keep_seconds: float) -> None:
    with locked(workdir):
        tmp = workdir / (RECORD + ".tmp")
        tmp.write_text(json.dumps({"pid": pid, "ticks": process_start_ticks(pid), "port": port,
                                   "folder": str(folder), "key": key, "keep": keep_seconds}))
        os.replace(tmp, workdir / RECORD)


def take(workdir: Path, key: str, pid: int) -> Kept | None:
    """The kept Prometheus of ``workdir`` if it runs with configuration ``key``; session ``pid``
    then counts as using it (under the lock: the watchdog cannot stop it meanwhile)."""
    if not (workdir / RECORD).exists():
        return None
    with locked(workdir):
        raw = _read(workdir)
        if raw is None or raw.get("key") != key:
            return None
        try:
            found = Kept(int(str(raw["pid"])), int(str(raw["ticks"])) if raw.get("ticks") else None,
                         int(str(raw["port"])), Path(str(raw["folder"])))
        except (KeyError, ValueError):
            return None
        if not alive(found.pid, found.ticks) or not (found.folder / "sd").is_dir():
            return None
        join(found.folder, pid)
        return found


def forget(workdir: Path, folder: Path) -> None:
    """Drop the record if it names ``folder`` (its Prometheus is being stopped)."""
    if not (workdir / RECORD).exists():
        return
    with locked(workdir):
        raw = _read(workdir)
        if raw is not None and raw.get("folder") == str(folder):
            with contextlib.suppress(OSError):
                (workdir / RECORD).unlink()


def terminate(pid: int, ticks: int | None, timeout: float) -> None:
    """SIGTERM, then SIGKILL after ``timeout``: a Prometheus this process did not start."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not alive(pid, ticks):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while alive(pid, ticks) and time.monotonic() < deadline:
            time.sleep(0.02)


def stop_kept(workdir: Path, timeout: float = 5.0) -> str | None:
    """``pytest_keptn stop``: stop the kept Prometheus of ``workdir``; what was stopped."""
    if not (workdir / RECORD).exists():
        return None
    with locked(workdir):
        raw = _read(workdir)
        with contextlib.suppress(OSError):
            (workdir / RECORD).unlink()
    if raw is None:
        return None
    try:
        pid, port = int(str(raw["pid"])), raw.get("port")
        ticks = int(str(raw["ticks"])) if raw.get("ticks") else None
    except (KeyError, ValueError):
        return None
    if not alive(pid, ticks):
        return None
    terminate(pid, ticks, timeout)
    folder = str(raw.get("folder", ""))
    if os.path.basename(folder.rstrip("/")).startswith("keptn-prometheus-"):
        shutil.rmtree(folder, ignore_errors=True)
    return f"stopped the kept embedded Prometheus at http://127.0.0.1:{port} (pid {pid})"
