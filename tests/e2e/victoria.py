"""A real VictoriaMetrics (Debian's ``victoria-metrics``) for tests and benchmarks: a free
127.0.0.1 port, a data folder of its own, a scrape config reading file_sd files.

The process runs in its own session and is watched by ``pytest_keptn/prometheus/_watchdog.py``,
which stops it if this process dies without calling :meth:`VictoriaMetrics.stop` (SIGKILL of
the test run), so it never outlives the session that started it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

import pytest_keptn.prometheus

BINARY = shutil.which("victoria-metrics")
WATCHDOG = Path(pytest_keptn.prometheus.__file__).with_name("_watchdog.py")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class VictoriaMetrics:
    """``with VictoriaMetrics(folder, [file_sd_path]) as vm: vm.url``"""

    def __init__(self, folder: Path, files: list[Path], *, file_sd_check: str = "1s",
                 latency_offset: str = "1s", scrape_interval: str = "1s") -> None:
        self.folder = Path(folder)
        self.files = files
        self.flags = [f"-promscrape.fileSDCheckInterval={file_sd_check}",
                      f"-search.latencyOffset={latency_offset}"]
        self.scrape_interval = scrape_interval
        self.port = 0
        self.log = self.folder / "victoria-metrics.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> VictoriaMetrics:
        assert BINARY is not None, "victoria-metrics is not installed (scripts/setup.sh)"
        self.folder.mkdir(parents=True, exist_ok=True)
        config = self.folder / "scrape.yml"
        # the README's snippet (external backends), as JSON (a subset of YAML)
        config.write_text(json.dumps({"scrape_configs": [{
            "job_name": "keptn", "scrape_interval": self.scrape_interval,
            "file_sd_configs": [{"files": [str(f) for f in self.files]}]}]}))
        self.port = _free_port()
        with open(self.log, "ab") as log:
            self._proc = subprocess.Popen(
                [BINARY, f"-httpListenAddr=127.0.0.1:{self.port}",
                 f"-storageDataPath={self.folder / 'data'}", f"-promscrape.config={config}",
                 "-search.disableCache", *self.flags],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        self._watchdog = subprocess.Popen(
            [sys.executable, "-I", "-S", str(WATCHDOG), str(os.getpid()), str(self._proc.pid),
             str(self.folder)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                break
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"victoria-metrics did not start: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            try:
                watchdog.wait(10)  # it exits as soon as victoria-metrics has
            except subprocess.TimeoutExpired:
                watchdog.kill()
                watchdog.wait(5)

    def query(self, promql: str) -> list[tuple[dict[str, str], float]]:
        answer = httpx.post(self.url + "/api/v1/query", data={"query": promql}, timeout=10)
        answer.raise_for_status()
        return [(r["metric"], float(r["value"][1])) for r in answer.json()["data"]["result"]]

    def __enter__(self) -> VictoriaMetrics:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
