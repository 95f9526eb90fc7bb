"""pytester runs of whole sessions: stages, ordering, selection, triggers and exit codes."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from tests.plugin.conftest import Project


def test_plugin_is_off_without_a_stage(project: Project) -> None:
    project.write("test_plain.py", "def test_one():\n    assert True\n")
    result = project.run("-v")
    result.assert_outcomes(passed=1)
    assert "Keptn" not in result.stdout.str()
    assert project.calls() == []


def test_hardening_passes_and_releases(project: Project) -> None:
    result = project.run("--keptn-stage=hardening", "--keptn-tag=v1", "-v")
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines([
        "*hardening::response_time PASSED*",
        "*hardening::throughput PASSED*",
        "*hardening::goroutines PASSED*",
        "*hardening::sequence?delivery? PASSED*",
        "*hardening: pass, score 100.0% >= 90% (pass)*",
    ])
    assert [c["task"] for c in project.calls()] == ["deploy", "load", "get_sli", "release"]
    # production is not part of this run
    assert "production" not in result.stdout.str().split("Keptn quality gates")[0].split("collected")[1]


def test_all_stages_in_shipyard_order(project: Project) -> None:
    result = project.run("--keptn-stage=all", "--keptn-tag=v1", "-v")
    assert result.ret == 0, result.stdout.str()
    out = result.stdout.str()
    assert out.index("hardening::sequence[delivery] PASSED") < out.index("production::sequence[delivery] PASSED")
    assert [(c["task"], c["stage"]) for c in project.calls()] == [
        ("deploy", "hardening"), ("load", "hardening"), ("get_sli", "hardening"),
        ("release", "hardening"), ("deploy", "production"), ("release", "production"),
    ]


def test_failed_gate_rolls_back_and_stops_the_chain(project: Project) -> None:
    result = project.run("--keptn-stage=all", "--keptn-tag=v2", "-v")
    assert result.ret == 1
    out = result.stdout.str()
    assert "hardening: fail, score 33.3% < 60% (warning)" in out
    assert "production::sequence[delivery] SKIPPED" in out
    assert "hardening.delivery finished with fail" in out
    tasks = [(c["task"], c["stage"]) for c in project.calls()]
    assert ("rollback", "hardening") in tasks
    assert ("release", "hardening") not in tasks
    assert all(stage == "hardening" for _, stage in tasks)


def test_failing_objective_explains_itself(project: Project) -> None:
    result = project.run("--keptn-stage=hardening", "--keptn-tag=v2")
    out = result.stdout.str()
    assert "hardening: objective goroutines failed" in out
    assert "value:    500" in out
    assert "<=100 -> target 100 VIOLATED" in out
    assert "query:    fake_query(goroutines)" in out
    assert "Traceback" not in out and "INTERNALERROR" not in out


def test_warning_gate_exit_codes(project: Project) -> None:
    result = project.run("--keptn-stage=hardening", "--keptn-tag=v3", "-v")
    assert result.ret == 0, result.stdout.str()
    assert "response_time WARNING" in result.stdout.str()
    assert "hardening: warning" in result.stdout.str()
    strict = project.run("--keptn-stage=hardening", "--keptn-tag=v3", "--keptn-fail-on-warning")
    assert strict.ret == 1


def test_objective_failing_inside_a_passing_gate_exits_zero(project: Project) -> None:
    project.write("keptn/hardening/svc/slo.yaml", """\
        objectives:
          - sli: response_time
            pass: [{criteria: ["<=1"]}]
          - sli: throughput
            pass: [{criteria: [">=1"]}]
            weight: 9
          - sli: goroutines
            pass: [{criteria: ["<=5"]}]
        total_score: {pass: "80%", warning: "50%"}
    """)
    result = project.run("--keptn-stage=hardening", "--keptn-tag=v1")
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=3, failed=1)
    assert "an objective failed inside a passing gate" in result.stdout.str()


def test_k_selects_one_objective_but_the_gate_uses_all(project: Project) -> None:
    result = project.run("--keptn-stage=hardening", "--keptn-tag=v1", "-k", "goroutines", "-v")
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=1, deselected=3)
    calls = project.calls()
    assert [c["task"] for c in calls] == ["deploy", "load", "get_sli", "release"]
    assert calls[2]["indicators"] == ["response_time", "throughput", "goroutines"]
    (event,) = project.events()
    rows = event["data"]["evaluation"]["indicatorResults"]
    assert [r["value"]["metric"] for r in rows] == ["response_time", "throughput", "goroutines"]


def test_user_tests_run_inside_the_test_task(project: Project) -> None:
    project.write("test_canary.py", """\
        import json, pathlib
        import pytest

        @pytest.mark.keptn_stage("hardening")
        def test_canary_answers(keptn_service_url):
            calls = [json.loads(l) for l in pathlib.Path("calls.jsonl").read_text().splitlines()]
            assert [c["task"] for c in calls] == ["deploy"]   # deployed, not yet loaded
            assert keptn_service_url.endswith("/hardening/v1")

        def test_unrelated():
            pass
    """)
    result = project.run("--keptn-stage=hardening", "--keptn-tag=v1", "-v")
    assert result.ret == 0, result.stdout.str()
    out = result.stdout.str()
    assert out.index("test_canary_answers PASSED") < out.index("hardening::response_time PASSED")


def test_failing_user_test_stops_the_sequence(project: Project) -> None:
    project.write("test_canary.py", """\
        import pytest

        @pytest.mark.keptn_stage("hardening")
        def test_canary_broken(keptn_service_url):
            assert False, "canary is broken"
    """)
    result = project.run("--keptn-stage=all", "--keptn-tag=v1", "-v")
    assert result.ret == 1
    out = result.stdout.str()
    assert "test task failed: 1 test(s) failed: test_canary_broken" in out
    tasks = [c["task"] for c in project.calls()]
    assert "get_sli" not in tasks and "release" not in tasks
    assert "rollback" in tasks
    assert "production::sequence[delivery] SKIPPED" in out


def test_production_refused_for_a_build_that_failed_hardening(project: Project) -> None:
    assert project.run("--keptn-stage=hardening", "--keptn-tag=v2").ret == 1
    refused = project.run("--keptn-stage=production", "--keptn-tag=v2")
    assert refused.ret == 1
    refused.stdout.fnmatch_lines(["*production.delivery refused: not triggered: hardening.delivery "
                                  "finished with fail for example/svc:v2 (history)*"])
    unknown = project.run("--keptn-stage=production", "--keptn-tag=v9")
    assert unknown.ret == 1
    assert "no record that example/svc:v9 finished hardening.delivery" in unknown.stdout.str()
    assert project.run("--keptn-stage=hardening", "--keptn-tag=v1").ret == 0
    allowed = project.run("--keptn-stage=production", "--keptn-tag=v1")
    assert allowed.ret == 0, allowed.stdout.str()
    assert [c["stage"] for c in project.calls("release")] == ["hardening", "production"]


def test_task_selector_read_from_history_in_a_separate_job(project: Project) -> None:
    """``match: {release.result: pass}`` from a separate CI job: the history keeps the task a
    sequence ended with, so the selector can be decided without the earlier session."""
    project.write_shipyard("""\
            - name: hardening
              sequences:
                - name: delivery
                  tasks: [{name: deployment, properties: {deploymentstrategy: blue_green_service}}, {name: test}, {name: evaluation}, {name: release}]
            - name: production
              sequences:
                - name: delivery
                  triggeredOn:
                    - event: hardening.delivery.finished
                      selector:
                        match: {release.result: pass}
                  tasks: [{name: deployment, properties: {deploymentstrategy: blue_green_service}}, {name: release}]
    """)
    assert project.run("--keptn-stage=hardening", "--keptn-tag=v1").ret == 0
    allowed = project.run("--keptn-stage=production", "--keptn-tag=v1")
    assert allowed.ret == 0, allowed.stdout.str()
    assert "triggered: hardening.delivery finished with pass for example/svc:v1 (history)" \
        in allowed.stdout.str()
    assert project.run("--keptn-stage=hardening", "--keptn-tag=v2").ret == 1
    refused = project.run("--keptn-stage=production", "--keptn-tag=v2")
    assert refused.ret == 1
    assert "needs release.result=pass" in refused.stdout.str()
    assert [c["stage"] for c in project.calls("release")] == ["hardening", "production"]


def test_rollback_sequence_triggered_on_failure(project: Project) -> None:
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
                - name: rollback
                  triggeredOn:
                    - event: hardening.delivery.finished
                      selector:
                        match: {result: fail}
                  tasks:
                    - name: rollback
    """)
    bad = project.run("--keptn-stage=hardening", "--keptn-tag=v2", "-v")
    assert bad.ret == 1
    bad.stdout.fnmatch_lines(["*hardening::sequence?rollback? PASSED*"])
    assert [c["task"] for c in project.calls()].count("rollback") == 1
    (project.path / "calls.jsonl").unlink()
    good = project.run("--keptn-stage=hardening", "--keptn-tag=v1", "-v")
    assert good.ret == 0
    good.stdout.fnmatch_lines(["*hardening::sequence?rollback? SKIPPED*"])
    assert "rollback" not in [c["task"] for c in project.calls()]


