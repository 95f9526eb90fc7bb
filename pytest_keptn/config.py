"""Every setting declared once: each ``Settings`` field is a ``--keptn-*`` option and a typed
``keptn_*`` ini key of the same name (help, type and default come from the field), resolved
once (command line > ini/pyproject > default) into the frozen ``Settings``."""

from __future__ import annotations

from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any

import pytest

from pytest_keptn.model import COMPAT_087

DEPLOYERS = ("local", "helm", "none")
TRUE = ("1", "true", "yes", "on", "y", "t")
FALSE = ("0", "false", "no", "off", "n", "f")
PATH_SETTINGS = ("root", "history", "events", "state_dir", "prometheus_ca_bundle",
                 "prometheus_file_sd")  # relative to where they were given


def setting(help: str, default: Any = None, *, choices: tuple[str, ...] | None = None,
            metavar: str | None = None, secret: bool = False, const: str | None = None) -> Any:
    """One setting: its help text, default, choices and ``--help``'s name for the value.
    ``secret``: kept out of ``repr``; ``const``: the value of the bare option (``--keptn-x``
    without ``=VALUE``)."""
    return field(default=default, repr=not secret,
                 metadata={"help": help, "choices": choices, "metavar": metavar, "const": const})


@dataclass(frozen=True)
class Settings:
    stage: str | None = setting(
        "stage(s) to run: a shipyard stage, a comma-separated list, or 'all' (unset: the plugin is off)", metavar='STAGE')
    sequence: str = setting(
        "the sequence a run starts in its first stage (Keptn's 'keptn trigger <sequence>')", default='delivery', metavar='NAME')
    root: str | None = setting(
        'folder with shipyard.yaml (default: rootdir, else rootdir/keptn)', metavar='PATH')
    project: str | None = setting(
        'Keptn project name (default: shipyard metadata.name)', metavar='NAME')
    service: str | None = setting(
        'service name (default: the only service folder of the stage)', metavar='NAME')
    image: str = setting('image of the build to deliver', default='', metavar='IMAGE')
    tag: str = setting('tag of the build to deliver', default='', metavar='TAG')
    deployer: str = setting(
        'local (processes on 127.0.0.1), helm, or none (no deployment, load or release)', default='local', choices=DEPLOYERS)
    prometheus_url: str | None = setting(
        'external Prometheus base URL (unset: start an embedded Prometheus)', metavar='URL', secret=True)
    prometheus_file_sd: str | None = setting(
        "with an external Prometheus/VictoriaMetrics and the local deployer: write the scrape "
        "targets to this file_sd JSON file, which your backend reads", metavar="PATH")
    prometheus_headers: str | None = setting(
        "extra HTTP headers for Prometheus, 'Name: value; Name2: value2'", metavar='HEADERS', secret=True)
    prometheus_token_env: str | None = setting(
        'environment variable holding a bearer token for Prometheus', metavar='VAR')
    prometheus_user_env: str | None = setting(
        'environment variable holding the basic-auth user for Prometheus', metavar='VAR')
    prometheus_password_env: str | None = setting(
        'environment variable holding the basic-auth password', metavar='VAR')
    prometheus_ca_bundle: str | None = setting(
        "PEM file of CA certificates to trust for an https:// Prometheus (certificates are verified; default: the system's CAs)", metavar='PATH')
    prometheus_insecure_skip_verify: bool = setting(
        "do not verify the TLS certificate of an https:// Prometheus (Keptn 0.8.7's provider never did)", default=False)
    prometheus_binary: str = setting(
        'prometheus executable for the embedded server', default='prometheus', metavar='PATH')
    prometheus_keep: str = setting(
        "keep the embedded Prometheus running this long after the session (idle time, e.g. "
        "10m) so that the next session with the same state folder, binary and scrape interval "
        "reuses it, with no start and no discovery wait; it stops itself after the idle time or "
        "on 'python -m pytest_keptn stop' (0: stops with the session)",
        default="0", metavar="DURATION")
    scrape_interval: float = setting('embedded Prometheus scrape interval in seconds', default=1.0)
    query_timeout: float = setting('seconds per Prometheus query', default=10.0)
    freshness_timeout: float = setting(
        "seconds to wait for samples at the window's end", default=15.0)
    history: str | None = setting(
        'evaluation history: a SQLite file or a postgresql:// URL (default: <state-dir>/history.sqlite)', metavar='PATH|URL')
    history_lock_timeout: float = setting(
        'seconds to wait for a history file another writer holds locked', default=60.0)
    baseline: str | None = setting(
        "pin relative criteria to these earlier evaluations (ids, comma-separated, from 'python -m pytest_keptn history list'), instead of the slo.yaml comparison", metavar='IDS')
    events: str | None = setting(
        'folder for Keptn evaluation.finished events (one JSON file each)', metavar='PATH')
    state_dir: str | None = setting(
        'deployer state, logs and the history (default: <root>/.keptn)', metavar='PATH')
    timeframe: str | None = setting(
        'evaluate the last DURATION (Go duration, e.g. 5m) of a running service', metavar='DURATION')
    start: str | None = setting(
        'evaluation window start (2006-01-02T15:04:05.000Z)', metavar='TIME')
    end: str | None = setting('evaluation window end (2006-01-02T15:04:05.000Z)', metavar='TIME')
    fail_on_warning: bool = setting('a warning gate fails the session', default=False)
    approve: str | None = setting(
        'answer the manual approval this build waits for in the stage (approve, the bare '
        'option, or reject) and continue the sequence where it waited',
        choices=("approve", "reject"), const="approve")
    approver: str | None = setting(
        'who answers with --keptn-approve, for the history and the event (default: '
        '$GITHUB_ACTOR, $GITLAB_USER_LOGIN, else the user)', metavar='NAME')
    live_baseline: bool = setting(
        'judge relative criteria against a live baseline beside the canary even where slo.yaml '
        'does not opt in (comparison.baseline: live); what calibrate runs', default=False)
    compat: str | None = setting(
        "reproduce Keptn 0.8.7 exactly, quirks included ('0.8.7')", choices=(COMPAT_087,))
    local_command: str | None = setting(
        'command template for the local deployer; placeholders: {image} {tag} {port} {stage} {service} {project} {python} (this interpreter)', metavar='COMMAND')
    health_path: str = setting(
        'HTTP path that answers when a local build is ready', default='/health', metavar='PATH')
    deploy_timeout: float = setting('seconds a build may take to become ready', default=30.0)
    stage_lock_timeout: float = setting(
        'seconds to wait while another live run delivers the same stage/service in this state folder (0: refuse at once)', default=600.0)
    keep_primaries: bool = setting(
        'leave the primaries serving after pytest exits, for later stages and jobs (stop them: python -m pytest_keptn stop)', default=True)
    helm_chart: str | None = setting(
        'chart folder for the helm deployer (default: <root>/../helm-charts/<service>)', metavar='PATH')
    helm_url_template: str = setting(
        'service URL for helm ({service} {namespace} {release})', default='http://{release}.{namespace}.svc.cluster.local', metavar='URL')
    helm_timeout: str = setting('helm --timeout', default='5m', metavar='DURATION')
    locust_users: int | None = setting(
        "Locust users; overrides the test task's properties and locust.conf (default: 10)")
    locust_spawn_rate: float | None = setting(
        "Locust users started per second; overrides the test task's properties and locust.conf (default: 10)", metavar='RATE')
    locust_run_time: str | None = setting(
        "Locust run time, e.g. 10s or 1m30s; overrides the test task's properties and locust.conf (default: 10s)", metavar='DURATION')
    locust_workers: int = setting(
        'local Locust worker processes under a master (0: one process)', default=0)
    locust_master_bind: str | None = setting(
        'run Locust as a master bound to HOST:PORT for remote workers', metavar='HOST:PORT')
    locust_expect_workers: int = setting('remote workers the master waits for', default=1)
    locust_hang_timeout: float = setting(
        'seconds Locust may spend importing the locustfile, setting up or stopping its users (on_stop) before the load fails naming the phase', default=30.0)

    @property
    def enabled(self) -> bool:
        return bool(self.stage)

    @property
    def evaluation_only(self) -> bool:
        """A timeframe was given: only the evaluation runs (Keptn's quality-gates-only use)."""
        return bool(self.timeframe or self.start or self.end)

    @property
    def compat_087(self) -> bool:
        """``--keptn-compat=0.8.7``: reproduce Keptn 0.8.7 exactly, quirks included."""
        return self.compat == COMPAT_087

    @property
    def baseline_ids(self) -> tuple[str, ...]:
        return tuple(i.strip() for i in (self.baseline or "").split(",") if i.strip())

    def state_path(self, root: Path) -> Path:
        return Path(self.state_dir) if self.state_dir else root / ".keptn"


