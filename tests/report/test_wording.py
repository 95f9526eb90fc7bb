"""One wording for a gate: the terminal, the failure messages, markdown and HTML say the same."""

from __future__ import annotations

import dataclasses

from pytest_keptn.gate.record import Basis, EvaluationRecord
from pytest_keptn.gate.scoring import IndicatorResult, Target
from pytest_keptn.report import html
from pytest_keptn.report.markdown import render_markdown
from pytest_keptn.report.terminal import explain_objective
from pytest_keptn.report.wording import NO_BASIS, record_verdict, target_text, targets_line, verdict
from pytest_keptn.spec.slo import load_slo
from tests.report.report_samples import tutorial_stages


def _record(stage: html.StageReport) -> EvaluationRecord:
    return EvaluationRecord(
        id="e", result=stage.result, score=stage.score, pass_threshold=stage.pass_threshold,
        warning_threshold=stage.warning_threshold, key_sli_failed=False,
        basis=Basis("single_result", "pass", 1, "avg"), data=stage.data)


def test_every_output_words_the_verdict_alike() -> None:
    hardening = tutorial_stages()[0]
    line = verdict(hardening.stage, hardening.result, hardening.score,
                   hardening.pass_threshold, hardening.warning_threshold)
    assert line == "hardening: fail, score 33.3% < 75% (warning)"
    assert html.verdict(hardening) == line  # HTML (escaped in the page)
    assert f"**{line}**" in render_markdown([hardening])  # markdown
    assert record_verdict("hardening", _record(hardening)) == line  # terminal and task message
    warning = dataclasses.replace(hardening, result="warning", score=80.0)
    assert html.verdict(warning) == record_verdict("hardening", _record(warning))


def test_every_output_words_a_target_alike() -> None:
    hardening = tutorial_stages()[0]
    record = _record(hardening)
    row = record.rows_by_sli()["go_routines"][0]
    words = target_text("<=100", 100, True)
    assert words == "target 100"
    assert f"<=100 ({words}, violated)" == targets_line([("<=100", 100.0, True)])  # terminal
    assert f"<=100 ({words})" in render_markdown([hardening])  # markdown
    assert f"→ {words}" in html.render_html([hardening])  # HTML
    slo = load_slo({"objectives": [{"sli": "go_routines", "pass": [{"criteria": ["<=100"]}]}],
                    "total_score": {"pass": "90%"}})
    assert f"<=100 -> {words} VIOLATED" in explain_objective(
        "hardening", slo.objectives[0], row, record)  # failure message


def test_a_relative_criterion_without_basis_is_worded_once() -> None:
    assert target_text(">=-80%", 0, False) == NO_BASIS  # a stored evaluation: target 0 tells
    assert target_text(">=-80%", 20, False, compared=False) == NO_BASIS
    assert target_text(">=-80%", 20, False, compared=True) == "target 20"
    assert target_text("<=1", 0, False) == "target 0"  # absolute criteria always have a target
    row = IndicatorResult("t", "", 5.0, True, "", 1.0, "pass",
                          pass_targets=(Target(">=-80%", 0.0, False),))
    assert targets_line([(t.criteria, t.target_value, t.violated) for t in row.pass_targets or ()]
                        ) == f">=-80% ({NO_BASIS})"
