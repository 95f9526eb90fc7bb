"""The local deployer's scrape targets in one file_sd file, for a Prometheus or VictoriaMetrics
of your own (``--keptn-prometheus-file-sd=PATH`` with ``--keptn-prometheus-url``).

The file is Prometheus' ``file_sd`` format, a JSON list of target groups, one group per Keptn
job name (``<service>-<project>-<stage>[-canary|-primary]``)::

    [{"targets": ["127.0.0.1:40123"],
      "labels": {"job": "helloservice-pod-tato-head-hardening-canary", "keptn_stage": "hardening",
                 ..., "__meta_keptn_pid": "4242", "__meta_keptn_since": "1796011641.505"}}]

The ``job`` label overrides the scrape config's ``job_name`` (in Prometheus and VictoriaMetrics
alike), so ONE ``file_sd_configs`` scrape job discovers every Keptn job. ``__meta_*`` labels are
discovery metadata that both drop after relabelling: ``__meta_keptn_pid`` and
``__meta_keptn_start_ticks`` name the process serving the target, the group's owner;
``__meta_keptn_since`` is when it was registered.

Several writers share the file (pytest runs of other stages or projects, xdist workers,
``python -m pytest_keptn stop``): each takes an exclusive lock on ``PATH.lock``, reads the file,
changes only the jobs it registers or unregisters, drops the groups whose owner has exited,
and replaces the file atomically (a temp file in the same folder that no ``*.json`` glob
matches, renamed over it; the file keeps its mode, 0644 when new, so a backend running as
another user can read it). A job's latest registration wins: the stage's traffic job follows
the canary, then the primary, as Keptn's does.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_keptn.errors import ConfigError, DeployError, KeptnError, ProviderError
from pytest_keptn.model import TargetRegistry
from pytest_keptn.system import processes as procs
from pytest_keptn.system.files import write_json

if TYPE_CHECKING:  # httpx costs ~0.1 s to import: not before a session's first stage
    from pytest_keptn.prometheus.client import PrometheusClient

OWNER, START_TICKS, SINCE = "__meta_keptn_pid", "__meta_keptn_start_ticks", "__meta_keptn_since"
RECORD = "prometheus-file-sd.txt"  # in the state dir: the files ``stop`` cleans up
OPTION = "--keptn-prometheus-file-sd"

Group = dict[str, Any]


def snippet(path: Path | str) -> str:
    """The scrape config a backend needs to read ``path``, on one line."""
    return (f"scrape_configs: [{{job_name: keptn, file_sd_configs: [{{files: [{json.dumps(str(path))}]}}]}}]"
            " (VictoriaMetrics: -promscrape.config=<that file> -promscrape.fileSDCheckInterval=1s"
            " -search.latencyOffset=1s; README: external backends)")


def check_settings(settings: Any, *, scraped: bool, local: bool) -> None:
    """A usage error when nothing could scrape the local deployer's processes, or when the file
    would serve nothing. ``scraped``: the run deploys and asks Prometheus for SLIs; ``local``:
    the built-in local deployer is the one that deploys."""
    if not scraped or not local or settings.deployer != "local":
        return
    if settings.prometheus_url and not settings.prometheus_file_sd:
        raise ConfigError(
            "the local deployer's processes are scraped by nothing: your Prometheus at "
            "--keptn-prometheus-url does not know them. Set --keptn-prometheus-file-sd=PATH "
            "(ini keptn_prometheus_file_sd) to a file your Prometheus or VictoriaMetrics reads "
            "with file_sd_configs (README: external backends), or leave --keptn-prometheus-url "
            "unset to use the embedded Prometheus", field=OPTION)
    if settings.prometheus_file_sd and not settings.prometheus_url:
        raise ConfigError(
            "is for a Prometheus of your own (--keptn-prometheus-url); the embedded Prometheus "
            "discovers the local deployer's targets itself", field=OPTION)


# -- the file ----------------------------------------------------------------------------------


def _job(group: Group) -> str:
    return str((group.get("labels") or {}).get("job", ""))


def _alive(group: Group) -> bool:
    """False only for a group whose owner process is known and has exited."""
    labels = group.get("labels") or {}
    pid, ticks = str(labels.get(OWNER, "")), str(labels.get(START_TICKS, ""))
    if not pid.isdigit():
        return True  # registered by someone else's hook: kept until unregistered
    return procs.alive(int(pid), int(ticks) if ticks.isdigit() else None)


def read(path: Path) -> list[Group]:
    """The target groups in ``path`` ([] when it does not exist yet); ConfigError when it is
    not a file_sd JSON file."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ConfigError(f"cannot read it: {exc.strerror or exc}", file=str(path),
                          field=OPTION) from None
    try:
        groups = json.loads(text) if text.strip() else []
    except ValueError:
        groups = None
    if not isinstance(groups, list) or not all(
            isinstance(g, dict) and isinstance(g.get("targets"), list)
            and isinstance(g.get("labels", {}), dict) for g in groups):
        raise ConfigError("not a file_sd file (a JSON list of {targets, labels} groups)",
                          file=str(path), field=OPTION)
    return groups


