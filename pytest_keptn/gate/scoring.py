"""Lighthouse 0.8.7 scoring (§3-§6): objectives, targets, total score, and the evaluation result.

Floats are computed in the same operation order as Go, so scores and targets match bit for bit.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_keptn.errors import SpecError
from pytest_keptn.gate.criteria import aggregate, compare, target
from pytest_keptn.gate.live import LiveBaseline, LiveJudgement, LiveSamples, judge
from pytest_keptn.gate.stats import quartiles
from pytest_keptn.model import COMPAT_087, SLIResult, SLIStatus, Window
from pytest_keptn.spec.criteria import Criterion
from pytest_keptn.spec.slo import SLO, Objective, TotalScore, load_slo

MISSING_MESSAGE = "no value received from SLI provider"
ERRORED = "errored"  # an evaluation's status when nothing could be measured


@dataclass(frozen=True)
class Target:
    """One criterion's outcome: Keptn's ``{criteria, targetValue, violated}``."""

    criteria: str
    target_value: float
    violated: bool

    def to_keptn(self) -> dict[str, Any]:
        return {
            "criteria": self.criteria,
            "targetValue": self.target_value,
            "violated": self.violated,
        }


@dataclass(frozen=True)
class IndicatorResult:
    """One objective's row of an evaluation (Keptn's ``indicatorResults[]`` entry)."""

    sli: str
    display_name: str
    value: float
    success: bool
    message: str
    score: float
    status: str  # pass | warning | fail | info
    key_sli: bool = False
    weight: int = 1
    pass_targets: tuple[Target, ...] | None = None
    warning_targets: tuple[Target, ...] | None = None
    compared_values: tuple[float, ...] = ()
    aggregate_function: str = "avg"
    query: str = ""
    live: tuple[LiveJudgement, ...] = ()  # relative criteria judged against a live baseline
    live_note: str = ""  # why a live comparison fell back to the history
    # each side's five-number summary and size, for the report's box plots (not for a rate)
    live_distributions: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.display_name or self.sli

    def to_keptn(self) -> dict[str, Any]:
        value: dict[str, Any] = {"metric": self.sli, "value": self.value, "success": self.success}
        if self.message:
            value["message"] = self.message
        return {
            "score": self.score,
            "value": value,
            "displayName": self.display_name,
            "passTargets": None
            if self.pass_targets is None
            else [t.to_keptn() for t in self.pass_targets],
            "warningTargets": None
            if self.warning_targets is None
            else [t.to_keptn() for t in self.warning_targets],
            "keySli": self.key_sli,
            "status": self.status,
            **self._live_keptn(),
        }

    def _live_keptn(self) -> dict[str, Any]:
        # not in Keptn's schema; Keptn's consumers ignore unknown keys
        if not self.live and not self.live_note:
            return {}
        out: dict[str, Any] = {"criteria": [j.to_mapping() for j in self.live]}
        if self.live_distributions:
            out["distributions"] = dict(self.live_distributions)
        if self.live_note:
            out["note"] = self.live_note
        return {"liveComparison": out}


@dataclass(frozen=True)
class Evaluation:
    """The outcome of a quality gate: Keptn's evaluation.finished, as Python values."""

    result: str  # pass | warning | fail
    score: float
    indicator_results: tuple[IndicatorResult, ...] = ()
    compared_events: tuple[str, ...] = ()
    pass_threshold: float = 0.0
    warning_threshold: float | None = None
    key_sli_failed: bool = False
    maximum_score: float = 0.0
    message: str = ""
    id: str | None = None
    slo: SLO | None = None
    time_start: str = ""
    time_end: str = ""
    slo_file_content: str = ""  # base64, for imported evaluations without an SLO object
    # "errored" when nothing could be measured (an SLI provider outage, no window): Keptn's
    # lighthouse then sends result fail with status errored; such an evaluation is no verdict
    # on the build and never a comparison basis
    status: str = "succeeded"
    _index: dict[str, list[float]] | None = field(default=None, repr=False, compare=False)

    @property
    def errored(self) -> bool:
        return self.status == ERRORED

    @property
    def outcome(self) -> str:
        """``pass | warning | fail``, or ``errored`` (the history's result column)."""
        return ERRORED if self.errored else self.result

    def values_by_metric(self) -> dict[str, list[float]]:
        """Successful indicator values per metric, in row order (the comparison basis)."""
        if self._index is None:
            index: dict[str, list[float]] = {}
            for row in self.indicator_results:
                if row.success:
                    index.setdefault(row.sli, []).append(row.value)
            object.__setattr__(self, "_index", index)
            return index
        return self._index

    def to_keptn(
        self,
        *,
        project: str = "",
        stage: str = "",
        service: str = "",
        window: Window | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """The ``data`` of an ``sh.keptn.event.evaluation.finished`` event in Keptn 0.8's shape."""
        if self.slo is not None:
            content = base64.b64encode(self.slo.raw).decode("ascii")
        else:
            content = self.slo_file_content
        evaluation: dict[str, Any] = {
            "timeStart": Window.keptn_time(window.start) if window else self.time_start,
            "timeEnd": Window.keptn_time(window.end) if window else self.time_end,
            "result": self.result,
            "score": self.score,
            "sloFileContent": content,
            "indicatorResults": [r.to_keptn() for r in self.indicator_results] or None,
        }
        if self.compared_events:
            evaluation["comparedEvents"] = list(self.compared_events)
        evaluation["gitCommit"] = ""
        data: dict[str, Any] = {"project": project, "stage": stage, "service": service}
        if labels:
            data["labels"] = dict(labels)
        data["status"] = self.status
        data["result"] = self.result
        if self.message:
            data["message"] = self.message
        data["evaluation"] = evaluation
        return data

    @classmethod
    def from_keptn(cls, data: Mapping[str, Any], id: str | None = None) -> Evaluation:
        """Rebuild an evaluation from an evaluation.finished ``data`` mapping (or a whole event)."""
        if "data" in data and isinstance(data.get("data"), Mapping) and "evaluation" not in data:
            id = id if id is not None else _opt_str(data.get("id"))
            data = data["data"]
        ev = data.get("evaluation") or {}
        if not isinstance(ev, Mapping):
            ev = {}
        rows: list[IndicatorResult] = []
        for raw in ev.get("indicatorResults") or ():
            if not isinstance(raw, Mapping):
                continue
            value = raw.get("value") or {}
            rows.append(
                IndicatorResult(
                    sli=str(value.get("metric", "")),
                    display_name=str(raw.get("displayName") or ""),
                    value=_float(value.get("value")),
                    success=bool(value.get("success", False)),
                    message=str(value.get("message") or ""),
                    score=_float(raw.get("score")),
                    status=str(raw.get("status") or ""),
                    key_sli=bool(raw.get("keySli", False)),
                    pass_targets=_targets(raw.get("passTargets")),
                    warning_targets=_targets(raw.get("warningTargets")),
                    **live_fields(raw.get("liveComparison")),
                )
            )
        result = str(data.get("result") or ev.get("result") or "")
        return cls(
            result=result,
            score=_float(ev.get("score")),
            indicator_results=tuple(rows),
            compared_events=tuple(str(e) for e in ev.get("comparedEvents") or ()),
            message=str(data.get("message") or ""),
            id=id,
            time_start=str(ev.get("timeStart") or ""),
            time_end=str(ev.get("timeEnd") or ""),
            slo_file_content=str(ev.get("sloFileContent") or ""),
            status=ERRORED if data.get("status") == ERRORED else "succeeded",
        )


def errored_evaluation(slo: SLO | None, message: str) -> Evaluation:
    """An evaluation that measured nothing, as lighthouse 0.8.7 sends one: status errored,
    result fail, score 0, no indicator results, the reason in ``message``."""
    pass_threshold, warning_threshold = 0.0, None
    if slo is not None and slo.total_score is not None:
        try:
            pass_threshold = slo.total_score.pass_threshold
            warning_threshold = slo.total_score.warning_threshold
        except ValueError:
            pass
    return Evaluation(result="fail", score=0.0, message=message, slo=slo, status=ERRORED,
                      pass_threshold=pass_threshold, warning_threshold=warning_threshold)


def live_fields(raw: Any) -> dict[str, Any]:
    """An event row's ``liveComparison`` back into the row's live fields."""
    if not isinstance(raw, Mapping):
        return {}
    judged = tuple(LiveJudgement.from_mapping(c) for c in raw.get("criteria") or ()
                   if isinstance(c, Mapping))
    dist = raw.get("distributions")
    return {"live": judged, "live_note": str(raw.get("note") or ""),
            "live_distributions": dict(dist) if isinstance(dist, Mapping) else {}}


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _targets(raw: Any) -> tuple[Target, ...] | None:
    if raw is None:
        return None
    out = []
    for t in raw:
        if isinstance(t, Mapping):
            out.append(
                Target(
                    str(t.get("criteria", "")),
                    _float(t.get("targetValue")),
                    bool(t.get("violated")),
                )
            )
    return tuple(out)


@dataclass(frozen=True)
class _Value:
    metric: str
    value: float
    success: bool
    message: str
    query: str = ""


def _values(indicator_values: Any) -> dict[str, _Value]:
    """First value per metric, as lighthouse looks them up."""
    out: dict[str, _Value] = {}
    if isinstance(indicator_values, Mapping):
        for k, v in indicator_values.items():
            if isinstance(v, SLIResult):
                out.setdefault(
                    str(k), _Value(str(k), float(v.value), v.success, v.message, v.query)
                )
            else:
                out.setdefault(str(k), _Value(str(k), float(v), True, ""))
        return out
    for item in indicator_values:
        if isinstance(item, SLIResult):
            if item.status == SLIStatus.MISSING:
                continue  # no provider answered: the value was never received
            val = _Value(item.metric, float(item.value), item.success, item.message, item.query)
        elif isinstance(item, Mapping):
            val = _Value(
                str(item.get("metric", "")),
                _float(item.get("value")),
                bool(item.get("success", False)),
                str(item.get("message") or ""),
                str(item.get("query") or ""),
            )
        else:
            raise TypeError(f"indicator value of unsupported type {type(item).__name__}")
        out.setdefault(val.metric, val)
    return out


def _previous(previous: Iterable[Any]) -> tuple[list[str], dict[str, list[float]]]:
    """Compared event ids and successful values per metric, newest evaluation first.

    Built once per evaluation so each objective looks its comparison values up in O(1).
    """
    ids: list[str] = []
    index: dict[str, list[float]] = {}
    for item in previous:
        if isinstance(item, Evaluation):
            if item.id is not None:
                ids.append(item.id)
            for metric, values in item.values_by_metric().items():
                bucket = index.get(metric)
                if bucket is None:
                    index[metric] = list(values)
                else:
                    bucket.extend(values)
            continue
        data: Any = item
        event_id = None
        if (
            isinstance(item, Mapping)
            and "evaluation" not in item
            and isinstance(item.get("data"), Mapping)
        ):
            event_id = item.get("id")
            data = item["data"]
        if event_id is not None:
            ids.append(str(event_id))
        ev = data.get("evaluation") if isinstance(data, Mapping) else None
        rows = ev.get("indicatorResults") if isinstance(ev, Mapping) else None
        _index_rows(rows or (), index)
    return ids, index


def _index_rows(rows: Iterable[Any], index: dict[str, list[float]]) -> None:
    # The hot loop of a large comparison (10,000 rows x 100 evaluations): plain indexing with
    # one try block is several times faster than isinstance/Mapping checks per row.
    get = index.get
    for row in rows:
        try:
            value = row["value"]
            if value["success"] is not True:
                continue
            metric = value["metric"]
            number = value["value"]
        except (KeyError, TypeError, IndexError):
            continue
        if type(number) is not float:
            number = _float(number)
        if type(metric) is not str:
            metric = str(metric)
        bucket = get(metric)
        if bucket is None:
            index[metric] = [number]
        else:
            bucket.append(number)


@dataclass
class _Live:
    """The live comparison of one objective: samples, settings, judgements by criterion."""

    samples: LiveSamples
    confidence: float
    bad: str | None
    judged: dict[str, LiveJudgement] = field(default_factory=dict)

    def judge(self, c: Criterion) -> LiveJudgement:
        j = self.judged.get(c.text)
        if j is None:
            j = self.judged[c.text] = judge(
                c, self.samples, confidence=self.confidence, bad=self.bad
            )
        return j


def _evaluate_groups(
    groups: tuple[tuple[Criterion, ...], ...],
    value: _Value,
    base: list[float | None],
    compared: list[float],
    fn: str,
    live: _Live | None = None,
) -> tuple[bool, tuple[Target, ...]]:
    satisfied = False
    targets: list[Target] = []
    for group in groups:
        group_ok = True
        for c in group:
            if live is not None and c.relative and c.valid and value.success:
                j = live.judge(c)
                ok, tv = not j.violated, j.target_value
            else:
                ok, tv = _evaluate_criterion(c, value, base, compared, fn)
            if not ok:
                group_ok = False
            targets.append(Target(c.text, tv, not ok))
        if group_ok:
            satisfied = True
    return satisfied, tuple(targets)


def _evaluate_criterion(
    c: Criterion, value: _Value, base: list[float | None], compared: list[float], fn: str
) -> tuple[bool, float]:
    if not value.success or not c.valid:
        return False, 0.0
    if not c.relative:
        return compare(value.value, c.operator, c.value), c.value
    if not compared:
        return True, 0.0
    agg = base[0]
    if agg is None:
        agg = base[0] = aggregate(compared, fn)
    tv = target(c, agg)
    return compare(value.value, c.operator, tv), tv


def _distributions(samples: LiveSamples) -> dict[str, Any]:
    if samples.canary.is_rate or not samples.canary.values or not samples.baseline.values:
        return {}
    return {
        side: {"quartiles": list(quartiles(s.values)), "n": len(s.values)}
        for side, s in (("canary", samples.canary), ("baseline", samples.baseline))
    }


def _live_for(
    objective: Objective, spec: SLO, baseline: LiveBaseline | None
) -> tuple[_Live | None, str]:
    """The live comparison of an objective with relative criteria, or why it falls back."""
    comparison = spec.comparison
    if baseline is None:
        return None, ""
    groups = objective.pass_groups + objective.warning_groups
    relative = [c for g in groups for c in g if c.relative and c.valid]
    if not relative:
        return None, ""
    if baseline.unavailable:
        return None, f"no live baseline ({baseline.unavailable}): compared with history"
    samples = baseline.samples.get(objective.sli)
    if samples is None:
        why = baseline.missing.get(objective.sli, "")
        return (
            None,
            f"no live samples for this SLI{f' ({why})' if why else ''}: compared with history",
        )
    live = _Live(samples, comparison.confidence, comparison.bad_direction.get(objective.sli))
    try:
        for c in relative:
            live.judge(c)
    except ValueError as exc:
        return None, f"live samples unusable ({exc}): compared with history"
    return live, ""


def score_objective(
    objective: Objective,
    value: _Value,
    compared: list[float],
    fn: str,
    live: _Live | None = None,
    live_note: str = "",
) -> IndicatorResult:
    base: list[float | None] = [None]
    pass_ok, pass_targets = _evaluate_groups(objective.pass_groups, value, base, compared, fn, live)
    warn_ok, warn_targets = _evaluate_groups(
        objective.warning_groups, value, base, compared, fn, live
    )
    if objective.is_info:
        status, score = "info", 0.0
    elif pass_ok:
        status, score = "pass", float(objective.weight)
    elif objective.warning_groups and warn_ok:
        status, score = "warning", 0.5 * objective.weight
    else:
        status, score = "fail", 0.0
    return IndicatorResult(
        sli=objective.sli,
        display_name=objective.display_name,
        value=value.value,
        success=value.success,
        message=value.message,
        score=score,
        status=status,
        key_sli=objective.key_sli,
        weight=objective.weight,
        pass_targets=pass_targets if objective.pass_groups else None,
        warning_targets=warn_targets if objective.warning_groups else None,
        compared_values=() if live is not None else tuple(compared),
        aggregate_function=fn,
        query=value.query,
        live=tuple(live.judged.values()) if live is not None else (),
        live_note=live_note,
        live_distributions=_distributions(live.samples) if live is not None else {},
    )


def evaluate(
    slo: SLO | Mapping[str, Any] | str | Path,
    indicator_values: Mapping[str, float] | Sequence[Mapping[str, Any]] | Sequence[SLIResult],
    previous: Iterable[Evaluation | Mapping[str, Any]] = (),
    *,
    compat: str | None = None,
    live: LiveBaseline | None = None,
) -> Evaluation:
    """Score SLI values against an SLO the way Keptn 0.8.7's lighthouse does (§3-§6).

    ``previous`` is the comparison basis exactly as given (newest first): ``Evaluation`` objects,
    evaluation.finished ``data`` mappings, or whole CloudEvents with ``id`` and ``data``.
    By default a missing SLI value is a failed row ("no value received from SLI provider",
    which triggers ``key_sli``); ``compat="0.8.7"`` drops it from the rows but keeps its weight.

    ``live`` (given when the slo.yaml opts in with ``comparison.baseline: live``, or the run asks
    with ``--keptn-live-baseline``; ignored under ``compat="0.8.7"``) holds canary and baseline
    samples per SLI: a relative criterion is then violated only when the canary is significantly worse
    (at ``comparison.confidence``) AND the estimated effect exceeds the criterion's tolerance
    (:func:`pytest_keptn.gate.live.judge`); without samples it falls back to ``previous``, and
    the row says why (``live_note``).
    """
    spec = slo if isinstance(slo, SLO) else load_slo(slo, compat=compat)
    if compat == COMPAT_087:
        live = None  # Keptn knows no live baseline
    values = _values(indicator_values)
    ids, index = _previous(previous)
    fn = spec.comparison.aggregate_function
    rows: list[IndicatorResult] = []
    maximum = 0.0
    key_failed = False
    for objective in spec.objectives:
        if objective.pass_groups:
            maximum += objective.weight
        value = values.get(objective.sli)
        if value is None:
            if compat == COMPAT_087:
                continue  # 0.8.7: dropped from the rows, weight still counted, key_sli ignored
            value = _Value(objective.sli, 0.0, False, MISSING_MESSAGE)
        judged, note = _live_for(objective, spec, live)
        row = score_objective(objective, value, index.get(objective.sli, []), fn, judged, note)
        if row.status == "fail" and objective.key_sli:
            key_failed = True
        rows.append(row)

    result, score, pass_threshold, warning_threshold = calculate_score(
        [row.score for row in rows], maximum, key_failed, spec.total_score, file=spec.file
    )
    return Evaluation(
        result=result,
        score=score,
        indicator_results=tuple(rows),
        compared_events=tuple(ids),
        pass_threshold=pass_threshold,
        warning_threshold=warning_threshold,
        key_sli_failed=key_failed,
        maximum_score=maximum,
        slo=spec,
    )


def calculate_score(
    scores: Sequence[float],
    maximum: float,
    key_sli_failed: bool,
    total_score: TotalScore | None,
    *,
    file: str | None = None,
) -> tuple[str, float, float, float | None]:
    """Lighthouse's ``calculateScore`` (§6): (result, score, pass threshold, warning threshold).

    A missing or unparsable threshold (only possible under compat="0.8.7") is a SpecError.
    """
    pass_threshold = 0.0
    warning_threshold: float | None = None
    if maximum == 0:
        if total_score is not None:
            try:
                pass_threshold = total_score.pass_threshold
                warning_threshold = total_score.warning_threshold
            except ValueError:
                pass
        return "pass", 100.0, pass_threshold, warning_threshold
    total = 0.0
    for value in scores:
        total += value
    score = 100.0 * (total / maximum)
    if total_score is None:
        raise SpecError("no target score defined", file=file, field="total_score.pass")
    try:
        pass_threshold = total_score.pass_threshold
    except ValueError as exc:
        raise SpecError(str(exc), file=file, field="total_score.pass") from None
    if score >= pass_threshold and not key_sli_failed:
        return "pass", score, pass_threshold, _warning_or_none(total_score)
    if total_score.warning_text != "" and not key_sli_failed:
        try:
            warning_threshold = total_score.warning_threshold
        except ValueError as exc:
            raise SpecError(str(exc), file=file, field="total_score.warning") from None
        assert warning_threshold is not None
        result = "warning" if score >= warning_threshold else "fail"
        return result, score, pass_threshold, warning_threshold
    return "fail", score, pass_threshold, _warning_or_none(total_score)


def _warning_or_none(total_score: TotalScore) -> float | None:
    try:
        return total_score.warning_threshold
    except ValueError:
        return None
