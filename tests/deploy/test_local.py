from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil  # type: ignore[import-untyped]
import pytest

from pytest_keptn.deploy import local
from pytest_keptn.deploy import state as st
from pytest_keptn.errors import DeployError
from pytest_keptn.load.locust_driver import run_locust
from pytest_keptn.model import Deployment, LoadResult, StageContext
from pytest_keptn.system import processes as procs

from .conftest import PYTHON, RecordingTargets, driver_env, get

MakeCtx = Callable[..., StageContext]
BG: dict[str, object] = {"deploymentstrategy": "blue_green_service"}
JOB = "helloservice-sockshop-hardening"


def deployer() -> local.LocalDeployer:
    return local.LocalDeployer()


@pytest.mark.slow
def test_canary_primary_life_cycle(make_ctx: MakeCtx) -> None:
    d = deployer()
    ctx1 = make_ctx("v0.1.1")
    first = d.pytest_keptn_deploy(ctx1, {"deploymentstrategy": "blue_green_service"})
    assert first.strategy == "blue_green_service" and first.deployment_names == ("canary",)
    targets = ctx1.targets
    assert isinstance(targets, RecordingTargets)
    assert targets.jobs[JOB + "-canary"] == targets.jobs[JOB] == first.url.removeprefix("http://")
    assert JOB + "-primary" not in targets.jobs
    assert d.pytest_keptn_release(ctx1, first) is True
    primary = local.primary_url(ctx1.workdir, "hardening", "helloservice")
    assert primary == first.url  # the canary process is now the primary
    assert targets.jobs[JOB + "-primary"] == targets.jobs[JOB] == primary.removeprefix("http://")
    assert JOB + "-canary" not in targets.jobs

    ctx2 = make_ctx("v0.1.2")
    second = d.pytest_keptn_deploy(ctx2, {"deploymentstrategy": "duplicate"})
    assert second.url != primary
    assert targets.jobs[JOB] == targets.jobs[JOB + "-canary"] == second.url.removeprefix("http://")
    assert targets.jobs[JOB + "-primary"] == primary.removeprefix("http://")
    assert "v0.1.1" in get(primary + "/")[1]  # the primary serves beside the canary
    assert get(second.url + "/health")[0] == 200
    canary_pid = second.instances[0].pid
    assert canary_pid is not None and procs.alive(canary_pid)

    assert "stopped canary helloservice:v0.1.2" in str(d.pytest_keptn_rollback(ctx2, second))
    assert not procs.alive(canary_pid)
    assert targets.jobs[JOB] == primary.removeprefix("http://")
    assert JOB + "-canary" not in targets.jobs
    assert "v0.1.1" in get(primary + "/")[1]
    assert local.primary_url(ctx2.workdir, "hardening", "helloservice") == primary
    assert st.get(st.read(ctx2.workdir), "hardening", "helloservice", "canary") is None


@pytest.mark.slow
def test_release_stops_the_old_primary(make_ctx: MakeCtx) -> None:
    d = deployer()
    ctx1 = make_ctx("v0.1.1")
    first = d.pytest_keptn_deploy(ctx1, BG)
    d.pytest_keptn_release(ctx1, first)
    old_pid = first.instances[0].pid
    ctx3 = make_ctx("v0.1.3")
    third = d.pytest_keptn_deploy(ctx3, BG)
    assert [i.role for i in third.instances] == ["canary", "primary"]
    d.pytest_keptn_release(ctx3, third)
    assert old_pid is not None and not procs.alive(old_pid)
    assert local.primary_url(ctx3.workdir, "hardening", "helloservice") == third.url
    assert get(third.url + "/health")[0] == 200


