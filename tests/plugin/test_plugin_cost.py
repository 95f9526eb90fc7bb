"""The plugin costs nothing when no stage is selected: light imports, no session plugins."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("locust", "gevent", "httpx", "yaml")
# What only a selected stage needs; importing any of it up front would cost every test suite.
STAGE_ONLY = (
    "pytest_keptn.session",
    "pytest_keptn.run",
    "pytest_keptn.system",
    "pytest_keptn.spec",
    "pytest_keptn.gate",
    "pytest_keptn.prometheus",
    "pytest_keptn.deploy",
    "pytest_keptn.load",
    "pytest_keptn.report",
    "sqlite3",
)
KEPTN_PLUGINS = ("keptn-session", "keptn-items", "keptn-ordering", "keptn-deployer-local", "keptn-load-locust",
                 "keptn-sli-prometheus", "keptn-sli-locust")


def _imported_after(statement: str) -> set[str]:
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    return set(json.loads(out.splitlines()[-1]))


def _offenders(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


def test_importing_the_plugin_imports_no_load_or_http_stack() -> None:
    modules = _imported_after("import pytest_keptn.plugin")
    assert _offenders(modules, HEAVY) == [], "pytest_keptn.plugin must import these lazily"
    assert _offenders(modules, STAGE_ONLY) == [], "import these only when a stage is selected"


def test_a_session_without_a_stage_registers_nothing(pytester: pytest.Pytester) -> None:
    names = json.dumps(KEPTN_PLUGINS)
    stage_only = json.dumps((*STAGE_ONLY, "locust", "gevent"))
    pytester.makepyfile(
        test_plain=f"""
        import sys

        def test_nothing_of_keptn_is_active(request):
            pm = request.config.pluginmanager
            assert pm.has_plugin("keptn"), "the plugin is installed"
            registered = [n for n in {names} if pm.get_plugin(n) is not None]
            assert registered == []
            loaded = [m for m in sys.modules
                      if any(m == n or m.startswith(n + ".") for n in {stage_only})]
            assert loaded == []
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=120)
    result.assert_outcomes(passed=1)
    assert "keptn" not in result.stdout.str().split("collected")[1]
