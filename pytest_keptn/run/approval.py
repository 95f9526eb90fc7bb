"""The approval task, and a sequence that waits for a person across CI jobs.

A manual approval (``gate.approval.answer`` says ``waiting``) is recorded in the history as a
pending approval of the build in the stage, and the sequence's state is kept in
``<state-dir>/approvals/<id>.json``; the session ends without failing. A later job with
``--keptn-approve`` (or ``=reject``) answers it and continues the sequence at the approval
task, with the state it had (the deployment it made, its evaluation).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_keptn.config import Settings
from pytest_keptn.errors import ConfigError
from pytest_keptn.gate.approval import (
    APPROVE,
    REJECT,
    WAITING,
    answer,
    approval_finished_event,
    default_approver,
    manual_answer,
)
from pytest_keptn.gate.events import write_event
from pytest_keptn.run.state import SequenceState
from pytest_keptn.run.tasks import TaskCall, TaskResult
from pytest_keptn.system.files import atomic_write

if TYPE_CHECKING:
    from pytest_keptn.gate.history import Approval, History
    from pytest_keptn.spec.shipyard import Sequence

# tasks whose work a continuing job cannot redo silently: their state must be at hand
_STATEFUL = ("deployment", "test", "evaluation")


def waiting_file(workdir: Path, approval_id: str) -> Path:
    return workdir / "approvals" / f"{approval_id}.json"


def waiting_approval(settings: Settings, history: History, workdir: Path, *, project: str,
                     stage: str, service: str, sequence: str | None = None) -> Approval | None:
    """The approval of this build that a sequence in ``stage`` waits for: the pending one, else
    the newest one already answered (``pytest-keptn approve ID``) whose sequence has not
    continued yet (its waiting state is still here)."""
    pending = history.pending_approval(project=project, stage=stage, service=service,
                                       image=settings.image, tag=settings.tag, sequence=sequence)
    if pending is not None:
        return pending
    for found in history.approvals(project):
        if (found.stage, found.service, found.image, found.tag) == (
                stage, service, settings.image, settings.tag) and sequence in (None, found.sequence):
            return found if waiting_file(workdir, found.id).is_file() else None
    return None


def approval_task(call: TaskCall) -> TaskResult:
    ctx, state, settings = call.ctx, call.state, call.ctx.settings
    history = call.history()
    if settings.approve:
        waiting = waiting_approval(settings, history, ctx.workdir, project=ctx.project,
                                   stage=ctx.stage, service=call.plan.service,
                                   sequence=state.sequence)
        if waiting is not None:
            return _answer(call, history, waiting)
    decided = answer(call.properties, state.incoming)
    if decided.result != WAITING:
        return decided.result, decided.message
    asked = history.record_pending_approval(
        project=ctx.project, stage=ctx.stage, service=call.plan.service, image=ctx.image,
        tag=ctx.tag, sequence=state.sequence, context=state.context)
    saved = waiting_file(ctx.workdir, asked.id)
    saved.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(saved, json.dumps(state.to_json(), default=str))
    how = f"pytest --keptn-stage={ctx.stage} --keptn-tag={ctx.tag} --keptn-approve"
    return WAITING, (f"{decided.message} of {ctx.image}:{ctx.tag}: answer with {how} "
                     "(or --keptn-approve=reject)")


def _answer(call: TaskCall, history: History, pending: Approval) -> TaskResult:
    ctx, settings = call.ctx, call.ctx.settings
    if pending.pending:
        who = settings.approver or default_approver()
        decision = settings.approve or APPROVE
        history.answer_approval(pending.id, approve=decision == APPROVE, who=who)
    else:  # answered already, with pytest-keptn approve: continue as it was answered
        who, decision = pending.who, APPROVE if pending.decision == "approved" else REJECT
    answered = manual_answer(decision, who)
    result, message = answered.result, answered.message
    if settings.events:
        write_event(Path(settings.events), approval_finished_event(
            event_id=str(uuid.uuid4()), time=datetime.now(UTC), project=ctx.project,
            stage=ctx.stage, service=call.plan.service, result=result, message=message,
            who=who, image=ctx.image, tag=ctx.tag, shkeptncontext=pending.context,
            triggeredid=call.state.triggeredid))
    waiting_file(ctx.workdir, pending.id).unlink(missing_ok=True)
    return result, message


def check_approve(settings: Settings, history: History, workdir: Path, *, project: str,
                  stage: str, service: str) -> None:
    """``--keptn-approve`` needs an approval of this build waiting in the run's first stage."""
    if not settings.approve:
        return
    build = f"{settings.image}:{settings.tag}"
    found = waiting_approval(settings, history, workdir, project=project, stage=stage,
                             service=service)
    if found is None:
        raise ConfigError(f"no approval of {build} waits in stage {stage!r} "
                          f"(history {history.location})", field="--keptn-approve")


def resume(settings: Settings, history: History, workdir: Path, *, project: str, stage: str,
           service: str, sequence: Sequence) -> SequenceState | None:
    """The state a sequence waited in for the approval ``--keptn-approve`` answers, positioned
    at its approval task; None when nothing of this build waits in that sequence."""
    if not settings.approve:
        return None
    pending = waiting_approval(settings, history, workdir, project=project, stage=stage,
                               service=service, sequence=sequence.name)
    if pending is None:
        return None
    saved = waiting_file(workdir, pending.id)
    if saved.is_file():
        state = SequenceState.from_json(json.loads(saved.read_text()))
    else:
        index = next(i for i, t in enumerate(sequence.tasks) if t.name == "approval")
        before = [t.name for t in sequence.tasks[:index] if t.name in _STATEFUL]
        if before:
            raise ConfigError(
                f"{stage}.{sequence.name} waits for approval after its {', '.join(before)} "
                f"task(s), whose state is kept where it waited ({saved} is not here): answer "
                "on that runner, or keep --keptn-state-dir across the jobs",
                field="--keptn-approve")
        state = SequenceState(stage=stage, sequence=sequence.name, next_task=index,
                              context=pending.context)
    state.status, state.result, state.message = "running", None, ""
    state.triggered_by = f"continues where it waited for approval since {pending.requested:%Y-%m-%d %H:%M:%S}Z"
    return state
