"""Runs a stage's sequence of tasks in order and decides what the shipyard triggers next.

A sequence advances in three steps, each idempotent, so that whichever pytest item needs it
first (a user test, an objective, the sequence item itself, or the session's end) drives it:

* ``deploy``: the tasks before the test task (the build is deployed; user tests can run);
* ``prepare``: through the evaluation task (load driven, SLIs fetched, gate scored);
* ``finish``: every task (release, or rollback after a failure).

The state of every sequence lives in a JSON file under the run folder and each step runs
under a file lock (:class:`StateStore`), so under pytest-xdist the work happens exactly once
and every worker reads the same outcome.
"""

from __future__ import annotations

import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pytest_keptn.deploy import baseline as live_baseline
from pytest_keptn.errors import KeptnError
from pytest_keptn.gate.approval import WAITING
from pytest_keptn.model import StageContext, TargetRegistry
from pytest_keptn.run import tasks
from pytest_keptn.run.approval import approval_task, resume
from pytest_keptn.run.evaluation import evaluation_task
from pytest_keptn.run.plan import RunPlan
from pytest_keptn.run.state import SequenceState, StateStore, TaskOutcome
from pytest_keptn.run.tasks import TaskCall, TaskResult
from pytest_keptn.spec.timeframe import go_duration_text, parse_go_duration
from pytest_keptn.system.processes import ProcessRegistry, shielded

if TYPE_CHECKING:
    from pytest_keptn.config import Settings
    from pytest_keptn.gate.history import History
    from pytest_keptn.spec.shipyard import Sequence, Task

TEST_TASKS = ("test",)
# stages whose load driver gets ready ahead (a spare Locust runner each: ~45 MB, idle)
LOADS_AHEAD = 3
EVALUATION = "evaluation"
# Keptn task name -> its executor; any other task name is skipped with a message
TASKS: dict[str, Callable[[TaskCall], TaskResult]] = {
    "deployment": tasks.deploy,
    "test": tasks.test,
    EVALUATION: evaluation_task,
    "release": tasks.release,
    "rollback": tasks.rollback,
    "approval": approval_task,
}


class Resources(Protocol):
    """What the pipeline needs from the session that owns it."""

    def history(self) -> History: ...
    def say(self, line: str) -> None: ...
    def targets(self) -> TargetRegistry: ...
    def prometheus_url(self) -> str | None: ...
    def user_test_failures(self, stage: str) -> list[str]: ...
    @property
    def processes(self) -> ProcessRegistry: ...


