"""pytest hooks of pytest-keptn (placeholder, being written)."""

from __future__ import annotations
