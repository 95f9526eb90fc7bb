"""The PostgreSQL history's password never appears (issue 15): not in the URL's echo, not in
any artifact of a run (terminal, JUnit, HTML report, events, state folder, markdown summary,
temp files), not in the command line's output, not in what the history stores; whether it
comes in the URL or in ``PGPASSWORD``, right or wrong."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import PG_PASSWORD
from tests.plugin.conftest import FAKES, GOOD, INI, SHIPYARD, SLO, Project
from tests.postgres_server import SECRET_ROLE, PostgresServer
from tests.security.test_secrets import assert_nowhere

pytestmark = [pytest.mark.slow, pytest.mark.postgresql]
WRONG = "pgpw-WRONG-SENTINEL-77aa"
ODD = "pw#SENTINEL/odd?x"


@pytest.fixture
def pg_project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Project:
    import json

    p = Project(pytester)
    p.write("keptn/shipyard.yaml", SHIPYARD)
    p.write("keptn/hardening/svc/slo.yaml", SLO)
    p.write("conftest.py", FAKES)
    p.write("pytest.ini", INI)
    p.write("values.json", json.dumps({"v1": GOOD}))
    monkeypatch.setenv("TMPDIR", str(pytester.path / "tmp"))
    (pytester.path / "tmp").mkdir()
    monkeypatch.delenv("PGPASSWORD", raising=False)
    return p


def _secret_url(postgres_url: str, password: str | None) -> str:
    auth = f"{SECRET_ROLE}:{password}" if password else SECRET_ROLE
    return postgres_url.replace("postgresql://postgres@", f"postgresql://{auth}@")


def _stored_text(server: PostgresServer, postgres_url: str) -> str:
    import psycopg

    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute("SELECT id, data, context FROM evaluations").fetchall()
        rows += conn.execute("SELECT stage, result, context FROM sequences").fetchall()
    return repr(rows)


def _check(p: Project, result: pytest.RunResult, *secrets: str) -> None:
    texts = {"stdout": result.stdout.str(), "stderr": result.stderr.str()}
    searched = assert_nowhere(list(secrets), texts, [p.path])
    assert searched >= 4


@pytest.mark.parametrize("where", ["url", "PGPASSWORD"])
def test_the_password_never_appears_in_a_stage(
    pg_project: Project, postgres_url: str, postgres_server: PostgresServer,
    monkeypatch: pytest.MonkeyPatch, where: str,
) -> None:
    if where == "PGPASSWORD":
        monkeypatch.setenv("PGPASSWORD", PG_PASSWORD)
    url = _secret_url(postgres_url, PG_PASSWORD if where == "url" else None)
    result = pg_project.run("--keptn-stage=hardening", "--keptn-tag=v1",
                            f"--keptn-history={url}", "--junitxml=junit.xml",
                            "--html=report.html", "--self-contained-html")
    assert result.ret == 0, result.stdout.str()
    assert (pg_project.path / "report.html").is_file() and pg_project.events()
    assert not list(pg_project.path.rglob("*.sqlite"))
    _check(pg_project, result, PG_PASSWORD)
    assert PG_PASSWORD not in _stored_text(postgres_server, postgres_url)
    listed = subprocess.run([sys.executable, "-m", "pytest_keptn", "history", "--history", url,
                             "list"], cwd=pg_project.path, capture_output=True, text=True,
                            timeout=60, check=False)
    assert listed.returncode == 0, listed.stderr
    assert PG_PASSWORD not in listed.stdout + listed.stderr


def test_a_wrong_password_fails_in_one_line_without_it(
    pg_project: Project, postgres_url: str
) -> None:
    url = _secret_url(postgres_url, WRONG)
    result = pg_project.run("--keptn-stage=hardening", "--keptn-tag=v1",
                            f"--keptn-history={url}", "--junitxml=junit.xml")
    assert result.ret == 1
    out = result.stdout.str()
    (line,) = [x for x in out.splitlines() if "evaluation FAILED" in x]
    assert "password authentication failed" in line and "postgresql://keptn_secret@" in line
    assert "Traceback" not in out
    _check(pg_project, result, WRONG)
    listed = subprocess.run([sys.executable, "-m", "pytest_keptn", "history", "--history", url,
                             "list"], cwd=pg_project.path, capture_output=True, text=True,
                            timeout=60, check=False)
    assert listed.returncode == 2 and listed.stderr.count("\n") == 1
    assert WRONG not in listed.stdout + listed.stderr


def test_an_unencoded_password_is_refused_without_echoing_it(
    pg_project: Project, postgres_url: str
) -> None:
    url = _secret_url(postgres_url, ODD)
    result = pg_project.run("--keptn-stage=hardening", "--keptn-tag=v1", f"--keptn-history={url}")
    assert result.ret == 4  # a usage error, before anything is deployed
    assert "percent-encode it, or give it in PGPASSWORD" in result.stderr.str()
    assert pg_project.calls("deploy") == []
    _check(pg_project, result, ODD, "SENTINEL/odd")
