"""Runtime values that travel between the plugin, the sequence and the hook implementations.

Pure data: frozen dataclasses, no I/O. The spec layer (``pytest_keptn.spec``) holds what the
Keptn files say; this module holds what happens when a stage runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_keptn.system.processes import ProcessRegistry

# --keptn-compat=0.8.7: reproduce Keptn 0.8.7 exactly, quirks included
COMPAT_087 = "0.8.7"


@dataclass(frozen=True)
class Window:
    """The evaluation time window, both ends timezone-aware UTC."""

    start: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    @property
    def duration_placeholder(self) -> str:
        """Keptn's ``$DURATION_SECONDS``: the window's ceil seconds plus ``s``."""
        return f"{math.ceil(self.seconds)}s"

    @staticmethod
    def keptn_time(moment: datetime) -> str:
        """Keptn's timestamp layout ``2006-01-02T15:04:05.000Z``."""
        moment = moment.astimezone(UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class SLIStatus(StrEnum):
    """What retrieving one indicator produced. Only ``VALUE`` carries a usable number."""

    VALUE = "value"
    NO_DATA = "no_data"  # an empty vector
    INVALID = "invalid"  # NaN, infinite or unparsable sample
    MULTIPLE = "multiple"  # several series where one was expected
    QUERY_ERROR = "query_error"  # HTTP 4xx, Prometheus errorType/error: the query is wrong
    SERVER_ERROR = "server_error"  # HTTP 5xx after the retries: Prometheus is not well
    TIMEOUT = "timeout"
    UNREACHABLE = "unreachable"  # connection refused, DNS, TLS
    UNAUTHORIZED = "unauthorized"  # HTTP 401/403: the credentials were refused
    UNKNOWN = "unknown"  # the provider does not know the indicator
    MISSING = "missing"  # no provider answered for it

    @property
    def outage(self) -> bool:
        """The SLI source could not answer at all (Keptn 0.8.7's lighthouse makes such an
        evaluation ``errored``): nothing was measured, so it is no verdict on the build."""
        return self in _OUTAGES


_OUTAGES = frozenset(
    {SLIStatus.SERVER_ERROR, SLIStatus.TIMEOUT, SLIStatus.UNREACHABLE, SLIStatus.UNAUTHORIZED})


@dataclass(frozen=True)
class SLIResult:
    """One indicator's value as an SLI provider delivers it (Keptn's ``{metric, value, success, message}``)."""

    metric: str
    value: float = 0.0
    success: bool = True
    message: str = ""
    status: SLIStatus = SLIStatus.VALUE
    query: str = ""  # the rendered query that was sent (never credentials)
    warnings: tuple[str, ...] = ()

    def to_keptn(self) -> dict[str, Any]:
        out: dict[str, Any] = {"metric": self.metric, "value": self.value, "success": self.success}
        if self.message:
            out["message"] = self.message
        return out


@dataclass(frozen=True)
class Instance:
    """One running build of a service: a canary, a primary or a direct deployment."""

    role: str  # "canary" | "primary" | "direct"
    url: str  # base URL that serves traffic, e.g. http://127.0.0.1:40123
    image: str
    tag: str
    pid: int | None = None
    log: Path | None = None


@dataclass(frozen=True)
class Deployment:
    """What a deployer reports after the deployment task (Keptn's deployment.finished)."""

    strategy: str  # "blue_green_service" | "direct" | "user_managed"
    url: str  # where the stage's test traffic goes (the canary for blue/green)
    deployment_names: tuple[str, ...] = ("canary",)  # Keptn's deploymentNames
    instances: tuple[Instance, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LoadResult:
    """What a load driver reports after the test task."""

    window: Window
    requests: int = 0
    failures: int = 0
    rps: float = 0.0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    details: Mapping[str, Any] = field(default_factory=dict)


class TargetRegistry:
    """Where deployers register scrape targets (Keptn's job names) for the SLI provider.

    The embedded Prometheus implements it with file-based service discovery, and so does
    ``prometheus.file_sd.FileSDTargets`` for a Prometheus of the user's own; the default does
    nothing. Labels starting with ``__meta_`` are discovery metadata that Prometheus drops after
    relabelling (the local deployer names the process serving a target in them).
    """

    def register(self, job: str, address: str, labels: Mapping[str, str] | None = None) -> None:
        """Scrape ``address`` (``host:port``) under job name ``job``."""

    def unregister(self, job: str) -> None:
        """Stop scraping every target of ``job``."""

    def confirm(self, timeout: float) -> str:
        """Called at the end of the deployment task: wait (at most ``timeout`` seconds) until
        the backend scrapes what was registered; a note for the progress line, or a
        ``KeptnError`` that fails the deployment. The default confirms nothing (the embedded
        Prometheus is waited for when the load starts, overlapping Locust's start-up)."""
        return ""

    def replace(self, job: str, address: str, labels: Mapping[str, str] | None = None) -> None:
        """Make ``address`` the only target of ``job`` (a registry that outlives a session, a
        kept Prometheus, may still list an earlier build there)."""
        self.unregister(job)
        self.register(job, address, labels)

    def slot(self, job: str, labels: Mapping[str, str] | None = None) -> int | None:
        """A free 127.0.0.1 port already scraped under ``job`` (a :class:`TargetSlot` given
        when the registry started), claimed for the caller's build: registered there, the
        build is scraped on the next scrape interval after it listens, with no discovery wait.
        None (the default): pick any port and register it."""
        return None

    def hide_unserved(self, jobs: Sequence[str] = ()) -> str:
        """Called before the SLI queries: make invisible to them the samples Prometheus took
        of a target while it did not serve that job (it applies a file_sd change only on its
        5 s discovery tick, so a released canary is still scraped as the canary for up to 5 s,
        and an empty target slot is scraped with ``up`` 0); for ``jobs`` (the queries' jobs)
        waiting until that is possible. A note when it failed (the queries may then read
        those samples), else ''. The default hides nothing."""
        return ""

    def wait_scraped(self, addresses: Sequence[str], timeout: float) -> None:
        """Wait (at most ``timeout`` seconds) until the targets at ``addresses`` (``host:port``)
        are scraped up, or (a registry that can tell) discovered with their next scrape due
        in the window; the load window starts then. The default waits for every registered
        target when the registry can (``wait_targets_up``)."""
        wait = getattr(self, "wait_targets_up", None)
        if callable(wait):
            wait(None, timeout=timeout)

    def check_scraped(self, addresses: Sequence[str]) -> None:
        """After the load window: a ``KeptnError`` unless the targets at ``addresses`` are
        scraped up (:meth:`wait_scraped` may have let the window start before their first
        scrape). The default checks nothing (its wait_scraped waited for that)."""


@dataclass(frozen=True)
class TargetSlot:
    """A scrape target a deployer will need, registered before it is deployed
    (``pytest_keptn_target_slots``): the jobs it will be scraped under (the first owns the
    slot) and its labels; ``address`` for a build that already runs (a live primary), else
    the registry picks a free port that :meth:`TargetRegistry.slot` hands out."""

    jobs: tuple[str, ...]
    labels: Mapping[str, str] = field(default_factory=dict)
    address: str | None = None


@dataclass(frozen=True)
class StageContext:
    """Everything a task of one stage needs to know. Given to every ``pytest_keptn_*`` hook."""

    project: str
    service: str
    stage: str
    image: str
    tag: str
    root: Path  # the folder with shipyard.yaml (Keptn's project repository)
    workdir: Path  # state and logs of this project (survives between pytest runs)
    # repr=False: settings and the URL may hold credentials (headers, user:password@)
    settings: Any = field(repr=False)  # pytest_keptn.config.Settings (Any keeps model light)
    sli_indicators: Mapping[str, str] = field(default_factory=dict)  # merged sli.yaml
    slo_filter: Mapping[str, str] = field(default_factory=dict)
    task_properties: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    prometheus_url: str | None = field(default=None, repr=False)
    targets: TargetRegistry = field(default_factory=TargetRegistry)
    progress: Any = None  # Callable[[str], None] printing one line of task progress
    # the processes the session started (deployers and load drivers track theirs here)
    processes: ProcessRegistry = field(default_factory=lambda: _registry(), repr=False)

    def resource(self, uri: str) -> Path | None:
        """Resolve a Keptn resourceUri: service level, then stage level, then project level."""
        for base in (self.root / self.stage / self.service, self.root / self.stage, self.root):
            candidate = base / uri
            if candidate.is_file():
                return candidate
        return None

    def say(self, line: str) -> None:
        if self.progress is not None:
            self.progress(line)

    @property
    def job(self) -> str:
        """Keptn's scrape job name for what receives the stage's traffic."""
        return f"{self.service}-{self.project}-{self.stage}"


def _registry() -> ProcessRegistry:
    from pytest_keptn.system.processes import default_registry  # only where a context is made

    return default_registry()
