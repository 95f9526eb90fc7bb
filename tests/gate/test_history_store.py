"""The history's newer parts on both backends: the numbered schema, unreadable rows, the
delivery's context, filters, pending approvals and the missing driver."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pytest_keptn.api import History, evaluate, load_slo
from pytest_keptn.errors import ConfigError, HistoryError
from pytest_keptn.gate._postgres import redact
from tests.conftest import BACKENDS

SLO = {
    "comparison": {"compare_with": "several_results", "number_of_comparison_results": 3,
                   "include_result_with_score": "all"},
    "objectives": [{"sli": "rt", "pass": [{"criteria": ["<100"]}]}],
    "total_score": {"pass": "90%"},
}  # fmt: skip
T0 = datetime(2021, 6, 1, tzinfo=UTC)
WHERE = {"project": "p", "stage": "hardening", "service": "svc"}


def _record(h: History, value: float, minute: int, **extra: str) -> str:
    return h.record(evaluate(SLO, {"rt": value}), **WHERE, time=T0 + timedelta(minutes=minute),
                    **extra)


def _damage(location: str, event_id: str, data: str) -> None:
    """Overwrite a stored row's data as a crash or a hand edit could."""
    if location.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(location, autocommit=True) as conn:
            conn.execute("UPDATE evaluations SET data=%s WHERE id=%s", (data, event_id))
    else:
        with sqlite3.connect(location) as db:
            db.execute("UPDATE evaluations SET data=? WHERE id=?", (data, event_id))


def _schema_version(location: str) -> int:
    if location.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(location) as conn:
            row = conn.execute("SELECT version FROM schema_version").fetchone()
    else:
        with sqlite3.connect(location) as db:
            row = db.execute("SELECT version FROM schema_version").fetchone()
    assert row is not None
    return int(row[0])


DAMAGE = [
    ("{not json", "data is not JSON"),
    ("[1, 2]", "data is a list, not an object"),
    (json.dumps({"evaluation": {"indicatorResults": [
        {"score": 1, "value": {"metric": "rt", "value": "12"}}]}}),
     "evaluation.indicatorResults[0].value.value is a string, not a number"),
    (json.dumps({"evaluation": {"indicatorResults": [{"score": 1, "value": "x"}]}}),
     "evaluation.indicatorResults[0].value is a string, not an object"),
]


@pytest.mark.parametrize(("data", "why"), DAMAGE, ids=["json", "list", "string", "value"])
def test_an_unreadable_row_is_skipped_with_a_warning(
    history_location: str, data: str, why: str
) -> None:
    with History(history_location) as h:
        ids = [_record(h, 10 + i, i) for i in range(5)]
        _damage(history_location, ids[3], data)
        previous = h.previous(load_slo(SLO), **WHERE)
        # the damaged one is left out and the next readable one takes its place
        assert [e.id for e in previous] == [ids[4], ids[2], ids[1]]
        (warning,) = h.take_warnings()
        assert ids[3] in warning and why in warning and "left out of the comparison" in warning
        rows = h.evaluations()
        assert [r.id for r in rows if r.unreadable] == [ids[3]]
        assert why in rows[1].unreadable and rows[1].data == {}
        # a new evaluation is still scored and recorded
        new = _record(h, 10, 9)
        assert h.evaluations(limit=1)[0].id == new
        with pytest.raises(ConfigError, match="unreadable"):
            h.pinned([ids[3]], project="p", services={"hardening": "svc"})


def test_a_score_that_is_not_a_number_is_unreadable(tmp_path: Path) -> None:
    location = str(tmp_path / "h.sqlite")
    with History(location) as h:
        a, b = _record(h, 10, 1), _record(h, 11, 2)
        with sqlite3.connect(location) as db:  # SQLite stores whatever it is given
            db.execute("UPDATE evaluations SET score='high' WHERE id=?", (b,))
        assert [e.id for e in h.previous(load_slo(SLO), **WHERE)] == [a]
        assert "score is 'high'" in h.evaluations()[0].unreadable


