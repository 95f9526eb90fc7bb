"""The evaluation task: fetch every SLI over the load window, score the gate as Keptn's
lighthouse did, record it in the history and as an ``evaluation.finished`` event."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_keptn.deploy import baseline as live_baseline
from pytest_keptn.errors import ConfigError, HistoryError, KeptnError
from pytest_keptn.gate.events import evaluation_finished_event, write_event
from pytest_keptn.gate.record import Basis, EvaluationRecord
from pytest_keptn.gate.scoring import Evaluation, errored_evaluation, evaluate
from pytest_keptn.model import COMPAT_087, SLIResult, SLIStatus, Window
from pytest_keptn.report.wording import outage_headline, record_verdict
from pytest_keptn.run.state import SequenceState
from pytest_keptn.run.tasks import TaskCall, TaskResult
from pytest_keptn.spec.timeframe import resolve_window

if TYPE_CHECKING:
    from pytest_keptn.config import Settings

# An sli.yaml indicator with this name counts the requests the canary served during the load
# window; when it differs from what Locust sent by more than 20 %, the evaluation fails instead
# of scoring data that does not describe the load (e.g. a wrong job label).
RECONCILE_INDICATOR = "keptn_request_count"


def evaluation_window(settings: Settings, state: SequenceState,
                      properties: Mapping[str, Any] | None = None) -> Window:
    """The window the SLIs are asked for, as lighthouse 0.8.7 resolves it (§9): the run's
    ``--keptn-timeframe``/``--keptn-start``/``--keptn-end``, else the evaluation task's own
    ``timeframe``/``start``/``end`` properties (shipyard-controller passes them into
    ``evaluation.triggered``), else the test task's window; with none of them a
    :class:`ConfigError` with Keptn's message."""
    s, now = settings, datetime.now(UTC)
    if s.evaluation_only:
        return resolve_window(start=s.start, end=s.end, timeframe=s.timeframe, now=now)
    given = {k: str(v) for k, v in (properties or {}).items()
             if k in ("timeframe", "start", "end") and v is not None and v != ""}
    if ("start" in given and "end" in given) or "timeframe" in given:
        return resolve_window(start=given.get("start"), end=given.get("end"),
                              timeframe=given.get("timeframe"), now=now)
    if state.window is not None:
        return Window(datetime.fromisoformat(state.window[0]), datetime.fromisoformat(state.window[1]))
    return resolve_window(start=None, end=None, timeframe=None, now=now)  # Keptn's error


def evaluation_task(call: TaskCall) -> TaskResult:
    plan, ctx, state, settings = call.plan, call.ctx, call.state, call.ctx.settings
    stage = ctx.stage
    if plan.slo is None:  # refused at configure; kept as a guard
        raise KeptnError(f"no slo.yaml for stage {stage}")
    try:
        window = evaluation_window(settings, state, call.properties)
    except ConfigError as exc:  # lighthouse: an errored evaluation with its message
        return _publish(call, errored_evaluation(plan.slo, exc.message), None, {})
    indicators = list(dict.fromkeys(o.sli for o in plan.slo.objectives))
    load = state.load
    reconciling = load is not None and RECONCILE_INDICATOR in plan.sli_indicators
    asked = indicators + ([RECONCILE_INDICATOR] if reconciling and
                          RECONCILE_INDICATOR not in indicators else [])
    deployment_name = "canary"
    if state.deployment and state.deployment.deployment_names:
        deployment_name = state.deployment.deployment_names[0]
    answers = call.hook.pytest_keptn_get_sli(
        ctx=ctx, indicators=asked, window=window, deployment=deployment_name, load=load
    )
    results = merge_sli_answers(asked, answers)
    problem = outage_problem(results.values()) if settings.compat != COMPAT_087 else ""
    if not problem and reconciling and load is not None:
        from pytest_keptn.load.provider import reconcile

        counted = results[RECONCILE_INDICATOR]
        seen = (f"the SLIs do not see the load: {RECONCILE_INDICATOR} could not be read "
                f"({counted.message})" if not counted.success
                else reconcile(load, counted.value))
        problem = f"{seen} (query: {counted.query})" if seen else ""
    if RECONCILE_INDICATOR not in indicators:
        results.pop(RECONCILE_INDICATOR, None)
    if problem:  # nothing measured that could judge the build: errored, not failed
        return _publish(call, errored_evaluation(plan.slo, problem), window, results)
    # A locked or corrupt history must not lose the evaluation: it is scored (without a
    # comparison basis if the history cannot be read), written as an event and kept in
    # the state for the report; the task then fails with the history's one-line error.
    previous: list[Any] = []
    history_error: HistoryError | None = None
    try:
        history = call.history()
        previous = call.pinned or history.previous(
            plan.slo, project=ctx.project, stage=stage, service=plan.service)
        for line in history.take_warnings():
            ctx.say(line)  # a damaged stored evaluation, left out of the comparison
    except HistoryError as exc:
        history_error = exc
    live = (live_baseline.samples(call.hook, ctx, state.deployment, indicators, window, load)
            if live_baseline.wanted(plan.slo, settings) else None)
    evaluation = evaluate(plan.slo, list(results.values()), previous, compat=settings.compat,
                          live=live)
    return _publish(call, evaluation, window, results, history_error)


