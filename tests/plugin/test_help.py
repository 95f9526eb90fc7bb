"""``pytest --help`` as a newcomer reads it: value names that say what to type, every default
shown, every placeholder of the local deployer's command listed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_keptn.config import OPTIONS, Settings
from pytest_keptn.deploy.local import _command
from pytest_keptn.model import StageContext


@pytest.fixture(scope="module")
def help_text(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = subprocess.run([sys.executable, "-m", "pytest", "--help", "-p", "no:cacheprovider"],
                         cwd=tmp_path_factory.mktemp("help"), capture_output=True, text=True,
                         timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert out.returncode == 0, out.stderr
    return out.stdout[out.stdout.index("Keptn quality gates"):]


def option_help(help_text: str, name: str) -> str:
    """The help of ``--keptn-<name>``, joined onto one line."""
    match = re.search(rf"^  --keptn-{name}[= ].*?(?=^  --|^\S|\Z)", help_text, re.M | re.S)
    assert match, name
    return " ".join(match.group(0).split())


def test_value_names_say_what_to_type(help_text: str) -> None:
    assert "=KEPTN_" not in help_text
    expected = {"prometheus-url": "URL", "prometheus-password-env": "VAR", "query-timeout": "SECONDS",
                "state-dir": "PATH", "locust-workers": "N", "keep-primaries": "[BOOL]"}
    for name, metavar in expected.items():
        assert option_help(help_text, name).startswith(f"--keptn-{name}={metavar} "), name


def test_every_default_is_shown(help_text: str) -> None:
    for option in OPTIONS:
        if option.default not in (None, ""):
            assert "default:" in option_help(help_text, option.name), option.name
    keep = option_help(help_text, "keep-primaries")
    assert "(default: true)" in keep and "after pytest exits" in keep and "pytest_keptn stop" in keep


def test_every_placeholder_of_the_local_command_is_listed_and_accepted(
    help_text: str, tmp_path: Path,
) -> None:
    listed = set(re.findall(r"\{(\w+)\}", option_help(help_text, "local-command")))
    assert {"image", "tag", "port", "stage", "service", "project", "python"} <= listed
    template = "echo " + " ".join(f"{{{name}}}" for name in sorted(listed))
    ctx = StageContext(project="demo", service="svc", stage="hardening", image="img", tag="v1",
                       root=tmp_path, workdir=tmp_path, settings=Settings(local_command=template))
    argv = _command(ctx, "img", "v1", 8080)
    assert "demo" in argv and "8080" in argv and not [a for a in argv if "{" in a]
