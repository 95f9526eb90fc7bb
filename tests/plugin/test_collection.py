"""shipyard.yaml is collected as pytest collects any file: ``collected N items`` counts the
objectives and sequences, and every node id pytest prints selects its item again (from the
command line, from ``--lf``, from an IDE's "run this test")."""

from __future__ import annotations

import pytest

from tests.plugin.conftest import Project

ITEMS = [
    "keptn/shipyard.yaml::hardening::response_time",
    "keptn/shipyard.yaml::hardening::throughput",
    "keptn/shipyard.yaml::hardening::goroutines",
    "keptn/shipyard.yaml::hardening::sequence[delivery]",
]


def test_collected_count_and_node_ids(project: Project) -> None:
    project.write("test_user.py", "def test_plain():\n    pass\n")
    result = project.run("--keptn-stage=hardening", "--keptn-tag=v1", "--collect-only", "-q")
    assert result.ret == 0, result.stdout.str()
    ids = [line for line in result.stdout.lines if "::" in line]
    assert sorted(ids) == sorted([*ITEMS, "test_user.py::test_plain"])
    verbose = project.run("--keptn-stage=hardening", "--keptn-tag=v1", "--collect-only")
    verbose.stdout.fnmatch_lines(["collected 5 items"])
    assert project.calls() == []  # collecting runs nothing


@pytest.mark.parametrize("node_id", [ITEMS[2], ITEMS[3]])
def test_a_printed_node_id_runs_its_item_again(project: Project, node_id: str) -> None:
    result = project.run(node_id, "--keptn-stage=hardening", "--keptn-tag=v1", "-v")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*collected 1 item"])
    assert f"{node_id} PASSED" in result.stdout.str()
    result.assert_outcomes(passed=1)
    # the one item still gets a deployed, loaded, evaluated and released stage
    assert [c["task"] for c in project.calls()] == ["deploy", "load", "get_sli", "release"]


def test_the_stage_node_runs_the_stage(project: Project) -> None:
    result = project.run("keptn/shipyard.yaml::hardening", "--keptn-stage=hardening",
                         "--keptn-tag=v1")
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=4)


def test_last_failed_reruns_the_failed_objectives(project: Project) -> None:
    args = ("--keptn-stage=hardening", "-v", "-p", "cacheprovider")
    bad = project.pytester.runpytest_subprocess(*args, "--keptn-tag=v2", timeout=120)
    assert bad.ret == 1
    bad.stdout.fnmatch_lines(["*hardening::goroutines FAILED*"])
    again = project.pytester.runpytest_subprocess(*args, "--keptn-tag=v2", "--lf", timeout=120)
    assert again.ret == 1, again.stdout.str()
    out = again.stdout.str()
    assert "run-last-failure: rerun previous 3 failures" in out
    for failed in ("response_time", "goroutines", "sequence[delivery]"):
        assert f"hardening::{failed} FAILED" in out
    assert "hardening::throughput" not in out  # it passed last time


def test_a_root_outside_the_given_paths_still_runs_the_gate(project: Project) -> None:
    project.write("tests/test_user.py", "def test_plain():\n    pass\n")
    result = project.run("tests", "--keptn-stage=hardening", "--keptn-tag=v1", "-v")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*collected 5 items"])
    result.assert_outcomes(passed=5)


def _slo_with_unknown_key(project: Project) -> None:
    slo = (project.path / "keptn/hardening/svc/slo.yaml").read_text()
    project.write("keptn/hardening/svc/slo.yaml",
                  slo.replace("  - sli: goroutines\n", "  - sli: goroutines\n    weigth: 2\n"))


def test_spec_warnings_reach_the_warnings_summary(project: Project) -> None:
    _slo_with_unknown_key(project)
    result = project.run("--keptn-stage=hardening", "--keptn-tag=v1", "--collect-only", "-q")
    assert result.ret == 0, result.stdout.str()
    out = result.stdout.str()
    assert "warnings summary" in out
    assert "slo.yaml: objectives[2].weigth: unknown key" in out


def test_filterwarnings_error_turns_a_spec_warning_into_a_usage_error(project: Project) -> None:
    _slo_with_unknown_key(project)
    ini = (project.path / "pytest.ini").read_text()
    project.write("pytest.ini", ini + "filterwarnings =\n    error\n")
    result = project.run("--keptn-stage=hardening", "--keptn-tag=v1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "INTERNALERROR" not in err and "Traceback" not in err
    (line,) = [x for x in err.splitlines() if "pytest-keptn:" in x]
    assert "slo.yaml: objectives[2].weigth: unknown key" in line
    assert project.calls() == []
