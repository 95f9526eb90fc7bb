"""Score 10,000 objectives against 100 previous evaluations (goal: under 1 s).

Prints ``RESULT scoring_seconds=<s>`` as its last line (best of 3 runs; the previous
evaluations arrive as Keptn evaluation.finished ``data`` mappings, as from the history store).
"""

from __future__ import annotations

import random
import time
from typing import Any

from pytest_keptn.gate.scoring import evaluate
from pytest_keptn.spec.slo import load_slo

OBJECTIVES = 10_000
PREVIOUS = 100
CRITERIA = (["<=+10%", "<600"], [">=-80%"], ["<=800"], ["<=+50", ">0"])


def build() -> tuple[Any, dict[str, float], list[dict[str, Any]]]:
    rng = random.Random(42)
    objectives = []
    for i in range(OBJECTIVES):
        objectives.append(
            {
                "sli": f"sli_{i}",
                "pass": [{"criteria": CRITERIA[i % len(CRITERIA)]}],
                "warning": [{"criteria": ["<=+25%"]}],
                "weight": 1 + i % 3,
                "key_sli": i % 1000 == 0,
            }
        )
    slo = load_slo(
        {
            "comparison": {
                "compare_with": "several_results",
                "number_of_comparison_results": PREVIOUS,
                "aggregate_function": "p90",
            },
            "objectives": objectives,
            "total_score": {"pass": "90%", "warning": "75%"},
        }
    )
    values = {f"sli_{i}": rng.uniform(50, 700) for i in range(OBJECTIVES)}
    previous = []
    for p in range(PREVIOUS):
        rows = [
            {"value": {"metric": f"sli_{i}", "value": rng.uniform(50, 700), "success": True},
             "score": 1, "status": "pass"}
            for i in range(OBJECTIVES)
        ]  # fmt: skip
        previous.append(
            {
                "id": f"prev-{p}",
                "data": {"result": "pass", "evaluation": {"indicatorResults": rows}},
            }
        )
    return slo, values, previous


def main() -> None:
    slo, values, previous = build()
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        evaluation = evaluate(slo, values, previous)
        best = min(best, time.perf_counter() - started)
    print(
        f"objectives={OBJECTIVES} previous={PREVIOUS} result={evaluation.result} score={evaluation.score:.3f}"
    )
    print(f"RESULT scoring_seconds={best:.3f}")


if __name__ == "__main__":
    main()
