"""pytest hooks of pytest-keptn: options, collection of objectives, ordering, the session result.

Without ``--keptn-stage`` (or the ``keptn_stage`` ini key) nothing but the options, the marker
and a few fixtures is registered: an ordinary test suite runs exactly as before. Everything
else (spec loading, deployers, Prometheus, Locust) is imported only when a stage is selected.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_keptn.config import OPTIONS, Option, Settings, dest

if TYPE_CHECKING:
    from pytest_keptn.gate.history import History
    from pytest_keptn.sequence import Pipeline, SequenceState
    from pytest_keptn.spec.slo import Objective

SESSION_KEY = pytest.StashKey["KeptnSession"]()
OBJECTIVE_KEY = pytest.StashKey[tuple[str, int]]()
SEQUENCE_KEY = pytest.StashKey[tuple[str, str]]()


# --------------------------------------------------------------------------- registration


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from pytest_keptn import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("keptn", "Keptn quality gates (pytest-keptn)")
    for option in OPTIONS:
        kwargs: dict[str, Any] = {"dest": dest(option), "default": None, "help": option.help_text}
        if option.kind == "bool":
            kwargs.update(nargs="?", const="true", metavar=option.value_name)
        elif option.choices:
            kwargs.update(choices=option.choices)
        else:
            kwargs.update(metavar=option.value_name)
        group.addoption(f"--keptn-{option.name}", **kwargs)
        parser.addini(dest(option), option.help_text, default=None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "keptn_stage(name): run this test inside the stage's test task (after deployment, "
        "before the evaluation); objectives and sequences carry it too",
    )
    settings = resolve_settings(config)
    if not settings.enabled:
        return
    from pytest_keptn.errors import KeptnError
    from pytest_keptn.spec.checks import check_plans, reissued_spec_warnings

    try:
        with reissued_spec_warnings(config):
            session = KeptnSession(config, settings)
    except KeptnError as exc:
        raise pytest.UsageError(f"pytest-keptn: {exc}") from None
    config.stash[SESSION_KEY] = session
    config.pluginmanager.register(session, "keptn-session")
    config.pluginmanager.register(_Ordering(), "keptn-ordering")
    session.register_builtins()
    try:
        check_plans(session.plans, config.pluginmanager)
        session.check_prometheus()  # after the offline checks: it may ask the network
    except KeptnError as exc:  # the session is closed in pytest_unconfigure
        raise pytest.UsageError(f"pytest-keptn: {exc}") from None
    session.start_prometheus_early()


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(SESSION_KEY, None)
    if session is not None:
        session.close()


# --------------------------------------------------------------------------- settings


def _convert(option: Option, raw: Any) -> Any:
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = raw.strip()
        if raw == "":
            return None
    try:
        if option.kind == "bool":
            return str(raw).lower() in ("1", "true", "yes", "on")
        if option.kind == "int":
            return int(raw)
        if option.kind == "float":
            return float(raw)
    except ValueError:
        raise pytest.UsageError(
            f"pytest-keptn: --keptn-{option.name}: expected a {option.kind}, got {raw!r}"
        ) from None
    if option.choices and raw not in option.choices:
        raise pytest.UsageError(
            f"pytest-keptn: keptn_{option.name.replace('-', '_')}: {raw!r} is not one of "
            f"{', '.join(option.choices)}"
        )
    return raw


PATH_OPTIONS = ("root", "history", "events", "state_dir", "prometheus_ca_bundle")


def resolve_settings(config: pytest.Config) -> Settings:
    """CLI > ini/pyproject > default. Relative paths: CLI from the invocation folder, ini
    values from the folder of the ini file."""
    values: dict[str, Any] = {}
    ini_base = config.inipath.parent if config.inipath else config.rootpath
    for option in OPTIONS:
        key = dest(option)
        name = key[len("keptn_"):]
        value = _convert(option, config.getoption(key))
        base = config.invocation_params.dir
        if value is None:
            value = _convert(option, config.getini(key))
            base = ini_base
        if value is None:
            value = option.default
        elif name in PATH_OPTIONS and "://" not in str(value):  # a postgresql:// history
            value = str((Path(base) / value).resolve())
        values[name] = value
    return Settings(**values)


# --------------------------------------------------------------------------- items


class StageNode(pytest.Collector):
    """A shipyard stage in the collection tree (``shipyard.yaml::hardening``)."""

    def collect(self) -> list[pytest.Item | pytest.Collector]:  # pragma: no cover - built by hand
        return []


class ShipyardFile(pytest.File):
    def collect(self) -> list[pytest.Item | pytest.Collector]:  # pragma: no cover - built by hand
        return []


class ObjectiveItem(pytest.Function):
    """One SLO objective: passes, warns or fails as the lighthouse scored it."""

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, GateFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        stage, _ = self.stash[OBJECTIVE_KEY]
        return self.path, None, f"{stage}: objective {self.name}"


class SequenceItem(pytest.Function):
    """A shipyard sequence: its tasks in order; fails when a task or the gate failed."""

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, GateFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        stage, seq = self.stash[SEQUENCE_KEY]
        return self.path, None, f"{stage}: sequence {seq}"


class GateFailure(AssertionError):
    """An objective or sequence failed; the text is the whole explanation."""


class PipelineFailure(GateFailure):
    """The sequence could not be driven at all (a bad trigger chain, a history error, ...)."""


# --------------------------------------------------------------------------- the session


class KeptnSession:
    """Everything pytest-keptn does in a session where a stage is selected."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        from pytest_keptn.errors import ConfigError

        self.config = config
        self.settings = settings
        self.root = self._find_root()
        self.plans, self.shipyard = self._load_plans()
        self.project = settings.project or self.shipyard.name
        stage_names = [s.name for s in self.shipyard.stages]
        if settings.stage == "all":
            self.selected = tuple(stage_names)
        else:
            wanted = [s.strip() for s in str(settings.stage).split(",") if s.strip()]
            unknown = [s for s in wanted if s not in stage_names]
            if unknown:
                raise ConfigError(
                    f"unknown stage {unknown[0]!r} (stages: {', '.join(stage_names)})",
                    file=str(self.root / "shipyard.yaml"), field="--keptn-stage",
                )
            self.selected = tuple(s for s in stage_names if s in wanted)
        self.plans = {k: v for k, v in self.plans.items() if k in self.selected}
        from pytest_keptn.deploy.checks import check_delivery

        hook = config.pluginmanager.hook
        check_delivery(settings, self.root, self.plans,
                       evaluation_only=bool(settings.timeframe or settings.start or settings.end),
                       own_deployer=bool(hook.pytest_keptn_deploy.get_hookimpls()),
                       own_load=bool(hook.pytest_keptn_run_load.get_hookimpls()))
        from pytest_keptn.gate.history import check_history_setting
        from pytest_keptn.locate import prepare_state_dir

        check_history_setting(settings.history)  # a postgresql:// URL needs its driver
        prepare_state_dir(settings.state_path(self.root))  # with a .gitignore
        self._history: History | None = None
        self._history_error: Exception | None = None
        self._prometheus: Any = None
        self._prometheus_lock = threading.Lock()
        self._announced = False
        self._user_failures: dict[str, list[str]] = {}
        self._failed_other = 0  # failed tests that are neither objectives nor sequences
        # decided once in pytest_sessionfinish, read by the terminal summary and pytest-html
        self.outcome: _Outcome | None = None
        self._states: list[SequenceState] | None = None
        self._reports: list[Any] | None = None
        self._own_rundir = False
        # stage -> (evaluation, its rows by SLI, occurrence of each objective's SLI), rows_of
        self._rows: dict[str, tuple[dict[str, Any], dict[str, list[dict[str, Any]]], list[int]]] = {}
        # --keptn-baseline: the pinned comparison basis by stage, checked before anything runs
        self.pinned: dict[str, list[Any]] = {}
        if settings.baseline_ids:
            self.pinned = self.history().pinned(
                settings.baseline_ids, project=self.project,
                services={st: p.service for st, p in self.plans.items() if p.slo is not None})
        workerinput = getattr(config, "workerinput", None)
        if workerinput is not None and "keptn_rundir" in workerinput:
            self.rundir = Path(workerinput["keptn_rundir"])
        else:
            self.rundir = _new_rundir()
            self._own_rundir = True
        self.pipeline = self._make_pipeline()
        self.is_worker = workerinput is not None

    # ---- configuration -------------------------------------------------------

    def _find_root(self) -> Path:
        from pytest_keptn.errors import ConfigError

        if self.settings.root:
            root = Path(self.settings.root)
            if not (root / "shipyard.yaml").is_file():
                raise ConfigError("no shipyard.yaml in this folder", file=str(root), field="--keptn-root")
            return root
        for candidate in (self.config.rootpath, self.config.rootpath / "keptn"):
            if (candidate / "shipyard.yaml").is_file():
                return candidate
        raise ConfigError(
            f"no shipyard.yaml in {self.config.rootpath} or {self.config.rootpath / 'keptn'}; "
            "set --keptn-root", field="--keptn-root",
        )

    def _load_plans(self) -> tuple[dict[str, Any], Any]:
        from pytest_keptn.errors import SpecError
        from pytest_keptn.sequence import StagePlan
        from pytest_keptn.spec.checks import check_option_name
        from pytest_keptn.spec.shipyard import load_shipyard
        from pytest_keptn.spec.sli import load_sli, merge_sli
        from pytest_keptn.spec.slo import load_slo

        shipyard = load_shipyard(self.root / "shipyard.yaml", compat=self.settings.compat)
        check_option_name(self.settings.project, "--keptn-project")
        plans: dict[str, StagePlan] = {}
        for stage in shipyard.stages:
            service = self.settings.service or self._guess_service(stage.name)
            check_option_name(service, "--keptn-service")
            levels = (self.root, self.root / stage.name, self.root / stage.name / service)
            sli_files = tuple(p / "prometheus" / "sli.yaml" for p in levels
                              if (p / "prometheus" / "sli.yaml").is_file())
            indicators = merge_sli(*(load_sli(f) for f in sli_files)) if sli_files else {}
            slo_path = next((p / "slo.yaml" for p in reversed(levels) if (p / "slo.yaml").is_file()), None)
            has_evaluation = any(t.name == "evaluation" for q in stage.sequences for t in q.tasks)
            slo = None
            if has_evaluation:
                if slo_path is None:
                    raise SpecError(
                        f"stage {stage.name!r} has an evaluation task but no slo.yaml "
                        f"(looked in {', '.join(str(p) for p in reversed(levels))})",
                        file=str(self.root / "shipyard.yaml"),
                        field=f"stages[{stage.name}]",
                    )
                slo = load_slo(slo_path, compat=self.settings.compat)
                if not slo.objectives and self.settings.compat != "0.8.7":
                    # Keptn 0.8.7 passes such a gate with score 100; we refuse to.
                    raise SpecError(
                        f"no objectives, but stage {stage.name!r} evaluates with it",
                        file=str(slo_path), field="objectives",
                    )
            plans[stage.name] = StagePlan(stage, service, slo, slo_path, indicators, sli_files)
        return plans, shipyard

    def _guess_service(self, stage: str) -> str:
        from pytest_keptn.errors import ConfigError

        folder = self.root / stage
        services = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
        if len(services) == 1:
            return services[0]
        for other in sorted(self.root.iterdir()):
            if other.is_dir():
                subs = [p.name for p in other.iterdir() if p.is_dir() and (p / "slo.yaml").exists()]
                if len(subs) == 1:
                    return subs[0]
        raise ConfigError(
            "cannot tell the service: set --keptn-service (or keptn_service)",
            file=str(self.root), field="--keptn-service",
        )

    def _make_pipeline(self) -> Pipeline:
        from pytest_keptn.sequence import Pipeline

        return Pipeline(
            settings=self.settings,
            shipyard=self.shipyard,
            root=self.root,
            project=self.project,
            plans=self.plans,
            selected=self.selected,
            entry_sequence=self.settings.sequence,
            hook=self.config.hook,
            history=self.history,
            rundir=self.rundir,
            say=self.say,
            targets=self.targets,
            prometheus_url=self.prometheus_url,
            user_test_failures=lambda stage: list(self._user_failures.get(stage, [])),
            pinned=self.pinned,
        )

    def register_builtins(self) -> None:
        pm = self.config.pluginmanager
        if self.settings.deployer == "local":
            from pytest_keptn.deploy import procs
            from pytest_keptn.deploy.local import LocalDeployer

            if self.is_worker:
                procs.hand_over(str(self.rundir))
            else:
                procs.set_run(str(self.rundir))
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
            pm.register(_HtmlReport(self), "keptn-html")
        if pm.hasplugin("xdist"):
            pm.register(_XdistController(self), "keptn-xdist")

    # ---- resources -------------------------------------------------------------

    def history(self) -> History:
        # A history that could not be opened (locked past the retry time, corrupt) fails the
        # same way on every later use instead of waiting for the lock again each time.
        if self._history_error is not None:
            raise self._history_error
        if self._history is None:
            from pytest_keptn.errors import HistoryError
            from pytest_keptn.gate.history import History, history_location

            location = history_location(self.settings.history, self.settings.state_path(self.root))
            try:
                self._history = History(location, lock_timeout=self.settings.history_lock_timeout)
            except HistoryError as exc:
                self._history_error = exc
                raise
        return self._history

    def _needs_prometheus(self) -> bool:
        for plan in self.plans.values():
            if plan.slo is None:
                continue
            for objective in plan.slo.objectives:
                if not objective.sli.startswith("locust_"):
                    return True
        return False

    def check_prometheus(self) -> None:
        """Prometheus setup mistakes are usage errors before anything starts (issue 13); an
        evaluation-only window is checked first, as it needs no network."""
        if self.is_worker or self.config.option.collectonly:
            return
        if self.pipeline.evaluation_only:
            from datetime import UTC, datetime

            from pytest_keptn.gate.timeframe import resolve_window

            s = self.settings
            resolve_window(start=s.start, end=s.end, timeframe=s.timeframe, now=datetime.now(UTC))
        if self.config.pluginmanager.has_plugin("keptn-sli-prometheus") and self._needs_prometheus():
            from pytest_keptn.prometheus.preflight import check_prometheus

            check_prometheus(self.settings)

    def _embedded(self, *, quiet: bool = False) -> Any:
        with self._prometheus_lock:
            workerinput = getattr(self.config, "workerinput", {})
            if self._prometheus is None and workerinput.get("keptn_prometheus_url"):
                # an xdist worker: the controller's Prometheus scrapes every worker's targets
                from pytest_keptn.prometheus.server import EmbeddedPrometheus

                self._prometheus = EmbeddedPrometheus.attach(
                    workerinput["keptn_prometheus_url"], workerinput["keptn_prometheus_sd"])
            if (
                self._prometheus is None
                and self.settings.prometheus_url is None
                and self.config.pluginmanager.has_plugin("keptn-sli-prometheus")
                and self._needs_prometheus()
            ):
                from pytest_keptn.prometheus.server import EmbeddedPrometheus

                server = EmbeddedPrometheus(
                    self.settings.state_path(self.root) / "prometheus",
                    binary=self.settings.prometheus_binary,
                    scrape_interval=self.settings.scrape_interval,
                ).start()
                self._prometheus = server
                if not quiet:
                    self.say(f"embedded Prometheus at {server.url}")
            elif self._prometheus is not None and not quiet and not self._announced:
                self.say(f"embedded Prometheus at {self._prometheus.url}")
            self._announced = self._announced or not quiet
        return self._prometheus

    def start_prometheus_early(self) -> None:
        """Start the embedded Prometheus in the background while pytest collects: it picks up
        new scrape targets only on a 5 s tick counted from its own start, so the earlier it
        starts, the shorter the deployment waits for the canary's first scrape."""
        if self.config.option.collectonly or self.is_worker or self.pipeline.evaluation_only:
            return  # under xdist the controller starts it and hands it to the workers

        def start() -> None:
            try:
                self._embedded(quiet=True)
            except Exception:
                pass

        threading.Thread(target=start, name="keptn-prometheus-start", daemon=True).start()

    def targets(self) -> Any:
        from pytest_keptn.model import TargetRegistry

        embedded = self._embedded()
        return embedded if embedded is not None else TargetRegistry()

    def prometheus_url(self) -> str | None:
        if self.settings.prometheus_url:
            return self.settings.prometheus_url
        embedded = self._embedded()
        return str(embedded.url) if embedded is not None else None

    def say(self, line: str) -> None:
        if self.is_worker:
            # xdist shows nothing a worker writes: the controller relays these as they come
            worker = getattr(self.config, "workerinput", {}).get("workerid", "worker")
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

    def close(self) -> None:
        try:
            from pytest_keptn.deploy.local import cleanup_run, cleanup_session

            cleanup_session()
            if self._is_xdist_controller() and self.settings.deployer == "local":
                for line in cleanup_run(self.settings.state_path(self.root), str(self.rundir),
                                        keep_primaries=self.settings.keep_primaries):
                    self.say(f"cleanup: {line}")
        except Exception as exc:
            self.say(f"cleanup: {exc}")
        with self._prometheus_lock:  # waits for a start still under way in the background
            if self._prometheus is not None:
                self._prometheus.stop()
                self._prometheus = None
        if self._history is not None:
            self._history.close()
            self._history = None
        if self._own_rundir:
            import shutil

            shutil.rmtree(self.rundir, ignore_errors=True)

    # ---- collection ------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        file = ShipyardFile.from_parent(session, path=self.root / "shipyard.yaml")
        new: list[pytest.Item] = []
        for stage in self.selected:
            plan = self.plans[stage]
            node = StageNode.from_parent(file, name=stage)
            mark = pytest.mark.keptn_stage(stage)
            if plan.slo is not None:
                seen: dict[str, int] = {}
                for index, objective in enumerate(plan.slo.objectives):
                    name = objective.sli
                    seen[name] = seen.get(name, 0) + 1
                    if seen[name] > 1:
                        name = f"{name}[{seen[name]}]"
                    item = ObjectiveItem.from_parent(
                        node, name=name, callobj=_objective_check(stage, index, objective)
                    )
                    item.stash[OBJECTIVE_KEY] = (stage, index)
                    item.add_marker(mark)
                    new.append(item)
            for seq in plan.stage.sequences:
                seq_item = SequenceItem.from_parent(
                    node, name=f"sequence[{seq.name}]", callobj=_sequence_check(stage, seq.name)
                )
                seq_item.stash[SEQUENCE_KEY] = (stage, seq.name)
                seq_item.add_marker(mark)
                new.append(seq_item)
        items.extend(new)
        session.testscollected += len(new)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not report.failed:
            return
        stage = getattr(report, "keptn_user_stage", None)
        if stage:
            self._user_failures.setdefault(stage, []).append(report.nodeid.split("::")[-1])
        if getattr(report, "keptn_kind", None) not in ("objective", "sequence"):
            self._failed_other += 1

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        failure = call.excinfo.value if call.excinfo is not None else None
        if isinstance(failure, PipelineFailure):
            report.keptn_kind = "pipeline-error"  # type: ignore[attr-defined]
        elif report.failed and not isinstance(failure, GateFailure) and (
                OBJECTIVE_KEY in item.stash or SEQUENCE_KEY in item.stash):
            # anything but a gate's verdict (an exception out of a hook, SystemExit, ...)
            # fails the session like any failing test, whatever the gates say
            report.keptn_kind = "item-error"  # type: ignore[attr-defined]
        elif OBJECTIVE_KEY in item.stash:
            report.keptn_kind = "objective"  # type: ignore[attr-defined]
            report.keptn_status = item.stash.get(STATUS_KEY, "")  # type: ignore[attr-defined]
        elif SEQUENCE_KEY in item.stash:
            report.keptn_kind = "sequence"  # type: ignore[attr-defined]
        else:
            marker = item.get_closest_marker("keptn_stage")
            if marker is not None and marker.args:
                report.keptn_user_stage = str(marker.args[0])  # type: ignore[attr-defined]
        return report

    def pytest_report_teststatus(
        self, report: pytest.TestReport, config: pytest.Config
    ) -> tuple[str, str, tuple[str, dict[str, bool]]] | None:
        if report.when == "call" and report.passed and getattr(report, "keptn_kind", "") == "objective":
            status = getattr(report, "keptn_status", "")
            if status == "warning":
                return "objective warning", "W", ("WARNING", {"yellow": True})
            if status == "info":
                return "objective info", "i", ("INFO", {"cyan": True})
        return None

    # ---- the session result ----------------------------------------------------

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self._is_xdist_controller():
            pass
        elif exitstatus == pytest.ExitCode.INTERRUPTED:
            # Ctrl-C: no further task runs (no load, no release); the canary is removed.
            from pytest_keptn.deploy import procs

            self.pipeline.abort_all("terminated (SIGTERM)" if procs.TERMINATED
                                    else "interrupted (KeyboardInterrupt)")
        else:
            self.pipeline.finish_all()
        if self.is_worker:
            return
        # read once here; the terminal summary and pytest-html's report come after this hook
        self._states = states = self.states()
        outcome = self.outcome = decide(states, self.settings, self.pipeline)
        self._reports = self.stage_reports(states)
        self.write_summaries(self._reports)
        if exitstatus in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.INTERNAL_ERROR,
                          pytest.ExitCode.USAGE_ERROR):
            return
        failed_other = self._failed_other
        if outcome.failed or failed_other:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        elif exitstatus == pytest.ExitCode.TESTS_FAILED:
            session.exitstatus = pytest.ExitCode.OK

    def _is_xdist_controller(self) -> bool:
        # under xdist the controller runs no items: only workers drive sequences
        return not self.is_worker and bool(getattr(self.config.option, "numprocesses", None))

    def pytest_report_collectionfinish(self, config: pytest.Config) -> str:
        stages = ", ".join(self.selected)
        return f"keptn: project {self.project}, stage(s) {stages}, root {self.root}"

    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
        if self.is_worker:
            return
        from pytest_keptn.report.terminal import render_gate_tables

        outcome, states = self.outcome, self._states
        if outcome is None or states is None or all(s.status == "pending" for s in states):
            return
        terminalreporter.write_sep("=", "Keptn quality gates")
        for line in render_gate_tables(states, self.pipeline, outcome):
            terminalreporter.write_line(line)

    def states(self) -> list[SequenceState]:
        return [self.pipeline.load_state(stage, seq.name)
                for stage in self.selected for seq in self.plans[stage].stage.sequences]

    def rows_of(self, stage: str, evaluation: dict[str, Any]
                ) -> tuple[dict[str, list[dict[str, Any]]], list[int]]:
        """The evaluation's result rows by SLI, and for each objective of the stage how many
        earlier objectives share its SLI; built once per evaluation, not once per item."""
        cached = self._rows.get(stage)
        if cached is not None and cached[0] is evaluation:
            return cached[1], cached[2]
        rows: dict[str, list[dict[str, Any]]] = {}
        for row in evaluation["data"]["evaluation"].get("indicatorResults") or []:
            rows.setdefault(str(row.get("value", {}).get("metric")), []).append(row)
        plan = self.plans[stage]
        assert plan.slo is not None
        seen: dict[str, int] = {}
        occurrences = []
        for objective in plan.slo.objectives:
            occurrences.append(seen.get(objective.sli, 0))
            seen[objective.sli] = occurrences[-1] + 1
        self._rows[stage] = (evaluation, rows, occurrences)
        return rows, occurrences

    def write_summaries(self, reports: list[Any]) -> None:
        from pytest_keptn.report.markdown import write_markdown_summary

        if reports:
            fallback = self.settings.state_path(self.root) / "summary.md"
            fallback.parent.mkdir(parents=True, exist_ok=True)
            write_markdown_summary(reports, fallback)

    def stage_reports(self, states: list[SequenceState]) -> list[Any]:
        from pytest_keptn.report.html import HistoryEntry, StageReport

        reports = []
        for state in states:
            if state.evaluation is None:
                continue
            ev = state.evaluation
            plan = self.plans[state.stage]
            try:
                rows = self.history().evaluations(
                    project=self.project, stage=state.stage, service=plan.service, limit=30
                )
            except Exception:
                rows = []
            history = [
                HistoryEntry(id=r.id, time=str(r.time), image=r.image, tag=r.tag,
                             result=r.result, score=r.score, data=r.data)
                for r in rows if not r.unreadable  # a damaged row has nothing to draw
            ]
            reports.append(StageReport(
                project=self.project, stage=state.stage, service=plan.service,
                image=self.settings.image, tag=self.settings.tag,
                result=ev["result"], score=float(ev["score"]),
                pass_threshold=float(ev["pass_threshold"]),
                warning_threshold=ev["warning_threshold"], data=ev["data"], history=history,
                queries=ev.get("queries", {}),
                basis={m: basis_text(ev, m) for m in ev.get("compared_values", {})},
                sequence_result=state.result or "", note=state.message,
            ))
        return reports


