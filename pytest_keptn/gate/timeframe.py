"""The evaluation time window (§9); it lives in ``spec.timeframe``, where the shipyard checks
use it at collection time too."""

from __future__ import annotations

from pytest_keptn.spec.timeframe import parse_go_duration, parse_keptn_time, resolve_window

__all__ = ["parse_go_duration", "parse_keptn_time", "resolve_window"]
