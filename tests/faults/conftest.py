"""The small pytester project of tests/plugin (stand-in deployer and SLI provider)."""

from tests.plugin.conftest import project  # noqa: F401
