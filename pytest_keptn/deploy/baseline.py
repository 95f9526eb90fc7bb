"""The live baseline of a stage (slo.yaml ``comparison.baseline: live``), task by task.

The runtime calls one function per moment of the sequence:

* after the deployment task, :func:`start` asks ``pytest_keptn_start_baseline`` for a fresh
  instance of the build the stage serves, beside the canary (none: no earlier build, and the
  relative criteria fall back to the history, saying so), and records it in the deployment;
* the test task gives :func:`url` to ``pytest_keptn_run_load`` (half the load each);
* the evaluation task gets :func:`samples`: every ``pytest_keptn_get_live_samples`` answer,
  merged, for :func:`pytest_keptn.gate.scoring.evaluate`;
* at the end of the stage, whatever happened, :func:`stop` (``pytest_keptn_stop_baseline``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from pytest_keptn.errors import KeptnError
from pytest_keptn.gate.live import LiveBaseline
from pytest_keptn.model import COMPAT_087, Deployment, Instance, LoadResult, StageContext, Window
from pytest_keptn.spec.slo import SLO

_KEY, _WHY = "live_baseline", "live_baseline_unavailable"


def wanted(slo: SLO | None, settings: Any) -> bool:
    """Whether the stage's slo.yaml opts in, or ``--keptn-live-baseline`` asks for it (never
    under ``--keptn-compat=0.8.7``)."""
    if slo is None or getattr(settings, "compat", None) == COMPAT_087:
        return False
    return slo.comparison.live or bool(getattr(settings, "live_baseline", False))


def _with(deployment: Deployment, **details: Any) -> Deployment:
    # kept in the deployment's details: they travel with the sequence state (xdist workers)
    return replace(deployment, details={**deployment.details, **details})


def instance(deployment: Deployment | None) -> Instance | None:
    raw = deployment.details.get(_KEY) if deployment is not None else None
    if not isinstance(raw, dict):
        return None
    return Instance(
        role="baseline", url=str(raw["url"]), image=str(raw["image"]), tag=str(raw["tag"]),
        pid=raw.get("pid"), log=Path(raw["log"]) if raw.get("log") else None,
    )


def url(deployment: Deployment | None) -> str | None:
    """Where half the test load goes (None: no baseline runs)."""
    found = instance(deployment)
    return found.url if found is not None else None


def start(hook: Any, ctx: StageContext, deployment: Deployment) -> Deployment:
    """Start the baseline beside the canary: the deployment, with the baseline or why not.

    A baseline that cannot start is a reason to compare with the history, not an error."""
    if deployment.strategy != "blue_green_service":
        return _with(deployment, **{_WHY: f"a {deployment.strategy} deployment has no canary"})
    try:
        started = hook.pytest_keptn_start_baseline(ctx=ctx, deployment=deployment)
    except KeptnError as exc:
        ctx.say(f"baseline: did not start ({exc}); relative criteria compare with history")
        return _with(deployment, **{_WHY: f"the baseline did not start: {exc}"})
    if started is None:
        ctx.say("baseline: no earlier build in the stage; relative criteria compare with history")
        return _with(deployment, **{_WHY: "no earlier build in the stage"})
    raw = {"url": started.url, "image": started.image, "tag": started.tag, "pid": started.pid,
           "log": str(started.log) if started.log else None}
    return _with(deployment, **{_KEY: raw})


def samples(
    hook: Any,
    ctx: StageContext,
    deployment: Deployment | None,
    indicators: Sequence[str],
    window: Window,
    load: LoadResult | None,
) -> LiveBaseline:
    """Every provider's samples, the first answer per indicator winning."""
    if instance(deployment) is None:
        why = deployment.details.get(_WHY) if deployment is not None else None
        return LiveBaseline(unavailable=str(why or "no baseline ran"))
    merged = LiveBaseline()
    answers = hook.pytest_keptn_get_live_samples(
        ctx=ctx, indicators=list(indicators), window=window, load=load
    )
    for answer in answers or ():
        if answer is not None:
            merged = merged.merged(answer)
    return merged


def stop(hook: Any, ctx: StageContext, deployment: Deployment | None) -> None:
    """Stop the baseline (never promoted); a failure is said, not raised (the stage is over)."""
    found = instance(deployment)
    if found is None:
        return
    try:
        hook.pytest_keptn_stop_baseline(ctx=ctx, baseline=found)
    except KeptnError as exc:
        ctx.say(f"baseline: stopping it failed: {exc}")
