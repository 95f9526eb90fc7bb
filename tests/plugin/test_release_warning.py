"""Issue 12 point 2: a warning travels through the release, as helm-service answers
``release.finished`` with the result it was triggered with (Keptn 0.8.7
``helm-service/controller/release_handler.go``): the sequence finishes ``warning``, and so do
``triggeredOn`` selectors and the history later CI jobs consult. ``--keptn-deployer=none``
(nothing to release) ends the same way."""

from __future__ import annotations

import pytest

from pytest_keptn.gate.history import History
from tests.plugin.conftest import Project, hardening_stage

SELECTORS = hardening_stage() + """\
- name: production
  sequences:
    - name: on-pass
      triggeredOn:
        - event: hardening.delivery.finished
          selector: {match: {result: pass}}
      tasks:
        - name: release
    - name: on-warning
      triggeredOn:
        - event: hardening.delivery.finished
          selector: {match: {release.result: warning}}
      tasks:
        - name: release
"""


def _sequence_record(project: Project, tag: str) -> tuple[str, str] | None:
    with History(project.path / "build" / "history.sqlite") as history:
        return history.sequence_result(project="demo", stage="hardening", sequence="delivery",
                                       service="svc", image="example/svc", tag=tag)


@pytest.mark.parametrize("deployer", ["local", "none"])
def test_a_warning_gate_finishes_the_release_and_the_sequence_with_warning(
        project: Project, deployer: str) -> None:
    project.write_shipyard(SELECTORS)
    result = project.run("--keptn-stage=all", "--keptn-tag=v3", f"--keptn-deployer={deployer}",
                         "-v")
    out = result.stdout.str()
    assert result.ret == 0, out
    assert "hardening: warning" in out
    tasks = ("deployment pass, test pass, evaluation warning, release warning" if deployer == "local"
             else "deployment skipped, test pass, evaluation warning, release skipped")
    assert f"hardening.delivery: warning [{tasks}]" in out
    # the selectors see warning, not pass
    assert "production::sequence[on-warning] PASSED" in out
    assert "production::sequence[on-pass] SKIPPED" in out
    assert "hardening.delivery finished with warning, triggeredOn hardening.delivery.finished " \
           "needs result=pass" in out
    # and so does the history a later CI job consults
    assert _sequence_record(project, "v3") == ("warning", "release")


def test_a_later_job_sees_the_warning_in_the_history(project: Project) -> None:
    project.write_shipyard(SELECTORS)
    first = project.run("--keptn-stage=hardening", "--keptn-tag=v3")
    assert first.ret == 0, first.stdout.str()
    later = project.run("--keptn-stage=production", "--keptn-tag=v3", "--keptn-sequence=on-warning",
                        "-v")
    out = later.stdout.str()
    assert later.ret == 0, out
    assert "production::sequence[on-warning] PASSED" in out
    assert "hardening.delivery finished with warning for example/svc:v3 (history)" in out
    refused = project.run("--keptn-stage=production", "--keptn-tag=v3", "--keptn-sequence=on-pass")
    assert refused.ret == 1, refused.stdout.str()
    assert "production.on-pass refused" in refused.stdout.str()


def test_a_passing_gate_still_releases_with_pass(project: Project) -> None:
    result = project.run("--keptn-stage=hardening", "--keptn-tag=v1", "-v")
    assert result.ret == 0, result.stdout.str()
    assert "hardening.delivery: pass [deployment pass, test pass, evaluation pass, release pass]" \
        in result.stdout.str()
    assert _sequence_record(project, "v1") == ("pass", "release")
