"""Statistics for judging a canary against a live baseline: pure Python, no I/O, no pytest.

- :func:`mann_whitney_u`: the Mann-Whitney U test (Wilcoxon rank-sum), average ranks for ties,
  the tie-corrected normal approximation with continuity correction, and the exact null
  distribution when the samples are small and tie-free (``EXACT_MAX_PAIRS``).
- :func:`hodges_lehmann`: the Hodges-Lehmann shift (median of all pairwise differences) with its
  distribution-free confidence interval (order statistics of the differences, from the same U
  distribution); ``log=True`` estimates a ratio (the shift of the logarithms, exponentiated).
- :func:`two_proportions`: a one- or two-sided test for two rates (the pooled z-test, Fisher's
  exact test when an expected cell count is below 5) and Newcombe's hybrid score interval for the
  difference.

The same results as scipy.stats (checked in tests/gate/test_stats.py); scipy is not a runtime
dependency: these sizes are cheap in pure Python (see ``EXACT_MAX_PAIRS``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist
from typing import Literal

Alternative = Literal["two-sided", "greater", "less"]

# The exact U distribution is used when there are no ties and n1 * n2 <= EXACT_MAX_PAIRS.
# Why 2,500 (benchmarks/bench_stats_exact.py, figures in docs/benchmarks.md): the normal
# approximation with continuity correction misses the exact one-sided p-value by up to 0.0066
# at 5 x 5, 0.0021 at 20 x 20 and 0.0008 at 50 x 50 (p-values between 0.001 and 0.2, where a
# gate decides), so near alpha = 0.05 it is off by 4 % of alpha at 20 x 20 and under 2 % from
# 50 x 50 on. The exact distribution of 50 x 50 costs about 40 ms once (cached per size pair);
# beyond it cost grows as n1 * n2 * min(n1, n2) for no decision that would change. A Prometheus
# SLI sampled at a 1 s step over a 30 s window (about 30 x 30) is thus tested exactly; Locust's
# thousands of response times use the approximation. scipy switches to it above 8 x 8.
EXACT_MAX_PAIRS = 2500

_NORMAL = NormalDist()


def _normal_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _finite(values: Iterable[float], name: str) -> list[float]:
    out = [float(v) for v in values]
    if not out:
        raise ValueError(f"{name}: no samples")
    for v in out:
        if not math.isfinite(v):
            raise ValueError(f"{name}: non-finite sample {v!r}")
    return out


def rank_sum(x: Sequence[float], y: Sequence[float]) -> tuple[float, list[int]]:
    """The sum of ``x``'s ranks in the pooled sample (average ranks) and the tie group sizes."""
    pooled = sorted([(v, 0) for v in x] + [(v, 1) for v in y])
    total = 0.0
    ties: list[int] = []
    i = 0
    n = len(pooled)
    while i < n:
        j = i
        while j + 1 < n and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        size = j - i + 1
        rank = (i + j) / 2.0 + 1.0
        for k in range(i, j + 1):
            if pooled[k][1] == 0:
                total += rank
        if size > 1:
            ties.append(size)
        i = j + 1
    return total, ties


@lru_cache(maxsize=64)
def _u_counts(n1: int, n2: int) -> tuple[int, ...]:
    """How many of the C(n1+n2, n1) arrangements give U = 0 .. n1*n2 (no ties).

    The coefficients of the Gaussian binomial [n1+n2 choose m]_q, m = min(n1, n2), built as the
    product over i = 1..m of (1 - q^(n+i)) / (1 - q^i) with exact integers.
    """
    m, n = min(n1, n2), max(n1, n2)
    size = m * n + 1
    poly = [0] * size
    poly[0] = 1
    for i in range(1, m + 1):
        a = n + i
        for k in range(size - 1, a - 1, -1):  # multiply by (1 - q^a)
            poly[k] -= poly[k - a]
        for k in range(i, size):  # divide by (1 - q^i)
            poly[k] += poly[k - i]
    return tuple(poly)


def u_cdf(u: int, n1: int, n2: int) -> float:
    """P(U <= u) under the null hypothesis, exact (no ties)."""
    if u < 0:
        return 0.0
    counts = _u_counts(n1, n2)
    if u >= len(counts) - 1:
        return 1.0
    return sum(counts[: u + 1]) / math.comb(n1 + n2, n1)


@dataclass(frozen=True)
class MannWhitney:
    """A Mann-Whitney U test: ``statistic`` is U of the first sample (scipy's ``statistic``)."""

    statistic: float
    pvalue: float
    method: str  # "exact" | "asymptotic"
    n1: int
    n2: int


