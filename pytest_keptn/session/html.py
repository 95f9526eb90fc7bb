"""pytest-html integration, registered only when pytest-html is active."""

from __future__ import annotations

from html import escape
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
        states = self.keptn.final_states or self.keptn.pipeline.states()
        reports = stage_reports(self.keptn, states, every_stage=True)
        if reports:
            prefix.append(render_html(reports))

    def pytest_html_results_table_html(self, report: pytest.TestReport, data: list[str]) -> None:
        # A skip's longrepr is (file, line, "Skipped: why"); pytest-html prints the tuple, with
        # the path of the plugin module that called pytest.skip(). The reason is what counts.
        longrepr = report.longrepr
        if report.skipped and isinstance(longrepr, tuple) and len(longrepr) == 3 and data:
            data[0] = escape(str(longrepr[2])) + "\n"
