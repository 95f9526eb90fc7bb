"""What the terminal shows: a failing objective in its own words, and the gate tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_keptn.sequence import Pipeline, SequenceState
    from pytest_keptn.spec.slo import Objective


def _num(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


NO_BASIS = "no earlier evaluation to compare with"


def _relative(criteria: object) -> bool:
    from pytest_keptn.gate.criteria import parse_criterion

    try:
        return parse_criterion(str(criteria)).relative
    except ValueError:
        return False


def _targets(targets: Sequence[Mapping[str, Any]] | None, compared: bool = True) -> str:
    """Each criterion with its computed target; a relative one that had no earlier value to
    compare with says so instead of showing Keptn's placeholder target 0."""
    if not targets:
        return "-"
    return ", ".join(
        f"{t.get('criteria')} ({NO_BASIS})" if not compared and _relative(t.get("criteria"))
        else f"{t.get('criteria')} (target {_num(t.get('targetValue'))}"
        f"{', violated' if t.get('violated') else ''})"
        for t in targets
    )


def explain_objective(
    stage: str, objective: Objective, row: Mapping[str, Any], evaluation: Mapping[str, Any]
) -> str:
    """A failing objective, in its own words: value, criteria and targets, basis, query."""
    value = row.get("value", {})
    lines = [
        f"{stage}: objective {objective.sli}"
        + (f" ({objective.display_name})" if objective.display_name else "")
        + f" failed: score {_num(row.get('score'))} of weight {objective.weight}"
        + (", KEY SLI (the whole gate fails)" if objective.key_sli else ""),
    ]
    if value.get("success", True):
        lines.append(f"  value:    {_num(value.get('value'))}")
    else:
        lines.append(f"  value:    none ({value.get('message') or 'retrieval failed'})")
    compared = bool(evaluation.get("compared_values", {}).get(objective.sli))
    for label, key in (("pass", "passTargets"), ("warning", "warningTargets")):
        targets = row.get(key)
        if targets:
            lines.append(f"  {label + ':':9} " + "; ".join(
                f"{t.get('criteria')} -> {NO_BASIS}, ok"
                if not compared and _relative(t.get("criteria")) else
                f"{t.get('criteria')} -> target {_num(t.get('targetValue'))} "
                f"{'VIOLATED' if t.get('violated') else 'ok'}" for t in targets))
    basis = evaluation.get("basis", {})
    values = evaluation.get("compared_values", {}).get(objective.sli, [])
    ids = basis.get("compared_events", [])
    if ids:
        lines.append(
            f"  compared: {basis.get('aggregate_function')} of {len(values)} value(s) "
            f"{[float(v) for v in values]} from {len(ids)} earlier evaluation(s) "
            f"({basis_selection(basis)}): {', '.join(ids)}"
        )
    else:
        lines.append("  compared: no earlier evaluation (relative criteria are satisfied)")
    query = evaluation.get("queries", {}).get(objective.sli)
    if query:
        lines.append(f"  query:    {query}")
    for warning in evaluation.get("warnings", {}).get(objective.sli, []):
        lines.append(f"  prometheus warning: {warning}")
    return "\n".join(lines)


def basis_selection(basis: Mapping[str, Any]) -> str:
    """How the comparison basis was chosen: the slo.yaml's comparison, or pinned."""
    how = str(basis.get("compare_with"))
    if how.startswith("pinned"):
        return how
    return f"{how}, include_result_with_score={basis.get('include_result_with_score')}"


def explain_sequence(state: SequenceState) -> str:
    lines = [f"{state.stage}.{state.sequence}: {state.result} — {state.message}"]
    for task in state.tasks:
        lines.append(f"  {task.name:<11} {task.result:<8} {task.seconds:6.1f}s  {task.message}")
    if state.rollback_note:
        lines.append(f"  rollback: {state.rollback_note}")
    return "\n".join(lines)


def render_gate_tables(states: Sequence[SequenceState], pipeline: Pipeline, outcome: Any) -> list[str]:
    """One table per evaluated stage, the task list per sequence, and a verdict line each."""
    from pytest_keptn.sequence import verdict_line

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
            rows = ev["data"]["evaluation"].get("indicatorResults") or []
            table = [("objective", "value", "pass targets", "warning targets", "status", "score")]
            failed_inside_pass = False
            for row in rows:
                value = row.get("value", {})
                shown = _num(value.get("value")) if value.get("success", True) else "no value"
                compared = bool(ev.get("compared_values", {}).get(value.get("metric")))
                table.append((
                    str(value.get("metric")), shown, _targets(row.get("passTargets"), compared),
                    _targets(row.get("warningTargets"), compared), str(row.get("status")),
                    _num(row.get("score")),
                ))
                if row.get("status") == "fail" and ev["result"] in ("pass", "warning"):
                    failed_inside_pass = True
            widths = [min(max(len(r[i]) for r in table), 60) for i in range(6)]
            build = f"{pipeline.settings.image}:{pipeline.settings.tag}".strip(":")
            out.append(f"{state.stage} ({pipeline.plans[state.stage].service}"
                       + (f", {build})" if build else ")"))
            for i, r in enumerate(table):
                out.append("  " + "  ".join(c[:60].ljust(w) for c, w in zip(r, widths, strict=True)))
                if i == 0:
                    out.append("  " + "  ".join("-" * w for w in widths))
            out.append(verdict_line(state.stage, ev))
            if failed_inside_pass:
                out.append(f"  note: an objective failed inside a passing gate ({state.stage}: "
                           f"{ev['result']})")
        tasks = ", ".join(f"{t.name} {t.result}" for t in state.tasks)
        out.append(f"{label}: {state.result} [{tasks}]" + (" (rolled back)" if state.rolled_back else ""))
    if outcome.failed:
        out.append("RESULT: fail — " + "; ".join(outcome.failed))
    elif outcome.warned:
        out.append("RESULT: warning — " + ", ".join(outcome.warned))
    else:
        out.append("RESULT: pass")
    return out
