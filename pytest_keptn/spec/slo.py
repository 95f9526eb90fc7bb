"""slo.yaml (Keptn spec 0.2.x, §2): frozen dataclasses with lighthouse 0.8.7's defaults."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from pytest_keptn.errors import SpecError
from pytest_keptn.model import COMPAT_087
from pytest_keptn.spec._yaml import Fields, read_source
from pytest_keptn.spec.criteria import (
    Criterion,
    invalid_criterion,
    parse_criterion,
    parse_go_float,
)

AGGREGATE_FUNCTIONS = ("avg", "p50", "p90", "p95")


@dataclass(frozen=True)
class Comparison:
    """The ``comparison`` block, defaulted as ``parseSLO`` does."""

    compare_with: str = "single_result"
    include_result_with_score: str = "all"
    number_of_comparison_results: int = 1
    aggregate_function: str = "avg"
    # pytest-keptn's opt-in (Keptn 0.8.7 ignores these keys): "live" judges relative criteria
    # against a baseline run beside the canary, with this confidence; bad_direction: sli -> which
    # change is bad (increase | decrease | either), default from the criterion's operator.
    baseline: str = "history"
    confidence: float = 0.95
    bad_direction: Mapping[str, str] = field(default_factory=dict)

    @property
    def live(self) -> bool:
        return self.baseline == "live"

    @property
    def n(self) -> int:
        """How many previous evaluations form the comparison basis (§4.1)."""
        if self.compare_with == "single_result":
            return 1
        if self.compare_with == "several_results":
            return self.number_of_comparison_results
        return 3

    @property
    def result_filter(self) -> tuple[str, ...] | None:
        """Which previous overall results count (None: all)."""
        mode = self.include_result_with_score.lower()
        if mode == "pass":
            return ("pass",)
        if mode == "pass_or_warn":
            return ("pass", "warning")
        return None


@dataclass(frozen=True)
class TotalScore:
    """``total_score``: raw strings, as Go keeps them (``pass: 90`` is ``"90"``)."""

    pass_text: str = ""
    warning_text: str = ""

    @property
    def pass_threshold(self) -> float:
        """The pass threshold in percent; ``ValueError`` with lighthouse's message."""
        if self.pass_text == "":
            raise ValueError("no target score defined")
        try:
            return parse_go_float(_strip_percent(self.pass_text))
        except ValueError:
            raise ValueError("could not parse pass target percentage") from None

    @property
    def warning_threshold(self) -> float | None:
        if self.warning_text == "":
            return None
        try:
            return parse_go_float(_strip_percent(self.warning_text))
        except ValueError:
            raise ValueError("could not parse warning target percentage") from None


def _strip_percent(text: str) -> str:
    return text[:-1] if text.endswith("%") else text


@dataclass(frozen=True)
class Objective:
    """One objective: OR over ``pass_groups``, AND inside a group."""

    sli: str
    display_name: str = ""
    pass_groups: tuple[tuple[Criterion, ...], ...] = ()
    warning_groups: tuple[tuple[Criterion, ...], ...] = ()
    weight: int = 1
    key_sli: bool = False

    @property
    def is_info(self) -> bool:
        """An informational objective (no pass criteria): never warning or fail."""
        return not self.pass_groups

    @property
    def name(self) -> str:
        return self.display_name or self.sli

    def to_mapping(self) -> dict[str, Any]:
        out: dict[str, Any] = {"sli": self.sli}
        if self.display_name:
            out["displayName"] = self.display_name
        if self.pass_groups:
            out["pass"] = [{"criteria": [c.text for c in g]} for g in self.pass_groups]
        if self.warning_groups:
            out["warning"] = [{"criteria": [c.text for c in g]} for g in self.warning_groups]
        out["weight"] = self.weight
        out["key_sli"] = self.key_sli
        return out


@dataclass(frozen=True)
class SLO:
    """A parsed slo.yaml. ``raw`` is the file as stored (Keptn's ``sloFileContent``)."""

    objectives: tuple[Objective, ...]
    comparison: Comparison = field(default_factory=Comparison)
    total_score: TotalScore | None = None
    filter: Mapping[str, str] = field(default_factory=dict)
    spec_version: str = ""
    file: str = "slo.yaml"
    raw: bytes = b""

    def to_mapping(self) -> dict[str, Any]:
        """The slo.yaml mapping with Keptn's defaults applied."""
        out: dict[str, Any] = {"spec_version": self.spec_version}
        if self.filter:
            out["filter"] = dict(self.filter)
        c = self.comparison
        out["comparison"] = {
            "compare_with": c.compare_with,
            "include_result_with_score": c.include_result_with_score,
            "number_of_comparison_results": c.number_of_comparison_results,
            "aggregate_function": c.aggregate_function,
        }
        if c.live:
            out["comparison"]["baseline"] = c.baseline
            out["comparison"]["confidence"] = c.confidence
            if c.bad_direction:
                out["comparison"]["bad_direction"] = dict(c.bad_direction)
        out["objectives"] = [o.to_mapping() for o in self.objectives]
        if self.total_score is not None:
            ts: dict[str, str] = {"pass": self.total_score.pass_text}
            if self.total_score.warning_text:
                ts["warning"] = self.total_score.warning_text
            out["total_score"] = ts
        return out


