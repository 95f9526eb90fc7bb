from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from pytest_keptn.errors import SpecError
from pytest_keptn.spec import SpecWarning, load_shipyard, load_sli, load_slo, load_yaml, merge_sli
from pytest_keptn.spec._yaml import scalar_text
from pytest_keptn.spec.sli import SLIConfig

TUTORIAL = Path(__file__).parent.parent / "data" / "tutorial"


def test_yaml_keeps_raw_scalar_text() -> None:
    doc = load_yaml(
        "a: 90\nb: 90.0\nc: 75%\nd: 0x1F\ne: 1_000\nf: true\ng:\nh: 2001-12-14\n", file="x"
    )
    assert [scalar_text(doc[k]) for k in "abcdefgh"] == [
        "90", "90.0", "75%", "0x1F", "1_000", "true", "", "2001-12-14",
    ]  # fmt: skip
    assert doc["a"] == 90 and doc["b"] == 90.0


def test_yaml_merge_keys_still_work() -> None:
    doc = load_yaml("base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n", file="x")
    assert doc["other"] == {"x": 1, "y": 2}


def test_tutorial_slo_loads_verbatim() -> None:
    slo = load_slo(TUTORIAL / "slo.yaml")
    assert slo.spec_version == "0.1.0"
    assert slo.raw == (TUTORIAL / "slo.yaml").read_bytes()
    assert slo.comparison.compare_with == "single_result"
    assert slo.comparison.include_result_with_score == "pass"
    assert slo.comparison.number_of_comparison_results == 3  # block present -> 3
    assert slo.comparison.n == 1
    assert slo.comparison.aggregate_function == "avg"
    assert [o.sli for o in slo.objectives] == [
        "http_response_time_seconds_main_page_sum", "request_throughput", "go_routines",
    ]  # fmt: skip
    assert [[c.text for c in g] for g in slo.objectives[1].pass_groups] == [["<=+100%", ">=-80%"]]
    assert slo.total_score is not None
    assert (slo.total_score.pass_threshold, slo.total_score.warning_threshold) == (90.0, 75.0)


def test_tutorial_sli_and_shipyard_load_verbatim() -> None:
    sli = load_sli(TUTORIAL / "sli.yaml")
    assert sli.spec_version == "1.0"
    assert set(sli.indicators) == {
        "http_response_time_seconds_main_page_sum", "http_requests_total_sucess", "go_routines",
        "request_throughput",
    }  # fmt: skip
    assert sli.indicators["go_routines"] == 'go_goroutines{job="$SERVICE-$PROJECT-$STAGE"}'
    shipyard = load_shipyard(TUTORIAL / "shipyard.yaml")
    assert shipyard.name == "shipyard-sockshop"
    assert [s.name for s in shipyard.stages] == ["hardening", "production"]
    hardening = shipyard.stage("hardening")
    assert hardening.has_evaluation and not shipyard.stage("production").has_evaluation
    delivery = hardening.sequences[0]
    assert [t.name for t in delivery.tasks] == ["deployment", "test", "evaluation", "release"]
    assert delivery.tasks[0].properties == {"deploymentstrategy": "blue_green_service"}


def test_no_comparison_block_defaults() -> None:
    slo = load_slo({"objectives": []})
    c = slo.comparison
    assert (c.compare_with, c.include_result_with_score, c.number_of_comparison_results,
            c.aggregate_function, c.n) == ("single_result", "all", 1, "avg", 1)  # fmt: skip


