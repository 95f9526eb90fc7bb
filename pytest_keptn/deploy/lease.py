"""One live run delivers a stage/service at a time (two CI jobs on one runner share a state folder).

The deployment task takes the stage/service's *lease* in the deploy state (``leases`` beside
``services`` in ``deploy-state.json``): the run folder and the pid and start ticks of the
process that owns the run. Release and rollback give it back, and so does the end of the
session. Another run that reaches the deployment task of the same stage/service meanwhile
waits, printing a progress line every few seconds, for at most ``--keptn-stage-lock-timeout``
seconds (0: refuse at once), and then fails its deployment task naming the run that holds the
stage; nothing of the other run is touched. A lease whose owner no longer runs (a run killed
with SIGKILL) is taken over.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytest_keptn.deploy import state as st
from pytest_keptn.errors import DeployError
from pytest_keptn.system.processes import ProcessRegistry, alive

POLL = 0.2  # seconds between two looks at the lease while waiting
SAY_EVERY = 5.0  # seconds between two progress lines while waiting

def _mine(lease: dict[str, Any], run_id: str) -> bool:
    if run_id:
        return bool(lease.get("run") == run_id)
    return bool(lease.get("pid") == os.getpid() and not lease.get("run"))


def _live(lease: dict[str, Any]) -> bool:
    return alive(int(lease.get("pid") or 0), lease.get("start_ticks"))


def describe(lease: dict[str, Any]) -> str:
    return (f"the run of pid {lease.get('pid')} delivering {lease.get('tag') or '?'} "
            f"since {lease.get('since', '?')}")


def holder(workdir: Path, stage: str, service: str, run_id: str) -> dict[str, Any] | None:
    """The live lease another run holds on ``stage``/``service``, if any."""
    lease = st.read(workdir).get("leases", {}).get(st.key(stage, service))
    if isinstance(lease, dict) and not _mine(lease, run_id) and _live(lease):
        return lease
    return None


def acquire(workdir: Path, stage: str, service: str, *, tag: str, timeout: float,
            say: Callable[[str], None], processes: ProcessRegistry) -> None:
    """Take the lease of ``stage``/``service`` for the run of ``processes``; wait while
    another live run holds it."""
    run_id = processes.run_id
    workdir = Path(workdir)
    key = st.key(stage, service)
    started = time.monotonic()
    next_say = started
    while True:
        if holder(workdir, stage, service, run_id) is None:
            with st.locked(workdir) as data:
                leases = data.setdefault("leases", {})
                current = leases.get(key)
                if not isinstance(current, dict) or _mine(current, run_id) or not _live(current):
                    pid, ticks = processes.run_owner()
                    leases[key] = {"run": run_id, "pid": pid, "start_ticks": ticks,
                                   "tag": tag, "since": st.now()}
                    processes.held_leases.add((str(workdir), key))
                    return
        lease = holder(workdir, stage, service, run_id)
        if lease is None:
            continue
        waited = time.monotonic() - started
        if waited >= timeout:
            raise DeployError(
                f"{stage}/{service} is being delivered by another run ({describe(lease)}) in "
                f"{workdir}" + (f"; waited {waited:.0f}s" if timeout > 0 else "")
                + ": nothing deployed; raise --keptn-stage-lock-timeout to wait longer, or "
                "give each job its own --keptn-state-dir",
                field="keptn_stage_lock_timeout",
            )
        if time.monotonic() >= next_say:
            say(f"deployment: waiting for {describe(lease)} to finish {stage}/{service} "
                f"({waited:.0f}s of at most {timeout:g}s, --keptn-stage-lock-timeout)")
            next_say = time.monotonic() + SAY_EVERY
        time.sleep(POLL)


def release(workdir: Path, stage: str, service: str, processes: ProcessRegistry) -> None:
    """Give the lease of ``stage``/``service`` back (only if this run holds it)."""
    workdir = Path(workdir)
    key = st.key(stage, service)
    processes.held_leases.discard((str(workdir), key))
    if not st.state_path(workdir).exists():
        return
    with st.locked(workdir) as data:
        lease = data.get("leases", {}).get(key)
        if isinstance(lease, dict) and _mine(lease, processes.run_id):
            del data["leases"][key]


def release_held(processes: ProcessRegistry) -> None:
    """Give back every lease the run of ``processes`` still holds (the end of the session)."""
    for workdir, key in sorted(processes.held_leases):
        stage, _, service = key.partition("/")
        try:
            release(Path(workdir), stage, service, processes)
        except Exception:  # bookkeeping must never stop the cleanup; a dead owner frees it
            pass
    processes.held_leases.clear()


def release_run(workdir: Path, run_id: str) -> None:
    """Give back every lease of run ``run_id`` (the xdist controller at the end of the run)."""
    if not run_id or not st.state_path(workdir).exists():
        return
    with st.locked(workdir) as data:
        leases = data.get("leases", {})
        for key in [k for k, v in leases.items() if isinstance(v, dict) and v.get("run") == run_id]:
            del leases[key]
