"""The markdown summary for job pages and PR comments."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_samples import XSS, tutorial_stages

from pytest_keptn.report.markdown import cell, render_markdown, write_markdown_summary


def test_verdict_lines_and_table() -> None:
    text = render_markdown(tutorial_stages())
    assert "**hardening: fail, score 33.3% < 75% (warning)**" in text
    assert "**production: no evaluation**" in text
    assert "| Objective | Value |" in text
    assert "| go_routines | 158 | ~~<=100 (target 100)~~ | – | ❌ fail | 0 |" in text
    assert "| request_throughput | 40.5 | <=+100% (target 364.8), >=-80% (target 36.48) | – | ✅ pass | 1 |" in text


def test_hostile_text_cannot_become_html_or_break_the_table() -> None:
    text = render_markdown(tutorial_stages())
    assert XSS not in text
    assert "&lt;script>alert(1)&lt;/script>" in text
    assert cell("a|b\nc") == "a\\|b c"
    assert cell("&amp; <b>") == "&amp;amp; &lt;b>"
    assert cell("x < 1 & y") == "x < 1 & y"


def test_writes_the_fallback_without_github(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    target = tmp_path / "build" / "summary.md"
    assert write_markdown_summary(tutorial_stages(), target) == target
    assert target.read_text(encoding="utf-8").startswith("### Keptn quality gate")


def test_appends_to_github_step_summary(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    summary = tmp_path / "step_summary.md"
    summary.write_text("earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    fallback = tmp_path / "unused.md"
    assert write_markdown_summary(tutorial_stages(), fallback) == summary
    assert write_markdown_summary(tutorial_stages(), fallback) == summary
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("earlier step\n") and text.count("### Keptn quality gate") == 2
    assert not fallback.exists()
