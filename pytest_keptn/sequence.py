"""Runs a stage's sequence of tasks in order and decides what the shipyard triggers next.

A sequence advances in three steps, each idempotent, so that whichever pytest item needs it
first (a user test, an objective, the sequence item itself, or the session's end) drives it:

* ``deploy``: the tasks before the test task (the build is deployed; user tests can run);
* ``prepare``: through the evaluation task (load driven, SLIs fetched, gate scored);
* ``finish``: every task (release, or rollback after a failure).

The state of every sequence lives in a JSON file under the run folder and each step runs
under a file lock, so under pytest-xdist the work happens exactly once and every worker reads
the same outcome.
"""

from __future__ import annotations

import fcntl
import json
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_keptn.deploy.procs import shielded
from pytest_keptn.errors import HistoryError, KeptnError
from pytest_keptn.model import (
    Deployment,
    Instance,
    LoadResult,
    SLIResult,
    SLIStatus,
    StageContext,
    Window,
)

if TYPE_CHECKING:
    from pytest_keptn.config import Settings
    from pytest_keptn.gate.history import History
    from pytest_keptn.spec.shipyard import Sequence, Shipyard, Stage
    from pytest_keptn.spec.slo import SLO

# An sli.yaml indicator with this name counts the requests the canary served during the load
# window; when it differs from what Locust sent by more than 20 %, the evaluation fails instead
# of scoring data that does not describe the load (e.g. a wrong job label).
RECONCILE_INDICATOR = "keptn_request_count"
TEST_TASKS = ("test",)
EVALUATION = "evaluation"


@dataclass
class TaskOutcome:
    name: str
    result: str  # pass | warning | fail | skipped
    message: str = ""
    seconds: float = 0.0


@dataclass
class SequenceState:
    stage: str
    sequence: str
    status: str = "pending"  # pending | running | finished | not-triggered
    next_task: int = 0
    tasks: list[TaskOutcome] = field(default_factory=list)
    result: str | None = None  # pass | warning | fail once finished
    message: str = ""
    deployment: dict[str, Any] | None = None
    load: dict[str, Any] | None = None
    window: tuple[str, str] | None = None
    evaluation: dict[str, Any] | None = None  # see Pipeline._evaluate
    rolled_back: bool = False
    rollback_note: str = ""  # what the rollback did, in the deployer's words
    triggered_by: str = ""
    context: str = ""  # Keptn's shkeptncontext: one per delivery of a build across its stages
    triggeredid: str = ""  # this sequence run's id: the triggeredid of its events

    @property
    def failed_task(self) -> TaskOutcome | None:
        return next((t for t in self.tasks if t.result == "fail"), None)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> SequenceState:
        data = dict(raw)
        data["tasks"] = [TaskOutcome(**t) for t in data.get("tasks", [])]
        if data.get("window") is not None:
            data["window"] = tuple(data["window"])
        return cls(**data)


def deployment_to_json(deployment: Deployment) -> dict[str, Any]:
    return {
        "strategy": deployment.strategy,
        "url": deployment.url,
        "deployment_names": list(deployment.deployment_names),
        "instances": [
            {**asdict(i), "log": str(i.log) if i.log else None} for i in deployment.instances
        ],
        "details": dict(deployment.details),
    }


def deployment_from_json(raw: Mapping[str, Any]) -> Deployment:
    instances = tuple(
        Instance(**{**i, "log": Path(i["log"]) if i.get("log") else None})
        for i in raw.get("instances", [])
    )
    return Deployment(
        strategy=raw["strategy"],
        url=raw["url"],
        deployment_names=tuple(raw.get("deployment_names", ())),
        instances=instances,
        details=dict(raw.get("details", {})),
    )


def load_to_json(load: LoadResult) -> dict[str, Any]:
    data = asdict(load)
    data["window"] = [load.window.start.isoformat(), load.window.end.isoformat()]
    return data


def load_from_json(raw: Mapping[str, Any]) -> LoadResult:
    data = dict(raw)
    start, end = data.pop("window")
    return LoadResult(window=Window(datetime.fromisoformat(start), datetime.fromisoformat(end)), **data)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass
