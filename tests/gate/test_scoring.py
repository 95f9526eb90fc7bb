from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from pytest_keptn.api import Evaluation, evaluate, load_slo
from pytest_keptn.errors import SpecError
from pytest_keptn.gate.scoring import MISSING_MESSAGE, calculate_score
from pytest_keptn.model import SLIResult, SLIStatus, Window
from pytest_keptn.spec.slo import TotalScore

TUTORIAL = Path(__file__).parent.parent / "data" / "tutorial"
TS = TotalScore("90%", "75%")


# §6 worked examples (TestCalculateScore)
def test_score_75_3_is_warning() -> None:
    result, score, p, w = calculate_score([1, 0.506], 2, False, TS)
    assert (result, score, p, w) == ("warning", 75.3, 90.0, 75.0)


def test_score_74_is_fail() -> None:
    result, score, _, _ = calculate_score([1, 0.48], 2, False, TS)
    assert (result, score) == ("fail", 74.0)


def test_key_sli_failure_is_fail() -> None:
    result, score, _, _ = calculate_score([1, 0], 2, True, TS)
    assert (result, score) == ("fail", 50.0)
    # even a perfect score fails when a key SLI failed
    assert calculate_score([1, 1], 2, True, TS)[0] == "fail"


def test_max_zero_is_pass_100_even_with_key_failure() -> None:
    assert calculate_score([], 0, True, None)[:2] == ("pass", 100.0)


def test_thresholds_are_inclusive() -> None:
    assert calculate_score([9], 10, False, TotalScore("90"))[0] == "pass"
    assert calculate_score([7.5], 10, False, TotalScore("90", "75"))[0] == "warning"
    assert calculate_score([8], 10, False, TotalScore("90"))[0] == "fail"  # no warning threshold


def test_missing_threshold_under_compat_raises_at_evaluation() -> None:
    slo = load_slo({"objectives": [{"sli": "a", "pass": [{"criteria": ["<1"]}]}]}, compat="0.8.7")
    with pytest.raises(SpecError, match=r"total_score\.pass: no target score defined"):
        evaluate(slo, {"a": 0.5}, compat="0.8.7")


def _slo(*objectives: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "objectives": list(objectives),
        "total_score": {"pass": "90%", "warning": "75%"},
        **extra,
    }


def test_pass_warning_fail_info_rows() -> None:
    slo = _slo(
        {"sli": "a", "pass": [{"criteria": ["<10"]}], "warning": [{"criteria": ["<20"]}]},
        {
            "sli": "b",
            "pass": [{"criteria": ["<10"]}],
            "warning": [{"criteria": ["<20"]}],
            "weight": 2,
        },
        {"sli": "c", "pass": [{"criteria": ["<10"]}]},
        {"sli": "d", "warning": [{"criteria": ["<1"]}]},
    )
    ev = evaluate(slo, {"a": 5, "b": 15, "c": 50, "d": 5})
    rows = {r.sli: r for r in ev.indicator_results}
    assert [rows[k].status for k in "abcd"] == ["pass", "warning", "fail", "info"]
    assert [rows[k].score for k in "abcd"] == [1.0, 1.0, 0.0, 0.0]
    assert ev.maximum_score == 4
    assert ev.score == 50.0 and ev.result == "fail"
    assert rows["d"].pass_targets is None
    assert rows["d"].warning_targets is not None and rows["d"].warning_targets[0].violated
    assert rows["c"].warning_targets is None


def test_or_between_groups_and_inside_group_no_short_circuit() -> None:
    slo = _slo({"sli": "a", "pass": [{"criteria": ["<1", ">0"]}, {"criteria": ["<100"]}]})
    ev = evaluate(slo, {"a": 50})
    row = ev.indicator_results[0]
    assert row.status == "pass"
    assert row.pass_targets is not None
    assert [(t.criteria, t.target_value, t.violated) for t in row.pass_targets] == [
        ("<1", 1.0, True),
        (">0", 0.0, False),
        ("<100", 100.0, False),
    ]


def test_empty_criteria_group_is_satisfied() -> None:
    ev = evaluate(_slo({"sli": "a", "pass": [{"criteria": []}]}), {"a": 1e9})
    assert ev.indicator_results[0].status == "pass"


