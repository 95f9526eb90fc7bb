"""What the terminal shows of a gate: a failing objective in its own words, targets, values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_keptn.spec.slo import Objective


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


NO_BASIS = "no earlier evaluation to compare with"


def _relative(criteria: object) -> bool:
    from pytest_keptn.spec.criteria import parse_criterion

    try:
        return parse_criterion(str(criteria)).relative
    except ValueError:
        return False


def targets_text(targets: Sequence[Mapping[str, Any]] | None, compared: bool = True) -> str:
    """Each criterion with its computed target; a relative one that had no earlier value to
    compare with says so instead of showing Keptn's placeholder target 0."""
    if not targets:
        return "-"
    return ", ".join(
        f"{t.get('criteria')} ({NO_BASIS})" if not compared and _relative(t.get("criteria"))
        else f"{t.get('criteria')} (target {format_value(t.get('targetValue'))}"
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
        + f" failed: score {format_value(row.get('score'))} of weight {objective.weight}"
        + (", KEY SLI (the whole gate fails)" if objective.key_sli else ""),
    ]
    if value.get("success", True):
        lines.append(f"  value:    {format_value(value.get('value'))}")
    else:
        lines.append(f"  value:    none ({value.get('message') or 'retrieval failed'})")
    compared = bool(evaluation.get("compared_values", {}).get(objective.sli))
    for label, key in (("pass", "passTargets"), ("warning", "warningTargets")):
        targets = row.get(key)
        if targets:
            lines.append(f"  {label + ':':9} " + "; ".join(
                f"{t.get('criteria')} -> {NO_BASIS}, ok"
                if not compared and _relative(t.get("criteria")) else
                f"{t.get('criteria')} -> target {format_value(t.get('targetValue'))} "
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
