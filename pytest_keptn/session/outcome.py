"""The session's result: the gates and tasks decide the exit status, not single objectives;
then the terminal's gate tables, the markdown summary and the stage reports."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_keptn.config import Settings
from pytest_keptn.gate.approval import WAITING
from pytest_keptn.report.html import HistoryEntry, StageReport, history_limit, indicator_results
from pytest_keptn.report.live import judged_live, live_lines
from pytest_keptn.report.markdown import summary_path, write_markdown_summary
from pytest_keptn.report.terminal import Line, load_lines, marked_targets, objective_basis
from pytest_keptn.report.wording import format_number, record_verdict
from pytest_keptn.run.plan import RunPlan
from pytest_keptn.run.state import SequenceState
from pytest_keptn.system import interrupts

if TYPE_CHECKING:
    from pytest_keptn.gate.record import EvaluationRecord
    from pytest_keptn.session.session import KeptnSession


@dataclass
class Outcome:
    failed: list[str] = field(default_factory=list)
    warned: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # sequences waiting for a manual approval


def decide(states: list[SequenceState], settings: Settings, plan: RunPlan) -> Outcome:
    """The gates and tasks decide the session, not single objectives."""
    outcome = Outcome()
    for state in states:
        label = f"{state.stage}.{state.sequence}"
        if state.status == "not-triggered":
            if plan.starts_run(state.stage, state.sequence):
                outcome.failed.append(f"{label} refused: {state.message}")
            continue
        if state.status == WAITING:
            outcome.waiting.append(label)
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
        keptn.pipeline.abort_all(interrupts.reason())
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
        terminalreporter.write_line(line.text, **line.markup)


def stage_reports(keptn: KeptnSession, states: list[SequenceState], *,
                  every_stage: bool = False) -> list[StageReport]:
    """A report per evaluated stage; ``every_stage``: also the stages that ran without an
    evaluation or did not run (the HTML report shows each stage's task strip)."""
    reports = []
    for state in states:
        tasks = tuple((t.name, t.result, t.seconds, t.message) for t in state.tasks)
        if not tasks and state.status == "not-triggered":  # the sequence's tasks, none run
            planned = next((q for q in keptn.plans[state.stage].stage.sequences
                            if q.name == state.sequence), None)
            tasks = tuple((t.name, "not run", 0.0, state.message)
                          for t in (planned.tasks if planned else ()))
        if state.evaluation is None:
            if every_stage and state.status != "pending":
                reports.append(StageReport(
                    project=keptn.project, stage=state.stage,
                    service=keptn.plans[state.stage].service, image=keptn.settings.image,
                    tag=keptn.settings.tag, result="", score=0.0, pass_threshold=0.0,
                    warning_threshold=None, data={}, history=[],
                    sequence_result=state.result or state.status, note=state.message,
                    tasks=tasks))
            continue
        ev = state.evaluation
        plan = keptn.plans[state.stage]
        try:
            # only what the history view shows is read (and kept until the report is written)
            rows = keptn.history().evaluations(
                project=keptn.project, stage=state.stage, service=plan.service,
                limit=history_limit(len(indicator_results(ev.data))),
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
            result=ev.outcome, score=ev.score, pass_threshold=ev.pass_threshold,
            warning_threshold=ev.warning_threshold, data=dict(ev.data), history=history,
            queries=dict(ev.queries),
            basis={m: objective_basis(ev, m) for m in ev.compared_values},
            sequence_result=state.result or "", note=state.message, tasks=tasks,
            endpoints=list(state.load.details.get("endpoints") or []) if state.load else [],
            locust_report=_report_link(keptn, state.load.details.get("html_report"))
            if state.load else "",
        ))
    return reports


def _report_link(keptn: KeptnSession, path: object) -> str:
    """A link to Locust's report: relative to the quality report when pytest-html writes one
    (``--html``), so the two folders can be moved together; else a file:// URL."""
    if not path:
        return ""
    target = Path(str(path))
    html_path = keptn.config.getoption("htmlpath", None)
    if not html_path:
        return target.as_uri()
    page = Path(keptn.config.invocation_params.dir, str(html_path)).resolve()
    return os.path.relpath(target, page.parent)


