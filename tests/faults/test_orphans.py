"""Orphans when a process-group leader dies first (issue 14 item 6).

Stopping a build or the load stops its whole process group and every process that carries
its tag in the environment, even when the group's leader (a shell, a Locust master, a command
that daemonized) is already gone; a build that left processes behind is named in the message.
"""

from __future__ import annotations

import os
import signal
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psutil  # type: ignore[import-untyped]
import pytest

from pytest_keptn.config import Settings
from pytest_keptn.deploy import local
from pytest_keptn.errors import DeployError, LoadError
from pytest_keptn.load.locust_driver import run_locust
from pytest_keptn.model import StageContext
from pytest_keptn.system import processes as procs

from .runs import EXAMPLE, wait_until

pytestmark = pytest.mark.slow

BG: dict[str, object] = {"deploymentstrategy": "blue_green_service"}

DAEMONIZE = """\
import os, sys, time
if os.fork():
    sys.exit(0)          # the command returns at once, as 'server --daemon' does
os.setsid()              # a new session: out of the build's process group
if os.fork():
    os._exit(0)
with open(sys.argv[1], "w") as out:
    out.write(str(os.getpid()))
time.sleep(300)
"""


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "helloserver").symlink_to(EXAMPLE / "helloserver")
    (tmp_path / "daemonize.py").write_text(DAEMONIZE)
    keptn = tmp_path / "keptn"
    keptn.mkdir()
    try:
        yield keptn
    finally:
        local.stop_all(keptn / ".keptn")
        local.cleanup_session(procs.default_registry())


def ctx(root: Path, lines: list[str] | None = None, **settings: object) -> StageContext:
    values: dict[str, object] = {"deploy_timeout": 20.0}
    values.update(settings)
    return StageContext(
        project="demo", service="svc", stage="hardening", image="svc", tag="v0.1.1",
        root=root, workdir=root / ".keptn", settings=Settings(**values),  # type: ignore[arg-type]
        progress=(lines.append if lines is not None else None),
    )


def _gone(pid: int) -> bool:
    return not procs.alive(pid)


def test_server_behind_a_killed_shell_is_stopped(root: Path) -> None:
    lines: list[str] = []
    c = ctx(root, lines, local_command="sh -c '{python} -m helloserver --port {port} --tag {tag}; "
            "echo done'")
    deployment = local.LocalDeployer().pytest_keptn_deploy(c, BG)
    shell = deployment.instances[0].pid
    assert shell is not None
    servers = [p.pid for p in psutil.Process(shell).children() if "helloserver" in " ".join(p.cmdline())]
    assert len(servers) == 1
    os.kill(shell, signal.SIGKILL)  # the shell dies first; its server keeps serving
    wait_until(lambda: _gone(shell), 10, "the shell to die")
    assert procs.alive(servers[0])
    note = local.LocalDeployer().pytest_keptn_rollback(c, deployment)
    assert _gone(servers[0]), "the server outlived its killed shell"
    assert f"left 1 process(es) behind, now stopped: pid {servers[0]}" in str(note), note


def test_stop_command_finds_the_server_of_a_killed_shell(root: Path) -> None:
    c = ctx(root, local_command="sh -c '{python} -m helloserver --port {port} --tag {tag}; "
            "echo done'")
    deployment = local.LocalDeployer().pytest_keptn_deploy(c, BG)
    local.LocalDeployer().pytest_keptn_release(c, deployment)
    shell = deployment.instances[0].pid
    assert shell is not None
    server = next(p.pid for p in psutil.Process(shell).children())
    os.kill(shell, signal.SIGKILL)
    wait_until(lambda: _gone(shell), 10, "the shell to die")
    lines = local.stop_all(c.workdir)  # what 'python -m pytest_keptn stop' does
    assert _gone(server)
    assert len(lines) == 1 and f"stopped what it left behind: pid {server}" in lines[0], lines


def test_daemonizing_command_is_stopped_and_named(root: Path, tmp_path: Path) -> None:
    pidfile = tmp_path / "daemon.pid"
    c = ctx(root, local_command=f"{{python}} daemonize.py {pidfile}")
    with pytest.raises(DeployError) as info:
        local.LocalDeployer().pytest_keptn_deploy(c, BG)
    message = str(info.value)
    daemon = int(pidfile.read_text())
    assert _gone(daemon), "the daemon outlived the failed deployment"
    assert "exited with code 0" in message
    assert f"left 1 process(es) behind (stopped now: pid {daemon}" in message
    assert "daemonizes" in message and "\n" not in message


def test_locust_workers_die_with_a_killed_master(root: Path, tmp_path: Path) -> None:
    server = local.LocalDeployer().pytest_keptn_deploy(
        ctx(root, local_command="{python} -m helloserver --port {port} --tag {tag}"),
        {"deploymentstrategy": "direct"})
    locustfile = tmp_path / "locustfile.py"
    locustfile.write_text(textwrap.dedent("""
        from locust import FastHttpUser, constant, task

        class Visitor(FastHttpUser):
            wait_time = constant(0.05)

            @task
            def index(self):
                self.client.get("/health")
    """))
    workers: list[int] = []

    def progress(line: str) -> None:
        if line.startswith("load: 1/") and not workers:
            me = psutil.Process()
            master = next(p for p in me.children()
                          if "pytest_keptn.load._child" in " ".join(p.cmdline()))
            workers.extend(p.pid for p in master.children())
            master.kill()  # the master dies first

    c = ctx(root, locust_workers=2)
    c = StageContext(**{**c.__dict__, "progress": progress})
    with pytest.raises(LoadError):
        run_locust(c, server.url, locustfile, users=2, spawn_rate=10, run_time=30)
    assert len(workers) == 2, workers
    left = [pid for pid in workers if not _gone(pid)]
    assert not left, f"Locust workers outlived their killed master: {left}"
