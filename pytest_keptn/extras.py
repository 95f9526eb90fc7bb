"""The optional parts of pytest-keptn (``pip install 'pytest-keptn[locust]'`` ...) and the one
line that says which ``pip install`` brings a missing one.

The core (pytest, pluggy, PyYAML, httpx) runs gates against Prometheus, deploys, releases and
writes history and events. Locust brings Flask, gevent, ZeroMQ and its own pytest plugin (the
fixtures ``session``/``fastsession`` and ``--host`` in every pytest run of the environment), so it
is installed only where a stage drives load with it. Nothing here imports an extra: a spec lookup
tells whether it is installed.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.util import find_spec

from pytest_keptn.errors import ConfigError


@dataclass(frozen=True)
class Extra:
    name: str  # pytest-keptn[<name>]
    module: str  # the top-level module it provides

    @property
    def installed(self) -> bool:
        return find_spec(self.module) is not None

    @property
    def pip(self) -> str:
        return f"pip install 'pytest-keptn[{self.name}]'"


LOCUST = Extra("locust", "locust")


def require(extra: Extra, what: str, *, file: str | None = None, field: str | None = None) -> None:
    """ConfigError naming ``what`` needs the extra and the ``pip install`` that brings it."""
    if not extra.installed:
        raise ConfigError(f"{what}, but {extra.module} is not installed: {extra.pip}",
                          file=file, field=field)
