"""A real PostgreSQL for the tests: Debian's server binaries, a temporary data folder, a free
127.0.0.1 port, one server per test session.

Why not pytest-postgresql: its ``postgresql_proc`` runs ``pg_ctl``/``initdb`` as the invoking
user, and CI runs as root, which ``initdb`` refuses; it has no way to switch to the ``postgres``
system user that Debian's package creates. This executor does the same few things (initdb,
start, readiness check, log to a file, stop) and switches user when it runs as root.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

SECRET_ROLE = "keptn_secret"  # the only role that needs a password (the secrets tests)


def find_bindir() -> Path | None:
    """``$KEPTN_PG_BINDIR``, else the newest ``/usr/lib/postgresql/<version>/bin``."""
    given = os.environ.get("KEPTN_PG_BINDIR")
    if given:
        return Path(given)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """One PostgreSQL server process owned by a fixture."""

    def __init__(self, bindir: Path, *, secret_password: str) -> None:
        self.bindir = bindir
        self.folder = Path(tempfile.mkdtemp(prefix="keptn-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "postgres.log"
        self.port = 0
        self.secret_password = secret_password
        self._proc: subprocess.Popen[bytes] | None = None
        self._user: tuple[int, int] | None = None
        if os.geteuid() == 0:  # initdb refuses root: run as Debian's postgres system user
            entry = pwd.getpwnam("postgres")
            self._user = (entry.pw_uid, entry.pw_gid)
            os.chmod(self.folder, 0o755)
            os.chown(self.folder, *self._user)

    def _run(self, *args: str) -> None:
        subprocess.run(args, check=True, capture_output=True, timeout=120,
                       user=self._user[0] if self._user else None,
                       group=self._user[1] if self._user else None,
                       cwd=self.folder)

    def start(self, timeout: float = 60.0) -> PostgresServer:
        pwfile = self.folder / "pw"
        pwfile.write_text("unused-superuser-password\n")
        if self._user:
            os.chown(pwfile, *self._user)
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres",
                  "-E", "UTF8", "--no-sync", "--auth-local=trust", "--auth-host=trust",
                  f"--pwfile={pwfile}")
        # the secret role signs in with a password over TCP; everyone else is trusted
        hba = self.data / "pg_hba.conf"
        hba.write_text(f"host all {SECRET_ROLE} 127.0.0.1/32 scram-sha-256\n"
                       "host all all 127.0.0.1/32 trust\nlocal all all trust\n")
        for attempt in range(5):  # a port another process takes between probe and bind
            self.port = _free_port()
            log = open(self.log, "ab")
            self._proc = subprocess.Popen(
                [str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port),
                 "-k", str(self.folder), "-c", "listen_addresses=127.0.0.1",
                 "-c", "fsync=off", "-c", "synchronous_commit=off",
                 "-c", "full_page_writes=off", "-c", "max_connections=100"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                user=self._user[0] if self._user else None,
                group=self._user[1] if self._user else None, start_new_session=True,
            )
            log.close()
            if self._wait_ready(timeout):
                break
            self.stop()
            if attempt == 4:
                raise RuntimeError(f"PostgreSQL did not start; see {self.log}:\n"
                                   + self.log.read_text(errors="replace")[-2000:])
        self.sql(f"CREATE ROLE {SECRET_ROLE} LOGIN PASSWORD '{self.secret_password}'")
        self.sql(f"CREATE DATABASE keptn OWNER {SECRET_ROLE}")
        self.sql(f"GRANT ALL ON SCHEMA public TO {SECRET_ROLE}", database="keptn")
        return self

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                return False
            done = subprocess.run(
                [str(self.bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port),
                 "-U", "postgres", "-d", "postgres", "-t", "2"],
                capture_output=True, timeout=30)
            if done.returncode == 0:
                return True
            time.sleep(0.05)  # polling a condition with a deadline, not a timing guess
        return False

    def url(self, database: str = "keptn", *, user: str = "postgres", options: str = "") -> str:
        query = f"?options={options}" if options else ""
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}{query}"

    def sql(self, statement: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as conn:
            conn.execute(statement.encode())

    def new_schema(self, name: str) -> str:
        """A fresh schema in database ``keptn``; returns the URL whose connections use it."""
        self.sql(f'CREATE SCHEMA "{name}" AUTHORIZATION {SECRET_ROLE}', database="keptn")
        return self.url(options=f"-csearch_path%3D{name}")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT)  # fast shutdown: ends open sessions
            try:
                self._proc.wait(30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)
        self._proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
