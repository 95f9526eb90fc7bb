"""The project both delivery benchmarks run: the example project with a generated shipyard of
three blue/green stages (dev, staging, production), each deploying, loading for ``load``
seconds, evaluating the tutorial's SLOs and releasing; staging and production are triggered by
the stage before. Shared by ``bench_delivery.py`` (the plugin) and ``floor_delivery.py`` (the
same work by hand)."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STAGES = ("dev", "staging", "production")
PROJECT = "pod-tato-head"
SERVICE = "helloservice"
TAG = "v0.1.1"


@contextlib.contextmanager
def stopping_all(base: Path) -> Iterator[None]:
    """However a benchmark ends (an error, Ctrl-C), what its runs keep running (primaries, a
    kept Prometheus) is stopped before the project folders below ``base`` are removed."""
    try:
        yield
    finally:
        for project in sorted(base.glob("p*")):
            subprocess.run([sys.executable, "-m", "pytest_keptn", "stop", "--state-dir",
                            "build/state"], cwd=project, capture_output=True, check=False)


def shipyard() -> str:
    lines = ['apiVersion: "spec.keptn.sh/0.2.0"', 'kind: "Shipyard"',
             'metadata: {name: "shipyard-sockshop"}', "spec:", "  stages:"]
    previous = None
    for stage in STAGES:
        lines += [f'    - name: "{stage}"', "      sequences:", '        - name: "delivery"']
        if previous:
            lines += ["          triggeredOn:", f'            - event: "{previous}.delivery.finished"']
        lines += ["          tasks:",
                  '            - {name: "deployment", properties: {deploymentstrategy: "blue_green_service"}}',
                  '            - {name: "test", properties: {teststrategy: "performance"}}',
                  '            - {name: "evaluation"}', '            - {name: "release"}']
        previous = stage
    return "\n".join(lines) + "\n"


def make_project(base: Path, n: int, load: float) -> Path:
    """A fresh copy (its own build/ and state) with the three stages."""
    target = base / f"p{n}"
    shutil.copytree(REPO / "example_project", target,
                    ignore=shutil.ignore_patterns("build", "__pycache__"))
    keptn = target / "keptn"
    service = keptn / "hardening" / SERVICE
    conf = service / "locust" / "locust.conf"
    conf.write_text(conf.read_text().replace("run-time = 10s", f"run-time = {load:g}s"))
    for stage in STAGES:
        shutil.copytree(service, keptn / stage / SERVICE)
    shutil.rmtree(keptn / "hardening")
    (keptn / "shipyard.yaml").write_text(shipyard())
    return target
