"""Issue 14 items 9 and 10: names that are paths, and weights that invert a gate, refused at
collection with one line before anything runs."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from tests.plugin.conftest import SLO, Project


def refused(result: pytest.RunResult) -> str:
    err = result.stderr.str()
    out = result.stdout.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, out + err
    lines = [line for line in err.splitlines() if "pytest-keptn:" in line]
    assert len(lines) == 1, err
    assert "Traceback" not in err + out and "INTERNALERROR" not in err + out
    return lines[0]


def escaped_files(project: Project) -> list[Path]:
    """What a stage named ../../escaped could have written outside its folders: the events,
    state and run folders are two levels below these."""
    places = (project.path.parent.parent, Path(tempfile.gettempdir()), Path("/"))
    return [p for place in places for p in place.glob("escaped*")]


@pytest.mark.parametrize("name", ["../../escaped", "a/b", "x\\u0000y", "x\\ty"])
def test_a_stage_named_like_a_path_is_refused(project: Project, name: str) -> None:
    # Before: a stage "../../x" wrote its event, sequence state and lock outside their folders.
    text = (project.path / "keptn/shipyard.yaml").read_text()
    project.write("keptn/shipyard.yaml", text.replace('- name: "hardening"', f'- name: "{name}"')
                  .replace("hardening.delivery.finished", f"{name}.delivery.finished"))
    folder = name.replace("\\u0000", "").replace("\\t", "")
    project.write(f"keptn/{folder}/svc/slo.yaml", SLO)
    before = escaped_files(project)
    line = refused(project.run("--keptn-stage=all", "--keptn-tag=v1"))
    assert "keptn/shipyard.yaml: spec.stages[0].name: " in line, line
    assert "(stage names go into file names)" in line, line
    assert project.calls() == []
    assert escaped_files(project) == before


@pytest.mark.parametrize("name", ["../../x", "a/b", ".."])
def test_a_service_option_like_a_path_is_refused(project: Project, name: str) -> None:
    # Before: an internal FileNotFoundError.
    line = refused(project.run("--keptn-stage=hardening", "--keptn-tag=v1",
                               f"--keptn-service={name}"))
    problem = "contains a path separator" if "/" in name else "contains '..'"
    assert line.endswith(f"--keptn-service: {problem}: {name!r} (it goes into file names)"), line
    assert project.calls() == []


@pytest.mark.parametrize("weights", [(-1, 1, 1), (1, -1, 0)])
def test_negative_weights_are_refused_naming_the_objective(project: Project,
                                                            weights: tuple[int, int, int]) -> None:
    # Before: a negative weight turned a failing gate into a pass at 200 % (and 1, -1, 0 -- the
    # 0 reads as 1 -- summed to 1 with a failing objective subtracting from the score).
    slo = SLO
    for sli, weight in zip(("response_time", "throughput", "goroutines"), weights, strict=True):
        slo = slo.replace(f"  - sli: {sli}\n", f"  - sli: {sli}\n    weight: {weight}\n")
    project.write("keptn/hardening/svc/slo.yaml", slo)
    line = refused(project.run("--keptn-stage=hardening", "--keptn-tag=v2"))
    index = weights.index(-1)
    sli = ("response_time", "throughput", "goroutines")[index]
    assert line.endswith(f"keptn/hardening/svc/slo.yaml: objectives[{index}].weight: objective "
                         f"{sli!r}: negative weight -1 (weights are 1 or more; 0 reads as 1)"), line
    assert project.calls() == []
