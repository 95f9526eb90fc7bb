from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_keptn.config import Settings
from pytest_keptn.deploy.helm import HelmDeployer
from pytest_keptn.errors import DeployError
from pytest_keptn.model import Deployment, StageContext

BG: dict[str, object] = {"deploymentstrategy": "blue_green_service"}

STANDIN = """#!{python}
import json, os, sys
with open(os.environ["HELM_RECORD"], "a") as out:
    out.write(json.dumps(sys.argv[1:]) + "\\n")
if os.environ.get("HELM_FAIL_ON") == sys.argv[1]:
    sys.stderr.write(os.environ.get("HELM_STDERR", "Error: boom") + "\\n")
    sys.exit(int(os.environ.get("HELM_EXIT", "1")))
print("ok")
"""


@pytest.fixture
def helm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A recording stand-in ``helm`` first on PATH; returns the file with one argv per line."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "helm"
    exe.write_text(STANDIN.format(python=sys.executable))
    exe.chmod(0o755)
    record = tmp_path / "helm-calls.jsonl"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("HELM_RECORD", str(record))
    return record


def calls(record: Path) -> list[list[str]]:
    if not record.exists():
        return []
    return [json.loads(line) for line in record.read_text().splitlines()]


def ctx(tmp_path: Path, **settings: object) -> StageContext:
    return StageContext(
        project="sockshop", service="carts", stage="hardening", image="docker.io/keptn/carts",
        tag="0.12.1", root=tmp_path / "keptn", workdir=tmp_path / "keptn" / ".keptn",
        settings=Settings(helm_timeout="3m", **settings),  # type: ignore[arg-type]
    )


def upgrade(release: str, chart: str) -> list[str]:
    return ["upgrade", "--install", release, chart, "--namespace", "sockshop-hardening",
            "--create-namespace", "--set", "image.repository=docker.io/keptn/carts",
            "--set", "image.tag=0.12.1", "--wait", "--timeout", "3m"]


def test_blue_green_command_contract(helm: Path, tmp_path: Path) -> None:
    c = ctx(tmp_path)
    chart = str(tmp_path / "helm-charts" / "carts")
    deployment = HelmDeployer().pytest_keptn_deploy(c, BG)
    assert calls(helm) == [upgrade("carts", chart)]
    assert deployment.strategy == "blue_green_service"
    assert deployment.deployment_names == ("canary",)
    assert deployment.url == "http://carts.sockshop-hardening.svc.cluster.local"

    assert HelmDeployer().pytest_keptn_release(c, deployment) is True
    assert calls(helm)[1:] == [upgrade("carts-primary", chart),
                               ["uninstall", "carts", "--namespace", "sockshop-hardening"]]

    assert "primary keeps serving" in str(HelmDeployer().pytest_keptn_rollback(c, deployment))
    assert calls(helm)[3:] == [["uninstall", "carts", "--namespace", "sockshop-hardening"]]


def test_direct_rollback_and_templates(helm: Path, tmp_path: Path) -> None:
    c = ctx(tmp_path, helm_chart="charts/carts",
            helm_url_template="http://{service}.{namespace}:8080/{release}")
    deployment = HelmDeployer().pytest_keptn_deploy(c, {"deploymentstrategy": "direct"})
    assert deployment.deployment_names == ("direct",)
    assert deployment.url == "http://carts.sockshop-hardening:8080/carts"
    assert HelmDeployer().pytest_keptn_release(c, deployment) is True  # nothing to promote
    what = str(HelmDeployer().pytest_keptn_rollback(c, deployment))
    assert "the previous build serves hardening again" in what and "canary" not in what
    assert calls(helm) == [
        ["status", "carts", "--namespace", "sockshop-hardening"],
        upgrade("carts", "charts/carts"),
        ["rollback", "carts", "--namespace", "sockshop-hardening", "--wait", "--timeout", "3m"],
    ]


def test_direct_rollback_of_a_first_build_uninstalls_it(
        helm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No earlier release to return to: the failed build is removed and the message says
    that the stage now serves nothing (issue 12 point 9)."""
    monkeypatch.setenv("HELM_FAIL_ON", "status")  # helm status: release not found
    monkeypatch.setenv("HELM_STDERR", "Error: release: not found")
    c = ctx(tmp_path, helm_chart="charts/carts")
    deployment = HelmDeployer().pytest_keptn_deploy(c, {"deploymentstrategy": "direct"})
    what = str(HelmDeployer().pytest_keptn_rollback(c, deployment))
    assert what.endswith("no earlier build to return to: hardening now serves nothing")
    assert "canary" not in what
    assert calls(helm)[-1] == ["uninstall", "carts", "--namespace", "sockshop-hardening"]


@pytest.mark.parametrize(
    ("fail_on", "step"),
    [("upgrade", "deploy"), ("uninstall", "release"), ("uninstall", "rollback")],
)
def test_failures_carry_helm_stderr(
    helm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_on: str, step: str
) -> None:
    monkeypatch.setenv("HELM_FAIL_ON", fail_on)
    monkeypatch.setenv("HELM_STDERR", "Error: UPGRADE FAILED: another operation is in progress")
    deployer = HelmDeployer()
    c = ctx(tmp_path)
    bg = Deployment(strategy="blue_green_service", url="http://x")
    with pytest.raises(DeployError) as info:
        if step == "deploy":
            deployer.pytest_keptn_deploy(c, BG)
        elif step == "release":
            deployer.pytest_keptn_release(c, bg)
        else:
            deployer.pytest_keptn_rollback(c, bg)
    message = str(info.value)
    assert "another operation is in progress" in message
    assert f"helm {fail_on} exited with 1" in message
    assert "\n" not in message


def test_no_helm_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DeployError, match="helm executable is not on PATH"):
        HelmDeployer().pytest_keptn_deploy(ctx(tmp_path), BG)


def _cluster_reason() -> str | None:
    if shutil.which("helm") is None:
        return "no helm executable on PATH (the Helm end-to-end test needs helm and a cluster)"
    kubeconfig = Path(os.environ.get("KUBECONFIG", Path.home() / ".kube" / "config"))
    if not kubeconfig.is_file():
        return f"no kubeconfig at {kubeconfig} (the Helm end-to-end test needs a cluster)"
    if not os.environ.get("PYTEST_KEPTN_HELM_CHART"):
        return "set PYTEST_KEPTN_HELM_CHART to a chart folder to run the Helm end-to-end test"
    return None


@pytest.mark.slow
@pytest.mark.skipif(_cluster_reason() is not None, reason=str(_cluster_reason()))
def test_helm_end_to_end_against_a_real_cluster(tmp_path: Path) -> None:
    c = StageContext(
        project="pytestkeptn", service="hello", stage="e2e",
        image=os.environ.get("PYTEST_KEPTN_HELM_IMAGE", "nginx"),
        tag=os.environ.get("PYTEST_KEPTN_HELM_TAG", "latest"),
        root=tmp_path, workdir=tmp_path / ".keptn",
        settings=Settings(helm_chart=os.environ["PYTEST_KEPTN_HELM_CHART"]),
    )
    deployer = HelmDeployer()
    deployment = deployer.pytest_keptn_deploy(c, BG)
    try:
        assert deployer.pytest_keptn_release(c, deployment) is True
    finally:
        subprocess.run(["helm", "uninstall", "hello-primary", "--namespace", "pytestkeptn-e2e",
                        "--ignore-not-found"], check=False)
