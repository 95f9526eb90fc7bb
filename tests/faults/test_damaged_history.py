"""A damaged history and malformed imports (issue 14, items 4 and 11), through real pytest runs
of a small project (stand-in deployer and SLI provider, real SQLite history) and the real CLI.

Before: one damaged row made every later evaluation of its stage an internal error (no score,
no event, no row), ``history list`` printed a traceback, a damaged middle page went unnoticed,
and ``history import`` of a malformed event printed a traceback after nothing or part of it.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_keptn.api import History, evaluate
from tests.plugin.conftest import Project

RUN = ("--keptn-stage=hardening", "--keptn-tag=v1")


def _cli(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_keptn", "history", "--history",
                           str(project.path / "build" / "history.sqlite"), *args],
                          capture_output=True, text=True, timeout=60, check=False)


def _rows(project: Project) -> list[tuple[str, str]]:
    db = sqlite3.connect(project.path / "build" / "history.sqlite")
    try:
        return [(str(r[0]), str(r[1])) for r in db.execute("SELECT id, data FROM evaluations")]
    finally:
        db.close()


@pytest.mark.parametrize("damage", [  # every kind, on both backends: tests/gate
    "{not json",
    json.dumps({"evaluation": {"indicatorResults": [
        {"score": "1", "value": {"metric": "throughput", "value": "100"}}]}}),
], ids=["invalid-json", "string-for-number"])
def test_a_damaged_row_never_loses_later_evaluations(project: Project, damage: str) -> None:
    first = project.run(*RUN)
    assert first.ret == 0, first.stdout.str()
    ((damaged, _),) = _rows(project)
    db = sqlite3.connect(project.path / "build" / "history.sqlite")
    with db:
        db.execute("UPDATE evaluations SET data=? WHERE id=?", (damage, damaged))
    db.close()

    for attempt in range(2):  # every later run of the stage, not just the next one
        result = project.run(*RUN)
        out = result.stdout.str()
        assert result.ret == 0, out
        assert "Traceback" not in out and "internal error" not in out
        if attempt == 0:  # then the comparison (single_result) takes the newer, readable one
            assert f"history: evaluation {damaged} is unreadable" in out
            assert "left out of the comparison" in out
    assert len(_rows(project)) == 3  # both later evaluations recorded
    assert len(project.events()) == 3  # and evented
    listed = _cli(project, "list")
    assert listed.returncode == 0, listed.stderr
    assert "Traceback" not in listed.stdout + listed.stderr
    (line,) = [x for x in listed.stdout.splitlines() if damaged in x]
    assert "unreadable:" in line


def _many_rows(path: Path, count: int) -> None:
    slo = {"objectives": [{"sli": f"s{i}", "pass": [{"criteria": ["<100"]}]} for i in range(5)],
           "total_score": {"pass": "90%"}}
    with History(path) as h:
        for _ in range(count):
            h.record(evaluate(slo, {f"s{j}": 1.0 for j in range(5)}), project="demo",
                     stage="hardening", service="svc")
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page = db.execute("PRAGMA page_size").fetchone()[0]
    leaves = [r[0] for r in db.execute("SELECT pageno FROM dbstat WHERE name='evaluations'"
                                       " AND pagetype='leaf' ORDER BY pageno")]
    db.close()
    with open(path, "r+b") as handle:  # a middle leaf's header: inserts append elsewhere
        handle.seek((leaves[len(leaves) // 2] - 1) * page)
        handle.write(b"\xff" * 16)


def test_a_damaged_middle_page_is_found_at_open(project: Project) -> None:
    history = project.path / "build" / "history.sqlite"
    history.parent.mkdir(parents=True)
    _many_rows(history, 300)
    damaged = history.read_bytes()
    result = project.run(*RUN)
    out = result.stdout.str()
    assert result.ret == 1, out
    assert "Traceback" not in out and "INTERNALERROR" not in out
    (line,) = [x for x in out.splitlines() if "evaluation FAILED" in x]
    assert "the history database is damaged (PRAGMA quick_check:" in line
    assert "hardening: pass, score 100.0%" in line  # scored all the same
    (event,) = project.events()  # kept in the events
    assert event["data"]["result"] == "pass"
    assert history.read_bytes() == damaged  # nothing written into a damaged file


BAD_EVENTS = [
    {"id": "e1", "type": "sh.keptn.event.evaluation.finished", "data": {
        "project": "demo", "stage": "hardening", "service": "svc",
        "evaluation": {"score": 100, "indicatorResults": [
            {"score": 1, "value": {"metric": "rt", "value": "fast"}}]}}},
    {"id": "e2", "type": "sh.keptn.event.evaluation.finished", "data": {
        "project": "demo", "stage": "hardening", "service": "svc",
        "evaluation": {"score": 100, "indicatorResults": [
            {"score": 1, "value": {"metric": "rt", "value": 1}, "passTargets": 5}]}}},
    {"id": {"nested": "id"}, "type": "sh.keptn.event.evaluation.finished", "data": {
        "project": "demo", "stage": "hardening", "service": "svc"}},
]


def test_import_of_malformed_events_names_each_line_and_imports_nothing(
    project: Project, tmp_path: Path
) -> None:
    good = evaluate({"objectives": [{"sli": "rt", "pass": [{"criteria": ["<100"]}]}],
                     "total_score": {"pass": "90%"}}, {"rt": 1.0})
    data = good.to_keptn(project="demo", stage="hardening", service="svc")
    ok = {"id": "good", "type": "sh.keptn.event.evaluation.finished", "data": data}
    lines = [ok, *BAD_EVENTS[:2], ok | {"id": "good2"}, BAD_EVENTS[2]]
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in lines))
    History(project.path / "build" / "history.sqlite").close()
    done = _cli(project, "import", str(events))
    assert done.returncode == 2
    assert "Traceback" not in done.stdout + done.stderr
    problems = done.stderr.splitlines()
    assert problems[:3] == [
        f"pytest-keptn: {events}: line 2: data.evaluation.indicatorResults[0].value.value is a "
        "string, not a number",
        f"pytest-keptn: {events}: line 3: data.evaluation.indicatorResults[0].passTargets is "
        "int, not a list",
        f"pytest-keptn: {events}: line 5: id is an object, not a string",
    ]
    assert problems[3] == "pytest-keptn: nothing imported (3 bad events)"
    assert _rows(project) == []  # nothing half-imported
