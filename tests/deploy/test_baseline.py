"""The stage's live baseline, moment by moment (pytest_keptn.deploy.baseline), with stand-in hooks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_keptn.config import Settings
from pytest_keptn.deploy import baseline
from pytest_keptn.errors import DeployError
from pytest_keptn.gate.live import LiveBaseline, LiveSamples, Samples
from pytest_keptn.model import Deployment, Instance, StageContext
from pytest_keptn.spec import load_slo

SLO = b"""
comparison: {compare_with: single_result, baseline: live}
objectives: [{sli: rt, pass: [{criteria: ["<=+10%"]}]}]
total_score: {pass: "90%"}
"""
CANARY = Deployment(strategy="blue_green_service", url="http://127.0.0.1:1")


class Hooks:
    def __init__(self, start: Any = None, answers: list[Any] | None = None) -> None:
        self.start, self.answers, self.stopped = start, answers or [], []

    def pytest_keptn_start_baseline(self, ctx: StageContext, deployment: Deployment) -> Any:
        if isinstance(self.start, Exception):
            raise self.start
        return self.start

    def pytest_keptn_get_live_samples(self, **kw: Any) -> list[Any]:
        return self.answers

    def pytest_keptn_stop_baseline(self, ctx: StageContext, baseline: Instance) -> None:
        self.stopped.append(baseline)


def ctx(lines: list[str]) -> StageContext:
    return StageContext(
        project="p",
        service="s",
        stage="h",
        image="i",
        tag="2",
        root=Path("."),
        workdir=Path("."),
        settings=Settings(),
        progress=lines.append,
    )


def test_wanted_follows_the_opt_in_the_option_and_compat() -> None:
    live, plain = (
        load_slo(SLO, file="slo.yaml"),
        load_slo(SLO.replace(b"live", b"history"), file="s"),
    )
    assert baseline.wanted(live, Settings()) and not baseline.wanted(plain, Settings())
    assert baseline.wanted(plain, Settings(live_baseline=True))
    assert not baseline.wanted(live, Settings(compat="0.8.7", live_baseline=True))
    assert not baseline.wanted(None, Settings(live_baseline=True))


def test_start_records_the_baseline_in_the_deployment_and_stop_ends_it() -> None:
    lines: list[str] = []
    inst = Instance(role="baseline", url="http://127.0.0.1:2", image="i", tag="1", pid=42)
    a = LiveSamples(Samples((1.0,)), Samples((1.0,)))
    hooks = Hooks(
        inst, [None, LiveBaseline({"rt": a}), LiveBaseline(missing={"rt": "x", "q": "why"})]
    )
    started = baseline.start(hooks, ctx(lines), CANARY)
    assert baseline.url(started) == inst.url and baseline.instance(started) == inst
    live = baseline.samples(hooks, ctx(lines), started, ["rt", "q"], None, None)  # type: ignore[arg-type]
    assert live.samples == {"rt": a} and live.missing == {"q": "why"}
    baseline.stop(hooks, ctx(lines), started)
    assert hooks.stopped == [inst]


def test_no_baseline_is_a_reason_not_an_error() -> None:
    lines: list[str] = []
    none = baseline.start(Hooks(None), ctx(lines), CANARY)
    assert baseline.url(none) is None
    assert baseline.samples(Hooks(), ctx(lines), none, ["rt"], None, None).unavailable == (  # type: ignore[arg-type]
        "no earlier build in the stage"
    )
    broken = baseline.start(Hooks(DeployError("port in use")), ctx(lines), CANARY)
    assert broken.details["live_baseline_unavailable"] == "the baseline did not start: port in use"
    assert any("baseline: did not start (port in use)" in line for line in lines)
    direct = baseline.start(Hooks(None), ctx(lines), Deployment(strategy="direct", url="u"))
    assert direct.details["live_baseline_unavailable"] == "a direct deployment has no canary"
    baseline.stop(Hooks(), ctx(lines), none)  # nothing to stop