def test_unsuccessful_sli_fails_without_targets() -> None:
    slo = _slo({"sli": "a", "pass": [{"criteria": ["<10", "<=+10%"]}], "key_sli": True})
    values = [
        {"metric": "a", "value": 0, "success": False, "message": "metric could not be received"}
    ]
    prev = [
        {
            "evaluation": {
                "indicatorResults": [{"value": {"metric": "a", "value": 5, "success": True}}]
            }
        }
    ]
    ev = evaluate(slo, values, prev)
    row = ev.indicator_results[0]
    assert row.status == "fail" and row.message == "metric could not be received"
    assert row.pass_targets is not None
    assert all(t.target_value == 0 and t.violated for t in row.pass_targets)
    assert ev.key_sli_failed and ev.result == "fail"


def test_unsuccessful_info_objective_stays_info() -> None:
    ev = evaluate(_slo({"sli": "a"}), [SLIResult("a", 0, success=False, message="x")])
    assert ev.indicator_results[0].status == "info"
    assert (ev.result, ev.score) == ("pass", 100.0)


def test_zero_objectives_pass_100() -> None:
    ev = evaluate({"objectives": []}, {})
    assert (ev.result, ev.score, ev.indicator_results) == ("pass", 100.0, ())


def test_missing_sli_default_is_failed_row_and_triggers_key() -> None:
    slo = _slo(
        {"sli": "a", "pass": [{"criteria": ["<10"]}]},
        {"sli": "b", "pass": [{"criteria": ["<10"]}], "key_sli": True},
    )
    ev = evaluate(slo, {"a": 1})
    row = ev.indicator_results[1]
    assert (row.sli, row.status, row.success, row.message) == ("b", "fail", False, MISSING_MESSAGE)
    assert ev.key_sli_failed and ev.result == "fail" and ev.score == 50.0


def test_missing_sli_compat_is_dropped_weight_kept_key_ignored() -> None:
    slo = _slo(
        {"sli": "a", "pass": [{"criteria": ["<10"]}]},
        {"sli": "b", "pass": [{"criteria": ["<10"]}], "key_sli": True},
    )
    ev = evaluate(slo, {"a": 1}, compat="0.8.7")
    assert [r.sli for r in ev.indicator_results] == ["a"]
    assert ev.maximum_score == 2 and ev.score == 50.0
    assert not ev.key_sli_failed and ev.result == "fail"


def test_invalid_criterion_under_compat_is_violated_with_target_0() -> None:
    slo = _slo({"sli": "a", "pass": [{"criteria": ["<=abc", "<10"]}, {"criteria": ["<100"]}]})
    with pytest.raises(SpecError, match=r"objectives\[0\]\.pass\[0\]\.criteria\[0\]"):
        load_slo(slo)
    ev = evaluate(slo, {"a": 5}, compat="0.8.7")
    row = ev.indicator_results[0]
    assert row.pass_targets is not None
    assert [(t.target_value, t.violated) for t in row.pass_targets] == [
        (0.0, True),
        (10.0, False),
        (100.0, False),
    ]
    assert row.status == "pass"  # the second group is satisfied


def test_weights_and_float_weight_truncation() -> None:
    slo = _slo(
        {"sli": "a", "pass": [{"criteria": ["<10"]}], "weight": 2.9},
        {"sli": "b", "pass": [{"criteria": ["<10"]}], "weight": 0},
        {"sli": "c", "pass": [{"criteria": ["<10"]}], "weight": 0.5},
    )
    spec = load_slo(slo)
    assert [o.weight for o in spec.objectives] == [2, 1, 1]
    ev = evaluate(spec, {"a": 1, "b": 100, "c": 100})
    assert ev.score == 100.0 * (2 / 4)


def _prev(eid: str, **values: float) -> dict[str, Any]:
    rows = [{"value": {"metric": k, "value": v, "success": True}} for k, v in values.items()]
    return {"id": eid, "data": {"result": "pass", "evaluation": {"indicatorResults": rows}}}


def test_relative_criteria_against_previous() -> None:
    slo = _slo(
        {"sli": "rt", "pass": [{"criteria": ["<=+10%"]}]},
        comparison={"compare_with": "several_results", "number_of_comparison_results": 3},
    )
    prev = [_prev("e3", rt=10), _prev("e2", rt=20), _prev("e1", rt=30)]
    ev = evaluate(slo, {"rt": 22}, prev)
    row = ev.indicator_results[0]
    assert row.pass_targets is not None and row.pass_targets[0].target_value == 22.0
    assert row.status == "pass"
    assert row.compared_values == (10, 20, 30)
    assert ev.compared_events == ("e3", "e2", "e1")


