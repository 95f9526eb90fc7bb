"""Fixtures every test folder may use: a real PostgreSQL server for the session, and the history
location parametrized over both backends (SQLite file, PostgreSQL schema)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.postgres_server import PostgresServer, find_bindir

# the password of the one role that signs in with one (tests/security checks it never leaks)
PG_PASSWORD = "pgpw-SENTINEL-5e1f0b"
_schemas = itertools.count(1)

POSTGRES = pytest.param("postgresql", marks=[pytest.mark.slow, pytest.mark.postgresql])
BACKENDS = ["sqlite", POSTGRES]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole session (skipped when the binaries are missing,
    except in CI, where scripts/setup.sh installs them)."""
    bindir = find_bindir()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL server binaries not found (scripts/setup.sh installs them)")
        pytest.skip("PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin)")
    server = PostgresServer(bindir, secret_password=PG_PASSWORD).start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A libpq URL of a fresh, empty schema of its own (no password needed)."""
    return postgres_server.new_schema(f"t{os.getpid()}_{next(_schemas)}")


@pytest.fixture(params=BACKENDS)
def history_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a test's history lives: a SQLite file, or an empty PostgreSQL schema."""
    if request.param == "sqlite":
        return str(tmp_path / "history.sqlite")
    return str(request.getfixturevalue("postgres_url"))