@pytest.mark.parametrize(
    ("block", "n"),
    [
        ({"compare_with": "several_results", "number_of_comparison_results": 5}, 5),
        ({"compare_with": "several_results"}, 3),
        ({"compare_with": "several_results", "number_of_comparison_results": 2.7}, 2),
        ({"number_of_comparison_results": 7}, 3),  # compare_with "" -> 3
        ({"compare_with": "Single_Result"}, 3),  # case-sensitive
        ({"compare_with": "single_result", "number_of_comparison_results": 9}, 1),
    ],
)
def test_comparison_n(block: dict[str, object], n: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert load_slo({"comparison": block, "objectives": []}).comparison.n == n


def test_comparison_empty_block_defaults() -> None:
    c = load_slo({"comparison": {"compare_with": "several_results"}, "objectives": []}).comparison
    assert (c.include_result_with_score, c.number_of_comparison_results, c.aggregate_function) == (
        "all", 3, "avg",
    )  # fmt: skip


def test_total_score_raw_text(tmp_path: Path) -> None:
    path = tmp_path / "slo.yaml"
    path.write_text(
        "objectives:\n  - sli: a\n    pass: [{criteria: ['<1']}]\ntotal_score:\n  pass: 90.0\n  warning: 75%\n"
    )
    slo = load_slo(path)
    assert slo.total_score is not None
    assert (slo.total_score.pass_text, slo.total_score.warning_text) == ("90.0", "75%")
    assert slo.to_mapping()["total_score"] == {"pass": "90.0", "warning": "75%"}


def test_filter_values_are_strings(tmp_path: Path) -> None:
    path = tmp_path / "slo.yaml"
    path.write_text(
        "filter:\n  handler: ItemsController\n  port: 8080\n  ratio: 1.50\n  id:\nobjectives: []\n"
    )
    assert dict(load_slo(path).filter) == {
        "handler": "ItemsController",
        "port": "8080",
        "ratio": "1.50",
        "id": "",
    }


def test_yaml11_booleans_stay_text_as_in_yaml_v3(tmp_path: Path) -> None:
    """yaml.v3 resolves only true/false as booleans: ``on``/``yes``/``off`` stay the text a
    Go string field receives, while a bool field (key_sli) still accepts them."""
    path = tmp_path / "slo.yaml"
    path.write_text(
        "filter:\n  handler: on\n  cache: yes\n  legacy: OFF\n  flag: true\nobjectives:\n"
        "  - sli: a\n    key_sli: yes\n  - sli: b\n    key_sli: off\n  - sli: c\n"
        "    key_sli: true\n"
    )
    slo = load_slo(path)
    assert dict(slo.filter) == {"handler": "on", "cache": "yes", "legacy": "OFF", "flag": "true"}
    assert [o.key_sli for o in slo.objectives] == [True, False, True]


def test_to_mapping_applies_defaults() -> None:
    m = load_slo({"objectives": [{"sli": "a", "pass": [{"criteria": ["<1"]}]}],
                  "total_score": {"pass": 90}}).to_mapping()  # fmt: skip
    assert m["comparison"] == {"compare_with": "single_result", "include_result_with_score": "all",
                               "number_of_comparison_results": 1, "aggregate_function": "avg"}  # fmt: skip
    assert m["objectives"] == [
        {"sli": "a", "pass": [{"criteria": ["<1"]}], "weight": 1, "key_sli": False}
    ]
    assert m["total_score"] == {"pass": "90"}
    assert load_slo(m).to_mapping() == m


def test_negative_weight_refused() -> None:
    with pytest.raises(SpecError, match=r"objectives\[0\]\.weight: objective 'a': negative weight -2"):
        load_slo({"objectives": [{"sli": "a", "weight": -2}]})


def test_unknown_keys_warn() -> None:
    with pytest.warns(SpecWarning, match=r"slo.yaml: objectives\[0\].weigth: unknown key"):
        load_slo({"objectives": [{"sli": "a", "weigth": 2}]})


def test_mapping_raw_is_yaml_of_defaults() -> None:
    slo = load_slo({"objectives": []})
    assert load_yaml(slo.raw, file="x")["comparison"]["number_of_comparison_results"] == 1


def test_compat_keeps_invalid_criterion() -> None:
    slo = load_slo(
        {"objectives": [{"sli": "a", "pass": [{"criteria": ["<=abc"]}]}]}, compat="0.8.7"
    )
    c = slo.objectives[0].pass_groups[0][0]
    assert not c.valid and c.error == "could not parse criteria target value"


def test_compat_still_rejects_broken_structure() -> None:
    with pytest.raises(SpecError, match=r"objectives\[0\]: null objective"):
        load_slo({"objectives": [None]}, compat="0.8.7")


def test_info_only_slo_needs_no_total_score() -> None:
    assert load_slo({"objectives": [{"sli": "a"}]}).total_score is None


def test_merge_sli_later_wins() -> None:
    project = SLIConfig({"a": "1", "b": "1"})
    stage = SLIConfig({"b": "2", "c": "2"})
    service = SLIConfig({"c": "3"})
    assert merge_sli(project, None, stage, service) == {"a": "1", "b": "2", "c": "3"}
    assert merge_sli() == {}


def test_sli_scalar_queries_become_text() -> None:
    assert load_sli({"indicators": {"x": 5}}).indicators == {"x": "5"}


SHIPYARD = """
apiVersion: spec.keptn.sh/0.2.0
kind: Shipyard
metadata: {name: s}
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks: [{name: deployment, properties: {deploymentstrategy: direct}}, {name: evaluation}]
    - name: prod
      sequences:
        - name: delivery
          triggeredOn: [{event: dev.delivery.finished}]
          tasks: [{name: deployment, triggeredAfter: 10m, properties: {deploymentstrategy: direct}}, {name: release}]
        - name: rollback
          triggeredOn:
            - event: dev.delivery.finished
              selector: {match: {result: fail}}
          tasks: [{name: rollback}]
        - name: on-eval-warning
          triggeredOn:
            - event: dev.delivery.finished
              selector: {match: {evaluation.result: warning}}
          tasks: [{name: notify}]
        - name: remediation
          triggeredOn: [{event: prod.evaluation.finished}]
          tasks: [{name: remediation}]
"""


@pytest.mark.parametrize(
    ("result", "last_task", "expected"),
    [
        ("pass", "evaluation", ["delivery"]),
        ("warning", "evaluation", ["delivery", "on-eval-warning"]),
        ("warning", "release", ["delivery"]),
        ("fail", "evaluation", ["rollback"]),
        ("failed", "evaluation", []),
    ],
)
def test_triggered_by(result: str, last_task: str, expected: list[str]) -> None:
    shipyard = load_shipyard(SHIPYARD.encode())
    fired = shipyard.triggered_by("dev", "delivery", result, last_task)
    assert [(st.name, seq.name) for st, seq in fired] == [("prod", n) for n in expected]


def test_shipyard_details() -> None:
    shipyard = load_shipyard(SHIPYARD.encode(), file="shipyard.yaml")
    prod = shipyard.stage("prod")
    assert prod.sequences[0].tasks[0].triggered_after == "10m"
    assert prod.sequences[1].triggered_on[0].match == {"result": "fail"}
    with pytest.raises(SpecError, match=r"shipyard\.yaml: spec\.stages: no stage named 'qa'"):
        shipyard.stage("qa")