class StagePlan:
    """What the run will do in a stage: its objectives and sequences, resolved at configure."""

    stage: Stage
    service: str
    slo: SLO | None
    slo_path: Path | None
    sli_indicators: dict[str, str]
    sli_files: tuple[Path, ...]


class Pipeline:
    """One run down the shipyard: the stages selected for this pytest session."""

    def __init__(
        self,
        *,
        settings: Settings,
        shipyard: Shipyard,
        root: Path,
        project: str,
        plans: Mapping[str, StagePlan],
        selected: tuple[str, ...],
        entry_sequence: str,
        hook: Any,
        history: Callable[[], History],
        rundir: Path,
        say: Callable[[str], None],
        targets: Callable[[], Any],
        prometheus_url: Callable[[], str | None],
        user_test_failures: Callable[[str], list[str]],
        pinned: Mapping[str, list[Any]] | None = None,
    ) -> None:
        self.settings = settings
        self.shipyard = shipyard
        self.root = root
        self.project = project
        self.plans = plans
        self.selected = selected
        self.entry_sequence = entry_sequence
        self.hook = hook
        self._history = history
        self.rundir = rundir
        self._say = say
        self._targets = targets
        self._prometheus_url = prometheus_url
        self._user_test_failures = user_test_failures
        self.pinned = dict(pinned or {})  # stage -> pinned comparison basis (--keptn-baseline)
        self._contexts: dict[str, StageContext] = {}
        self._continues: dict[str, str] = {}  # "stage.sequence" -> the context it continues
        self._advancing: list[str] = []  # sequences being advanced by this process, in order
        # state file -> ((inode, mtime, size), the state it holds), see load_state
        self._parsed: dict[Path, tuple[tuple[int, int, int], SequenceState]] = {}

    # ----------------------------------------------------------------- helpers

    @property
    def evaluation_only(self) -> bool:
        s = self.settings
        return bool(s.timeframe or s.start or s.end)

    def say(self, stage: str, line: str) -> None:
        self._say(f"{stage} › {line}")

    def context(self, stage: str) -> StageContext:
        ctx = self._contexts.get(stage)
        if ctx is None:
            plan = self.plans[stage]
            props: dict[str, Mapping[str, Any]] = {}
            for seq in plan.stage.sequences:
                for task in seq.tasks:
                    props.setdefault(task.name, dict(task.properties))
            ctx = StageContext(
                project=self.project,
                service=plan.service,
                stage=stage,
                image=self.settings.image,
                tag=self.settings.tag,
                root=self.root,
                workdir=self.settings.state_path(self.root),
                settings=self.settings,
                sli_indicators=dict(plan.sli_indicators),
                slo_filter=dict(plan.slo.filter) if plan.slo else {},
                task_properties=props,
                prometheus_url=self._prometheus_url(),
                targets=self._targets(),
                progress=lambda line, _s=stage: self.say(_s, line),
            )
            self._contexts[stage] = ctx
        return ctx

    def starts_run(self, stage: str, sequence: str) -> bool:
        """Whether ``stage.sequence`` is the one this run starts (the user's trigger): refusing
        it fails the session, while other sequences that do not fire are merely skipped."""
        return stage == self.selected[0] and sequence == self.entry_of(self.plans[stage].stage).name

    def entry_of(self, stage: Stage) -> Sequence:
        for seq in stage.sequences:
            if seq.name == self.entry_sequence:
                return seq
        return stage.sequences[0]

    def _state_file(self, stage: str, sequence: str) -> Path:
        return self.rundir / f"{stage}.{sequence}.json"

    def load_state(self, stage: str, sequence: str) -> SequenceState:
        """The sequence's state as its file says. Every objective item of a stage asks, and the
        file holds the whole evaluation: it is parsed again only when it changed (a new file
        from ``_save``, here or in another xdist worker), not once per item."""
        path = self._state_file(stage, sequence)
        try:
            key = _file_key(path)
        except FileNotFoundError:
            return SequenceState(stage=stage, sequence=sequence)
        cached = self._parsed.get(path)
        if cached is not None and cached[0] == key:
            return cached[1]
        state = SequenceState.from_json(json.loads(path.read_text()))
        self._parsed[path] = (key, state)
        return state

    def _save(self, state: SequenceState) -> None:
        path = self._state_file(state.stage, state.sequence)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state.to_json(), default=str))
        tmp.replace(path)
        self._parsed[path] = (_file_key(path), state)

    # -------------------------------------------------------------- triggering

    def _sequence(self, stage: str, name: str) -> Sequence | None:
        for seq in self.plans[stage].stage.sequences if stage in self.plans else ():
            if seq.name == name:
                return seq
        return None

    def trigger_decision(self, stage: str, sequence: Sequence) -> tuple[bool, str]:
        """Whether the sequence runs in this session, and why (Keptn §13 rules)."""
        if not sequence.triggered_on:
            if self.starts_run(stage, sequence.name):
                return True, "started by this run"
            return False, (
                f"{stage}.{sequence.name} has no triggeredOn: it only runs when started by hand"
            )
        reasons: list[str] = []
        for trigger in sequence.triggered_on:
            src_stage, src_seq = trigger.stage, trigger.sequence
            if (src_stage, src_seq) == (stage, sequence.name):
                # Keptn's remediation loop (it runs again while its evaluation fails): only a
                # run that was started otherwise can trigger it
                reasons.append(f"{trigger.event} is its own finish")
                continue
            if src_stage in self.selected and self._sequence(src_stage, src_seq) is not None:
                src = self.finish(src_stage, src_seq)
                if src.status == "not-triggered":
                    reasons.append(f"{src_stage}.{src_seq} did not run")
                    continue
                result, last = src.result or "fail", _last_task(src)
                source = f"{src_stage}.{src_seq} finished with {result}"
                context = src.context
            else:
                # Separate CI jobs per stage: the history says how the same build did there.
                found = self._history().sequence_record(
                    project=self.project, stage=src_stage, sequence=src_seq,
                    service=self.plans[stage].service,
                    image=self.settings.image, tag=self.settings.tag,
                )
                build = f"{self.settings.image}:{self.settings.tag}"
                if found is None:
                    reasons.append(f"no record that {build} finished {src_stage}.{src_seq}")
                    continue
                result, last, context = found.result, found.last_task, found.context
                source = f"{src_stage}.{src_seq} finished with {result} for {build} (history)"
            if trigger.fires(result, last):
                self._continues[f"{stage}.{sequence.name}"] = context
                return True, f"triggered: {source}"
            reasons.append(f"{source}, triggeredOn {trigger.event} needs {trigger.wanted}")
        return False, "not triggered: " + "; ".join(reasons)

    # ------------------------------------------------------------------- steps

    def deploy(self, stage: str) -> SequenceState:
        seq = self.entry_of(self.plans[stage].stage)
        return self._advance(stage, seq, stop_before=_first_index(seq, (*TEST_TASKS, EVALUATION)))

    def prepare(self, stage: str) -> SequenceState:
        seq = self.entry_of(self.plans[stage].stage)
        idx = _first_index(seq, (EVALUATION,))
        return self._advance(stage, seq, stop_before=None if idx is None else idx + 1)

    def finish(self, stage: str, sequence: str | None = None) -> SequenceState:
        seq = self.entry_of(self.plans[stage].stage) if sequence is None else self._sequence(stage, sequence)
        assert seq is not None
        return self._advance(stage, seq, stop_before=None)

    def finish_all(self) -> None:
        """Finish what was started (e.g. when ``-k`` deselected the sequence item)."""
        for stage in self.selected:
            for seq in self.plans[stage].stage.sequences:
                if self.load_state(stage, seq.name).status != "running":
                    continue
                try:
                    self.finish(stage, seq.name)
                except Exception as exc:
                    self.say(stage, f"{seq.name}: {type(exc).__name__}: {exc}")

    def abort_all(self, reason: str) -> None:
        """Stop what was started without running another task (the run was interrupted):
        the running sequences fail with ``reason`` and their canaries are removed."""
        for stage in self.selected:
            for seq in self.plans[stage].stage.sequences:
                with _locked(self.rundir / f"{stage}.{seq.name}.lock"):
                    state = self.load_state(stage, seq.name)
                    if state.status != "running":
                        continue
                    if state.next_task < len(seq.tasks) or state.result == "fail":
                        name = seq.tasks[state.next_task].name if state.next_task < len(seq.tasks) else "sequence"
                        state.tasks.append(TaskOutcome(name, "fail", reason))
                        state.result = "fail"
                    # else every task had run (the signal came after the last one): close it
                    try:
                        self._close(stage, seq, state)
                    except KeptnError as exc:
                        self.say(stage, f"{seq.name}: {exc}")
                    finally:
                        self._save(state)

    def _advance(self, stage: str, seq: Sequence, stop_before: int | None) -> SequenceState:
        key = f"{stage}.{seq.name}"
        if key in self._advancing:
            # a triggeredOn cycle (or a hook that drives its own sequence): the file lock is
            # not re-entrant, so say so instead of waiting forever
            chain = " -> ".join([*self._advancing, key])
            raise KeptnError(f"sequence {key} waits for itself: {chain}",
                             file=str(self.root / "shipyard.yaml"), field="triggeredOn")
        self._advancing.append(key)
        try:
            return self._advance_locked(stage, seq, stop_before)
        finally:
            self._advancing.remove(key)

    def _advance_locked(self, stage: str, seq: Sequence, stop_before: int | None) -> SequenceState:
        with _locked(self.rundir / f"{stage}.{seq.name}.lock"):
            state = self.load_state(stage, seq.name)
            if state.status in ("finished", "not-triggered"):
                return state
            if state.status == "pending":
                runs, why = self.trigger_decision(stage, seq)
                state.triggered_by = why
                if not runs:
                    state.status, state.message = "not-triggered", why
                    self.say(stage, f"{seq.name}: {why}")
                    self._save(state)
                    return state
                state.status = "running"
                state.context = self._continues.pop(f"{stage}.{seq.name}", "") or str(uuid.uuid4())
                state.triggeredid = str(uuid.uuid4())
                self.say(stage, f"sequence {seq.name} started ({why})")
            elif (stop_before is not None and state.result != "fail"
                  and state.next_task >= min(stop_before, len(seq.tasks))
                  and state.next_task < len(seq.tasks)):
                # Already advanced this far (every objective item of a stage asks): nothing to
                # run or save. Saving re-serialized the whole evaluation once per item, O(n^2).
                return state
            end = len(seq.tasks) if stop_before is None else min(stop_before, len(seq.tasks))
            try:
                while state.next_task < end and state.result != "fail":
                    task = seq.tasks[state.next_task]
                    # a release that has switched must finish and be recorded before a signal
                    # stops the run (docs/reliability.md, release against a signal)
                    with shielded(f"the {stage} release") if task.name == "release" else nullcontext():
                        outcome = self._run_task(stage, seq, task, state)
                        state.tasks.append(outcome)
                        state.next_task += 1
                        self._save(state)
                if stop_before is None or state.result == "fail" or state.next_task >= len(seq.tasks):
                    self._close(stage, seq, state)
            finally:
                self._save(state)
            return state

    def _close(self, stage: str, seq: Sequence, state: SequenceState) -> None:
        if state.status == "finished":
            return
        failed = state.failed_task
        if failed is not None:
            state.result = "fail"
            state.message = f"{failed.name} task failed: {failed.message}"
            if state.deployment is not None and not state.rolled_back and not any(
                t.name in ("release", "rollback") and t.result != "fail" for t in state.tasks
            ):
                # Keptn leaves the failed canary receiving traffic unless the shipyard has a
                # rollback sequence; we take it out so the primary keeps serving.
                self._rollback(stage, state, reason="sequence failed")
        else:
            graded = [t.result for t in state.tasks if t.result in ("pass", "warning", "fail")]
            state.result = graded[-1] if graded else "pass"
        state.status = "finished"
        self.say(stage, f"sequence {seq.name} finished: {state.result}"
                 + (f" ({state.message})" if state.message else ""))
        if not self.evaluation_only:
            try:
                self._history().record_sequence(
                    project=self.project, stage=stage, sequence=seq.name,
                    service=self.plans[stage].service, image=self.settings.image,
                    tag=self.settings.tag, result=state.result, last_task=_last_task(state),
                    context=state.context,
                )
            except KeptnError as exc:
                self.say(stage, f"history: {exc}")

    # ------------------------------------------------------------------- tasks

    def _run_task(self, stage: str, seq: Sequence, task: Any, state: SequenceState) -> TaskOutcome:
        started = time.monotonic()
        name = task.name
        if self.evaluation_only and name != EVALUATION:
            return TaskOutcome(name, "skipped", "evaluation-only run (timeframe given)")
        self.say(stage, f"{name} started")
        try:
            if name == "deployment":
                result, message = self._deploy(stage, dict(task.properties), state)
            elif name in TEST_TASKS:
                result, message = self._test(stage, dict(task.properties), state)
            elif name == EVALUATION:
                result, message = self._evaluate(stage, state)
            elif name == "release":
                result, message = self._release(stage, state)
            elif name == "rollback":
                result, message = self._rollback(stage, state, reason="rollback task")
            elif name == "approval":
                result, message = _approval(dict(task.properties), _incoming(state))
            else:
                result, message = "skipped", f"no executor for task {name!r} in pytest-keptn"
        except KeptnError as exc:
            result, message = "fail", str(exc)
        except (Exception, SystemExit) as exc:  # a hook's bug (even sys.exit) fails the task
            result, message = "fail", f"internal error in the {name} task: {type(exc).__name__}: {exc}"
            _log_internal_error(self.settings.state_path(self.root), stage, name)
        seconds = time.monotonic() - started
        if result == "fail":
            state.result = "fail"
        self.say(stage, f"{name} {'finished' if result != 'fail' else 'FAILED'} in {seconds:.1f}s: "
                 f"{result}" + (f" — {message}" if message else ""))
        return TaskOutcome(name, result, message, round(seconds, 3))

    def _deploy(self, stage: str, properties: dict[str, Any], state: SequenceState) -> tuple[str, str]:
        if self.settings.deployer == "none":
            return "skipped", "deployer none"
        properties.setdefault("deploymentstrategy", "blue_green_service")
        deployment = self.hook.pytest_keptn_deploy(ctx=self.context(stage), properties=properties)
        if deployment is None:
            return "skipped", "no deployer answered"
        state.deployment = deployment_to_json(deployment)
        names = ",".join(deployment.deployment_names)
        return "pass", f"{self.settings.image}:{self.settings.tag} as {names} at {deployment.url}"

    def service_url(self, state: SequenceState) -> str | None:
        if state.deployment is not None:
            return str(state.deployment["url"])
        return None

    def _test(self, stage: str, properties: dict[str, Any], state: SequenceState) -> tuple[str, str]:
        failures = self._user_test_failures(stage)
        if failures:
            return "fail", f"{len(failures)} test(s) failed: {', '.join(failures[:3])}"
        url = self.service_url(state)
        load = None
        if url is not None and self.settings.deployer != "none":
            load = self.hook.pytest_keptn_run_load(ctx=self.context(stage), url=url, properties=properties, baseline_url=None)
        if load is None:
            # No load driver: the window is the test task itself, until the canary is scraped.
            started = datetime.now(UTC)
            wait_up = getattr(self.context(stage).targets, "wait_targets_up", None)
            if callable(wait_up) and state.deployment is not None:
                wait_up(None, timeout=float(self.settings.deploy_timeout))
            state.window = (started.isoformat(), datetime.now(UTC).isoformat())
            summary = "no load test configured"
        else:
            state.load = load_to_json(load)
            state.window = (load.window.start.isoformat(), load.window.end.isoformat())
            summary = (f"{load.requests} requests, {load.failures} failures, {load.rps:.1f} rps, "
                       f"p95 {load.p95_ms:.0f} ms over {load.window.seconds:.1f}s")
        if state.deployment is not None:
            problem = self.hook.pytest_keptn_check_deployment(
                ctx=self.context(stage), deployment=deployment_from_json(state.deployment))
            if problem:
                return "fail", f"{problem} ({summary})"
        return "pass", summary

    def window(self, state: SequenceState) -> Window:
        from pytest_keptn.gate.timeframe import resolve_window

        s = self.settings
        if self.evaluation_only:
            return resolve_window(start=s.start, end=s.end, timeframe=s.timeframe, now=datetime.now(UTC))
        if state.window is not None:
            return Window(datetime.fromisoformat(state.window[0]), datetime.fromisoformat(state.window[1]))
        end = datetime.now(UTC)
        return Window(end - timedelta(minutes=1), end)

    def _evaluate(self, stage: str, state: SequenceState) -> tuple[str, str]:
        from pytest_keptn.gate.events import evaluation_finished_event, write_event
        from pytest_keptn.gate.scoring import evaluate

        plan = self.plans[stage]
        if plan.slo is None:  # refused at configure; kept as a guard
            raise KeptnError(f"no slo.yaml for stage {stage}")
        ctx = self.context(stage)
        window = self.window(state)
        indicators = list(dict.fromkeys(o.sli for o in plan.slo.objectives))
        load = load_from_json(state.load) if state.load else None
        reconciling = load is not None and RECONCILE_INDICATOR in plan.sli_indicators
        asked = indicators + ([RECONCILE_INDICATOR] if reconciling and
                              RECONCILE_INDICATOR not in indicators else [])
        deployment_name = "canary"
        if state.deployment and state.deployment.get("deployment_names"):
            deployment_name = state.deployment["deployment_names"][0]
        answers = self.hook.pytest_keptn_get_sli(
            ctx=ctx, indicators=asked, window=window, deployment=deployment_name, load=load
        )
        results = merge_sli_answers(asked, answers)
        if reconciling and load is not None:
            from pytest_keptn.load.provider import reconcile

            counted = results[RECONCILE_INDICATOR]
            if RECONCILE_INDICATOR not in indicators:
                del results[RECONCILE_INDICATOR]
            problem = (f"the SLIs do not see the load: {RECONCILE_INDICATOR} could not be read "
                       f"({counted.message})" if not counted.success
                       else reconcile(load, counted.value))
            if problem:
                return "fail", f"{problem} (query: {counted.query})"
        # A locked or corrupt history must not lose the evaluation: it is scored (without a
        # comparison basis if the history cannot be read), written as an event and kept in
        # the state for the report; the task then fails with the history's one-line error.
        history_error: KeptnError | None = None
        previous: list[Any] = []
        history: History | None = None
        try:
            history = self._history()
            previous = self.pinned.get(stage) or history.previous(
                plan.slo, project=self.project, stage=stage, service=plan.service)
        except HistoryError as exc:
            history_error = exc
        for line in history.take_warnings() if history is not None else ():
            self.say(stage, line)  # a damaged stored evaluation, left out of the comparison
        evaluation = evaluate(plan.slo, list(results.values()), previous, compat=self.settings.compat)
        event_id = str(uuid.uuid4())
        if history is not None and history_error is None:
            try:
                event_id = history.record(
                    evaluation, project=self.project, stage=stage, service=plan.service,
                    image=self.settings.image, tag=self.settings.tag, window=window,
                    context=state.context, triggeredid=state.triggeredid,
                )
            except HistoryError as exc:
                history_error = exc
        data = evaluation.to_keptn(project=self.project, stage=stage, service=plan.service, window=window)
        event = evaluation_finished_event(
            data, event_id=event_id, time=datetime.now(UTC), shkeptncontext=state.context or None,
            triggeredid=state.triggeredid or None, image=self.settings.image, tag=self.settings.tag)
        if self.settings.events:
            write_event(Path(self.settings.events), event)
        self.hook.pytest_keptn_evaluation_finished(ctx=ctx, evaluation=evaluation, event=event)
        comparison = plan.slo.comparison
        basis_ids = list(evaluation.compared_events)
        state.evaluation = {
            "id": event_id,
            "data": data,
            "result": evaluation.result,
            "score": evaluation.score,
            "pass_threshold": evaluation.pass_threshold,
            "warning_threshold": evaluation.warning_threshold,
            "key_sli_failed": evaluation.key_sli_failed,
            "queries": {m: r.query for m, r in results.items() if r.query},
            "sli_status": {m: str(r.status) for m, r in results.items()},
            "warnings": {m: list(r.warnings) for m, r in results.items() if r.warnings},
            "basis": {
                "compare_with": "pinned (--keptn-baseline)" if stage in self.pinned
                else comparison.compare_with,
                "include_result_with_score": comparison.include_result_with_score,
                "number_of_comparison_results": comparison.n,
                "aggregate_function": comparison.aggregate_function,
                "compared_events": basis_ids,
            },
            "compared_values": {
                r.sli: list(r.compared_values) for r in evaluation.indicator_results
            },
            "window": [Window.keptn_time(window.start), Window.keptn_time(window.end)],
        }
        verdict = verdict_line(stage, state.evaluation)
        if history_error is not None:
            return "fail", f"{verdict}; not recorded in the history: {history_error}"
        return evaluation.result, verdict

    def _release(self, stage: str, state: SequenceState) -> tuple[str, str]:
        if state.deployment is None:
            return "skipped", "nothing deployed"
        deployment = deployment_from_json(state.deployment)
        done = self.hook.pytest_keptn_release(ctx=self.context(stage), deployment=deployment)
        if not done:
            return "skipped", "no deployer answered"
        return "pass", f"{self.settings.image}:{self.settings.tag} promoted to primary"

    def _rollback(self, stage: str, state: SequenceState, *, reason: str) -> tuple[str, str]:
        if state.deployment is None or state.rolled_back:
            return "skipped", "nothing to roll back"
        deployment = deployment_from_json(state.deployment)
        self.say(stage, f"rollback ({reason}) of the {deployment.strategy} deployment")
        try:
            done = self.hook.pytest_keptn_rollback(ctx=self.context(stage), deployment=deployment)
        except KeptnError as exc:
            self.say(stage, f"rollback FAILED: {exc}")
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


