"""Reading Prometheus' answers: one sample into an SLIResult, Keptn 0.8.7's reading of it,
the label text of a series and an outage as a typed error."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import replace

import httpx

from pytest_keptn.errors import ProviderError
from pytest_keptn.model import COMPAT_087, SLIResult, SLIStatus


def promql_string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid double-quoted PromQL literal


def regex_literal(text: str) -> str:
    """``text`` as an RE2 pattern matching exactly it (RE2 refuses escapes such as ``\\ ``)."""
    return re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\1", text)


class PrometheusOutage(ProviderError):
    """Prometheus could not be asked at all (unreachable, or the credentials were refused):
    ``status`` says which, as the typed outcome every query would have had."""

    def __init__(self, message: str, *, status: SLIStatus) -> None:
        super().__init__(message, field="prometheus")
        self.status = status

    def result(self, metric: str, query: str, compat: str | None = None) -> SLIResult:
        """What an indicator whose query could not be asked gets."""
        result = SLIResult(metric=metric, value=0.0, success=False, status=self.status,
                           message=f"{self.message}: {query}", query=query)
        return compat_087(result) if compat == COMPAT_087 else result


def is_prom_timeout(response: httpx.Response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("errorType") == "timeout"


def series_labels(metric: Mapping[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(metric.items())) + "}"


def sample(base: SLIResult, raw: object) -> SLIResult:
    try:
        value = float(str(raw))
    except ValueError:
        return replace(
            base,
            status=SLIStatus.INVALID,
            message=f"query returned an unparsable value {raw!r}: {base.query}",
        )
    if math.isnan(value) or math.isinf(value):
        return replace(
            base,
            status=SLIStatus.INVALID,
            message=f"query returned {raw} (no valid value): {base.query}",
        )
    return SLIResult(metric=base.metric, value=value, success=True, status=SLIStatus.VALUE,
                     query=base.query, warnings=base.warnings)


def compat_087(result: SLIResult) -> SLIResult:
    """Keptn 0.8.7's reading of a query result (semantics §10.4)."""
    status = result.status
    if status in (SLIStatus.NO_DATA,) or (
        status is SLIStatus.INVALID and "unparsable" in result.message
    ):
        note = f"compat 0.8.7: {result.message} -> counted as 0"
        return replace(result, value=0.0, success=True, status=SLIStatus.VALUE, message="",
                       warnings=(*result.warnings, note))
    if status is SLIStatus.INVALID:
        return replace(result, value=0.0, success=False, message="SLI value is NaN")
    if status is SLIStatus.QUERY_ERROR or status.outage:
        return replace(result, value=0.0, success=False, message="metric could not be received",
                       warnings=(*result.warnings, result.message))
    return result


