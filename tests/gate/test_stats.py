"""pytest_keptn.gate.stats against scipy.stats (a test dependency only) and brute force."""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pytest_keptn.gate import stats

scipy_stats = pytest.importorskip("scipy.stats")

ALTERNATIVES = ("two-sided", "greater", "less")
# Response-time-like values: few distinct values give ties, floats give none.
tied = st.lists(st.integers(min_value=0, max_value=12).map(float), min_size=1, max_size=40)
floats = st.lists(
    st.floats(min_value=0.1, max_value=1000, allow_nan=False, allow_infinity=False),
    min_size=1,
    max_size=30,
    unique=True,
)


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


@settings(max_examples=150, deadline=None)
@given(x=tied, y=tied, alternative=st.sampled_from(ALTERNATIVES))
def test_asymptotic_with_ties_matches_scipy(
    x: list[float], y: list[float], alternative: str
) -> None:
    if len(x) + len(y) < 3:
        return
    ours = stats.mann_whitney_u(x, y, alternative, method="asymptotic")  # type: ignore[arg-type]
    ref = scipy_stats.mannwhitneyu(x, y, alternative=alternative, method="asymptotic")
    assert ours.statistic == ref.statistic
    if math.isnan(ref.pvalue):  # every value tied: scipy divides 0 by 0
        assert ours.pvalue == 1.0
    else:
        assert close(ours.pvalue, float(ref.pvalue))


@settings(max_examples=150, deadline=None)
@given(x=floats, y=floats, alternative=st.sampled_from(ALTERNATIVES))
def test_exact_matches_scipy(x: list[float], y: list[float], alternative: str) -> None:
    if set(x) & set(y):
        return  # the exact distribution is for samples without ties
    ours = stats.mann_whitney_u(x, y, alternative, method="exact")  # type: ignore[arg-type]
    ref = scipy_stats.mannwhitneyu(x, y, alternative=alternative, method="exact")
    assert ours.statistic == ref.statistic
    assert close(ours.pvalue, float(ref.pvalue))


def test_auto_picks_exact_below_the_threshold_and_normal_above() -> None:
    small = stats.mann_whitney_u([1.0, 2.0, 3.5], [4.0, 5.0, 6.0, 7.5], "less")
    assert small.method == "exact"
    assert close(small.pvalue, 1 / math.comb(7, 3))
    tied_small = stats.mann_whitney_u([1.0, 2.0], [2.0, 3.0])
    assert tied_small.method == "asymptotic"
    n = math.isqrt(stats.EXACT_MAX_PAIRS) + 1
    big = stats.mann_whitney_u([i + 0.5 for i in range(n)], [float(i) for i in range(n)])
    assert big.method == "asymptotic"


def test_exact_null_distribution_is_symmetric_and_sums_to_the_arrangements() -> None:
    for n1, n2 in [(1, 1), (3, 7), (9, 4), (12, 12)]:
        counts = stats._u_counts(n1, n2)
        assert sum(counts) == math.comb(n1 + n2, n1)
        assert counts == counts[::-1]


def test_rejects_empty_and_non_finite_samples() -> None:
    with pytest.raises(ValueError, match="no samples"):
        stats.mann_whitney_u([], [1.0])
    with pytest.raises(ValueError, match="non-finite"):
        stats.mann_whitney_u([1.0, math.nan], [1.0])
    with pytest.raises(ValueError, match="greater than 0"):
        stats.hodges_lehmann([0.0, 1.0], [1.0], log=True)


def _brute_differences(x: list[float], y: list[float]) -> list[float]:
    return sorted(a - b for a in x for b in y)


@settings(max_examples=150, deadline=None)
@given(x=tied, y=tied)
# "tied" draws from 13 values but may draw no tie: then the interval uses the exact rank
@example(x=[0.0, 4.0, 8.0], y=[1.0, 2.0, 3.0, 5.0, 6.0, 7.0])
def test_hodges_lehmann_is_the_median_of_pairwise_differences(
    x: list[float], y: list[float]
) -> None:
    d = _brute_differences(x, y)
    n = len(d)
    expected = d[n // 2] if n % 2 else (d[n // 2 - 1] + d[n // 2]) / 2
    est = stats.hodges_lehmann(x, y)
    assert close(est.estimate, expected)
    assert est.low <= est.estimate <= est.high
    ties = len(set(x)) < len(x) or len(set(y)) < len(y) or bool(set(x) & set(y))
    k = stats._interval_rank(len(x), len(y), 0.95, ties)
    if k >= 1:
        assert est.low == d[k - 1]
        assert est.high == d[n - k]


@settings(max_examples=100, deadline=None)
@given(x=floats, y=floats, confidence=st.sampled_from((0.8, 0.9, 0.95, 0.99)))
def test_hodges_lehmann_exact_interval_covers_by_the_u_distribution(
    x: list[float], y: list[float], confidence: float
) -> None:
    if set(x) & set(y):
        return
    k = stats._interval_rank(len(x), len(y), confidence, ties=False)
    alpha = 1 - confidence
    # k - 1 is the largest c with P(U <= c) <= alpha / 2 (scipy's exact U distribution)
    if k >= 1:
        assert stats.u_cdf(k - 1, len(x), len(y)) <= alpha / 2 + 1e-12
    assert stats.u_cdf(k, len(x), len(y)) > alpha / 2
    est = stats.hodges_lehmann(x, y, confidence)
    d = _brute_differences(x, y)
    if k >= 1:
        assert (est.low, est.high) == (d[k - 1], d[len(d) - k])
    else:
        assert (est.low, est.high) == (-math.inf, math.inf)


def test_u_cdf_matches_scipy_exact_distribution() -> None:
    # scipy's exact one-sided p-value for U = u is P(U >= u) = 1 - cdf(u - 1)
    x = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0]
    for shift in range(-70, 71, 5):
        y = [v + shift + 0.5 for v in (1.0, 12.0, 23.0, 34.0, 45.0, 56.0, 67.0)]
        ref = scipy_stats.mannwhitneyu(x, y, alternative="greater", method="exact")
        assert close(1 - stats.u_cdf(int(ref.statistic) - 1, 6, 7), float(ref.pvalue))


