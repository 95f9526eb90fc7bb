"""Many objectives and a long history: the HTML report's history view is bounded (issue 14
item 15).

One stage of 3,000 objectives (stand-in SLIs, no processes), a history of 40 stored
evaluations of all of them, then one real run with pytest-html: the history view may embed at
most ``HISTORY_CELLS`` objective x evaluation values (10 evaluations here), and the run reads
no more of the history than it shows, so the report and the pytest process stop growing with
the history. ``benchmarks/bench_scale.py`` measures the same at 10,000 objectives.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_keptn.report.html import HISTORY_CELLS

pytestmark = pytest.mark.slow

OBJECTIVES = 3000
STORED = 40

STANDIN = """\
from pytest_keptn.model import SLIResult


def pytest_configure(config):
    config.pluginmanager.set_blocked("keptn-sli-prometheus")


def pytest_keptn_get_sli(ctx, indicators, window, deployment, load):
    return [SLIResult(metric=n, value=1.0, query=f"standin({n})") for n in indicators]
"""

# pytest that says its own peak RSS as it ends
MEASURED = """\
import resource, sys
import pytest
code = pytest.main(sys.argv[1:])
print(f"PEAK_RSS_KIB {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}", flush=True)
sys.exit(int(code))
"""


def _project(path: Path) -> Path:
    stage = path / "keptn" / "hardening" / "svc"
    stage.mkdir(parents=True)
    (path / "keptn" / "shipyard.yaml").write_text(
        'apiVersion: "spec.keptn.sh/0.2.0"\nkind: "Shipyard"\nmetadata: {name: "big"}\n'
        'spec:\n  stages:\n    - name: "hardening"\n      sequences:\n'
        '        - name: "delivery"\n          tasks:\n            - name: "evaluation"\n'
        '              properties: {timeframe: "5m"}\n')
    objectives = "".join(f"  - sli: sli_{i:05d}\n    pass:\n      - criteria: ['<=2']\n"
                         for i in range(OBJECTIVES))
    (stage / "slo.yaml").write_text(
        "spec_version: '0.1.0'\ncomparison: {compare_with: single_result, "
        "include_result_with_score: pass, aggregate_function: avg}\nobjectives:\n"
        + objectives + "total_score: {pass: '90%', warning: '75%'}\n")
    (path / "conftest.py").write_text(STANDIN)
    (path / "pytest.ini").write_text(
        "[pytest]\nkeptn_root = keptn\nkeptn_service = svc\nkeptn_image = bench/svc\n"
        "keptn_deployer = none\nkeptn_history = build/history.sqlite\n"
        "keptn_state_dir = build/state\n")
    return path


def _run(project: Path, tag: str, report: Path) -> float:
    """One session; its peak RSS in MiB."""
    proc = subprocess.run(
        [sys.executable, "-c", MEASURED, "-p", "no:cacheprovider", "-p", "no:xdist",
         "-p", "no:hypothesispytest", "-q", "--keptn-stage=hardening", f"--keptn-tag={tag}",
         f"--html={report}", "--self-contained-html"],
        cwd=project, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout[-4000:]
    found = re.search(r"PEAK_RSS_KIB (\d+)", proc.stdout)
    assert found is not None, proc.stdout[-2000:]
    return int(found.group(1)) / 1024


def _store_copies(history: Path, copies: int) -> None:
    """``copies`` more stored evaluations like the one there, each a minute older."""
    with sqlite3.connect(history) as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(evaluations)")
                   if row[1] not in ("id", "seq", "time")]
        names = ", ".join(columns)
        for k in range(1, copies + 1):
            db.execute(
                f"INSERT INTO evaluations (id, time, {names}) SELECT id || '-copy{k}', "
                f"strftime('%Y-%m-%dT%H:%M:%fZ', time, '-{k} minutes'), {names} "
                "FROM evaluations WHERE id NOT LIKE '%-copy%'")


def test_history_view_is_bounded(tmp_path: Path) -> None:
    project = _project(tmp_path / "project")
    first = tmp_path / "first.html"
    rss_first = _run(project, "v1", first)
    _store_copies(project / "build" / "history.sqlite", STORED - 1)
    second = tmp_path / "second.html"
    rss_second = _run(project, "v2", second)

    html = second.read_text()
    heatmap = html[html.index('class="kq-heatmap"'):]
    heatmap = heatmap[:heatmap.index("</table>")]
    columns = heatmap.count('<th scope="col"')
    cells = heatmap.count('class="kq-cell')
    assert columns == HISTORY_CELLS // OBJECTIVES == 10, columns  # was 30
    assert cells == columns * (OBJECTIVES + 1), cells  # one row per objective, and the score
    assert "the view holds at most 30,000 values" in html
    # the report grows by what 9 more columns hold, not 29 (5.5 -> 14.0 MB; was 32.0 MB)
    grown = second.stat().st_size / first.stat().st_size
    assert grown < 3.5, (first.stat().st_size, second.stat().st_size)
    # the process reads 10 of the 41 stored evaluations, not 30
    assert rss_second - rss_first < 200, (rss_first, rss_second)  # was +347 MiB, now +110
