"""The session of a run: owns the run folder, the history, the embedded Prometheus and the
pipeline, says progress lines, and cleans up at the end."""

from __future__ import annotations

import shutil
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pytest_keptn.config import Settings
from pytest_keptn.deploy.checks import check_delivery
from pytest_keptn.errors import ConfigError, HistoryError
from pytest_keptn.gate.history import History, check_history_setting, history_location
from pytest_keptn.locate import prepare_state_dir
from pytest_keptn.model import StageContext, TargetRegistry, TargetSlot
from pytest_keptn.prometheus.file_sd import FileSDTargets, prune
from pytest_keptn.prometheus.file_sd import check_settings as check_file_sd
from pytest_keptn.prometheus.keep import parse_duration
from pytest_keptn.prometheus.preflight import check_prometheus
from pytest_keptn.prometheus.server import EmbeddedPrometheus
from pytest_keptn.run.approval import check_approve
from pytest_keptn.run.pipeline import Pipeline
from pytest_keptn.run.plan import RunPlan, StagePlan, plan_run
from pytest_keptn.run.state import SequenceState, StateStore
from pytest_keptn.session import outcome
from pytest_keptn.session.items import GateFailure, step
from pytest_keptn.session.rundir import PROGRESS_FILE, new_rundir
from pytest_keptn.spec.timeframe import resolve_window
from pytest_keptn.system import interrupts
from pytest_keptn.system.processes import ProcessRegistry


