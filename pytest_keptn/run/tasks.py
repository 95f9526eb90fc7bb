"""The executors of a sequence's tasks, one function per Keptn task name (``TASKS``).

Each is handed a :class:`TaskCall`: the stage's :class:`StageContext`, the task's shipyard
properties and the sequence state it may fill in; it answers ``(result, message)`` with
result ``pass | warning | fail | skipped``. A :class:`KeptnError` it raises fails the task.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pytest_keptn.deploy import baseline as live_baseline
from pytest_keptn.errors import KeptnError
from pytest_keptn.model import StageContext
from pytest_keptn.run.state import SequenceState

if TYPE_CHECKING:
    from pytest_keptn.gate.history import History
    from pytest_keptn.run.plan import StagePlan

TaskResult = tuple[str, str]


@dataclass
class TaskCall:
    """What one task executor gets."""

    ctx: StageContext
    plan: StagePlan
    state: SequenceState
    hook: Any  # config.hook: the pytest_keptn_* hooks
    history: Callable[[], History]
    properties: dict[str, Any] = field(default_factory=dict)
    pinned: list[Any] | None = None  # --keptn-baseline: the stage's pinned comparison basis
    user_failures: list[str] = field(default_factory=list)  # failed user tests of the stage

    @property
    def build(self) -> str:
        return f"{self.ctx.image}:{self.ctx.tag}"


def deploy(call: TaskCall) -> TaskResult:
    if call.ctx.settings.deployer == "none":
        return "skipped", "deployer none"
    properties = dict(call.properties)
    properties.setdefault("deploymentstrategy", "blue_green_service")
    deployment = call.hook.pytest_keptn_deploy(ctx=call.ctx, properties=properties)
    if deployment is None:
        return "skipped", "no deployer answered"
    if live_baseline.wanted(call.plan.slo, call.ctx.settings):
        deployment = live_baseline.start(call.hook, call.ctx, deployment)
    call.state.deployment = deployment
    names = ",".join(deployment.deployment_names)
    # a backend of the user's own (file_sd) must scrape what was registered, else a setup error
    scraped = call.ctx.targets.confirm(float(call.ctx.settings.deploy_timeout))
    return "pass", f"{call.build} as {names} at {deployment.url}" + (f"; {scraped}" if scraped else "")


def test(call: TaskCall) -> TaskResult:
    ctx, state = call.ctx, call.state
    if call.user_failures:
        failures = call.user_failures
        return "fail", f"{len(failures)} test(s) failed: {', '.join(failures[:3])}"
    url = state.deployment.url if state.deployment is not None else None
    load = None
    if url is not None and ctx.settings.deployer != "none":
        load = call.hook.pytest_keptn_run_load(ctx=ctx, url=url, properties=call.properties,
                                               baseline_url=live_baseline.url(state.deployment))
    if load is None:
        # No load driver: the window is the test task itself, until the canary is scraped.
        started = datetime.now(UTC)
        if state.deployment is not None:
            ctx.targets.wait_scraped([urlsplit(state.deployment.url).netloc],
                                     float(ctx.settings.deploy_timeout))
        state.window = (started.isoformat(), datetime.now(UTC).isoformat())
        summary = "no load test configured"
    else:
        state.load = load
        state.window = (load.window.start.isoformat(), load.window.end.isoformat())
        summary = (f"{load.requests} requests, {load.failures} failures, {load.rps:.1f} rps, "
                   f"p95 {load.p95_ms:.0f} ms over {load.window.seconds:.1f}s")
    if state.deployment is not None:
        problem = call.hook.pytest_keptn_check_deployment(ctx=ctx, deployment=state.deployment)
        if problem:
            return "fail", f"{problem} ({summary})"
        if load is not None:
            # the load window may start before the canary's first scrape (wait_scraped): it
            # was scraped up after all; checked after the deployer's check, which names a
            # build that stopped during the load
            ctx.targets.check_scraped([urlsplit(u).netloc for u in
                                       (url, live_baseline.url(state.deployment)) if u])
    return "pass", summary


def release(call: TaskCall) -> TaskResult:
    if call.state.deployment is None:
        return "skipped", "nothing deployed"
    done = call.hook.pytest_keptn_release(ctx=call.ctx, deployment=call.state.deployment)
    if not done:
        return "skipped", "no deployer answered"
    # helm-service answers release.finished with the result it was triggered with: after a
    # warning gate the release, and so the sequence, finishes warning (Keptn 0.8.7
    # helm-service/controller/release_handler.go)
    return call.state.incoming, f"{call.build} promoted to primary"


def rollback(call: TaskCall, *, reason: str = "rollback task") -> TaskResult:
    state = call.state
    if state.deployment is None or state.rolled_back:
        return "skipped", "nothing to roll back"
    deployment = state.deployment
    call.ctx.say(f"rollback ({reason}) of the {deployment.strategy} deployment")
    try:
        done = call.hook.pytest_keptn_rollback(ctx=call.ctx, deployment=deployment)
    except KeptnError as exc:
        call.ctx.say(f"rollback FAILED: {exc}")
        state.rollback_note = f"rollback failed: {exc}"
        return "fail", str(exc)
    state.rolled_back = bool(done)
    # a deployer may say what it did (a string); otherwise what each strategy means
    note = done if isinstance(done, str) else (
        "the canary was removed; the primary keeps serving"
        if deployment.strategy == "blue_green_service" else "rolled back")
    if done:
        state.rollback_note = note
    return ("pass", note) if done else ("skipped", "no deployer answered")