def basis_text(evaluation: dict[str, Any], metric: str) -> str:
    basis = evaluation.get("basis", {})
    values = evaluation.get("compared_values", {}).get(metric, [])
    ids = basis.get("compared_events", [])
    if not ids:
        return "no earlier evaluation to compare with"
    from pytest_keptn.report.terminal import basis_selection

    shown = ", ".join(f"{v:g}" for v in values) or "none"
    return (f"{basis.get('aggregate_function')} of {len(values)} value(s) [{shown}] from "
            f"{len(ids)} earlier evaluation(s) ({basis_selection(basis)})")


STATUS_KEY = pytest.StashKey[str]()


class _Outcome:
    def __init__(self) -> None:
        self.failed: list[str] = []
        self.warned: list[str] = []
        self.lines: list[str] = []


def decide(states: list[SequenceState], settings: Settings, pipeline: Pipeline) -> _Outcome:
    """The gates and tasks decide the session, not single objectives."""
    outcome = _Outcome()
    for state in states:
        label = f"{state.stage}.{state.sequence}"
        if state.status == "not-triggered":
            if pipeline.starts_run(state.stage, state.sequence):
                outcome.failed.append(f"{label} refused: {state.message}")
            continue
        if state.status != "finished":
            continue
        if state.result == "fail":
            outcome.failed.append(f"{label}: {state.message or 'failed'}")
        elif state.result == "warning" or (state.evaluation or {}).get("result") == "warning":
            outcome.warned.append(label)
            if settings.fail_on_warning:
                outcome.failed.append(f"{label}: warning (--keptn-fail-on-warning)")
    return outcome


