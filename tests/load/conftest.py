from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_keptn.config import Settings
from pytest_keptn.model import StageContext
from pytest_keptn.system import processes as procs

EXAMPLE = Path(__file__).resolve().parents[2] / "example_project"

LOCUSTFILE = """
from locust import FastHttpUser, constant, task

class Visitor(FastHttpUser):
    wait_time = constant(0.01)

    @task
    def index(self):
        self.client.get("/")
"""


def start_helloserver(tag: str = "v0.1.1") -> tuple[subprocess.Popen[bytes], str]:
    port = procs.free_port()
    env = dict(os.environ, PYTHONPATH=str(EXAMPLE))
    server = subprocess.Popen(
        [sys.executable, "-m", "helloserver", "--port", str(port), "--tag", tag],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    why = procs.wait_ready(url + "/health", lambda: server.poll() is None, 15)
    assert why is None, why
    return server, url


@pytest.fixture
def helloserver() -> Iterator[str]:
    server, url = start_helloserver()
    yield url
    procs.stop_pid(server.pid)
    server.wait()


@pytest.fixture
def keptn_root(tmp_path: Path) -> Path:
    root = tmp_path / "keptn"
    (root / "hardening" / "helloservice" / "locust").mkdir(parents=True)
    return root


@pytest.fixture
def make_ctx(keptn_root: Path) -> Callable[..., StageContext]:
    def make(lines: list[str] | None = None, **settings: Any) -> StageContext:
        return StageContext(
            project="sockshop", service="helloservice", stage="hardening", image="helloserver",
            tag="v0.1.1", root=keptn_root, workdir=keptn_root / ".keptn",
            settings=Settings(**settings),
            progress=(lines.append if lines is not None else None),
        )

    return make


def write_locust(root: Path, text: str = LOCUSTFILE, conf: str | None = None) -> Path:
    folder = root / "hardening" / "helloservice" / "locust"
    path = folder / "locustfile.py"
    path.write_text(text)
    if conf is not None:
        (folder / "locust.conf").write_text(conf)
    return path
