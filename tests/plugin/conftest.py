"""A small Keptn project for pytester runs, with test plugins standing in for the outside world.

The stand-ins replace the built-in deployer, load driver and SLI provider through the same
``pytest_keptn_*`` hooks a user would implement; each call is appended to ``calls.jsonl`` so a
test can check what happened and how often (also across xdist workers).
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

SHIPYARD = """\
apiVersion: "spec.keptn.sh/0.2.0"
kind: "Shipyard"
metadata:
  name: "shipyard-demo"
spec:
  stages:
    - name: "hardening"
      sequences:
        - name: "delivery"
          tasks:
            - name: "deployment"
              properties:
                deploymentstrategy: "blue_green_service"
            - name: "test"
              properties:
                teststrategy: "performance"
            - name: "evaluation"
            - name: "release"
    - name: "production"
      sequences:
        - name: "delivery"
          triggeredOn:
            - event: "hardening.delivery.finished"
          tasks:
            - name: "deployment"
              properties:
                deploymentstrategy: "blue_green_service"
            - name: "release"
"""

SLO = """\
---
spec_version: '0.1.0'
comparison:
  compare_with: "single_result"
  include_result_with_score: "pass"
  aggregate_function: avg
objectives:
  - sli: response_time
    pass:
      - criteria:
          - "<=1"
    warning:
      - criteria:
          - "<=2"
  - sli: throughput
    pass:
      - criteria:
          - ">=-80%"
  - sli: goroutines
    pass:
      - criteria:
          - "<=100"
total_score:
  pass: "90%"
  warning: "60%"
"""

FAKES = '''
import json, os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pytest_keptn.model import Deployment, LoadResult, SLIResult, Window

HERE = Path(__file__).parent


def record(**entry):
    with open(HERE / "calls.jsonl", "a") as handle:
        handle.write(json.dumps(entry) + "\\n")


def pytest_configure(config):
    # the stand-ins below replace the built-in Prometheus provider (no Prometheus here)
    config.pluginmanager.set_blocked("keptn-sli-prometheus")


def pytest_keptn_deploy(ctx, properties):
    record(task="deploy", stage=ctx.stage, tag=ctx.tag, pid=os.getpid())
    return Deployment(strategy="blue_green_service", url=f"http://127.0.0.1:9/{ctx.stage}/{ctx.tag}")


def pytest_keptn_release(ctx, deployment):
    record(task="release", stage=ctx.stage, tag=ctx.tag)
    return True


def pytest_keptn_rollback(ctx, deployment):
    record(task="rollback", stage=ctx.stage, tag=ctx.tag)
    return True


def pytest_keptn_run_load(ctx, url, properties):
    record(task="load", stage=ctx.stage, tag=ctx.tag, url=url)
    end = datetime.now(UTC)
    return LoadResult(window=Window(end - timedelta(seconds=10), end), requests=100)


def pytest_keptn_get_sli(ctx, indicators, window, deployment, load):
    record(task="get_sli", stage=ctx.stage, tag=ctx.tag, indicators=list(indicators))
    values = json.loads((HERE / "values.json").read_text()).get(ctx.tag, {})
    return [SLIResult(metric=n, value=float(values[n]), query=f"fake_query({n})")
            for n in indicators if n in values]
'''

INI = """\
[pytest]
keptn_root = keptn
keptn_project = demo
keptn_service = svc
keptn_image = example/svc
keptn_history = build/history.sqlite
keptn_events = build/events
keptn_state_dir = build/state
"""

def hardening_stage(evaluation: str = "- name: evaluation", *, test: bool = True,
                    before_release: str = "") -> str:
    """The stage hardening as a ``Project.write_shipyard`` list item: one sequence, delivery, of
    a blue/green deployment, the test task (unless ``test`` is false), ``evaluation``, the
    ``before_release`` tasks and the release (tasks as YAML list items, unindented)."""
    tasks = ["- name: deployment\n  properties: {deploymentstrategy: blue_green_service}"]
    if test:
        tasks.append("- name: test")
    tasks += [evaluation, *([before_release] if before_release else []), "- name: release"]
    body = "\n".join("        " + line for task in tasks for line in task.splitlines())
    return f"- name: hardening\n  sequences:\n    - name: delivery\n      tasks:\n{body}\n"


GOOD = {"response_time": 0.5, "throughput": 100, "goroutines": 10}
WARN = {"response_time": 1.5, "throughput": 100, "goroutines": 10}  # 2.5/3 = 83% -> warning
BAD = {"response_time": 3, "throughput": 5, "goroutines": 500}


class Project:
    def __init__(self, pytester: pytest.Pytester) -> None:
        self.pytester = pytester
        self.path = pytester.path

    def calls(self, task: str | None = None) -> list[dict[str, object]]:
        file = self.path / "calls.jsonl"
        if not file.exists():
            return []
        rows = [json.loads(line) for line in file.read_text().splitlines() if line]
        return [r for r in rows if task is None or r["task"] == task]

    def events(self) -> list[dict[str, object]]:
        folder = self.path / "build" / "events"
        return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.exists() else []

    def run(self, *args: str) -> pytest.RunResult:
        return self.pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=120)

    def write(self, relative: str, text: str) -> Path:
        target = self.path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text))
        return target

    def write_shipyard(self, stages: str) -> Path:
        """``keptn/shipyard.yaml`` of a project named demo with these stages (list items)."""
        head = "apiVersion: spec.keptn.sh/0.2.0\nkind: Shipyard\nmetadata: {name: demo}\n"
        body = textwrap.indent(textwrap.dedent(stages), "    ")
        return self.write("keptn/shipyard.yaml", head + "spec:\n  stages:\n" + body)


@pytest.fixture
def project(pytester: pytest.Pytester) -> Project:
    p = Project(pytester)
    p.write("keptn/shipyard.yaml", SHIPYARD)
    p.write("keptn/hardening/svc/slo.yaml", SLO)
    p.write("conftest.py", FAKES)
    p.write("pytest.ini", INI)
    p.write("values.json", json.dumps({"v1": GOOD, "v2": BAD, "v3": WARN}))
    return p


ProjectFactory = Callable[..., Project]