def explain_sequence(state: SequenceState) -> str:
    lines = [f"{state.stage}.{state.sequence}: {state.result} — {state.message}"]
    for task in state.tasks:
        lines.append(f"  {task.name:<11} {task.result:<8} {task.seconds:6.1f}s  {task.message}")
    if state.rollback_note:
        lines.append(f"  rollback: {state.rollback_note}")
    return "\n".join(lines)


def render_gate_tables(states: list[SequenceState], keptn: KeptnSession, outcome: Outcome
                       ) -> list[Line]:
    """One table per evaluated stage, the load's endpoints, the task list per sequence, and a
    verdict line each; every line with the status that colours it."""
    out: list[Line] = []
    for state in states:
        label = f"{state.stage}.{state.sequence}"
        if state.status == "pending":
            continue
        if state.status == "not-triggered":
            out.append(Line(f"{label}: not run — {state.message}"))
            continue
        if state.load is not None:
            out.append(Line(f"{state.stage} ({keptn.plans[state.stage].service}): the load"))
            out.extend(Line(text) for text in load_lines(state.load))
        ev = state.evaluation
        if ev is not None and ev.errored:  # nothing measured: no table, the reason
            out.append(Line(record_verdict(state.stage, ev), "fail", bold=True))
        elif ev is not None:
            out.extend(_gate_table(state.stage, ev, keptn))
        tasks = ", ".join(f"{t.name} {t.result}" for t in state.tasks)
        if state.status == WAITING:
            out.append(Line(f"{label}: waiting for approval [{tasks}]", "warning"))
            out.append(Line(f"  {state.message}", "warning"))
            continue
        out.append(Line(f"{label}: {state.result} [{tasks}]"
                        + (" (rolled back)" if state.rolled_back else ""), state.result or ""))
    if outcome.failed:
        out.append(Line("RESULT: fail — " + "; ".join(outcome.failed), "fail", bold=True))
    elif outcome.waiting:
        out.append(Line("RESULT: waiting for approval — " + ", ".join(outcome.waiting),
                        "warning", bold=True))
    elif outcome.warned:
        out.append(Line("RESULT: warning — " + ", ".join(outcome.warned), "warning", bold=True))
    else:
        out.append(Line("RESULT: pass", "pass", bold=True))
    return out


def _gate_table(stage: str, ev: EvaluationRecord, keptn: KeptnSession) -> list[Line]:
    table = [("objective", "value", "pass targets", "warning targets", "status", "score")]
    statuses = [""]
    failed_inside_pass = False
    for row in ev.rows:
        compared = bool(ev.compared_values.get(row.sli)) or judged_live(row)
        table.append((
            row.sli, format_number(row.value) if row.success else "no value",
            marked_targets(row.pass_targets, compared),
            marked_targets(row.warning_targets, compared),
            row.status, format_number(row.score),
        ))
        statuses.append(row.status)
        if row.status == "fail" and ev.result in ("pass", "warning"):
            failed_inside_pass = True
    widths = [min(max(len(r[i]) for r in table), 60) for i in range(6)]
    build = f"{keptn.settings.image}:{keptn.settings.tag}".strip(":")
    out = [Line(f"{stage} ({keptn.plans[stage].service}" + (f", {build})" if build else ")"))]
    for i, (r, status) in enumerate(zip(table, statuses, strict=True)):
        out.append(Line("  " + "  ".join(c[:60].ljust(w) for c, w in zip(r, widths, strict=True)),
                        status))
        if i == 0:
            out.append(Line("  " + "  ".join("-" * w for w in widths)))
        else:
            out += [Line(f"    live: {line}") for line in live_lines(ev.rows[i - 1])]
    out.append(Line(record_verdict(stage, ev), ev.result, bold=True))
    if failed_inside_pass:
        out.append(Line(f"  note: an objective failed inside a passing gate ({stage}: {ev.result})",
                        "warning"))
    return out
