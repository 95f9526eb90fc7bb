"""The plugin tests' small Keptn project, for the security tests that run whole sessions."""

from tests.plugin.conftest import project  # noqa: F401
