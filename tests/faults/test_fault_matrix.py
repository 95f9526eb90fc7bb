"""The fault matrix of issue #7, end to end through ``pytest --keptn-stage=hardening``.

Every case runs a real pytest process (plain ``subprocess``, so signals and exit codes are
real) on a copy of the demo project: the real local deployer starting ``helloserver``, the real
embedded Prometheus and a real Locust child with a short load. A setup run delivers the good
build v0.1.1 first so a primary exists; each faulty run then delivers v0.1.1 again while
something breaks. After each run: the exit status and a one-line message (no traceback, no
INTERNALERROR), the primary still serving, no process started by the run left behind, no
temporary folder left behind and the history intact. ``docs/reliability.md`` lists the
outcomes observed.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty, Queue

import httpx
import psutil  # type: ignore[import-untyped]
import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "example_project"
SERVICE = "helloservice"
STAGE = "hardening"

INI = """\
[pytest]
keptn_root = keptn
keptn_project = pod-tato-head
keptn_service = helloservice
keptn_image = gabrieltanner/hello-server
keptn_deployer = local
keptn_local_command = {python} -m helloserver --port {port} --tag {tag}
keptn_health_path = /health
keptn_events = build/events
keptn_history = build/history.sqlite
keptn_state_dir = build/state
keptn_locust_users = 3
keptn_locust_spawn_rate = 10
"""

BROKEN_LOCUSTFILE = """\
raise RuntimeError("locustfile broken on purpose")
"""

# The harness's barrier before the evaluation asks Prometheus anything (``Project.run(gate=
# True)``): the cases that break Prometheus during the evaluation do it at "evaluation started",
# then open the gate. Without it the evaluation may be over before the signal lands: its
# freshness wait usually ends at once.
GATE_CONFTEST = """\
import os
import time

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_keptn_get_sli(ctx):
    gate = os.environ.get("KEPTN_FAULT_GATE")
    deadline = time.monotonic() + 60
    while gate and not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.01)
    yield
