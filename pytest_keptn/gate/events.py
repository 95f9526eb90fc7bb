"""Keptn CloudEvents: ``sh.keptn.event.evaluation.finished`` written as JSON files."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from pytest_keptn.errors import HistoryError
from pytest_keptn.model import Window
from pytest_keptn.system.files import atomic_write

EVALUATION_FINISHED = "sh.keptn.event.evaluation.finished"
SOURCE = "pytest-keptn"


def cloud_event(event_type: str, data: dict[str, Any], *, event_id: str, time: datetime,
                shkeptncontext: str | None = None, triggeredid: str | None = None) -> dict[str, Any]:
    """A Keptn CloudEvent 1.0 envelope: ``shkeptncontext`` defaults to the event's own id, and
    ``triggeredid`` is left out when there is none."""
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": event_id,
        "source": SOURCE,
        "type": event_type,
        "time": Window.keptn_time(time),
        "datacontenttype": "application/json",
        "shkeptncontext": shkeptncontext or event_id,
    }
    if triggeredid:
        event["triggeredid"] = triggeredid
    event["data"] = data
    return event


def evaluation_finished_event(
    data: Mapping[str, Any],
    *,
    event_id: str,
    time: datetime,
    shkeptncontext: str | None = None,
    triggeredid: str | None = None,
    image: str = "",
    tag: str = "",
) -> dict[str, Any]:
    """A CloudEvent 1.0 envelope around an evaluation.finished ``data`` mapping.

    ``shkeptncontext``: the delivery (one per build across its stages; default the event id);
    ``triggeredid``: the sequence run the event belongs to. ``image``/``tag``: the build, put
    into ``labels`` and Keptn's ``configurationChange`` so each event says what it evaluated.
    """
    body = dict(data)
    if image or tag:
        body["labels"] = {**(body.get("labels") or {}), "image": image, "tag": tag}
        body["configurationChange"] = {"values": {"image": f"{image}:{tag}" if tag else image}}
    return cloud_event(EVALUATION_FINISHED, body, event_id=event_id, time=time,
                       shkeptncontext=shkeptncontext, triggeredid=triggeredid)


def build_of(data: Mapping[str, Any]) -> tuple[str, str]:
    """The (image, tag) an evaluation.finished ``data`` names: its ``labels``, else Keptn's
    ``configurationChange.values.image`` (``image:tag``); ("", "") when it names none."""
    labels = data.get("labels")
    if isinstance(labels, Mapping) and isinstance(labels.get("image"), str):
        tag = labels.get("tag")
        return labels["image"], tag if isinstance(tag, str) else ""
    change = data.get("configurationChange")
    values = change.get("values") if isinstance(change, Mapping) else None
    ref = values.get("image") if isinstance(values, Mapping) else None
    if not isinstance(ref, str) or not ref:
        return "", ""
    name, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:  # no tag, or the colon was a registry port
        return ref, ""
    return name, tag


def write_event(folder: Path, event: Mapping[str, Any]) -> Path:
    """Write one event as ``<folder>/<stage>-<service>-<id>.json``; returns the path."""
    data = event.get("data") or {}
    parts = [str(data.get("stage") or ""), str(data.get("service") or ""), str(event.get("id"))]
    name = "-".join(p for p in parts if p) + ".json"
    path = Path(folder) / name
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(event, indent=2, sort_keys=False) + "\n")
    except OSError as exc:
        raise HistoryError(f"cannot write event: {exc.strerror or exc}", file=str(path)) from None
    return path
