"""Where the Mann-Whitney normal approximation is good enough, and what the exact test costs.

For samples without ties, compares the one-sided p-value of the tie-free normal approximation
(with continuity correction) with the exact one, over every U whose exact p-value lies between
0.001 and 0.2 (where gate decisions are made), for n1 = n2 = n and for unbalanced sizes, and
times the exact distribution. Justifies ``pytest_keptn.gate.stats.EXACT_MAX_PAIRS``.

Prints ``RESULT max_abs_error_<n1>x<n2>=`` and ``RESULT exact_ms_<n1>x<n2>=`` lines.

Usage: ``python benchmarks/bench_stats_exact.py``
"""

from __future__ import annotations

import math
import time

from pytest_keptn.gate import stats


def worst_error(n1: int, n2: int) -> float:
    counts = stats._u_counts(n1, n2)
    total = math.comb(n1 + n2, n1)
    sd = math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12.0)
    worst = 0.0
    tail = 0
    for u in range(len(counts) - 1, -1, -1):  # P(U >= u), from the top
        tail += counts[u]
        exact = tail / total
        if exact > 0.2:
            break
        if exact < 0.001:
            continue
        normal = 0.5 * math.erfc((u - n1 * n2 / 2 - 0.5) / sd / math.sqrt(2))
        worst = max(worst, abs(exact - normal))
    return worst


def main() -> None:
    for n1, n2 in [
        (5, 5),
        (8, 8),
        (10, 10),
        (15, 15),
        (20, 20),
        (25, 25),
        (30, 30),
        (50, 50),
        (8, 50),
        (10, 40),
        (20, 40),
    ]:
        stats._u_counts.cache_clear()
        t0 = time.perf_counter()
        stats._u_counts(n1, n2)
        ms = (time.perf_counter() - t0) * 1000
        print(f"RESULT max_abs_error_{n1}x{n2}={worst_error(n1, n2):.4f}")
        print(f"RESULT exact_ms_{n1}x{n2}={ms:.2f}")


if __name__ == "__main__":
    main()