@contextlib.contextmanager
def editing(path: Path) -> Iterator[list[Group]]:
    """Read-modify-write ``path`` under its lock, without the groups of exited owners; the
    yielded list is written back when it changed."""
    with _edited(path) as (groups, _):
        yield groups


@contextlib.contextmanager
def _edited(path: Path) -> Iterator[tuple[list[Group], int]]:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = open(path.with_name(path.name + ".lock"), "a+")
    except OSError as exc:
        raise ConfigError(f"cannot write next to it: {exc.strerror or exc}", file=str(path),
                          field=OPTION) from None
    with lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        found = read(path)
        groups = [g for g in found if _alive(g)]
        yield groups, len(found) - len(groups)
        if groups != found or not path.exists():
            groups.sort(key=_job)
            # 0644: a backend running as another user reads it
            write_json(path, groups, mode=0o644, indent=1, sort_keys=True)


def prune(path: Path) -> int:
    """Drop the groups whose owner has exited; how many there were."""
    with _edited(path) as (_, dropped):
        return dropped


def remember(workdir: Path, path: Path) -> None:
    """Note in the state dir that ``path`` holds targets of its processes (for ``stop``)."""
    record = Path(workdir) / RECORD
    with contextlib.suppress(OSError):
        known = record.read_text().splitlines() if record.exists() else []
        if str(path) not in known:
            record.parent.mkdir(parents=True, exist_ok=True)
            with open(record, "a") as out:
                out.write(f"{path}\n")


def prune_recorded(workdir: Path) -> list[str]:
    """After ``stop``: remove the stopped processes from every file_sd file of ``workdir``."""
    record = Path(workdir) / RECORD
    try:
        paths = list(dict.fromkeys(record.read_text().splitlines()))
    except OSError:
        return []
    lines = []
    for name in paths:
        if name and Path(name).exists():
            try:
                gone = prune(Path(name))
            except KeptnError as exc:
                lines.append(str(exc))
                continue
            if gone:
                lines.append(f"{name}: removed {gone} target(s) of stopped processes")
    return lines


# -- the registry ----------------------------------------------------------------------------