class _Ordering:
    """Stages in shipyard order; in a stage: user tests, objectives, then sequences."""

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        keptn = config.stash.get(SESSION_KEY, None)
        if keptn is None:
            return
        order = {s.name: i for i, s in enumerate(keptn.shipyard.stages)}
        deselected: list[pytest.Item] = []
        kept: list[pytest.Item] = []
        for item in items:
            marker = item.get_closest_marker("keptn_stage")
            if marker is not None and marker.args and str(marker.args[0]) not in keptn.selected:
                deselected.append(item)
            else:
                kept.append(item)

        def key(pair: tuple[int, pytest.Item]) -> tuple[int, int, int, int]:
            index, item = pair
            marker = item.get_closest_marker("keptn_stage")
            if marker is None or not marker.args:
                return (0, 0, 0, index)
            kind = 1 if OBJECTIVE_KEY in item.stash else 2 if SEQUENCE_KEY in item.stash else 0
            return (1, order.get(str(marker.args[0]), 0), kind, index)

        kept = [item for _, item in sorted(enumerate(kept), key=key)]
        if deselected:
            config.hook.pytest_deselected(items=deselected)
        items[:] = kept


def _step(action: Any, *args: str) -> SequenceState:
    """Drive the pipeline for an item; a user-caused problem fails the item in one line."""
    from pytest_keptn.errors import KeptnError

    try:
        return action(*args)  # type: ignore[no-any-return]
    except KeptnError as exc:
        raise PipelineFailure(str(exc)) from None


