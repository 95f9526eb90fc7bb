"""A/A calibration: from N runs of the same build against itself, the run-to-run spread of each
relative criterion's effect and the smallest tolerance that would not have failed any run.

Pure: the runs' judgements come from :func:`pytest_keptn.gate.live.judge`.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from pytest_keptn.gate.live import LiveJudgement
from pytest_keptn.spec.slo import SLO


@dataclass(frozen=True)
class Calibration:
    """One relative criterion of one SLI over the A/A runs."""

    sli: str
    criterion: str
    kind: str  # the effect's kind (ratio, shift, difference, relative shift)
    bad: str
    effects: tuple[float, ...]
    significant: tuple[bool, ...]
    failed: int  # runs the current tolerance failed

    @property
    def spread(self) -> tuple[float, float]:
        return min(self.effects), max(self.effects)

    @property
    def stdev(self) -> float:
        return statistics.stdev(self.effects) if len(self.effects) > 1 else 0.0

    def _bad(self, effect: float) -> float:
        if self.bad == "decrease":
            return -effect
        if self.bad == "increase":
            return effect
        return abs(effect)

    @property
    def covering_tolerance(self) -> float:
        """The largest effect in the bad direction of any run, significant or not (>= 0)."""
        return max([0.0, *(self._bad(e) for e in self.effects if not math.isnan(e))])

    @property
    def smallest_tolerance(self) -> float:
        """The smallest offset (>= 0) in the bad direction that no run exceeded significantly.

        A run fails when significant AND its effect exceeds the tolerance, so only the
        significant runs bound it; the effect exactly at it does not exceed it (``<=``).
        """
        return max(
            [
                0.0,
                *(
                    self._bad(e)
                    for e, significant in zip(self.effects, self.significant, strict=True)
                    if significant and not math.isnan(e)
                ),
            ]
        )

    def proposed(self) -> str:
        """A criterion whose tolerance covers every run's effect (so also the smallest one that
        fails none: a few runs with no significant difference would otherwise propose 0),
        rounded up (whole percent, or 3 significant digits)."""
        op = self.criterion.replace(" ", "")[:2]
        op = op if op in ("<=", ">=") else self.criterion.replace(" ", "")[:1]
        sign = "-" if self.bad == "decrease" else "+"
        tol = max(self.smallest_tolerance, self.covering_tolerance)
        if self.kind in ("ratio", "relative shift") or self.criterion.rstrip().endswith("%"):
            percent = math.ceil(tol * 100 + 1e-9) if math.isfinite(tol) else 100
            return f"{op}{sign}{max(percent, 1)}%"
        return f"{op}{sign}{_round_up(tol)}"


def _round_up(value: float) -> str:
    if value <= 0 or not math.isfinite(value):
        return "0"
    digits = 2 - math.floor(math.log10(abs(value)))
    factor = 10.0**digits
    return f"{math.ceil(value * factor - 1e-9) / factor:g}"


def calibrate(runs: Sequence[Mapping[str, Sequence[LiveJudgement]]]) -> list[Calibration]:
    """Per SLI and relative criterion, over the runs (each: sli -> that run's judgements)."""
    grouped: dict[tuple[str, str], list[LiveJudgement]] = {}
    for run in runs:
        for sli, judgements in run.items():
            for j in judgements:
                grouped.setdefault((sli, j.criterion), []).append(j)
    return [
        Calibration(
            sli=sli,
            criterion=criterion,
            kind=js[0].kind,
            bad=js[0].bad,
            effects=tuple(j.effect for j in js),
            significant=tuple(j.significant for j in js),
            failed=sum(j.violated for j in js),
        )
        for (sli, criterion), js in grouped.items()
    ]


def draft_slo(spec: SLO, calibrations: Sequence[Calibration]) -> str:
    """The slo.yaml with the live opt-in and each calibrated criterion at its proposed tolerance."""
    proposed = {(c.sli, c.criterion): c.proposed() for c in calibrations}
    doc: dict[str, Any] = spec.to_mapping()
    doc["comparison"]["baseline"] = "live"
    doc["comparison"]["confidence"] = spec.comparison.confidence
    for objective in doc["objectives"]:
        for key in ("pass", "warning"):
            for group in objective.get(key) or ():
                group["criteria"] = [
                    proposed.get((objective["sli"], text), text) for text in group["criteria"]
                ]
    return yaml.safe_dump(doc, sort_keys=False)
