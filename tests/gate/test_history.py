from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pytest_keptn.api import History, evaluate, load_slo
from pytest_keptn.errors import HistoryError
from pytest_keptn.gate.scoring import Evaluation
from pytest_keptn.spec.slo import Comparison
from tests.conftest import BACKENDS

SLO = {
    "comparison": {"compare_with": "several_results", "number_of_comparison_results": 3,
                   "include_result_with_score": "pass"},
    "objectives": [{"sli": "rt", "pass": [{"criteria": ["<100"]}], "warning": [{"criteria": ["<200"]}]}],
    "total_score": {"pass": "90%", "warning": "50%"},
}  # fmt: skip
T0 = datetime(2021, 6, 1, tzinfo=UTC)
WHERE = {"project": "p", "stage": "hardening", "service": "svc"}


def _record(h: History, value: float, minute: int, **where: str) -> str:
    ev = evaluate(SLO, {"rt": value})
    return h.record(ev, **(WHERE | where), time=T0 + timedelta(minutes=minute))


def test_record_and_previous_newest_first(history_location: str) -> None:
    with History(history_location) as h:
        ids = [_record(h, 10 + i, i) for i in range(5)]
        _record(h, 10, 99, stage="production")
        prev = h.previous(load_slo(SLO), **WHERE)
        assert [e.id for e in prev] == ids[::-1][:3]
        assert [e.indicator_results[0].value for e in prev] == [14, 13, 12]


def test_include_result_with_score_filters(history_location: str) -> None:
    with History(history_location) as h:
        a = _record(h, 10, 1)  # pass
        b = _record(h, 150, 2)  # warning
        c = _record(h, 500, 3)  # fail
        pick = lambda mode: [  # noqa: E731
            e.id for e in h.previous(Comparison("several_results", mode, 10), **WHERE)
        ]
        assert pick("pass") == [a]
        assert pick("pass_or_warn") == [b, a]
        assert pick("PASS_OR_WARN") == [b, a]
        assert pick("all") == [c, b, a]
        assert pick("whatever") == [c, b, a]
        assert [e.id for e in h.previous(Comparison(), **WHERE)] == [c]
        assert len(h.previous(Comparison(compare_with="typo"), **WHERE)) == 3


def test_invalidated_are_excluded(history_location: str) -> None:
    with History(history_location) as h:
        a = _record(h, 10, 1)
        b = _record(h, 11, 2)
        h.invalidate(b, "bad load test")
        assert [e.id for e in h.previous(load_slo(SLO), **WHERE)] == [a]
        rows = h.evaluations()
        assert rows[0].id == b and rows[0].invalidated == "bad load test"
        with pytest.raises(HistoryError, match="no evaluation with id"):
            h.invalidate("nope", "x")


def test_evaluations_rows(history_location: str) -> None:
    with History(history_location) as h:
        ev = evaluate(SLO, {"rt": 10})
        eid = h.record(ev, **WHERE, image="img", tag="v1", time=T0)
        _record(h, 10, 5, service="other")
        rows = h.evaluations(project="p", service="svc", limit=10)
        assert len(rows) == 1
        row = rows[0]
        assert (row.id, row.time, row.image, row.tag, row.result, row.score) == (
            eid, T0, "img", "v1", "pass", 100.0,
        )  # fmt: skip
        assert row.data["evaluation"]["indicatorResults"][0]["value"]["metric"] == "rt"
        assert len(h.evaluations(limit=1)) == 1 and len(h.evaluations()) == 2


def test_sequence_results(history_location: str) -> None:
    with History(history_location) as h:
        key = {
            "project": "p",
            "stage": "dev",
            "sequence": "delivery",
            "service": "s",
            "image": "i",
            "tag": "1",
        }
        assert h.sequence_result(**key) is None
        h.record_sequence(**key, result="fail")
        h.record_sequence(**key, result="pass", last_task="release")
        assert h.sequence_result(**key) == ("pass", "release")
        assert h.sequence_result(**(key | {"tag": "2"})) is None


def test_history_of_an_earlier_version_is_upgraded(tmp_path: Path) -> None:
    """A sequences table without last_task (written before it was kept) gains the column;
    its rows read with an empty last task, and nothing is lost."""
    import sqlite3

    db = sqlite3.connect(tmp_path / "old.sqlite")
    db.execute("CREATE TABLE sequences (project TEXT NOT NULL, stage TEXT NOT NULL, sequence TEXT"
               " NOT NULL, service TEXT NOT NULL, image TEXT NOT NULL, tag TEXT NOT NULL,"
               " result TEXT NOT NULL, time TEXT NOT NULL)")
    db.execute("INSERT INTO sequences VALUES ('p','dev','delivery','s','i','1','pass',"
               "'2026-01-01T00:00:00.000000Z')")
    db.commit()
    db.close()
    key = {"project": "p", "stage": "dev", "sequence": "delivery", "service": "s", "image": "i"}
    with History(tmp_path / "old.sqlite") as h:
        assert h.sequence_result(**key, tag="1") == ("pass", "")
        h.record_sequence(**key, tag="2", result="fail", last_task="evaluation")
        assert h.sequence_result(**key, tag="2") == ("fail", "evaluation")
        assert h.integrity_check() == "ok"


