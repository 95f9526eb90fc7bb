"""The evaluation history: Keptn's mongodb-datastore, as a SQLite file or a PostgreSQL database.

One interface, two backends (``_sqlite.py``, ``_postgres.py``): the SQL is written once here.
Comparison-basis selection follows §4.1. A stored row that cannot be read (damaged by hand or
by a crash) is never fatal: it is left out of comparisons with a warning naming its id
(``History.warnings``), and ``evaluations()`` lists it as unreadable.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from pytest_keptn.errors import ConfigError, HistoryError
from pytest_keptn.gate._store import Cursor, Store
from pytest_keptn.gate.events import evaluation_finished_event
from pytest_keptn.gate.scoring import Evaluation
from pytest_keptn.gate.stored import INVALIDATED, imported, parse_stamp, read_data, stamp
from pytest_keptn.model import Window
from pytest_keptn.spec.slo import SLO, Comparison

_RETRY_SECONDS = 60.0
_ROW = ("id, time, project, stage, service, image, tag, result, score, data, invalidated,"
        " window_start, window_end, context, triggeredid")
_INSERT = (
    "INSERT INTO evaluations (id, project, stage, service, image, tag, time, window_start,"
    " window_end, result, score, invalidated, data, context, triggeredid)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)


@dataclass(frozen=True)
class HistoryRow:
    """One recorded evaluation, for reports. ``unreadable`` says why a damaged row could not be
    read (its ``data`` is then empty); such a row takes part in no comparison."""

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
    context: str = ""
    triggeredid: str = ""
    unreadable: str = ""

    def evaluation(self) -> Evaluation:
        return Evaluation.from_keptn(self.data, id=self.id)


@dataclass(frozen=True)
class SequenceRecord:
    """How a stage's sequence ended for a build: its result, the task it ended with ("" for
    records written before it was kept) and the delivery's Keptn context ("" likewise)."""

    result: str
    last_task: str
    context: str


@dataclass(frozen=True)
class Approval:
    """A manual approval of a build in a stage: pending until answered (across CI jobs)."""

    id: str
    project: str
    stage: str
    service: str
    image: str
    tag: str
    sequence: str
    context: str
    requested: datetime
    decision: str | None = None  # "approved" | "rejected" once answered
    who: str = ""
    answered: datetime | None = None

    @property
    def pending(self) -> bool:
        return self.decision is None


class ImportRefused(HistoryError):
    """``import_events`` found bad events; ``problems`` has one line per bad event."""

    def __init__(self, problems: Sequence[str], *, file: str) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(self.problems), file=file)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _row(raw: tuple[Any, ...]) -> HistoryRow:
    data, problem = read_data(raw[9])
    try:
        score = float(raw[8])
        if not math.isfinite(score):
            raise ValueError(score)
    except (TypeError, ValueError):
        score, problem = 0.0, problem or f"score is {raw[8]!r}, not a number"
    return HistoryRow(
        id=_text(raw[0]), time=parse_stamp(_text(raw[1])), project=_text(raw[2]),
        stage=_text(raw[3]), service=_text(raw[4]), image=_text(raw[5]), tag=_text(raw[6]),
        result=_text(raw[7]), score=score, data=data,
        invalidated=None if raw[10] is None else str(raw[10]),
        window_start=_text(raw[11]), window_end=_text(raw[12]), context=_text(raw[13]),
        triggeredid=_text(raw[14]), unreadable=problem,
    )  # fmt: skip


def _approval(raw: tuple[Any, ...]) -> Approval:
    return Approval(
        id=raw[0], project=raw[1], stage=raw[2], service=raw[3], image=raw[4], tag=raw[5],
        sequence=raw[6], context=raw[7], requested=parse_stamp(raw[8]), decision=raw[9],
        who=raw[10] or "", answered=parse_stamp(raw[11]) if raw[11] else None,
    )  # fmt: skip


_APPROVAL = ("id, project, stage, service, image, tag, sequence, context, requested, decision,"
             " who, answered")