_TOP = ("spec_version", "filter", "comparison", "objectives", "total_score")
_COMPARISON = (
    "compare_with",
    "include_result_with_score",
    "number_of_comparison_results",
    "aggregate_function",
)
_LIVE = ("baseline", "confidence", "bad_direction")
BASELINE_SOURCES = ("history", "live")
DIRECTIONS = ("increase", "decrease", "either")  # comparison.bad_direction values
_OBJECTIVE = ("sli", "displayName", "pass", "warning", "weight", "key_sli")


def _groups(
    f: Fields, value: Any, path: str, compat: str | None
) -> tuple[tuple[Criterion, ...], ...]:
    groups: list[tuple[Criterion, ...]] = []
    for gi, group in enumerate(f.sequence(value, path)):
        gpath = f"{path}[{gi}]"
        if group is None:
            raise f.error(gpath, "null criteria group")
        gmap = f.mapping(group, gpath, allow_null=False)
        f.unknown_keys(gmap, ("criteria",), gpath)
        criteria: list[Criterion] = []
        for ci, item in enumerate(f.sequence(gmap.get("criteria"), f"{gpath}.criteria")):
            cpath = f"{gpath}.criteria[{ci}]"
            text = f.string(item, cpath)
            try:
                criteria.append(parse_criterion(text))
            except ValueError as exc:
                if compat == COMPAT_087:
                    criteria.append(invalid_criterion(text, str(exc)))
                else:
                    raise f.error(cpath, f"{exc}: {text!r}") from None
        groups.append(tuple(criteria))
    return tuple(groups)


