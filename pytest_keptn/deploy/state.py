"""The deployer's persistent state: what runs in each stage, surviving between pytest runs.

``<workdir>/deploy-state.json``::

    {"version": 1,
     "services": {"<stage>/<service>": {"primary": {...}, "canary": {...}}},
     "leases": {"<stage>/<service>": {"run": ..., "pid": ..., ...}}}

``leases`` says which live run is delivering a stage/service (:mod:`.lease`).

Each instance records ``pid``, ``start_ticks`` (to detect a recycled pid), ``port``, ``url``,
``image``, ``tag``, ``strategy``, ``started`` (UTC ISO time), ``log`` and ``deployer``.
Writers hold an exclusive lock on ``deploy-state.json.lock`` and replace the file
atomically, so two pytest processes (two CI jobs on one runner) never interleave.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pytest_keptn.errors import DeployError
from pytest_keptn.system.files import file_lock, write_json

STATE_FILE = "deploy-state.json"

Instance = dict[str, Any]
State = dict[str, Any]


def state_path(workdir: Path) -> Path:
    return Path(workdir) / STATE_FILE


def key(stage: str, service: str) -> str:
    return f"{stage}/{service}"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _empty() -> State:
    return {"version": 1, "services": {}}


def read(workdir: Path) -> State:
    """The current state (without locking: a consistent snapshot thanks to atomic replace)."""
    path = state_path(workdir)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return _empty()
    except (OSError, ValueError) as exc:
        raise DeployError(f"cannot read deployer state: {exc}", file=str(path)) from None
    if not isinstance(data, dict) or not isinstance(data.get("services"), dict):
        raise DeployError("not a pytest-keptn deployer state", file=str(path))
    return data


def _write(workdir: Path, data: State) -> None:
    path = state_path(workdir)
    try:
        write_json(path, data, indent=2, sort_keys=True)
    except OSError as exc:  # a full or read-only state folder: one line, the path
        raise DeployError(f"cannot write the deployer state: {exc.strerror or exc}",
                          file=str(path)) from None


@contextlib.contextmanager
def locked(workdir: Path) -> Iterator[State]:
    """Read-modify-write the state under an exclusive lock; the yielded dict is written back."""
    workdir = Path(workdir)
    lock_path = workdir / (STATE_FILE + ".lock")
    held = contextlib.ExitStack()
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        held.enter_context(file_lock(lock_path))
    except OSError as exc:
        raise DeployError(f"cannot use the state folder: {exc.strerror or exc}",
                          file=str(lock_path)) from None
    with held:
        data = read(workdir)
        yield data
        _write(workdir, data)


def get(data: State, stage: str, service: str, role: str) -> Instance | None:
    entry = data["services"].get(key(stage, service), {})
    found = entry.get(role)
    return found if isinstance(found, dict) else None


def put(data: State, stage: str, service: str, role: str, instance: Instance | None) -> None:
    entry = data["services"].setdefault(key(stage, service), {})
    if instance is None:
        entry.pop(role, None)
    else:
        entry[role] = instance
    if not entry:
        data["services"].pop(key(stage, service), None)


def drop_pid(workdir: Path, pid: int) -> None:
    """Forget every instance recorded with ``pid`` (it was stopped)."""
    if not state_path(workdir).exists():
        return
    with locked(workdir) as data:
        for name in list(data["services"]):
            entry = data["services"][name]
            for role in list(entry):
                if isinstance(entry[role], dict) and entry[role].get("pid") == pid:
                    del entry[role]
            if not entry:
                del data["services"][name]


def recorded(workdir: Path, pid: int) -> bool:
    """Whether an instance with ``pid`` is recorded (someone may still need it)."""
    data = read(workdir)
    return any(
        isinstance(inst, dict) and inst.get("pid") == pid
        for entry in data["services"].values() for inst in entry.values()
    )