def test_relative_without_previous_values_is_satisfied_target_0() -> None:
    slo = _slo({"sli": "rt", "pass": [{"criteria": ["<=+10%"]}]})
    prev = [_prev("e1", other=1), {"id": "e0", "data": {"result": "pass", "evaluation": {}}}]
    ev = evaluate(slo, {"rt": 1e9}, prev)
    row = ev.indicator_results[0]
    assert row.status == "pass" and row.pass_targets is not None
    assert row.pass_targets[0].target_value == 0.0
    assert ev.compared_events == ("e1", "e0")  # listed even though they contributed nothing


def test_failed_previous_values_are_ignored_but_failed_status_is_not() -> None:
    prev = [
        {"id": "x", "data": {"evaluation": {"indicatorResults": [
            {"status": "fail", "value": {"metric": "rt", "value": 100, "success": True}},
            {"status": "fail", "value": {"metric": "rt", "value": 999, "success": False}},
        ]}}},
    ]  # fmt: skip
    ev = evaluate(_slo({"sli": "rt", "pass": [{"criteria": ["<=+0%"]}]}), {"rt": 100}, prev)
    assert ev.indicator_results[0].compared_values == (100,)
    assert ev.indicator_results[0].status == "pass"


@pytest.mark.parametrize(
    ("fn", "base"), [("avg", 5.0), ("p50", 5.0), ("p90", 9.8), ("p95", 10.0), ("p99", 0.0)]
)
def test_aggregate_functions_in_scoring(fn: str, base: float) -> None:
    slo = _slo(
        {"sli": "rt", "pass": [{"criteria": ["<=+0"]}]},
        comparison={"compare_with": "several_results", "number_of_comparison_results": 11,
                    "aggregate_function": fn},
    )  # fmt: skip
    prev = [_prev(f"e{i}", rt=float(i)) for i in range(11)]
    with pytest.warns(UserWarning) if fn == "p99" else _nothing():
        ev = evaluate(slo, {"rt": 0}, prev)
    row = ev.indicator_results[0]
    assert row.pass_targets is not None and row.pass_targets[0].target_value == base


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *args: object) -> None:
        return None


def test_previous_as_evaluation_objects() -> None:
    slo = _slo({"sli": "rt", "pass": [{"criteria": ["<=+50%"]}]})
    first = evaluate(slo, {"rt": 10})
    first = Evaluation.from_keptn(first.to_keptn(), id="first")
    second = evaluate(slo, {"rt": 16}, [first])
    assert second.result == "fail" and second.compared_events == ("first",)
    assert second.indicator_results[0].pass_targets is not None
    assert second.indicator_results[0].pass_targets[0].target_value == 15.0


def test_to_keptn_shape() -> None:
    raw = (TUTORIAL / "slo.yaml").read_bytes()
    ev = evaluate(TUTORIAL / "slo.yaml", {"http_response_time_seconds_main_page_sum": 0.3,
                                          "request_throughput": 10, "go_routines": 50})  # fmt: skip
    from datetime import UTC, datetime

    window = Window(datetime(2021, 1, 1, tzinfo=UTC), datetime(2021, 1, 1, 0, 5, tzinfo=UTC))
    data = ev.to_keptn(
        project="p", stage="hardening", service="svc", window=window, labels={"k": "v"}
    )
    json.dumps(data)
    assert (
        data["result"] == "pass" and data["status"] == "succeeded" and data["labels"] == {"k": "v"}
    )
    e = data["evaluation"]
    assert (
        e["timeStart"] == "2021-01-01T00:00:00.000Z" and e["timeEnd"] == "2021-01-01T00:05:00.000Z"
    )
    assert base64.b64decode(e["sloFileContent"]) == raw
    assert "comparedEvents" not in e and "message" not in data
    first = e["indicatorResults"][0]
    assert set(first) == {
        "score",
        "value",
        "displayName",
        "passTargets",
        "warningTargets",
        "keySli",
        "status",
    }
    assert first["value"] == {
        "metric": "http_response_time_seconds_main_page_sum",
        "value": 0.3,
        "success": True,
    }
    assert first["passTargets"] == [{"criteria": "<=1", "targetValue": 1.0, "violated": False}]
    assert e["indicatorResults"][2]["warningTargets"] is None
    back = Evaluation.from_keptn(data, id="x")
    assert back.result == ev.result and back.score == ev.score and back.id == "x"
    assert [r.to_keptn() for r in back.indicator_results] == e["indicatorResults"]


