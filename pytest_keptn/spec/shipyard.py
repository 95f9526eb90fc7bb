"""shipyard.yaml (``spec.keptn.sh/0.2.x``, §13): stages, sequences, tasks and their chaining.

Every ``spec.keptn.sh/0.2.x`` is read: the later ones (0.2.1 to 0.2.4, written by Keptn 0.9 to
1.x) have the 0.2.0 structure. A key we do not know is a warning (Keptn ignores it too), except
inside ``triggeredOn``, where it would change when a sequence starts: that is refused. A Keptn
0.7 shipyard (``stages:`` with ``deployment_strategy``) is refused with the command that
converts it (:mod:`pytest_keptn.spec.upgrade`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pytest_keptn.errors import KeptnError, SpecError
from pytest_keptn.model import COMPAT_087
from pytest_keptn.spec._yaml import Fields, read_source
from pytest_keptn.spec.names import name_problem
from pytest_keptn.spec.timeframe import parse_go_duration, resolve_window

API_VERSION = "spec.keptn.sh/0.2.0"
# What helm-service 0.8.7 accepts (go-utils 0.8.5 ``GetDeploymentStrategy``: exact spelling;
# ``duplicate`` and ``blue_green_service`` are the same strategy).
DEPLOYMENT_STRATEGIES = ("direct", "duplicate", "blue_green_service", "user_managed")
UPGRADE_COMMAND = "python -m pytest_keptn upgrade shipyard"
_API_0_2_X = re.compile(r"spec\.keptn\.sh/0\.2\.(0|[1-9][0-9]*)\Z")
# Masterminds semver ``NewVersion`` (lenient: ``0.2``, ``v0.2.2``; build metadata allowed)
_SEMVER = re.compile(r"v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?\Z")


def _keptn_087_accepts(api: str) -> bool:
    """shipyard-controller 0.8.7 ``ValidateShipyardVersion``: the apiVersion without its
    ``spec.keptn.sh/`` prefix, read as a semantic version, satisfies ``>= 0.2`` (a pre-release
    never does). So 0.8.7 ran 0.2.2 files (and any later version) as 0.2.0."""
    m = _SEMVER.match(api.removeprefix("spec.keptn.sh/"))
    if m is None or m.group(4):
        return False
    return tuple(int(g or 0) for g in m.group(1, 2, 3)) >= (0, 2, 0)


def check_version(api: str, f: Fields, compat: str | None) -> None:
    if compat == COMPAT_087:
        if not _keptn_087_accepts(api):
            raise f.error("apiVersion", f"expected 'spec.keptn.sh/0.2.0' or later, got {api!r}")
    elif not _API_0_2_X.match(api):
        raise f.error(
            "apiVersion",
            f"expected 'spec.keptn.sh/0.2.x' (0.2.0 to 0.2.4 share one structure), got {api!r}",
        )


@dataclass(frozen=True)
class Trigger:
    """``triggeredOn`` entry: ``<stage>.<sequence>.finished`` plus an optional ``selector.match``."""

    event: str
    match: Mapping[str, str] = field(default_factory=dict)

    @property
    def stage(self) -> str:
        return self.event.split(".")[0]

    @property
    def sequence(self) -> str:
        parts = self.event.split(".")
        return parts[1] if len(parts) == 3 else ""

    def fires(self, result: str, last_task: str = "") -> bool:
        """Whether this trigger starts its sequence when the event's sequence finished with
        ``result`` after ``last_task`` (§13): without ``selector.match`` on pass or warning;
        with one when ``match["result"]`` or ``match["<last task>.result"]`` equals it."""
        if not self.match:
            return result in ("pass", "warning")
        return self.match.get("result") == result or (
            bool(last_task) and self.match.get(f"{last_task}.result") == result
        )

    @property
    def wanted(self) -> str:
        """What ``fires`` needs, in words."""
        if not self.match:
            return "pass or warning"
        return " or ".join(f"{k}={v}" for k, v in self.match.items())


@dataclass(frozen=True)
class Task:
    name: str
    properties: Mapping[str, Any] = field(default_factory=dict)
    triggered_after: str | None = None


@dataclass(frozen=True)
class Sequence:
    name: str
    triggered_on: tuple[Trigger, ...] = ()
    tasks: tuple[Task, ...] = ()


@dataclass(frozen=True)
class Stage:
    name: str
    sequences: tuple[Sequence, ...] = ()

    @property
    def has_evaluation(self) -> bool:
        """Whether any sequence of the stage runs an evaluation task."""
        return any(t.name == "evaluation" for s in self.sequences for t in s.tasks)

    def sequence(self, name: str) -> Sequence | None:
        for seq in self.sequences:
            if seq.name == name:
                return seq
        return None


@dataclass(frozen=True)
class Shipyard:
    name: str
    stages: tuple[Stage, ...]
    file: str = "shipyard.yaml"

    def stage(self, name: str) -> Stage:
        """The stage called ``name``; SpecError naming it when the shipyard has none."""
        for st in self.stages:
            if st.name == name:
                return st
        known = ", ".join(s.name for s in self.stages) or "none"
        raise SpecError(
            f"no stage named {name!r} (stages: {known})", file=self.file, field="spec.stages"
        )

    def triggered_by(
        self, stage: str, sequence: str, result: str, last_task: str
    ) -> list[tuple[Stage, Sequence]]:
        """Sequences started when ``<stage>.<sequence>`` finishes with ``result`` (§13).

        Without ``selector.match`` a trigger fires on ``pass`` or ``warning``; with one it fires
        when ``match["result"]`` or ``match["<last task>.result"]`` equals ``result``.
        """
        event = f"{stage}.{sequence}.finished"
        fired: list[tuple[Stage, Sequence]] = []
        for st in self.stages:
            for seq in st.sequences:
                for trig in seq.triggered_on:
                    if trig.event == event and trig.fires(result, last_task):
                        fired.append((st, seq))
                        break
        return fired


def shipyard_from_mapping(doc: Any, *, file: str, compat: str | None = None) -> Shipyard:
    f = Fields(file)
    if doc is None:
        raise f.error("", "empty shipyard.yaml")
    top = f.mapping(doc, "(top level)", allow_null=False)
    if "apiVersion" not in top and "stages" in top:
        raise f.error(
            "",
            "this is Keptn 0.7's shipyard format (stages with deployment_strategy); convert it "
            f"to spec.keptn.sh/0.2.0 with: {UPGRADE_COMMAND} {file} --output {file}",
        )
    f.unknown_keys(top, ("apiVersion", "kind", "metadata", "spec"), "")
    api = f.string(top.get("apiVersion"), "apiVersion")
    check_version(api, f, compat)
    kind = f.string(top.get("kind"), "kind")
    if kind != "Shipyard":
        raise f.error("kind", f"expected 'Shipyard', got {kind!r}")
    meta = f.mapping(top.get("metadata"), "metadata")
    f.unknown_keys(meta, ("name",), "metadata")
    name = f.string(meta.get("name"), "metadata.name")
    if name and (problem := name_problem(name)):
        raise f.error("metadata.name", f"{problem}: {name!r} (the project name goes into file names)")
    spec = f.mapping(top.get("spec"), "spec")
    f.unknown_keys(spec, ("stages",), "spec")
    raw_stages = f.sequence(spec.get("stages"), "spec.stages")
    if not raw_stages:
        raise f.error("spec.stages", "no stages")
    stages: list[Stage] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_stages):
        path = f"spec.stages[{i}]"
        st = f.mapping(raw, path, allow_null=False)
        f.unknown_keys(st, ("name", "sequences"), path)
        sname = f.string(st.get("name"), f"{path}.name")
        if not sname:
            raise f.error(f"{path}.name", "missing stage name")
        if problem := name_problem(sname):
            raise f.error(f"{path}.name", f"{problem}: {sname!r} (stage names go into file names)")
        if sname in seen:
            raise f.error(f"{path}.name", f"duplicate stage name {sname!r}")
        seen.add(sname)
        sequences: list[Sequence] = []
        seq_names: set[str] = set()
        for j, raw_seq in enumerate(f.sequence(st.get("sequences"), f"{path}.sequences")):
            spath = f"{path}.sequences[{j}]"
            sq = f.mapping(raw_seq, spath, allow_null=False)
            f.unknown_keys(sq, ("name", "triggeredOn", "tasks"), spath)
            qname = f.string(sq.get("name"), f"{spath}.name")
            if not qname:
                raise f.error(f"{spath}.name", "missing sequence name")
            if problem := name_problem(qname):
                raise f.error(
                    f"{spath}.name", f"{problem}: {qname!r} (sequence names go into file names)"
                )
            if qname in seq_names:
                raise f.error(
                    f"{spath}.name", f"duplicate sequence name {qname!r} in stage {sname!r}"
                )
            seq_names.add(qname)
            triggers: list[Trigger] = []
            for k, raw_trig in enumerate(f.sequence(sq.get("triggeredOn"), f"{spath}.triggeredOn")):
                tpath = f"{spath}.triggeredOn[{k}]"
                tr = f.mapping(raw_trig, tpath, allow_null=False)
                _trigger_keys(f, tr, ("event", "selector"), tpath, compat)
                event = f.string(tr.get("event"), f"{tpath}.event")
                sel = f.mapping(tr.get("selector"), f"{tpath}.selector")
                _trigger_keys(f, sel, ("match",), f"{tpath}.selector", compat)
                match = {
                    f.string(k2, f"{tpath}.selector.match"): f.string(
                        v2, f"{tpath}.selector.match.{k2}"
                    )
                    for k2, v2 in f.mapping(sel.get("match"), f"{tpath}.selector.match").items()
                }
                triggers.append(Trigger(event, match))
            tasks: list[Task] = []
            for k, raw_task in enumerate(f.sequence(sq.get("tasks"), f"{spath}.tasks")):
                kpath = f"{spath}.tasks[{k}]"
                tk = f.mapping(raw_task, kpath, allow_null=False)
                f.unknown_keys(tk, ("name", "properties", "triggeredAfter"), kpath)
                tname = f.string(tk.get("name"), f"{kpath}.name")
                if not tname:
                    raise f.error(f"{kpath}.name", "missing task name")
                after = tk.get("triggeredAfter")
                properties = f.mapping(tk.get("properties"), f"{kpath}.properties")
                if tname == "deployment" and compat != COMPAT_087:
                    _check_strategy(f, properties, kpath, f"{sname}.{qname}")
                if compat != COMPAT_087:
                    _check_timing(f, tk, properties, kpath, f"{sname}.{qname}")
                tasks.append(
                    Task(
                        tname,
                        properties,
                        None if after is None else f.string(after, f"{kpath}.triggeredAfter"),
                    )
                )
            sequences.append(Sequence(qname, tuple(triggers), tuple(tasks)))
        stages.append(Stage(sname, tuple(sequences)))

    known = {(s.name, q.name) for s in stages for q in s.sequences}
    for i, st_obj in enumerate(stages):
        for j, seq in enumerate(st_obj.sequences):
            for k, trig in enumerate(seq.triggered_on):
                path = f"spec.stages[{i}].sequences[{j}].triggeredOn[{k}].event"
                parts = trig.event.split(".")
                if len(parts) != 3 or parts[2] != "finished":
                    raise f.error(
                        path, f"expected '<stage>.<sequence>.finished', got {trig.event!r}"
                    )
                if parts[0] not in seen:
                    raise f.error(
                        path, f"{trig.event!r} names stage {parts[0]!r}, which does not exist"
                    )
                if (parts[0], parts[1]) not in known and parts[1] != "evaluation":
                    # evaluation is a built-in single-task sequence of every stage
                    raise f.error(
                        path,
                        f"{trig.event!r} names sequence {parts[1]!r}, which stage {parts[0]!r} does not have",
                    )
    return Shipyard(name, tuple(stages), file)


def _trigger_keys(
    f: Fields, mapping: Mapping[Any, Any], known: tuple[str, ...], path: str, compat: str | None
) -> None:
    """An unknown key in a trigger would change when its sequence starts: refused (Keptn
    0.8.7 ignores it, and so does ``--keptn-compat=0.8.7``, with a warning)."""
    if compat == COMPAT_087:
        f.unknown_keys(mapping, known, path)
        return
    for key in mapping:
        if key not in known:
            raise f.error(
                f"{path}.{key}",
                f"unknown key: it would change when the sequence starts, which pytest-keptn "
                f"cannot honour (known: {', '.join(known)})",
            )


def _check_strategy(f: Fields, properties: Mapping[Any, Any], path: str, where: str) -> None:
    """helm-service 0.8.7 fails a deployment task whose ``deploymentstrategy`` it does not
    know; we say so before anything is deployed."""
    raw = properties.get("deploymentstrategy")
    expected = ", ".join(DEPLOYMENT_STRATEGIES)
    if raw is None or raw == "":
        raise f.error(
            f"{path}.properties.deploymentstrategy",
            f"the deployment task of {where} has no deploymentstrategy (expected one of {expected})",
        )
    if not isinstance(raw, str) or raw not in DEPLOYMENT_STRATEGIES:
        raise f.error(
            f"{path}.properties.deploymentstrategy",
            f"the deployment task of {where} has deploymentstrategy {raw!r}, which Keptn does "
            f"not know (expected one of {expected})",
        )


def _check_timing(f: Fields, task: Mapping[Any, Any], properties: Mapping[Any, Any], path: str,
                  where: str) -> None:
    """A ``triggeredAfter`` that is no Go duration (shipyard-controller 0.8.7 logs it and
    triggers at once) and an evaluation window lighthouse would refuse (the evaluation errors
    when it runs) are refused before anything is deployed."""
    after = task.get("triggeredAfter")
    if after is not None:
        try:
            parse_go_duration(str(after))
        except ValueError as exc:
            raise f.error(f"{path}.triggeredAfter", f"{task.get('name')} task of {where}: {exc}") \
                from None
    if task.get("name") != "evaluation":
        return
    given = {k: properties.get(k) for k in ("timeframe", "start", "end")}
    if not any(given.values()):
        return
    values = {k: None if v is None or v == "" else str(v) for k, v in given.items()}
    try:
        resolve_window(**values, now=datetime.now(UTC))
    except KeptnError as exc:
        key = next(k for k in ("timeframe", "start", "end") if values[k])
        raise f.error(f"{path}.properties.{key}",
                      f"the evaluation task of {where}: {exc.message}") from None


def load_shipyard(
    source: str | Path | bytes | Mapping[str, Any],
    *,
    file: str | None = None,
    compat: str | None = None,
) -> Shipyard:
    """Load a shipyard.yaml from a path, raw bytes or a mapping; SpecError on any mistake.

    Any ``spec.keptn.sh/0.2.x`` is read; ``compat="0.8.7"`` accepts what shipyard-controller
    0.8.7 accepted (any apiVersion that reads as a version >= 0.2) and leaves the deployment
    strategy to the deployment task, as Keptn 0.8.7 does.
    """
    doc, name, _ = read_source(source, file, "shipyard.yaml")
    return shipyard_from_mapping(doc, file=name, compat=compat)
