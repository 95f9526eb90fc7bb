"""Setup mistakes and hostile build names of a delivery (issue 13 point 2, issue 14 item 12).

Each is a usage error (exit 4) in one line at configure time, before anything is deployed or
recorded; and a value pasted into an ``sh -c`` command template stays one shell word.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_keptn.config import Settings
from pytest_keptn.deploy import local
from pytest_keptn.model import StageContext
from pytest_keptn.system.processes import default_registry
from tests.plugin.conftest import INI, SHIPYARD, SLO

EXAMPLE = Path(__file__).resolve().parents[2] / "example_project"



@pytest.fixture
def builtin_project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A Keptn project with the built-in deployer and load driver (no stand-in hooks)."""
    pytester.makefile(".ini", pytest=INI)
    (pytester.path / "keptn" / "hardening" / "svc" / "locust").mkdir(parents=True)
    (pytester.path / "keptn" / "shipyard.yaml").write_text(SHIPYARD)
    (pytester.path / "keptn" / "hardening" / "svc" / "slo.yaml").write_text(SLO)
    (pytester.path / "keptn" / "hardening" / "svc" / "locust" / "locustfile.py").write_text(
        "from locust import HttpUser\n")
    return pytester


def _usage_error(pytester: pytest.Pytester, *args: str) -> str:
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--keptn-stage=hardening",
                                           *args, timeout=120)
    err = result.stderr.str()
    assert result.ret == 4, result.stdout.str() + err
    lines = [line for line in err.splitlines() if "pytest-keptn" in line]
    assert len(lines) == 1, err
    assert "Traceback" not in err + result.stdout.str()
    # nothing started, nothing recorded
    assert not (pytester.path / "build").exists(), list((pytester.path / "build").rglob("*"))
    return lines[0]


def test_local_deployer_without_command(builtin_project: pytest.Pytester) -> None:
    line = _usage_error(builtin_project, "--keptn-tag=v1")
    assert "--keptn-local-command" in line and "stage hardening" in line


def test_deployment_without_tag(builtin_project: pytest.Pytester) -> None:
    line = _usage_error(builtin_project, "--keptn-local-command={python} -m svc --port {port}")
    assert "--keptn-tag" in line and "no tag" in line


def test_locustfile_without_locust(builtin_project: pytest.Pytester) -> None:
    # the standard way to make a module unimportable: None in sys.modules
    builtin_project.makeconftest("import sys\nsys.modules['locust'] = None\n")
    line = _usage_error(builtin_project, "--keptn-tag=v1",
                        "--keptn-local-command={python} -m svc --port {port}")
    assert "locustfile.py" in line and "locust is not installed" in line
    assert "pip install 'pytest-keptn[locust]'" in line


@pytest.mark.parametrize(("option", "value"), [
    ("--keptn-tag", "v1$(touch PWNED)"),
    ("--keptn-tag", "v1;touch PWNED"),
    ("--keptn-tag", "-rf"),
    ("--keptn-tag", "x" * 129),
    ("--keptn-image", "Example/Svc"),
    ("--keptn-image", "svc`touch PWNED`"),
    ("--keptn-image", "registry:5000/../svc"),
])
def test_tag_and_image_must_be_image_references(builtin_project: pytest.Pytester, option: str,
                                                value: str) -> None:
    args = [f"{option}={value}", "--keptn-local-command={python} -m svc --port {port}"]
    if option != "--keptn-tag":
        args.append("--keptn-tag=v1")
    line = _usage_error(builtin_project, *args)
    assert option in line and "is not a valid image" in line
    assert not (builtin_project.path / "PWNED").exists()


@pytest.mark.parametrize("image", ["svc", "example/svc", "gabrieltanner/hello-server",
                                   "registry.example.com:5000/team/my_svc", "svc:1.0",
                                   "ghcr.io/a/b@sha256:" + "0" * 64])
def test_valid_image_references_pass(image: str) -> None:
    from pytest_keptn.deploy.checks import check_build

    check_build(image, "v0.1.1-rc.1_2")


@pytest.mark.slow
def test_shell_template_placeholders_are_quoted(tmp_path: Path) -> None:
    """A tag that reaches an ``sh -c`` template unvalidated (a plugin or API caller) stays one
    word: nothing it contains runs."""
    (tmp_path / "helloserver").symlink_to(EXAMPLE / "helloserver")
    root = tmp_path / "keptn"
    root.mkdir()
    marker = tmp_path / "PWNED"
    ctx = StageContext(
        project="demo", service="svc", stage="hardening", image="svc",
        tag=f"v1$(touch {marker})';touch {marker};'", root=root, workdir=root / ".keptn",
        settings=Settings(local_command="sh -c 'exec {python} -m helloserver --port {port} "
                          "--tag {tag}'", deploy_timeout=20.0),
    )
    try:
        deployment = local.LocalDeployer().pytest_keptn_deploy(
            ctx, {"deploymentstrategy": "direct"})
        assert deployment.url
    finally:
        local.stop_all(ctx.workdir)
        local.cleanup_session(default_registry())
    assert not marker.exists()


@pytest.mark.parametrize(("template", "script"), [
    (["sh", "-c", "x"], 2), (["bash", "-lc", "x"], 2), (["sh", "-o", "pipefail", "-c", "x"], 4),
    (["/bin/sh", "-e", "-c", "x"], 3), (["env", "A=1", "sh", "-c", "x"], 4),
    (["sh", "x.sh", "{tag}"], None), (["python", "-c", "x"], None),
])
def test_which_template_word_is_a_shell_script(template: list[str], script: int | None) -> None:
    assert local._shell_script_index(template) == script


@pytest.mark.slow
def test_health_path_answering_404_fails_the_deployment_at_once(tmp_path: Path) -> None:
    """Through a real session: the build is up but answers 404 on the health path; the
    deployment fails at once with the hint, long before --keptn-deploy-timeout (issue 13)."""
    from tests.faults.runs import Run, make_project, stop_all

    project = make_project(tmp_path / "project")
    try:
        run = Run(project, "--keptn-tag=v0.1.1", "--keptn-health-path=/no-such-page",
                  "--keptn-deploy-timeout=600")
        assert run.finish(timeout=300) == 1, run.out[-4000:]
    finally:
        stop_all(project)
    failed = [line for line in run.out.splitlines() if "deployment FAILED" in line]
    assert len(failed) == 1, run.out[-4000:]
    assert "/no-such-page answered HTTP 404" in failed[0]
    assert "set --keptn-health-path to a path it answers with 2xx" in failed[0]
    seconds = float(failed[0].split("deployment FAILED in ")[1].split("s:")[0])
    assert seconds < 60, failed[0]  # not the 600 s deploy timeout
    assert "Traceback" not in run.out