@pytest.mark.slow
def test_crashing_build_fails_with_log_tail_and_primary_untouched(make_ctx: MakeCtx) -> None:
    d = deployer()
    ctx1 = make_ctx("v0.1.1")
    first = d.pytest_keptn_deploy(ctx1, BG)
    d.pytest_keptn_release(ctx1, first)
    targets = ctx1.targets
    assert isinstance(targets, RecordingTargets)
    before = dict(targets.jobs)
    with pytest.raises(DeployError) as info:
        d.pytest_keptn_deploy(make_ctx("crash"), BG)
    message = str(info.value)
    assert "\n" not in message
    assert "exited with code 3" in message
    assert "missing configuration" in message  # the log tail
    assert "helloservice:crash (canary) in hardening" in message
    assert targets.jobs == before
    assert "v0.1.1" in get(first.url + "/")[1]
    data = st.read(ctx1.workdir)
    assert st.get(data, "hardening", "helloservice", "canary") is None
    recorded = st.get(data, "hardening", "helloservice", "primary")
    assert recorded is not None and recorded["pid"] == first.instances[0].pid
    # nothing of the crashed build is left: only the primary runs
    assert set(procs.default_registry().pids()) == {first.instances[0].pid}


def test_missing_and_bad_command_are_one_line_errors(make_ctx: MakeCtx) -> None:
    with pytest.raises(DeployError, match="--keptn-local-command"):
        deployer().pytest_keptn_deploy(make_ctx(local_command=None), BG)
    with pytest.raises(DeployError, match="bad build command template"):
        deployer().pytest_keptn_deploy(make_ctx(local_command="{python} {nope}"), BG)
    with pytest.raises(DeployError, match="unknown deploymentstrategy 'canary'"):
        deployer().pytest_keptn_deploy(make_ctx(), {"deploymentstrategy": "canary"})


def test_build_that_never_gets_ready_times_out(make_ctx: MakeCtx) -> None:
    ctx = make_ctx(local_command="{python} -c 'import time; print(\"booting\"); time.sleep(60)'",
                   deploy_timeout=0.5)
    with pytest.raises(DeployError, match=r"not ready after 0.5s .* booting"):
        deployer().pytest_keptn_deploy(ctx, BG)
    assert procs.default_registry().pids() == {}


@pytest.mark.slow
def test_direct_replaces_in_place_and_rolls_back(make_ctx: MakeCtx) -> None:
    d = deployer()
    direct: dict[str, object] = {"deploymentstrategy": "direct"}
    first = d.pytest_keptn_deploy(make_ctx("v0.1.1"), direct)
    assert first.deployment_names == ("direct",)
    second = d.pytest_keptn_deploy(make_ctx("v0.1.3"), direct)
    assert first.instances[0].pid is not None and not procs.alive(first.instances[0].pid)
    ctx = make_ctx("v0.1.3")
    assert local.primary_url(ctx.workdir, "hardening", "helloservice") == second.url
    assert d.pytest_keptn_release(ctx, second) is True  # nothing to promote
    d.pytest_keptn_rollback(ctx, second)
    back = local.primary_url(ctx.workdir, "hardening", "helloservice")
    assert back is not None and back != second.url
    assert "v0.1.1" in get(back + "/")[1]


def test_user_managed_starts_nothing(make_ctx: MakeCtx) -> None:
    deployment = deployer().pytest_keptn_deploy(
        make_ctx(), {"deploymentstrategy": "user_managed", "url": "http://127.0.0.1:9"})
    assert deployment.deployment_names == ("user-managed",)
    assert deployment.url == "http://127.0.0.1:9"
    assert procs.default_registry().pids() == {}