"""

Reaction = Callable[[str, "Running"], None]


@dataclass
class Running:
    """A pytest process being watched line by line."""

    proc: subprocess.Popen[str]
    project: Project
    lines: list[str] = field(default_factory=list)
    done: set[str] = field(default_factory=set)
    gate: Path | None = None

    def once(self, key: str) -> bool:
        if key in self.done:
            return False
        self.done.add(key)
        return True

    def interrupt(self) -> None:
        self.proc.send_signal(signal.SIGINT)

    def open_gate(self) -> None:
        """Let the evaluation go on (see GATE_CONFTEST)."""
        assert self.gate is not None, "run(gate=True) closes the gate"
        self.gate.touch()


@dataclass
class Result:
    rc: int
    out: str
    seconds: float


class Project:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = path / "tmp"  # TMPDIR of every run: leftovers show up here
        self.state = path / "build" / "state"
        self.history = path / "build" / "history.sqlite"
        self.env = dict(
            os.environ,
            PYTHONPATH=os.pathsep.join([str(EXAMPLE), os.environ.get("PYTHONPATH", "")]),
            TMPDIR=str(self.tmp),
            PYTHONUNBUFFERED="1",
            COLUMNS="200",
        )
        self.env.pop("PYTEST_ADDOPTS", None)
        self.env.pop("GITHUB_STEP_SUMMARY", None)

    def run(self, *args: str, react: Reaction | None = None, timeout: float = 120,
            gate: bool = False) -> Result:
        """One pytest run; with ``gate``, its evaluation waits for ``Running.open_gate``."""
        argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist",
                f"--keptn-stage={STAGE}", *args]
        gate_file = self.path / "fault-gate" if gate else None
        env = self.env
        if gate_file is not None:
            gate_file.unlink(missing_ok=True)
            env = dict(env, KEPTN_FAULT_GATE=str(gate_file))
        started = time.monotonic()
        proc = subprocess.Popen(argv, cwd=self.path, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, bufsize=1)
        running = Running(proc, self, gate=gate_file)
        queue: Queue[str | None] = Queue()

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                queue.put(line)
            queue.put(None)

        threading.Thread(target=pump, daemon=True).start()
        deadline = started + timeout
        while True:
            try:
                line = queue.get(timeout=max(0.1, deadline - time.monotonic()))
            except Empty:
                proc.kill()
                proc.wait()
                raise AssertionError("pytest did not finish in time:\n" + "".join(running.lines)) from None
            if line is None:
                break
            running.lines.append(line)
            if react is not None:
                react(line, running)
        rc = proc.wait(timeout=30)
        if gate_file is not None:
            gate_file.unlink(missing_ok=True)
        return Result(rc, "".join(running.lines), time.monotonic() - started)

    # ---- what the run left behind -------------------------------------------------------

    def primary(self) -> tuple[str, int]:
        out = subprocess.run(
            [sys.executable, "-m", "pytest_keptn", "status", "--state-dir", str(self.state),
             "--url", STAGE, SERVICE],
            capture_output=True, text=True, env=self.env, cwd=self.path, timeout=30,
        )
        assert out.returncode == 0, f"no primary: {out.stdout}{out.stderr}"
        url = out.stdout.strip()
        import json

        raw = json.loads((self.state / "deploy-state.json").read_text())
        pid = int(raw["services"][f"{STAGE}/{SERVICE}"]["primary"]["pid"])
        return url, pid

    def processes(self) -> list[psutil.Process]:
        """Processes started from this project (by working folder or command line)."""
        me = os.getpid()
        found = []
        for proc in psutil.process_iter(["pid", "cmdline", "cwd"]):
            if proc.info["pid"] == me:
                continue
            try:
                cwd = proc.info["cwd"] or ""
                cmd = " ".join(proc.info["cmdline"] or [])
            except (psutil.Error, TypeError):
                continue
            if str(self.path) in cwd or str(self.path) in cmd:
                found.append(proc)
        return found

    def orphans(self, keep: set[int]) -> list[str]:
        deadline = time.monotonic() + 8
        while True:
            left = []
            for p in self.processes():
                try:
                    if p.pid in keep or p.status() == psutil.STATUS_ZOMBIE:
                        continue
                    left.append(f"{p.pid} {' '.join(p.cmdline())}")
                except psutil.Error:
                    continue
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.25)

    def leftover_folders(self) -> list[str]:
        left = [str(p) for p in self.tmp.iterdir()] if self.tmp.exists() else []
        prom = self.state / "prometheus"
        if prom.exists():
            left += [str(p) for p in prom.iterdir() if p.is_dir()]
        return left

    def history_rows(self, file: Path | None = None) -> tuple[str, list[str]]:
        db = sqlite3.connect(f"file:{file or self.history}?mode=ro", uri=True, timeout=5)
        try:
            check = str(db.execute("PRAGMA integrity_check").fetchone()[0])
            ids = [str(r[0]) for r in db.execute("SELECT id FROM evaluations ORDER BY rowid")]
        finally:
            db.close()
        return check, ids

    def stop_all(self) -> None:
        subprocess.run(
            [sys.executable, "-m", "pytest_keptn", "stop", "--state-dir", str(self.state)],
            capture_output=True, env=self.env, cwd=self.path, timeout=60,
        )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    if shutil.which("prometheus") is None:
        pytest.skip("no prometheus binary")
    path = tmp_path_factory.mktemp("faults")
    shutil.copytree(EXAMPLE / "keptn", path / "keptn")
    shutil.copytree(EXAMPLE / "keptn", path / "keptn-broken")
    (path / "keptn-broken" / STAGE / SERVICE / "locust" / "locustfile.py").write_text(BROKEN_LOCUSTFILE)
    (path / "pytest.ini").write_text(INI)
    (path / "conftest.py").write_text(GATE_CONFTEST)
    p = Project(path)
    p.tmp.mkdir()
    try:
        setup = p.run("--keptn-tag=v0.1.1", "--keptn-locust-run-time=5s")
        assert setup.rc == 0, setup.out
        p.baseline = p.history_rows()[1]  # type: ignore[attr-defined]
        assert p.baseline  # type: ignore[attr-defined]
        yield p
    finally:
        p.stop_all()


@dataclass
class Observed:
    case: str
    rc: int
    message: str
    seconds: float
    primary: str
    orphans: list[str]
    folders: list[str]
    history: str


OBSERVED: list[Observed] = []


def aftermath(project: Project, case: str, result: Result, *, rc: int | tuple[int, ...],
              message: str) -> Observed:
    """The checks every case shares; returns what was seen (printed for docs/reliability.md)."""
    url, pid = project.primary()
    answer = httpx.get(url, timeout=5)
    orphans = project.orphans(keep={pid})
    folders = project.leftover_folders()
    check, ids = project.history_rows()
    seen = Observed(
        case, result.rc, next((line.strip() for line in result.out.splitlines() if message in line), ""),
        round(result.seconds, 1), f"{answer.status_code} {answer.text.strip()[:40]}", orphans, folders,
        f"{check}, {len(ids)} rows",
    )
    OBSERVED.append(seen)
    print(f"OBSERVED {seen}")
    logs = os.environ.get("KEPTN_FAULT_LOGS")
    if logs:
        Path(logs).mkdir(parents=True, exist_ok=True)
        (Path(logs) / (case.replace(" ", "_") + ".log")).write_text(result.out)
    tail = result.out[-6000:]
    assert "Traceback" not in result.out, tail
    assert "INTERNALERROR" not in result.out, tail
    assert result.rc in ((rc,) if isinstance(rc, int) else rc), tail
    assert message in result.out, tail
    assert answer.status_code == 200 and "v0.1.1" in answer.text, answer.text
    assert not orphans, orphans
    assert not folders, folders
    assert check == "ok"
    assert set(project.baseline) <= set(ids)  # type: ignore[attr-defined]
    return seen


def prometheus_pid(project: Project) -> int | None:
    for proc in project.processes():
        try:
            if "prometheus" in os.path.basename(proc.cmdline()[0]):
                return int(proc.pid)
        except (psutil.Error, IndexError):
            continue
    return None


def signal_prometheus(project: Project, sig: signal.Signals) -> None:
    pid = prometheus_pid(project)
    assert pid is not None, "no embedded Prometheus running"
    os.kill(pid, sig)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Short Prometheus timeouts keep a dead Prometheus from costing the default 15 s + 10 s.
RUN = ("--keptn-tag=v0.1.1", "--keptn-locust-run-time=3s", "--keptn-freshness-timeout=4",
       "--keptn-query-timeout=3")


# --------------------------------------------------------------------------- Prometheus


def test_prometheus_killed_during_load(project: Project) -> None:
    def react(line: str, run: Running) -> None:
        if "load: 1/" in line and run.once("kill"):
            signal_prometheus(project, signal.SIGKILL)

    result = project.run(*RUN, react=react)
    aftermath(project, "Prometheus killed during load", result, rc=1,
              message="unreachable ([Errno 111] Connection refused)")


def test_prometheus_killed_during_evaluation(project: Project) -> None:
    # Stopped before the evaluation asks anything (the gate), so its first request hangs;
    # killed 0.5 s later: the evaluation is in flight when Prometheus dies.
    def react(line: str, run: Running) -> None:
        if "evaluation started" in line and run.once("kill"):
            signal_prometheus(project, signal.SIGSTOP)
            run.open_gate()
            time.sleep(0.5)
            signal_prometheus(project, signal.SIGKILL)

    result = project.run(*RUN, react=react, gate=True)
    aftermath(project, "Prometheus killed during evaluation", result, rc=1,
              message="unreachable ([Errno 111] Connection refused)")


def test_prometheus_hangs_during_evaluation(project: Project) -> None:
    """Alive but not answering (SIGSTOP from the start of the evaluation, before it asks
    anything, to its end): the evaluation gives up within its timeouts instead of hanging."""
    began: list[float] = []

    def react(line: str, run: Running) -> None:
        if "evaluation started" in line and run.once("began"):
            signal_prometheus(project, signal.SIGSTOP)
            began.append(time.monotonic())
            run.open_gate()
        if "evaluation FAILED" in line and run.once("resume"):
            began.append(time.monotonic())
            signal_prometheus(project, signal.SIGCONT)

    result = project.run(*RUN, react=react, gate=True)
    aftermath(project, "Prometheus hangs during evaluation", result, rc=1,
              message="timed out")
    assert len(began) == 2, result.out[-3000:]
    # --keptn-freshness-timeout=4 plus one query round of --keptn-query-timeout=3, with margin
    assert began[1] - began[0] < 15, began[1] - began[0]


def test_prometheus_unreachable(project: Project) -> None:
    port = free_port()
    rows = project.history_rows()[1]
    result = project.run(*RUN, f"--keptn-prometheus-url=http://127.0.0.1:{port}",
                         f"--keptn-prometheus-file-sd={project.path / 'targets.json'}")
    # a setup mistake (issue 13): one line naming the option, exit 4, nothing deployed or recorded
    aftermath(project, "Prometheus unreachable from the start", result, rc=4,
              message="--keptn-prometheus-url: Prometheus at http://127.0.0.1:"
                      f"{port} unreachable ([Errno 111] Connection refused)")
    assert "deployment" not in result.out and "evaluation" not in result.out, result.out[-3000:]
    assert project.history_rows()[1] == rows


# --------------------------------------------------------------------------- canary, load


def test_canary_crashes_mid_load(project: Project) -> None:
    canary: list[int] = []

    def react(line: str, run: Running) -> None:
        if "deployment: canary" in line and "(pid " in line:
            canary.append(int(line.rsplit("(pid ", 1)[1].split(")")[0]))
        if "load: 1/" in line and run.once("kill"):
            os.kill(canary[-1], signal.SIGKILL)

    result = project.run(*RUN, react=react)
    assert canary
    aftermath(project, "canary crashes mid-load", result, rc=1,
              message=f"helloservice:v0.1.1 (pid {canary[-1]}, killed by SIGKILL) stopped "
                      "during the test")
    # the test task fails before any evaluation: a crashed build is not scored on the data it
    # left behind, so no evaluation of it becomes a baseline
    assert "evaluation started" not in result.out, result.out[-4000:]
    assert "test FAILED" in result.out


def test_sigkill_of_pytest_during_load(project: Project) -> None:
    """No handler runs on SIGKILL: the embedded Prometheus' watchdog stops it and removes its
    folder; the canary is left to the next run, which reclaims it and delivers normally."""
    def react(line: str, run: Running) -> None:
        if "load: 1/" in line and run.once("kill"):
            run.proc.kill()

    killed = project.run(*RUN, react=react)
    assert killed.rc == -signal.SIGKILL, killed.out[-3000:]
    def prometheus_left() -> list[str]:
        return [f for f in project.leftover_folders() if "keptn-prometheus-" in f]

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (prometheus_pid(project) or prometheus_left()):
        time.sleep(0.2)
    assert prometheus_pid(project) is None, "the embedded Prometheus outlived pytest"
    assert not prometheus_left(), prometheus_left()
    # SIGKILL leaves the run folder in $TMPDIR: the next session removes it (its owner is gone)
    assert list(project.tmp.glob("keptn-run-*")), "the killed run left no run folder?"
    recovery = project.run(*RUN)
    aftermath(project, "SIGKILL of pytest during load, then a new run", recovery, rc=0,
              message="is the primary of hardening")  # checks that $TMPDIR is empty again


def test_sigterm_of_pytest_during_load(project: Project) -> None:
    """What a CI system does when it cancels a job: the run stops at once, removes the canary
    and its embedded Prometheus, and the primary keeps serving."""
    def react(line: str, run: Running) -> None:
        if "load: 1/" in line and run.once("term"):
            run.proc.send_signal(signal.SIGTERM)

    result = project.run(*RUN, react=react)
    aftermath(project, "SIGTERM of pytest during load", result, rc=2,
              message="terminated (SIGTERM)")
    assert "rollback: stopped canary" in result.out, result.out[-3000:]
    assert prometheus_pid(project) is None


def test_locustfile_raises_at_import(project: Project) -> None:
    result = project.run(*RUN, "--keptn-root=keptn-broken")
    aftermath(project, "locustfile raises at import", result, rc=1,
              message="locustfile broken on purpose")


# --------------------------------------------------------------------------- history


def _events(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.json")) if folder.exists() else []


def test_history_locked_by_another_writer(project: Project) -> None:
    events = project.path / "events-locked"
    report = project.path / "report-locked.html"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent("""
            import sqlite3, sys, time
            db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=5)
            db.execute("BEGIN EXCLUSIVE")
            print("locked", flush=True)
            time.sleep(float(sys.argv[2]))
            db.execute("ROLLBACK")
        """), str(project.history), "150"],
        stdout=subprocess.PIPE, text=True, cwd=project.path,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        result = project.run(*RUN, f"--keptn-events={events}", f"--html={report}",
                             "--self-contained-html", "--keptn-history-lock-timeout=5",
                             timeout=170)
        assert holder.poll() is None, "the lock holder ended before the run"
    finally:
        holder.kill()
        holder.wait()
    aftermath(project, "history locked by another writer", result, rc=1, message="locked")
    assert len(_events(events)) == 1, result.out[-4000:]
    assert report.exists() and "hardening: pass" in report.read_text()


def test_history_corrupted(project: Project) -> None:
    events = project.path / "events-corrupt"
    report = project.path / "report-corrupt.html"
    corrupt = project.path / "corrupt.sqlite"
    garbage = bytes(range(256)) * 64
    corrupt.write_bytes(garbage)
    result = project.run(*RUN, f"--keptn-history={corrupt}", f"--keptn-events={events}",
                         f"--html={report}", "--self-contained-html")
    aftermath(project, "history file corrupted", result, rc=1,
              message="not a usable history database")
    assert corrupt.read_bytes() == garbage, "the corrupted history was overwritten"
    assert len(_events(events)) == 1, result.out[-4000:]
    assert report.exists() and "hardening: pass" in report.read_text()


# --------------------------------------------------------------------------- SIGINT


def _sigint_on(trigger: str, before: Callable[[Running], None] | None = None) -> Reaction:
    def react(line: str, run: Running) -> None:
        if trigger in line and run.once("sigint"):
            if before is not None:
                before(run)
            run.interrupt()
    return react


@pytest.mark.parametrize("task", ["deployment", "test", "evaluation", "release"])
def test_sigint_during_task(project: Project, task: str) -> None:
    if task == "deployment":
        react = _sigint_on("deployment started")
    elif task == "test":
        react = _sigint_on("load: 1/")
    elif task == "evaluation":
        # Prometheus is paused before the evaluation asks anything (the gate) so the
        # evaluation is still running when SIGINT arrives; it is resumed right after so it can
        # be stopped the ordinary way.
        def pause(line: str, run: Running) -> None:
            if "evaluation started" in line and run.once("sigint"):
                signal_prometheus(project, signal.SIGSTOP)
                run.open_gate()
                time.sleep(0.3)
                run.interrupt()
                time.sleep(0.3)
                signal_prometheus(project, signal.SIGCONT)
        react = pause
    else:
        react = _sigint_on("release started")
    result = project.run(*RUN, react=react, gate=task == "evaluation")
    # SIGINT never lets the sequence go on (no new load, no release): the task in flight fails
    # with "interrupted", the canary is removed, and pytest exits 2. The release is too short
    # (a few ms) to hit reliably: the signal may land just before or just after it.
    message = "interrupted (KeyboardInterrupt)" if task != "release" else "KeyboardInterrupt"
    aftermath(project, f"SIGINT during {task}", result, rc=2, message=message)
    if task in ("test", "evaluation"):  # the canary was recorded: it is rolled back
        assert "rollback: stopped canary" in result.out, result.out[-4000:]