class KeptnSession:
    """Everything pytest-keptn does in a session where a stage is selected."""

    def __init__(self, config: pytest.Config, settings: Settings,
                 early: EmbeddedPrometheus | None = None) -> None:
        self.config = config
        self.settings = settings
        self._early = early  # spawned before the runtime was imported (plugin.py)
        try:
            self.keep_seconds = parse_duration(settings.prometheus_keep)
        except ValueError:
            raise ConfigError(f"expected a duration such as 10m, 600s or 0, got "
                              f"{settings.prometheus_keep!r}",
                              field="--keptn-prometheus-keep") from None
        self.plan: RunPlan = plan_run(settings, config.rootpath)
        if self._early is not None and not self.plan.needs_prometheus:
            self._early.close()
            self._early = None
        hook = config.pluginmanager.hook
        check_delivery(settings, self.root, self.plans, evaluation_only=settings.evaluation_only,
                       own_deployer=bool(hook.pytest_keptn_deploy.get_hookimpls()),
                       own_load=bool(hook.pytest_keptn_run_load.get_hookimpls()))
        check_history_setting(settings.history)  # a postgresql:// URL needs its driver
        pm = config.pluginmanager
        check_file_sd(settings, scraped=not settings.evaluation_only and self.plan.needs_prometheus
                      and not pm.is_blocked("keptn-sli-prometheus"),
                      # a deployer of the user's own (conftest, plugin) may deploy anywhere
                      local=not pm.is_blocked("keptn-deployer-local")
                      and not hook.pytest_keptn_deploy.get_hookimpls())
        self._file_sd: FileSDTargets | None = None
        prepare_state_dir(settings.state_path(self.root))  # with a .gitignore
        self._history: History | None = None
        self._history_error: Exception | None = None
        self._prometheus: EmbeddedPrometheus | None = None
        self._prometheus_lock = threading.Lock()
        self._announced = False
        self.user_failures: dict[str, list[str]] = {}  # stage -> failed user tests
        self.failed_other = 0  # failed tests that are neither objectives nor sequences
        # decided once in pytest_sessionfinish, read by the terminal summary and pytest-html
        self.outcome: outcome.Outcome | None = None
        self.final_states: list[SequenceState] | None = None
        self.reports: list[Any] | None = None
        # --keptn-baseline: the pinned comparison basis by stage, checked before anything runs
        pinned: dict[str, list[Any]] = {}
        if settings.baseline_ids:
            pinned = self.history().pinned(
                settings.baseline_ids, project=self.project,
                services={st: p.service for st, p in self.plans.items() if p.slo is not None})
        if settings.approve:  # a manual approval of this build must wait in the first stage
            first = self.plan.selected[0]
            check_approve(settings, self.history(), settings.state_path(self.root),
                          project=self.project, stage=first, service=self.plans[first].service)
        self.workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
        self.is_worker = self.workerinput is not None
        self._own_rundir = not (self.workerinput and "keptn_rundir" in self.workerinput)
        self.rundir = Path(self.workerinput["keptn_rundir"]) if self.workerinput and not \
            self._own_rundir else new_rundir()
        # the processes this session starts; an xdist worker hands its canaries over to the
        # run (the controller stops what is left at the end)
        self.processes = ProcessRegistry(str(self.rundir), hand_over=self.is_worker)
        self.pipeline = Pipeline(self.plan, settings, config.hook, StateStore(self.rundir), self,
                                 pinned)

    # ---- what the run is -----------------------------------------------------

    @property
    def root(self) -> Path:
        return self.plan.root

    @property
    def project(self) -> str:
        return self.plan.project

    @property
    def selected(self) -> tuple[str, ...]:
        return self.plan.selected

    @property
    def plans(self) -> dict[str, StagePlan]:
        return self.plan.stages

    @property
    def is_xdist_controller(self) -> bool:
        # under xdist the controller runs no items: only workers drive sequences
        return not self.is_worker and bool(getattr(self.config.option, "numprocesses", None))

    def register_builtins(self) -> None:
        pm = self.config.pluginmanager
        if self.settings.deployer == "local":
            from pytest_keptn.deploy.local import LocalDeployer

            pm.register(LocalDeployer(), "keptn-deployer-local")
        elif self.settings.deployer == "helm":
            from pytest_keptn.deploy.helm import HelmDeployer

            pm.register(HelmDeployer(), "keptn-deployer-helm")
        from pytest_keptn.load.locust_driver import LocustDriver
        from pytest_keptn.load.provider import LocustSLIProvider
        from pytest_keptn.prometheus.provider import PrometheusSLIProvider

        pm.register(LocustDriver(), "keptn-load-locust")
        pm.register(PrometheusSLIProvider(), "keptn-sli-prometheus")
        pm.register(LocustSLIProvider(), "keptn-sli-locust")
        if pm.hasplugin("html"):
            from pytest_keptn.session.html import HtmlReport

            pm.register(HtmlReport(self), "keptn-html")
        if pm.hasplugin("xdist"):
            from pytest_keptn.session.xdist import XdistController, XdistWorker

            pm.register(XdistController(self), "keptn-xdist")
            if self.is_worker:
                pm.register(XdistWorker(self), "keptn-xdist-worker")

    # ---- resources (Pipeline's Resources) ------------------------------------

    def history(self) -> History:
        # A history that could not be opened (locked past the retry time, corrupt) fails the
        # same way on every later use instead of waiting for the lock again each time.
        if self._history_error is not None:
            raise self._history_error
        if self._history is None:
            location = history_location(self.settings.history, self.settings.state_path(self.root))
            try:
                self._history = History(location, lock_timeout=self.settings.history_lock_timeout)
            except HistoryError as exc:
                self._history_error = exc
                raise
        return self._history

    def check_prometheus(self) -> None:
        """Prometheus setup mistakes are usage errors before anything starts (issue 13); an
        evaluation-only window is checked first, as it needs no network."""
        if self.is_worker or self.config.option.collectonly:
            return
        if self.settings.evaluation_only:
            s = self.settings
            resolve_window(start=s.start, end=s.end, timeframe=s.timeframe, now=datetime.now(UTC))
        if self.config.pluginmanager.has_plugin("keptn-sli-prometheus") and self.plan.needs_prometheus:
            check_prometheus(self.settings)

    def embedded(self, *, quiet: bool = False) -> EmbeddedPrometheus | None:
        """The run's embedded Prometheus, started on first need (or the xdist controller's)."""
        with self._prometheus_lock:
            workerinput = self.workerinput or {}
            if self._prometheus is None and workerinput.get("keptn_prometheus_url"):
                # an xdist worker: the controller's Prometheus scrapes every worker's targets
                self._prometheus = EmbeddedPrometheus.attach(
                    workerinput["keptn_prometheus_url"], workerinput["keptn_prometheus_sd"])
            if (
                self._prometheus is None
                and self.settings.prometheus_url is None
                and self.config.pluginmanager.has_plugin("keptn-sli-prometheus")
                and self.plan.needs_prometheus
            ):
                early, self._early = self._early, None
                server = early or EmbeddedPrometheus(
                    self.settings.state_path(self.root) / "prometheus",
                    binary=self.settings.prometheus_binary,
                    scrape_interval=self.settings.scrape_interval,
                    keep_seconds=self.keep_seconds,
                ).spawn()
                # the slots before waiting: written while Prometheus starts, they are read
                # at its first discovery tick like the rest
                server.add_slots(self.target_slots())
                server.wait_started()
                server.publish()  # --keptn-prometheus-keep: for the next session
                self._prometheus = server
                if not quiet:
                    self.say(f"embedded Prometheus at {server.url}")
            elif self._prometheus is not None and not quiet and not self._announced:
                self.say(f"embedded Prometheus at {self._prometheus.url}")
            self._announced = self._announced or not quiet
        return self._prometheus

    def target_slots(self) -> list[TargetSlot]:
        """What the deployers will register (``pytest_keptn_target_slots``), for every stage
        the run may reach: registered when Prometheus starts, scraped before they are used."""
        found: list[TargetSlot] = []
        if self.settings.deployer == "none":
            return found
        for stage in self.plans:
            ctx = self.pipeline.planning_context(stage)
            for answer in self.config.hook.pytest_keptn_target_slots(ctx=ctx):
                found += answer or []
        return found

    def start_prometheus_early(self) -> None:
        """Start the embedded Prometheus in the background while pytest collects: it picks up
        new scrape targets only on a 5 s tick counted from its own start, so the earlier it
        starts, the shorter the deployment waits for the canary's first scrape."""
        if self.config.option.collectonly or self.is_worker or self.settings.evaluation_only:
            return  # under xdist the controller starts it and hands it to the workers
        if not self.is_xdist_controller:  # the first stage's load driver gets ready too
            self.pipeline.prepare_load(list(self.selected))

        def start() -> None:
            try:
                self.embedded(quiet=True)
            except Exception:
                pass

        threading.Thread(target=start, name="keptn-prometheus-start", daemon=True).start()

    def targets(self) -> TargetRegistry:
        if self.settings.prometheus_file_sd and self.settings.prometheus_url:
            with self._prometheus_lock:
                if self._file_sd is None:
                    self._file_sd = FileSDTargets(
                        Path(self.settings.prometheus_file_sd), self.settings.prometheus_url,
                        self.settings, workdir=self.settings.state_path(self.root))
            return self._file_sd
        embedded = self.embedded()
        return embedded if embedded is not None else TargetRegistry()

    def running_prometheus(self) -> EmbeddedPrometheus | None:
        """The embedded Prometheus this session uses, if one runs (never starts one)."""
        return self._prometheus

    def prometheus_url(self) -> str | None:
        if self.settings.prometheus_url:
            return self.settings.prometheus_url
        embedded = self.embedded()
        return str(embedded.url) if embedded is not None else None

    def user_test_failures(self, stage: str) -> list[str]:
        return list(self.user_failures.get(stage, []))

    def say(self, line: str) -> None:
        if self.workerinput is not None:
            # xdist shows nothing a worker writes: the controller relays these as they come
            worker = self.workerinput.get("workerid", "worker")
            with open(self.rundir / PROGRESS_FILE, "a", encoding="utf-8") as log:
                log.write(f"[{worker}] {line}\n")
            return
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:
            return
        capman = self.config.pluginmanager.get_plugin("capturemanager")
        text = f"[keptn] {line}"
        if capman is not None:
            with capman.global_and_fixture_disabled():
                reporter.ensure_newline()
                reporter.write_line(text)
        else:
            reporter.write_line(text)

    # ---- what the public fixtures ask ------------------------------------------

    def stage_of(self, node: pytest.Item) -> str:
        marker = node.get_closest_marker("keptn_stage")
        return str(marker.args[0]) if marker is not None and marker.args else self.selected[0]

    def stage_context(self, node: pytest.Item) -> StageContext:
        return self.pipeline.context(self.stage_of(node))

    def service_url(self, node: pytest.Item) -> str:
        """The URL of the build under test in the node's stage; skips or fails the test when
        there is none."""
        stage = self.stage_of(node)
        try:
            state = step(self.pipeline.deploy, stage)
        except GateFailure as exc:
            pytest.fail(str(exc), pytrace=False)
        if state.status == "not-triggered":
            pytest.skip(f"{stage}: {state.message}")
        if state.failed_task is not None:
            pytest.fail(f"{stage}: {state.failed_task.name} task failed: {state.failed_task.message}",
                        pytrace=False)
        if state.deployment is None:
            pytest.skip(f"{stage}: nothing deployed (deployer {self.settings.deployer})")
        return state.deployment.url

    # ---- the end of the session --------------------------------------------------

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        interrupts.install()  # the first signal interrupts, a further one hurries the cleanup

    def pytest_keyboard_interrupt(self, excinfo: Any) -> None:
        interrupts.cleaning_up()

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        outcome.finish_session(self, session, exitstatus)

    def pytest_report_collectionfinish(self, config: pytest.Config) -> str:
        stages = ", ".join(self.selected)
        return f"keptn: project {self.project}, stage(s) {stages}, root {self.root}"

    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int,
                                config: pytest.Config) -> None:
        outcome.terminal_summary(self, terminalreporter)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.close()

    def close(self) -> None:
        try:
            from pytest_keptn.deploy.local import cleanup_run, cleanup_session

            cleanup_session(self.processes)
            if self.is_xdist_controller and self.settings.deployer == "local":
                for line in cleanup_run(self.settings.state_path(self.root), self.processes,
                                        keep_primaries=self.settings.keep_primaries):
                    self.say(f"cleanup: {line}")
            if self.settings.prometheus_file_sd and self.settings.prometheus_url:
                prune(Path(self.settings.prometheus_file_sd))  # what was stopped leaves the file
        except Exception as exc:
            self.say(f"cleanup: {exc}")
        with self._prometheus_lock:  # waits for a start still under way in the background
            for server in (self._prometheus, self._early):
                if server is not None:
                    server.close()  # a kept one (--keptn-prometheus-keep) keeps running
            self._prometheus = self._early = None
        if self._history is not None:
            self._history.close()
            self._history = None
        if self._own_rundir:
            shutil.rmtree(self.rundir, ignore_errors=True)
        interrupts.uninstall()
