"""Locust is an extra: a stage that would run its locustfile without it stops at configure time
with one line naming the ``pip install`` that fixes it (tests/security/test_delivery_inputs.py),
but only when Locust would run. ``sys.modules["locust"] = None`` in the project's conftest is how
"not installed" looks to the plugin (``importlib.util.find_spec`` says None);
scripts/check_packaging.sh checks the same in a real core-only venv."""

from __future__ import annotations

import pytest

from tests.plugin.conftest import FAKES, Project

NO_LOCUST = "import sys\nsys.modules['locust'] = None  # as if Locust were not installed\n"
# an SLI provider that does not declare its names: the objectives' names are not checked
ANY_SLI = "def pytest_keptn_get_sli(ctx, indicators, window, deployment, load):\n    return []\n"
PIP = "pip install 'pytest-keptn[locust]'"


@pytest.mark.parametrize("args", [("--keptn-deployer=none",), ("--keptn-timeframe=5m",)],
                         ids=["no-deployer", "evaluation-only"])
def test_no_load_no_locust_needed(project: Project, args: tuple[str, ...]) -> None:
    project.write("keptn/hardening/svc/locust/locustfile.py", "")
    project.write("conftest.py", NO_LOCUST + ANY_SLI)
    result = project.run("--keptn-stage=hardening", "--keptn-tag=v1", "--collect-only", *args)
    assert result.ret == pytest.ExitCode.OK, result.stderr.str()


def test_another_load_driver_needs_no_locust(project: Project) -> None:
    project.write("keptn/hardening/svc/locust/locustfile.py", "")
    project.write("conftest.py", NO_LOCUST + FAKES)
    result = project.run("--keptn-stage=hardening", "--keptn-tag=v1")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str() + result.stderr.str()


def test_a_driver_that_declines_leaves_the_load_to_locust_which_says_what_to_install(
    project: Project,
) -> None:
    project.write("keptn/hardening/svc/locust/locustfile.py", "")
    declining = FAKES.replace("def pytest_keptn_run_load(ctx, url, properties):",
                              "def pytest_keptn_run_load(ctx, url, properties):\n    return None")
    project.write("conftest.py", NO_LOCUST + declining)
    result = project.run("--keptn-stage=hardening", "--keptn-tag=v1")
    out = result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED, out
    assert PIP in out and "Traceback" not in out
