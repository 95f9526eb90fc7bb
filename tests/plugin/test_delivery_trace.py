"""Events and history a delivery can be traced by: the build, one Keptn context per delivery
across its stages (also from a separate CI job), and the sequence run as triggeredid."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from tests.plugin.conftest import SLO, Project

STAGES = """\
    - name: hardening
      sequences:
        - name: delivery
          tasks: [{name: deployment, properties: {deploymentstrategy: blue_green_service}},
                  {name: test}, {name: evaluation}, {name: release}]
    - name: production
      sequences:
        - name: delivery
          triggeredOn: [{event: hardening.delivery.finished}]
          tasks: [{name: deployment, properties: {deploymentstrategy: blue_green_service}},
                  {name: test}, {name: evaluation}, {name: release}]
"""


def _by_stage(project: Project) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for event in project.events():
        out.setdefault(str(event["data"]["stage"]), []).append(event)  # type: ignore[index]
    return out


def _setup(project: Project) -> None:
    project.write_shipyard(STAGES)
    project.write("keptn/production/svc/slo.yaml", SLO)


def test_one_context_per_delivery_across_stages(project: Project) -> None:
    _setup(project)
    assert project.run("--keptn-stage=all", "--keptn-tag=v1").ret == 0
    events = _by_stage(project)
    (hard,), (prod,) = events["hardening"], events["production"]
    assert hard["shkeptncontext"] == prod["shkeptncontext"] != hard["id"]
    assert hard["triggeredid"] != prod["triggeredid"]
    for event in (hard, prod):
        assert event["data"]["labels"] == {"image": "example/svc", "tag": "v1"}
        assert event["data"]["configurationChange"] == {"values": {"image": "example/svc:v1"}}
    assert project.run("--keptn-stage=all", "--keptn-tag=v1").ret == 0
    again = _by_stage(project)["hardening"]
    assert len({e["shkeptncontext"] for e in again}) == 2  # a new delivery, a new context


def test_a_later_stage_in_another_job_continues_the_context(project: Project) -> None:
    _setup(project)
    assert project.run("--keptn-stage=hardening", "--keptn-tag=v1").ret == 0
    assert project.run("--keptn-stage=production", "--keptn-tag=v1").ret == 0
    events = _by_stage(project)
    (hard,), (prod,) = events["hardening"], events["production"]
    assert hard["shkeptncontext"] == prod["shkeptncontext"]
    listed = subprocess.run(
        [sys.executable, "-m", "pytest_keptn", "history", "list", "--context",
         str(hard["shkeptncontext"])], cwd=project.path, capture_output=True, text=True,
        timeout=60, check=False)
    assert listed.returncode == 0, listed.stderr
    ids = [line.split()[2] for line in listed.stdout.splitlines()]
    assert ids == [prod["id"], hard["id"]]
    tagged = subprocess.run([sys.executable, "-m", "pytest_keptn", "history", "list", "--tag",
                             "v9"], cwd=project.path, capture_output=True, text=True,
                            timeout=60, check=False)
    assert tagged.returncode == 1 and "no evaluations in" in tagged.stderr
    assert (project.path / "build" / "state" / ".gitignore").read_text().endswith("*\n")
