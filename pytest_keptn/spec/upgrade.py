"""Keptn 0.7 shipyards (``stages:`` with strategies) to ``spec.keptn.sh/0.2.0``.

The conversion is Keptn 0.8.7's ``keptn upgrade project NAME --shipyard`` (``transformShipyard``
in ``cli/cmd/upgrade_project.go``): per stage a ``delivery`` sequence (deployment with the
stage's strategy, test with its test strategy, evaluation, approval with its approval
strategy, release), a ``rollback`` sequence on ``delivery`` ``result: fail`` for
``blue_green_service`` stages, and a ``delivery-direct`` sequence (a ``direct`` deployment);
every later stage's sequences are triggered by the previous stage's ``<sequence>.finished``.

One difference, said in a comment of the output: a stage without a deployment strategy (a
quality-gates-only stage) got ``deploymentstrategy: ""``, which Keptn's own helm-service then
refused; its ``delivery`` sequence is written without the deployment task instead.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pytest_keptn.spec._yaml import Fields, read_source

_STAGE_KEYS = ("name", "deployment_strategy", "test_strategy", "remediation_strategy",
               "approval_strategy")


@dataclass(frozen=True)
class Upgrade:
    """A converted shipyard: the 0.2.0 document and the notes to put above it."""

    shipyard: dict[str, Any]
    notes: tuple[str, ...] = ()

    def to_yaml(self) -> str:
        head = ["# Converted from a Keptn 0.7 shipyard by `python -m pytest_keptn upgrade "
                "shipyard`,", "# as Keptn 0.8.7's `keptn upgrade project --shipyard` converts it."]
        for note in self.notes:
            head += [f"# {line}" for line in textwrap.wrap(note, 96)]
        body = yaml.safe_dump(self.shipyard, sort_keys=False, default_flow_style=False,
                              allow_unicode=True)
        return "\n".join(head) + "\n" + body


def _approval(f: Fields, raw: Any, path: str) -> tuple[str, str]:
    """go-utils 0.8.5 ``ApprovalStrategy``: ``manual`` (any case) is manual, anything else
    (missing, misspelt) is the zero value, automatic."""
    if raw is None:
        return "automatic", "automatic"
    block = f.mapping(raw, path)

    def one(key: str) -> str:
        value = block.get(key)
        text = "" if value is None else f.string(value, f"{path}.{key}")
        return "manual" if text.lower() == "manual" else "automatic"

    return one("pass"), one("warning")


def _triggers(stages: list[str], index: int, sequence: str) -> list[dict[str, Any]]:
    return [] if index == 0 else [{"event": f"{stages[index - 1]}.{sequence}.finished"}]


def _delivery(name: str, triggers: list[dict[str, Any]], strategy: str | None, test: str,
              approval: tuple[str, str]) -> dict[str, Any]:
    tasks: list[dict[str, Any]] = []
    if strategy is not None:
        tasks.append({"name": "deployment", "properties": {"deploymentstrategy": strategy}})
    tasks += [
        {"name": "test", "properties": {"teststrategy": test}},
        {"name": "evaluation"},
        {"name": "approval", "properties": {"pass": approval[0], "warning": approval[1]}},
        {"name": "release"},
    ]
    sequence: dict[str, Any] = {"name": name}
    if triggers:
        sequence["triggeredOn"] = triggers
    sequence["tasks"] = tasks
    return sequence


def transform_shipyard(doc: Any, *, file: str = "shipyard.yaml", project: str = "") -> Upgrade:
    """The ``spec.keptn.sh/0.2.0`` equivalent of a Keptn 0.7 shipyard document.

    Raises :class:`~pytest_keptn.errors.SpecError` naming the file and field when ``doc`` is
    not a Keptn 0.7 shipyard (already 0.2, no stages, a stage without a name).
    """
    f = Fields(file)
    top = f.mapping(doc, "(top level)", allow_null=False)
    if "apiVersion" in top:
        raise f.error("apiVersion", f"already {top['apiVersion']!r}: nothing to convert")
    raw_stages = f.sequence(top.get("stages"), "stages")
    if not raw_stages:
        # Keptn's converter stops here too, "to avoid deleting data"
        raise f.error("stages", "no stages: nothing converted")
    f.unknown_keys(top, ("stages", "registry"), "")
    rows: list[tuple[str, str, str, tuple[str, str], str]] = []
    for i, raw in enumerate(raw_stages):
        path = f"stages[{i}]"
        st = f.mapping(raw, path, allow_null=False)
        f.unknown_keys(st, _STAGE_KEYS, path)
        name = f.string(st.get("name"), f"{path}.name")
        if not name:
            raise f.error(f"{path}.name", "missing stage name")
        rows.append((
            name,
            f.string(st.get("deployment_strategy"), f"{path}.deployment_strategy"),
            f.string(st.get("test_strategy"), f"{path}.test_strategy"),
            _approval(f, st.get("approval_strategy"), f"{path}.approval_strategy"),
            f.string(st.get("remediation_strategy"), f"{path}.remediation_strategy"),
        ))
    names = [row[0] for row in rows]
    notes: list[str] = []
    stages: list[dict[str, Any]] = []
    for index, (name, strategy, test, approval, remediation) in enumerate(rows):
        if not strategy:
            notes.append(
                f"Stage {name!r} has no deployment_strategy (quality gates only): its delivery "
                "sequence has no deployment task (Keptn 0.8's converter wrote "
                'deploymentstrategy: "", which its helm-service refused).')
        if remediation:
            notes.append(f"Stage {name!r}: remediation_strategy {remediation!r} is not converted "
                         "(neither did Keptn 0.8's converter).")
        sequences = [_delivery("delivery", _triggers(names, index, "delivery"),
                               strategy or None, test, approval)]
        if strategy == "blue_green_service":  # only these get a rollback sequence, as in Keptn
            sequences.append({
                "name": "rollback",
                "triggeredOn": [{"event": f"{name}.delivery.finished",
                                 "selector": {"match": {"result": "fail"}}}],
                "tasks": [{"name": "rollback"}],
            })
        sequences.append(_delivery("delivery-direct", _triggers(names, index, "delivery-direct"),
                                   "direct", test, approval))
        stages.append({"name": name, "sequences": sequences})
    if not project:
        notes.append("metadata.name: Keptn took the project's name from the project; set it "
                     "here (or pass --keptn-project).")
    shipyard = {
        "apiVersion": "spec.keptn.sh/0.2.0",
        "kind": "Shipyard",
        "metadata": {"name": project},
        "spec": {"stages": stages},
    }
    return Upgrade(shipyard, tuple(notes))


def upgrade_file(source: str | Path | bytes | Mapping[str, Any], *, file: str | None = None,
                 project: str = "") -> Upgrade:
    """Read a Keptn 0.7 shipyard.yaml and convert it (see :func:`transform_shipyard`)."""
    doc, name, _ = read_source(source, file, "shipyard.yaml")
    return transform_shipyard(doc, file=name, project=project)