def open_store(location: str | Path, *, lock_timeout: float) -> Store:
    """The backend for ``location``: a ``postgresql://`` URL or a SQLite file path."""
    from pytest_keptn.gate._postgres import PostgresStore, is_postgres_url

    if isinstance(location, str) and is_postgres_url(location):
        return PostgresStore(location, lock_timeout=lock_timeout)
    from pytest_keptn.gate._sqlite import SQLiteStore

    return SQLiteStore(location, lock_timeout=lock_timeout)


def history_location(setting: str | None, state_dir: Path) -> str:
    """Where the history lives: the ``keptn_history`` setting (a file or a ``postgresql://``
    URL), else ``<state dir>/history.sqlite``."""
    return setting if setting else str(state_dir / "history.sqlite")


def check_history_setting(setting: str | None) -> None:
    """A ConfigError when ``setting`` is a ``postgresql://`` URL that cannot be used: the
    driver is missing or the URL has no host or database."""
    from pytest_keptn.gate._postgres import check_url, is_postgres_url

    if setting and is_postgres_url(setting):
        check_url(setting)


class History:
    """Evaluation, sequence and approval history (created on first use).

    ``location``: a SQLite file path, or a libpq URL ``postgresql://USER@HOST:PORT/DBNAME``
    (password from ``PGPASSWORD``/``.pgpass``/``PGSERVICE`` or the URL; never printed).
    """

    def __init__(self, location: str | Path, *, lock_timeout: float = _RETRY_SECONDS) -> None:
        """``lock_timeout``: seconds to wait while another writer holds the store locked."""
        self._store = open_store(location, lock_timeout=lock_timeout)
        self.location = self._store.location
        self.warnings: list[str] = []  # rows skipped as unreadable, oldest warning first

    def take_warnings(self) -> list[str]:
        """The warnings since the last call (and forget them)."""
        out, self.warnings = self.warnings, []
        return out

    def _skip(self, row: HistoryRow, why: str) -> None:
        line = f"history: evaluation {row.id} is unreadable ({row.unreadable}); {why}"
        if line not in self.warnings:
            self.warnings.append(line)

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
        context: str = "",
        triggeredid: str = "",
        event_id: str | None = None,
    ) -> str:
        """Store an evaluation; returns its event id (a new uuid4 unless ``event_id``)."""
        event_id = event_id or str(uuid.uuid4())
        moment = time or datetime.now(UTC)
        data = evaluation.to_keptn(project=project, stage=stage, service=service, window=window)
        ev = data["evaluation"]
        row = (
            event_id, project, stage, service, image, tag, stamp(moment),
            ev.get("timeStart", ""), ev.get("timeEnd", ""), evaluation.outcome,
            float(evaluation.score), None, json.dumps(data), context, triggeredid,
        )  # fmt: skip
        self._store.write(lambda cur: cur.execute(_INSERT, row))
        return event_id

    def previous(
        self,
        slo_or_comparison: SLO | Comparison,
        *,
        project: str,
        stage: str,
        service: str,
        before: str | None = None,
    ) -> list[Evaluation]:
        """The comparison basis as Keptn selects it (§4.1): newest first, at most N, in one
        read transaction. ``before``: only evaluations stored before that one (re-scoring).
        Unreadable rows are left out (a warning each) and the next readable ones taken."""
        comparison = (
            slo_or_comparison.comparison
            if isinstance(slo_or_comparison, SLO)
            else slo_or_comparison
        )
        tie = self._store.tiebreak
        # an errored evaluation measured nothing: never a comparison basis
        sql = (f"SELECT {_ROW} FROM evaluations WHERE project=? AND stage=? AND service=?"
               " AND invalidated IS NULL AND result <> 'errored'")
        params: list[Any] = [project, stage, service]
        if before is not None:
            sql += (f" AND (time < (SELECT time FROM evaluations WHERE id=?) OR (time ="
                    f" (SELECT time FROM evaluations WHERE id=?) AND {tie} <"
                    f" (SELECT {tie} FROM evaluations WHERE id=?)))")
            params += [before, before, before]
        results = comparison.result_filter
        if results:
            sql += " AND result IN (" + ",".join("?" * len(results)) + ")"
            params.extend(results)
        sql += f" ORDER BY time DESC, {tie} DESC LIMIT ? OFFSET ?"
        wanted = max(comparison.n, 0)

        def select(cur: Cursor) -> list[HistoryRow]:
            found: list[HistoryRow] = []
            offset = 0
            while len(found) < wanted:
                page = [_row(r) for r in cur.rows(sql, (*params, wanted, offset))]
                for row in page:
                    if row.unreadable:
                        self._skip(row, "left out of the comparison")
                    elif len(found) < wanted:
                        found.append(row)
                if len(page) < wanted:
                    break
                offset += len(page)
            return found

        return [row.evaluation() for row in self._store.read(select)]

    def pinned(
        self, ids: Sequence[str], *, project: str, services: Mapping[str, str]
    ) -> dict[str, list[Evaluation]]:
        """A pinned comparison basis: the evaluations ``ids`` grouped by stage, in the order
        given. ``services`` maps the run's stages to their service; an id that is unknown,
        invalidated, unreadable, or of another project, stage or service is a ConfigError."""
        out: dict[str, list[Evaluation]] = {}
        where = "--keptn-baseline"
        for eid in ids:
            rows = self._rows_by_id(eid)
            if not rows:
                raise ConfigError(f"no evaluation with id {eid!r} in the history",
                                  file=self.location, field=where)
            row = _row(rows[0])
            if row.invalidated is not None:
                raise ConfigError(f"evaluation {eid!r} is invalidated ({row.invalidated})",
                                  file=self.location, field=where)
            if row.unreadable:
                raise ConfigError(f"evaluation {eid!r} is unreadable ({row.unreadable})",
                                  file=self.location, field=where)
            if row.project != project or services.get(row.stage) != row.service:
                runs = ", ".join(f"{st}/{sv}" for st, sv in services.items())
                raise ConfigError(
                    f"evaluation {eid!r} is of {row.project}: {row.stage}/{row.service}, not of "
                    f"a stage this run evaluates ({project}: {runs})",
                    file=self.location, field=where)
            out.setdefault(row.stage, []).append(row.evaluation())
        return out

    def _rows_by_id(self, event_id: str) -> list[tuple[Any, ...]]:
        return self._store.read(
            lambda cur: cur.rows(f"SELECT {_ROW} FROM evaluations WHERE id=?", (event_id,)))

    def invalidate(self, event_id: str, reason: str) -> None:
        """Exclude an evaluation from every later comparison."""
        changed = self._store.write(lambda cur: cur.execute(
            "UPDATE evaluations SET invalidated=? WHERE id=?", (reason or "invalidated", event_id)))
        if changed == 0:
            raise HistoryError(f"no evaluation with id {event_id!r}", file=self.location)

    def evaluations(
        self,
        project: str | None = None,
        stage: str | None = None,
        service: str | None = None,
        limit: int | None = None,
        *,
        image: str | None = None,
        tag: str | None = None,
        context: str | None = None,
    ) -> list[HistoryRow]:
        """Recorded evaluations, newest first (invalidated and unreadable ones included,
        flagged)."""
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (("project", project), ("stage", stage), ("service", service),
                              ("image", image), ("tag", tag), ("context", context)):
            if value is not None:
                clauses.append(f"{column}=?")
                params.append(value)
        sql = f"SELECT {_ROW} FROM evaluations"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += f" ORDER BY time DESC, {self._store.tiebreak} DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [_row(r) for r in self._store.read(lambda cur: cur.rows(sql, params))]

    # -- sequences ----------------------------------------------------------------------------

    def record_sequence(
        self, *, project: str, stage: str, sequence: str, service: str, image: str, tag: str,
        result: str, last_task: str = "", context: str = "",
    ) -> None:  # fmt: skip
        """Remember how a stage's sequence ended for a build (for later stages and jobs):
        its result, the task it ended with (for ``<task>.result`` trigger selectors) and the
        delivery's Keptn context (a later stage in another CI job continues it)."""
        row = (project, stage, sequence, service, image, tag, result, stamp(datetime.now(UTC)),
               last_task, context)
        self._store.write(lambda cur: cur.execute(
            "INSERT INTO sequences (project, stage, sequence, service, image, tag, result, time,"
            " last_task, context) VALUES (?,?,?,?,?,?,?,?,?,?)", row,
        ))  # fmt: skip

    def sequence_record(
        self, *, project: str, stage: str, sequence: str, service: str, image: str, tag: str
    ) -> SequenceRecord | None:
        """The latest record of that sequence for that build, or None."""
        rows = self._store.read(lambda cur: cur.rows(
            "SELECT result, last_task, context FROM sequences WHERE project=? AND stage=?"
            " AND sequence=? AND service=? AND image=? AND tag=?"
            f" ORDER BY time DESC, {self._store.tiebreak} DESC LIMIT 1",
            (project, stage, sequence, service, image, tag),
        ))  # fmt: skip
        if not rows:
            return None
        result, last, context = rows[0]
        return SequenceRecord(str(result), str(last or ""), str(context or ""))

    def sequence_result(
        self, *, project: str, stage: str, sequence: str, service: str, image: str, tag: str
    ) -> tuple[str, str] | None:
        """The latest recorded (result, last task) of that sequence for that build, or None."""
        found = self.sequence_record(project=project, stage=stage, sequence=sequence,
                                     service=service, image=image, tag=tag)
        return None if found is None else (found.result, found.last_task)

    # -- approvals (a manual approval task waiting across CI jobs) -------------------------------

    def record_pending_approval(
        self, *, project: str, stage: str, service: str, image: str, tag: str, sequence: str,
        context: str = "", time: datetime | None = None,
    ) -> Approval:  # fmt: skip
        """Ask for an approval of ``image:tag`` in ``stage``; a question already pending for
        the same build, sequence and context is returned instead of asking twice."""
        key = (project, stage, service, image, tag, sequence, context)

        def body(cur: Cursor) -> Approval:
            found = cur.rows(
                f"SELECT {_APPROVAL} FROM approvals WHERE project=? AND stage=? AND service=?"
                " AND image=? AND tag=? AND sequence=? AND context=? AND decision IS NULL"
                " ORDER BY requested DESC LIMIT 1", key)
            if found:
                return _approval(found[0])
            row = (str(uuid.uuid4()), *key, stamp(time or datetime.now(UTC)))
            cur.execute(f"INSERT INTO approvals ({_APPROVAL}) VALUES (?,?,?,?,?,?,?,?,?,NULL,'',"
                        "NULL)", row)
            return _approval((*row, None, "", None))

        return self._store.write(body)

    def approval(self, approval_id: str) -> Approval | None:
        rows = self._store.read(lambda cur: cur.rows(
            f"SELECT {_APPROVAL} FROM approvals WHERE id=?", (approval_id,)))
        return _approval(rows[0]) if rows else None

    def pending_approval(
        self, *, project: str, stage: str, service: str, image: str, tag: str,
        sequence: str | None = None,
    ) -> Approval | None:  # fmt: skip
        """The newest unanswered approval of that build in that stage, or None."""
        sql = (f"SELECT {_APPROVAL} FROM approvals WHERE project=? AND stage=? AND service=?"
               " AND image=? AND tag=? AND decision IS NULL")
        params: list[Any] = [project, stage, service, image, tag]
        if sequence is not None:
            sql += " AND sequence=?"
            params.append(sequence)
        rows = self._store.read(lambda cur: cur.rows(sql + " ORDER BY requested DESC LIMIT 1",
                                                     params))
        return _approval(rows[0]) if rows else None

    def approvals(self, project: str | None = None, *, pending_only: bool = False
                  ) -> list[Approval]:
        """Approvals, newest first."""
        sql = f"SELECT {_APPROVAL} FROM approvals WHERE 1=1"
        params: list[Any] = []
        if project is not None:
            sql += " AND project=?"
            params.append(project)
        if pending_only:
            sql += " AND decision IS NULL"
        rows = self._store.read(lambda cur: cur.rows(sql + " ORDER BY requested DESC", params))
        return [_approval(r) for r in rows]

    def answer_approval(
        self, approval_id: str, *, approve: bool, who: str, time: datetime | None = None
    ) -> Approval:
        """Approve or reject a pending approval (once: a second answer is a HistoryError
        saying who answered first)."""
        decision = "approved" if approve else "rejected"

        def body(cur: Cursor) -> Approval:
            changed = cur.execute(
                "UPDATE approvals SET decision=?, who=?, answered=? WHERE id=?"
                " AND decision IS NULL",
                (decision, who, stamp(time or datetime.now(UTC)), approval_id))
            rows = cur.rows(f"SELECT {_APPROVAL} FROM approvals WHERE id=?", (approval_id,))
            if not rows:
                raise HistoryError(f"no approval with id {approval_id!r}", file=self.location)
            found = _approval(rows[0])
            if changed == 0:
                raise HistoryError(
                    f"approval {approval_id!r} was already {found.decision} by {found.who or '?'}"
                    f" at {found.answered:%Y-%m-%d %H:%M:%S}Z", file=self.location)
            return found

        return self._store.write(body)

    # -- Keptn events -------------------------------------------------------------------------

    def export_events(self, file: str | Path) -> int:
        """Write every evaluation as a Keptn evaluation.finished CloudEvent (JSON lines, oldest
        first, with the build and the Keptn context), plus an evaluation.invalidated event
        after each invalidated one. Unreadable rows are left out with a warning each."""
        rows = [_row(r) for r in self._store.read(lambda cur: cur.rows(
            f"SELECT {_ROW} FROM evaluations ORDER BY time, {self._store.tiebreak}"))]
        count = 0
        try:
            with open(file, "w", encoding="utf-8") as out:
                for row in rows:
                    if row.unreadable:
                        self._skip(row, "not exported")
                        continue
                    event = evaluation_finished_event(
                        row.data, event_id=row.id, time=row.time,
                        shkeptncontext=row.context or None, triggeredid=row.triggeredid or None,
                        image=row.image, tag=row.tag)
                    out.write(json.dumps(event) + "\n")
                    count += 1
                    if row.invalidated is not None:
                        inv = dict(event, id=str(uuid.uuid4()), type=INVALIDATED,
                                   triggeredid=row.triggeredid or row.id)
                        inv["data"] = {
                            k: event["data"].get(k) for k in ("project", "stage", "service")
                        }
                        inv["data"]["message"] = row.invalidated
                        out.write(json.dumps(inv) + "\n")
        except OSError as exc:
            raise HistoryError(
                f"cannot write export: {exc.strerror or exc}", file=str(file)
            ) from None
        return count

    def import_events(self, file: str | Path) -> int:
        """Import Keptn evaluation.finished (and evaluation.invalidated) events from JSON lines.

        Returns how many evaluations were added; already-known ids are skipped. Every event is
        checked first: bad ones raise ``ImportRefused`` naming each line, and nothing is
        imported.
        """
        name = str(file)
        try:
            lines = Path(file).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise HistoryError(f"cannot read events: {exc}", file=name) from None
        finished: list[tuple[Any, ...]] = []
        invalidations: list[tuple[str, str]] = []
        problems: list[str] = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            parsed, problem = imported(line)
            if problem:
                problems.append(f"line {number}: {problem}")
            elif parsed is not None and parsed[0] == "invalidated":
                invalidations.append(parsed[1])
            elif parsed is not None:
                finished.append(parsed[1])
        if problems:
            raise ImportRefused(problems, file=name)

        def body(cur: Cursor) -> int:
            added = 0
            for row in finished:
                added += cur.execute(_INSERT + " ON CONFLICT (id) DO NOTHING", row)
            by_trigger = {row[14]: row[0] for row in finished if row[14]}
            for trig, reason in invalidations:
                # 0.8 style matches the finished event's triggeredid, 0.7 style its id
                if trig:
                    cur.execute("UPDATE evaluations SET invalidated=? WHERE id=? OR id=?"
                                " OR triggeredid=?", (reason, trig, by_trigger.get(trig, trig), trig))
            return added

        return self._store.write(body)

    # -- lifetime -----------------------------------------------------------------------------

    def integrity_check(self) -> str:
        """A structural check of the store (SQLite's ``PRAGMA quick_check``): "ok" or what
        is wrong."""
        return self._store.check()

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> History:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