# The tutorial's SLO, scored as Keptn would
TUTORIAL_VALUES = {"http_response_time_seconds_main_page_sum": 0.3, "request_throughput": 100.0,
                   "go_routines": 40.0}  # fmt: skip


def test_tutorial_first_run_passes() -> None:
    ev = evaluate(TUTORIAL / "slo.yaml", TUTORIAL_VALUES)
    assert (ev.result, ev.score) == ("pass", 100.0)
    throughput = ev.indicator_results[1]
    assert throughput.pass_targets is not None
    assert [t.target_value for t in throughput.pass_targets] == [0.0, 0.0]  # no previous results


@pytest.mark.parametrize(
    ("throughput", "rt", "result", "score", "status"),
    [
        (150.0, 0.3, "pass", 100.0, "pass"),   # within +100% / -80% of 100
        (200.0, 0.3, "pass", 100.0, "pass"),   # exactly +100% (<=)
        (201.0, 0.3, "fail", 100.0 * (2 / 3), "fail"),  # above 200
        (20.0, 0.3, "pass", 100.0, "pass"),    # exactly -80%
        (19.0, 0.3, "fail", 100.0 * (2 / 3), "fail"),
        (100.0, 0.7, "pass", 100.0, "pass"),   # rt passes <=1 (warning <=0.5 not needed)
        (100.0, 1.5, "fail", 100.0 * (2 / 3), "pass"),
    ],
)  # fmt: skip
def test_tutorial_relative_throughput(
    throughput: float, rt: float, result: str, score: float, status: str
) -> None:
    previous = {"id": "prev-1", "data": evaluate(TUTORIAL / "slo.yaml", TUTORIAL_VALUES).to_keptn()}
    values = dict(TUTORIAL_VALUES, request_throughput=throughput,
                  http_response_time_seconds_main_page_sum=rt)  # fmt: skip
    ev = evaluate(TUTORIAL / "slo.yaml", values, [previous])
    assert (ev.result, ev.score) == (result, score)
    assert ev.indicator_results[1].status == status
    assert ev.compared_events == ("prev-1",)
    targets = ev.indicator_results[1].pass_targets
    assert targets is not None and [t.target_value for t in targets] == [200.0, 20.0]


def test_tutorial_two_failures_is_fail_33() -> None:
    values = dict(TUTORIAL_VALUES, go_routines=500.0, http_response_time_seconds_main_page_sum=2.0)
    ev = evaluate(TUTORIAL / "slo.yaml", values)
    assert ev.result == "fail" and ev.score == 100.0 * (1 / 3)


def test_indicator_values_forms_agree() -> None:
    slo = _slo({"sli": "a", "pass": [{"criteria": ["<10"]}]})
    a = evaluate(slo, {"a": 5})
    b = evaluate(slo, [{"metric": "a", "value": 5, "success": True}])
    c = evaluate(slo, [SLIResult("a", 5.0)])
    assert a.to_keptn() == b.to_keptn() == c.to_keptn()


def test_first_value_wins_and_duplicate_objectives_share_it() -> None:
    slo = _slo(
        {"sli": "a", "pass": [{"criteria": ["<10"]}]}, {"sli": "a", "pass": [{"criteria": ["<3"]}]}
    )
    ev = evaluate(
        slo,
        [
            {"metric": "a", "value": 5, "success": True},
            {"metric": "a", "value": 1, "success": True},
        ],
    )
    assert [r.value for r in ev.indicator_results] == [5, 5]
    assert [r.status for r in ev.indicator_results] == ["pass", "fail"]


def test_sli_result_with_missing_status_counts_as_not_received() -> None:
    slo = _slo(
        {"sli": "a", "pass": [{"criteria": ["<10"]}]}, {"sli": "b", "pass": [{"criteria": ["<10"]}]}
    )
    values = [SLIResult("a", 1.0), SLIResult("b", 0.0, success=False, status=SLIStatus.MISSING)]
    ev = evaluate(slo, values)
    assert ev.indicator_results[1].message == MISSING_MESSAGE
    assert [r.sli for r in evaluate(slo, values, compat="0.8.7").indicator_results] == ["a"]
