"""The ``pytest_keptn_*`` hooks: how deployers, load drivers and SLI providers plug in.

Every built-in implementation (local and helm deployers, the Locust driver, the Prometheus and
Locust SLI providers) is a plugin registered through these same hooks, so a user replaces one
by implementing the hook in a ``conftest.py`` or in a plugin of their own: implementations run
newest first and, for ``firstresult`` hooks, the first one that returns something wins.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_keptn.gate.live import LiveBaseline
    from pytest_keptn.gate.scoring import Evaluation
    from pytest_keptn.model import (
        Deployment,
        Instance,
        LoadResult,
        SLIResult,
        StageContext,
        TargetSlot,
        Window,
    )


@pytest.hookspec(firstresult=True)
def pytest_keptn_deploy(ctx: StageContext, properties: dict[str, object]) -> Deployment | None:
    """Deploy ``ctx.image:ctx.tag`` for the stage's deployment task and say where traffic goes.

    ``properties`` are the shipyard task's properties (``deploymentstrategy`` among them).
    Raise :class:`pytest_keptn.errors.DeployError` when the build does not come up.

    Example::

        @pytest.hookimpl(tryfirst=True)
        def pytest_keptn_deploy(ctx, properties):
            url = my_platform.deploy(ctx.service, ctx.image, ctx.tag)
            return Deployment(strategy="direct", url=url, deployment_names=("direct",))
    """


@pytest.hookspec(firstresult=True)
def pytest_keptn_release(ctx: StageContext, deployment: Deployment) -> bool | None:
    """Promote the canary to primary after a passing or warning gate. Return True when done.

    Example::

        def pytest_keptn_release(ctx, deployment):
            my_platform.promote(ctx.service)
            return True
    """


@pytest.hookspec(firstresult=True)
def pytest_keptn_rollback(ctx: StageContext, deployment: Deployment) -> bool | str | None:
    """Undo the deployment after a failure: remove the canary (the primary keeps serving), or
    for ``direct`` return to the previous build. Return True when done, or one line saying what
    was done (shown in the report); raise DeployError when nothing could be rolled back.

    Example::

        def pytest_keptn_rollback(ctx, deployment):
            my_platform.remove_canary(ctx.service)
            return True
    """


@pytest.hookspec
def pytest_keptn_prepare_load(ctx: StageContext) -> None:
    """A test task of stage ``ctx.stage`` will probably start soon (the stage before has just
    finished its load): a load driver may get ready, so that its start-up is not on the
    critical path. The Locust driver starts a runner that imports Locust meanwhile.

    Example::

        def pytest_keptn_prepare_load(ctx):
            my_load_tool.warm_up()
    """


@pytest.hookspec
def pytest_keptn_target_slots(ctx: StageContext) -> list[TargetSlot] | None:
    """The scrape targets the stage's builds will need, registered when the embedded
    Prometheus starts, before anything is deployed.

    Prometheus applies a new file_sd target only on a 5 s discovery tick; a target registered
    in advance is scraped from the start, so a build that listens on its port is scraped on the
    next scrape interval. A deployer that can choose its ports takes one with
    ``ctx.targets.slot(job, labels)`` (None: use any port and register it). Every
    implementation is asked; the lists are joined. The local deployer gives its canary (canary
    and traffic job) and the stage's live primary.

    Example::

        def pytest_keptn_target_slots(ctx):
            return [TargetSlot(jobs=(ctx.job + "-canary",), labels={"team": "a"})]
    """


@pytest.hookspec(firstresult=True)
def pytest_keptn_check_deployment(ctx: StageContext, deployment: Deployment) -> str | None:
    """Say what is wrong with the deployment under test after the test task, or None.

    Called once the load (or the user's tests) ran and before the evaluation: a build that
    crashed under load fails the test task with this message, instead of being evaluated on
    the data it left behind. The local deployer checks that the canary's process still runs.

    Example::

        def pytest_keptn_check_deployment(ctx, deployment):
            pods = my_platform.crashed_pods(ctx.service)
            return f"{len(pods)} pod(s) restarted during the test" if pods else None
    """


@pytest.hookspec(firstresult=True)
def pytest_keptn_start_baseline(ctx: StageContext, deployment: Deployment) -> Instance | None:
    """Start a live baseline beside the canary: a fresh instance of the build the stage serves.

    Called after the deployment task when the stage's slo.yaml opts in with
    ``comparison.baseline: live``. The baseline runs the primary's image:tag, is scraped under
    job ``<service>-<project>-<stage>-baseline``, receives half of the test load, and is never
    promoted. Return None when the stage serves no earlier build (the comparison then falls
    back to the history). ``pytest_keptn_stop_baseline`` is always called at the end of the
    stage for what this returned.

    Example::

        def pytest_keptn_start_baseline(ctx, deployment):
            url = my_platform.run(ctx.service, my_platform.current_tag(ctx.stage))
            return Instance(role="baseline", url=url, image=ctx.image, tag="v1")
    """


@pytest.hookspec
def pytest_keptn_stop_baseline(ctx: StageContext, baseline: Instance) -> None:
    """Stop the baseline ``pytest_keptn_start_baseline`` started (whatever the stage's outcome)."""


@pytest.hookspec(firstresult=True)
def pytest_keptn_run_load(
    ctx: StageContext, url: str, properties: dict[str, object], baseline_url: str | None
) -> LoadResult | None:
    """Drive load against ``url`` for the stage's test task; return the exact load window.

    ``baseline_url`` (a live baseline runs beside the canary, slo.yaml ``comparison.baseline:
    live``): split the load evenly between ``url`` and it over the same window; the built-in
    driver records per-request samples of both sides for the statistical comparison.
    Implementations may leave the parameter out (pluggy passes only what they accept).

    Raise :class:`pytest_keptn.errors.LoadError` when the load could not be driven.

    Example::

        def pytest_keptn_run_load(ctx, url, properties):
            start = datetime.now(UTC)
            run_k6(url)
            return LoadResult(window=Window(start, datetime.now(UTC)))
    """


@pytest.hookspec
def pytest_keptn_get_sli(
    ctx: StageContext,
    indicators: Sequence[str],
    window: Window,
    deployment: str,
    load: LoadResult | None,
) -> Sequence[SLIResult] | None:
    """Retrieve values for the indicators this provider knows; leave the others out.

    Every implementation is asked. For each indicator the first implementation (newest
    registered first) that returns a result with a status other than ``unknown`` wins.
    An indicator no provider answers becomes a failed objective ("no value received from
    SLI provider").

    Example::

        def pytest_keptn_get_sli(ctx, indicators, window, deployment, load):
            return [SLIResult(metric=n, value=datadog.query(n, window)) for n in indicators
                    if n.startswith("dd_")]
    """


@pytest.hookspec
def pytest_keptn_get_live_samples(
    ctx: StageContext, indicators: Sequence[str], window: Window, load: LoadResult | None
) -> LiveBaseline | None:
    """Canary and baseline samples of the indicators this provider knows, for the live-baseline
    comparison (slo.yaml ``comparison.baseline: live``, a baseline ran beside the canary).

    Every implementation is asked; the first (newest registered first) that has samples of an
    indicator wins; ``LiveBaseline.missing`` says why an indicator it knows has none (the
    objective then compares with the history and says so). The built-ins: Prometheus (a
    range query per side) and Locust (per-request response times, failures, requests/s).

    Example::

        def pytest_keptn_get_live_samples(ctx, indicators, window, load):
            if "dd_latency" not in indicators:
                return None
            canary, baseline = datadog.points("latency", window, ("canary", "baseline"))
            return LiveBaseline({"dd_latency": LiveSamples(Samples(canary), Samples(baseline))})
    """


@pytest.hookspec
def pytest_keptn_sli_names(
    stage: str, service: str, indicators: Mapping[str, str]
) -> Collection[str] | None:
    """Declare the SLI names this plugin's ``pytest_keptn_get_sli`` serves in ``stage``.

    Asked once, before anything is deployed: an objective whose ``sli`` is neither in the
    merged ``sli.yaml`` (``indicators``), nor a built-in Prometheus or Locust SLI, nor declared
    here is a usage error naming the slo.yaml, the objective and the closest known names; so is
    one whose sli.yaml query is a Dynatrace query that no plugin declared. A plugin that
    implements ``pytest_keptn_get_sli`` *without* this hook may serve any name: while one is
    registered, objectives are not checked at all (so providers written before this hook keep
    working).

    Example::

        def pytest_keptn_sli_names(stage, service, indicators):
            return {"dd_latency_p95", "dd_errors"}

        def pytest_keptn_get_sli(ctx, indicators, window, deployment, load):
            return [SLIResult(metric=n, value=datadog.query(n, window)) for n in indicators
                    if n.startswith("dd_")]
    """


@pytest.hookspec
def pytest_keptn_evaluation_finished(
    ctx: StageContext, evaluation: Evaluation, event: dict[str, object]
) -> None:
    """Observe a finished evaluation; ``event`` is the Keptn ``evaluation.finished`` CloudEvent.

    Example::

        def pytest_keptn_evaluation_finished(ctx, evaluation, event):
            slack.post(f"{ctx.stage}: {evaluation.result} ({evaluation.score:.1f}%)")
    """
