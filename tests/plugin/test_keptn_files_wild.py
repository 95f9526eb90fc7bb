"""Keptn files from the wild through a real pytest session (issue 19): a 0.2.2 multi-stage
shipyard like Keptn's sockshop onboarding one collects and runs, a Keptn 0.7 shipyard is named
with the command that converts it."""

from __future__ import annotations

import pytest

from tests.plugin.conftest import SLO, Project

# dev -> staging -> production, delivery and delivery-direct, rollback on result: fail, and a
# remediation sequence whose evaluation waits 15m and looks back 15m. Written for these tests.
SHIPYARD_022 = """\
apiVersion: "spec.keptn.sh/0.2.2"
kind: "Shipyard"
metadata:
  name: "shop"
spec:
  stages:
    - name: "dev"
      sequences:
        - name: "delivery"
          tasks:
            - name: "deployment"
              properties: {deploymentstrategy: "direct"}
            - name: "test"
              properties: {teststrategy: "functional"}
            - name: "evaluation"
            - name: "release"
        - name: "delivery-direct"
          tasks:
            - name: "deployment"
              properties: {deploymentstrategy: "direct"}
            - name: "release"
    - name: "staging"
      sequences:
        - name: "delivery"
          triggeredOn:
            - event: "dev.delivery.finished"
          tasks:
            - name: "deployment"
              properties: {deploymentstrategy: "blue_green_service"}
            - name: "test"
              properties: {teststrategy: "performance"}
            - name: "evaluation"
            - name: "release"
        - name: "rollback"
          triggeredOn:
            - event: "staging.delivery.finished"
              selector:
                match: {result: "fail"}
          tasks:
            - name: "rollback"
        - name: "delivery-direct"
          triggeredOn:
            - event: "dev.delivery-direct.finished"
          tasks:
            - name: "deployment"
              properties: {deploymentstrategy: "direct"}
            - name: "release"
    - name: "production"
      sequences:
        - name: "delivery"
          triggeredOn:
            - event: "staging.delivery.finished"
          tasks:
            - name: "deployment"
              properties: {deploymentstrategy: "blue_green_service"}
            - name: "release"
        - name: "rollback"
          triggeredOn:
            - event: "production.delivery.finished"
              selector:
                match: {result: "fail"}
          tasks:
            - name: "rollback"
        - name: "delivery-direct"
          triggeredOn:
            - event: "staging.delivery-direct.finished"
          tasks:
            - name: "deployment"
              properties: {deploymentstrategy: "direct"}
            - name: "release"
        - name: "remediation"
          triggeredOn:
            - event: "production.remediation.finished"
              selector:
                match: {evaluation.result: "fail"}
          tasks:
            - name: "get-action"
            - name: "action"
            - name: "evaluation"
              triggeredAfter: "15m"
              properties: {timeframe: "15m"}
"""


@pytest.fixture
def shop(project: Project) -> Project:
    (project.path / "keptn/hardening/svc/slo.yaml").unlink()
    project.write("keptn/shipyard.yaml", SHIPYARD_022)
    project.write("keptn/slo.yaml", SLO)  # project level: every stage evaluates with it
    return project


def test_a_022_multi_stage_shipyard_collects(shop: Project) -> None:
    result = shop.run("--keptn-stage=all", "--keptn-tag=v1", "--collect-only", "-q")
    out = result.stdout.str() + result.stderr.str()
    assert result.ret == 0, out
    for stage, sequences in (("dev", ("delivery", "delivery-direct")),
                             ("staging", ("delivery", "rollback", "delivery-direct")),
                             ("production", ("delivery", "rollback", "delivery-direct",
                                             "remediation"))):
        for objective in ("response_time", "throughput", "goroutines"):
            assert f"keptn/shipyard.yaml::{stage}::{objective}" in out
        for sequence in sequences:
            assert f"keptn/shipyard.yaml::{stage}::sequence[{sequence}]" in out
    assert "keptn: project demo, stage(s) dev, staging, production" in out
    assert shop.calls() == []


def test_a_022_multi_stage_shipyard_runs_down_its_stages(shop: Project) -> None:
    result = shop.run("--keptn-stage=all", "--keptn-tag=v1", "-v")
    out = result.stdout.str()
    assert result.ret == 0, out
    assert [(c["task"], c["stage"]) for c in shop.calls()] == [
        ("deploy", "dev"), ("load", "dev"), ("get_sli", "dev"), ("release", "dev"),
        ("deploy", "staging"), ("load", "staging"), ("get_sli", "staging"), ("release", "staging"),
        ("deploy", "production"), ("release", "production"),
    ]
    for passed in ("dev::sequence[delivery] PASSED", "staging::sequence[delivery] PASSED",
                   "production::sequence[delivery] PASSED"):
        assert passed in out
    for skipped in ("dev::sequence[delivery-direct] SKIPPED", "staging::sequence[rollback] SKIPPED",
                    "production::sequence[remediation] SKIPPED"):
        assert skipped in out
    # the remediation loop (triggered by its own finish) is not a triggeredOn cycle
    assert "production.remediation: not run — not triggered: production.remediation.finished " \
        "is its own finish" in out
    assert "Traceback" not in out and "INTERNALERROR" not in out


def test_a_later_field_is_one_pytest_warning_naming_file_and_field(shop: Project) -> None:
    text = SHIPYARD_022.replace('            - name: "release"\n',
                                '            - name: "release"\n              timeout: "5m"\n')
    shop.write("keptn/shipyard.yaml", text)
    result = shop.run("--keptn-stage=all", "--keptn-tag=v1", "--collect-only", "-q")
    out = result.stdout.str()
    assert result.ret == 0, out + result.stderr.str()
    assert "warnings summary" in out
    lines = [line for line in out.splitlines() if "unknown key (ignored)" in line]
    assert len(lines) == 1, out
    assert "SpecWarning: " in lines[0]
    assert "keptn/shipyard.yaml: spec.stages[0].sequences[0].tasks[3].timeout" in lines[0]


def test_a_keptn_07_shipyard_says_which_command_converts_it(project: Project) -> None:
    project.write("keptn/shipyard.yaml", "stages:\n  - name: hardening\n"
                  "    deployment_strategy: blue_green_service\n    test_strategy: performance\n")
    result = project.run("--keptn-stage=hardening", "--keptn-tag=v1")
    err = result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, err
    lines = [line for line in err.splitlines() if "pytest-keptn:" in line]
    assert len(lines) == 1, err
    assert "shipyard.yaml: this is Keptn 0.7's shipyard format" in lines[0]
    assert "python -m pytest_keptn upgrade shipyard " in lines[0]
    assert project.calls() == []


def test_compat_087_reads_a_022_shipyard_as_keptn_087_did(shop: Project) -> None:
    result = shop.run("--keptn-stage=all", "--keptn-tag=v1", "--keptn-compat=0.8.7",
                      "--collect-only", "-q")
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
