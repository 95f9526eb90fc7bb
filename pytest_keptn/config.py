"""Settings, resolved once (command line > ini/pyproject > default) into a frozen dataclass."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import pytest

DEPLOYERS = ("local", "helm", "none")
COMPAT = ("0.8.7",)


@dataclass(frozen=True)
class Option:
    name: str  # without the --keptn- prefix, e.g. "stage"
    help: str
    kind: str = "string"  # string | bool | int | float
    default: Any = None
    choices: tuple[str, ...] | None = None
    metavar: str | None = None  # --help's name for the value; default: by kind

    @property
    def value_name(self) -> str:
        if self.metavar:
            return self.metavar
        return {"bool": "BOOL", "int": "N", "float": "SECONDS"}.get(self.kind, "TEXT")

    @property
    def help_text(self) -> str:
        """The help with the default spelled as it is typed (``true``, ``10.0``), unless the help
        says it already (a default that depends on other settings)."""
        if self.default is None or self.default == "" or "default:" in self.help:
            return self.help
        shown = str(self.default).lower() if self.kind == "bool" else str(self.default)
        return f"{self.help} (default: {shown})"


OPTIONS: tuple[Option, ...] = (
    Option("stage", "stage(s) to run: a shipyard stage, a comma-separated list, or 'all' "
           "(unset: the plugin is off)", metavar="STAGE"),
    Option("sequence", "the sequence a run starts in its first stage (Keptn's 'keptn trigger <sequence>')",
           default="delivery", metavar="NAME"),
    Option("root", "folder with shipyard.yaml (default: rootdir, else rootdir/keptn)", metavar="PATH"),
    Option("project", "Keptn project name (default: shipyard metadata.name)", metavar="NAME"),
    Option("service", "service name (default: the only service folder of the stage)", metavar="NAME"),
    Option("image", "image of the build to deliver", default="", metavar="IMAGE"),
    Option("tag", "tag of the build to deliver", default="", metavar="TAG"),
    Option("deployer", "local (processes on 127.0.0.1), helm, or none (no deployment, load "
           "or release)", default="local", choices=DEPLOYERS),
    Option("prometheus-url", "external Prometheus base URL (unset: start an embedded Prometheus)", metavar="URL"),
    Option("prometheus-file-sd", "with an external Prometheus/VictoriaMetrics and the local deployer: "
           "write the scrape targets to this file_sd JSON file, which your backend reads", metavar="PATH"),
    Option("prometheus-headers", "extra HTTP headers for Prometheus, 'Name: value; Name2: value2'", metavar="HEADERS"),
    Option("prometheus-token-env", "environment variable holding a bearer token for Prometheus", metavar="VAR"),
    Option("prometheus-user-env", "environment variable holding the basic-auth user for Prometheus", metavar="VAR"),
    Option("prometheus-password-env", "environment variable holding the basic-auth password", metavar="VAR"),
    Option("prometheus-ca-bundle", "PEM file of CA certificates to trust for an https:// Prometheus "
           "(certificates are verified; default: the system's CAs)", metavar="PATH"),
    Option("prometheus-insecure-skip-verify", "do not verify the TLS certificate of an https:// "
           "Prometheus (Keptn 0.8.7's provider never did)", kind="bool", default=False),
    Option("prometheus-binary", "prometheus executable for the embedded server", default="prometheus", metavar="PATH"),
    Option("scrape-interval", "embedded Prometheus scrape interval in seconds", kind="float", default=1.0),
    Option("query-timeout", "seconds per Prometheus query", kind="float", default=10.0),
    Option("freshness-timeout", "seconds to wait for samples at the window's end", kind="float", default=15.0),
    Option("history", "evaluation history: a SQLite file or a postgresql:// URL "
           "(default: <state-dir>/history.sqlite)", metavar="PATH|URL"),
    Option("history-lock-timeout", "seconds to wait for a history file another writer holds locked",
           kind="float", default=60.0),
    Option("baseline", "pin relative criteria to these earlier evaluations (ids, comma-separated, "
           "from 'python -m pytest_keptn history list'), instead of the slo.yaml comparison", metavar="IDS"),
    Option("events", "folder for Keptn evaluation.finished events (one JSON file each)", metavar="PATH"),
    Option("state-dir", "deployer state, logs and the history (default: <root>/.keptn)",
           metavar="PATH"),
    Option("timeframe", "evaluate the last DURATION (Go duration, e.g. 5m) of a running service", metavar="DURATION"),
    Option("start", "evaluation window start (2006-01-02T15:04:05.000Z)", metavar="TIME"),
    Option("end", "evaluation window end (2006-01-02T15:04:05.000Z)", metavar="TIME"),
    Option("fail-on-warning", "a warning gate fails the session", kind="bool", default=False),
    Option("compat", "reproduce Keptn 0.8.7 exactly, quirks included ('0.8.7')", choices=COMPAT),
    Option("local-command", "command template for the local deployer; placeholders: {image} "
           "{tag} {port} {stage} {service} {project} {python} (this interpreter)",
           metavar="COMMAND"),
    Option("health-path", "HTTP path that answers when a local build is ready", default="/health", metavar="PATH"),
    Option("deploy-timeout", "seconds a build may take to become ready", kind="float", default=30.0),
    Option("stage-lock-timeout", "seconds to wait while another live run delivers the same "
           "stage/service in this state folder (0: refuse at once)", kind="float", default=600.0),
    Option("keep-primaries", "leave the primaries serving after pytest exits, for later stages and "
           "jobs (stop them: python -m pytest_keptn stop)", kind="bool", default=True),
    Option("helm-chart", "chart folder for the helm deployer (default: <root>/../helm-charts/<service>)", metavar="PATH"),
    Option("helm-url-template", "service URL for helm ({service} {namespace} {release})",
           default="http://{release}.{namespace}.svc.cluster.local", metavar="URL"),
    Option("helm-timeout", "helm --timeout", default="5m", metavar="DURATION"),
    Option("locust-users", "Locust users; overrides the test task's properties and "
           "locust.conf (default: 10)", kind="int"),
    Option("locust-spawn-rate", "Locust users started per second; overrides the test task's "
           "properties and locust.conf (default: 10)", kind="float", metavar="RATE"),
    Option("locust-run-time", "Locust run time, e.g. 10s or 1m30s; overrides the test task's "
           "properties and locust.conf (default: 10s)", metavar="DURATION"),
    Option("locust-workers", "local Locust worker processes under a master (0: one process)", kind="int", default=0),
    Option("locust-master-bind", "run Locust as a master bound to HOST:PORT for remote workers", metavar="HOST:PORT"),
    Option("locust-expect-workers", "remote workers the master waits for", kind="int", default=1),
    Option("locust-hang-timeout", "seconds Locust may spend importing the locustfile, setting "
           "up or stopping its users (on_stop) before the load fails naming the phase",
           kind="float", default=30.0),
)


def dest(option: Option) -> str:
    return "keptn_" + option.name.replace("-", "_")


@dataclass(frozen=True)
class Settings:
    stage: str | None = None
    sequence: str = "delivery"
    root: str | None = None
    project: str | None = None
    service: str | None = None
    image: str = ""
    tag: str = ""
    deployer: str = "local"
    prometheus_url: str | None = field(default=None, repr=False)  # may hold user:password@
    prometheus_file_sd: str | None = None
    prometheus_headers: str | None = field(default=None, repr=False)  # may hold tokens
    prometheus_token_env: str | None = None
    prometheus_user_env: str | None = None
    prometheus_password_env: str | None = None
    prometheus_ca_bundle: str | None = None
    prometheus_insecure_skip_verify: bool = False
    prometheus_binary: str = "prometheus"
    scrape_interval: float = 1.0
    query_timeout: float = 10.0
    freshness_timeout: float = 15.0
    history: str | None = None
    history_lock_timeout: float = 60.0
    baseline: str | None = None
    events: str | None = None
    state_dir: str | None = None
    timeframe: str | None = None
    start: str | None = None
    end: str | None = None
    fail_on_warning: bool = False
    compat: str | None = None
    local_command: str | None = None
    health_path: str = "/health"
    deploy_timeout: float = 30.0
    stage_lock_timeout: float = 600.0
    keep_primaries: bool = True
    helm_chart: str | None = None
    helm_url_template: str = "http://{release}.{namespace}.svc.cluster.local"
    helm_timeout: str = "5m"
    locust_users: int | None = None
    locust_spawn_rate: float | None = None
    locust_run_time: str | None = None
    locust_workers: int = 0
    locust_master_bind: str | None = None
    locust_expect_workers: int = 1
    locust_hang_timeout: float = 30.0

    @property
    def enabled(self) -> bool:
        return bool(self.stage)

    @property
    def evaluation_only(self) -> bool:
        """A timeframe was given: only the evaluation runs (Keptn's quality-gates-only use)."""
        return bool(self.timeframe or self.start or self.end)

    @property
    def baseline_ids(self) -> tuple[str, ...]:
        return tuple(i.strip() for i in (self.baseline or "").split(",") if i.strip())

    def state_path(self, root: Path) -> Path:
        return Path(self.state_dir) if self.state_dir else root / ".keptn"


_SETTINGS_FIELDS = {f.name for f in fields(Settings)}
assert all(dest(o)[len("keptn_"):] in _SETTINGS_FIELDS for o in OPTIONS)


PATH_OPTIONS = ("root", "history", "events", "state_dir", "prometheus_ca_bundle",
                "prometheus_file_sd")


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