def test_the_schema_has_a_number(history_location: str) -> None:
    History(history_location).close()
    assert _schema_version(history_location) == 2
    with History(history_location) as h:  # opening again changes nothing
        _record(h, 1, 1)
    assert _schema_version(history_location) == 2


def test_a_newer_schema_is_refused(history_location: str) -> None:
    History(history_location).close()
    if history_location.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(history_location, autocommit=True) as conn:
            conn.execute("UPDATE schema_version SET version=99")
    else:
        with sqlite3.connect(history_location) as db:
            db.execute("UPDATE schema_version SET version=99")
    with pytest.raises(HistoryError, match="schema version 99, newer than"):
        History(history_location)


CREATOR = textwrap.dedent("""
    import sys
    from pytest_keptn.api import History
    with History(sys.argv[1]) as h:
        h.record_sequence(project="p", stage="s", sequence="d", service="x", image="i",
                          tag=sys.argv[2], result="pass")
""")


@pytest.mark.slow
@pytest.mark.parametrize("history_location", BACKENDS, indirect=True)
def test_several_runs_create_the_schema_at_once(history_location: str) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", CREATOR, history_location, str(i)],
                              stderr=subprocess.PIPE, text=True) for i in range(6)]
    outcomes = [(p.wait(timeout=120), p.stderr.read() if p.stderr else "") for p in procs]
    assert [rc for rc, _ in outcomes] == [0] * 6, outcomes
    assert _schema_version(history_location) == 2
    with History(history_location) as h:
        for i in range(6):
            assert h.sequence_result(project="p", stage="s", sequence="d", service="x",
                                     image="i", tag=str(i)) == ("pass", "")


def test_context_and_build_are_kept_and_filter_the_list(history_location: str) -> None:
    with History(history_location) as h:
        a = _record(h, 10, 1, image="img", tag="v1", context="ctx-1", triggeredid="t-1")
        _record(h, 10, 2, image="img", tag="v2", context="ctx-2")
        assert [r.id for r in h.evaluations(tag="v1")] == [a]
        assert [r.id for r in h.evaluations(context="ctx-1")] == [a]
        assert len(h.evaluations(image="img")) == 2
        row = h.evaluations(tag="v1")[0]
        assert (row.context, row.triggeredid) == ("ctx-1", "t-1")
        key = {"project": "p", "stage": "hardening", "sequence": "delivery", "service": "svc",
               "image": "img", "tag": "v1"}
        h.record_sequence(**key, result="pass", last_task="release", context="ctx-1")
        found = h.sequence_record(**key)
        assert found is not None and (found.result, found.last_task, found.context) == (
            "pass", "release", "ctx-1")


def test_previous_before_an_evaluation(history_location: str) -> None:
    with History(history_location) as h:
        ids = [_record(h, 10, i) for i in range(6)]
        before = h.previous(load_slo(SLO), **WHERE, before=ids[4])
        assert [e.id for e in before] == [ids[3], ids[2], ids[1]]
        assert h.previous(load_slo(SLO), **WHERE, before=ids[0]) == []


def test_export_carries_build_and_context_and_import_keeps_them(
    history_location: str, tmp_path: Path
) -> None:
    with History(history_location) as h:
        a = _record(h, 10, 1, image="img", tag="v1", context="ctx-1", triggeredid="t-1")
        h.export_events(tmp_path / "out.jsonl")
    (event,) = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert event["id"] == a and event["shkeptncontext"] == "ctx-1"
    assert event["triggeredid"] == "t-1"
    assert event["data"]["labels"] == {"image": "img", "tag": "v1"}
    assert event["data"]["configurationChange"] == {"values": {"image": "img:v1"}}
    with History(tmp_path / "copy.sqlite") as copy:
        assert copy.import_events(tmp_path / "out.jsonl") == 1
        row = copy.evaluations()[0]
        assert (row.image, row.tag, row.context, row.triggeredid) == ("img", "v1", "ctx-1", "t-1")
        assert "labels" not in row.data


