"""A hung locustfile and a busy master port (issue 14 items 13 and 14): the load fails within
``--keptn-locust-hang-timeout`` naming the phase that hung, or in one line naming the port."""

from __future__ import annotations

import socket
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_keptn.config import Settings
from pytest_keptn.errors import LoadError
from pytest_keptn.load.locust_driver import run_locust
from pytest_keptn.model import StageContext
from tests.load.conftest import LOCUSTFILE as USER
from tests.load.conftest import start_helloserver

pytestmark = pytest.mark.slow



@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    from pytest_keptn.system import processes as procs

    server, address = start_helloserver()
    yield address
    procs.stop_pid(server.pid)
    server.wait()


def _ctx(tmp_path: Path, **settings: object) -> StageContext:
    return StageContext(
        project="demo", service="svc", stage="hardening", image="svc", tag="v1",
        root=tmp_path, workdir=tmp_path / ".keptn", settings=Settings(**settings),  # type: ignore[arg-type]
    )


def _load(tmp_path: Path, url: str, locustfile: str, **settings: object) -> tuple[str, float]:
    path = tmp_path / "locustfile.py"
    path.write_text(textwrap.dedent(locustfile))
    started = time.monotonic()
    with pytest.raises(LoadError) as info:
        run_locust(_ctx(tmp_path, **settings), url, path, users=1, spawn_rate=10, run_time=1)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message, message
    return message, time.monotonic() - started


def test_locustfile_hanging_at_import(tmp_path: Path, url: str) -> None:
    message, seconds = _load(tmp_path, url, "import time\ntime.sleep(3600)\n" + USER,
                             locust_hang_timeout=5.0)
    assert "Locust hung importing Locust and the locustfile for more than 5s" in message
    assert "--keptn-locust-hang-timeout=5" in message
    assert seconds < 40, seconds  # was run time + 180 s


def test_locustfile_hanging_in_on_stop(tmp_path: Path, url: str) -> None:
    hung = USER + """
    def on_stop(self):
        import time
        while True:
            time.sleep(1)
"""
    message, seconds = _load(tmp_path, url, hung, locust_hang_timeout=15.0)
    assert "Locust hung stopping the users (a User's on_stop" in message, message
    assert seconds < 60, seconds


def test_master_port_in_use(tmp_path: Path, url: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        message, _ = _load(tmp_path, url, USER, locust_master_bind=f"127.0.0.1:{port}")
    assert f"port {port} is in use (--keptn-locust-master-bind)" in message, message
