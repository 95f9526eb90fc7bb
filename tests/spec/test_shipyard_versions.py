"""Shipyards from the wild (issue 19): later 0.2.x versions, Keptn 0.7 files, and the checks a
shipyard gets before anything runs (names that are paths, deployment strategies)."""

from __future__ import annotations

import json
import warnings

import pytest

from pytest_keptn.errors import SpecError
from pytest_keptn.spec import SpecWarning, load_shipyard


def shipyard(api: str = "spec.keptn.sh/0.2.0", *, stage: str = "dev", sequence: str = "delivery",
             task: str = "{name: deployment, properties: {deploymentstrategy: direct}}",
             trigger: str = "", extra: str = "") -> bytes:
    return (
        f"apiVersion: '{api}'\nkind: Shipyard\nmetadata: {{name: demo}}\nspec:\n  stages:\n"
        f"    - name: '{stage}'\n      sequences:\n        - name: '{sequence}'\n"
        + (f"          triggeredOn: [{trigger}]\n" if trigger else "")
        + f"          tasks: [{task}]\n{extra}"
    ).encode()


@pytest.mark.parametrize("api", ["spec.keptn.sh/0.2.0", "spec.keptn.sh/0.2.1",
                                 "spec.keptn.sh/0.2.2", "spec.keptn.sh/0.2.3",
                                 "spec.keptn.sh/0.2.4"])
def test_every_0_2_x_is_read(api: str) -> None:
    assert load_shipyard(shipyard(api)).stages[0].name == "dev"


@pytest.mark.parametrize("api", ["spec.keptn.sh/0.3.0", "spec.keptn.sh/1.0.0", "spec.keptn.sh/0.2",
                                 "spec.keptn.sh/0.1.0", "0.2.0", "spec.keptn.sh/0.2.2-alpha"])
def test_other_versions_are_refused(api: str) -> None:
    with pytest.raises(SpecError, match=r"shipyard.yaml: apiVersion: expected 'spec.keptn.sh/0.2.x'"):
        load_shipyard(shipyard(api))


@pytest.mark.parametrize(("api", "accepted"), [
    ("spec.keptn.sh/0.2.0", True), ("spec.keptn.sh/0.2.2", True), ("spec.keptn.sh/0.2", True),
    ("spec.keptn.sh/1.0.0", True), ("spec.keptn.sh/0.1.0", False),
    ("spec.keptn.sh/0.2.3-alpha", False), ("spec.keptn.sh/latest", False),
])
def test_compat_accepts_what_shipyard_controller_087_accepted(api: str, accepted: bool) -> None:
    # ValidateShipyardVersion (shipyard-controller/common/keptn_helpers.go at 0.8.7): the
    # version after "spec.keptn.sh/" must satisfy the semver constraint ">= 0.2".
    if accepted:
        load_shipyard(shipyard(api), compat="0.8.7")
    else:
        with pytest.raises(SpecError, match="apiVersion"):
            load_shipyard(shipyard(api), compat="0.8.7")


def test_a_later_field_warns_once_naming_file_and_field() -> None:
    task = "{name: deployment, properties: {deploymentstrategy: direct}, timeout: 5m}"
    doc = shipyard("spec.keptn.sh/0.2.2", task=f"{task}, {task.replace('deployment, p', 'release, p')}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_shipyard(doc, file="keptn/shipyard.yaml")
    texts = [str(w.message) for w in caught if issubclass(w.category, SpecWarning)]
    assert texts == ["keptn/shipyard.yaml: spec.stages[0].sequences[0].tasks[0].timeout: "
                     "unknown key (ignored)"]


def test_an_unknown_trigger_key_is_refused_it_would_change_when_a_sequence_starts() -> None:
    trigger = "{event: dev.delivery.finished, selector: {match: {result: fail}, exclude: {x: y}}}"
    doc = shipyard(trigger=trigger, extra="")
    with pytest.raises(SpecError, match=r"triggeredOn\[0\]\.selector\.exclude: unknown key: it "
                       "would change when the sequence starts"):
        load_shipyard(doc)
    with pytest.warns(SpecWarning, match="selector.exclude: unknown key"):
        load_shipyard(doc, compat="0.8.7")


def test_a_keptn_07_shipyard_names_its_format_and_the_converter() -> None:
    old = b"registry: x\nstages:\n  - name: dev\n    deployment_strategy: direct\n"
    with pytest.raises(SpecError) as info:
        load_shipyard(old, file="keptn/shipyard.yaml")
    text = str(info.value)
    assert "\n" not in text
    assert text == (
        "keptn/shipyard.yaml: this is Keptn 0.7's shipyard format (stages with "
        "deployment_strategy); convert it to spec.keptn.sh/0.2.0 with: python -m pytest_keptn "
        "upgrade shipyard keptn/shipyard.yaml --output keptn/shipyard.yaml")


@pytest.mark.parametrize("name", ["../../x", "a/b", "..", "a\x00b", "a\nb", "a\x1bb", "a\\b"])
def test_stage_and_sequence_names_that_are_paths_are_refused(name: str) -> None:
    doc = shipyard(stage="STAGE").replace(b"'STAGE'", json.dumps(name).encode())
    with pytest.raises(SpecError, match=r"shipyard.yaml: spec.stages\[0\].name: .*stage names go into file names"):
        load_shipyard(doc, file="shipyard.yaml")
    with pytest.raises(SpecError, match=r"sequences\[0\].name: .*sequence names go into file names"):
        load_shipyard({"apiVersion": "spec.keptn.sh/0.2.0", "kind": "Shipyard",
                       "spec": {"stages": [{"name": "dev", "sequences": [{"name": name}]}]}})


@pytest.mark.parametrize("strategy", ["direct", "duplicate", "blue_green_service", "user_managed"])
def test_keptns_four_strategies_are_accepted(strategy: str) -> None:
    task = f"{{name: deployment, properties: {{deploymentstrategy: {strategy}}}}}"
    seq = load_shipyard(shipyard(task=task)).stages[0].sequences[0]
    assert seq.tasks[0].properties["deploymentstrategy"] == strategy


@pytest.mark.parametrize(("props", "expected"), [
    ("", "has no deploymentstrategy"),
    ("properties: {teststrategy: x}", "has no deploymentstrategy"),
    ("properties: {deploymentstrategy: ''}", "has no deploymentstrategy"),
    ("properties: {deploymentstrategy: blue_green}", "deploymentstrategy 'blue_green', which Keptn does not know"),
    ("properties: {deploymentstrategy: user-managed}", "'user-managed', which Keptn does not know"),
    ("properties: {deploymentstrategy: Direct}", "'Direct', which Keptn does not know"),
    ("properties: {deploymentstrategy: 1}", "which Keptn does not know"),
])
def test_a_missing_or_unknown_strategy_names_the_task(props: str, expected: str) -> None:
    task = "{name: deployment" + (f", {props}" if props else "") + "}"
    with pytest.raises(SpecError) as info:
        load_shipyard(shipyard(task=task), file="shipyard.yaml")
    assert str(info.value).startswith(
        "shipyard.yaml: spec.stages[0].sequences[0].tasks[0].properties.deploymentstrategy: "
        "the deployment task of dev.delivery ")
    assert expected in str(info.value)
    # Keptn 0.8.7 fails the deployment task when it runs: compat leaves it to the deployer
    load_shipyard(shipyard(task=task), compat="0.8.7")
