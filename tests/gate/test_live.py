"""The live-baseline opt-in: slo.yaml parsing, --keptn-compat=0.8.7, and judging criteria."""

from __future__ import annotations

import math
import random
import warnings
from typing import Any

import pytest

from pytest_keptn.errors import SpecError
from pytest_keptn.gate.live import LiveBaseline, LiveSamples, Samples, judge
from pytest_keptn.gate.scoring import Evaluation, evaluate
from pytest_keptn.spec import SpecWarning, load_slo
from pytest_keptn.spec.criteria import parse_criterion
from pytest_keptn.spec.slo import COMPAT_087

SLO_LIVE = b"""---
spec_version: '0.1.1'
comparison:
  compare_with: single_result
  include_result_with_score: pass
  aggregate_function: avg
  baseline: live
  confidence: 0.95
  bad_direction:
    throughput: decrease
objectives:
  - sli: response_time_p95
    pass:
      - criteria:
          - "<=+10%"
          - "<600"
    warning:
      - criteria:
          - "<=800"
  - sli: throughput
    pass:
      - criteria:
          - "<=+100%"
  - sli: error_rate
    weight: 0
    pass:
      - criteria:
          - "<=+10%"
total_score:
  pass: "90%"
  warning: "75%"
"""


def slo(text: bytes = SLO_LIVE, **kw: Any) -> Any:
    return load_slo(text, file="slo.yaml", **kw)


def test_opt_in_is_parsed() -> None:
    spec = slo()
    assert spec.comparison.live
    assert spec.comparison.confidence == 0.95
    assert dict(spec.comparison.bad_direction) == {"throughput": "decrease"}
    defaults = slo(SLO_LIVE.replace(b"  confidence: 0.95\n", b""))
    assert defaults.comparison.confidence == 0.95
    assert not slo(SLO_LIVE.replace(b"baseline: live", b"baseline: history")).comparison.live


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            b"baseline: live",
            b"baseline: canary",
            "slo.yaml: comparison.baseline: must be history or live, not 'canary'",
        ),
        (
            b"confidence: 0.95",
            b"confidence: 95%",
            "slo.yaml: comparison.confidence: must be a number, not '95%'",
        ),
        (
            b"confidence: 0.95",
            b"confidence: 1",
            "slo.yaml: comparison.confidence: must be at least 0.5 and below 1, not 1",
        ),
        (
            b"throughput: decrease",
            b"throughput: down",
            "slo.yaml: comparison.bad_direction.throughput: must be increase, decrease or either, not 'down'",
        ),
        (
            b"throughput: decrease",
            b"thruput: decrease",
            "slo.yaml: comparison.bad_direction.thruput: names no objective's sli",
        ),
        (
            b"bad_direction:\n    throughput: decrease",
            b"bad_direction: [x]",
            "slo.yaml: comparison.bad_direction:",
        ),
    ],
)
def test_bad_opt_in_is_one_line_naming_the_field(old: bytes, new: bytes, expected: str) -> None:
    with pytest.raises(SpecError) as info:
        slo(SLO_LIVE.replace(old, new))
    assert str(info.value).startswith(expected)
    assert "\n" not in str(info.value)


def test_compat_087_ignores_the_opt_in_as_keptn_does() -> None:
    broken = SLO_LIVE.replace(b"baseline: live", b"baseline: nonsense")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        spec = slo(broken, compat=COMPAT_087)
    assert [str(w.message) for w in caught] == [
        f"slo.yaml: comparison.{key}: ignored under --keptn-compat=0.8.7, as Keptn does"
        for key in ("baseline", "confidence", "bad_direction")
    ]
    assert not spec.comparison.live
    assert spec.comparison.bad_direction == {}
    # scoring is Keptn's history comparison, whatever live samples are offered
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpecWarning)
        plain = slo(SLO_LIVE.replace(b"  baseline: live\n", b""), compat=COMPAT_087)
    values = {"response_time_p95": 500.0, "throughput": 10.0, "error_rate": 0.0}
    previous = [_previous(400.0)]
    live = LiveBaseline({"response_time_p95": _samples(1.0, 1.0)})
    ours = evaluate(spec, values, previous, compat=COMPAT_087, live=live)
    keptn = evaluate(plain, values, previous, compat=COMPAT_087)
    assert (
        ours.to_keptn()["evaluation"]["indicatorResults"]
        == keptn.to_keptn()["evaluation"]["indicatorResults"]
    )
    assert (ours.result, ours.score) == (keptn.result, keptn.score) == ("warning", 2.5 / 3 * 100)


