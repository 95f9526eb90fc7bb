"""The history in a PostgreSQL database (psycopg 3), shared by every CI runner of a team.

The URL is libpq's (``postgresql://USER@HOST:PORT/DBNAME``, also ``postgres://``); the password
comes from libpq's own sources (``PGPASSWORD``, ``~/.pgpass``, ``PGSERVICE``) or the URL, and is
never part of a message: ``location`` is the URL without it, and every error text is scrubbed.
Several runs creating the schema at once wait for each other on an advisory lock.
"""

from __future__ import annotations

import os
import time as _time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from pytest_keptn.errors import ConfigError, HistoryError
from pytest_keptn.gate._store import MIGRATION_2, Cursor, Step, migrate, version_1

if TYPE_CHECKING:
    import psycopg

_T = TypeVar("_T")
SCHEMES = ("postgresql://", "postgres://")
_MIGRATION_LOCK = 0x6B65_7074  # "kept": pg_advisory_xact_lock key for schema changes

_VERSION_1 = version_1(if_not_exists="", seq="\n            seq BIGINT GENERATED ALWAYS AS IDENTITY,")
MIGRATIONS: tuple[tuple[Step, ...], ...] = (_VERSION_1, MIGRATION_2)


def is_postgres_url(location: str) -> bool:
    return location.lower().startswith(SCHEMES)


def _split(url: str) -> tuple[str, str, str]:
    """(scheme, userinfo, the rest): userinfo ends at the last ``@``, so a password with an
    unencoded ``/``, ``?`` or ``#`` still counts as the password."""
    scheme, _, rest = url.partition("://")
    if "@" in rest:
        userinfo, _, rest = rest.rpartition("@")
        return scheme, userinfo, rest
    return scheme, "", rest


def redact(url: str) -> str:
    """The URL without its password (userinfo and ``?password=``), for messages."""
    scheme, userinfo, rest = _split(url)
    user = userinfo.split(":", 1)[0]
    head, sep, query = rest.partition("?")
    if sep:
        pairs = parse_qsl(query.split("#", 1)[0], keep_blank_values=True)
        query = urlencode([(k, "***" if k.lower() == "password" else v) for k, v in pairs])
    return f"{scheme}://{user + '@' if userinfo else ''}{head}{sep}{query}"


def _secrets(url: str) -> list[str]:
    found: list[str] = []
    userinfo = _split(url)[1]
    if ":" in userinfo:
        found.append(userinfo.split(":", 1)[1])
    query = _split(url)[2].partition("?")[2]
    found += [v for k, v in parse_qsl(query, keep_blank_values=True) if k.lower() == "password"]
    if os.environ.get("PGPASSWORD"):
        found.append(os.environ["PGPASSWORD"])
    forms = {form for s in found if s
             for form in (s, unquote(s), quote(s, safe=""), quote(unquote(s), safe=""), repr(s))}
    return sorted(forms, key=len, reverse=True)


def _driver() -> Any:
    try:
        import psycopg
    except ImportError:
        raise ConfigError(
            "a postgresql:// history needs psycopg: pip install 'pytest-keptn[postgresql]'",
            field="keptn_history") from None
    return psycopg


def check_url(url: str) -> None:
    """A ConfigError (never naming the password) when ``url`` cannot be used."""
    _driver()
    userinfo = _split(url)[1]
    if any(c in userinfo for c in "/?#@"):
        raise ConfigError(f"{redact(url)}: the password holds / ? # or @ unencoded: "
                          "percent-encode it, or give it in PGPASSWORD", field="keptn_history")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise ConfigError(f"not a valid PostgreSQL URL: {redact(url)}",
                          field="keptn_history") from None
    if not parts.path.strip("/"):
        raise ConfigError(f"{redact(url)} names no database (postgresql://USER@HOST:PORT/DBNAME)",
                          field="keptn_history")


class _Cursor:
    def __init__(self, cur: psycopg.Cursor[Any]) -> None:
        self._cur = cur

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        self._cur.execute(sql.replace("?", "%s"), tuple(params))
        return int(self._cur.rowcount)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self._cur.execute(sql.replace("?", "%s"), tuple(params))
        return list(self._cur.fetchall())


class PostgresStore:
    """A history in a PostgreSQL database; the schema is created on first use."""

    tiebreak = "seq"

    def __init__(self, url: str, *, lock_timeout: float) -> None:
        check_url(url)
        self._psycopg = _driver()
        self._url = url
        self.location = redact(url)
        self._secrets = _secrets(url)
        self._lock_timeout = max(0.0, float(lock_timeout))
        self._conn: psycopg.Connection[Any] | None = None
        self.write(self._migrate)

    def _migrate(self, cursor: Cursor) -> None:
        cursor.rows("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))
        migrate(cursor, MIGRATIONS, self.location)

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = self._psycopg.connect(
                self._url, autocommit=True,
                connect_timeout=max(2, int(min(self._lock_timeout, 30))),
                application_name="pytest-keptn",
            )
        return self._conn

    def _run(self, body: Callable[[Cursor], _T], *, read_only: bool) -> _T:
        errors = self._psycopg.errors
        deadline = _time.monotonic() + self._lock_timeout
        delay = 0.01
        while True:
            try:
                conn = self._connection()
                with conn.transaction(), conn.cursor() as cur:
                    if read_only:
                        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    return body(_Cursor(cur))
            except (errors.SerializationFailure, errors.DeadlockDetected,
                    errors.LockNotAvailable) as exc:
                if _time.monotonic() < deadline:
                    _time.sleep(delay)
                    delay = min(delay * 2, 0.2)
                    continue
                raise HistoryError(f"history store error: {self._scrub(str(exc))}",
                                   file=self.location) from None
            except self._psycopg.OperationalError as exc:
                # the server went away (or never answered): reconnect on the next call
                self._drop()
                raise HistoryError(f"history database unreachable: {self._scrub(str(exc))}",
                                   file=self.location) from None
            except self._psycopg.Error as exc:
                if self._conn is not None and self._conn.broken:
                    self._drop()
                raise HistoryError(f"history store error: {self._scrub(str(exc))}",
                                   file=self.location) from None

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except self._psycopg.Error:
                pass
        self._conn = None

    def write(self, body: Callable[[Cursor], _T]) -> _T:
        return self._run(body, read_only=False)

    def read(self, body: Callable[[Cursor], _T]) -> _T:
        return self._run(body, read_only=True)

    def check(self) -> str:
        return "ok"  # PostgreSQL checks its own pages (data checksums); nothing cheap to add

    def close(self) -> None:
        self._drop()