def test_stale_pid_is_detected(make_ctx: MakeCtx) -> None:
    ctx = make_ctx()
    dead = subprocess.Popen([PYTHON, "-c", "pass"])
    dead.wait()
    with st.locked(ctx.workdir) as data:
        st.put(data, "hardening", "helloservice", "primary",
               {"pid": dead.pid, "start_ticks": 1, "port": 9, "url": "http://127.0.0.1:9",
                "image": "x", "tag": "v0"})
    assert local.primary_url(ctx.workdir, "hardening", "helloservice") is None
    assert st.read(ctx.workdir)["services"] == {}
    # a live pid that belongs to another process (recycled pid) is stale too
    with st.locked(ctx.workdir) as data:
        st.put(data, "hardening", "helloservice", "primary",
               {"pid": os.getpid(), "start_ticks": -5, "port": 9, "url": "http://127.0.0.1:9"})
    assert local.primary_url(ctx.workdir, "hardening", "helloservice") is None


@pytest.mark.slow
def test_state_survives_between_processes(make_ctx: MakeCtx, project: Path) -> None:
    script = textwrap.dedent(f"""
        from pathlib import Path
        from pytest_keptn.config import Settings
        from pytest_keptn.deploy.local import LocalDeployer
        from pytest_keptn.model import StageContext
        ctx = StageContext(project="sockshop", service="helloservice", stage="production",
            image="helloserver", tag="v0.1.1", root=Path({str(project)!r}),
            workdir=Path({str(project / ".keptn")!r}),
            settings=Settings(local_command={"{python} -m helloserver --port {port} --tag {tag}"!r},
                              keep_primaries=True))
        d = LocalDeployer()
        dep = d.pytest_keptn_deploy(ctx, {{"deploymentstrategy": "duplicate"}})
        d.pytest_keptn_release(ctx, dep)
        print(dep.url)
    """)
    done = subprocess.run([PYTHON, "-c", script], capture_output=True, text=True,
                          env=driver_env(), timeout=30)
    assert done.returncode == 0, done.stderr
    url = done.stdout.strip().splitlines()[-1]
    workdir = project / ".keptn"
    assert local.primary_url(workdir, "production", "helloservice") == url
    assert "v0.1.1" in get(url + "/")[1]  # the kept primary outlived its pytest process
    lines = local.stop_all(workdir)
    assert len(lines) == 1 and lines[0].startswith("stopped production/helloservice primary")
    assert local.primary_url(workdir, "production", "helloservice") is None
    assert local.stop_all(workdir) == []


DRIVER = """
import sys, json
from pathlib import Path
from pytest_keptn.config import Settings
from pytest_keptn.deploy.local import LocalDeployer
from pytest_keptn.load.locust_driver import run_locust
from pytest_keptn.model import StageContext

root = Path(sys.argv[1])
keep = sys.argv[2] == "keep"
def ctx(tag):
    return StageContext(project="sockshop", service="helloservice", stage="hardening",
        image="helloserver", tag=tag, root=root, workdir=root / ".keptn",
        settings=Settings(local_command="{python} -m helloserver --port {port} --tag {tag}",
                          keep_primaries=keep),
        progress=lambda line: print(line, flush=True))
d = LocalDeployer()
first = d.pytest_keptn_deploy(ctx("v0.1.1"), {"deploymentstrategy": "duplicate"})
d.pytest_keptn_release(ctx("v0.1.1"), first)
canary = d.pytest_keptn_deploy(ctx("v0.1.3"), {"deploymentstrategy": "duplicate"})
print(json.dumps({"primary": first.instances[0].pid, "canary": canary.instances[0].pid}), flush=True)
run_locust(ctx("v0.1.3"), canary.url, root / "locustfile.py", users=2, spawn_rate=10, run_time=60)
"""

LOCUSTFILE = """
from locust import FastHttpUser, constant, task

class Visitor(FastHttpUser):
    wait_time = constant(0.05)

    @task
    def health(self):
        self.client.get("/health")
"""