def _previous(p95: float) -> dict[str, Any]:
    return {
        "result": "pass",
        "evaluation": {
            "indicatorResults": [
                {"value": {"metric": "response_time_p95", "value": p95, "success": True}},
                {"value": {"metric": "throughput", "value": 10.0, "success": True}},
            ]
        },
    }


def _samples(
    canary_factor: float, baseline_factor: float, n: int = 400, seed: int = 3
) -> LiveSamples:
    rnd = random.Random(seed)
    base = [rnd.lognormvariate(math.log(100), 0.3) for _ in range(2 * n)]
    return LiveSamples(
        canary=Samples(tuple(v * canary_factor for v in base[:n])),
        baseline=Samples(tuple(v * baseline_factor for v in base[n:])),
    )


def test_live_comparison_fails_only_significant_and_larger_than_tolerance() -> None:
    spec = slo()
    values = {"response_time_p95": 500.0, "throughput": 10.0, "error_rate": 0.01}
    # history alone would fail p95 (500 > 1.1 * 400): the live baseline (same speed) passes it
    previous = [_previous(400.0)]
    same = evaluate(
        spec, values, previous, live=LiveBaseline({"response_time_p95": _samples(1, 1)})
    )
    row = same.indicator_results[0]
    assert row.status == "pass"
    assert row.compared_values == ()
    (j,) = row.live
    assert (j.kind, j.bad, j.decision) == ("ratio", "increase", "no significant difference")
    assert j.low < j.effect < j.high

    slower = evaluate(
        spec, values, previous, live=LiveBaseline({"response_time_p95": _samples(1.3, 1)})
    )
    (j,) = slower.indicator_results[0].live
    assert j.violated and j.significant and j.exceeds and j.pvalue < 0.05
    assert 0.2 < j.effect < 0.4
    assert slower.indicator_results[0].status == "warning"  # <=800 still holds

    # 4 % slower: significant with 4,000 samples, but within the 10 % tolerance
    slightly = evaluate(
        spec, values, previous, live=LiveBaseline({"response_time_p95": _samples(1.04, 1, n=4000)})
    )
    (j,) = slightly.indicator_results[0].live
    assert j.significant and not j.exceeds and not j.violated
    assert j.decision == "within tolerance"
    assert slightly.indicator_results[0].status == "pass"


def test_bad_direction_overrides_the_operator() -> None:
    # throughput "<=+100%" with bad_direction decrease: doubling is fine, halving is not
    c = parse_criterion("<=+100%")
    doubled = judge(c, _samples(1.8, 1), bad="increase")
    assert doubled.significant and not doubled.exceeds
    spec = slo()
    values = {"response_time_p95": 500.0, "throughput": 10.0, "error_rate": 0.0}
    halved = evaluate(spec, values, (), live=LiveBaseline({"throughput": _samples(0.5, 1)}))
    (j,) = halved.indicator_results[1].live
    assert j.bad == "decrease" and j.significant
    assert not j.exceeds  # a decrease never exceeds an allowance of +100 %
    assert halved.indicator_results[1].status == "pass"
    stricter = parse_criterion(">=-5%")
    halved_j = judge(stricter, _samples(0.5, 1))
    assert halved_j.bad == "decrease" and halved_j.violated


def test_rates_use_two_proportions() -> None:
    c = parse_criterion("<=+10%")
    worse = LiveSamples(Samples(events=60, trials=1000), Samples(events=20, trials=1000))
    j = judge(c, worse)
    assert j.kind == "difference" and j.method == "two proportions, z-test"
    assert j.violated and math.isclose(j.effect, 0.04)
    assert math.isclose(j.tolerance, 0.002)  # 10 % of the baseline's 2 %
    few = LiveSamples(Samples(events=2, trials=200), Samples(events=0, trials=200))
    j = judge(c, few)
    assert j.method == "two proportions, fisher-exact" and not j.violated
    absolute = judge(parse_criterion("<=+0.05"), worse)
    assert absolute.significant and not absolute.exceeds


