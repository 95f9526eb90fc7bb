"""Stops an embedded Prometheus whose owner died without stopping it (SIGKILL, OOM kill).

Run as a script, not imported: ``python -I -S _watchdog.py OWNER_PID PROMETHEUS_PID FOLDER``.
With ``--keep SECONDS STATE_DIR`` first (``--keptn-prometheus-keep``) the guarantee is "dies
after the idle time" instead of "dies with pytest": it waits while any session using it runs
(``FOLDER/users/<pid>``, see ``keep.py``), then stops Prometheus once ``FOLDER/idle`` is
SECONDS old; a session killed meanwhile counts as having let go when it died.
It waits on pidfds (no polling) until either process ends. When the owner (the pytest process)
ends first, it stops Prometheus (SIGTERM, SIGKILL after 5 s) and removes its temporary folder;
when Prometheus ends first (a normal ``stop()``), it just exits. Standard library only, so it
starts in a few milliseconds; its own session, so a Ctrl-C in the terminal does not reach it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import shutil
import signal
import sys
import time
from pathlib import Path

_STOP_TIMEOUT = 5.0
_RECHECK = 1.0


def _open(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        return None  # already gone


def _gone(fd: int, timeout: float) -> bool:
    return bool(select.select([fd], [], [], timeout)[0])


def main(argv: list[str]) -> int:
    owner_pid, prom_pid, folder = int(argv[0]), int(argv[1]), argv[2]
    prom = _open(prom_pid)
    if prom is None:
        return 0
    owner = _open(owner_pid)
    if owner is not None:
        ready, _, _ = select.select([owner, prom], [], [])
        if prom in ready:
            return 0  # stopped by its owner, who cleans up
    _stop(prom, folder)  # the owner is gone and Prometheus still runs
    return 0


def _ticks(pid: int) -> int | None:  # processes.process_start_ticks; run -I: imports nothing of ours
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()
    return int(fields[19]) if len(fields) > 19 and fields[0] not in ("Z", "X") else None


def _users(folder: Path) -> dict[int, int]:
    """The pidfds of the sessions using it; a user that is gone is removed and makes the idle
    time start (a killed pytest never said it was done)."""
    found: dict[int, int] = {}
    users = folder / "users"
    for entry in sorted(users.iterdir()) if users.is_dir() else []:
        pid = int(entry.name) if entry.name.isdigit() else -1
        recorded = entry.read_text().strip() if pid > 0 else ""
        ticks = _ticks(pid) if pid > 0 else None
        fd = _open(pid) if ticks is not None and recorded in ("", str(ticks)) else None
        if fd is not None and _gone(fd, 0):
            os.close(fd)
            fd = None
        if fd is None:
            with contextlib.suppress(OSError):
                entry.unlink()
            (folder / "idle").touch()
        else:
            found[pid] = fd
    return found


def _stop(prom: int, folder: str) -> None:
    try:
        signal.pidfd_send_signal(prom, signal.SIGTERM)
        if not _gone(prom, _STOP_TIMEOUT):
            signal.pidfd_send_signal(prom, signal.SIGKILL)
            _gone(prom, _STOP_TIMEOUT)
    except ProcessLookupError:
        pass
    time.sleep(0.05)
    if os.path.basename(folder.rstrip("/")).startswith("keptn-prometheus-"):
        shutil.rmtree(folder, ignore_errors=True)


def _forget(state_dir: str, folder: str) -> None:
    record = Path(state_dir) / "kept.json"
    with contextlib.suppress(OSError, ValueError):
        if json.loads(record.read_text()).get("folder") == folder:
            record.unlink()


def keep_main(keep: float, state_dir: str, argv: list[str]) -> int:
    prom_pid, folder = int(argv[1]), argv[2]
    prom = _open(prom_pid)
    if prom is None:
        return 0
    while True:
        if not os.path.isdir(folder):  # removed under it ('pytest_keptn stop'): nothing to keep
            _stop(prom, folder)
            return 0
        # the sessions' lock once the state folder exists (before, no session can join)
        lock_path = (Path(state_dir) if state_dir and os.path.isdir(state_dir)
                     else Path(folder)) / "kept.lock"
        with open(lock_path, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            users = _users(Path(folder))
            remaining = 0.0
            if not users:
                try:
                    remaining = os.stat(Path(folder) / "idle").st_mtime + keep - time.time()
                except OSError:
                    remaining = 0.0
                if remaining <= 0:  # idle long enough: stopped under the lock, no one joins
                    if state_dir:
                        _forget(state_dir, folder)
                    _stop(prom, folder)
                    return 0
        if users:
            # a user ending normally only removes its file (it stays alive): look again soon
            ready, _, _ = select.select([prom, *users.values()], [], [], _RECHECK)
            for fd in users.values():
                os.close(fd)
        else:
            ready, _, _ = select.select([prom], [], [], remaining)
        if prom in ready:  # stopped by a session or 'pytest_keptn stop', who clean up
            if state_dir:
                _forget(state_dir, folder)
            time.sleep(0.05)
            if os.path.basename(folder.rstrip("/")).startswith("keptn-prometheus-"):
                shutil.rmtree(folder, ignore_errors=True)
            return 0


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.argv[1:2] == ["--keep"]:
        sys.exit(keep_main(float(sys.argv[2]), sys.argv[3], sys.argv[4:]))
    sys.exit(main(sys.argv[1:]))