def slo_from_mapping(
    doc: Any, *, file: str, compat: str | None = None, raw: bytes | None = None
) -> SLO:
    f = Fields(file)
    if doc is None:
        raise f.error("", "empty slo.yaml")
    top = f.mapping(doc, "(top level)", allow_null=False)
    f.unknown_keys(top, _TOP, "")
    spec_version = f.string(top.get("spec_version"), "spec_version")

    flt: dict[str, str] = {}
    for key, value in f.mapping(top.get("filter"), "filter").items():
        flt[f.string(key, "filter")] = f.string(value, f"filter.{key}")

    comparison = Comparison()
    if "comparison" in top and top["comparison"] is not None:
        block = f.mapping(top["comparison"], "comparison")
        if compat == COMPAT_087:
            for key in _LIVE:
                if key in block:
                    f.warn(f"comparison.{key}", "ignored under --keptn-compat=0.8.7, as Keptn does")
        f.unknown_keys(block, _COMPARISON + _LIVE, "comparison")
        n = f.integer(
            block.get("number_of_comparison_results"), "comparison.number_of_comparison_results"
        )
        comparison = Comparison(
            compare_with=f.string(block.get("compare_with"), "comparison.compare_with"),
            include_result_with_score=f.string(
                block.get("include_result_with_score"), "comparison.include_result_with_score"
            )
            or "all",
            number_of_comparison_results=n or 3,
            aggregate_function=f.string(
                block.get("aggregate_function"), "comparison.aggregate_function"
            )
            or "avg",
        )
        if compat != COMPAT_087:
            comparison = replace(comparison, **_live_options(f, block))
            if comparison.compare_with not in ("single_result", "several_results"):
                f.warn(
                    "comparison.compare_with",
                    f"{comparison.compare_with!r} is neither single_result nor several_results "
                    "(Keptn compares with the last 3 results)",
                )
            if comparison.aggregate_function not in AGGREGATE_FUNCTIONS:
                f.warn(
                    "comparison.aggregate_function",
                    f"unknown function {comparison.aggregate_function!r} "
                    "(Keptn aggregates it to 0)",
                )

    objectives: list[Objective] = []
    for i, item in enumerate(f.sequence(top.get("objectives"), "objectives")):
        path = f"objectives[{i}]"
        if item is None:
            raise f.error(path, "null objective")
        obj = f.mapping(item, path, allow_null=False)
        f.unknown_keys(obj, _OBJECTIVE, path)
        if obj.get("sli") is None:
            raise f.error(f"{path}.sli", "missing (every objective needs an sli)")
        sli = f.string(obj["sli"], f"{path}.sli")
        if sli == "":
            raise f.error(f"{path}.sli", "empty sli name")
        weight = f.integer(obj.get("weight"), f"{path}.weight")
        if weight < 0:
            # Keptn 0.8.7 adds it as it is: a negative weight can lift a failing gate above
            # 100 %, or make the weights sum to 0 (a weight of 0 reads as 1, so only negatives can)
            raise f.error(f"{path}.weight", f"objective {sli!r}: negative weight {weight} "
                          "(weights are 1 or more; 0 reads as 1)")
        objectives.append(
            Objective(
                sli=sli,
                display_name=f.string(obj.get("displayName"), f"{path}.displayName"),
                pass_groups=_groups(f, obj.get("pass"), f"{path}.pass", compat),
                warning_groups=_groups(f, obj.get("warning"), f"{path}.warning", compat),
                weight=weight if weight != 0 else 1,
                key_sli=f.boolean(obj.get("key_sli"), f"{path}.key_sli"),
            )
        )

    for sli in comparison.bad_direction:
        if sli not in {o.sli for o in objectives}:
            raise f.error(f"comparison.bad_direction.{sli}", "names no objective's sli")

    total_score: TotalScore | None = None
    if top.get("total_score") is not None:
        ts = f.mapping(top["total_score"], "total_score")
        f.unknown_keys(ts, ("pass", "warning"), "total_score")
        total_score = TotalScore(
            pass_text=f.string(ts.get("pass"), "total_score.pass"),
            warning_text=f.string(ts.get("warning"), "total_score.warning"),
        )
    if compat != COMPAT_087 and any(o.pass_groups for o in objectives):
        if total_score is None or total_score.pass_text == "":
            raise f.error("total_score.pass", "missing (no target score defined)")
        try:
            total_score.pass_threshold  # noqa: B018
        except ValueError as exc:
            raise f.error("total_score.pass", f"{exc}: {total_score.pass_text!r}") from None
        try:
            total_score.warning_threshold  # noqa: B018
        except ValueError as exc:
            raise f.error("total_score.warning", f"{exc}: {total_score.warning_text!r}") from None

    slo = SLO(
        objectives=tuple(objectives),
        comparison=comparison,
        total_score=total_score,
        filter=flt,
        spec_version=spec_version,
        file=file,
    )
    if raw is None:
        raw = yaml.safe_dump(slo.to_mapping(), sort_keys=False).encode()
    return replace(slo, raw=raw)


def _live_options(f: Fields, block: Mapping[Any, Any]) -> dict[str, Any]:
    """``comparison.baseline``, ``confidence`` and ``bad_direction``, checked."""
    out: dict[str, Any] = {}
    if block.get("baseline") is not None:
        source = f.string(block["baseline"], "comparison.baseline")
        if source not in BASELINE_SOURCES:
            raise f.error("comparison.baseline", f"must be history or live, not {source!r}")
        out["baseline"] = source
    if block.get("confidence") is not None:
        raw = block["confidence"]
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise f.error("comparison.confidence", f"must be a number, not {raw!r}")
        if not 0.5 <= float(raw) < 1.0:
            raise f.error("comparison.confidence", f"must be at least 0.5 and below 1, not {raw}")
        out["confidence"] = float(raw)
    if block.get("bad_direction") is not None:
        directions: dict[str, str] = {}
        for key, value in f.mapping(block["bad_direction"], "comparison.bad_direction").items():
            sli = f.string(key, "comparison.bad_direction")
            path = f"comparison.bad_direction.{sli}"
            direction = f.string(value, path)
            if direction not in DIRECTIONS:
                raise f.error(path, f"must be increase, decrease or either, not {direction!r}")
            directions[sli] = direction
        out["bad_direction"] = directions
    return out


def load_slo(
    source: str | Path | bytes | Mapping[str, Any],
    *,
    file: str | None = None,
    compat: str | None = None,
) -> SLO:
    """Load an slo.yaml from a path, raw bytes or an already-decoded mapping.

    Raises :class:`~pytest_keptn.errors.SpecError` (one line: file, field path, problem).
    ``compat="0.8.7"`` keeps unparsable criteria (violated, target 0) and defers total-score
    errors to evaluation, as Keptn 0.8.7 does.
    """
    if isinstance(source, SLO):
        return source
    doc, name, raw = read_source(source, file, "slo.yaml")
    try:
        return slo_from_mapping(doc, file=name, compat=compat, raw=raw)
    except SpecError:
        raise
    except RecursionError:
        raise SpecError("nested too deeply", file=name) from None
