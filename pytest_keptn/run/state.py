"""The state of one sequence run: typed while it runs, JSON only in its file under the run
folder, where every xdist worker reads the same outcome."""

from __future__ import annotations

import json
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from pytest_keptn.gate.record import EvaluationRecord
from pytest_keptn.model import Deployment, Instance, LoadResult, Window
from pytest_keptn.system.files import atomic_write, file_lock


@dataclass
class TaskOutcome:
    name: str
    result: str  # pass | warning | fail | skipped
    message: str = ""
    seconds: float = 0.0


@dataclass
class SequenceState:
    stage: str
    sequence: str
    status: str = "pending"  # pending | running | finished | not-triggered
    next_task: int = 0
    tasks: list[TaskOutcome] = field(default_factory=list)
    result: str | None = None  # pass | warning | fail once finished
    message: str = ""
    deployment: Deployment | None = None
    load: LoadResult | None = None
    window: tuple[str, str] | None = None
    evaluation: EvaluationRecord | None = None  # see run.evaluation.evaluation_task
    rolled_back: bool = False
    rollback_note: str = ""  # what the rollback did, in the deployer's words
    triggered_by: str = ""
    context: str = ""  # Keptn's shkeptncontext: one per delivery of a build across its stages
    triggeredid: str = ""  # this sequence run's id: the triggeredid of its events
    # the result of the finished sequence that triggered this one (Keptn passes it on as the
    # first task's incoming result; "pass" when the run started it)
    triggered_result: str = "pass"

    @property
    def failed_task(self) -> TaskOutcome | None:
        return next((t for t in self.tasks if t.result == "fail"), None)

    @property
    def last_task(self) -> str:
        return self.tasks[-1].name if self.tasks else ""

    @property
    def graded(self) -> str:
        """The result the sequence ends with: the last graded task's, else pass (every task
        skipped: nothing here answered otherwise)."""
        graded = [t.result for t in self.tasks if t.result in ("pass", "warning", "fail")]
        return graded[-1] if graded else "pass"

    @property
    def incoming(self) -> str:
        """The result the next task receives: the last graded task's, else the one the
        sequence was triggered with."""
        graded = [t.result for t in self.tasks if t.result in ("pass", "warning", "fail")]
        return graded[-1] if graded else self.triggered_result

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["tasks"] = [asdict(t) for t in self.tasks]
        data["deployment"] = deployment_to_json(self.deployment) if self.deployment else None
        data["load"] = load_to_json(self.load) if self.load else None
        data["evaluation"] = self.evaluation.to_json() if self.evaluation else None
        return data

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> SequenceState:
        data = dict(raw)
        data["tasks"] = [TaskOutcome(**t) for t in data.get("tasks", [])]
        if data.get("window") is not None:
            data["window"] = tuple(data["window"])
        if data.get("deployment") is not None:
            data["deployment"] = deployment_from_json(data["deployment"])
        if data.get("load") is not None:
            data["load"] = load_from_json(data["load"])
        if data.get("evaluation") is not None:
            data["evaluation"] = EvaluationRecord.from_json(data["evaluation"])
        return cls(**data)


def deployment_to_json(deployment: Deployment) -> dict[str, Any]:
    return {
        "strategy": deployment.strategy,
        "url": deployment.url,
        "deployment_names": list(deployment.deployment_names),
        "instances": [
            {**asdict(i), "log": str(i.log) if i.log else None} for i in deployment.instances
        ],
        "details": dict(deployment.details),
    }


def deployment_from_json(raw: Mapping[str, Any]) -> Deployment:
    instances = tuple(
        Instance(**{**i, "log": Path(i["log"]) if i.get("log") else None})
        for i in raw.get("instances", [])
    )
    return Deployment(
        strategy=raw["strategy"],
        url=raw["url"],
        deployment_names=tuple(raw.get("deployment_names", ())),
        instances=instances,
        details=dict(raw.get("details", {})),
    )


def load_to_json(load: LoadResult) -> dict[str, Any]:
    data = asdict(load)
    data["window"] = [load.window.start.isoformat(), load.window.end.isoformat()]
    return data


def load_from_json(raw: Mapping[str, Any]) -> LoadResult:
    data = dict(raw)
    start, end = data.pop("window")
    return LoadResult(window=Window(datetime.fromisoformat(start), datetime.fromisoformat(end)), **data)


class StateStore:
    """One JSON file per sequence in the run folder, replaced whole on every save, and a file
    lock per sequence so that under pytest-xdist each step runs once for all workers."""

    def __init__(self, rundir: Path) -> None:
        self.rundir = rundir
        # state file -> ((inode, mtime, size), the state it holds), see load
        self._parsed: dict[Path, tuple[tuple[int, int, int], SequenceState]] = {}

    def _file(self, stage: str, sequence: str) -> Path:
        return self.rundir / f"{stage}.{sequence}.json"

    def load(self, stage: str, sequence: str) -> SequenceState:
        """The sequence's state as its file says. Every objective item of a stage asks, and the
        file holds the whole evaluation: it is parsed again only when it changed (a new file
        from ``save``, here or in another xdist worker), not once per item."""
        path = self._file(stage, sequence)
        try:
            key = _file_key(path)
        except FileNotFoundError:
            return SequenceState(stage=stage, sequence=sequence)
        cached = self._parsed.get(path)
        if cached is not None and cached[0] == key:
            return cached[1]
        state = SequenceState.from_json(json.loads(path.read_text()))
        self._parsed[path] = (key, state)
        return state

    def save(self, state: SequenceState) -> None:
        path = self._file(state.stage, state.sequence)
        atomic_write(path, json.dumps(state.to_json(), default=str))
        self._parsed[path] = (_file_key(path), state)

    def locked(self, stage: str, sequence: str) -> AbstractContextManager[None]:
        # no timeout: the holder is running the sequence's tasks (a deployment, a load test)
        return file_lock(self.rundir / f"{stage}.{sequence}.lock")


def _file_key(path: Path) -> tuple[int, int, int]:
    """What changes whenever a state file is replaced (``save`` writes a new file)."""
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns, stat.st_size
