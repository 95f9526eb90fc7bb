"""pytest-html's results table: a skipped item (a stage that did not run) shows its reason, not
pytest's raw ``(file, line, 'Skipped: ...')`` tuple with the plugin's file path."""

from __future__ import annotations

import html
import json
import re

from tests.plugin.conftest import Project


def test_a_skipped_row_shows_its_reason(project: Project) -> None:
    result = project.run("--keptn-stage=all", "--keptn-tag=v2", "--html=report.html",
                         "--self-contained-html")
    assert result.ret == 1, result.stdout.str()
    page = (project.path / "report.html").read_text(encoding="utf-8")
    blob = re.search(r'data-jsonblob="([^"]*)"', page)
    assert blob, "pytest-html's data blob"
    tests = json.loads(html.unescape(blob.group(1)))["tests"]
    skipped = [run for runs in tests.values() for run in runs if run["result"] == "Skipped"]
    assert skipped, tests.keys()
    for run in skipped:
        log = html.unescape("".join(run["log"]))
        assert log.startswith("Skipped: production"), log
        assert "('" not in log and "pytest_keptn" not in log, log
    # a stage that did not run: the strip of its sequence's tasks, none run, and why
    production = page[page.index('data-stage="production"'):page.index('<section class="kq-environment"')]
    strip = re.findall(r'<li class="kq-task kq-none" title="not triggered: [^"]*">'
                       r'<span class="kq-task-name">(\w+)</span> '
                       r'<span class="kq-task-result">not run</span></li>', production)
    assert strip == ["deployment", "release"], production
    # after the stages, what runs where (as `pytest-keptn status` says it)
    where = page[page.index('<section class="kq-environment"'):]
    assert "What runs where" in where and "history.sqlite</code>" in where
    assert "deployed by a pytest_keptn_deploy plugin of your own" in where