def test_junit_properties_and_events(project: Project) -> None:
    result = project.run("--keptn-stage=hardening", "--keptn-tag=v1", "--junitxml=junit.xml")
    assert result.ret == 0
    tree = ET.parse(project.path / "junit.xml")
    cases = {c.get("name"): c for c in tree.iter("testcase")}
    props = {p.get("name"): p.get("value") for p in cases["goroutines"].iter("property")}
    assert props["keptn_value"] == "10.0"
    assert props["keptn_status"] == "pass"
    assert props["keptn_score"] == "1.0" or props["keptn_score"] == "1"
    assert json.loads(props["keptn_pass_targets"]) == [
        {"criteria": "<=100", "targetValue": 100, "violated": False}]
    (event,) = project.events()
    assert event["type"] == "sh.keptn.event.evaluation.finished"
    assert event["data"]["result"] == "pass"
    assert event["data"]["evaluation"]["score"] == 100


def test_relative_criterion_compares_with_history(project: Project) -> None:
    assert project.run("--keptn-stage=hardening", "--keptn-tag=v1").ret == 0
    values = json.loads((project.path / "values.json").read_text())
    values["v4"] = dict(values["v1"], throughput=10)  # -90 % against the last pass
    (project.path / "values.json").write_text(json.dumps(values))
    result = project.run("--keptn-stage=hardening", "--keptn-tag=v4")
    assert result.ret == 0  # 2 of 3: a warning gate
    assert "hardening: warning, score 66.7%" in result.stdout.str()
    assert ">=-80% -> target 20 VIOLATED" in result.stdout.str()
    assert "from 1 earlier evaluation(s) (single_result, include_result_with_score=pass)" in result.stdout.str()


