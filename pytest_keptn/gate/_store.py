"""What the history needs from a database, and the schema both backends migrate to.

The history (``gate/history.py``) writes its SQL once, with ``?`` placeholders; a backend runs
it inside a transaction and reports errors as one-line ``HistoryError``s. The schema carries a
number (table ``schema_version``) and each backend applies the migrations it has not seen yet,
inside one transaction that other writers wait for.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from pytest_keptn.errors import HistoryError

_T = TypeVar("_T")


class Cursor(Protocol):
    """The connection inside one transaction; SQL uses ``?`` placeholders."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; returns how many rows it changed."""
        ...

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a query; returns every row."""
        ...


class Store(Protocol):
    """One history database (SQLite file or PostgreSQL database)."""

    location: str  # for messages: a file path, or a URL without its password
    tiebreak: str  # the column that orders rows written at the same time (insertion order)

    def write(self, body: Callable[[Cursor], _T]) -> _T:
        """Run ``body`` in one write transaction (retried while another writer holds a lock)."""
        ...

    def read(self, body: Callable[[Cursor], _T]) -> _T:
        """Run ``body`` in one read transaction: every query sees the same snapshot."""
        ...

    def check(self) -> str:
        """A cheap structural check of the database: ``"ok"`` or what is wrong."""
        ...

    def close(self) -> None: ...


def version_1(*, if_not_exists: str, seq: str) -> tuple[str, ...]:
    """The schema before it had a number. ``seq``: the column definition that orders rows
    written at the same time ("" where the database has one built in, SQLite's rowid);
    ``if_not_exists``: "IF NOT EXISTS " where files from before the number exist."""
    return (
        f"""CREATE TABLE {if_not_exists}evaluations (
            id TEXT PRIMARY KEY,{seq}
            project TEXT NOT NULL,
            stage TEXT NOT NULL,
            service TEXT NOT NULL,
            image TEXT NOT NULL DEFAULT '',
            tag TEXT NOT NULL DEFAULT '',
            time TEXT NOT NULL,
            window_start TEXT NOT NULL DEFAULT '',
            window_end TEXT NOT NULL DEFAULT '',
            result TEXT NOT NULL,
            score DOUBLE PRECISION NOT NULL,
            invalidated TEXT,
            data TEXT NOT NULL
        )""",
        f"CREATE INDEX {if_not_exists}evaluations_pss ON evaluations"
        " (project, stage, service, time)",
        f"""CREATE TABLE {if_not_exists}sequences ({seq}
            project TEXT NOT NULL,
            stage TEXT NOT NULL,
            sequence TEXT NOT NULL,
            service TEXT NOT NULL,
            image TEXT NOT NULL,
            tag TEXT NOT NULL,
            result TEXT NOT NULL,
            time TEXT NOT NULL,
            last_task TEXT NOT NULL DEFAULT ''
        )""",
        f"CREATE INDEX {if_not_exists}sequences_key ON sequences"
        " (project, stage, sequence, service, image, tag)",
    )


# Version 2 adds what a delivery is traced by (the Keptn context and the sequence run's
# triggered id) and the approvals that wait across CI jobs.
SCHEMA_VERSION = 2
MIGRATION_2 = (
    "ALTER TABLE evaluations ADD COLUMN context TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE evaluations ADD COLUMN triggeredid TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE sequences ADD COLUMN context TEXT NOT NULL DEFAULT ''",
    "CREATE INDEX evaluations_build ON evaluations (project, service, image, tag)",
    """CREATE TABLE approvals (
        id TEXT PRIMARY KEY,
        project TEXT NOT NULL,
        stage TEXT NOT NULL,
        service TEXT NOT NULL,
        image TEXT NOT NULL,
        tag TEXT NOT NULL,
        sequence TEXT NOT NULL,
        context TEXT NOT NULL,
        requested TEXT NOT NULL,
        decision TEXT,
        who TEXT NOT NULL DEFAULT '',
        answered TEXT
    )""",
    "CREATE INDEX approvals_build ON approvals (project, stage, service, image, tag)",
)

Step = str | Callable[[Cursor], None]


def migrate(cursor: Cursor, steps: Sequence[Sequence[Step]], location: str) -> None:
    """Bring the schema to ``len(steps)`` (``steps[i]`` makes version i+1); call in a write
    transaction that no other process can run at the same time."""
    cursor.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    found = cursor.rows("SELECT version FROM schema_version")
    current = int(found[0][0]) if found else 0
    if current > len(steps):
        raise HistoryError(
            f"the history has schema version {current}, newer than this pytest-keptn knows "
            f"({len(steps)}): upgrade pytest-keptn", file=location)
    for version in range(current + 1, len(steps) + 1):
        for step in steps[version - 1]:
            if isinstance(step, str):
                cursor.execute(step)
            else:
                step(cursor)
    if not found:
        cursor.execute("INSERT INTO schema_version (version) VALUES (?)", (len(steps),))
    elif current != len(steps):
        cursor.execute("UPDATE schema_version SET version=?", (len(steps),))
