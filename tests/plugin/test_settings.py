"""One declaration of every setting: options and typed ini keys come from ``Settings``."""

from __future__ import annotations

from dataclasses import fields

import pytest

from pytest_keptn.config import OPTIONS, Settings, dest
from tests.plugin.conftest import Project


def test_every_settings_field_is_an_option_with_its_default() -> None:
    assert [dest(o) for o in OPTIONS] == [f"keptn_{f.name}" for f in fields(Settings)]
    defaults = Settings()
    for option in OPTIONS:
        assert getattr(defaults, option.field) == option.default
    kinds = {o.name: o.kind for o in OPTIONS}
    assert (kinds["fail-on-warning"], kinds["locust-users"], kinds["scrape-interval"],
            kinds["stage"]) == ("bool", "int", "float", "string")


def test_a_bad_bool_is_a_usage_error(project: Project) -> None:
    result = project.run("--keptn-stage=hardening", "--keptn-tag=v1", "--keptn-fail-on-warning=ture")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--keptn-fail-on-warning: expected true or false, got 'ture'" in result.stderr.str()
    assert project.calls() == []


def test_a_bad_number_is_a_usage_error(project: Project) -> None:
    result = project.run("--keptn-stage=hardening", "--keptn-tag=v1", "--keptn-locust-users=many")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--keptn-locust-users: expected an int, got 'many'" in result.stderr.str()


def test_typed_keys_in_pytest_native_toml_table(project: Project) -> None:
    if int(pytest.__version__.split(".")[0]) < 9:
        pytest.skip("the native [tool.pytest] table is pytest 9's")
    (project.path / "pytest.ini").unlink()
    project.write("pyproject.toml", """\
        [tool.pytest]
        keptn_root = "keptn"
        keptn_project = "demo"
        keptn_service = "svc"
        keptn_image = "example/svc"
        keptn_history = "build/history.sqlite"
        keptn_state_dir = "build/state"
        keptn_fail_on_warning = true
        keptn_locust_users = 5
        keptn_scrape_interval = 0.5
        """)
    # v3 is a warning gate: keptn_fail_on_warning = true makes it fail the session
    result = project.run("--keptn-stage=hardening", "--keptn-tag=v3")
    assert result.ret == 1, result.stdout.str() + result.stderr.str()
    assert "warning (--keptn-fail-on-warning)" in result.stdout.str()
