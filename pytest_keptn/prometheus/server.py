"""A real ``prometheus`` binary the plugin runs itself, with file-based service discovery.

Targets are registered under Keptn's job names (``<service>-<project>-<stage>[-primary|-canary]``,
semantics §11) by writing one file_sd JSON file per job, atomically (temp file + rename): the
``job`` label in the file overrides the scrape config's job name. Prometheus' discovery and
scrape managers each throttle target updates to one per 5 s: a new target is scraped 4-6 s later.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pytest_keptn.errors import ProviderError
from pytest_keptn.model import TargetRegistry, TargetSlot
from pytest_keptn.prometheus import keep, slots, unserved
from pytest_keptn.system.files import atomic_write
from pytest_keptn.system.processes import alive, free_port, log_tail

if TYPE_CHECKING:
    import httpx

_START_TIMEOUT = 15.0
_STOP_TIMEOUT = 5.0
_POLL = 0.05  # every 0.1 s of polling would add up to 0.1 s to a stage


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _job_file(job: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", job)[:80]
    return f"{safe}-{hashlib.sha1(job.encode()).hexdigest()[:8]}.json"


class EmbeddedPrometheus(TargetRegistry):
    """A throwaway Prometheus on a free 127.0.0.1 port; a context manager and a TargetRegistry.

    Example::

        with EmbeddedPrometheus() as prom:
            prom.register("helloservice-pod-tato-head-hardening-canary", "127.0.0.1:8081")
            prom.wait_targets_up()
            client = PrometheusClient(prom.url)
    """

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        binary: str = "prometheus",
        scrape_interval: float = 1.0,
        keep_seconds: float = 0.0,
    ) -> None:
        self.workdir = Path(workdir) if workdir is not None else None
        self.keep_seconds = float(keep_seconds)  # --keptn-prometheus-keep: idle time after use
        self.record_dir = self.workdir  # where a kept instance is recorded (keep.RECORD)
        self.binary = binary
        self.scrape_interval = float(scrape_interval)
        self.port: int | None = None
        self.folder: Path | None = None
        self.log_path: Path | None = None
        self.start_to_ready_seconds: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._attached = False
        self._log: object | None = None
        self._targets: dict[str, dict[str, dict[str, str]]] = {}  # job -> address -> labels
        self._lock = threading.Lock()
        self._http: httpx.Client | None = None
        self._exe = binary
        self._began = 0.0
        self._ready = False
        self._published = False
        self._kept_pid: int | None = None  # a kept Prometheus this session reuses
        self._kept_ticks: int | None = None

    @classmethod
    def attach(cls, url: str, sd_dir: str | Path) -> EmbeddedPrometheus:
        """The embedded Prometheus another process of this run started (the pytest-xdist
        controller, for its workers): ``register`` writes into its file_sd folder, so every
        worker's targets are scraped by the one Prometheus; ``stop`` leaves it to its owner."""
        port = urlsplit(url).port
        if port is None:
            raise ProviderError(f"bad embedded Prometheus URL {url!r}", field="prometheus")
        prom = cls()
        prom.port = port
        prom.folder = Path(sd_dir).parent
        prom._attached = True
        return prom

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"EmbeddedPrometheus(url={self.url if self.port else None!r}, {state})"

    @property
    def url(self) -> str:
        if self.port is None:
            raise ProviderError("the embedded Prometheus is not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The prometheus process' id while it runs."""
        if not self.running:
            return None
        return self._proc.pid if self._proc is not None else self._kept_pid

    @property
    def running(self) -> bool:
        if self._attached:
            return self.folder is not None
        if self._kept_pid is not None:
            return alive(self._kept_pid, self._kept_ticks)
        return self._proc is not None and self._proc.poll() is None

    @property
    def sd_dir(self) -> Path:
        if self.folder is None:
            raise ProviderError("the embedded Prometheus is not started")
        return self.folder / "sd"

    # -- lifecycle --------------------------------------------------------------------------
    def _config(self) -> str:
        # Prometheus durations take no fractions ("0.5s" is refused): milliseconds
        interval = f"{max(1, round(self.scrape_interval * 1000))}ms"
        timeout = f"{max(1, round(min(self.scrape_interval, 10.0) * 1000))}ms"
        return (
            f"global: {{scrape_interval: {interval}, scrape_timeout: {timeout},"
            f" evaluation_interval: {interval}}}\n"
            "scrape_configs:\n"
            "  - job_name: keptn-file-sd\n"
            f"    file_sd_configs: [{{files: [{json.dumps(str(self.sd_dir / '*.json'))}],"
            " refresh_interval: 1s}]\n"
        )

    def start(self, timeout: float = _START_TIMEOUT) -> EmbeddedPrometheus:
        """Start the binary and wait until ``/-/ready`` answers 200."""
        return self.spawn().wait_started(timeout)

    def spawn(self) -> EmbeddedPrometheus:
        """Start the binary without waiting for it (:meth:`wait_started` waits). The plugin
        spawns it before importing its runtime: its first scrape comes on a discovery tick
        counted from its start, so every 0.1 s earlier is 0.1 s off the first stage."""
        if self.running or self._proc is not None:
            return self
        exe = shutil.which(self.binary)
        if exe is None:
            raise ProviderError(
                f"prometheus binary {self.binary!r} not found (install it with "
                "'apt-get install -y --no-install-recommends prometheus' or set "
                "--keptn-prometheus-binary, or give --keptn-prometheus-url)",
                field="keptn_prometheus_binary",
            )
        self._exe = exe
        if self.workdir is not None:
            self.workdir.mkdir(parents=True, exist_ok=True)
        self.folder = Path(tempfile.mkdtemp(prefix="keptn-prometheus-", dir=self.workdir))
        atexit.register(self.close)
        self.sd_dir.mkdir()
        for job in list(self._targets):
            self._write_job(job)
        (self.folder / "prometheus.yml").write_text(self._config())
        if self.keep_seconds:
            keep.join(self.folder, os.getpid())
        self._popen()
        return self

    def _popen(self) -> None:
        assert self.folder is not None
        self.port = free_port()
        log_dir = self.workdir if self.workdir is not None else self.folder
        self.log_path = log_dir / f"prometheus-{self.port}.log"
        self._began = time.monotonic()
        with open(self.log_path, "wb") as log:
            self._proc = subprocess.Popen(
                [
                    self._exe,
                    f"--config.file={self.folder / 'prometheus.yml'}",
                    f"--storage.tsdb.path={self.folder / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--web.enable-lifecycle",
                    # hide_unserved deletes the samples of targets that did not serve their job
                    "--web.enable-admin-api",
                    "--storage.tsdb.retention.time=1d",
                    "--log.level=info",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._watch()  # at once: a pytest killed while Prometheus starts leaves nothing behind

    def wait_started(self, timeout: float = _START_TIMEOUT) -> EmbeddedPrometheus:
        """Wait until the spawned binary answers ``/-/ready`` (a taken port: spawn again)."""
        if self._ready:
            return self
        if self._proc is None:
            raise ProviderError("the embedded Prometheus is not started")
        last_error = ""
        rc: int | None = None
        for _attempt in range(3):  # the free port may be taken between check and use
            if self._wait_ready(self._began + timeout):
                self.start_to_ready_seconds = time.monotonic() - self._began
                self._ready = True
                return self
            last_error = log_tail(self.log_path) if self.log_path else ""
            rc = self._proc.poll() if self._proc is not None else None
            self._terminate()
            if rc is None or "address already in use" not in last_error:
                break
            self._popen()
        self.stop()
        what = (f"exited with code {rc} before it was ready" if rc is not None
                else f"did not become ready within {timeout:g}s")
        raise ProviderError(f"the embedded Prometheus {what} (log {self.log_path}: "
                            f"{last_error or 'empty'})", field="prometheus")

    def _watch(self) -> None:
        """A watchdog process that stops Prometheus and removes its folder if this process
        dies without doing so (SIGKILL, OOM kill): atexit and signal handlers do not run then.
        A kept Prometheus (``keep_seconds``): it stops it once no session has used it for
        that long, whether the sessions ended or were killed."""
        assert self._proc is not None and self.folder is not None
        argv = [sys.executable, "-I", "-S", str(Path(__file__).with_name("_watchdog.py"))]
        if self.keep_seconds:
            argv += ["--keep", f"{self.keep_seconds:g}", str(self.record_dir or "")]
        with contextlib.suppress(OSError):
            self._watchdog = subprocess.Popen(
                [*argv, str(os.getpid()), str(self._proc.pid), str(self.folder)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )

    @property
    def http(self) -> httpx.Client:
        """The one HTTP client of this Prometheus (plain http on 127.0.0.1: no CA bundle to
        load, which costs 24-54 ms per client)."""
        if self._http is None:
            import httpx  # not at the top: the early spawn (plugin.py) must not wait for it

            self._http = httpx.Client(timeout=2.0, verify=False)
        return self._http

    def _wait_ready(self, deadline: float) -> bool:
        import httpx

        while time.monotonic() < deadline:
            if not self.running:
                return False
            with contextlib.suppress(httpx.HTTPError):
                if self.http.get(self.url + "/-/ready", timeout=1.0).status_code == 200:
                    return True
            time.sleep(_POLL)
        return False

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        watchdog, self._watchdog = self._watchdog, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(_STOP_TIMEOUT)
        elif proc is None and self._kept_pid is not None:
            keep.terminate(self._kept_pid, self._kept_ticks, _STOP_TIMEOUT)
        self._kept_pid = None
        if watchdog is not None:  # it exits as soon as Prometheus has
            try:
                watchdog.wait(_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                watchdog.kill()
                watchdog.wait(_STOP_TIMEOUT)

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL) and remove the temp folder. Idempotent.
        An attached instance (:meth:`attach`) only lets go: its owner stops it."""
        http, self._http = self._http, None
        if http is not None:
            http.close()
        if self._attached:
            self.folder = None
            return
        self._terminate()
        folder, self.folder = self.folder, None
        if folder is not None:
            if self.record_dir is not None:
                keep.forget(self.record_dir, folder)
            shutil.rmtree(folder, ignore_errors=True)
        self._ready = False
        with contextlib.suppress(Exception):
            atexit.unregister(self.close)

    def close(self) -> None:
        """The end of this session's use: a kept Prometheus (:meth:`publish`, :meth:`reuse`)
        keeps running until it has been idle for ``keep_seconds``; any other stops."""
        if not (self._published and self.keep_seconds and self.running):
            self.stop()
            return
        assert self.folder is not None
        keep.leave(self.folder, os.getpid())
        http, self._http = self._http, None
        if http is not None:
            http.close()
        self._proc = None  # not ours to stop any more: the watchdog does, after the idle time
        self._watchdog = None
        with contextlib.suppress(Exception):
            atexit.unregister(self.close)

    # -- keeping it for the next session (--keptn-prometheus-keep) --------------------------
    def _key(self) -> str:
        return f"{shutil.which(self.binary)}|{self.scrape_interval:g}|admin-api"

    def publish(self) -> None:
        """Record this kept Prometheus in ``workdir`` for the next compatible session (after
        the session's setup checks passed: a failed setup stops it instead)."""
        if not self.keep_seconds or self.record_dir is None or self.folder is None \
                or self._proc is None or self.port is None:
            return
        keep.publish(self.record_dir, pid=self._proc.pid, port=self.port, folder=self.folder,
                     key=self._key(), keep_seconds=self.keep_seconds)
        self._published = True

    @classmethod
    def reuse(cls, workdir: Path, *, binary: str = "prometheus", scrape_interval: float = 1.0,
              keep_seconds: float = 0.0) -> EmbeddedPrometheus | None:
        """The Prometheus an earlier session of this state folder kept, when it still runs with
        the same binary and scrape interval; this session is counted as using it."""
        prom = cls(workdir, binary=binary, scrape_interval=scrape_interval,
                   keep_seconds=keep_seconds)
        found = keep.take(Path(workdir), prom._key(), os.getpid())
        if found is None:
            return None
        prom.port, prom.folder = found.port, found.folder
        prom._kept_pid, prom._kept_ticks = found.pid, found.ticks
        prom._published = prom._ready = True
        log = f"prometheus-{found.port}.log"
        prom.log_path = found.folder / log if (found.folder / log).exists() else Path(workdir) / log
        atexit.register(prom.close)
        return prom

    def __enter__(self) -> EmbeddedPrometheus:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- targets ----------------------------------------------------------------------------
    def register(self, job: str, address: str, labels: Mapping[str, str] | None = None) -> None:
        """Scrape ``address`` (``host:port``) under job name ``job`` (plus ``labels``).
        Registering what is already registered writes nothing (Prometheus re-reads a changed
        file_sd file and throttles what it applies)."""
        if not job or "\n" in job:
            raise ProviderError(f"bad job name {job!r}", field="prometheus")
        merged = dict(labels or {})
        merged["job"] = job
        with self._lock:
            self._sync()
            entry = self._targets.setdefault(job, {})
            if entry.get(address) == merged:
                return
            entry[address] = merged
            if self.folder is not None:
                self._write_job(job)

    def replace(self, job: str, address: str, labels: Mapping[str, str] | None = None) -> None:
        """``address`` as the job's only target (free slots stay), written in one step."""
        with self._lock:
            self._sync()
            free = (slots.free_addresses(self.folder)
                    if self.folder is not None and (self.folder / slots.POOL_FILE).exists()
                    else set())
            kept = {a: v for a, v in self._targets.get(job, {}).items() if a in free}
            self._targets[job] = {**kept, address: {**(labels or {}), "job": job}}
            if self.folder is not None:
                self._write_job(job)

    def unregister(self, job: str) -> None:
        """Stop scraping every target of ``job``. The job's slot, if it owned one that a
        build claimed, is dropped; the job's next build takes the spare armed when it was
        claimed (or a new one, armed now)."""
        with self._lock:
            self._sync()
            if self.folder is None or not (self.folder / slots.POOL_FILE).exists():
                self._targets.pop(job, None)
                if self.folder is not None:
                    self._write_job(job)
                return
            with slots.pool(self.folder) as entries:
                free = {str(e["address"]) for e in entries if not e.get("claimed")}
                kept = {a: v for a, v in self._targets.get(job, {}).items() if a in free}
                self._targets[job] = kept
                self._write_job(job)
                claimed = [e for e in entries if e.get("claimed") and e["jobs"][0] == job]
                for entry in claimed:
                    entries.remove(entry)
                spare = any(not e.get("claimed") and e["jobs"][0] == job for e in entries)
                if claimed and not spare:
                    self._arm(entries, tuple(claimed[0]["jobs"]), dict(claimed[0]["labels"]))

    def add_slots(self, groups: Sequence[TargetSlot]) -> None:
        """Pre-register ``groups`` (see :mod:`.slots`): each gets a free port, or its fixed
        address, under its jobs. A group whose owner job already has a free slot (a kept
        Prometheus reused by a later session) keeps it."""
        if self.folder is None:
            raise ProviderError("the embedded Prometheus is not started")
        with self._lock:
            self._sync()
            with slots.pool(self.folder) as entries:
                for group in groups:
                    if group.address is not None:
                        for job in group.jobs:
                            self._put(job, group.address, group.labels)
                        continue
                    armed = [e for e in entries
                             if not e.get("claimed") and e["jobs"][0] == group.jobs[0]]
                    if not armed:
                        self._arm(entries, group.jobs, dict(group.labels))
            for job in list(self._targets):
                self._write_job(job)

    def slot(self, job: str, labels: Mapping[str, str] | None = None) -> int | None:
        """The port of ``job``'s pre-registered slot, claimed for the caller's build (scraped
        already: no discovery wait), or None (no slot, or its port was taken meanwhile). The
        oldest free slot is taken, and a spare is armed in its place."""
        if self.folder is None or not (self.folder / slots.POOL_FILE).exists():
            return None
        with self._lock:
            self._sync()
            with slots.pool(self.folder) as entries:
                for entry in entries:
                    if entry.get("claimed") or entry["jobs"][0] != job:
                        continue
                    address = str(entry["address"])
                    port = int(address.rsplit(":", 1)[1])
                    if _port_free(port):
                        entry["claimed"] = True
                        unserved.served(self.folder, entry["jobs"],
                                        entry["labels"].get("instance", address))
                        # The next build's slot, armed now so that Prometheus has discovered
                        # it by then (a run within seconds of this one's release, with a kept
                        # Prometheus); its samples (up 0) are hidden from the queries.
                        self._arm(entries, tuple(entry["jobs"]), dict(entry["labels"]))
                        return port
                    entries.remove(entry)  # someone else listens there: not a slot any more
                    for name in entry["jobs"]:
                        if self._targets.get(name, {}).pop(address, None) is not None:
                            self._write_job(name)
                    return None
        return None

    def _arm(self, entries: list[dict[str, object]], jobs: tuple[str, ...],
             labels: dict[str, str]) -> None:
        address = f"127.0.0.1:{free_port()}"
        entries.append({"jobs": list(jobs), "labels": labels, "address": address,
                        "claimed": False})
        for job in jobs:
            self._put(job, address, labels)
            if self.folder is not None:
                self._write_job(job, spare=address)

    def _put(self, job: str, address: str, labels: Mapping[str, str]) -> None:
        self._targets.setdefault(job, {})[address] = {**labels, "job": job}

    @property
    def jobs(self) -> list[str]:
        with self._lock:
            self._sync()
            return sorted(self._targets)

    def _sync(self) -> None:
        """Once started, the targets are what the file_sd folder says, whichever process
        registered them (the xdist workers, an earlier session of a kept Prometheus)."""
        if self.folder is None:
            return
        found: dict[str, dict[str, dict[str, str]]] = {}
        for path in sorted(self.sd_dir.glob("*.json")):
            with contextlib.suppress(OSError, ValueError, TypeError, KeyError, IndexError):
                for group in json.loads(path.read_text()):
                    labels = {str(k): str(v) for k, v in group["labels"].items()}
                    for address in group["targets"]:
                        found.setdefault(labels["job"], {})[str(address)] = labels
        self._targets = found

    def _write_job(self, job: str, *, spare: str | None = None) -> None:
        """Write ``job``'s file_sd file, noting what changed (:func:`.unserved.note`)."""
        path = self.sd_dir / _job_file(job)
        before: dict[str, dict[str, str]] = {}
        with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
            for group in json.loads(path.read_text()):
                for address in group["targets"]:
                    before[str(address)] = {str(k): str(v) for k, v in group["labels"].items()}
        targets = self._targets.get(job)
        if not targets:
            self._targets.pop(job, None)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        else:
            groups = [{"targets": [address], "labels": labels}
                      for address, labels in targets.items()]
            # the temporary file matches no *.json: Prometheus never reads it half-written
            atomic_write(path, json.dumps(groups))
        after = targets or {}
        gone = {a: v for a, v in before.items() if a not in after}
        came = {a: v for a, v in after.items() if a not in before}
        if gone or came:
            unserved.note(self.sd_dir.parent, job, gone, came, spare)

    def hide_unserved(self, jobs: Sequence[str] = ()) -> str:
        """See :func:`.unserved.hide` (the samples of targets that did not serve their job)."""
        if self.folder is None or self.port is None:
            return ""
        return unserved.hide(self.folder, self.http, self.url, self.scrape_interval, jobs)

    def wait_scraped(self, addresses: Sequence[str], timeout: float) -> None:
        """Until the load window may start: every target at ``addresses`` is discovered, and
        scraped up or not scraped since the call (its next scrape is in the window). Waiting
        for that scrape would end every window just after one (a whole scrape interval of
        freshness wait); :meth:`check_scraped` makes sure after the window that it was up."""
        self.wait_targets_up(None, timeout, addresses=addresses, listening_since=time.time())

    def check_scraped(self, addresses: Sequence[str]) -> None:
        """After the load window: ProviderError unless every target at ``addresses`` is up
        (waited for when the window ended before its first scrape); nothing when Prometheus
        is gone or does not answer (an outage: the evaluation is errored)."""
        self.wait_targets_up(None, 3 * self.scrape_interval + 1.0, addresses=addresses, after_load=True)

    def wait_targets_up(self, jobs: Sequence[str] | None = None, timeout: float = 15.0, *,
                        addresses: Sequence[str] | None = None,
                        listening_since: float | None = None, after_load: bool = False) -> None:
        """Wait until every target of ``jobs`` (default: all registered) is scraped up; with
        ``addresses`` (``host:port``) only those (a stage's new canary, not another stage's
        target registered a moment ago); never free slots. With ``listening_since`` (unix
        time), a discovered target not scraped since then counts too."""
        with self._lock:
            self._sync()
            targets = {job: dict(found) for job, found in self._targets.items()}
        free = (slots.free_addresses(self.folder)
                if self.folder is not None and (self.folder / slots.POOL_FILE).exists() else set())
        wanted = {(job, address) for job, found in targets.items()
                  if jobs is None or job in jobs for address in found
                  if address not in free and (addresses is None or address in addresses)}
        wanted |= {(job, "") for job in (jobs or ()) if job not in targets}
        if not wanted:
            return
        import httpx

        deadline = time.monotonic() + timeout
        answered = False
        while True:
            state = {pair: "not discovered yet" for pair in wanted}
            with contextlib.suppress(httpx.HTTPError, ValueError, KeyError, TypeError):
                response = self.http.get(self.url + "/api/v1/targets", params={"state": "active"})
                if response.status_code == 200:
                    answered = True
                    for target in response.json()["data"]["activeTargets"]:
                        job = target["labels"].get("job", "")
                        pair = (job, urlsplit(target.get("scrapeUrl", "")).netloc)
                        if pair in state:
                            health = target.get("health", "unknown")
                            pending = listening_since is not None and unserved.scraped_at(
                                target.get("lastScrape")) < listening_since
                            state[pair] = "" if health == "up" or pending else (
                                f"{health}: {target.get('lastError') or 'not scraped yet'}")
            if after_load and (not self.running or (not answered and time.monotonic() >= deadline)):
                return  # an outage, not a missed scrape: the evaluation finds it, errored
            if not self.running:
                raise ProviderError(
                    f"the embedded Prometheus exited (log: {log_tail(self.log_path) if self.log_path else ''})",
                    field="prometheus",
                )
            down = {j if not a else f"{j} {a}": s for (j, a), s in state.items() if s}
            if not down:
                return
            if time.monotonic() >= deadline:
                detail = "; ".join(f"{j} ({s})" for j, s in sorted(down.items()))
                raise ProviderError(
                    (f"scrape target(s) not up at the end of the load: {detail}" if after_load
                     else f"scrape target(s) not up within {timeout:g}s: {detail}"),
                    field="prometheus",
                )
            time.sleep(_POLL)


def spawn_early(config: Any, settings: Any) -> EmbeddedPrometheus | None:
    """The embedded Prometheus a session will want, spawned (not waited for) as the first thing
    the plugin does, before its runtime is imported: the first scrape comes on a discovery
    tick counted from Prometheus' start. With ``--keptn-prometheus-keep`` a kept one is reused
    instead. None when the session will not want one (or cannot tell yet: the session then
    starts it itself and reports any mistake)."""
    from pytest_keptn.locate import keptn_root

    if (settings.prometheus_url or settings.evaluation_only or config.option.collectonly
            or hasattr(config, "workerinput")
            or config.pluginmanager.is_blocked("keptn-sli-prometheus")):
        return None
    root = keptn_root(settings.root, config.rootpath)
    if root is None or not (root / "shipyard.yaml").is_file():
        return None
    workdir = settings.state_path(root) / "prometheus"
    try:
        keep_seconds = keep.parse_duration(settings.prometheus_keep)
        if keep_seconds:
            reused = EmbeddedPrometheus.reuse(workdir, binary=settings.prometheus_binary,
                                              scrape_interval=settings.scrape_interval,
                                              keep_seconds=keep_seconds)
            if reused is not None:
                return reused
        # a state folder that does not exist yet stays untouched until the setup is checked
        prom = EmbeddedPrometheus(workdir if workdir.is_dir() else None,
                                  binary=settings.prometheus_binary,
                                  scrape_interval=settings.scrape_interval,
                                  keep_seconds=keep_seconds)
        prom.record_dir = workdir
        return prom.spawn()
    except (ValueError, OSError, ProviderError):
        return None