def verdict_line(stage: str, evaluation: Mapping[str, Any]) -> str:
    result, score = evaluation["result"], float(evaluation["score"])
    pass_t, warn_t = evaluation["pass_threshold"], evaluation["warning_threshold"]
    if result == "pass":
        tail = f">= {pass_t:g}% (pass)"
    elif result == "warning":
        tail = f"< {pass_t:g}% (pass), >= {warn_t:g}% (warning)"
    elif warn_t is not None:
        tail = f"< {warn_t:g}% (warning)"
    else:
        tail = f"< {pass_t:g}% (pass)"
    key = ", a key SLI failed" if evaluation.get("key_sli_failed") else ""
    return f"{stage}: {result}, score {score:.1f}% {tail}{key}"


def _file_key(path: Path) -> tuple[int, int, int]:
    """What changes whenever a state file is replaced (``_save`` writes a new file)."""
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


def _last_task(state: SequenceState) -> str:
    return state.tasks[-1].name if state.tasks else ""


def _first_index(seq: Sequence, names: tuple[str, ...]) -> int | None:
    for i, task in enumerate(seq.tasks):
        if task.name in names:
            return i
    return None


def _incoming(state: SequenceState) -> str:
    graded = [t.result for t in state.tasks if t.result in ("pass", "warning", "fail")]
    return graded[-1] if graded else "pass"


def _approval(properties: Mapping[str, Any], incoming: str) -> tuple[str, str]:
    if incoming == "fail":
        return "fail", "approval refused: incoming result fail"
    mode = str(properties.get(incoming, "automatic"))
    if mode == "automatic":  # Keptn's approval-service answers an automatic approval with pass
        return "pass", f"approved automatically ({incoming})"
    return "fail", f"manual approval required for {incoming} (not possible in a test run)"


def _log_internal_error(workdir: Path, stage: str, task: str) -> None:
    """Keep the traceback of an unexpected error where a maintainer can find it."""
    import traceback

    try:
        logs = workdir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with open(logs / "internal-errors.log", "a") as out:
            out.write(f"--- {datetime.now(UTC).isoformat()} {stage} {task}\n")
            out.write(traceback.format_exc())
    except OSError:
        pass