def test_pinned_baseline_replaces_the_comparison(project: Project) -> None:
    """--keptn-baseline pins relative criteria to a chosen evaluation instead of the last pass."""
    values = json.loads((project.path / "values.json").read_text())
    values["v5"] = dict(values["v1"], throughput=1000)
    values["v6"] = dict(values["v1"], throughput=150)  # -85 % of v5, +50 % of v1
    (project.path / "values.json").write_text(json.dumps(values))
    assert project.run("--keptn-stage=hardening", "--keptn-tag=v1").ret == 0
    (first,) = project.events()
    pinned = str(first["id"])
    assert project.run("--keptn-stage=hardening", "--keptn-tag=v5").ret == 0
    last = project.run("--keptn-stage=hardening", "--keptn-tag=v6")
    assert "throughput     150    ✗ >=-80% (target 200)  -                 fail" in last.stdout.str()
    assert "hardening: warning, score 66.7%" in last.stdout.str()
    result = project.run("--keptn-stage=hardening", "--keptn-tag=v6", f"--keptn-baseline={pinned}")
    out = result.stdout.str()
    assert result.ret == 0, out
    assert "throughput     150    ✓ >=-80% (target 20)  -                 pass" in out, out
    newest = max(project.events(), key=lambda e: str(e["time"]))
    assert newest["data"]["evaluation"]["comparedEvents"] == [pinned]


