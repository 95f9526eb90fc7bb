"""Stops an embedded Prometheus whose owner died without stopping it (SIGKILL, OOM kill).

Run as a script, not imported: ``python -I -S _watchdog.py OWNER_PID PROMETHEUS_PID FOLDER``.
It waits on pidfds (no polling) until either process ends. When the owner (the pytest process)
ends first, it stops Prometheus (SIGTERM, SIGKILL after 5 s) and removes its temporary folder;
when Prometheus ends first (a normal ``stop()``), it just exits. Standard library only, so it
starts in a few milliseconds; its own session, so a Ctrl-C in the terminal does not reach it.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import sys
import time

_STOP_TIMEOUT = 5.0


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
    # the owner is gone and Prometheus still runs: stop it, then remove its folder
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
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(main(sys.argv[1:]))
