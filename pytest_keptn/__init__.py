"""pytest-keptn: Keptn 0.8 quality gates inside pytest."""

from __future__ import annotations

from pytest_keptn.errors import KeptnError

__all__ = ["KeptnError"]
