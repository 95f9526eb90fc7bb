"""The history in one SQLite file (stdlib ``sqlite3``): the default for a file path.

WAL journal, a busy timeout, and ``BEGIN IMMEDIATE`` with retries make several processes
writing at once safe. ``PRAGMA quick_check`` at open finds a damaged page that inserts would
not notice (it reads every page once: 0.24 s for the 204 MiB of 10,000 evaluations of 50
indicators, see docs/benchmarks.md).
"""

from __future__ import annotations

import sqlite3
import time as _time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pytest_keptn.errors import HistoryError
from pytest_keptn.gate._store import MIGRATION_2, Cursor, Step, migrate, version_1

_T = TypeVar("_T")

_VERSION_1 = version_1(if_not_exists="IF NOT EXISTS ", seq="")


def _last_task_of_unnumbered_files(cursor: Cursor) -> None:
    # Files written before the schema had a number may lack this column (the only probe left:
    # from version 1 on, the number says what a file holds).
    columns = {str(row[1]) for row in cursor.rows("PRAGMA table_info(sequences)")}
    if "last_task" not in columns:
        cursor.execute("ALTER TABLE sequences ADD COLUMN last_task TEXT NOT NULL DEFAULT ''")


MIGRATIONS: tuple[tuple[Step, ...], ...] = (
    (*_VERSION_1, _last_task_of_unnumbered_files),
    MIGRATION_2,
)


def _locked(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class _Cursor:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._db.execute(sql, tuple(params)).rowcount

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._db.execute(sql, tuple(params)).fetchall()


class SQLiteStore:
    """A history file, created on first use."""

    tiebreak = "rowid"

    def __init__(self, path: str | Path, *, lock_timeout: float) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self._lock_timeout = max(0.0, float(lock_timeout))
        busy = min(30.0, self._lock_timeout)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.location, timeout=busy, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise HistoryError(f"cannot open history: {exc}", file=self.location) from None
        try:
            self._db.execute(f"PRAGMA busy_timeout = {int(busy * 1000)}")
            self._retry(lambda: self._db.execute("PRAGMA journal_mode = WAL").fetchone())
            verdict = self.check()
            if verdict != "ok":
                raise HistoryError(
                    f"the history database is damaged (PRAGMA quick_check: {verdict}); "
                    "move it away or restore a copy (python -m pytest_keptn history export "
                    "reads what is left)", file=self.location)
            self.write(lambda cursor: migrate(cursor, MIGRATIONS, self.location))
        except HistoryError:
            self._db.close()
            raise

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
                raise HistoryError(f"history store error: {exc}", file=self.location) from None
            except sqlite3.DatabaseError as exc:
                raise HistoryError(
                    f"not a usable history database ({exc})", file=self.location
                ) from None

    def _transaction(self, begin: str, body: Callable[[Cursor], _T]) -> _T:
        def attempt() -> _T:
            self._db.execute(begin)
            try:
                out = body(_Cursor(self._db))
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return out

        return self._retry(attempt)

    def write(self, body: Callable[[Cursor], _T]) -> _T:
        return self._transaction("BEGIN IMMEDIATE", body)

    def read(self, body: Callable[[Cursor], _T]) -> _T:
        return self._transaction("BEGIN", body)

    def check(self) -> str:
        def quick_check() -> list[tuple[Any, ...]]:
            try:
                return self._db.execute("PRAGMA quick_check(3)").fetchall()
            except sqlite3.OperationalError:
                raise  # locked: retried
            except sqlite3.DatabaseError as exc:  # a page too damaged to even check
                return [(str(exc),)]

        found = self._retry(quick_check)
        problems = [str(row[0]) for row in found]
        return "ok" if problems == ["ok"] else "; ".join(problems)

    def integrity_check(self) -> str:
        return str(self._retry(lambda: self._db.execute("PRAGMA integrity_check").fetchone())[0])

    def close(self) -> None:
        self._db.close()
