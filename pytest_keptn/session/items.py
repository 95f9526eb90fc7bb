"""The run's pytest items: one per objective and one per sequence, how each passes or fails,
their order among the user's tests, and what their reports carry."""

from __future__ import annotations

import json
from collections.abc import Callable, Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_keptn.errors import KeptnError
from pytest_keptn.gate.approval import WAITING
from pytest_keptn.report.terminal import explain_objective
from pytest_keptn.report.wording import record_verdict
from pytest_keptn.run.state import SequenceState
from pytest_keptn.session.outcome import explain_sequence

if TYPE_CHECKING:
    from pytest_keptn.gate.record import EvaluationRecord
    from pytest_keptn.gate.scoring import IndicatorResult, Target
    from pytest_keptn.session.session import KeptnSession
    from pytest_keptn.spec.slo import Objective

OBJECTIVE_KEY = pytest.StashKey[tuple[str, int]]()
SEQUENCE_KEY = pytest.StashKey[tuple[str, str]]()
STATUS_KEY = pytest.StashKey[str]()


class GateFailure(AssertionError):
    """An objective or sequence failed; the text is the whole explanation."""


class PipelineFailure(GateFailure):
    """The sequence could not be driven at all (a bad trigger chain, a history error, ...)."""


class EvaluationErrored(GateFailure):
    """The evaluation measured nothing (an SLI provider outage, no window): the objectives are
    errors, not failures (raised while setting them up, pytest's ERROR outcome)."""


def step(action: Callable[[str], SequenceState], stage: str) -> SequenceState:
    """Drive the pipeline for an item; a user-caused problem fails the item in one line."""
    try:
        return action(stage)
    except KeptnError as exc:
        raise PipelineFailure(str(exc)) from None


def _targets_json(targets: tuple[Target, ...] | None) -> list[dict[str, Any]] | None:
    return None if targets is None else [t.to_keptn() for t in targets]


