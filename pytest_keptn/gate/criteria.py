"""Keptn 0.8.7 criteria at scoring time: targets from the comparison basis and aggregation
(§3, §4.3). Parsing is the spec's (:mod:`pytest_keptn.spec.criteria`)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from pytest_keptn.spec.criteria import Criterion


def target(criterion: Criterion, base: float) -> float:
    """A relative criterion's target from the aggregated comparison value (Go's operation order)."""
    v = criterion.value
    if criterion.percentage:
        if criterion.increase:
            return base * (100 + v) / 100
        return base * (100 - v) / 100
    if criterion.increase:
        return base + v
    return base - v


def compare(value: float, operator: str, threshold: float) -> bool:
    if operator == "<":
        return value < threshold
    if operator == "<=":
        return value <= threshold
    if operator == "=":
        return value == threshold
    if operator == ">=":
        return value >= threshold
    if operator == ">":
        return value > threshold
    return False


def percentile(values: Sequence[float], p: float) -> float:
    """Lighthouse's ``calculatePercentile``: 1-based linear interpolation at ``p * (n + 1)``."""
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return 0.0
    pos = p * (n + 1)
    if pos < 1:
        return ordered[0]
    if pos >= n:
        return ordered[-1]
    k = math.floor(pos)
    low = ordered[k - 1]
    return low + (pos - k) * (ordered[k] - low)


def average(values: Sequence[float]) -> float:
    if not values:
        return 0.0
    total = 0.0
    for v in values:
        total += v
    return total / len(values)


def aggregate(values: Sequence[float], fn: str) -> float:
    """Aggregate comparison values: ``avg``, ``p50``, ``p90``, ``p95``; anything else is 0 (§4.3)."""
    if fn == "avg":
        return average(values)
    if fn == "p50":
        return percentile(values, 0.5)
    if fn == "p90":
        return percentile(values, 0.9)
    if fn == "p95":
        return percentile(values, 0.95)
    return 0.0
