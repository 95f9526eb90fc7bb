"""Issue 12 point 4: ``triggeredAfter`` delays the task's trigger by that duration, as
shipyard-controller 0.8.7 queues the ``.triggered`` event (``sendTaskTriggeredEvent``), with a
progress line while waiting; SIGTERM during the wait aborts cleanly (the canary is removed,
nothing else runs). Small durations and ordering, never a sleep-and-hope."""

from __future__ import annotations

import signal
from datetime import datetime

from tests.faults.runs import Run
from tests.plugin.conftest import FAKES, Project, hardening_stage

TIMED = FAKES + '''

def pytest_keptn_run_load(ctx, url, properties):
    end = datetime.now(UTC)
    record(task="load", stage=ctx.stage, tag=ctx.tag, at=end.isoformat())
    return LoadResult(window=Window(end - timedelta(seconds=10), end), requests=100)


def pytest_keptn_get_sli(ctx, indicators, window, deployment, load):
    record(task="get_sli", stage=ctx.stage, tag=ctx.tag, at=datetime.now(UTC).isoformat())
    values = json.loads((HERE / "values.json").read_text()).get(ctx.tag, {})
    return [SLIResult(metric=n, value=float(values[n]), query=f"fake_query({n})")
            for n in indicators if n in values]
'''

SHIPYARD = hardening_stage('- name: evaluation\n  triggeredAfter: "%s"')


def _at(entry: dict[str, object]) -> datetime:
    return datetime.fromisoformat(str(entry["at"]))


def test_the_task_is_triggered_after_the_delay(project: Project) -> None:
    (project.path / "conftest.py").write_text(TIMED)
    project.write_shipyard(SHIPYARD % "2s")
    result = project.run("--keptn-stage=hardening", "--keptn-tag=v1", "-s")
    out = result.stdout.str()
    assert result.ret == 0, out
    assert "waiting 2s before the evaluation task (triggeredAfter: 2s)" in out
    (load,) = project.calls("load")
    (asked,) = project.calls("get_sli")
    assert (_at(asked) - _at(load)).total_seconds() >= 2.0
    assert [c["task"] for c in project.calls()] == ["deploy", "load", "get_sli", "release"]


def test_a_zero_delay_does_not_wait(project: Project) -> None:
    (project.path / "conftest.py").write_text(TIMED)
    project.write_shipyard(SHIPYARD % "0s")
    result = project.run("--keptn-stage=hardening", "--keptn-tag=v1", "-s")
    assert result.ret == 0, result.stdout.str()
    assert "waiting" not in result.stdout.str()


def test_sigterm_while_waiting_aborts_cleanly(project: Project) -> None:
    (project.path / "conftest.py").write_text(TIMED)
    project.write_shipyard(SHIPYARD % "10m")
    run = Run(project.path, "--keptn-tag=v1")
    run.wait_for("waiting 10m0s before the evaluation task")
    run.proc.send_signal(signal.SIGTERM)
    rc = run.finish(timeout=60)
    out = run.out
    assert rc != 0, out
    assert "terminated (SIGTERM)" in out
    assert "Traceback" not in out and "INTERNALERROR" not in out
    assert [c["task"] for c in project.calls()] == ["deploy", "load", "rollback"]
