"""What the local deployer registers for Prometheus: Keptn's job names, a build's address and
labels, and the target slots of a stage (``pytest_keptn_target_slots``, issue 17)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pytest_keptn.errors import DeployError
from pytest_keptn.model import StageContext, TargetSlot


def jobs(ctx: StageContext) -> tuple[str, str, str]:
    """Keptn's job names: (traffic, primary, canary)."""
    return ctx.job, ctx.job + "-primary", ctx.job + "-canary"


def address(inst: dict[str, Any]) -> str:
    return f"127.0.0.1:{inst['port']}"


def labels(ctx: StageContext, role: str, inst: dict[str, Any]) -> dict[str, str]:
    return {
        "keptn_project": ctx.project,
        "keptn_stage": ctx.stage,
        "keptn_service": ctx.service,
        "keptn_deployment": role,
        "tag": str(inst.get("tag", "")),
        # the process serving the target: a shared file_sd file drops it once it has exited
        "__meta_keptn_pid": str(inst["pid"]),
        "__meta_keptn_start_ticks": str(inst.get("start_ticks") or ""),
    }


def slot_labels(ctx: StageContext, role: str, tag: str) -> dict[str, str]:
    """The labels a build of ``role`` will be registered with, as far as known before it
    starts (discovery metadata, ``__*``, does not decide which target Prometheus scrapes)."""
    found = labels(ctx, role, {"tag": tag, "pid": 0})
    return {k: v for k, v in found.items() if not k.startswith("__")}


def slots(ctx: StageContext, live_primary: Callable[[], dict[str, Any] | None]
          ) -> list[TargetSlot] | None:
    """A blue/green stage's canary (its canary and traffic job), its live primary and a live
    baseline of the primary's build, so that none waits for Prometheus' discovery."""
    from pytest_keptn.deploy.local import BLUE_GREEN, strategy_of

    deployment = ctx.task_properties.get("deployment")
    if deployment is None:
        return None
    try:
        if strategy_of({"deploymentstrategy": "blue_green_service", **deployment}) != BLUE_GREEN:
            return None
    except DeployError:
        return None  # the deployment task says so when it runs
    traffic, primary_job, canary_job = jobs(ctx)
    wanted = [TargetSlot(jobs=(canary_job, traffic), labels=slot_labels(ctx, "canary", ctx.tag))]
    primary = live_primary()
    if primary is not None:
        wanted.append(TargetSlot(jobs=(primary_job,), address=address(primary),
                                 labels=slot_labels(ctx, "primary", str(primary["tag"]))))
        # a live baseline (slo.yaml comparison.baseline: live) is a fresh process of its build
        wanted.append(TargetSlot(jobs=(ctx.job + "-baseline",),
                                 labels=slot_labels(ctx, "baseline", str(primary["tag"]))))
    return wanted