def _objective_check(stage: str, index: int, objective: Objective) -> Any:
    def check(keptn_session: KeptnSession, request: pytest.FixtureRequest) -> None:
        from pytest_keptn.report.terminal import explain_objective

        state = _step(keptn_session.pipeline.prepare, stage)
        if state.evaluation is None:
            why = state.message or (state.failed_task.message if state.failed_task else "")
            if state.status == "not-triggered":
                pytest.skip(f"{stage}: {why}")
            pytest.skip(f"{stage}: not evaluated: {why or 'the sequence stopped before the evaluation'}")
        row = _find_row(state.evaluation, objective.sli, index, keptn_session, stage)
        item = request.node
        if row is None:
            raise GateFailure(
                f"{stage}: objective {objective.sli}: no result row (Keptn 0.8.7 drops objectives "
                "whose SLI has no value, but keeps their weight)"
            )
        status = str(row.get("status"))
        item.stash[STATUS_KEY] = status
        value = row.get("value", {})
        props = [
            ("keptn_stage", stage), ("keptn_sli", objective.sli),
            ("keptn_value", value.get("value")), ("keptn_success", value.get("success")),
            ("keptn_status", status), ("keptn_score", row.get("score")),
            ("keptn_weight", objective.weight), ("keptn_key_sli", objective.key_sli),
            ("keptn_pass_targets", json.dumps(row.get("passTargets"))),
            ("keptn_warning_targets", json.dumps(row.get("warningTargets"))),
            ("keptn_query", state.evaluation.get("queries", {}).get(objective.sli, "")),
        ]
        item.user_properties.extend(props)
        if status == "fail":
            raise GateFailure(explain_objective(stage, objective, row, state.evaluation))

    return check


