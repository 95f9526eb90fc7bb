"""Issue 12 point 1: the evaluation task's own window. shipyard-controller passes the
evaluation task's properties into ``evaluation.triggered``; lighthouse gives ``timeframe``
(and ``start``/``end``) precedence over the test task's window and evaluates
``[now - timeframe, now]``; with neither, it fails ("does not contain evaluation timeframe").
The window used is the one the SLI provider, the event, the history and the report show."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from pytest_keptn.gate.history import History
from tests.plugin.conftest import FAKES, Project, hardening_stage

RECORD_WINDOWS = '''

def pytest_keptn_run_load(ctx, url, properties):
    end = datetime.now(UTC)
    record(task="load", stage=ctx.stage, tag=ctx.tag, url=url,
           start=(end - timedelta(seconds=10)).isoformat(), end=end.isoformat())
    return LoadResult(window=Window(end - timedelta(seconds=10), end), requests=100)


def pytest_keptn_get_sli(ctx, indicators, window, deployment, load):
    record(task="get_sli", stage=ctx.stage, tag=ctx.tag, indicators=list(indicators),
           start=window.start.isoformat(), end=window.end.isoformat())
    values = json.loads((HERE / "values.json").read_text()).get(ctx.tag, {})
    return [SLIResult(metric=n, value=float(values[n]), query=f"fake_query({n})")
            for n in indicators if n in values]
'''


@pytest.fixture
def windows(project: Project) -> Project:
    (project.path / "conftest.py").write_text(FAKES + RECORD_WINDOWS)
    return project


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_the_evaluation_timeframe_wins_over_the_test_window(windows: Project) -> None:
    windows.write_shipyard(hardening_stage("- name: evaluation\n  properties: {timeframe: 2m}"))
    result = windows.run("--keptn-stage=hardening", "--keptn-tag=v1", "--html=report.html",
                         "--self-contained-html")
    out = result.stdout.str()
    assert result.ret == 0, out
    (load,) = windows.calls("load")
    (asked,) = windows.calls("get_sli")
    start, end = _when(str(asked["start"])), _when(str(asked["end"]))
    assert end - start == timedelta(minutes=2)  # [now - 2m, now], not the 10 s load window
    assert end >= _when(str(load["end"])) - timedelta(milliseconds=1)  # "now" is after the load
    (event,) = windows.events()
    ev = event["data"]["evaluation"]  # type: ignore[index]
    assert (_when(ev["timeStart"]), _when(ev["timeEnd"])) == (start, end)
    with History(windows.path / "build" / "history.sqlite") as history:
        (row,) = history.evaluations()
    assert (row.window_start, row.window_end) == (ev["timeStart"], ev["timeEnd"])
    report = (windows.path / "report.html").read_text()
    assert f"{ev['timeStart']} – {ev['timeEnd']}" in report


def test_start_and_end_properties_are_the_window(windows: Project) -> None:
    windows.write_shipyard(hardening_stage(
        "- name: evaluation\n  properties: {start: '2026-01-02T10:00:00.000Z', "
        "end: '2026-01-02T10:05:00.000Z'}"))
    result = windows.run("--keptn-stage=hardening", "--keptn-tag=v1")
    assert result.ret == 0, result.stdout.str()
    (asked,) = windows.calls("get_sli")
    assert (asked["start"], asked["end"]) == ("2026-01-02T10:00:00+00:00", "2026-01-02T10:05:00+00:00")


def test_without_the_properties_the_test_window_is_used(windows: Project) -> None:
    windows.write_shipyard(hardening_stage("- name: evaluation"))
    result = windows.run("--keptn-stage=hardening", "--keptn-tag=v1")
    assert result.ret == 0, result.stdout.str()
    (load,) = windows.calls("load")
    (asked,) = windows.calls("get_sli")
    assert (_when(str(asked["start"])), _when(str(asked["end"]))) == \
        (_when(str(load["start"])), _when(str(load["end"])))


@pytest.mark.parametrize("compat", [(), ("--keptn-compat=0.8.7",)])
def test_no_test_task_and_no_timeframe_fails_the_evaluation_as_keptn(
        windows: Project, compat: tuple[str, ...]) -> None:
    windows.write_shipyard(hardening_stage("- name: evaluation", test=False))
    result = windows.run("--keptn-stage=hardening", "--keptn-tag=v1", *compat)
    out = result.stdout.str()
    assert result.ret == 1, out
    assert "evaluation.triggered event does not contain evaluation timeframe" in out
    assert windows.calls("get_sli") == []  # nothing scored over an invented window
    assert [c["task"] for c in windows.calls()] == ["deploy", "rollback"]
    assert "Traceback" not in out and "INTERNALERROR" not in out


def test_a_bad_timeframe_property_is_a_usage_error_naming_the_task(windows: Project) -> None:
    windows.write_shipyard(hardening_stage("- name: evaluation\n  properties: {timeframe: 2 minutes}"))
    result = windows.run("--keptn-stage=hardening", "--keptn-tag=v1")
    err = result.stderr.str() + result.stdout.str()
    assert result.ret == 4, err
    assert "shipyard.yaml" in err and "timeframe" in err
    assert windows.calls() == []


# -- $DURATION_SECONDS with the real Prometheus provider ------------------------------------

PROMQL_SLI = """\
spec_version: "1.0"
indicators:
  window_points: count_over_time(vector(1)[$DURATION_SECONDS:30s])
"""

POINTS_SLO = """\
objectives:
  - sli: window_points
    pass: [{criteria: ["<=100"]}]
total_score: {pass: "90%"}
"""


@pytest.fixture
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if shutil.which("prometheus") is None:
        pytest.skip("prometheus binary not installed")
    from pytest_keptn.prometheus.server import EmbeddedPrometheus

    server = EmbeddedPrometheus(tmp_path_factory.mktemp("prom")).start()
    try:
        yield str(server.url)
    finally:
        server.stop()


@pytest.mark.slow
def test_duration_seconds_is_the_timeframe(prometheus: str, project: Project) -> None:
    fakes = FAKES.replace('config.pluginmanager.set_blocked("keptn-sli-prometheus")', "pass")
    (project.path / "conftest.py").write_text(fakes.replace("def pytest_keptn_get_sli(",
                                                            "def _not_a_hook("))
    project.write("keptn/hardening/svc/slo.yaml", POINTS_SLO)
    project.write("keptn/hardening/svc/prometheus/sli.yaml", PROMQL_SLI)
    project.write_shipyard(hardening_stage("- name: evaluation\n  properties: {timeframe: 2m}"))
    result = project.run("--keptn-stage=hardening", "--keptn-tag=v1",
                         f"--keptn-prometheus-url={prometheus}", "--junitxml=junit.xml")
    out = result.stdout.str()
    assert result.ret == 0, out
    case = next(c for c in ET.parse(Path(project.path / "junit.xml")).iter("testcase")
                if c.get("name") == "window_points")
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["keptn_query"] == "count_over_time(vector(1)[120s:30s])"
    assert json.loads(str(props["keptn_value"])) == 4  # (end - 120 s, end] at 30 s steps
