"""The evaluation history: Keptn's mongodb-datastore, as one SQLite file (stdlib ``sqlite3``).

WAL journal, a busy timeout, and ``BEGIN IMMEDIATE`` with retries make two processes writing at
once safe. Comparison-basis selection follows §4.1.
"""

from __future__ import annotations

import json
import sqlite3
import time as _time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from pytest_keptn.errors import ConfigError, HistoryError
from pytest_keptn.gate.events import EVALUATION_FINISHED, evaluation_finished_event
from pytest_keptn.gate.scoring import Evaluation
from pytest_keptn.model import Window
from pytest_keptn.spec.slo import SLO, Comparison

INVALIDATED = "sh.keptn.event.evaluation.invalidated"
_RETRY_SECONDS = 60.0
_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS evaluations (
    id TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    stage TEXT NOT NULL,
    service TEXT NOT NULL,
    image TEXT NOT NULL DEFAULT '',
    tag TEXT NOT NULL DEFAULT '',
    time TEXT NOT NULL,
    window_start TEXT NOT NULL DEFAULT '',
    window_end TEXT NOT NULL DEFAULT '',
    result TEXT NOT NULL,
    score REAL NOT NULL,
    invalidated TEXT,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS evaluations_pss ON evaluations (project, stage, service, time);
CREATE TABLE IF NOT EXISTS sequences (
    project TEXT NOT NULL,
    stage TEXT NOT NULL,
    sequence TEXT NOT NULL,
    service TEXT NOT NULL,
    image TEXT NOT NULL,
    tag TEXT NOT NULL,
    result TEXT NOT NULL,
    time TEXT NOT NULL,
    last_task TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS sequences_key ON sequences (project, stage, sequence, service, image, tag);
"""


@dataclass(frozen=True)
class HistoryRow:
    """One recorded evaluation, for reports."""

    id: str
    time: datetime
    project: str
    stage: str
    service: str
    image: str
    tag: str
    result: str
    score: float
    data: dict[str, Any]
    invalidated: str | None = None
    window_start: str = ""
    window_end: str = ""


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_stamp(text: str) -> datetime:
    for layout in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.strptime(text, layout).replace(tzinfo=UTC)
        except ValueError:
            continue
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return datetime.fromtimestamp(0, UTC)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _locked(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class History:
    """Evaluation and sequence history in one SQLite file (created on first use)."""

    def __init__(self, path: str | Path, *, lock_timeout: float = _RETRY_SECONDS) -> None:
        """``lock_timeout``: seconds to wait while another writer holds the file locked."""
        self.path = Path(path)
        self._file = str(self.path)
        self._lock_timeout = max(0.0, float(lock_timeout))
        busy = min(30.0, self._lock_timeout)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self._file, timeout=busy, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise HistoryError(f"cannot open history: {exc}", file=self._file) from None
        try:
            self._db.execute(f"PRAGMA busy_timeout = {int(busy * 1000)}")
            self._retry(lambda: self._db.execute("PRAGMA journal_mode = WAL").fetchone())
            self._transaction(_create_or_upgrade)
        except HistoryError:
            self._db.close()
            raise

    # -- plumbing -----------------------------------------------------------------------------

    def _retry(self, action: Callable[[], _T]) -> _T:
        deadline = _time.monotonic() + self._lock_timeout
        delay = 0.005
        while True:
            try:
                return action()
            except sqlite3.OperationalError as exc:
                if _locked(exc) and _time.monotonic() < deadline:
                    _time.sleep(delay)
                    delay = min(delay * 2, 0.2)
                    continue
                raise HistoryError(f"history store error: {exc}", file=self._file) from None
            except sqlite3.DatabaseError as exc:
                raise HistoryError(
                    f"not a usable history database ({exc})", file=self._file
                ) from None

    def _transaction(self, body: Callable[[_Tx], _T]) -> _T:
        def attempt() -> _T:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                out = body(_Tx(self._db))
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return out

        return self._retry(attempt)

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return self._retry(lambda: self._db.execute(sql, params).fetchall())

    # -- evaluations --------------------------------------------------------------------------

    def record(
        self,
        evaluation: Evaluation,
        *,
        project: str,
        stage: str,
        service: str,
        image: str = "",
        tag: str = "",
        window: Window | None = None,
        time: datetime | None = None,
    ) -> str:
        """Store an evaluation; returns its new event id (a uuid4 string)."""
        event_id = str(uuid.uuid4())
        moment = time or datetime.now(UTC)
        data = evaluation.to_keptn(project=project, stage=stage, service=service, window=window)
        ev = data["evaluation"]
        row = (
            event_id, project, stage, service, image, tag, _stamp(moment),
            ev.get("timeStart", ""), ev.get("timeEnd", ""), evaluation.result,
            float(evaluation.score), None, json.dumps(data),
        )  # fmt: skip
        self._transaction(lambda tx: tx.execute(
            "INSERT INTO evaluations (id, project, stage, service, image, tag, time, window_start,"
            " window_end, result, score, invalidated, data) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            row,
        ))  # fmt: skip
        return event_id

    def previous(
        self, slo_or_comparison: SLO | Comparison, *, project: str, stage: str, service: str
    ) -> list[Evaluation]:
        """The comparison basis as Keptn selects it (§4.1): newest first, at most N."""
        comparison = (
            slo_or_comparison.comparison
            if isinstance(slo_or_comparison, SLO)
            else slo_or_comparison
        )
        sql = (
            "SELECT id, data FROM evaluations WHERE project=? AND stage=? AND service=?"
            " AND invalidated IS NULL"
        )
        params: list[Any] = [project, stage, service]
        results = comparison.result_filter
        if results:
            sql += " AND result IN (" + ",".join("?" * len(results)) + ")"
            params.extend(results)
        sql += " ORDER BY time DESC, rowid DESC LIMIT ?"
        params.append(max(comparison.n, 0))
        return [
            Evaluation.from_keptn(json.loads(data), id=str(eid))
            for eid, data in self._query(sql, tuple(params))
        ]

    def pinned(
        self, ids: Sequence[str], *, project: str, services: Mapping[str, str]
    ) -> dict[str, list[Evaluation]]:
        """A pinned comparison basis: the evaluations ``ids`` grouped by stage, in the order
        given. ``services`` maps the run's stages to their service; an id that is unknown,
        invalidated, or of another project, stage or service is a ConfigError naming it."""
        out: dict[str, list[Evaluation]] = {}
        for eid in ids:
            rows = self._query(
                "SELECT project, stage, service, invalidated, data FROM evaluations WHERE id=?",
                (eid,),
            )
            where = "--keptn-baseline"
            if not rows:
                raise ConfigError(f"no evaluation with id {eid!r} in the history",
                                  file=self._file, field=where)
            project_, stage, service, invalidated, data = rows[0]
            if invalidated is not None:
                raise ConfigError(f"evaluation {eid!r} is invalidated ({invalidated})",
                                  file=self._file, field=where)
            if project_ != project or services.get(stage) != service:
                runs = ", ".join(f"{st}/{sv}" for st, sv in services.items())
                raise ConfigError(
                    f"evaluation {eid!r} is of {project_}: {stage}/{service}, not of a stage "
                    f"this run evaluates ({project}: {runs})", file=self._file, field=where)
            out.setdefault(stage, []).append(Evaluation.from_keptn(json.loads(data), id=eid))
        return out

    def invalidate(self, event_id: str, reason: str) -> None:
        """Exclude an evaluation from every later comparison."""

        def body(tx: _Tx) -> int:
            return tx.execute(
                "UPDATE evaluations SET invalidated=? WHERE id=?",
                (reason or "invalidated", event_id),
            ).rowcount

        if self._transaction(body) == 0:
            raise HistoryError(f"no evaluation with id {event_id!r}", file=self._file)

    def evaluations(
        self,
        project: str | None = None,
        stage: str | None = None,
        service: str | None = None,
        limit: int | None = None,
    ) -> list[HistoryRow]:
        """Recorded evaluations, newest first (invalidated ones included, flagged)."""
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (("project", project), ("stage", stage), ("service", service)):
            if value is not None:
                clauses.append(f"{column}=?")
                params.append(value)
        sql = (
            "SELECT id, time, project, stage, service, image, tag, result, score, data,"
            " invalidated, window_start, window_end FROM evaluations"
        )
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY time DESC, rowid DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [
            HistoryRow(
                id=r[0],
                time=_parse_stamp(r[1]),
                project=r[2],
                stage=r[3],
                service=r[4],
                image=r[5],
                tag=r[6],
                result=r[7],
                score=float(r[8]),
                data=json.loads(r[9]),
                invalidated=r[10],
                window_start=r[11],
                window_end=r[12],
            )
            for r in self._query(sql, tuple(params))
        ]

    # -- sequences ----------------------------------------------------------------------------

    def record_sequence(
        self, *, project: str, stage: str, sequence: str, service: str, image: str, tag: str,
        result: str, last_task: str = "",
    ) -> None:  # fmt: skip
        """Remember how a stage's sequence ended for a build (for later stages and jobs):
        its result and the task it ended with (for ``<task>.result`` trigger selectors)."""
        row = (project, stage, sequence, service, image, tag, result, _stamp(datetime.now(UTC)),
               last_task)
        self._transaction(lambda tx: tx.execute(
            "INSERT INTO sequences (project, stage, sequence, service, image, tag, result, time,"
            " last_task) VALUES (?,?,?,?,?,?,?,?,?)", row,
        ))  # fmt: skip

    def sequence_result(
        self, *, project: str, stage: str, sequence: str, service: str, image: str, tag: str
    ) -> tuple[str, str] | None:
        """The latest recorded (result, last task) of that sequence for that build, or None;
        the last task is "" for records written before it was kept."""
        rows = self._query(
            "SELECT result, last_task FROM sequences WHERE project=? AND stage=? AND sequence=?"
            " AND service=? AND image=? AND tag=? ORDER BY time DESC, rowid DESC LIMIT 1",
            (project, stage, sequence, service, image, tag),
        )
        return (str(rows[0][0]), str(rows[0][1] or "")) if rows else None

    # -- Keptn events -------------------------------------------------------------------------

    def export_events(self, file: str | Path) -> int:
        """Write every evaluation as a Keptn evaluation.finished CloudEvent (JSON lines, oldest
        first), plus an evaluation.invalidated event after each invalidated one."""
        rows = self._query(
            "SELECT id, time, data, invalidated FROM evaluations ORDER BY time, rowid"
        )
        count = 0
        try:
            with open(file, "w", encoding="utf-8") as out:
                for eid, stamp, data, invalidated in rows:
                    moment = _parse_stamp(stamp)
                    event = evaluation_finished_event(json.loads(data), event_id=eid, time=moment)
                    out.write(json.dumps(event) + "\n")
                    count += 1
                    if invalidated is not None:
                        inv = dict(event, id=str(uuid.uuid4()), type=INVALIDATED, triggeredid=eid)
                        inv["data"] = {
                            k: event["data"].get(k) for k in ("project", "stage", "service")
                        }
                        inv["data"]["message"] = invalidated
                        out.write(json.dumps(inv) + "\n")
        except OSError as exc:
            raise HistoryError(
                f"cannot write export: {exc.strerror or exc}", file=str(file)
            ) from None
        return count

    def import_events(self, file: str | Path) -> int:
        """Import Keptn evaluation.finished (and evaluation.invalidated) events from JSON lines.

        Returns how many evaluations were added; already-known ids are skipped.
        """
        name = str(file)
        try:
            lines = Path(file).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise HistoryError(f"cannot read events: {exc}", file=name) from None
        finished: list[tuple[Any, ...]] = []
        invalidations: list[tuple[str, str]] = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError as exc:
                raise HistoryError(f"line {number}: not JSON ({exc.msg})", file=name) from None
            if not isinstance(event, Mapping):
                raise HistoryError(f"line {number}: not a JSON object", file=name)
            kind = str(event.get("type", ""))
            data = event.get("data")
            if not isinstance(data, Mapping):
                raise HistoryError(f"line {number}: event without data", file=name)
            if kind == INVALIDATED:
                trig = str(event.get("triggeredid") or "")
                invalidations.append((trig, str(data.get("message") or "invalidated")))
                continue
            if kind != EVALUATION_FINISHED:
                continue
            eid = event.get("id")
            if not eid:
                raise HistoryError(f"line {number}: evaluation.finished without id", file=name)
            ev = data.get("evaluation") or {}
            evaluation = Evaluation.from_keptn(data)
            finished.append((
                str(eid), str(data.get("project") or ""), str(data.get("stage") or ""),
                str(data.get("service") or ""), "", "",
                _stamp(_parse_stamp(str(event.get("time") or ""))),
                str(ev.get("timeStart") or ""), str(ev.get("timeEnd") or ""),
                evaluation.result, evaluation.score, None, json.dumps(data),
                str(event.get("triggeredid") or ""),
            ))  # fmt: skip

        def body(tx: _Tx) -> int:
            added = 0
            for row in finished:
                added += tx.execute(
                    "INSERT OR IGNORE INTO evaluations (id, project, stage, service, image, tag,"
                    " time, window_start, window_end, result, score, invalidated, data)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    row[:13],
                ).rowcount
            by_trigger = {row[13]: row[0] for row in finished if row[13]}
            for trig, reason in invalidations:
                # 0.8 style matches the finished event's triggeredid, 0.7 style its id
                for target_id in {trig, by_trigger.get(trig, trig)}:
                    tx.execute(
                        "UPDATE evaluations SET invalidated=? WHERE id=?", (reason, target_id)
                    )
            return added

        return self._transaction(body)

    # -- lifetime -----------------------------------------------------------------------------

    def integrity_check(self) -> str:
        return str(self._query("PRAGMA integrity_check")[0][0])

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> History:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _create_or_upgrade(tx: _Tx) -> None:
    tx.executescript_in_tx(_SCHEMA)
    columns = {str(row[1]) for row in tx.rows("PRAGMA table_info(sequences)")}
    if "last_task" not in columns:  # a history written by an earlier version
        tx.execute("ALTER TABLE sequences ADD COLUMN last_task TEXT NOT NULL DEFAULT ''")


class _Tx:
    """The connection inside one ``BEGIN IMMEDIATE`` transaction."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        return self._db.execute(sql, params)

    def executescript_in_tx(self, script: str) -> None:
        for statement in script.split(";"):
            if statement.strip():
                self._db.execute(statement)

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
        yield from self._db.execute(sql, params)
