"""A three-stage delivery gets each stage's load driver ready ahead (issue 17): when the
embedded Prometheus starts, for the first three stages with a test task, so that a later
stage's Locust runner has imported Locust long before its test task (during the first stage's
discovery wait, not during the stage before's evaluation and the stage's own deployment); and
after each test task only for the stages still to come, none after the last."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

from delivery_project import make_project  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus not installed"),
]

RECORDER = '''
import os

def pytest_keptn_prepare_load(ctx):
    with open(os.path.join(os.path.dirname(__file__), "prepared.txt"), "a") as out:
        out.write(ctx.stage + "\\n")

def pytest_keptn_deploy(ctx, properties):
    with open(os.path.join(os.path.dirname(__file__), "prepared.txt"), "a") as out:
        out.write("deploy " + ctx.stage + "\\n")
'''


def test_each_later_stage_gets_its_load_driver_ready_ahead(tmp_path: Path) -> None:
    # the project the delivery benchmarks run: dev, staging, production, each triggered by
    # the one before; 2 s of load each
    project = make_project(tmp_path, 1, 2)
    (project / "conftest.py").write_text(RECORDER)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "GITHUB_"))}
    try:
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--keptn-stage=all",
             "--keptn-tag=v0.1.1"],
            cwd=project, env=env, capture_output=True, text=True, timeout=180, check=False)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
        calls = (project / "prepared.txt").read_text().split("\n")[:-1]
        # ahead of everything: all three; after dev's test: the two after it (ready already);
        # after staging's: production; after production's: nothing
        assert calls == ["dev", "staging", "production", "deploy dev",
                         "staging", "production", "deploy staging",
                         "production", "deploy production"], calls
    finally:
        subprocess.run([sys.executable, "-m", "pytest_keptn", "stop", "--state-dir",
                        str(project / "build" / "state")], cwd=project, env=env,
                       capture_output=True, timeout=60, check=False)