@dataclass(frozen=True)
class Option:
    """A setting as pytest sees it: ``--keptn-<name>`` and the ini key ``keptn_<name>``."""

    name: str  # without the --keptn- prefix, e.g. "fail-on-warning"
    help: str
    kind: str = "string"  # string | bool | int | float
    default: Any = None
    choices: tuple[str, ...] | None = None
    metavar: str | None = None  # --help's name for the value; default: by kind
    const: str | None = None  # the value of the bare option (--keptn-approve)

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

    @property
    def field(self) -> str:
        return self.name.replace("-", "_")


def dest(option: Option) -> str:
    return "keptn_" + option.field


def _kind(declared: Field[Any]) -> str:
    annotation = str(declared.type)  # "bool", "int | None", "float", "str | None"
    for kind in ("bool", "int", "float"):
        if annotation.split(" ")[0] == kind:
            return kind
    return "string"


OPTIONS: tuple[Option, ...] = tuple(
    Option(f.name.replace("_", "-"), f.metadata["help"], _kind(f), f.default,
           f.metadata["choices"], f.metadata["metavar"], f.metadata["const"])
    for f in fields(Settings)
)


def add_options(parser: pytest.Parser) -> None:
    """The options (one group) and the typed ini keys, from ``OPTIONS``."""
    group = parser.getgroup("keptn", "Keptn quality gates (pytest-keptn)")
    for option in OPTIONS:
        kwargs: dict[str, Any] = {"dest": dest(option), "default": None, "help": option.help_text}
        if option.kind == "bool":
            kwargs.update(nargs="?", const="true", metavar=option.value_name)
        elif option.const is not None:
            kwargs.update(nargs="?", const=option.const, choices=option.choices)
        elif option.choices:
            kwargs.update(choices=option.choices)
        else:
            kwargs.update(metavar=option.value_name)
        group.addoption(f"--keptn-{option.name}", **kwargs)
        _add_ini(parser, option)


