"""Locust's per-endpoint statistics of a load (requests, failures, median/p95/p99, rps per
name), as the rows the terminal summary and the HTML report show after the load.

Input is the ``details["endpoints"]`` list the Locust driver stores in its ``LoadResult`` (one
mapping per Locust stats entry), so stored results render the same.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

HEADER = ("endpoint", "requests", "failures", "median ms", "p95 ms", "p99 ms", "rps")


def _number(value: object, digits: int = 0) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return "–"
    return f"{value:.{digits}f}"


def endpoint_rows(endpoints: Sequence[Mapping[str, Any]] | None) -> list[tuple[str, ...]]:
    """One row per endpoint (method and name), busiest first, then the total when there are
    several: cells are text, in the order of :data:`HEADER`."""
    rows: list[tuple[str, ...]] = []
    entries = [e for e in endpoints or () if isinstance(e, Mapping)]
    entries.sort(key=lambda e: (-int(e.get("requests") or 0), str(e.get("name"))))
    for e in entries:
        name = " ".join(str(p) for p in (e.get("method"), e.get("name")) if p)
        failures = int(e.get("failures") or 0)
        requests = int(e.get("requests") or 0)
        share = f" ({100 * failures / requests:.1f}%)" if failures and requests else ""
        rows.append((name or "?", str(requests), f"{failures}{share}", _number(e.get("p50_ms")),
                     _number(e.get("p95_ms")), _number(e.get("p99_ms")),
                     _number(e.get("rps"), 1)))
    return rows


def text_table(rows: Sequence[tuple[str, ...]], header: tuple[str, ...] = HEADER,
               indent: str = "  ", width: int = 48) -> list[str]:
    """Aligned plain-text lines (numbers right-aligned, the first column cut at ``width``)."""
    if not rows:
        return []
    cells = [header, *[(r[0][:width], *r[1:]) for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    out = []
    for n, row in enumerate(cells):
        parts = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:],
                                                                          strict=True)]
        out.append(indent + "  ".join(parts).rstrip())
        if n == 0:
            out.append(indent + "  ".join("-" * w for w in widths))
    return out
