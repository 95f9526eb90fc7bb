"""``python -m pytest_keptn upgrade shipyard``: Keptn 0.7 shipyards converted as Keptn 0.8.7's
``transformShipyard`` (``cli/cmd/upgrade_project.go``) converts them, checked against the case
of its ``Test_transformShipyard``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_keptn.errors import SpecError
from pytest_keptn.spec import load_shipyard, load_yaml
from pytest_keptn.spec.upgrade import transform_shipyard


def delivery(name: str, strategy: str | None, test: str, approval: tuple[str, str],
             after: str | None) -> dict[str, Any]:
    tasks: list[dict[str, Any]] = []
    if strategy is not None:
        tasks.append({"name": "deployment", "properties": {"deploymentstrategy": strategy}})
    tasks += [{"name": "test", "properties": {"teststrategy": test}}, {"name": "evaluation"},
              {"name": "approval", "properties": {"pass": approval[0], "warning": approval[1]}},
              {"name": "release"}]
    seq: dict[str, Any] = {"name": name}
    if after:
        seq["triggeredOn"] = [{"event": f"{after}.{name}.finished"}]
    seq["tasks"] = tasks
    return seq


def rollback(stage: str) -> dict[str, Any]:
    return {"name": "rollback",
            "triggeredOn": [{"event": f"{stage}.delivery.finished",
                             "selector": {"match": {"result": "fail"}}}],
            "tasks": [{"name": "rollback"}]}


# Test_transformShipyard's input (getTestV1ShipyardStages) and its expected output.
KEPTN_CASE_INPUT = """\
stages:
  - name: dev
    deployment_strategy: direct
    test_strategy: functional
    approval_strategy: {pass: automatic, warning: manual}
  - name: staging
    deployment_strategy: blue_green_service
    test_strategy: performance
    approval_strategy: {pass: automatic, warning: manual}
"""
KEPTN_CASE_OUTPUT = {
    "apiVersion": "spec.keptn.sh/0.2.0",
    "kind": "Shipyard",
    "metadata": {"name": ""},
    "spec": {"stages": [
        {"name": "dev", "sequences": [
            delivery("delivery", "direct", "functional", ("automatic", "manual"), None),
            delivery("delivery-direct", "direct", "functional", ("automatic", "manual"), None),
        ]},
        {"name": "staging", "sequences": [
            delivery("delivery", "blue_green_service", "performance", ("automatic", "manual"), "dev"),
            rollback("staging"),
            delivery("delivery-direct", "direct", "performance", ("automatic", "manual"), "dev"),
        ]},
    ]},
}


def test_keptns_converter_case() -> None:
    upgrade = transform_shipyard(load_yaml(KEPTN_CASE_INPUT, file="old.yaml"))
    assert upgrade.shipyard == KEPTN_CASE_OUTPUT
    # the text we write reads back as the same document, and pytest-keptn runs it
    assert load_yaml(upgrade.to_yaml(), file="new.yaml") == KEPTN_CASE_OUTPUT
    assert [s.name for s in load_shipyard(upgrade.to_yaml().encode()).stages] == ["dev", "staging"]


@pytest.mark.parametrize(("block", "expected"), [
    ("", ("automatic", "automatic")),                                   # no approval_strategy
    ("approval_strategy: {pass: manual}", ("manual", "automatic")),     # a missing key: zero value
    ("approval_strategy: {pass: MANUAL, warning: Manual}", ("manual", "manual")),  # ToLower
    ("approval_strategy: {pass: by-hand, warning: manual}", ("automatic", "manual")),  # unknown
])
def test_approval_strategy_as_go_utils_reads_it(block: str, expected: tuple[str, str]) -> None:
    doc = load_yaml(f"stages:\n  - name: dev\n    deployment_strategy: direct\n    {block}\n",
                    file="old.yaml")
    task = transform_shipyard(doc).shipyard["spec"]["stages"][0]["sequences"][0]["tasks"][3]
    assert task == {"name": "approval", "properties": {"pass": expected[0], "warning": expected[1]}}


def test_a_three_stage_chain_with_a_quality_gates_only_stage() -> None:
    doc = load_yaml("stages:\n  - name: dev\n    deployment_strategy: direct\n"
                    "  - name: qg\n"
                    "  - name: prod\n    deployment_strategy: blue_green_service\n"
                    "    remediation_strategy: automated\n", file="old.yaml")
    upgrade = transform_shipyard(doc, project="sockshop")
    stages = upgrade.shipyard["spec"]["stages"]
    assert upgrade.shipyard["metadata"] == {"name": "sockshop"}
    # the quality-gates-only stage: no deployment task (Keptn wrote deploymentstrategy: "")
    assert stages[1]["sequences"][0] == delivery("delivery", None, "", ("automatic", "automatic"), "dev")
    assert [s["name"] for s in stages[1]["sequences"]] == ["delivery", "delivery-direct"]
    assert stages[2]["sequences"][0]["triggeredOn"] == [{"event": "qg.delivery.finished"}]
    assert stages[2]["sequences"][1] == rollback("prod")
    assert stages[2]["sequences"][2]["triggeredOn"] == [{"event": "qg.delivery-direct.finished"}]
    text = upgrade.to_yaml()
    assert "# Stage 'qg' has no deployment_strategy (quality gates only)" in text
    assert "remediation_strategy 'automated' is not converted" in text
    load_shipyard(text.encode())


@pytest.mark.parametrize(("text", "expected"), [
    ("apiVersion: spec.keptn.sh/0.2.0\nkind: Shipyard\n", "apiVersion: already 'spec.keptn.sh/0.2.0'"),
    ("registry: x\n", "stages: no stages: nothing converted"),
    ("stages:\n  - deployment_strategy: direct\n", r"stages\[0\].name: missing stage name"),
])
def test_what_is_not_a_keptn_07_shipyard(text: str, expected: str) -> None:
    with pytest.raises(SpecError, match=expected):
        transform_shipyard(load_yaml(text, file="old.yaml"), file="old.yaml")


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_keptn", "upgrade", "shipyard", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=60)


def test_command_prints_or_writes_the_converted_shipyard(tmp_path: Path) -> None:
    (tmp_path / "old.yaml").write_text(KEPTN_CASE_INPUT)
    printed = run("old.yaml", cwd=tmp_path)
    assert printed.returncode == 0, printed.stderr
    assert load_yaml(printed.stdout, file="out") == KEPTN_CASE_OUTPUT
    written = run("old.yaml", "--output", "shipyard.yaml", "--project", "demo", cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    assert written.stdout == ""
    assert load_shipyard(tmp_path / "shipyard.yaml").name == "demo"


def test_command_refuses_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "new.yaml").write_text("apiVersion: spec.keptn.sh/0.2.0\nkind: Shipyard\n")
    result = run("new.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == ("pytest-keptn: new.yaml: apiVersion: already 'spec.keptn.sh/0.2.0': "
                             "nothing to convert\n")
    missing = run("absent.yaml", cwd=tmp_path)
    assert missing.returncode == 2 and "absent.yaml: cannot read file" in missing.stderr
    assert "Traceback" not in missing.stderr