def mann_whitney_u(
    x: Iterable[float],
    y: Iterable[float],
    alternative: Alternative = "two-sided",
    method: Literal["auto", "exact", "asymptotic"] = "auto",
) -> MannWhitney:
    """Test whether ``x`` tends to be greater (``"greater"``), less, or either than ``y``."""
    xs, ys = _finite(x, "first sample"), _finite(y, "second sample")
    n1, n2 = len(xs), len(ys)
    r1, ties = rank_sum(xs, ys)
    u1 = r1 - n1 * (n1 + 1) / 2.0
    u2 = n1 * n2 - u1
    if alternative == "greater":
        u, factor = u1, 1.0
    elif alternative == "less":
        u, factor = u2, 1.0
    else:
        u, factor = max(u1, u2), 2.0
    if method == "auto":
        method = "exact" if not ties and n1 * n2 <= EXACT_MAX_PAIRS else "asymptotic"
    if method == "exact":
        if ties:
            raise ValueError("the exact distribution needs samples without ties")
        p = 1.0 - u_cdf(round(u) - 1, n1, n2)  # P(U >= u)
    else:
        n = n1 + n2
        tie_term = sum(t**3 - t for t in ties)
        var = n1 * n2 / 12.0 * ((n + 1) - tie_term / (n * (n - 1))) if n > 1 else 0.0
        if var <= 0:
            p = 1.0  # every value tied: no evidence of any difference
        else:
            p = _normal_sf((u - n1 * n2 / 2.0 - 0.5) / math.sqrt(var))
    return MannWhitney(u1, min(max(p * factor, 0.0), 1.0), method, n1, n2)


@dataclass(frozen=True)
class Estimate:
    """An effect estimate with its two-sided confidence interval (bounds may be infinite)."""

    estimate: float
    low: float
    high: float
    confidence: float


def _count_le(xs: list[float], ys: list[float], d: float) -> int:
    """Pairs with ``xs[i] - ys[j] <= d`` (both sorted ascending), in O(len(xs) + len(ys))."""
    count = 0
    j = 0
    m = len(ys)
    for xi in xs:
        # x_i - y_j is non-increasing in j; the first j where it is <= d moves right with i.
        while j < m and xi - ys[j] > d:
            j += 1
        count += m - j
    return count


def _kth_difference(xs: list[float], ys: list[float], k: int) -> float:
    """The k-th smallest (1-based) of the pairwise differences ``x_i - y_j`` without listing all.

    Bisects on the value with the O(n1 + n2) count above, then sorts the few differences left
    in the bracket: about 60 passes for thousands of samples (millions of pairs).
    """
    lo = xs[0] - ys[-1]  # the smallest difference
    if k <= 1:
        return lo
    hi = xs[-1] - ys[0]
    below = _count_le(xs, ys, lo)  # count(<= lo) < k <= count(<= hi) from here on
    if below >= k:
        return lo
    limit = 4 * (len(xs) + len(ys)) + 64
    while True:
        inside = _count_le(xs, ys, hi) - below
        if inside <= limit:
            break
        mid = lo + (hi - lo) / 2.0
        if mid <= lo or mid >= hi:
            return hi  # adjacent floats: everything in (lo, hi] equals hi
        c = _count_le(xs, ys, mid)
        if c >= k:
            hi = mid
        else:
            lo, below = mid, c
    candidates: list[float] = []
    j_hi = j_lo = 0  # for each x_i, the j with lo < x_i - y_j <= hi are ys[j_hi:j_lo]
    m = len(ys)
    for xi in xs:
        while j_hi < m and xi - ys[j_hi] > hi:
            j_hi += 1
        while j_lo < m and xi - ys[j_lo] > lo:
            j_lo += 1
        candidates.extend(xi - yj for yj in ys[j_hi:j_lo])
    candidates.sort()
    return candidates[k - below - 1]


def _interval_rank(n1: int, n2: int, confidence: float, ties: bool) -> int:
    """The order statistic k whose pair (k, n1*n2 + 1 - k) bounds the interval; 0: unbounded."""
    alpha = 1.0 - confidence
    pairs = n1 * n2
    if not ties and pairs <= EXACT_MAX_PAIRS:
        counts = _u_counts(n1, n2)
        total = math.comb(n1 + n2, n1)
        cumulative = 0
        k = 0
        for c in counts:  # k - 1 = the largest c with P(U <= c) <= alpha / 2
            cumulative += c
            if cumulative / total > alpha / 2:
                break
            k += 1
        return k
    z = _NORMAL.inv_cdf(1.0 - alpha / 2)
    sd = math.sqrt(pairs * (n1 + n2 + 1) / 12.0)
    return max(0, math.floor(pairs / 2.0 - z * sd + 0.5))