def _add_ini(parser: pytest.Parser, option: Option) -> None:
    # Typed keys let pytest 9's native [tool.pytest] table take `keptn_locust_users = 5`.
    # pytest < 8.4 knows no int/float ini type: those keys are then read as strings.
    kind = None if option.kind == "string" else option.kind
    try:
        parser.addini(dest(option), option.help_text, type=kind, default=None)  # type: ignore[arg-type]
    except (AssertionError, ValueError, TypeError):
        parser.addini(dest(option), option.help_text, default=None)


def _convert(option: Option, raw: Any, where: str) -> Any:
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = raw.strip()
        if raw == "":
            return None
    if option.kind == "bool":
        if isinstance(raw, bool):
            return raw
        text = str(raw).lower()
        if text in TRUE or text in FALSE:
            return text in TRUE
        raise pytest.UsageError(
            f"pytest-keptn: {where}: expected true or false, got {raw!r}")
    if option.kind in ("int", "float"):
        number = int if option.kind == "int" else float
        try:
            if isinstance(raw, bool):
                raise ValueError(raw)
            return number(raw)
        except (TypeError, ValueError):
            raise pytest.UsageError(
                f"pytest-keptn: {where}: expected a{'n' if option.kind == 'int' else ''} "
                f"{option.kind}, got {raw!r}") from None
    if option.choices and raw not in option.choices:
        raise pytest.UsageError(
            f"pytest-keptn: {where}: {raw!r} is not one of {', '.join(option.choices)}")
    return raw


def resolve_settings(config: pytest.Config) -> Settings:
    """CLI > ini/pyproject > default. Relative paths: CLI from the invocation folder, ini
    values from the folder of the ini file."""
    values: dict[str, Any] = {}
    ini_base = config.inipath.parent if config.inipath else config.rootpath
    for option in OPTIONS:
        key = dest(option)
        value = _convert(option, config.getoption(key), f"--keptn-{option.name}")
        base = config.invocation_params.dir
        if value is None:
            value = _convert(option, config.getini(key), key)
            base = ini_base
        if value is None:
            value = option.default
        elif option.field in PATH_SETTINGS and "://" not in str(value):  # a postgresql:// history
            value = str((Path(base) / value).resolve())
        values[option.field] = value
    return Settings(**values)