def _find_row(evaluation: dict[str, Any], sli: str, index: int, keptn: KeptnSession,
              stage: str) -> dict[str, Any] | None:
    """The result row of the stage's ``index``-th objective (an SLI may appear twice)."""
    rows, occurrences = keptn.rows_of(stage, evaluation)
    mine = rows.get(sli, [])
    occurrence = occurrences[index]
    return mine[occurrence] if occurrence < len(mine) else None


def _sequence_check(stage: str, sequence: str) -> Any:
    def check(keptn_session: KeptnSession) -> None:
        from pytest_keptn.report.terminal import explain_sequence

        pipeline = keptn_session.pipeline
        state = _step(pipeline.finish, stage, sequence)
        if state.status == "not-triggered":
            if pipeline.starts_run(stage, sequence):
                raise GateFailure(f"{stage}.{sequence} refused: {state.message}")
            pytest.skip(f"{stage}.{sequence}: {state.message}")
        if state.result == "fail":
            raise GateFailure(explain_sequence(state))

    return check


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def keptn_session(request: pytest.FixtureRequest) -> KeptnSession:
    """The pytest-keptn session (skips the test when no stage is selected)."""
    session = request.config.stash.get(SESSION_KEY, None)
    if session is None:
        pytest.skip("pytest-keptn is off: no --keptn-stage given")
    return session


