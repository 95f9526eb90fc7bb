"""The approval task as Keptn 0.8.7's approval-service answers it, and who answers by hand.

approval-service (``approval-service/pkg/handler/approval_triggered_event_handler.go``) answers
``approval.finished`` with ``pass`` only when the task's property for the incoming result is
exactly ``automatic``, and with ``fail`` when the incoming result is ``fail``; for anything
else (``manual``, no property, a typo) it sends nothing: the sequence waits for a person, who
answers through the bridge or ``keptn send event approval.finished`` with ``pass`` (approve)
or ``fail`` (decline). Here a later CI job answers with ``--keptn-approve``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pytest_keptn.gate.events import cloud_event

AUTOMATIC = "automatic"
WAITING = "waiting"  # the task result of an approval that waits for a person
APPROVAL_FINISHED = "sh.keptn.event.approval.finished"
APPROVE, REJECT = "approve", "reject"
# who runs the CI job, most specific first (GitHub Actions, GitLab CI, then the login)
_ACTORS = ("GITHUB_ACTOR", "GITLAB_USER_LOGIN", "USER", "USERNAME", "LOGNAME")


@dataclass(frozen=True)
class ApprovalAnswer:
    result: str  # pass | fail | waiting
    message: str


def answer(properties: Mapping[str, Any], incoming: str) -> ApprovalAnswer:
    """What approval-service 0.8.7 answers for the task's ``properties`` and the incoming
    result (``pass | warning | fail``)."""
    mode = properties.get(incoming)
    if incoming in ("pass", "warning") and mode == AUTOMATIC:
        return ApprovalAnswer("pass", f"approved automatically ({incoming}: automatic)")
    if incoming == "fail":
        return ApprovalAnswer("fail", "not approved: the incoming result is fail")
    how = f"{incoming}: {mode}" if mode is not None else f"no property for {incoming}"
    return ApprovalAnswer(WAITING, f"waiting for a manual approval ({how})")


def manual_answer(decision: str, who: str) -> ApprovalAnswer:
    """A person's answer: approve is ``pass``, reject is ``fail`` (as the bridge sends them)."""
    if decision == REJECT:
        return ApprovalAnswer("fail", f"rejected by {who}")
    return ApprovalAnswer("pass", f"approved by {who}")


def default_approver(environ: Mapping[str, str] | None = None) -> str:
    """The CI actor or user answering when ``--keptn-approver`` names nobody."""
    env = os.environ if environ is None else environ
    return next((env[k] for k in _ACTORS if env.get(k)), "unknown")


def approval_finished_event(
    *, event_id: str, time: datetime, project: str, stage: str, service: str, result: str,
    message: str, who: str, image: str, tag: str, shkeptncontext: str = "",
    triggeredid: str = "",
) -> dict[str, Any]:
    """An ``sh.keptn.event.approval.finished`` CloudEvent, as the bridge sends it for a
    person's answer, with who answered and the build in its labels."""
    return cloud_event(APPROVAL_FINISHED, {
        "project": project, "stage": stage, "service": service,
        "labels": {"approver": who, "image": image, "tag": tag},
        "status": "succeeded", "result": result, "message": message,
    }, event_id=event_id, time=time, shkeptncontext=shkeptncontext, triggeredid=triggeredid)