def outage_problem(results: Iterable[SLIResult]) -> str:
    """Why the SLIs measured nothing, when their provider could not answer (unreachable, 5xx
    after the retries, a timeout, credentials refused): "" when it answered."""
    answers = list(results)
    down = [r for r in answers if r.status.outage]
    if not down:
        return ""
    headline = outage_headline([str(r.status) for r in down])
    return f"{headline} ({len(down)} of {len(answers)} SLIs): {down[0].message}"


def _publish(call: TaskCall, evaluation: Evaluation, window: Window | None,
             results: Mapping[str, SLIResult], history_error: HistoryError | None = None
             ) -> TaskResult:
    """Record the evaluation in the history (unless reading it failed already), send its
    event, keep it in the state."""
    plan, ctx, state, settings = call.plan, call.ctx, call.state, call.ctx.settings
    assert plan.slo is not None
    stage = ctx.stage
    event_id = str(uuid.uuid4())
    try:
        if history_error is None:
            event_id = call.history().record(
                evaluation, project=ctx.project, stage=stage, service=plan.service,
                image=ctx.image, tag=ctx.tag, window=window,
                context=state.context, triggeredid=state.triggeredid,
            )
    except HistoryError as exc:
        history_error = exc
    data = evaluation.to_keptn(project=ctx.project, stage=stage, service=plan.service, window=window)
    event = evaluation_finished_event(
        data, event_id=event_id, time=datetime.now(UTC), shkeptncontext=state.context or None,
        triggeredid=state.triggeredid or None, image=ctx.image, tag=ctx.tag)
    if settings.events:
        write_event(Path(settings.events), event)
    call.hook.pytest_keptn_evaluation_finished(ctx=ctx, evaluation=evaluation, event=event)
    comparison = plan.slo.comparison
    state.evaluation = EvaluationRecord(
        id=event_id,
        result=evaluation.result,
        score=evaluation.score,
        pass_threshold=evaluation.pass_threshold,
        warning_threshold=evaluation.warning_threshold,
        key_sli_failed=evaluation.key_sli_failed,
        basis=Basis(
            compare_with="pinned (--keptn-baseline)" if call.pinned is not None
            else comparison.compare_with,
            include_result_with_score=comparison.include_result_with_score,
            number_of_comparison_results=comparison.n,
            aggregate_function=comparison.aggregate_function,
            compared_events=tuple(evaluation.compared_events),
        ),
        data=data,
        queries={m: r.query for m, r in results.items() if r.query},
        sli_status={m: str(r.status) for m, r in results.items()},
        warnings={m: tuple(r.warnings) for m, r in results.items() if r.warnings},
        compared_values={r.sli: tuple(r.compared_values) for r in evaluation.indicator_results},
        window=(Window.keptn_time(window.start), Window.keptn_time(window.end)) if window
        else ("", ""),
        status=evaluation.status,
        message=evaluation.message if evaluation.errored else "",
    )
    verdict = record_verdict(stage, state.evaluation)
    if history_error is not None:
        return "fail", f"{verdict}; not recorded in the history: {history_error}"
    return ("fail" if evaluation.errored else evaluation.result), verdict


def merge_sli_answers(
    indicators: list[str], answers: list[Any] | None
) -> dict[str, SLIResult]:
    """Per indicator, the first provider's answer that knows it; the rest are missing."""
    merged: dict[str, SLIResult] = {}
    for answer in answers or ():
        for result in answer or ():
            if result.metric not in indicators:
                continue
            known = merged.get(result.metric)
            if known is None or (known.status == SLIStatus.UNKNOWN and result.status != SLIStatus.UNKNOWN):
                merged[result.metric] = result
    out: dict[str, SLIResult] = {}
    for name in indicators:
        out[name] = merged.get(name) or SLIResult(
            metric=name, value=0.0, success=False, status=SLIStatus.MISSING,
            message="no value received from SLI provider",
        )
    return out
