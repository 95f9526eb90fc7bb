"""The one small hierarchy of errors a user can cause.

Every error renders as a single line: ``<file>: <field>: <message>`` (parts that are unknown
are left out). Internal bugs are ordinary exceptions and may still traceback.
"""

from __future__ import annotations


class KeptnError(Exception):
    """A mistake the user can fix: bad input, an unreachable dependency, a failed task."""

    def __init__(self, message: str, *, file: str | None = None, field: str | None = None) -> None:
        self.message = " ".join(str(message).split())
        self.file = file
        self.field = field
        super().__init__(self.__str__())

    def __str__(self) -> str:
        parts = [p for p in (self.file, self.field) if p]
        parts.append(self.message)
        return ": ".join(parts)


class SpecError(KeptnError):
    """A malformed shipyard.yaml, slo.yaml or sli.yaml (or mapping given in their place)."""


class ConfigError(KeptnError):
    """A bad plugin setting (command-line option or ini key)."""


class ProviderError(KeptnError):
    """An SLI provider could not deliver (Prometheus down, bad credentials, ...)."""


class DeployError(KeptnError):
    """A deployment, release or rollback task failed."""


class LoadError(KeptnError):
    """The load-test task failed (locustfile crashed, host refused connections, ...)."""


class HistoryError(KeptnError):
    """The evaluation history store could not be read or written."""
