"""pytest-xdist: each stage still runs once. The controller hands its run folder and its
embedded Prometheus to the workers, and relays their progress lines to the terminal.

A signal to the controller alone (``kill``, a CI runner: one process, not the group) never
reaches the workers, and xdist's own teardown interrupts them only seconds later, after a
release may have happened, and kills them 10 s after that, in the middle of their cleanup.
So the controller stops them itself: it says why in ``workers/stop`` and sends each worker
``STOP_SIGNAL``, which interrupts it as its own Ctrl-C would (no new task, the canary rolled
back, the sequence recorded); then it waits for every worker to have finished its session.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_keptn.session.rundir import PROGRESS_FILE
from pytest_keptn.system import interrupts
from pytest_keptn.system import processes as procs

if TYPE_CHECKING:
    from pytest_keptn.session.session import KeptnSession


class XdistController:
    """Hands the run folder to xdist workers so a stage runs once for all of them, and relays
    their progress lines (deployment, load, evaluation) to the terminal as they come."""

    def __init__(self, keptn: KeptnSession) -> None:
        self.keptn = keptn
        self._relaying = threading.Event()
        self._relay: threading.Thread | None = None
        self._offset = 0

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if not self.keptn.is_xdist_controller:
            return
        self._relaying.set()
        self._relay = threading.Thread(target=self._run_relay, name="keptn-progress", daemon=True)
        self._relay.start()

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self._relay is None:
            return  # not the controller of an xdist run: nothing is relayed
        if exitstatus == pytest.ExitCode.INTERRUPTED:
            self._stop_workers()  # while the relay still shows what they do
        self._relaying.clear()
        self._relay.join(timeout=5)
        self._relay = None
        self._relay_once()  # what came after the last look

    def _stop_workers(self) -> None:
        folder = self.keptn.rundir / WORKERS
        running = [w for w in _workers(folder) if not w.done]
        if not running:
            return
        signame = "SIGTERM" if interrupts.TERMINATED else "SIGINT"
        self.keptn.say(f"{signame} to the xdist controller: stopping the workers' sequences "
                       f"({', '.join(w.name for w in running)}: no new task, the canary is "
                       "rolled back)")
        with contextlib.suppress(OSError):
            (folder / STOP).write_text(f"{'terminated' if interrupts.TERMINATED else 'interrupted'}"
                                       f"\n{interrupts.reason()}\n")
        for worker in running:
            worker.signal()

        def hurry() -> None:  # a further signal to the controller: the workers hurry too
            with contextlib.suppress(OSError):
                (folder / HURRY).touch()
            for worker in _workers(folder):
                if not worker.done:
                    worker.signal()

        interrupts.on_hurry(hurry)
        deadline = time.monotonic() + WORKER_STOP_TIMEOUT
        while time.monotonic() < deadline:
            if all(w.done or not w.alive() for w in _workers(folder)):
                return
            time.sleep(0.05)
        self.keptn.say(f"the workers did not finish within {WORKER_STOP_TIMEOUT:g}s of the stop; "
                       "xdist stops them now")

    def _run_relay(self) -> None:
        while self._relaying.is_set():
            self._relay_once()
            time.sleep(0.2)

    def _relay_once(self) -> None:
        try:
            with open(self.keptn.rundir / PROGRESS_FILE, "rb") as log:
                log.seek(self._offset)
                chunk = log.read()
        except OSError:
            return
        end = chunk.rfind(b"\n") + 1  # whole lines only; the rest comes next time
        self._offset += end
        reporter = self.keptn.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:
            return
        # the controller runs no tests and captures nothing: write straight to the terminal
        writer = getattr(reporter, "_tw", None)
        for line in chunk[:end].decode("utf-8", "replace").splitlines():
            reporter.ensure_newline()
            if getattr(writer, "width_of_current_line", 0):
                reporter.line("")  # after xdist's progress dots
            reporter.write_line(f"[keptn] {line}")

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput["keptn_rundir"] = str(self.keptn.rundir)
        # One embedded Prometheus for the run, so that the worker that deploys a canary and
        # the worker that evaluates it see the same scrape targets.
        try:
            prometheus = self.keptn.embedded(quiet=True)
        except Exception:
            prometheus = None  # each worker then starts its own and reports what goes wrong
        if prometheus is not None:
            node.workerinput["keptn_prometheus_url"] = prometheus.url
            node.workerinput["keptn_prometheus_sd"] = str(prometheus.sd_dir)


# In the run folder: one file per worker (``<pid> <start ticks>``, and ``<id>.done`` once its
# session has finished), the controller's ``stop`` (why) and ``hurry`` (a further signal).
WORKERS, STOP, HURRY = "workers", "stop", "hurry"
STOP_SIGNAL = signal.SIGUSR1
# how long the controller waits for the workers' cleanup: each stop is bounded (SIGTERM
# grace, then SIGKILL), and a further signal to the controller makes them SIGKILL at once
WORKER_STOP_TIMEOUT = 60.0


class _Worker:
    def __init__(self, file: Path) -> None:
        self.name = file.name
        self.done = file.with_name(f"{file.name}.done").exists()
        try:
            pid, ticks = (int(x) for x in file.read_text().split())
        except (OSError, ValueError):
            pid, ticks = 0, 0
        self.pid, self.ticks = pid, ticks

    def alive(self) -> bool:
        return procs.alive(self.pid, self.ticks)

    def signal(self) -> None:
        if self.alive():
            with contextlib.suppress(OSError):
                os.kill(self.pid, STOP_SIGNAL)


def _workers(folder: Path) -> list[_Worker]:
    try:
        return [_Worker(f) for f in sorted(folder.iterdir())
                if "." not in f.name and f.name not in (STOP, HURRY)]
    except OSError:
        return []


class XdistWorker:
    """A worker of an xdist run: says where it runs, and stops its sequences when the
    controller says so (``STOP_SIGNAL``, see the module's docstring)."""

    def __init__(self, keptn: KeptnSession) -> None:
        self.keptn = keptn
        self.folder = keptn.rundir / WORKERS
        self.name = str((keptn.workerinput or {}).get("workerid", f"worker-{os.getpid()}"))
        self._finishing = False

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        with contextlib.suppress(ValueError, OSError):
            signal.signal(STOP_SIGNAL, self._on_stop)
            self.folder.mkdir(exist_ok=True)
            (self.folder / self.name).write_text(
                f"{os.getpid()} {procs.process_start_ticks(os.getpid())}")

    @pytest.hookimpl(wrapper=True)
    def pytest_sessionfinish(self) -> Iterator[None]:
        self._finishing = True
        try:
            return (yield)
        finally:
            with contextlib.suppress(OSError):
                (self.folder / f"{self.name}.done").touch()
            interrupts.quiet()  # what follows is xdist's teardown

    def _on_stop(self, signum: int, frame: object) -> None:
        __tracebackhide__ = True
        try:
            how, why = (self.folder / STOP).read_text().splitlines()[:2]
        except (OSError, ValueError):
            how, why = "interrupted", "interrupted (KeyboardInterrupt)"
        if interrupts.interrupted():  # its own signal came first (a Ctrl-C to the group)
            if (self.folder / HURRY).exists():
                interrupts.hurry("a further signal to the xdist controller")
            return
        if self._finishing:
            return  # its sequences are finishing already: nothing left to stop
        interrupts.interrupt(why, "the xdist controller's stop", terminated=how == "terminated")
