"""A real ``prometheus`` binary the plugin runs itself, with file-based service discovery.

Targets are registered under Keptn's job names (``<service>-<project>-<stage>[-primary|-canary]``,
semantics §11) by writing one file_sd JSON file per job, atomically (temp file + rename): the
``job`` label in the file overrides the scrape config's job name. Prometheus' discovery and
scrape managers each throttle target updates to one per 5 s, so a newly registered target is
scraped 4-6 s later; ``wait_targets_up`` waits for it instead of sleeping.
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
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

import httpx

from pytest_keptn.errors import ProviderError
from pytest_keptn.model import TargetRegistry
from pytest_keptn.system.files import atomic_write
from pytest_keptn.system.processes import free_port, log_tail

_START_TIMEOUT = 15.0
_STOP_TIMEOUT = 5.0


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
    ) -> None:
        self.workdir = Path(workdir) if workdir is not None else None
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
        self._targets: dict[str, dict[str, object]] = {}  # job -> {"targets": [...], "labels": {}}
        self._lock = threading.Lock()

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
        return self._proc.pid if self.running and self._proc is not None else None

    @property
    def running(self) -> bool:
        if self._attached:
            return self.folder is not None
        return self._proc is not None and self._proc.poll() is None

    @property
    def sd_dir(self) -> Path:
        if self.folder is None:
            raise ProviderError("the embedded Prometheus is not started")
        return self.folder / "sd"

    # -- lifecycle --------------------------------------------------------------------------
    def _config(self) -> str:
        interval = f"{self.scrape_interval:g}s"
        timeout = f"{min(self.scrape_interval, 10.0):g}s"
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
        if self.running:
            return self
        exe = shutil.which(self.binary)
        if exe is None:
            raise ProviderError(
                f"prometheus binary {self.binary!r} not found (install it with "
                "'apt-get install -y --no-install-recommends prometheus' or set "
                "--keptn-prometheus-binary, or give --keptn-prometheus-url)",
                field="keptn_prometheus_binary",
            )
        if self.workdir is not None:
            self.workdir.mkdir(parents=True, exist_ok=True)
        self.folder = Path(tempfile.mkdtemp(prefix="keptn-prometheus-", dir=self.workdir))
        atexit.register(self.stop)
        self.sd_dir.mkdir()
        for job in list(self._targets):
            self._write_job(job)
        (self.folder / "prometheus.yml").write_text(self._config())
        log_dir = self.workdir if self.workdir is not None else self.folder
        last_error = ""
        for _attempt in range(3):  # the free port may be taken between check and use
            self.port = free_port()
            self.log_path = log_dir / f"prometheus-{self.port}.log"
            began = time.monotonic()
            with open(self.log_path, "wb") as log:
                self._proc = subprocess.Popen(
                    [
                        exe,
                        f"--config.file={self.folder / 'prometheus.yml'}",
                        f"--storage.tsdb.path={self.folder / 'data'}",
                        f"--web.listen-address=127.0.0.1:{self.port}",
                        "--web.enable-lifecycle",
                        "--storage.tsdb.retention.time=1d",
                        "--log.level=info",
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            if self._wait_ready(began + timeout):
                self.start_to_ready_seconds = time.monotonic() - began
                self._watch()
                return self
            last_error = log_tail(self.log_path)
            rc = self._proc.poll()
            self._terminate()
            if rc is None or "address already in use" not in last_error:
                break
        self.stop()
        raise ProviderError(
            f"the embedded Prometheus did not become ready within {timeout:g}s"
            f" (log {self.log_path}: {last_error or 'empty'})",
            field="prometheus",
        )

    def _watch(self) -> None:
        """A watchdog process that stops Prometheus and removes its folder if this process
        dies without doing so (SIGKILL, OOM kill): atexit and signal handlers do not run then."""
        assert self._proc is not None and self.folder is not None
        with contextlib.suppress(OSError):
            self._watchdog = subprocess.Popen(
                [sys.executable, "-I", "-S", str(Path(__file__).with_name("_watchdog.py")),
                 str(os.getpid()), str(self._proc.pid), str(self.folder)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )

    def _wait_ready(self, deadline: float) -> bool:
        assert self._proc is not None
        with httpx.Client(timeout=1.0) as http:
            while time.monotonic() < deadline:
                if self._proc.poll() is not None:
                    return False
                with contextlib.suppress(httpx.HTTPError):
                    if http.get(self.url + "/-/ready").status_code == 200:
                        return True
                time.sleep(0.05)
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
        if watchdog is not None:  # it exits as soon as Prometheus has
            try:
                watchdog.wait(_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                watchdog.kill()
                watchdog.wait(_STOP_TIMEOUT)

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL) and remove the temp folder. Idempotent.
        An attached instance (:meth:`attach`) only lets go: its owner stops it."""
        if self._attached:
            self.folder = None
            return
        self._terminate()
        folder, self.folder = self.folder, None
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)

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
        """Scrape ``address`` (``host:port``) under job name ``job`` (plus ``labels``)."""
        if not job or "\n" in job:
            raise ProviderError(f"bad job name {job!r}", field="prometheus")
        with self._lock:
            self._sync()
            entry = self._targets.setdefault(job, {"targets": [], "labels": {}})
            targets = entry["targets"]
            assert isinstance(targets, list)
            if address not in targets:
                targets.append(address)
            merged = dict(labels or {})
            merged["job"] = job
            entry["labels"] = merged
            if self.folder is not None:
                self._write_job(job)

    def unregister(self, job: str) -> None:
        """Stop scraping every target of ``job``."""
        with self._lock:
            self._sync()
            self._targets.pop(job, None)
            if self.folder is not None:
                with contextlib.suppress(FileNotFoundError):
                    (self.sd_dir / _job_file(job)).unlink()

    @property
    def jobs(self) -> list[str]:
        with self._lock:
            self._sync()
            return sorted(self._targets)

    def _sync(self) -> None:
        """Attached (:meth:`attach`): the targets are what the shared file_sd folder says,
        whichever process of the run registered them."""
        if not self._attached or self.folder is None:
            return
        found: dict[str, dict[str, object]] = {}
        for path in sorted(self.sd_dir.glob("*.json")):
            with contextlib.suppress(OSError, ValueError, TypeError, KeyError, IndexError):
                entry = json.loads(path.read_text())[0]
                found[str(entry["labels"]["job"])] = {
                    "targets": list(entry["targets"]), "labels": dict(entry["labels"])}
        self._targets = found

    def _write_job(self, job: str) -> None:
        path = self.sd_dir / _job_file(job)
        # the temporary file matches no *.json: Prometheus never reads it half-written
        atomic_write(path, json.dumps([self._targets[job]]))

    def wait_targets_up(self, jobs: Sequence[str] | None = None, timeout: float = 15.0) -> None:
        """Wait until every target of ``jobs`` (default: all registered) is scraped with health up."""
        wanted = sorted(set(jobs if jobs is not None else self.jobs))
        if not wanted:
            return
        deadline = time.monotonic() + timeout
        state: dict[str, str] = {}
        with httpx.Client(timeout=2.0) as http:
            while True:
                state = {job: "not discovered yet" for job in wanted}
                with contextlib.suppress(httpx.HTTPError, ValueError, KeyError, TypeError):
                    response = http.get(self.url + "/api/v1/targets", params={"state": "active"})
                    if response.status_code == 200:
                        seen: dict[str, list[str]] = {}
                        for target in response.json()["data"]["activeTargets"]:
                            job = target["labels"].get("job", "")
                            if job in state:
                                health = target.get("health", "unknown")
                                problem = "" if health == "up" else (
                                    f"{health}: {target.get('lastError') or 'not scraped yet'}"
                                )
                                seen.setdefault(job, []).append(problem)
                        for job, problems in seen.items():
                            bad = [p for p in problems if p]
                            state[job] = bad[0] if bad else ""
                if not self.running:
                    raise ProviderError(
                        f"the embedded Prometheus exited (log: {log_tail(self.log_path) if self.log_path else ''})",
                        field="prometheus",
                    )
                down = {j: s for j, s in state.items() if s}
                if not down:
                    return
                if time.monotonic() >= deadline:
                    detail = "; ".join(f"{j} ({s})" for j, s in down.items())
                    raise ProviderError(
                        f"scrape target(s) not up within {timeout:g}s: {detail}",
                        field="prometheus",
                    )
                time.sleep(0.2)