def test_ratio_is_the_exponentiated_shift_of_logarithms() -> None:
    base = [100.0 + i for i in range(40)]
    slower = [v * 1.15 for v in base]
    est = stats.hodges_lehmann(slower, base, log=True)
    assert est.low < est.estimate < est.high
    assert 1.10 < est.estimate < 1.20
    shift = stats.hodges_lehmann(slower, base)
    assert shift.estimate > 0


def test_hodges_lehmann_on_thousands_of_samples_is_fast_and_exact() -> None:
    import random
    import time

    rnd = random.Random(7)
    x = [round(rnd.gauss(10, 2), 1) for _ in range(3000)]  # rounded: many ties
    y = [round(rnd.gauss(9, 2), 1) for _ in range(2000)]
    t0 = time.process_time()
    est = stats.hodges_lehmann(x, y)
    spent = time.process_time() - t0
    small_x, small_y = x[:300], y[:200]
    d = _brute_differences(small_x, small_y)
    assert close(stats.hodges_lehmann(small_x, small_y).estimate, (d[29999] + d[30000]) / 2)
    assert 0.8 < est.estimate < 1.2
    assert spent < 5.0  # about 0.2 s of CPU; generous for a loaded 2-core machine


@settings(max_examples=150, deadline=None)
@given(
    n1=st.integers(min_value=1, max_value=300),
    n2=st.integers(min_value=1, max_value=300),
    f1=st.floats(min_value=0, max_value=1),
    f2=st.floats(min_value=0, max_value=1),
    alternative=st.sampled_from(ALTERNATIVES),
)
# all successes against none: the interval's bounds once stepped past 1 and -1 by an ulp
@example(n1=129, n2=5, f1=1.0, f2=0.0, alternative="two-sided")
@example(n1=5, n2=129, f1=0.0, f2=1.0, alternative="two-sided")
def test_two_proportions_match_scipy(
    n1: int, n2: int, f1: float, f2: float, alternative: str
) -> None:
    k1, k2 = round(n1 * f1), round(n2 * f2)
    res = stats.two_proportions(k1, n1, k2, n2, alternative)  # type: ignore[arg-type]
    if res.method == "fisher-exact":
        ref = scipy_stats.fisher_exact([[k1, n1 - k1], [k2, n2 - k2]], alternative=alternative)
        assert math.isclose(res.pvalue, min(1.0, float(ref.pvalue)), rel_tol=1e-6, abs_tol=1e-9)
    else:
        # the pooled z-test is the chi-square test without correction; one-sided halves it
        table = [[k1, n1 - k1], [k2, n2 - k2]]
        chi2 = scipy_stats.chi2_contingency(table, correction=False)
        z = math.copysign(math.sqrt(chi2.statistic), k1 / n1 - k2 / n2)
        expected = {
            "two-sided": float(chi2.pvalue),
            "greater": float(scipy_stats.norm.sf(z)),
            "less": float(scipy_stats.norm.cdf(z)),
        }[alternative]
        assert math.isclose(res.pvalue, expected, rel_tol=1e-7, abs_tol=1e-12)
    d = res.difference
    assert -1.0 <= d.low <= d.estimate <= d.high <= 1.0


@settings(max_examples=100, deadline=None)
@given(n=st.integers(min_value=1, max_value=500), f=st.floats(min_value=0, max_value=1))
def test_wilson_interval_matches_scipy(n: int, f: float) -> None:
    k = round(n * f)
    ref = scipy_stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
    low, high = stats.wilson_interval(k, n)
    assert math.isclose(low, ref.low, abs_tol=1e-9)
    assert math.isclose(high, ref.high, abs_tol=1e-9)


def test_quartiles_match_numpy_linear_interpolation() -> None:
    np = pytest.importorskip("numpy")
    values = [5.0, 1.0, 9.0, 3.0, 7.0, 2.0]
    ours = stats.quartiles(values)
    ref = np.percentile(values, [0, 25, 50, 75, 100])
    assert all(close(a, float(b)) for a, b in zip(ours, ref, strict=True))
    assert stats.median(values) == float(np.median(values))