class FileSDTargets(TargetRegistry):
    """A :class:`TargetRegistry` that writes ``path`` for a backend of the user's own at ``url``
    (``settings`` give its headers and credentials) and waits until that backend scrapes what
    was registered.

    Example::

        targets = FileSDTargets(Path("/etc/prometheus/keptn.json"), "http://127.0.0.1:8428", settings)
        targets.register("helloservice-pod-tato-head-hardening-canary", "127.0.0.1:40123")
        targets.confirm(timeout=30)  # DeployError if the backend never reports it up
    """

    def __init__(self, path: Path, url: str, settings: Any, *, workdir: Path | None = None) -> None:
        self.path = Path(path)
        self.url = url
        self.settings = settings
        self._mine: dict[str, tuple[str, float]] = {}  # job -> (address, since) registered here
        self._lock = threading.Lock()
        if workdir is not None:
            remember(workdir, self.path)

    def __repr__(self) -> str:
        return f"FileSDTargets({str(self.path)!r})"

    def register(self, job: str, address: str, labels: Mapping[str, str] | None = None) -> None:
        if not job or "\n" in job:
            raise ProviderError(f"bad job name {job!r}", field="prometheus")
        merged = {str(k): str(v) for k, v in (labels or {}).items()}
        merged["job"] = job
        with self._lock, editing(self.path) as groups:
            old = next((g for g in groups if _job(g) == job), None)
            kept = old is not None and old["targets"] == [address] and all(
                old["labels"].get(k) == merged.get(k) for k in (OWNER, START_TICKS))
            since = str(old["labels"].get(SINCE)) if kept and old is not None else f"{time.time():.3f}"
            merged[SINCE] = since
            if old is not None:
                groups.remove(old)
            groups.append({"targets": [address], "labels": merged})
            self._mine[job] = (address, float(since))

    def unregister(self, job: str) -> None:
        with self._lock, editing(self.path) as groups:
            groups[:] = [g for g in groups if _job(g) != job]
            self._mine.pop(job, None)

    @property
    def jobs(self) -> list[str]:
        return sorted(_job(g) for g in read(self.path))

    def close(self) -> None:
        """At session end: the processes this session stopped leave the file."""
        prune(self.path)

    # -- waiting for the backend ---------------------------------------------------------------

    def confirm(self, timeout: float) -> str:
        """The deployment task's end: wait until the backend reports every job registered here
        up (an ``up`` sample of 1 from the registered address, taken after the registration).
        Returns a note for the progress line; raises :class:`DeployError` naming the file and
        the scrape config when the backend answers but never does. A backend that does not
        answer at all is an outage, not a setup mistake: the note says so and the evaluation
        records it."""
        return self._wait(None, timeout)

    def wait_targets_up(self, jobs: Sequence[str] | None = None, timeout: float = 15.0) -> None:
        """As :meth:`EmbeddedPrometheus.wait_targets_up` (the load starts after it)."""
        self._wait(jobs, timeout)

    def _wait(self, jobs: Sequence[str] | None, timeout: float) -> str:
        from pytest_keptn.prometheus.answers import regex_literal
        from pytest_keptn.prometheus.client import client_from_settings

        current = {_job(g): g["targets"] for g in read(self.path)}
        wanted = {job: entry for job, entry in sorted(self._mine.items())
                  if (jobs is None or job in jobs) and current.get(job) == [entry[0]]}
        if not wanted:
            return ""
        selector = f"up{{job=~{json.dumps('|'.join(regex_literal(j) for j in wanted))}}}"
        began = time.monotonic()
        deadline = began + timeout
        state: dict[str, str] = {}
        with client_from_settings(self.settings, self.url) as client:
            while True:
                now = datetime.now(UTC)
                try:
                    values = _series(client, selector, now)
                    stamps = _series(client, f"timestamp({selector})", now)
                except ProviderError as exc:
                    return f"cannot tell whether it scrapes the targets ({exc.message})"
                state = {job: _problem(address, since, values, stamps, job)
                         for job, (address, since) in wanted.items()}
                if not any(state.values()):
                    return (f"{client.base_url} scrapes {', '.join(wanted)} "
                            f"(waited {time.monotonic() - began:.1f}s)")
                if time.monotonic() >= deadline:
                    break
                time.sleep(min(0.25, max(0.0, deadline - time.monotonic())))
            base = client.base_url
        down = "; ".join(f"{job} at {wanted[job][0]}: {why}" for job, why in state.items() if why)
        raise DeployError(
            f"setup error: the Prometheus at {base} does not report the deployed targets up "
            f"within {timeout:g}s ({down}). It must read the file_sd file {self.path}: "
            f"{snippet(self.path)}")


def _series(client: PrometheusClient, promql: str, at: datetime) -> list[tuple[dict[str, str], float]]:
    """The instant vector ``promql`` at ``at`` as (labels, value) pairs; ProviderError (with
    credentials scrubbed) when there is no such answer."""
    import httpx

    data = {"query": promql, "time": f"{at.timestamp():.3f}", "timeout": f"{client.timeout:g}s"}
    try:
        response = client.post("/api/v1/query", data, time.monotonic() + client.timeout)
    except httpx.HTTPError as exc:
        raise client.outage(exc) from None
    try:
        return [({str(k): str(v) for k, v in r["metric"].items()}, float(r["value"][1]))
                for r in response.json()["data"]["result"]]
    except (ValueError, KeyError, TypeError, IndexError, AttributeError):
        body = " ".join(response.text.split())[:150]
        raise ProviderError(client.scrub(f"Prometheus at {client.base_url} answered HTTP "
                                         f"{response.status_code} to {promql}: {body}")) from None


def _problem(address: str, since: float, values: list[tuple[dict[str, str], float]],
             stamps: list[tuple[dict[str, str], float]], job: str) -> str:
    """'' when ``job`` is up at ``address`` with a sample taken at or after ``since``. Of several
    series of the target (its labels changed on release) the newest counts."""
    def key(labels: dict[str, str]) -> frozenset[tuple[str, str]]:
        return frozenset((k, v) for k, v in labels.items() if k != "__name__")

    ups = {key(labels): value for labels, value in values}
    mine = [(stamp, key(labels)) for labels, stamp in stamps
            if labels.get("job") == job and labels.get("instance") == address]
    if not mine:
        return "not discovered (no up series)"
    stamp, newest = max(mine, key=lambda pair: pair[0])
    if ups.get(newest) != 1:
        return "discovered, but its scrape fails (up 0)"
    if stamp < since:
        return "no sample since it was registered yet"
    return ""
