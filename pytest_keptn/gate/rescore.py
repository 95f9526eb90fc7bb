"""What-if re-scoring: stored evaluations scored again under an edited slo.yaml.

Pure computation over the history: each evaluation's stored SLI values, and the comparison
basis as the edited slo.yaml's ``comparison`` block would have selected it at that moment
(the evaluations stored before it). No Prometheus, no deployment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pytest_keptn.gate.history import History
from pytest_keptn.gate.scoring import Evaluation, evaluate
from pytest_keptn.spec.slo import SLO


@dataclass(frozen=True)
class Rescored:
    """One stored evaluation, as it was and as the edited slo.yaml scores it."""

    id: str
    time: datetime
    stage: str
    image: str
    tag: str
    old_result: str
    old_score: float
    new_result: str
    new_score: float
    changed: tuple[str, ...]  # "objective: old status -> new status", in SLO order


def _statuses(evaluation: Evaluation) -> dict[str, str]:
    return {row.name: row.status for row in evaluation.indicator_results}


def rescore(
    history: History,
    slo: SLO,
    *,
    project: str | None = None,
    stage: str | None = None,
    service: str | None = None,
    last: int = 10,
    compat: str | None = None,
) -> list[Rescored]:
    """The newest ``last`` readable evaluations (newest first), re-scored under ``slo``.
    Unreadable rows are skipped (a warning each in ``history.warnings``)."""
    out: list[Rescored] = []
    for row in history.evaluations(project, stage, service, limit=max(last, 0)):
        if row.unreadable:
            history.warnings.append(
                f"history: evaluation {row.id} is unreadable ({row.unreadable}); not re-scored")
            continue
        old = row.evaluation()
        values = [{"metric": r.sli, "value": r.value, "success": r.success,
                   "message": r.message} for r in old.indicator_results]
        basis = history.previous(slo, project=row.project, stage=row.stage,
                                 service=row.service, before=row.id)
        new = evaluate(slo, values, basis, compat=compat)
        before, after = _statuses(old), _statuses(new)
        changed = tuple(
            f"{name}: {before.get(name, 'absent')} -> {after.get(name, 'absent')}"
            for name in [*after, *(n for n in before if n not in after)]
            if before.get(name) != after.get(name)
        )
        out.append(Rescored(row.id, row.time, row.stage, row.image, row.tag, row.result,
                            row.score, new.result, new.score, changed))
    return out
