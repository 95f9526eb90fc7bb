"""A PostgreSQL history through the plugin: a database that goes away mid-run is one clear
line and an errored evaluation that is still scored, evented and reported."""

from __future__ import annotations

import textwrap

import pytest

from tests.plugin.conftest import FAKES, Project
from tests.postgres_server import PostgresServer

pytestmark = [pytest.mark.slow, pytest.mark.postgresql]

# The SLI stand-in takes the database away right before the scoring reads the history: its
# connections are cut and it accepts no new ones (as during a failover or a network cut).
CUT = textwrap.dedent('''
    import psycopg

    _original = pytest_keptn_get_sli

    def pytest_keptn_get_sli(ctx, indicators, window, deployment, load):
        admin = ctx.settings.history.split("?")[0].rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("ALTER DATABASE keptn ALLOW_CONNECTIONS false")
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                         " WHERE datname = 'keptn'")
        return _original(ctx, indicators, window, deployment, load)
''')


def test_database_gone_mid_run_is_an_errored_evaluation(
    project: Project, postgres_url: str, postgres_server: PostgresServer
) -> None:
    project.write("conftest.py", FAKES + CUT)
    try:
        result = project.run("--keptn-stage=hardening", "--keptn-tag=v1",
                             f"--keptn-history={postgres_url}", "--html=report.html",
                             "--self-contained-html")
    finally:
        postgres_server.sql("ALTER DATABASE keptn ALLOW_CONNECTIONS true")
    out = result.stdout.str()
    assert result.ret == 1, out
    assert "Traceback" not in out and "INTERNALERROR" not in out
    (line,) = [x for x in out.splitlines() if "evaluation FAILED" in x]
    assert "hardening: pass, score 100.0%" in line  # scored all the same
    assert "not recorded in the history: postgresql://postgres@127.0.0.1:" in line
    assert "history database unreachable" in line
    (event,) = project.events()
    assert event["data"]["result"] == "pass"
    assert "keptn-report" in (project.path / "report.html").read_text()
    assert project.calls("rollback"), "the failed evaluation rolls the canary back"
