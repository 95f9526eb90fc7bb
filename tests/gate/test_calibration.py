"""A/A calibration: spread, smallest tolerance, draft slo.yaml."""

from __future__ import annotations

import math
import random

import yaml

from pytest_keptn.gate.calibration import calibrate, draft_slo
from pytest_keptn.gate.live import LiveSamples, Samples, judge
from pytest_keptn.spec import load_slo
from pytest_keptn.spec.criteria import parse_criterion

SLO = b"""
spec_version: '0.1.0'
comparison: {compare_with: single_result, include_result_with_score: pass, aggregate_function: avg}
objectives:
  - sli: rt
    pass:
      - criteria: ["<=1", "<=+10%"]
  - sli: throughput
    pass:
      - criteria: ["<=+100%", ">=-80%"]
total_score: {pass: "90%", warning: "75%"}
"""


def _run(seed: int, drift: float, n: int = 300) -> LiveSamples:
    rnd = random.Random(seed)
    c = tuple(rnd.lognormvariate(0, 0.2) * drift for _ in range(n))
    b = tuple(rnd.lognormvariate(0, 0.2) for _ in range(n))
    return LiveSamples(Samples(c), Samples(b))


def test_smallest_tolerance_passes_every_run_and_the_draft_uses_it() -> None:
    runs = []
    drifts = (1.0, 1.03, 0.97, 1.12, 1.0)  # one noisy run: 12 % slower
    all_samples = [_run(seed, drift) for seed, drift in enumerate(drifts)]
    for samples in all_samples:
        runs.append(
            {
                "rt": [judge(parse_criterion("<=+10%"), samples)],
                "throughput": [judge(parse_criterion(c), samples) for c in ("<=+100%", ">=-80%")],
            }
        )
    cals = {(c.sli, c.criterion): c for c in calibrate(runs)}
    rt = cals[("rt", "<=+10%")]
    assert rt.failed == 1 and len(rt.effects) == 5
    low, high = rt.spread
    assert low < 0 < 0.10 < high < 0.2
    tol = rt.smallest_tolerance
    assert 0.10 < tol == max(e for e, s in zip(rt.effects, rt.significant, strict=True) if s)
    assert rt.covering_tolerance == max(rt.effects) == tol  # the noisy run is the largest
    proposed = rt.proposed()
    assert proposed == f"<=+{int(tol * 100) + 1}%"
    quiet_runs = [_run(seed, 1.05, n=8) for seed in (11, 12)]  # too few to be significant
    quiet = calibrate([{"rt": [judge(parse_criterion("<=+10%"), r)]} for r in quiet_runs])[0]
    assert quiet.smallest_tolerance == 0.0 < quiet.covering_tolerance  # none significant
    assert quiet.proposed() == f"<=+{max(1, math.ceil(quiet.covering_tolerance * 100))}%"
    # rescoring every run at the proposed tolerance fails none
    assert all(not judge(parse_criterion(proposed), s).violated for s in all_samples)
    assert cals[("throughput", ">=-80%")].proposed().startswith(">=-")
    draft = yaml.safe_load(draft_slo(load_slo(SLO, file="slo.yaml"), list(cals.values())))
    assert draft["comparison"]["baseline"] == "live" and draft["comparison"]["confidence"] == 0.95
    assert draft["objectives"][0]["pass"][0]["criteria"] == ["<=1", proposed]
    load_slo(yaml.safe_dump(draft).encode(), file="draft.yaml")  # a valid slo.yaml