class ShipyardFile(pytest.File):
    """``shipyard.yaml``, collected as pytest collects any file: one node per selected stage."""

    def __init__(self, *, keptn: KeptnItems, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.keptn = keptn

    def collect(self) -> list[StageNode]:
        return [StageNode.from_parent(self, name=stage, keptn=self.keptn)
                for stage in self.keptn.keptn.selected]


class StageNode(pytest.Collector):
    """A shipyard stage in the collection tree (``shipyard.yaml::hardening``): an item per
    objective of its slo.yaml, then one per sequence."""

    def __init__(self, *, keptn: KeptnItems, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.keptn = keptn

    def collect(self) -> list[pytest.Item]:
        return self.keptn.items_of(self)


class _GateItem(pytest.Function):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        node_id = getattr(self, "_id", None)
        if node_id is not None and "[" in self.name and hasattr(node_id, "parse"):
            # pytest >= 9.2 keeps node ids structured and reads ``sequence[delivery]`` back
            # (from the --lf cache, the command line) as name ``sequence`` with params
            # ``delivery``: store it that way, or --lf would never find the item again.
            self._id = type(node_id).parse(str(node_id))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, GateFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


class ObjectiveItem(_GateItem):
    """One SLO objective: passes, warns or fails as the lighthouse scored it; an error when
    the evaluation errored."""

    def setup(self) -> None:
        super().setup()
        parent = self.parent
        if isinstance(parent, StageNode):
            parent.keptn.check_errored(self.stash[OBJECTIVE_KEY][0])

    def reportinfo(self) -> tuple[Path, int | None, str]:
        stage, _ = self.stash[OBJECTIVE_KEY]
        return self.path, None, f"{stage}: objective {self.name}"


class SequenceItem(_GateItem):
    """A shipyard sequence: its tasks in order; fails when a task or the gate failed."""

    def reportinfo(self) -> tuple[Path, int | None, str]:
        stage, seq = self.stash[SEQUENCE_KEY]
        return self.path, None, f"{stage}: sequence {seq}"


class KeptnItems:
    """Makes the items, and marks their reports so the session can tell gates from tests."""

    def __init__(self, keptn: KeptnSession) -> None:
        self.keptn = keptn
        self.shipyard_path = keptn.root / "shipyard.yaml"
        self.walked = False  # pytest's walk reached shipyard.yaml (see pytest_collect_file)
        # stage -> (evaluation, its rows by SLI, occurrence of each objective's SLI), rows_of
        self._rows: dict[str, tuple[EvaluationRecord, dict[str, list[IndicatorResult]], list[int]]] = {}

    def pytest_collect_file(self, file_path: Path, parent: pytest.Collector) -> ShipyardFile | None:
        if file_path != self.shipyard_path:
            return None
        self.walked = True
        return ShipyardFile.from_parent(parent, path=file_path, keptn=self)

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        if self.walked:
            return
        # The keptn root lies outside the paths pytest was given (``pytest tests/``, a root
        # elsewhere): the gate still runs, so its items join the collected ones.
        file = ShipyardFile.from_parent(session, path=self.shipyard_path, keptn=self)
        new = list(session.genitems(file))  # reported as collected, like any collector's
        items.extend(new)
        session.testscollected += len(new)

    def items_of(self, node: StageNode) -> list[pytest.Item]:
        stage = node.name
        plan = self.keptn.plans[stage]
        mark = pytest.mark.keptn_stage(stage)
        new: list[pytest.Item] = []
        if plan.slo is not None:
            seen: dict[str, int] = {}
            for index, objective in enumerate(plan.slo.objectives):
                name = objective.sli
                seen[name] = seen.get(name, 0) + 1
                if seen[name] > 1:
                    name = f"{name}[{seen[name]}]"
                item = ObjectiveItem.from_parent(
                    node, name=name, callobj=self._objective_check(stage, index, objective)
                )
                item.stash[OBJECTIVE_KEY] = (stage, index)
                item.add_marker(mark)
                new.append(item)
        for seq in plan.stage.sequences:
            seq_item = SequenceItem.from_parent(
                node, name=f"sequence[{seq.name}]", callobj=self._sequence_check(stage, seq.name)
            )
            seq_item.stash[SEQUENCE_KEY] = (stage, seq.name)
            seq_item.add_marker(mark)
            new.append(seq_item)
        return new

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not report.failed:
            return
        stage = getattr(report, "keptn_user_stage", None)
        if stage:
            self.keptn.user_failures.setdefault(stage, []).append(report.nodeid.split("::")[-1])
        if getattr(report, "keptn_kind", None) not in ("objective", "sequence"):
            self.keptn.failed_other += 1

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        failure = call.excinfo.value if call.excinfo is not None else None
        if isinstance(failure, EvaluationErrored):
            report.longrepr = str(failure)  # one line, as a gate's verdict (not a traceback)
        if isinstance(failure, PipelineFailure):
            report.keptn_kind = "pipeline-error"  # type: ignore[attr-defined]
        elif report.failed and not isinstance(failure, GateFailure) and (
                OBJECTIVE_KEY in item.stash or SEQUENCE_KEY in item.stash):
            # anything but a gate's verdict (an exception out of a hook, SystemExit, ...)
            # fails the session like any failing test, whatever the gates say
            report.keptn_kind = "item-error"  # type: ignore[attr-defined]
        elif OBJECTIVE_KEY in item.stash:
            report.keptn_kind = "objective"  # type: ignore[attr-defined]
            report.keptn_status = item.stash.get(STATUS_KEY, "")  # type: ignore[attr-defined]
        elif SEQUENCE_KEY in item.stash:
            report.keptn_kind = "sequence"  # type: ignore[attr-defined]
        else:
            marker = item.get_closest_marker("keptn_stage")
            if marker is not None and marker.args:
                report.keptn_user_stage = str(marker.args[0])  # type: ignore[attr-defined]
        return report

    def pytest_report_teststatus(
        self, report: pytest.TestReport, config: pytest.Config
    ) -> tuple[str, str, tuple[str, dict[str, bool]]] | None:
        if report.when == "call" and report.passed and getattr(report, "keptn_kind", "") == "objective":
            status = getattr(report, "keptn_status", "")
            if status == "warning":
                return "objective warning", "W", ("WARNING", {"yellow": True})
            if status == "info":
                return "objective info", "i", ("INFO", {"cyan": True})
        return None

    # ---- what an item checks -------------------------------------------------

    def check_errored(self, stage: str) -> None:
        """Evaluate the stage (if not yet) and raise :class:`EvaluationErrored` when its
        evaluation errored. Anything else is left to the item's call."""
        try:
            state = self.keptn.pipeline.prepare(stage)
        except KeptnError:
            return  # the call says it, as a failure of the item
        if state.evaluation is not None and state.evaluation.errored:
            raise EvaluationErrored(record_verdict(stage, state.evaluation))

    def _objective_check(self, stage: str, index: int, objective: Objective) -> Any:
        def check(request: pytest.FixtureRequest) -> None:
            state = step(self.keptn.pipeline.prepare, stage)
            if state.evaluation is None:
                why = state.message or (state.failed_task.message if state.failed_task else "")
                if state.status == "not-triggered":
                    pytest.skip(f"{stage}: {why}")
                pytest.skip(f"{stage}: not evaluated: {why or 'the sequence stopped before the evaluation'}")
            record = state.evaluation
            row = self._find_row(record, objective.sli, index, stage)
            item = request.node
            if row is None:
                raise GateFailure(
                    f"{stage}: objective {objective.sli}: no result row (Keptn 0.8.7 drops objectives "
                    "whose SLI has no value, but keeps their weight)"
                )
            item.stash[STATUS_KEY] = row.status
            props = [
                ("keptn_stage", stage), ("keptn_sli", objective.sli),
                ("keptn_value", row.value), ("keptn_success", row.success),
                ("keptn_status", row.status), ("keptn_score", row.score),
                ("keptn_weight", objective.weight), ("keptn_key_sli", objective.key_sli),
                ("keptn_pass_targets", json.dumps(_targets_json(row.pass_targets))),
                ("keptn_warning_targets", json.dumps(_targets_json(row.warning_targets))),
                ("keptn_query", record.queries.get(objective.sli, "")),
            ]
            item.user_properties.extend(props)
            if row.status == "fail":
                raise GateFailure(explain_objective(stage, objective, row, record))

        return check

    def _find_row(self, record: EvaluationRecord, sli: str, index: int,
                  stage: str) -> IndicatorResult | None:
        """The result row of the stage's ``index``-th objective (an SLI may appear twice)."""
        rows, occurrences = self._rows_of(stage, record)
        mine = rows.get(sli, [])
        occurrence = occurrences[index]
        return mine[occurrence] if occurrence < len(mine) else None

    def _rows_of(self, stage: str, record: EvaluationRecord
                 ) -> tuple[dict[str, list[IndicatorResult]], list[int]]:
        """The evaluation's result rows by SLI, and for each objective of the stage how many
        earlier objectives share its SLI; built once per evaluation, not once per item."""
        cached = self._rows.get(stage)
        if cached is not None and cached[0] is record:
            return cached[1], cached[2]
        rows = record.rows_by_sli()
        slo = self.keptn.plans[stage].slo
        assert slo is not None
        seen: dict[str, int] = {}
        occurrences = []
        for objective in slo.objectives:
            occurrences.append(seen.get(objective.sli, 0))
            seen[objective.sli] = occurrences[-1] + 1
        self._rows[stage] = (record, rows, occurrences)
        return rows, occurrences

    def _sequence_check(self, stage: str, sequence: str) -> Any:
        def check() -> None:
            pipeline = self.keptn.pipeline
            state = step(lambda s: pipeline.finish(s, sequence), stage)
            if state.status == "not-triggered":
                if pipeline.plan.starts_run(stage, sequence):
                    raise GateFailure(f"{stage}.{sequence} refused: {state.message}")
                pytest.skip(f"{stage}.{sequence}: {state.message}")
            if state.status == WAITING:  # nothing promoted, nothing failed: a person decides
                pytest.skip(f"{stage}.{sequence}: {state.message}")
            if state.result == "fail":
                raise GateFailure(explain_sequence(state))

        return check


class Ordering:
    """Stages in shipyard order; in a stage: user tests, objectives, then sequences."""

    def __init__(self, keptn: KeptnSession) -> None:
        self.keptn = keptn

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        keptn = self.keptn
        order = {s.name: i for i, s in enumerate(keptn.plan.shipyard.stages)}
        deselected: list[pytest.Item] = []
        kept: list[pytest.Item] = []
        for item in items:
            marker = item.get_closest_marker("keptn_stage")
            if marker is not None and marker.args and str(marker.args[0]) not in keptn.selected:
                deselected.append(item)
            else:
                kept.append(item)

        def key(pair: tuple[int, pytest.Item]) -> tuple[int, int, int, int]:
            index, item = pair
            marker = item.get_closest_marker("keptn_stage")
            if marker is None or not marker.args:
                return (0, 0, 0, index)
            kind = 1 if OBJECTIVE_KEY in item.stash else 2 if SEQUENCE_KEY in item.stash else 0
            return (1, order.get(str(marker.args[0]), 0), kind, index)

        kept = [item for _, item in sorted(enumerate(kept), key=key)]
        if deselected:
            config.hook.pytest_deselected(items=deselected)
        items[:] = kept
