"""pytest-html integration, registered only when pytest-html is active."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from pytest_keptn.report.html import render_html
from pytest_keptn.session.outcome import stage_reports

if TYPE_CHECKING:
    from pytest_keptn.session.session import KeptnSession


class HtmlReport:
    def __init__(self, keptn: KeptnSession) -> None:
        self.keptn = keptn

    def pytest_html_report_title(self, report: Any) -> None:
        report.title = f"Keptn quality report: {self.keptn.project}"

    def pytest_html_results_summary(self, prefix: list[str], summary: list[str],
                                    postfix: list[str], session: pytest.Session) -> None:
        reports = self.keptn.reports
        if reports is None:
            reports = stage_reports(self.keptn, self.keptn.pipeline.states())
        if reports:
            prefix.append(render_html(reports))