def test_pending_approval_is_asked_once_and_answered_once(history_location: str) -> None:
    build = {"project": "p", "stage": "production", "service": "svc", "image": "img",
             "tag": "v1"}
    with History(history_location) as h:
        assert h.pending_approval(**build) is None
        asked = h.record_pending_approval(**build, sequence="delivery", context="ctx-1")
        again = h.record_pending_approval(**build, sequence="delivery", context="ctx-1")
        assert again.id == asked.id and asked.pending and asked.decision is None
        assert h.pending_approval(**build) == asked
        assert h.pending_approval(**build, sequence="other") is None
        assert [a.id for a in h.approvals(pending_only=True)] == [asked.id]
        when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        answered = h.answer_approval(asked.id, approve=True, who="alice", time=when)
        assert (answered.decision, answered.who, answered.answered) == ("approved", "alice", when)
        assert not answered.pending and h.pending_approval(**build) is None
        assert h.approval(asked.id) == answered
        with pytest.raises(HistoryError, match="already approved by alice"):
            h.answer_approval(asked.id, approve=False, who="bob")
        with pytest.raises(HistoryError, match="no approval with id 'nope'"):
            h.answer_approval("nope", approve=True, who="bob")
        # a new question for the same build after the answer is a new approval
        later = h.record_pending_approval(**build, sequence="delivery", context="ctx-1")
        assert later.id != asked.id
        rejected = h.answer_approval(later.id, approve=False, who="bob")
        assert rejected.decision == "rejected"
        assert h.approvals(pending_only=True) == []
        assert len(h.approvals("p")) == 2


def test_postgres_url_without_psycopg_is_a_usage_error() -> None:
    code = textwrap.dedent("""
        import sys
        sys.modules["psycopg"] = None  # as if the extra was not installed
        from pytest_keptn.api import History
        from pytest_keptn.errors import ConfigError
        try:
            History("postgresql://u:pw@127.0.0.1:1/db")
        except ConfigError as exc:
            print(exc)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert out.strip() == ("keptn_history: a postgresql:// history needs psycopg: "
                           "pip install 'pytest-keptn[postgresql]'")


def test_redact_drops_every_password() -> None:
    assert redact("postgresql://u:s3cr%2Ft@db:5432/keptn") == "postgresql://u@db:5432/keptn"
    assert redact("postgres://db/keptn?password=x&sslmode=require") == (
        "postgres://db/keptn?password=%2A%2A%2A&sslmode=require")


@pytest.mark.postgresql
@pytest.mark.slow
def test_postgres_that_goes_away_is_a_one_line_error_and_comes_back(
    postgres_url: str, postgres_server: object
) -> None:
    import psycopg

    with History(postgres_url) as h:
        _record(h, 10, 1)
        with psycopg.connect(postgres_url.split("?")[0], autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                          " WHERE application_name = 'pytest-keptn'")
        with pytest.raises(HistoryError) as info:
            _record(h, 10, 2)
        assert "\n" not in str(info.value) and str(info.value).startswith("postgresql://")
        _record(h, 10, 3)  # the next call connects again
        assert len(h.evaluations()) == 2


def test_approve_command_lists_and_answers(history_location: str) -> None:
    build = {"project": "p", "stage": "production", "service": "svc", "image": "img",
             "tag": "v1"}
    with History(history_location) as h:
        asked = h.record_pending_approval(**build, sequence="delivery")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pytest_keptn", "approve", "--history",
                               history_location, *args], capture_output=True, text=True,
                              timeout=60, check=False)

    listed = cli()
    assert listed.returncode == 0 and asked.id in listed.stdout and "img:v1" in listed.stdout
    done = cli(asked.id, "--who", "alice")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"approved img:v1 in production ({asked.id}) by alice"
    twice = cli(asked.id, "--reject", "--who", "bob")
    assert twice.returncode == 2 and "already approved by alice" in twice.stderr
    none = cli()
    assert none.returncode == 1 and "no pending approvals in" in none.stderr