def _stage_of(request: pytest.FixtureRequest, keptn: KeptnSession) -> str:
    marker = request.node.get_closest_marker("keptn_stage")
    return str(marker.args[0]) if marker is not None and marker.args else keptn.selected[0]


@pytest.fixture
def keptn_stage_context(request: pytest.FixtureRequest, keptn_session: KeptnSession) -> Any:
    """The :class:`pytest_keptn.model.StageContext` of the test's stage."""
    return keptn_session.pipeline.context(_stage_of(request, keptn_session))


@pytest.fixture
def keptn_service_url(request: pytest.FixtureRequest, keptn_session: KeptnSession) -> str:
    """The URL of the build under test in the test's stage (the canary for blue/green)."""
    stage = _stage_of(request, keptn_session)
    try:
        state = _step(keptn_session.pipeline.deploy, stage)
    except GateFailure as exc:
        pytest.fail(str(exc), pytrace=False)
    if state.status == "not-triggered":
        pytest.skip(f"{stage}: {state.message}")
    if state.failed_task is not None:
        pytest.fail(f"{stage}: {state.failed_task.name} task failed: {state.failed_task.message}",
                    pytrace=False)
    url = keptn_session.pipeline.service_url(state)
    if url is None:
        pytest.skip(f"{stage}: nothing deployed (deployer {keptn_session.settings.deployer})")
    return url