class Pipeline:
    """One run down the shipyard: the stages selected for this pytest session."""

    def __init__(self, plan: RunPlan, settings: Settings, hook: Any, store: StateStore,
                 resources: Resources, pinned: Mapping[str, list[Any]] | None = None) -> None:
        self.plan = plan
        self.settings = settings
        self.hook = hook
        self.store = store
        self.resources = resources
        self.pinned = dict(pinned or {})  # stage -> pinned comparison basis (--keptn-baseline)
        self._contexts: dict[str, StageContext] = {}
        self._continues: dict[str, str] = {}  # "stage.sequence" -> the context it continues
        # "stage.sequence" -> the result it was triggered with (its first task's incoming)
        self._triggered_with: dict[str, str] = {}
        self._advancing: list[str] = []  # sequences being advanced by this process, in order

    # ----------------------------------------------------------------- helpers

    @property
    def evaluation_only(self) -> bool:
        return self.settings.evaluation_only

    def say(self, stage: str, line: str) -> None:
        self.resources.say(f"{stage} › {line}")

    def context(self, stage: str) -> StageContext:
        ctx = self._contexts.get(stage)
        if ctx is None:
            ctx = self._contexts[stage] = self.planning_context(
                stage, prometheus_url=self.resources.prometheus_url(),
                targets=self.resources.targets())
        return ctx

    def planning_context(self, stage: str, *, prometheus_url: str | None = None,
                         targets: TargetRegistry | None = None) -> StageContext:
        """A stage's context before anything runs (no Prometheus yet unless given): what the
        ``pytest_keptn_target_slots`` hook is asked with."""
        plan = self.plan.stages[stage]
        props: dict[str, Mapping[str, Any]] = {}
        for seq in plan.stage.sequences:
            for task in seq.tasks:
                props.setdefault(task.name, dict(task.properties))
        return StageContext(
            project=self.plan.project,
            service=plan.service,
            stage=stage,
            image=self.settings.image,
            tag=self.settings.tag,
            root=self.plan.root,
            workdir=self.settings.state_path(self.plan.root),
            settings=self.settings,
            sli_indicators=dict(plan.sli_indicators),
            slo_filter=dict(plan.slo.filter) if plan.slo else {},
            task_properties=props,
            prometheus_url=prometheus_url,
            targets=targets if targets is not None else TargetRegistry(),
            progress=lambda line, _s=stage: self.say(_s, line),
            processes=self.resources.processes,
        )

    def load_state(self, stage: str, sequence: str) -> SequenceState:
        return self.store.load(stage, sequence)

    def states(self) -> list[SequenceState]:
        """Every sequence of the selected stages, as its state file says now."""
        return [self.store.load(stage, seq.name)
                for stage in self.plan.selected for seq in self.plan.stages[stage].stage.sequences]

    # -------------------------------------------------------------- triggering

    def trigger_decision(self, stage: str, sequence: Sequence) -> tuple[bool, str]:
        """Whether the sequence runs in this session, and why (Keptn §13 rules)."""
        if not sequence.triggered_on:
            if self.plan.starts_run(stage, sequence.name):
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
            if src_stage in self.plan.selected and self.plan.sequence(src_stage, src_seq) is not None:
                src = self.finish(src_stage, src_seq)
                if src.status == "not-triggered":
                    reasons.append(f"{src_stage}.{src_seq} did not run")
                    continue
                if src.status == WAITING:
                    reasons.append(f"{src_stage}.{src_seq} waits for a manual approval")
                    continue
                result, last = src.result or "fail", src.last_task
                source = f"{src_stage}.{src_seq} finished with {result}"
                context = src.context
            else:
                # Separate CI jobs per stage: the history says how the same build did there.
                found = self.resources.history().sequence_record(
                    project=self.plan.project, stage=src_stage, sequence=src_seq,
                    service=self.plan.stages[stage].service,
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
                self._triggered_with[f"{stage}.{sequence.name}"] = result
                return True, f"triggered: {source}"
            reasons.append(f"{source}, triggeredOn {trigger.event} needs {trigger.wanted}")
        return False, "not triggered: " + "; ".join(reasons)

    # ------------------------------------------------------------------- steps

    def deploy(self, stage: str) -> SequenceState:
        seq = self.plan.entry_of(stage)
        return self._advance(stage, seq, stop_before=_first_index(seq, (*TEST_TASKS, EVALUATION)))

    def prepare(self, stage: str) -> SequenceState:
        seq = self.plan.entry_of(stage)
        idx = _first_index(seq, (EVALUATION,))
        return self._advance(stage, seq, stop_before=None if idx is None else idx + 1)

    def finish(self, stage: str, sequence: str | None = None) -> SequenceState:
        seq = self.plan.entry_of(stage) if sequence is None else self.plan.sequence(stage, sequence)
        assert seq is not None
        return self._advance(stage, seq, stop_before=None)

    def finish_all(self) -> None:
        """Finish what was started (e.g. when ``-k`` deselected the sequence item)."""
        for stage in self.plan.selected:
            for seq in self.plan.stages[stage].stage.sequences:
                if self.store.load(stage, seq.name).status != "running":
                    continue
                try:
                    self.finish(stage, seq.name)
                except Exception as exc:
                    self.say(stage, f"{seq.name}: {type(exc).__name__}: {exc}")

    def abort_all(self, reason: str) -> None:
        """Stop what was started without running another task (the run was interrupted):
        the running sequences fail with ``reason`` and their canaries are removed."""
        for stage in self.plan.selected:
            for seq in self.plan.stages[stage].stage.sequences:
                with self.store.locked(stage, seq.name):
                    state = self.store.load(stage, seq.name)
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
                        self.store.save(state)

    def _advance(self, stage: str, seq: Sequence, stop_before: int | None) -> SequenceState:
        key = f"{stage}.{seq.name}"
        if key in self._advancing:
            # a triggeredOn cycle (or a hook that drives its own sequence): the file lock is
            # not re-entrant, so say so instead of waiting forever
            chain = " -> ".join([*self._advancing, key])
            raise KeptnError(f"sequence {key} waits for itself: {chain}",
                             file=str(self.plan.root / "shipyard.yaml"), field="triggeredOn")
        self._advancing.append(key)
        try:
            return self._advance_locked(stage, seq, stop_before)
        finally:
            self._advancing.remove(key)

    def _advance_locked(self, stage: str, seq: Sequence, stop_before: int | None) -> SequenceState:
        with self.store.locked(stage, seq.name):
            state = self.store.load(stage, seq.name)
            if state.status in ("finished", "not-triggered", WAITING):
                return state
            resumed = self._resume(stage, seq) if state.status == "pending" else None
            if resumed is not None:  # --keptn-approve: where it waited, with what it had
                state = resumed
                self.say(stage, f"sequence {seq.name} {state.triggered_by}")
            elif state.status == "pending":
                runs, why = self.trigger_decision(stage, seq)
                state.triggered_by = why
                if not runs:
                    state.status, state.message = "not-triggered", why
                    self.say(stage, f"{seq.name}: {why}")
                    self.store.save(state)
                    return state
                state.status = "running"
                state.context = self._continues.pop(f"{stage}.{seq.name}", "") or str(uuid.uuid4())
                state.triggeredid = str(uuid.uuid4())
                state.triggered_result = self._triggered_with.pop(f"{stage}.{seq.name}", "pass")
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
                        outcome = self._run_task(stage, task, state)
                        state.tasks.append(outcome)
                        if outcome.result == WAITING:  # for a person: not failed, not done
                            state.status, state.message = WAITING, outcome.message
                            return state
                        state.next_task += 1
                        self.store.save(state)
                if stop_before is None or state.result == "fail" or state.next_task >= len(seq.tasks):
                    self._close(stage, seq, state)
            finally:
                self.store.save(state)
            return state

    def _resume(self, stage: str, seq: Sequence) -> SequenceState | None:
        if not self.settings.approve or self.evaluation_only:
            return None
        return resume(self.settings, self.resources.history(),
                      self.settings.state_path(self.plan.root), project=self.plan.project,
                      stage=stage, service=self.plan.stages[stage].service, sequence=seq)

    def _close(self, stage: str, seq: Sequence, state: SequenceState) -> None:
        if state.status == "finished":
            return
        # the live baseline ends with the stage, whatever happened; it is never promoted.
        # (Only with one: making the context starts the Prometheus whose failed start may be
        # what ended the sequence, and the sequence must still close as failed.)
        if live_baseline.instance(state.deployment) is not None:
            live_baseline.stop(self.hook, self.context(stage), state.deployment)
        failed = state.failed_task
        if failed is not None:
            state.result = "fail"
            state.message = f"{failed.name} task failed: {failed.message}"
            if state.deployment is not None and not state.rolled_back and not any(
                t.name in ("release", "rollback") and t.result != "fail" for t in state.tasks
            ):
                # Keptn leaves the failed canary receiving traffic unless the shipyard has a
                # rollback sequence; we take it out so the primary keeps serving.
                tasks.rollback(self._call(stage, state), reason="sequence failed")
        else:
            state.result = state.graded
        state.status = "finished"
        self.say(stage, f"sequence {seq.name} finished: {state.result}"
                 + (f" ({state.message})" if state.message else ""))
        if not self.evaluation_only:
            try:
                self.resources.history().record_sequence(
                    project=self.plan.project, stage=stage, sequence=seq.name,
                    service=self.plan.stages[stage].service, image=self.settings.image,
                    tag=self.settings.tag, result=state.result, last_task=state.last_task,
                    context=state.context,
                )
            except KeptnError as exc:
                self.say(stage, f"history: {exc}")

    # ------------------------------------------------------------------- tasks

    def _call(self, stage: str, state: SequenceState, properties: Mapping[str, Any] | None = None
              ) -> TaskCall:
        return TaskCall(
            ctx=self.context(stage), plan=self.plan.stages[stage], state=state, hook=self.hook,
            history=self.resources.history, properties=dict(properties or {}),
            pinned=self.pinned.get(stage),
            user_failures=self.resources.user_test_failures(stage),
        )

    def prepare_load(self, stages: list[str]) -> None:
        """The next few of ``stages`` with a test task will probably run their load: their load
        driver gets ready meanwhile (``pytest_keptn_prepare_load``; the Locust driver imports
        Locust in a spare runner per stage), so its start-up is off the critical path. Called
        when the embedded Prometheus starts (its first discovery tick hides the imports) and
        after each test task, for the stages after it; a driver ready for a stage already
        does nothing."""
        if self.evaluation_only or self.settings.deployer == "none":
            return
        with_load = [stage for stage in stages
                     if any(t.name in TEST_TASKS for seq in self.plan.stages[stage].stage.sequences
                            for t in seq.tasks)]
        for stage in with_load[:LOADS_AHEAD]:
            try:  # a planning context: asks nothing of Prometheus
                self.hook.pytest_keptn_prepare_load(ctx=self.planning_context(stage))
            except Exception:  # only a head start: the test task starts its driver anyway
                pass

    def _run_task(self, stage: str, task: Task, state: SequenceState) -> TaskOutcome:
        started = time.monotonic()
        name = task.name
        if self.evaluation_only and name != EVALUATION:
            return TaskOutcome(name, "skipped", "evaluation-only run (timeframe given)")
        if task.triggered_after and not self.evaluation_only:
            delay(task, lambda line: self.say(stage, line))
        self.say(stage, f"{name} started")
        executor = TASKS.get(name)
        try:
            if executor is None:
                result, message = "skipped", f"no executor for task {name!r} in pytest-keptn"
            else:
                result, message = executor(self._call(stage, state, task.properties))
        except KeptnError as exc:
            result, message = "fail", str(exc)
        except (Exception, SystemExit) as exc:  # a hook's bug (even sys.exit) fails the task
            result, message = "fail", f"internal error in the {name} task: {type(exc).__name__}: {exc}"
            _log_internal_error(self.settings.state_path(self.plan.root), stage, name)
        seconds = time.monotonic() - started
        if result == "fail":
            state.result = "fail"
        elif name in TEST_TASKS:  # the next stage's load, while this one evaluates
            self.prepare_load(_stages_after(self.plan, stage))
        self.say(stage, f"{name} {'finished' if result != 'fail' else 'FAILED'} in {seconds:.1f}s: "
                 f"{result}" + (f" — {message}" if message else ""))
        return TaskOutcome(name, result, message, round(seconds, 3))


def _stages_after(plan: RunPlan, stage: str) -> list[str]:
    names = list(plan.stages)
    return names[names.index(stage) + 1:] if stage in names else []


def delay(task: Task, say: Callable[[str], None], *, every: float = 10.0) -> None:
    """Wait ``triggeredAfter`` before the task, as shipyard-controller 0.8.7 queues its
    ``.triggered`` event, with a line now and every ``every`` seconds. Ctrl-C/SIGTERM interrupt
    the sleep at once (the run is aborted as in any task). A value that is no Go duration
    (refused at collection unless --keptn-compat=0.8.7) triggers at once, as Keptn does."""
    raw = str(task.triggered_after)
    try:
        seconds = parse_go_duration(raw)
    except ValueError as exc:
        say(f"triggeredAfter {raw!r} of the {task.name} task: {exc}; triggered now, as Keptn does")
        return
    if seconds <= 0:
        return
    say(f"waiting {go_duration_text(seconds)} before the {task.name} task "
        f"(triggeredAfter: {raw})")
    deadline = time.monotonic() + seconds
    next_line = time.monotonic() + every
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, 1.0, max(next_line - time.monotonic(), 0.01)))
        if time.monotonic() >= next_line and deadline - time.monotonic() > 0:
            say(f"{task.name} in {go_duration_text(round(deadline - time.monotonic()))}"
                " (triggeredAfter)")
            next_line += every


def _first_index(seq: Sequence, names: tuple[str, ...]) -> int | None:
    for i, task in enumerate(seq.tasks):
        if task.name in names:
            return i
    return None


def _log_internal_error(workdir: Path, stage: str, task: str) -> None:
    """Keep the traceback of an unexpected error where a maintainer can find it."""
    try:
        logs = workdir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with open(logs / "internal-errors.log", "a") as out:
            out.write(f"--- {datetime.now(UTC).isoformat()} {stage} {task}\n")
            out.write(traceback.format_exc())
    except OSError:
        pass