def test_export_import_round_trip(history_location: str, tmp_path: Path) -> None:
    with History(history_location) as h:
        a = _record(h, 10, 1)
        b = _record(h, 11, 2)
        h.invalidate(a, "flaky")
        assert h.export_events(tmp_path / "events.jsonl") == 2
    lines = [json.loads(x) for x in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [e["type"] for e in lines] == [
        "sh.keptn.event.evaluation.finished",
        "sh.keptn.event.evaluation.invalidated",
        "sh.keptn.event.evaluation.finished",
    ]
    assert lines[0]["id"] == a and lines[0]["specversion"] == "1.0"
    with History(tmp_path / "b.sqlite") as h2:
        assert h2.import_events(tmp_path / "events.jsonl") == 2
        assert h2.import_events(tmp_path / "events.jsonl") == 0  # idempotent
        assert [e.id for e in h2.previous(load_slo(SLO), **WHERE)] == [b]


def test_import_keptn_export_with_triggeredid_invalidation(
    history_location: str, tmp_path: Path
) -> None:
    data = evaluate(SLO, {"rt": 10}).to_keptn(**WHERE)
    events = [
        {"specversion": "1.0", "id": "e1", "type": "sh.keptn.event.evaluation.finished",
         "source": "lighthouse-service", "time": "2021-06-01T00:00:00.000Z", "triggeredid": "t1", "data": data},
        {"specversion": "1.0", "id": "e2", "type": "sh.keptn.event.evaluation.finished",
         "source": "lighthouse-service", "time": "2021-06-01T01:00:00.000Z", "triggeredid": "t2", "data": data},
        {"id": "i1", "type": "sh.keptn.event.evaluation.invalidated", "triggeredid": "t2", "data": {}},
        {"id": "x", "type": "sh.keptn.event.test.finished", "data": {}},
    ]  # fmt: skip
    path = tmp_path / "keptn.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    with History(history_location) as h:
        assert h.import_events(path) == 2
        assert [e.id for e in h.previous(load_slo(SLO), **WHERE)] == ["e1"]


def test_import_errors_name_file_and_line(history_location: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"type": "sh.keptn.event.evaluation.finished", "data": {}}\n{nope\n')
    with History(history_location) as h, pytest.raises(HistoryError) as info:
        h.import_events(path)
    assert str(info.value).startswith(f"{path}: line 1")


def test_corrupted_file_is_one_line_history_error(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    path.write_bytes(b"this is not sqlite" * 500)
    with pytest.raises(HistoryError) as info:
        History(path)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


def test_locked_file_is_history_error(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    h = History(path, lock_timeout=0.2)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        began = time.monotonic()
        with pytest.raises(HistoryError, match="locked"):
            h.record(evaluate(SLO, {"rt": 1}), **WHERE)
        assert time.monotonic() - began < 2
        with pytest.raises(HistoryError, match="locked"):
            History(path, lock_timeout=0.2)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
        h.close()


def test_previous_evaluations_feed_scoring(history_location: str) -> None:
    slo = load_slo(SLO | {"objectives": [{"sli": "rt", "pass": [{"criteria": ["<=+10%"]}]}]})
    with History(history_location) as h:
        for i, value in enumerate((100.0, 110.0, 120.0)):
            h.record(evaluate(slo, {"rt": value}), **WHERE, time=T0 + timedelta(minutes=i))
        prev = h.previous(slo, **WHERE)
        assert all(isinstance(e, Evaluation) and e.id for e in prev)
        ev = evaluate(slo, {"rt": 122.0}, prev)
        row = ev.indicator_results[0]
        assert (
            row.pass_targets is not None and row.pass_targets[0].target_value == 110.0 * 110 / 100
        )
        assert ev.result == "fail"
        assert ev.compared_events == tuple(e.id for e in prev)


WRITER = textwrap.dedent(
    """
    import sys
    from pytest_keptn.api import History, evaluate
    slo = {"objectives": [{"sli": "rt", "pass": [{"criteria": ["<100"]}]}], "total_score": {"pass": "90"}}
    ev = evaluate(slo, {"rt": 1.0})
    with History(sys.argv[1]) as h:
        for i in range(int(sys.argv[3])):
            h.record(ev, project="p", stage="s", service=sys.argv[2])
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("history_location", BACKENDS, indirect=True)
def test_eight_processes_write_at_once(history_location: str) -> None:
    """8 writers, 1,000 evaluations: nothing lost, nothing duplicated, on both backends."""
    names = [f"w{i}" for i in range(8)]
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, history_location, name, "125"])
             for name in names]
    assert [p.wait(timeout=300) for p in procs] == [0] * 8
    with History(history_location) as h:
        rows = h.evaluations()
        assert len(rows) == 1000 and len({r.id for r in rows}) == 1000
        assert all(len(h.evaluations(service=n)) == 125 for n in names)
        assert h.integrity_check() == "ok"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_keptn", *args], capture_output=True,
                          text=True, timeout=60, check=False)


def test_history_command_lists_invalidates_exports_imports(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite"
    with History(db) as h:
        a = _record(h, 10, 1)
        b = _record(h, 150, 2)  # a warning
        _record(h, 10, 3, stage="production")
    listed = _cli("history", "--history", str(db), "list", "--stage", "hardening")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert [line.split()[2] for line in lines] == [b, a]  # newest first, ids to pin
    assert "p/hardening/svc" in lines[0] and "warning" in lines[0]
    done = _cli("history", "--history", str(db), "invalidate", a, "--reason", "flaky load")
    assert done.returncode == 0 and f"invalidated {a}: flaky load" in done.stdout
    assert "invalidated: flaky load" in _cli("history", "--history", str(db), "list").stdout
    with History(db) as h:
        assert [e.id for e in h.previous(load_slo(SLO), **WHERE)] == []  # b warned, a invalid
    unknown = _cli("history", "--history", str(db), "invalidate", "nope")
    assert unknown.returncode == 2
    assert unknown.stderr.count("\n") == 1 and "no evaluation with id 'nope'" in unknown.stderr
    exported = _cli("history", "--history", str(db), "export", str(tmp_path / "e.jsonl"))
    assert exported.returncode == 0 and "exported 3 evaluation(s)" in exported.stdout
    imported = _cli("history", "--history", str(tmp_path / "new.sqlite"), "import",
                    str(tmp_path / "e.jsonl"))
    assert imported.returncode == 0 and "imported 3 evaluation(s)" in imported.stdout
    missing = _cli("history", "--history", str(tmp_path / "none.sqlite"), "list")
    assert missing.returncode == 2 and "no history at" in missing.stderr
    assert not (tmp_path / "none.sqlite").exists()


def test_cli_finds_the_state_the_ini_file_names(tmp_path: Path) -> None:
    """status/stop/history resolve keptn_state_dir and keptn_history as the plugin does, from
    a subfolder too; finding nothing says where it looked and exits 1."""
    (tmp_path / "keptn").mkdir()
    (tmp_path / "keptn" / "shipyard.yaml").write_text("kind: Shipyard\n")
    (tmp_path / "pyproject.toml").write_text(
        '[tool.pytest.ini_options]\nkeptn_state_dir = "build/state"\n'
        'keptn_history = "build/h.sqlite"\n')
    with History(tmp_path / "build" / "h.sqlite") as h:
        eid = _record(h, 10, 1)
    (tmp_path / "sub").mkdir()
    for cwd in (tmp_path, tmp_path / "sub"):
        listed = subprocess.run([sys.executable, "-m", "pytest_keptn", "history", "list"],
                                cwd=cwd, capture_output=True, text=True, timeout=60)
        assert listed.returncode == 0 and eid in listed.stdout, listed.stderr
    status = subprocess.run([sys.executable, "-m", "pytest_keptn", "status"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert status.returncode == 1
    assert status.stderr == (f"pytest-keptn: no deployment recorded (looked in "
                             f"{tmp_path / 'build' / 'state'}: rootdir {tmp_path}, ini file "
                             f"{tmp_path / 'pyproject.toml'})\n")
    stop = subprocess.run([sys.executable, "-m", "pytest_keptn", "stop"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert stop.returncode == 1 and "nothing to stop (looked in" in stop.stderr
    version = subprocess.run([sys.executable, "-m", "pytest_keptn", "--version"],
                             capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("pytest-keptn ")


def test_rescore_under_an_edited_slo(history_location: str, tmp_path: Path) -> None:
    """What-if: a stricter slo.yaml flags the stored evaluations it would have failed."""
    with History(history_location) as h:
        ids = [_record(h, value, i, image="img", tag=f"v{i}")
               for i, value in enumerate((10.0, 90.0, 95.0))]
        h.invalidate(ids[0], "ignored")
    strict = {**SLO, "objectives": [{"sli": "rt", "pass": [{"criteria": ["<50"]}]}]}
    slo_file = tmp_path / "slo.yaml"
    slo_file.write_text(json.dumps(strict))
    done = _cli("history", "--history", history_location, "rescore", "--slo", str(slo_file),
                "--stage", "hardening", "--last", "2")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert ids[2] in lines[0] and "pass 100.0% -> fail 0.0%  CHANGED  (rt: pass -> fail)" in lines[0]
    assert ids[1] in lines[1] and "CHANGED" in lines[1]
    assert lines[-1].endswith("2 evaluation(s) re-scored under " + str(slo_file) +
                              ": 2 would change result")
    lenient = {**SLO, "objectives": [{"sli": "rt", "pass": [{"criteria": ["<1000"]}]}]}
    slo_file.write_text(json.dumps(lenient))
    same = _cli("history", "--history", history_location, "rescore", "--slo", str(slo_file))
    assert same.returncode == 0 and ": 0 would change result" in same.stdout
    assert "same  (no objective changed)" in same.stdout