@pytest.fixture(scope="session")
def keptn_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real Prometheus (Debian's ``prometheus`` binary) on a free 127.0.0.1 port for the
    session: ``.url``, ``.register(job, "host:port", labels)``, ``.wait_targets_up()``.
    Stopped, with its folder removed, at the end of the session."""
    from pytest_keptn.prometheus.server import EmbeddedPrometheus

    server = EmbeddedPrometheus(tmp_path_factory.mktemp("keptn-prometheus")).start()
    try:
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------- optional plugins


class _HtmlReport:
    """pytest-html integration, registered only when pytest-html is active."""

    def __init__(self, keptn: KeptnSession) -> None:
        self.keptn = keptn

    def pytest_html_report_title(self, report: Any) -> None:
        report.title = f"Keptn quality report: {self.keptn.project}"

    def pytest_html_results_summary(self, prefix: list[str], summary: list[str],
                                    postfix: list[str], session: pytest.Session) -> None:
        from pytest_keptn.report.html import render_html

        reports = self.keptn._reports
        if reports is None:
            reports = self.keptn.stage_reports(self.keptn.states())
        if reports:
            prefix.append(render_html(reports))


PROGRESS_FILE = "progress.log"
_OWNER_FILE = "owner"


def _new_rundir() -> Path:
    """A run folder in $TMPDIR that says which process owns it. The folders of sessions that
    were killed (SIGKILL leaves them behind) are removed on the way."""
    import shutil

    from pytest_keptn.deploy import procs

    for stale in Path(tempfile.gettempdir()).glob("keptn-run-*"):
        try:
            pid, ticks = (int(x) for x in (stale / _OWNER_FILE).read_text().split())
        except (OSError, ValueError):
            continue  # not ours to judge (no owner file: an older version, or being created)
        if not procs.alive(pid, ticks):
            shutil.rmtree(stale, ignore_errors=True)
    rundir = Path(tempfile.mkdtemp(prefix="keptn-run-"))
    (rundir / _OWNER_FILE).write_text(f"{os.getpid()} {procs.process_start_ticks(os.getpid())}")
    return rundir


class _XdistController:
    """Hands the run folder to xdist workers so a stage runs once for all of them, and relays
    their progress lines (deployment, load, evaluation) to the terminal as they come."""

    def __init__(self, keptn: KeptnSession) -> None:
        self.keptn = keptn
        self._relaying = threading.Event()
        self._relay: threading.Thread | None = None
        self._offset = 0

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if not self.keptn._is_xdist_controller():
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
            prometheus = self.keptn._embedded(quiet=True)
        except Exception:
            prometheus = None  # each worker then starts its own and reports what goes wrong
        if prometheus is not None:
            node.workerinput["keptn_prometheus_url"] = prometheus.url
            node.workerinput["keptn_prometheus_sd"] = str(prometheus.sd_dir)
