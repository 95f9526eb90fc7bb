"""What the terminal shows of a failing objective: value, criteria and targets, comparison
basis and query, in the words of :mod:`pytest_keptn.report.wording`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from pytest_keptn.report.endpoints import endpoint_rows, text_table
from pytest_keptn.report.live import judged_live, live_lines
from pytest_keptn.report.wording import basis_selection, basis_text, format_number, target_text

if TYPE_CHECKING:
    from pytest_keptn.gate.record import EvaluationRecord
    from pytest_keptn.gate.scoring import IndicatorResult, Target
    from pytest_keptn.model import LoadResult
    from pytest_keptn.spec.slo import Objective


def explain_objective(
    stage: str, objective: Objective, row: IndicatorResult, record: EvaluationRecord
) -> str:
    """A failing objective, in its own words: value, criteria and targets, basis, query."""
    lines = [
        f"{stage}: objective {objective.sli}"
        + (f" ({objective.display_name})" if objective.display_name else "")
        + f" failed: score {format_number(row.score)} of weight {objective.weight}"
        + (", KEY SLI (the whole gate fails)" if objective.key_sli else ""),
    ]
    if row.success:
        lines.append(f"  value:    {format_number(row.value)}")
    else:
        lines.append(f"  value:    none ({row.message or 'retrieval failed'})")
    compared = bool(record.compared_values.get(objective.sli)) or judged_live(row)
    for label, targets in (("pass", row.pass_targets), ("warning", row.warning_targets)):
        if targets:
            lines.append(f"  {label + ':':9} " + "; ".join(
                f"{t.criteria} -> {target_text(t.criteria, t.target_value, t.violated, compared)} "
                f"{'VIOLATED' if t.violated else 'ok'}" for t in targets))
    lines += [f"  live:     {line}" for line in live_lines(row)]
    lines.append("  compared: the live baseline (see above), not the history" if judged_live(row)
                 else f"  compared: {objective_basis(record, objective.sli)}")
    query = record.queries.get(objective.sli)
    if query:
        lines.append(f"  query:    {query}")
    for warning in record.warnings.get(objective.sli, ()):
        lines.append(f"  prometheus warning: {warning}")
    return "\n".join(lines)


def objective_basis(record: EvaluationRecord, sli: str) -> str:
    """What an objective's relative criteria were compared with, and which evaluations."""
    basis = record.basis
    text = basis_text(basis.aggregate_function, record.compared_values.get(sli, ()),
                      len(basis.compared_events),
                      basis_selection(basis.compare_with, basis.include_result_with_score))
    return f"{text}: {', '.join(basis.compared_events)}" if basis.compared_events else text


# --- the gate tables' colours and marks --------------------------------------------------------
# Written through pytest's TerminalWriter, so --color=no/yes, NO_COLOR, PY_COLORS and
# FORCE_COLOR decide as for pytest's own output; an encoding without ✓/✗ gets escapes.

COLOURS = {"pass": "green", "warning": "yellow", "fail": "red"}
MET, VIOLATED = "✓", "✗"


class Line(NamedTuple):
    """A line of the summary and the status that colours it ("" for none)."""

    text: str
    status: str = ""
    bold: bool = False

    @property
    def markup(self) -> dict[str, bool]:
        colour = COLOURS.get(self.status)
        out = {colour: True} if colour else {}
        return {**out, "bold": True} if self.bold else out


def marked_targets(targets: Sequence[Target] | None, compared: bool | None = None) -> str:
    """``✓ <=1 (target 1), ✗ >=-80% (target 5)``, a mark per criterion as k6's thresholds;
    ``-`` for none."""
    if not targets:
        return "-"
    return ", ".join(
        f"{VIOLATED if t.violated else MET} {t.criteria} "
        f"({target_text(t.criteria, t.target_value, t.violated, compared)})" for t in targets)


def load_lines(load: LoadResult) -> list[str]:
    """After the load: totals, Locust's per-endpoint table and where Locust's own report is."""
    details = load.details or {}
    lines = [f"  load: {load.requests} requests, {load.failures} failures, "
             f"{load.rps:.1f} rps over {load.window.seconds:.1f}s"]
    lines += text_table(endpoint_rows(details.get("endpoints")), indent="    ")
    if details.get("html_report"):
        lines.append(f"    Locust's report: {details['html_report']}")
    return lines