def test_pinned_baseline_must_exist(project: Project) -> None:
    assert project.run("--keptn-stage=hardening", "--keptn-tag=v1").ret == 0
    result = project.run("--keptn-stage=hardening", "--keptn-tag=v1", "--keptn-baseline=nope")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "no evaluation with id 'nope' in the history" in err and "--keptn-baseline" in err, err
    assert "Traceback" not in err


@pytest.mark.slow
def test_xdist_runs_each_stage_once(project: Project) -> None:
    project.write("test_more.py", "".join(f"def test_{i}():\n    pass\n" for i in range(6)))
    serial = project.run("--keptn-stage=all", "--keptn-tag=v2")
    serial_tasks = sorted((c["task"], c["stage"]) for c in project.calls())
    (project.path / "calls.jsonl").unlink()
    project.write("build/.keep", "")
    import shutil
    shutil.rmtree(project.path / "build")
    parallel = project.run("--keptn-stage=all", "--keptn-tag=v2", "-n", "2")
    assert parallel.ret == serial.ret == 1
    assert sorted((c["task"], c["stage"]) for c in project.calls()) == serial_tasks
    assert len(project.calls("deploy")) == 1
    assert "RESULT: fail" in parallel.stdout.str()


def test_a_hook_that_calls_sys_exit_fails_its_task(project: Project) -> None:
    """A hook's SystemExit is a failed task (rolled back, recorded), not an INTERNALERROR and
    not a session that passes because the evaluation never happened."""
    project.write("plug_exit.py", """\
        import sys
        import pytest

        @pytest.hookimpl(tryfirst=True)
        def pytest_keptn_get_sli(ctx, indicators, window, deployment, load):
            sys.exit(3)
    """)
    result = project.run("--keptn-stage=hardening", "--keptn-tag=v1", "-p", "plug_exit")
    out = result.stdout.str()
    assert result.ret == 1, out
    assert "evaluation task failed: internal error in the evaluation task: SystemExit: 3" in out
    assert "INTERNALERROR" not in out and "Traceback" not in out
    assert [c["task"] for c in project.calls()] == ["deploy", "load", "rollback"]


def test_unknown_stage_is_a_usage_error(project: Project) -> None:
    result = project.run("--keptn-stage=staging")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "unknown stage 'staging' (stages: hardening, production)" in result.stderr.str()
    assert "Traceback" not in result.stderr.str()


def test_missing_slo_for_an_evaluating_stage_is_an_error(project: Project) -> None:
    (project.path / "keptn/hardening/svc/slo.yaml").unlink()
    result = project.run("--keptn-stage=hardening")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "has an evaluation task but no slo.yaml" in result.stderr.str()


def test_reconciliation_fails_when_the_slis_do_not_see_the_load(project: Project) -> None:
    project.write("keptn/hardening/svc/prometheus/sli.yaml", """\
        spec_version: '1.0'
        indicators:
          keptn_request_count: sum(increase(http_requests_total{job="$SERVICE-$PROJECT-$STAGE-canary"}[$DURATION_SECONDS]))
    """)
    values = json.loads((project.path / "values.json").read_text())
    values["v1"]["keptn_request_count"] = 97  # the fake load sent 100
    values["v5"] = dict(values["v1"], keptn_request_count=3)
    (project.path / "values.json").write_text(json.dumps(values))
    assert project.run("--keptn-stage=hardening", "--keptn-tag=v1").ret == 0
    result = project.run("--keptn-stage=hardening", "--keptn-tag=v5")
    assert result.ret == 1
    assert ("the SLIs do not see the load: Locust sent 100 requests, Prometheus counted 3"
            in result.stdout.str())
    assert project.calls("rollback")[-1]["tag"] == "v5"


