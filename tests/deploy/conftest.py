from __future__ import annotations

import os
import sys
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from pytest_keptn.config import Settings
from pytest_keptn.deploy import local
from pytest_keptn.model import StageContext, TargetRegistry
from pytest_keptn.system.processes import default_registry

EXAMPLE = Path(__file__).resolve().parents[2] / "example_project"
COMMAND = "{python} -m helloserver --port {port} --tag {tag}"


class RecordingTargets(TargetRegistry):
    def __init__(self) -> None:
        self.jobs: dict[str, str] = {}

    def register(self, job: str, address: str, labels: Mapping[str, str] | None = None) -> None:
        self.jobs[job] = address

    def unregister(self, job: str) -> None:
        self.jobs.pop(job, None)


def get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read().decode()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A Keptn folder whose project folder holds the demo service (as a symlink)."""
    (tmp_path / "helloserver").symlink_to(EXAMPLE / "helloserver")
    root = tmp_path / "keptn"
    root.mkdir()
    return root


@pytest.fixture
def make_ctx(project: Path) -> Iterator[Callable[..., StageContext]]:
    targets = RecordingTargets()
    workdir = project / ".keptn"

    def make(tag: str = "v0.1.1", stage: str = "hardening", **settings: Any) -> StageContext:
        values: dict[str, Any] = {"local_command": COMMAND, "deploy_timeout": 15.0}
        values.update(settings)
        return StageContext(
            project="sockshop", service="helloservice", stage=stage, image="helloserver",
            tag=tag, root=project, workdir=workdir, settings=Settings(**values),
            targets=targets, progress=lambda line: None,
        )

    yield make
    local.stop_all(workdir)
    local.cleanup_session(default_registry())


def driver_env() -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[2])
    return dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""),
                PYTHONUNBUFFERED="1")


PYTHON = sys.executable
