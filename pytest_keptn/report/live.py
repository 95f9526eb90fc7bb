"""How a live-baseline comparison reads: one line per judged criterion (terminal, failure
message, markdown) and the two distributions side by side (two horizontal box plots in one
small SVG for the HTML report, drawn by ``templates/live.html``: no script, no external style,
every text escaped by the template)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pytest_keptn.gate.scoring import IndicatorResult


def judged_live(row: IndicatorResult) -> bool:
    """Whether the row's relative criteria were judged against the live baseline."""
    return bool(row.live)


def live_lines(row: IndicatorResult) -> list[str]:
    """A row's live comparison: one line per judged criterion, or the reason it compared with
    the history instead; none without the opt-in."""
    return [j.describe() for j in row.live] + ([row.live_note] if row.live_note else [])


@dataclass(frozen=True, slots=True)
class Box:
    """One horizontal box plot in SVG coordinates (one decimal, as text)."""

    y: str
    whisker_y: str
    bottom: str
    low: str
    high: str
    q1: str
    width: str
    median: str


@dataclass(frozen=True, slots=True)
class BoxPlots:
    """The canary's and the baseline's box plots on one axis, with the axis' ends."""

    title: str
    width: int
    canary: Box
    baseline: Box
    left: int
    right: int
    low: str
    high: str


def _five(raw: Any) -> tuple[float, float, float, float, float]:
    a, b, c, d, e = (float(v) for v in raw)
    return a, b, c, d, e


def _box(y: float, q: tuple[float, float, float, float, float],
         x: Callable[[float], float]) -> Box:
    lo, q1, med, q3, hi = (x(v) for v in q)
    return Box(y=f"{y:.1f}", whisker_y=f"{y + 7:.1f}", bottom=f"{y + 14:.1f}", low=f"{lo:.1f}",
               high=f"{hi:.1f}", q1=f"{q1:.1f}", width=f"{max(q3 - q1, 1):.1f}",
               median=f"{med:.1f}")


def box_plot_data(sli: str, row: IndicatorResult, *, width: int = 320) -> BoxPlots | None:
    """The canary's and the baseline's box plot (min, Q1, median, Q3, max) on one axis; none
    for a rate or without a live comparison."""
    dist = row.live_distributions
    try:
        qc = _five(dist["canary"]["quartiles"])
        qb = _five(dist["baseline"]["quartiles"])
        nc, nb = int(dist["canary"]["n"]), int(dist["baseline"]["n"])
    except (KeyError, TypeError, ValueError):
        return None
    low, high = min(qc[0], qb[0]), max(qc[4], qb[4])
    span = (high - low) or 1.0
    left, right = 70, width - 10

    def x(v: float) -> float:
        return left + (v - low) / span * (right - left)

    title = f"{sli}: canary median {qc[2]:.4g} (n={nc}), baseline median {qb[2]:.4g} (n={nb})"
    return BoxPlots(title=title, width=width, canary=_box(4, qc, x), baseline=_box(26, qb, x),
                    left=left, right=right, low=f"{low:.4g}", high=f"{high:.4g}")


def box_plots(sli: str, row: IndicatorResult, *, width: int = 320) -> str:
    """The SVG of :func:`box_plot_data`; an empty string when there is nothing to draw."""
    from pytest_keptn.report.templating import render_macro

    plots = box_plot_data(sli, row, width=width)
    return "" if plots is None else render_macro("live.html", "box_plots", plots).strip()
