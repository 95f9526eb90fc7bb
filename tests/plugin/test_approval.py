"""Issue 12 point 3: approval as Keptn 0.8.7's approval-service answers it
(``approval-service/pkg/handler/approval_triggered_event_handler.go``): automatic only when
the property for the incoming result is explicitly ``automatic``, an incoming ``fail`` is
answered ``fail``, anything else waits for a person. A waiting sequence is not a failure: the
session exits 0 and says how to answer; the history keeps the pending approval, and a later
job (``--keptn-approve`` / ``--keptn-approve=reject``) continues exactly where it waited."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_keptn.gate.history import History
from tests.plugin.conftest import Project, hardening_stage

APPROVAL_BEFORE_RELEASE = hardening_stage(before_release="- name: approval\n  properties: %s")

PRODUCTION_APPROVAL_FIRST = hardening_stage() + """\
- name: production
  sequences:
    - name: delivery
      triggeredOn:
        - event: hardening.delivery.finished
      tasks:
        - name: approval
          properties: {pass: automatic, warning: manual}
        - name: deployment
          properties: {deploymentstrategy: blue_green_service}
        - name: release
"""


def _history(project: Project) -> History:
    return History(project.path / "build" / "history.sqlite")


def _pending(project: Project, stage: str, tag: str) -> Any:
    with _history(project) as history:
        return history.pending_approval(project="demo", stage=stage, service="svc",
                                        image="example/svc", tag=tag)


def _tasks(project: Project) -> list[str]:
    return [f"{c['task']}:{c['stage']}" for c in project.calls()]


def _approval_events(project: Project) -> list[dict[str, Any]]:
    return [e for e in project.events() if e.get("type") == "sh.keptn.event.approval.finished"]


def test_automatic_for_the_incoming_result_approves(project: Project) -> None:
    project.write_shipyard(APPROVAL_BEFORE_RELEASE % "{pass: automatic, warning: manual}")
    result = project.run("--keptn-stage=hardening", "--keptn-tag=v1", "-v")
    assert result.ret == 0, result.stdout.str()
    assert "approval pass" in result.stdout.str()
    assert _tasks(project)[-1] == "release:hardening"


def test_manual_waits_and_a_later_job_approves_where_it_waited(project: Project) -> None:
    project.write_shipyard(APPROVAL_BEFORE_RELEASE % "{pass: automatic, warning: manual}")
    first = project.run("--keptn-stage=hardening", "--keptn-tag=v3", "-v")
    out = first.stdout.str()
    assert first.ret == 0, out  # nothing was promoted, nothing failed
    assert "hardening.delivery: waiting for approval" in out
    assert "pytest --keptn-stage=hardening --keptn-tag=v3 --keptn-approve" in out
    assert "sequence[delivery] SKIPPED" in out
    assert _tasks(project) == ["deploy:hardening", "load:hardening", "get_sli:hardening"]
    pending = _pending(project, "hardening", "v3")
    assert pending is not None and pending.sequence == "delivery"

    second = project.run("--keptn-stage=hardening", "--keptn-tag=v3", "--keptn-approve",
                         "--keptn-approver=alice", "-v")
    out = second.stdout.str()
    assert second.ret == 0, out
    assert "approved by alice" in out
    # no second deployment, load or evaluation: only what came after the approval
    assert _tasks(project) == ["deploy:hardening", "load:hardening", "get_sli:hardening",
                               "release:hardening"]
    assert _pending(project, "hardening", "v3") is None
    with _history(project) as history:
        (answered,) = history.approvals("demo")
        assert (answered.decision, answered.who) == ("approved", "alice")
        assert history.sequence_result(project="demo", stage="hardening", sequence="delivery",
                                       service="svc", image="example/svc", tag="v3") \
            == ("pass", "release")
    (event,) = _approval_events(project)
    assert event["data"]["result"] == "pass"
    assert "alice" in event["data"]["message"]


def test_reject_finishes_the_sequence_fail(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    project.write_shipyard(APPROVAL_BEFORE_RELEASE % "{pass: automatic, warning: manual}")
    assert project.run("--keptn-stage=hardening", "--keptn-tag=v3").ret == 0
    monkeypatch.setenv("GITHUB_ACTOR", "bob")  # the CI's actor answers when none is named
    rejected = project.run("--keptn-stage=hardening", "--keptn-tag=v3", "--keptn-approve=reject")
    out = rejected.stdout.str()
    assert rejected.ret == 1, out
    assert "rejected by bob" in out
    assert "release:hardening" not in _tasks(project)
    assert _tasks(project)[-1] == "rollback:hardening"  # the waiting canary is taken out
    with _history(project) as history:
        (answered,) = history.approvals("demo")
        assert (answered.decision, answered.who) == ("rejected", "bob")
        assert history.sequence_result(project="demo", stage="hardening", sequence="delivery",
                                       service="svc", image="example/svc", tag="v3") \
            == ("fail", "approval")
    (event,) = _approval_events(project)
    assert event["data"]["result"] == "fail"


@pytest.mark.parametrize("compat", [(), ("--keptn-compat=0.8.7",)])
def test_an_approval_without_properties_waits_as_keptn_does(project: Project,
                                                           compat: tuple[str, ...]) -> None:
    project.write_shipyard(APPROVAL_BEFORE_RELEASE % "{}")
    result = project.run("--keptn-stage=hardening", "--keptn-tag=v1", *compat)
    assert result.ret == 0, result.stdout.str()
    assert "waiting for approval" in result.stdout.str()
    assert "release:hardening" not in _tasks(project)


def test_approve_with_nothing_waiting_is_a_usage_error(project: Project) -> None:
    project.write_shipyard(APPROVAL_BEFORE_RELEASE % "{pass: automatic, warning: manual}")
    result = project.run("--keptn-stage=hardening", "--keptn-tag=v9", "--keptn-approve")
    err = result.stderr.str() + result.stdout.str()
    assert result.ret == 4, err
    assert "--keptn-approve" in err and "example/svc:v9" in err
    assert project.calls() == []


def test_production_gated_by_a_later_job(project: Project) -> None:
    """Keptn's production stage asks first: the incoming result is hardening's warning."""
    project.write_shipyard(PRODUCTION_APPROVAL_FIRST)
    assert project.run("--keptn-stage=hardening", "--keptn-tag=v3").ret == 0
    waiting = project.run("--keptn-stage=production", "--keptn-tag=v3")
    assert waiting.ret == 0, waiting.stdout.str()
    assert "production.delivery: waiting for approval" in waiting.stdout.str()
    assert "deploy:production" not in _tasks(project)
    approved = project.run("--keptn-stage=production", "--keptn-tag=v3", "--keptn-approve",
                           "--keptn-approver=carol")
    assert approved.ret == 0, approved.stdout.str()
    assert _tasks(project)[-2:] == ["deploy:production", "release:production"]


def test_an_incoming_fail_is_answered_fail(project: Project) -> None:
    project.write_shipyard("""\
        - name: hardening
          sequences:
            - name: delivery
              tasks:
                - name: deployment
                  properties: {deploymentstrategy: blue_green_service}
                - name: test
                - name: evaluation
                - name: release
            - name: promote-anyway
              triggeredOn:
                - event: hardening.delivery.finished
                  selector: {match: {result: fail}}
              tasks:
                - name: approval
                  properties: {pass: automatic, warning: automatic}
                - name: release
    """)
    result = project.run("--keptn-stage=hardening", "--keptn-tag=v2", "-v")
    out = result.stdout.str()
    assert "hardening.promote-anyway: fail [approval fail]" in out
    assert "release:hardening" not in _tasks(project)


def test_an_approval_answered_with_the_cli_is_continued(project: Project) -> None:
    import subprocess
    import sys

    project.write_shipyard(APPROVAL_BEFORE_RELEASE % "{pass: automatic, warning: manual}")
    assert project.run("--keptn-stage=hardening", "--keptn-tag=v3").ret == 0
    pending = _pending(project, "hardening", "v3")
    answered = subprocess.run(
        [sys.executable, "-m", "pytest_keptn", "approve", "--history",
         str(project.path / "build" / "history.sqlite"), pending.id, "--who", "dave"],
        capture_output=True, text=True, timeout=60, cwd=project.path)
    assert answered.returncode == 0, answered.stderr
    result = project.run("--keptn-stage=hardening", "--keptn-tag=v3", "--keptn-approve", "-v")
    assert result.ret == 0, result.stdout.str()
    assert "approved by dave" in result.stdout.str()
    assert _tasks(project)[-1] == "release:hardening"
    again = project.run("--keptn-stage=hardening", "--keptn-tag=v3", "--keptn-approve")
    assert again.ret == 4  # continued once: nothing waits any more