@pytest.mark.slow
@pytest.mark.parametrize("keep", ["keep", "nokeep"])
def test_no_orphans_after_sigint(project: Path, keep: str) -> None:
    (project / "locustfile.py").write_text(LOCUSTFILE)
    driver = subprocess.Popen([PYTHON, "-c", DRIVER, str(project), keep], env=driver_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert driver.stdout is not None
        pids: dict[str, int] = {}
        deadline = time.monotonic() + 60
        for line in driver.stdout:
            if line.startswith("{"):
                pids = json.loads(line)
            if line.startswith("load: 1/"):  # Locust is running
                break
            assert time.monotonic() < deadline
        else:
            pytest.fail("driver ended early: " + driver.stderr.read() if driver.stderr else "")
        family = psutil.Process(driver.pid).children(recursive=True)
        assert len(family) >= 3  # primary, canary, Locust child
        assert {pids["primary"], pids["canary"]} <= {p.pid for p in family}
        driver.send_signal(signal.SIGINT)
        driver.wait(timeout=30)
        time.sleep(0.2)
        survivors = {p.pid for p in family if p.is_running() and p.status() != "zombie"}
        if keep == "keep":
            assert survivors == {pids["primary"]}  # the user asked primaries to keep serving
        else:
            assert survivors == set()
    finally:
        if driver.poll() is None:
            driver.kill()
        local.stop_all(project / ".keptn")
    assert local.primary_url(project / ".keptn", "hardening", "helloservice") is None


@pytest.mark.slow
def test_rollback_while_locust_runs_keeps_the_primary_answering(
    make_ctx: MakeCtx, project: Path
) -> None:
    (project / "locustfile.py").write_text(LOCUSTFILE)
    d = deployer()
    ctx1 = make_ctx("v0.1.1")
    first = d.pytest_keptn_deploy(ctx1, BG)
    d.pytest_keptn_release(ctx1, first)
    ctx2 = make_ctx("v0.1.3")
    canary: Deployment = d.pytest_keptn_deploy(ctx2, BG)
    results: list[LoadResult] = []
    load = threading.Thread(target=lambda: results.append(
        run_locust(ctx2, first.url, project / "locustfile.py", users=4, spawn_rate=20,
                   run_time=3)))
    load.start()
    time.sleep(1.5)
    d.pytest_keptn_rollback(ctx2, canary)
    load.join(timeout=30)
    assert results, "the Locust run did not finish"
    result = results[0]
    assert result.requests > 20
    assert result.failures == 0  # the primary answered throughout
    assert canary.instances[0].pid is not None and not procs.alive(canary.instances[0].pid)
    assert "v0.1.1" in get(first.url + "/")[1]


def test_cleanup_run_stops_what_a_run_handed_over(tmp_path: Path) -> None:
    """The xdist controller's end of run: this run's canaries are stopped, its kept primaries
    stay, and another run's instances are not touched."""
    workdir = tmp_path / ".keptn"
    sleepers = [subprocess.Popen(["sleep", "60"], start_new_session=True) for _ in range(3)]
    try:
        def inst(p: subprocess.Popen[bytes], run: str, tag: str) -> dict[str, object]:
            return {"pid": p.pid, "run": run, "tag": tag, "image": "img",
                    "start_ticks": procs.process_start_ticks(p.pid)}

        with st.locked(workdir) as data:
            st.put(data, "hardening", "svc", "canary", inst(sleepers[0], "run-a", "v2"))
            st.put(data, "hardening", "svc", "primary", inst(sleepers[1], "run-a", "v1"))
            st.put(data, "production", "svc", "canary", inst(sleepers[2], "run-b", "v1"))
        lines = local.cleanup_run(workdir, procs.ProcessRegistry("run-a"), keep_primaries=True)
        assert lines == [f"stopped hardening/svc canary img:v2 (pid {sleepers[0].pid})"]
        assert sleepers[0].wait(5) is not None
        assert sleepers[1].poll() is None and sleepers[2].poll() is None
        data = st.read(workdir)
        assert st.get(data, "hardening", "svc", "canary") is None
        assert st.get(data, "hardening", "svc", "primary") is not None
        assert st.get(data, "production", "svc", "canary") is not None
        assert local.cleanup_run(workdir, procs.ProcessRegistry("run-a"), keep_primaries=False) == [
            f"stopped hardening/svc primary img:v1 (pid {sleepers[1].pid})"]
    finally:
        for p in sleepers:
            p.kill()
            p.wait()


@pytest.mark.slow
def test_health_path_answering_404_fails_at_once(make_ctx: MakeCtx) -> None:
    """A build that is up but answers 404 on the health path fails the deployment as soon as
    it answers, with a hint, instead of waiting out --keptn-deploy-timeout (issue 13)."""
    ctx = make_ctx(health_path="/no-such-path", deploy_timeout=120.0)
    started = time.monotonic()
    with pytest.raises(DeployError) as info:
        deployer().pytest_keptn_deploy(ctx, BG)
    assert time.monotonic() - started < 60  # far below the 120 s deploy timeout
    message = str(info.value)
    assert "answered HTTP 404" in message and "--keptn-health-path" in message
    assert "\n" not in message
    assert procs.default_registry().pids() == {}


def test_full_state_folder_names_the_path(make_ctx: MakeCtx, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk (injected: fsync fails with ENOSPC, as it does on a full filesystem) is one
    line naming the state file, not an internal error (issue 14 item 14)."""
    import errno

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    ctx = make_ctx()
    monkeypatch.setattr(os, "fsync", full)  # the state is written by system.files
    with pytest.raises(DeployError) as info:
        deployer().pytest_keptn_deploy(ctx, BG)
    monkeypatch.undo()
    message = str(info.value)
    assert message == (f"{ctx.workdir / 'deploy-state.json'}: cannot write the deployer state: "
                       "No space left on device")
    assert procs.default_registry().pids() == {}
    assert not list(ctx.workdir.glob(".deploy-state.*"))  # no temporary file left


@pytest.mark.slow
def test_live_baseline_runs_the_primarys_build_beside_the_canary(make_ctx: MakeCtx) -> None:
    d = deployer()
    ctx1 = make_ctx("v0.1.1")
    first = d.pytest_keptn_deploy(ctx1, BG)
    assert d.pytest_keptn_start_baseline(ctx1, first) is None  # no earlier build in the stage
    d.pytest_keptn_release(ctx1, first)
    primary = local.primary_url(ctx1.workdir, "hardening", "helloservice")
    assert primary is not None

    ctx2 = make_ctx("v0.1.2")
    second = d.pytest_keptn_deploy(ctx2, BG)
    baseline = d.pytest_keptn_start_baseline(ctx2, second)
    assert baseline is not None and baseline.pid is not None
    assert (baseline.role, baseline.tag) == ("baseline", "v0.1.1")
    assert baseline.url not in (primary, second.url)  # a fresh process, not the primary
    assert "v0.1.1" in get(baseline.url + "/")[1]
    targets = ctx2.targets
    assert isinstance(targets, RecordingTargets)
    assert targets.jobs[JOB + "-baseline"] == baseline.url.removeprefix("http://")
    assert targets.jobs[JOB] == targets.jobs[JOB + "-canary"]  # traffic still goes to the canary
    recorded = st.get(st.read(ctx2.workdir), "hardening", "helloservice", "baseline")
    assert recorded is not None and recorded["pid"] == baseline.pid

    d.pytest_keptn_stop_baseline(ctx2, baseline)
    assert not procs.alive(baseline.pid)
    assert JOB + "-baseline" not in targets.jobs
    assert st.get(st.read(ctx2.workdir), "hardening", "helloservice", "baseline") is None
    assert "v0.1.1" in get(primary + "/")[1]  # never promoted; the primary is untouched
    assert get(second.url + "/health")[0] == 200
    direct = d.pytest_keptn_deploy(make_ctx("v0.1.3"), {"deploymentstrategy": "direct"})
    assert d.pytest_keptn_start_baseline(ctx2, direct) is None  # only beside a canary
