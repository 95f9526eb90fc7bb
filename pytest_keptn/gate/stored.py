"""What the history stores and reads back: timestamps, evaluation data checked before it is
trusted (a damaged row is skipped, never fatal), and the events of an import file."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pytest_keptn.gate.events import EVALUATION_FINISHED, build_of
from pytest_keptn.gate.scoring import Evaluation

INVALIDATED = "sh.keptn.event.evaluation.invalidated"


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_stamp(text: str) -> datetime:
    for layout in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.strptime(text, layout).replace(tzinfo=UTC)
        except ValueError:
            continue
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return datetime.fromtimestamp(0, UTC)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# ------------------------------------------------------------------ what a readable row holds


def _number(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


def _kind(value: Any) -> str:
    names = {str: "a string", list: "a list", dict: "an object", bool: "a boolean"}
    return names.get(type(value), "null" if value is None else type(value).__name__)


def _targets_problem(where: str, targets: Any) -> str:
    if targets is None:
        return ""
    if not isinstance(targets, list):
        return f"{where} is {_kind(targets)}, not a list"
    for j, target in enumerate(targets):
        if not isinstance(target, Mapping):
            return f"{where}[{j}] is {_kind(target)}, not an object"
        if "targetValue" in target and not _number(target["targetValue"]):
            return f"{where}[{j}].targetValue is {_kind(target['targetValue'])}, not a number"
    return ""


def evaluation_data_problem(data: Any) -> str:
    """What makes ``data`` unusable as an evaluation.finished ``data``, or "" if nothing."""
    if not isinstance(data, Mapping):
        return f"data is {_kind(data)}, not an object"
    ev = data.get("evaluation")
    if ev is None:
        return ""
    if not isinstance(ev, Mapping):
        return f"evaluation is {_kind(ev)}, not an object"
    if "score" in ev and not _number(ev["score"]):
        return f"evaluation.score is {_kind(ev['score'])}, not a number"
    for name in ("result", "timeStart", "timeEnd"):
        if ev.get(name) is not None and not isinstance(ev[name], str):
            return f"evaluation.{name} is {_kind(ev[name])}, not a string"
    compared = ev.get("comparedEvents")
    if compared is not None and not (isinstance(compared, list)
                                     and all(isinstance(c, str) for c in compared)):
        return "evaluation.comparedEvents is not a list of ids"
    rows = ev.get("indicatorResults")
    if rows is None:
        return ""
    if not isinstance(rows, list):
        return f"evaluation.indicatorResults is {_kind(rows)}, not a list"
    for i, row in enumerate(rows):
        where = f"evaluation.indicatorResults[{i}]"
        if not isinstance(row, Mapping):
            return f"{where} is {_kind(row)}, not an object"
        if not _number(row.get("score")):
            return f"{where}.score is {_kind(row.get('score'))}, not a number"
        value = row.get("value")
        if not isinstance(value, Mapping):
            return f"{where}.value is {_kind(value)}, not an object"
        if not isinstance(value.get("metric"), str):
            return f"{where}.value.metric is {_kind(value.get('metric'))}, not a string"
        if "value" in value and not _number(value["value"]):
            return f"{where}.value.value is {_kind(value['value'])}, not a number"
        for name in ("passTargets", "warningTargets"):
            problem = _targets_problem(f"{where}.{name}", row.get(name))
            if problem:
                return problem
    return ""


def read_data(text: Any) -> tuple[dict[str, Any], str]:
    """A stored ``data`` column: (the mapping, "") or ({}, why it cannot be read)."""
    try:
        data = json.loads(text)
    except (TypeError, ValueError) as exc:
        return {}, f"data is not JSON ({exc})"
    problem = evaluation_data_problem(data)
    return ({}, problem) if problem else (dict(data), "")


def imported(line: str) -> tuple[tuple[str, Any] | None, str]:
    """One JSON line of an import: (("finished", row) | ("invalidated", (trigger, reason)) |
    None for other event types, "") or (None, what is wrong with it)."""
    try:
        event = json.loads(line)
    except json.JSONDecodeError as exc:
        return None, f"not JSON ({exc.msg})"
    if not isinstance(event, Mapping):
        return None, f"the event is {_kind(event)}, not a JSON object"
    kind = event.get("type")
    if not isinstance(kind, str):
        return None, "the event has no type"
    data = event.get("data")
    if kind not in (EVALUATION_FINISHED, INVALIDATED):
        return None, ""
    if not isinstance(data, Mapping):
        return None, "event without data"
    for name in ("triggeredid", "shkeptncontext", "time"):
        if event.get(name) is not None and not isinstance(event[name], str):
            return None, f"{name} is {_kind(event[name])}, not a string"
    if kind == INVALIDATED:
        message = data.get("message")
        return ("invalidated", (str(event.get("triggeredid") or ""),
                                str(message) if isinstance(message, str) and message
                                else "invalidated")), ""
    eid = event.get("id")
    if not isinstance(eid, str) or not eid:
        return None, (f"id is {_kind(eid)}, not a string" if eid else
                      "evaluation.finished without id")
    for name in ("project", "stage", "service", "result"):
        if data.get(name) is not None and not isinstance(data[name], str):
            return None, f"data.{name} is {_kind(data[name])}, not a string"
    problem = evaluation_data_problem(data)
    if problem:
        return None, f"data.{problem}" if not problem.startswith("data ") else problem
    evaluation = Evaluation.from_keptn(data)
    ev = data.get("evaluation") or {}
    image, tag = build_of(data)
    return ("finished", (
        eid, str(data.get("project") or ""), str(data.get("stage") or ""),
        str(data.get("service") or ""), image, tag,
        stamp(parse_stamp(str(event.get("time") or ""))),
        str(ev.get("timeStart") or ""), str(ev.get("timeEnd") or ""),
        evaluation.outcome, evaluation.score, None, json.dumps(_stored(data)),
        str(event.get("shkeptncontext") or ""), str(event.get("triggeredid") or ""),
    )), ""  # fmt: skip


def _stored(data: Mapping[str, Any]) -> dict[str, Any]:
    """The event data as the history keeps it: the build lives in columns, not in ``data``."""
    return {k: v for k, v in data.items() if k not in ("labels", "configurationChange")}