def test_info_objective_is_shown_and_never_fails(project: Project) -> None:
    project.write("keptn/hardening/svc/slo.yaml", """\
        objectives:
          - sli: response_time
            pass: [{criteria: ["<=1"]}]
          - sli: goroutines
            displayName: Goroutines (info only)
        total_score: {pass: "90%"}
    """)
    result = project.run("--keptn-stage=hardening", "--keptn-tag=v2", "-v")  # goroutines=500
    out = result.stdout.str()
    assert "hardening::goroutines INFO" in out
    assert "hardening::response_time FAILED" in out
    assert result.ret == 1
    (event,) = project.events()
    rows = {r["value"]["metric"]: r for r in event["data"]["evaluation"]["indicatorResults"]}
    assert rows["goroutines"]["status"] == "info" and rows["goroutines"]["score"] == 0


def test_keptn_prometheus_fixture_runs_a_real_prometheus(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_prom="""
        import httpx

        def test_ready(keptn_prometheus):
            assert httpx.get(keptn_prometheus.url + "/-/ready", timeout=5).status_code == 200
            keptn_prometheus.register("demo-job", "127.0.0.1:9", {"team": "a"})
            assert "demo-job" in keptn_prometheus.jobs
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=60)
    result.assert_outcomes(passed=1)


def test_markdown_summary_goes_to_the_job_page(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    summary = project.path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert project.run("--keptn-stage=hardening", "--keptn-tag=v2").ret == 1
    text = summary.read_text()
    assert "hardening: fail, score 33.3% < 60% (warning)" in text
    assert "goroutines" in text
    monkeypatch.delenv("GITHUB_STEP_SUMMARY")
    assert project.run("--keptn-stage=hardening", "--keptn-tag=v1").ret == 0
    assert "hardening: pass" in (project.path / "build/state/summary.md").read_text()


def test_slo_without_objectives_is_an_error(project: Project) -> None:
    project.write("keptn/hardening/svc/slo.yaml", "objectives: []\ntotal_score: {pass: '90%'}\n")
    result = project.run("--keptn-stage=hardening", "--keptn-tag=v1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "slo.yaml: objectives: no objectives, but stage 'hardening' evaluates with it" in result.stderr.str()
    compat = project.run("--keptn-stage=hardening", "--keptn-tag=v1", "--keptn-compat=0.8.7")
    assert compat.ret == 0, compat.stdout.str()  # Keptn 0.8.7: pass, score 100
    assert "hardening: pass, score 100.0%" in compat.stdout.str()


def test_a_hook_that_crashes_fails_its_task_not_pytest(project: Project) -> None:
    project.write("conftest_extra.py", "")
    conftest = project.path / "conftest.py"
    conftest.write_text(conftest.read_text().replace(
        '    record(task="deploy", stage=ctx.stage, tag=ctx.tag, pid=os.getpid())\n',
        '    record(task="deploy", stage=ctx.stage, tag=ctx.tag, pid=os.getpid())\n'
        '    raise RuntimeError("the platform API is down")\n'))
    result = project.run("--keptn-stage=all", "--keptn-tag=v1")
    out = result.stdout.str() + result.stderr.str()
    assert result.ret == 1
    assert "INTERNALERROR" not in out
    assert ("internal error in the deployment task: RuntimeError: the platform API is down"
            in out)
    assert len(project.calls("deploy")) == 1  # not retried by every item
    log = (project.path / "build/state/logs/internal-errors.log").read_text()
    assert "Traceback" in log and "the platform API is down" in log


def test_a_triggeredon_cycle_is_reported_not_a_hang(project: Project) -> None:
    project.write_shipyard("""\
            - name: hardening
              sequences:
                - name: delivery
                  triggeredOn:
                    - event: hardening.other.finished
                  tasks:
                    - name: evaluation
                - name: other
                  triggeredOn:
                    - event: hardening.delivery.finished
                  tasks:
                    - name: evaluation
    """)
    result = project.run("--keptn-stage=hardening", "--keptn-tag=v1")
    out = result.stdout.str() + result.stderr.str()
    assert result.ret != 0
    assert "sequence hardening.delivery waits for itself" in out
    assert "INTERNALERROR" not in out and "Traceback" not in out