def hodges_lehmann(
    x: Iterable[float], y: Iterable[float], confidence: float = 0.95, *, log: bool = False
) -> Estimate:
    """The Hodges-Lehmann estimate of how much ``x`` is shifted from ``y``, with its interval.

    ``log=True`` works on the logarithms (every sample must be > 0) and returns the ratio
    ``x / y`` (exp of the shift): a scale change, which is what a ``+10%`` tolerance means.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, not {confidence!r}")
    xs, ys = _finite(x, "first sample"), _finite(y, "second sample")
    if log:
        if min(xs) <= 0 or min(ys) <= 0:
            raise ValueError("a ratio needs samples greater than 0")
        xs = [math.log(v) for v in xs]
        ys = [math.log(v) for v in ys]
    xs.sort()
    ys.sort()
    pairs = len(xs) * len(ys)
    if pairs % 2:
        est = _kth_difference(xs, ys, pairs // 2 + 1)
    else:
        est = (_kth_difference(xs, ys, pairs // 2) + _kth_difference(xs, ys, pairs // 2 + 1)) / 2
    ties = len(set(xs)) < len(xs) or len(set(ys)) < len(ys) or bool(set(xs) & set(ys))
    k = _interval_rank(len(xs), len(ys), confidence, ties)
    if k < 1:
        low, high = -math.inf, math.inf
    else:
        low = _kth_difference(xs, ys, k)
        high = _kth_difference(xs, ys, pairs + 1 - k)
    if log:
        return Estimate(math.exp(est), math.exp(low), math.exp(high), confidence)
    return Estimate(est, low, high, confidence)


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson's score interval for a proportion k/n (no continuity correction)."""
    if n <= 0:
        return 0.0, 1.0
    z = _NORMAL.inv_cdf(1.0 - (1.0 - confidence) / 2)
    p = k / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class ProportionTest:
    """Two rates compared: ``difference`` = p1 - p2 with Newcombe's interval."""

    p1: float
    p2: float
    difference: Estimate
    pvalue: float
    method: str  # "z-test" | "fisher-exact"
    n1: int
    n2: int


def _log_hypergeom(k: int, total: int, good: int, drawn: int) -> float:
    return (
        math.lgamma(good + 1)
        - math.lgamma(k + 1)
        - math.lgamma(good - k + 1)
        + math.lgamma(total - good + 1)
        - math.lgamma(drawn - k + 1)
        - math.lgamma(total - good - drawn + k + 1)
        - math.lgamma(total + 1)
        + math.lgamma(drawn + 1)
        + math.lgamma(total - drawn + 1)
    )


def _fisher(k1: int, n1: int, k2: int, n2: int, alternative: Alternative) -> float:
    total, good = n1 + n2, k1 + k2
    lo, hi = max(0, good - n2), min(good, n1)
    probs = {k: math.exp(_log_hypergeom(k, total, good, n1)) for k in range(lo, hi + 1)}
    if alternative == "greater":
        return sum(p for k, p in probs.items() if k >= k1)
    if alternative == "less":
        return sum(p for k, p in probs.items() if k <= k1)
    # two-sided as scipy: the tables no more likely than the observed one (relative tolerance)
    observed = probs[k1] * (1 + 1e-7)
    return sum(p for p in probs.values() if p <= observed)


def two_proportions(
    k1: int,
    n1: int,
    k2: int,
    n2: int,
    alternative: Alternative = "two-sided",
    confidence: float = 0.95,
) -> ProportionTest:
    """Is rate k1/n1 greater (``"greater"``), less or either than k2/n2?

    The pooled two-proportion z-test while every expected cell count is at least 5 (its usual
    validity rule), otherwise Fisher's exact test on the 2x2 table.
    """
    if n1 <= 0 or n2 <= 0 or not 0 <= k1 <= n1 or not 0 <= k2 <= n2:
        raise ValueError(f"invalid counts {k1}/{n1} and {k2}/{n2}")
    p1, p2 = k1 / n1, k2 / n2
    pooled = (k1 + k2) / (n1 + n2)
    expected = (
        n1 * pooled,
        n1 * (1 - pooled),
        n2 * pooled,
        n2 * (1 - pooled),
    )
    if min(expected) >= 5:
        method = "z-test"
        se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
        z = (p1 - p2) / se
        if alternative == "greater":
            p = _normal_sf(z)
        elif alternative == "less":
            p = _normal_sf(-z)
        else:
            p = 2 * _normal_sf(abs(z))
    else:
        method = "fisher-exact"
        p = _fisher(k1, n1, k2, n2, alternative)
    l1, u1 = wilson_interval(k1, n1, confidence)
    l2, u2 = wilson_interval(k2, n2, confidence)
    d = p1 - p2
    low = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    # a difference of proportions lies in [-1, 1]; rounding can step outside by an ulp
    low, high = max(low, -1.0), min(high, 1.0)
    return ProportionTest(
        p1, p2, Estimate(d, low, high, confidence), min(max(p, 0.0), 1.0), method, n1, n2
    )


def median(values: Sequence[float]) -> float:
    s = sorted(values)
    n = len(s)
    if n == 0:
        raise ValueError("no samples")
    mid = n // 2
    return s[mid] if n % 2 else (s[mid - 1] + s[mid]) / 2.0


def quartiles(values: Sequence[float]) -> tuple[float, float, float, float, float]:
    """min, Q1, median, Q3, max (linear interpolation, numpy's default), for box plots."""
    s = sorted(values)
    if not s:
        raise ValueError("no samples")

    def q(p: float) -> float:
        pos = p * (len(s) - 1)
        lo = math.floor(pos)
        hi = min(lo + 1, len(s) - 1)
        return s[lo] + (s[hi] - s[lo]) * (pos - lo)

    return s[0], q(0.25), q(0.5), q(0.75), s[-1]
