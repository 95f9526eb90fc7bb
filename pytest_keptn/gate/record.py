"""The evaluation record: one scored gate as a run keeps it and every output reads it.

Typed for the code that reads it (verdict, rows, comparison basis, queries); JSON only where
it is saved with the sequence state (``to_json``/``from_json``). ``data`` is the
``evaluation.finished`` payload exactly as it was sent (Keptn's JSON, as the history keeps it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from pytest_keptn.gate.scoring import ERRORED, Evaluation, IndicatorResult


@dataclass(frozen=True)
class Basis:
    """Which earlier evaluations relative criteria were compared with, and how they were chosen."""

    compare_with: str  # the slo.yaml's comparison, or "pinned (--keptn-baseline)"
    include_result_with_score: str
    number_of_comparison_results: int
    aggregate_function: str
    compared_events: tuple[str, ...] = ()

    @property
    def pinned(self) -> bool:
        return self.compare_with.startswith("pinned")


@dataclass(frozen=True)
class EvaluationRecord:
    id: str
    result: str  # pass | warning | fail
    score: float
    pass_threshold: float
    warning_threshold: float | None
    key_sli_failed: bool
    basis: Basis
    data: Mapping[str, Any]  # the evaluation.finished data as sent
    queries: Mapping[str, str] = field(default_factory=dict)  # by SLI, the query that ran
    sli_status: Mapping[str, str] = field(default_factory=dict)  # by SLI, an SLIStatus value
    warnings: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # by SLI (Prometheus')
    compared_values: Mapping[str, tuple[float, ...]] = field(default_factory=dict)  # by SLI
    window: tuple[str, str] = ("", "")  # Keptn timestamps
    status: str = "succeeded"  # or "errored": nothing measured (an outage, no window)
    message: str = ""  # why it errored
    _rows: tuple[IndicatorResult, ...] | None = field(default=None, repr=False, compare=False)

    @property
    def rows(self) -> tuple[IndicatorResult, ...]:
        """The objectives' result rows, in slo.yaml order (read from ``data`` once)."""
        if self._rows is None:
            object.__setattr__(self, "_rows", Evaluation.from_keptn(self.data).indicator_results)
        assert self._rows is not None
        return self._rows

    def rows_by_sli(self) -> dict[str, list[IndicatorResult]]:
        out: dict[str, list[IndicatorResult]] = {}
        for row in self.rows:
            out.setdefault(row.sli, []).append(row)
        return out

    @property
    def errored(self) -> bool:
        return self.status == ERRORED

    @property
    def outcome(self) -> str:
        """``pass | warning | fail``, or ``errored``."""
        return ERRORED if self.errored else self.result

    @property
    def key_failed(self) -> tuple[str, ...]:
        """The key SLIs that failed, by name."""
        return tuple(r.name for r in self.rows if r.key_sli and r.status == "fail")

    def to_json(self) -> dict[str, Any]:
        # Shallow, not dataclasses.asdict: asdict deep-copies ``data`` and the rows (every
        # indicator), and the sequence state holding this record is saved after each step: at
        # 1,000 indicators those copies cost more than the 1,000 queries (issue 17). json.dumps
        # reads the values where they are.
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)
                               if f.name != "_rows"}
        for name, value in out.items():
            if isinstance(value, Mapping):
                out[name] = dict(value)
        out["basis"] = asdict(self.basis)
        return out

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> EvaluationRecord:
        data = {k: v for k, v in raw.items() if k != "_rows"}
        basis = dict(data["basis"])
        basis["compared_events"] = tuple(basis.get("compared_events", ()))
        data["basis"] = Basis(**basis)
        data["warnings"] = {k: tuple(v) for k, v in data.get("warnings", {}).items()}
        data["compared_values"] = {k: tuple(v) for k, v in data.get("compared_values", {}).items()}
        data["window"] = tuple(data.get("window", ("", "")))
        return cls(**data)
