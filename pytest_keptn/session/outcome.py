"""The session's result: the gates and tasks decide the exit status, not single objectives;
then the terminal's gate tables, the markdown summary and the stage reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from pytest_keptn.config import Settings
from pytest_keptn.report.html import HistoryEntry, StageReport
from pytest_keptn.report.markdown import summary_path, write_markdown_summary
from pytest_keptn.report.terminal import objective_basis
from pytest_keptn.report.wording import format_number, record_verdict, targets_line
from pytest_keptn.run.plan import RunPlan
from pytest_keptn.run.state import SequenceState

if TYPE_CHECKING:
    from pytest_keptn.gate.record import EvaluationRecord
    from pytest_keptn.gate.scoring import Target
    from pytest_keptn.session.session import KeptnSession


@dataclass
class Outcome:
    failed: list[str] = field(default_factory=list)
    warned: list[str] = field(default_factory=list)


def decide(states: list[SequenceState], settings: Settings, plan: RunPlan) -> Outcome:
    """The gates and tasks decide the session, not single objectives."""
    outcome = Outcome()
    for state in states:
        label = f"{state.stage}.{state.sequence}"
        if state.status == "not-triggered":
            if plan.starts_run(state.stage, state.sequence):
                outcome.failed.append(f"{label} refused: {state.message}")
            continue
        if state.status != "finished":
            continue
        if state.result == "fail":
            outcome.failed.append(f"{label}: {state.message or 'failed'}")
        elif state.result == "warning" or (
                state.evaluation is not None and state.evaluation.result == "warning"):
            outcome.warned.append(label)
            if settings.fail_on_warning:
                outcome.failed.append(f"{label}: warning (--keptn-fail-on-warning)")
    return outcome


def finish_session(keptn: KeptnSession, session: pytest.Session, exitstatus: int) -> None:
    """Finish or abort what runs, decide the outcome once, and set the exit status."""
    if keptn.is_xdist_controller:
        pass
    elif exitstatus == pytest.ExitCode.INTERRUPTED:
        # Ctrl-C: no further task runs (no load, no release); the canary is removed.
        keptn.pipeline.abort_all("terminated (SIGTERM)" if keptn.terminated
                                 else "interrupted (KeyboardInterrupt)")
    else:
        keptn.pipeline.finish_all()
    if keptn.is_worker:
        return
    # read once here; the terminal summary and pytest-html's report come after this hook
    keptn.final_states = states = keptn.pipeline.states()
    outcome = keptn.outcome = decide(states, keptn.settings, keptn.plan)
    keptn.reports = stage_reports(keptn, states)
    if keptn.reports:
        fallback = keptn.settings.state_path(keptn.root) / "summary.md"
        try:
            write_markdown_summary(keptn.reports, fallback)
        except OSError as exc:  # a report that cannot be written does not change the verdict
            keptn.say(f"warning: cannot write the markdown summary to {summary_path(fallback)}: "
                      f"{exc.strerror or exc}")
    if exitstatus in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.INTERNAL_ERROR,
                      pytest.ExitCode.USAGE_ERROR):
        return
    if outcome.failed or keptn.failed_other:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    elif exitstatus == pytest.ExitCode.TESTS_FAILED:
        session.exitstatus = pytest.ExitCode.OK


def terminal_summary(keptn: KeptnSession, terminalreporter: Any) -> None:
    if keptn.is_worker:
        return
    outcome, states = keptn.outcome, keptn.final_states
    if outcome is None or states is None or all(s.status == "pending" for s in states):
        return
    terminalreporter.write_sep("=", "Keptn quality gates")
    for line in render_gate_tables(states, keptn, outcome):
        terminalreporter.write_line(line)


def stage_reports(keptn: KeptnSession, states: list[SequenceState]) -> list[StageReport]:
    reports = []
    for state in states:
        if state.evaluation is None:
            continue
        ev = state.evaluation
        plan = keptn.plans[state.stage]
        try:
            rows = keptn.history().evaluations(
                project=keptn.project, stage=state.stage, service=plan.service, limit=30
            )
        except Exception:
            rows = []
        history = [
            HistoryEntry(id=r.id, time=str(r.time), image=r.image, tag=r.tag,
                         result=r.result, score=r.score, data=r.data)
            for r in rows if not r.unreadable  # a damaged row has nothing to draw
        ]
        reports.append(StageReport(
            project=keptn.project, stage=state.stage, service=plan.service,
            image=keptn.settings.image, tag=keptn.settings.tag,
            result=ev.result, score=ev.score, pass_threshold=ev.pass_threshold,
            warning_threshold=ev.warning_threshold, data=dict(ev.data), history=history,
            queries=dict(ev.queries),
            basis={m: objective_basis(ev, m) for m in ev.compared_values},
            sequence_result=state.result or "", note=state.message,
        ))
    return reports


def explain_sequence(state: SequenceState) -> str:
    lines = [f"{state.stage}.{state.sequence}: {state.result} — {state.message}"]
    for task in state.tasks:
        lines.append(f"  {task.name:<11} {task.result:<8} {task.seconds:6.1f}s  {task.message}")
    if state.rollback_note:
        lines.append(f"  rollback: {state.rollback_note}")
    return "\n".join(lines)


def render_gate_tables(states: list[SequenceState], keptn: KeptnSession, outcome: Outcome
                       ) -> list[str]:
    """One table per evaluated stage, the task list per sequence, and a verdict line each."""
    out: list[str] = []
    for state in states:
        label = f"{state.stage}.{state.sequence}"
        if state.status == "pending":
            continue
        if state.status == "not-triggered":
            out.append(f"{label}: not run — {state.message}")
            continue
        ev = state.evaluation
        if ev is not None:
            out.extend(_gate_table(state.stage, ev, keptn))
        tasks = ", ".join(f"{t.name} {t.result}" for t in state.tasks)
        out.append(f"{label}: {state.result} [{tasks}]" + (" (rolled back)" if state.rolled_back else ""))
    if outcome.failed:
        out.append("RESULT: fail — " + "; ".join(outcome.failed))
    elif outcome.warned:
        out.append("RESULT: warning — " + ", ".join(outcome.warned))
    else:
        out.append("RESULT: pass")
    return out


def _gate_table(stage: str, ev: EvaluationRecord, keptn: KeptnSession) -> list[str]:
    table = [("objective", "value", "pass targets", "warning targets", "status", "score")]
    failed_inside_pass = False
    for row in ev.rows:
        compared = bool(ev.compared_values.get(row.sli))
        table.append((
            row.sli, format_number(row.value) if row.success else "no value",
            targets_line(_triples(row.pass_targets), compared),
            targets_line(_triples(row.warning_targets), compared),
            row.status, format_number(row.score),
        ))
        if row.status == "fail" and ev.result in ("pass", "warning"):
            failed_inside_pass = True
    widths = [min(max(len(r[i]) for r in table), 60) for i in range(6)]
    build = f"{keptn.settings.image}:{keptn.settings.tag}".strip(":")
    out = [f"{stage} ({keptn.plans[stage].service}" + (f", {build})" if build else ")")]
    for i, r in enumerate(table):
        out.append("  " + "  ".join(c[:60].ljust(w) for c, w in zip(r, widths, strict=True)))
        if i == 0:
            out.append("  " + "  ".join("-" * w for w in widths))
    out.append(record_verdict(stage, ev))
    if failed_inside_pass:
        out.append(f"  note: an objective failed inside a passing gate ({stage}: {ev.result})")
    return out


def _triples(targets: tuple[Target, ...] | None) -> list[tuple[str, object, bool]] | None:
    return None if targets is None else [(t.criteria, t.target_value, t.violated) for t in targets]
