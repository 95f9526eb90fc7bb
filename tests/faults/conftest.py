"""The small pytester project of tests/plugin (stand-in deployer and SLI provider), and the
real project whose build drains forever (``runs.DRAINER``)."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.plugin.conftest import project  # noqa: F401

from .runs import make_drainer_project, stop_all


@pytest.fixture
def drainer_project(tmp_path: Path) -> Iterator[Path]:
    path = make_drainer_project(tmp_path)
    try:
        yield path
    finally:
        stop_all(path)
