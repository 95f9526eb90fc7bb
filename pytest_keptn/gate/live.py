"""Judging a relative criterion against a live baseline (slo.yaml ``comparison.baseline: live``).

A relative criterion such as ``<=+10%`` then means "the canary is not worse than the baseline,
measured beside it under the same load, by more than 10 %, with the chosen confidence": it is
violated only when the difference is significant in the bad direction (one-sided Mann-Whitney U,
or a two-proportion test for a rate) AND the estimated effect exceeds the tolerance. Pure: the
samples come from the SLI providers, the numbers from :mod:`pytest_keptn.gate.stats`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pytest_keptn.gate import stats
from pytest_keptn.gate.criteria import target
from pytest_keptn.spec.criteria import Criterion

Direction = Literal["increase", "decrease", "either"]


@dataclass(frozen=True)
class Samples:
    """One side's samples of an SLI over the load window.

    ``values`` for a distribution (response times, a range query's points); ``events`` out of
    ``trials`` for a rate (failed requests out of requests), which uses a test for proportions.
    """

    values: tuple[float, ...] = ()
    events: int | None = None
    trials: int | None = None

    @property
    def is_rate(self) -> bool:
        return self.trials is not None

    @property
    def size(self) -> int:
        return self.trials if self.trials is not None else len(self.values)


@dataclass(frozen=True)
class LiveSamples:
    """Canary and baseline samples of one SLI over the same window."""

    canary: Samples
    baseline: Samples
    source: str = ""  # how they were taken, for the report ("range query, step 1s")


@dataclass(frozen=True)
class LiveBaseline:
    """What the evaluation compares with: samples per SLI, or why there is no live baseline."""

    samples: Mapping[str, LiveSamples] = field(default_factory=dict)
    unavailable: str = ""  # e.g. "no earlier build in the stage": history comparison instead
    missing: Mapping[str, str] = field(default_factory=dict)  # sli -> why it has no samples

    def merged(self, other: LiveBaseline) -> LiveBaseline:
        """Both providers' samples (this one's win) and reasons."""
        return LiveBaseline(
            samples={**other.samples, **self.samples},
            unavailable=self.unavailable or other.unavailable,
            missing={
                k: v
                for k, v in {**other.missing, **self.missing}.items()
                if k not in self.samples and k not in other.samples
            },
        )


@dataclass(frozen=True)
class LiveJudgement:
    """One relative criterion judged against the live baseline."""

    criterion: str
    canary: float  # median, or rate
    baseline: float
    effect: float  # ratio - 1 ("ratio"), shift ("shift"), or rate difference ("difference")
    low: float
    high: float
    kind: str  # "ratio" | "shift" | "difference"
    pvalue: float
    n_canary: int
    n_baseline: int
    tolerance: float  # in the effect's unit: the criterion's offset in the bad direction
    bad: str  # increase | decrease | either
    method: str
    confidence: float
    significant: bool
    exceeds: bool
    target_value: float  # Keptn's target computed from the baseline value, for the event

    @property
    def violated(self) -> bool:
        return self.significant and self.exceeds

    @property
    def decision(self) -> str:
        if self.violated:
            return "worse"
        if self.significant:
            return "within tolerance"
        return "no significant difference"

    def describe(self) -> str:
        """One line: values, effect with interval, p-value, sample sizes, tolerance, decision."""
        what = "rate" if self.kind == "difference" else "median"
        return (
            f"{self.criterion} vs live baseline: canary {_num(self.canary)} / baseline "
            f"{_num(self.baseline)} ({what}), effect {self.effect_text(self.effect)} "
            f"[{self.effect_text(self.low)}, {self.effect_text(self.high)}] at "
            f"{self.confidence:.0%}, p={self.pvalue:.3g} (one-sided, {self.method}; "
            f"n={self.n_canary}/{self.n_baseline}), tolerance {self.effect_text(self.tolerance)}"
            f": {self.decision}"
        )

    def effect_text(self, value: float) -> str:
        if math.isinf(value):
            return "-inf" if value < 0 else "+inf"
        if self.kind in ("ratio", "relative shift"):
            return f"{value * 100:+.1f}%"
        return f"{value:+.4g}"

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> LiveJudgement:
        """Back from :meth:`to_mapping` (an evaluation event's ``liveComparison``)."""

        def num(v: Any, default: float) -> float:
            return default if v is None else float(v)

        low, high = (raw.get("interval") or [None, None])[:2]
        samples = raw.get("samples") or {}
        decision = str(raw.get("decision", ""))
        return cls(
            criterion=str(raw["criteria"]),
            canary=float(raw["canary"]),
            baseline=float(raw["baseline"]),
            effect=num(raw.get("effect"), math.nan),
            low=num(low, -math.inf),
            high=num(high, math.inf),
            kind=str(raw.get("effectKind", "")),
            pvalue=float(raw["pValue"]),
            n_canary=int(samples.get("canary", 0)),
            n_baseline=int(samples.get("baseline", 0)),
            tolerance=float(raw["tolerance"]),
            bad=str(raw.get("badDirection", "increase")),
            method=str(raw.get("method", "")),
            confidence=float(raw.get("confidence", 0.95)),
            significant=decision != "no significant difference",
            exceeds=bool(raw.get("violated")) or decision == "worse",
            target_value=math.nan,
        )

    def to_mapping(self) -> dict[str, Any]:
        """JSON-ready (infinite interval bounds become null)."""

        def num(v: float) -> float | None:
            return v if math.isfinite(v) else None

        return {
            "criteria": self.criterion,
            "canary": self.canary,
            "baseline": self.baseline,
            "effect": num(self.effect),
            "effectKind": self.kind,
            "interval": [num(self.low), num(self.high)],
            "confidence": self.confidence,
            "pValue": self.pvalue,
            "samples": {"canary": self.n_canary, "baseline": self.n_baseline},
            "tolerance": self.tolerance,
            "badDirection": self.bad,
            "method": self.method,
            "decision": self.decision,
            "violated": self.violated,
        }


def _num(value: float) -> str:
    return f"{value:.4g}"


def default_direction(criterion: Criterion) -> Direction:
    """Which change is bad, from the operator: ``<=`` an increase, ``>=`` a decrease."""
    if criterion.operator.startswith("<"):
        return "increase"
    if criterion.operator.startswith(">"):
        return "decrease"
    return "either"


def _tolerance(criterion: Criterion, bad: str) -> float:
    """The criterion's offset taken in the bad direction: ``+10%`` -> 0.10 for an increase,
    ``-5%`` -> -0.05 for a decrease, ``+50`` -> 50.

    The live rule is a non-inferiority test ("not worse by more than x"), so only the offset's
    size counts: ``<=-5%`` (Keptn: at least 5 % better than the last run) also allows 5 % worse.
    """
    offset = abs(criterion.value / 100.0 if criterion.percentage else criterion.value)
    return -offset if bad == "decrease" else offset


def _exceeds(effect: float, tolerance: float, bad: str, strict_operator: bool) -> bool:
    if math.isnan(effect):
        return False
    if bad == "increase":
        return effect >= tolerance if strict_operator else effect > tolerance
    if bad == "decrease":
        return effect <= tolerance if strict_operator else effect < tolerance
    return abs(effect) > abs(tolerance)


def _relative(shift: float, centre: float) -> float:
    if centre != 0:
        return shift / abs(centre)
    return 0.0 if shift == 0 else math.copysign(math.inf, shift)


def judge(
    criterion: Criterion,
    samples: LiveSamples,
    *,
    confidence: float = 0.95,
    bad: str | None = None,
) -> LiveJudgement:
    """Judge one relative criterion; ``ValueError`` when a side has no samples."""
    direction = bad or default_direction(criterion)
    alternative: stats.Alternative = (
        "greater" if direction == "increase" else "less" if direction == "decrease" else "two-sided"
    )
    tol = _tolerance(criterion, direction)
    strict = criterion.operator in ("<", ">")
    c, b = samples.canary, samples.baseline
    if c.is_rate or b.is_rate:
        if not (c.is_rate and b.is_rate) or not c.trials or not b.trials:
            raise ValueError("a rate needs events and trials on both sides")
        test = stats.two_proportions(
            c.events or 0, c.trials, b.events or 0, b.trials, alternative, confidence
        )
        canary_value, baseline_value = test.p1, test.p2
        # a relative tolerance is taken on the baseline's rate, as Keptn's target would be
        tolerance = baseline_value * tol if criterion.percentage else tol
        effect, low, high = test.difference.estimate, test.difference.low, test.difference.high
        kind, method, pvalue = "difference", f"two proportions, {test.method}", test.pvalue
    else:
        if not c.values or not b.values:
            raise ValueError("no samples on one side")
        mw = stats.mann_whitney_u(c.values, b.values, alternative)
        canary_value, baseline_value = stats.median(c.values), stats.median(b.values)
        method, pvalue, tolerance = f"Mann-Whitney U, {mw.method}", mw.pvalue, tol
        if criterion.percentage and min(c.values) > 0 and min(b.values) > 0:
            est = stats.hodges_lehmann(c.values, b.values, confidence, log=True)
            effect, low, high, kind = est.estimate - 1, est.low - 1, est.high - 1, "ratio"
        else:
            est = stats.hodges_lehmann(c.values, b.values, confidence)
            effect, low, high, kind = est.estimate, est.low, est.high, "shift"
            if criterion.percentage:  # some value <= 0: the shift relative to the baseline
                effect, low, high = (
                    _relative(effect, baseline_value),
                    _relative(low, baseline_value),
                    _relative(high, baseline_value),
                )
                kind = "relative shift"
    significant = pvalue < 1.0 - confidence
    return LiveJudgement(
        criterion=criterion.text,
        canary=canary_value,
        baseline=baseline_value,
        effect=effect,
        low=low,
        high=high,
        kind=kind,
        pvalue=pvalue,
        n_canary=c.size,
        n_baseline=b.size,
        tolerance=tolerance,
        bad=direction,
        method=method,
        confidence=confidence,
        significant=significant,
        exceeds=_exceeds(effect, tolerance, direction, strict),
        target_value=target(criterion, baseline_value),  # Keptn's, for the event
    )
