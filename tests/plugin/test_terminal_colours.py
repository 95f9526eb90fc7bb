"""The gate tables through pytest's TerminalWriter: green/yellow/red by status, a ✓/✗ per
criterion, and no colour at all with --color=no or NO_COLOR (pytest's own rules)."""

from __future__ import annotations

import pytest

from tests.plugin.conftest import Project

GREEN, RED, YELLOW = "\x1b[32m", "\x1b[31m", "\x1b[33m"


def summary(result: pytest.RunResult) -> str:
    out = result.stdout.str()
    return out[out.index("Keptn quality gates"):]


def test_statuses_in_colour_with_a_mark_per_criterion(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    result = project.run("--keptn-stage=hardening", "--keptn-tag=v2", "--color=yes")
    text = summary(result)
    lines = text.splitlines()
    failing = next(line for line in lines if "goroutines" in line and "✗ <=100" in line)
    assert failing.startswith(RED), repr(failing)
    verdict = next(line for line in lines if "hardening: fail, score" in line)
    assert RED in verdict and "\x1b[1m" in verdict  # red and bold
    assert any(line.startswith(RED) and "RESULT: fail" in line for line in lines)
    passing = project.run("--keptn-stage=hardening", "--keptn-tag=v1", "--color=yes")
    good = summary(passing).splitlines()
    row = next(line for line in good if "response_time" in line and "✓ <=1 (target 1)" in line)
    assert row.startswith(GREEN), repr(row)
    assert any(line.startswith(GREEN) and "RESULT: pass" in line for line in good)
    warned = summary(project.run("--keptn-stage=hardening", "--keptn-tag=v3", "--color=yes"))
    assert any(line.startswith(YELLOW) and "RESULT: warning" in line for line in warned.splitlines())


@pytest.mark.parametrize(("args", "env"), [(("--color=no",), {"FORCE_COLOR": "1"}),
                                           ((), {"FORCE_COLOR": "1", "NO_COLOR": "1"})],
                         ids=["--color=no", "NO_COLOR"])
def test_no_colour_when_asked(project: Project, monkeypatch: pytest.MonkeyPatch,
                              args: tuple[str, ...], env: dict[str, str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    text = summary(project.run("--keptn-stage=hardening", "--keptn-tag=v2", *args))
    assert "\x1b[" not in text and "✗ <=100" in text and "RESULT: fail" in text
