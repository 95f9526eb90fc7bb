"""How a live-baseline comparison reads: one line per judged criterion (terminal, failure
message, markdown) and the two distributions side by side (two horizontal box plots in one
small SVG for the HTML report: no script, no external style, every text escaped)."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from pytest_keptn.gate.scoring import IndicatorResult


def judged_live(row: IndicatorResult) -> bool:
    """Whether the row's relative criteria were judged against the live baseline."""
    return bool(row.live)


def live_lines(row: IndicatorResult) -> list[str]:
    """A row's live comparison: one line per judged criterion, or the reason it compared with
    the history instead; none without the opt-in."""
    return [j.describe() for j in row.live] + ([row.live_note] if row.live_note else [])


def live_html(sli: str, row: IndicatorResult) -> str:
    """The report's comparison cell for a live comparison: the lines and the box plots."""
    lines = "".join(f'<div class="kq-live-line">{html.escape(line)}</div>'
                    for line in live_lines(row))
    return lines + box_plots(sli, row)


def _five(raw: Any) -> tuple[float, float, float, float, float]:
    a, b, c, d, e = (float(v) for v in raw)
    return a, b, c, d, e


def _box(
    y: float, q: tuple[float, float, float, float, float], x: Callable[[float], float], colour: str
) -> str:
    lo, q1, med, q3, hi = (x(v) for v in q)
    return (
        f'<line x1="{lo:.1f}" x2="{hi:.1f}" y1="{y + 7:.1f}" y2="{y + 7:.1f}" stroke="#555"/>'
        f'<rect x="{q1:.1f}" y="{y:.1f}" width="{max(q3 - q1, 1):.1f}" height="14" '
        f'fill="{colour}" stroke="#333"/>'
        f'<line x1="{med:.1f}" x2="{med:.1f}" y1="{y:.1f}" y2="{y + 14:.1f}" stroke="#000" '
        'stroke-width="2"/>'
    )


def box_plots(sli: str, row: IndicatorResult, *, width: int = 320) -> str:
    """An SVG with the canary's and the baseline's box plot (min, Q1, median, Q3, max) on one
    axis; none (a rate, or no live comparison): an empty string."""
    dist = row.live_distributions
    try:
        qc = _five(dist["canary"]["quartiles"])
        qb = _five(dist["baseline"]["quartiles"])
        nc, nb = int(dist["canary"]["n"]), int(dist["baseline"]["n"])
    except (KeyError, TypeError, ValueError):
        return ""
    low, high = min(qc[0], qb[0]), max(qc[4], qb[4])
    span = (high - low) or 1.0
    left, right = 70, width - 10

    def x(v: float) -> float:
        return left + (v - low) / span * (right - left)

    def label(v: float) -> str:
        return html.escape(f"{v:.4g}")

    title = html.escape(
        f"{sli}: canary median {qc[2]:.4g} (n={nc}), baseline median {qb[2]:.4g} (n={nb})"
    )
    return (
        f'<svg class="kq-live" width="{width}" height="64" viewBox="0 0 {width} 64" role="img" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{title}</title>'
        f'<text x="0" y="15" font-size="11">canary</text>{_box(4, qc, x, "#f5c6cb")}'
        f'<text x="0" y="37" font-size="11">baseline</text>{_box(26, qb, x, "#c3e6cb")}'
        f'<text x="{left}" y="60" font-size="10">{label(low)}</text>'
        f'<text x="{right}" y="60" font-size="10" text-anchor="end">{label(high)}</text></svg>'
    )
