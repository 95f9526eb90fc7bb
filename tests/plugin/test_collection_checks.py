"""Setup mistakes found before anything is deployed, through real pytest sessions: an objective
no SLI provider answers (issue 13), a Dynatrace query (issue 19), an SLO filter value that
cannot be pasted (issue 12 point 5) and a deployment strategy Keptn does not know (point 8)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.plugin.conftest import Project
from tests.security.test_hostile_input import (  # noqa: F401
    KEPTN_TIME,
    _RecordingPrometheus,
    _sub_queries,
    recording_prometheus,
)

# A provider that says which names it serves; with it (and no provider that does not say),
# every objective is checked.
DECLARING = '''
from pytest_keptn.model import SLIResult

def pytest_keptn_sli_names(stage, service, indicators):
    return ["goroutines"]

def pytest_keptn_get_sli(ctx, indicators, window, deployment, load):
    return [SLIResult(metric=n, value=1.0) for n in indicators if n == "goroutines"]
'''

SLO = """\
spec_version: '0.1.0'
objectives:
  - sli: {first}
    pass: [{{criteria: ["<=1"]}}]
  - sli: goroutines
  - sli: locust_p95_ms
  - sli: response_time_p95
  - sli: latency
total_score: {{pass: "90%"}}
"""
SLI = "spec_version: '1.0'\nindicators:\n  latency: '{query}'\n"


def checked(project: Project, first: str, query: str = "x") -> pytest.RunResult:
    project.write("conftest.py", DECLARING)
    project.write("keptn/hardening/svc/slo.yaml", SLO.format(first=first))
    project.write("keptn/hardening/svc/prometheus/sli.yaml", SLI.format(query=query))
    return project.run("--keptn-stage=hardening", "--keptn-tag=v1", "--keptn-deployer=none",
                       "--collect-only", "-q")


def one_line(result: pytest.RunResult) -> str:
    err = result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str() + err
    lines = [line for line in err.splitlines() if "pytest-keptn:" in line]
    assert len(lines) == 1, err
    assert "Traceback" not in err and "INTERNALERROR" not in err
    return lines[0]


def test_every_kind_of_known_sli_collects(project: Project) -> None:
    # sli.yaml, a name a plugin declared, a Locust SLI and a built-in Prometheus SLI
    result = checked(project, "latency")
    assert result.ret == 0, result.stdout.str() + result.stderr.str()


def test_an_unknown_sli_names_the_slo_the_objective_and_the_closest_names(project: Project) -> None:
    line = one_line(checked(project, "goroutine"))
    assert line.endswith(
        "keptn/hardening/svc/slo.yaml: objectives[0].sli: objective 'goroutine' of stage "
        "'hardening': SLI 'goroutine' is neither in sli.yaml, nor a built-in or Locust SLI, nor "
        "declared by a plugin; closest known: goroutines"), line
    assert project.calls() == []


def test_a_provider_that_declares_nothing_keeps_working(project: Project) -> None:
    # the fixture's stand-in provider (conftest FAKES) implements pytest_keptn_get_sli only
    project.write("keptn/hardening/svc/slo.yaml", SLO.format(first="anything_at_all"))
    result = project.run("--keptn-stage=hardening", "--keptn-tag=v1", "--collect-only", "-q")
    assert result.ret == 0, result.stdout.str() + result.stderr.str()


def test_a_dynatrace_query_says_prometheus_is_the_builtin_provider(project: Project) -> None:
    query = "metricSelector=builtin:service.response.time:merge(0):percentile(95)" \
            "&entitySelector=type(SERVICE),tag(keptn_service:$SERVICE)"
    line = one_line(checked(project, "latency", query))
    assert "slo.yaml: objectives[0].sli: objective 'latency' of stage 'hardening': SLI " \
           "'latency' has a Dynatrace query; Prometheus is the built-in SLI provider, and a " \
           "plugin implementing pytest_keptn_get_sli" in line, line
    # a plugin that declares the name serves it: no error
    project.write("conftest.py", DECLARING.replace('["goroutines"]', '["goroutines", "latency"]'))
    result = project.run("--keptn-stage=hardening", "--keptn-tag=v1", "--keptn-deployer=none",
                         "--collect-only", "-q")
    assert result.ret == 0, result.stderr.str()


@pytest.mark.parametrize(("value", "why"), [
    ("a\\nb", 'would end the "..." string literal it stands in (it contains a newline)'),
    ("ends\\\\", 'would escape the closing quote of the "..." string literal'),
])
def test_a_filter_value_that_would_end_its_literal_is_refused(project: Project, value: str,
                                                               why: str) -> None:
    # value is YAML double-quoted text: a\nb is a newline, ends\\ one trailing backslash;
    # the error shows the value as repr() writes it, which is that same text
    project.write("keptn/hardening/svc/prometheus/sli.yaml",
                  "indicators:\n  response_time: 'x{handler=~\"$handler\"}'\n")
    slo = (project.path / "keptn/hardening/svc/slo.yaml").read_text().removeprefix("---\n")
    project.write("keptn/hardening/svc/slo.yaml", f'filter:\n  handler: "{value}"\n' + slo)
    line = one_line(project.run("--keptn-stage=hardening", "--keptn-tag=v1"))
    assert "keptn/hardening/svc/slo.yaml: filter.handler: SLO filter value" in line, line
    assert why in line, line
    assert "(in the query of SLI 'response_time')" in line and value in line, line
    assert project.calls() == []


def test_filter_values_reach_prometheus_verbatim(pytester: pytest.Pytester,
                                                request: pytest.FixtureRequest) -> None:
    recorder: _RecordingPrometheus = request.getfixturevalue("recording_prometheus")
    project = Project(pytester)
    project.write("keptn/shipyard.yaml", "apiVersion: spec.keptn.sh/0.2.0\nkind: Shipyard\n"
                  "metadata: {name: demo}\nspec:\n  stages:\n    - name: hardening\n"
                  "      sequences:\n        - name: delivery\n          tasks:\n"
                  "            - name: evaluation\n")
    # written for Keptn: a regex escape, and a filter used outside any literal
    project.write("keptn/hardening/svc/slo.yaml",
                  "filter:\n  handler: 'Items\\.get'\n  groupby: 'handler'\n"
                  "objectives:\n  - sli: latency\n  - sli: throughput\n"
                  "total_score: {pass: '90%'}\n")
    project.write("keptn/hardening/svc/prometheus/sli.yaml",
                  "indicators:\n  latency: 'sum by ($GROUPBY) (x{handler=~\"$handler\"})'\n")
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    result = project.run(
        "--keptn-stage=hardening", "--keptn-deployer=none", "--keptn-service=svc",
        f"--keptn-prometheus-url={recorder.url}",
        f"--keptn-start={(end - timedelta(minutes=1)).strftime(KEPTN_TIME)}",
        f"--keptn-end={end.strftime(KEPTN_TIME)}", "--keptn-state-dir=state",
        "--keptn-history=h.sqlite")
    out = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in out and "INTERNALERROR" not in out
    sent = _sub_queries(recorder.queries)
    assert 'sum by (handler) (x{handler=~"Items\\.get"})' in sent, sent
    throughput = next(q for q in sent if "http_requests_total" in q)
    assert "handler='Items\\.get'" in throughput, throughput


def test_an_unknown_deployment_strategy_names_the_shipyard_task(project: Project) -> None:
    text = (project.path / "keptn/shipyard.yaml").read_text()
    project.write("keptn/shipyard.yaml", text.replace('deploymentstrategy: "blue_green_service"',
                                                      'deploymentstrategy: "blue_green"', 1))
    line = one_line(project.run("--keptn-stage=hardening", "--keptn-tag=v1"))
    assert ("shipyard.yaml: spec.stages[0].sequences[0].tasks[0].properties.deploymentstrategy: "
            "the deployment task of hardening.delivery has deploymentstrategy 'blue_green', "
            "which Keptn does not know (expected one of direct, duplicate, blue_green_service, "
            "user_managed)") in line, line
    assert project.calls() == []
