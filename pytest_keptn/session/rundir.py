"""The run folder: where the sequences' state files, locks and the workers' progress lines
live, shared by every xdist worker of the run."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from pytest_keptn.system import processes as procs

PROGRESS_FILE = "progress.log"
OWNER_FILE = "owner"


def new_rundir() -> Path:
    """A run folder in $TMPDIR that says which process owns it. The folders of sessions that
    were killed (SIGKILL leaves them behind) are removed on the way."""
    for stale in Path(tempfile.gettempdir()).glob("keptn-run-*"):
        try:
            pid, ticks = (int(x) for x in (stale / OWNER_FILE).read_text().split())
        except (OSError, ValueError):
            continue  # not ours to judge (no owner file: an older version, or being created)
        if not procs.alive(pid, ticks):
            shutil.rmtree(stale, ignore_errors=True)
    rundir = Path(tempfile.mkdtemp(prefix="keptn-run-"))
    (rundir / OWNER_FILE).write_text(f"{os.getpid()} {procs.process_start_ticks(os.getpid())}")
    return rundir