def test_absolute_offsets_use_the_shift() -> None:
    j = judge(parse_criterion("<=+50"), _samples(1, 1))
    assert j.kind == "shift" and j.tolerance == 50
    rnd = random.Random(1)
    canary = Samples(tuple(rnd.gauss(0, 1) + 1 for _ in range(300)))
    baseline = Samples(tuple(rnd.gauss(0, 1) for _ in range(300)))
    j = judge(parse_criterion("<=+10%"), LiveSamples(canary, baseline))
    assert j.kind == "relative shift"  # values <= 0: a shift relative to the baseline median


def test_fallback_to_history_says_why() -> None:
    spec = slo()
    values = {"response_time_p95": 500.0, "throughput": 10.0, "error_rate": 0.0}
    previous = [_previous(400.0)]
    none = evaluate(
        spec, values, previous, live=LiveBaseline(unavailable="no earlier build in the stage")
    )
    row = none.indicator_results[0]
    assert row.live == () and row.compared_values == (400.0,)
    assert (
        row.live_note == "no live baseline (no earlier build in the stage): compared with history"
    )
    assert row.status == "warning"
    missing = evaluate(spec, values, previous, live=LiveBaseline({}))
    assert missing.indicator_results[0].live_note.startswith("no live samples for this SLI")
    empty = LiveSamples(Samples(()), Samples((1.0,)))
    unusable = evaluate(spec, values, previous, live=LiveBaseline({"response_time_p95": empty}))
    assert (
        "live samples unusable (no samples on one side)" in unusable.indicator_results[0].live_note
    )


def test_event_carries_the_live_comparison() -> None:
    spec = slo()
    values = {"response_time_p95": 500.0, "throughput": 10.0, "error_rate": 0.0}
    ev = evaluate(spec, values, (), live=LiveBaseline({"response_time_p95": _samples(1.3, 1)}))
    row = ev.to_keptn()["evaluation"]["indicatorResults"][0]
    live = row["liveComparison"]["criteria"][0]
    assert live["criteria"] == "<=+10%" and live["decision"] == "worse"
    assert set(live) >= {
        "canary",
        "baseline",
        "effect",
        "interval",
        "pValue",
        "samples",
        "tolerance",
    }
    assert row["passTargets"][0]["violated"] is True
    assert math.isclose(row["passTargets"][0]["targetValue"], live["baseline"] * 1.1)
    fallback = ev.to_keptn()["evaluation"]["indicatorResults"][1]["liveComparison"]
    assert fallback == {
        "criteria": [],
        "note": "no live samples for this SLI: compared with history",
    }
    plain = evaluate(slo(SLO_LIVE.replace(b"baseline: live", b"baseline: history")), values)
    assert all(
        "liveComparison" not in r for r in plain.to_keptn()["evaluation"]["indicatorResults"]
    )


def test_one_line_wording_and_box_plots() -> None:
    from pytest_keptn.report.live import box_plots, live_lines

    samples = _samples(1.3, 1)
    j = judge(parse_criterion("<=+10%"), samples)
    line = j.describe()
    assert "\n" not in line
    assert line.startswith("<=+10% vs live baseline: canary ")
    assert "(median), effect +" in line and "% [+" in line and "at 95%, p=" in line
    assert "n=400/400), tolerance +10.0%: worse" in line
    rate = judge(
        parse_criterion("<=+10%"),
        LiveSamples(Samples(events=5, trials=100), Samples(events=4, trials=100)),
    )
    assert "(rate)" in rate.describe() and rate.describe().endswith("no significant difference")
    spec = slo()
    values = {"response_time_p95": 500.0, "throughput": 10.0, "error_rate": 0.0}
    evaluation = evaluate(spec, values, (), live=LiveBaseline({"response_time_p95": samples}))
    row, fallback = evaluation.indicator_results[:2]
    assert row.live_distributions["canary"]["n"] == 400
    assert live_lines(row) == [j.describe()]
    svg = box_plots("rt<script>", row)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "rt&lt;script&gt;" in svg and "<script" not in svg
    assert svg.count("<rect") == 2
    assert box_plots("throughput", fallback) == ""
    assert live_lines(fallback) == ["no live samples for this SLI: compared with history"]
    # the same words from the stored event (the report and history read it back)
    back = Evaluation.from_keptn(evaluation.to_keptn()).indicator_results
    assert [live_lines(r) for r in back[:2]] == [live_lines(row), live_lines(fallback)]
    assert box_plots("rt", back[0]) == box_plots("rt", row)
