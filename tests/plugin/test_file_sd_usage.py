"""Local deployer + a Prometheus of your own needs --keptn-prometheus-file-sd (issue 20): a usage
error at configure time (exit 4) naming the option, before anything is deployed."""

from __future__ import annotations

import pytest

from .conftest import Project

LOCAL = "--keptn-local-command={python} -c pass"


def _usage_error(result: pytest.RunResult) -> str:
    out = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, out
    assert "Traceback" not in out and "INTERNALERROR" not in out, out
    (line,) = [line for line in out.splitlines() if line.startswith("ERROR: pytest-keptn:")]
    return line


def _builtins(project: Project) -> None:
    """The test project without its stand-in deployer, and with the built-in Prometheus
    provider: the built-in local deployer deploys, Prometheus is asked."""
    conftest = project.path / "conftest.py"
    conftest.write_text(conftest.read_text().replace("def pytest_keptn_deploy", "def _off")
                        .replace('config.pluginmanager.set_blocked("keptn-sli-prometheus")', "pass"))


def test_an_external_url_without_a_file_sd_path(project: Project) -> None:
    _builtins(project)
    result = project.run("--keptn-stage=hardening", "--keptn-tag=v1", LOCAL,
                         "--keptn-prometheus-url=http://127.0.0.1:9")
    line = _usage_error(result)
    assert "--keptn-prometheus-file-sd: the local deployer's processes are scraped by nothing" in line
    assert "keptn_prometheus_file_sd" in line and "README: external backends" in line
    assert not (project.path / "build" / "state" / "logs").exists()  # nothing was started


def test_a_file_sd_path_without_an_external_url(project: Project) -> None:
    _builtins(project)
    result = project.run("--keptn-stage=hardening", "--keptn-tag=v1", LOCAL,
                         "--keptn-prometheus-file-sd=targets.json")
    line = _usage_error(result)
    assert "--keptn-prometheus-file-sd: is for a Prometheus of your own" in line, line


@pytest.mark.parametrize("mode", ["--keptn-deployer=none", "own-deployer", "--keptn-timeframe=1m"])
def test_no_usage_error_when_nothing_local_is_scraped(project: Project, mode: str) -> None:
    """No deployment (none), a deployer of the user's own (the test project's conftest), or an
    evaluation-only run: the external URL alone is right."""
    _builtins(project)
    if mode == "own-deployer":
        conftest = project.path / "conftest.py"
        conftest.write_text(conftest.read_text().replace("def _off", "def pytest_keptn_deploy"))
    args = [] if mode == "own-deployer" else [mode]
    result = project.run("--keptn-stage=hardening", "--keptn-tag=v1", LOCAL,
                         "--keptn-prometheus-url=http://127.0.0.1:9",
                         "--collect-only", *args)  # configured, collected, nothing run
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()[-3000:]
