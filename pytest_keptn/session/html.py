"""pytest-html integration, registered only when pytest-html is active."""

from __future__ import annotations

import sys
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_keptn.report.html import RunEnvironment, RunningInstance, render_html
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
            prefix.append(render_html(reports, environment=run_environment(self.keptn)))

    def pytest_html_results_table_html(self, report: pytest.TestReport, data: list[str]) -> None:
        # A skip's longrepr is (file, line, "Skipped: why"); pytest-html prints the tuple, with
        # the path of the plugin module that called pytest.skip(). The reason is what counts.
        longrepr = report.longrepr
        if report.skipped and isinstance(longrepr, tuple) and len(longrepr) == 3 and data:
            data[0] = escape(str(longrepr[2])) + "\n"


def run_environment(keptn: KeptnSession) -> RunEnvironment:
    """What runs where after the run, as ``pytest-keptn status`` shows it (the deployer's
    recorded instances), with the Prometheus, history, events and logs of this run. No URL
    keeps its credentials."""
    from pytest_keptn.deploy import local
    from pytest_keptn.deploy import state as st
    from pytest_keptn.errors import KeptnError
    from pytest_keptn.gate._postgres import is_postgres_url, redact
    from pytest_keptn.gate.history import history_location

    settings = keptn.settings
    workdir = settings.state_path(keptn.root)
    instances = []
    try:
        services = st.read(workdir)["services"]
    except KeptnError:
        services = {}
    for name, entry in sorted(services.items()):
        stage, _, service = name.partition("/")
        for role, inst in sorted(entry.items()) if isinstance(entry, dict) else ():
            if not isinstance(inst, dict) or "pid" not in inst:
                continue
            serving = role != "primary" or local.primary_url(workdir, stage, service) is not None
            instances.append(RunningInstance(
                stage=stage, service=service, role=role,
                build=f"{inst.get('image', '')}:{inst.get('tag', '')}",
                url=_without_credentials(str(inst.get("url", ""))), pid=int(inst["pid"]),
                serving=serving))
    if settings.deployer != "local":
        primaries = f"deployed by the {settings.deployer} deployer"
    elif any(impl.plugin_name != "keptn-deployer-local"
             for impl in keptn.config.hook.pytest_keptn_deploy.get_hookimpls()):
        primaries = "deployed by a pytest_keptn_deploy plugin of your own"
    elif settings.keep_primaries:
        primaries = "kept running after pytest exits (--keptn-keep-primaries)"
    else:
        primaries = "stopped when pytest exits (--keptn-keep-primaries=false)"
    history = history_location(settings.history, workdir)
    return RunEnvironment(
        instances=instances, primaries=primaries, prometheus=_prometheus(keptn),
        history=redact(history) if is_postgres_url(history) else history,
        events=settings.events or "not written (--keptn-events)",
        logs=str(workdir / "logs"), state_dir=str(workdir),
        stop_command=f"{Path(sys.executable).name} -m pytest_keptn stop --state-dir {workdir}"
        if instances or settings.prometheus_keep not in ("", "0") else "",
    )


def _without_credentials(url: str) -> str:
    from pytest_keptn.errors import KeptnError
    from pytest_keptn.prometheus.auth import split_userinfo

    try:
        return split_userinfo(url)[0]
    except KeptnError:
        return "(a URL that cannot be shown)"


def _prometheus(keptn: KeptnSession) -> str:
    settings = keptn.settings
    if settings.prometheus_url:
        return f"{_without_credentials(settings.prometheus_url)} (external)"
    server = keptn.running_prometheus()
    if server is None:
        return "none started"
    if server.keep_seconds:
        return (f"{server.url} (embedded, kept running for {settings.prometheus_keep} of idle "
                "time for the next session)")
    return f"{server.url} (embedded, stops with the session)"
