"""pytest-xdist: each stage still runs once. The controller hands its run folder and its
embedded Prometheus to the workers, and relays their progress lines to the terminal."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import pytest

from pytest_keptn.session.rundir import PROGRESS_FILE

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
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self._relay is None:
            return  # not the controller of an xdist run: nothing is relayed
        self._relaying.clear()
        self._relay.join(timeout=5)
        self._relay = None
        self._relay_once()  # what came after the last look

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
