"""The quality report as an HTML fragment: per-stage summary, objective tables, a Bridge-like
heatmap of recent evaluations, a chart per objective with its scale and thresholds, and what
runs where after the run.

Input is plain data (Keptn 0.8 ``evaluation.finished`` ``data`` mappings plus a few labels), so
this module can be fed from stored events. This module turns it into a small view model of
strings and numbers; the markup is ``templates/report.html`` (Jinja2, autoescaped: nothing is
escaped by hand). The output needs no external assets and no JavaScript: hover details are
``title`` attributes.

pytest-html 4 inserts ``pytest_html_results_summary`` prefix strings unescaped (``|safe``), so the
fragment goes straight into ``prefix.append(render_html(stages))``.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_keptn.gate.scoring import IndicatorResult, live_fields
from pytest_keptn.report import wording
from pytest_keptn.report.endpoints import HEADER, endpoint_rows
from pytest_keptn.report.live import BoxPlots, box_plot_data, judged_live, live_lines
from pytest_keptn.report.wording import (
    criterion_shape,
    format_number,
    format_percent,
    target_text,
    without_basis,
)

__all__ = ["HISTORY_CELLS", "HistoryEntry", "RunEnvironment", "RunningInstance", "StageReport",
           "format_percent", "history_limit", "render_html"]

# The history view (heatmap cells, chart points) embeds at most this many objective x
# evaluation values per stage: with 10,000 objectives, 30 evaluations made a 130 MB report and
# a pytest process holding 30 whole evaluations (issue 14 item 15, docs/benchmarks.md).
HISTORY_CELLS = 30_000


def history_limit(objectives: int, most: int = 30) -> int:
    """How many evaluations (the current one included) the history view of a stage with
    ``objectives`` objectives shows: at most ``most`` and HISTORY_CELLS values, at least 1."""
    return max(1, min(most, HISTORY_CELLS // max(objectives, 1)))


STATUSES = ("pass", "warning", "fail", "info", "errored")


@dataclass(frozen=True)
class HistoryEntry:
    """One stored evaluation of the service in a stage (newest first in ``StageReport.history``)."""

    id: str
    time: str
    image: str
    tag: str
    result: str
    score: float
    data: Mapping[str, Any]  # the evaluation.finished ``data`` of that evaluation


@dataclass(frozen=True)
class StageReport:
    """What the report shows for one stage of one run."""

    project: str
    stage: str
    service: str
    image: str
    tag: str
    result: str  # pass | warning | fail (the gate's), or "" when the stage has no evaluation
    score: float
    pass_threshold: float
    warning_threshold: float | None
    data: Mapping[str, Any]  # the evaluation.finished ``data`` (Keptn 0.8 §8 shape)
    history: Sequence[HistoryEntry]  # newest first, including the current evaluation
    queries: Mapping[str, str] = field(default_factory=dict)  # metric -> rendered PromQL
    basis: Mapping[str, str] = field(default_factory=dict)  # metric -> comparison basis text
    sequence_result: str = ""  # e.g. "released" / "rolled back"
    note: str = ""
    endpoints: Sequence[Mapping[str, Any]] = ()  # Locust's per-endpoint stats of the load
    locust_report: str = ""  # where Locust's own HTML report of the load is (a path or URL)
    tasks: Sequence[tuple[str, str, float, str]] = ()  # (task, result, seconds, message), in order


@dataclass(frozen=True)
class RunningInstance:
    """One build a deployer recorded in the state folder (a line of ``pytest-keptn status``)."""

    stage: str
    service: str
    role: str  # primary | canary | baseline | ...
    build: str  # image:tag
    url: str
    pid: int | None
    serving: bool  # its process runs (a primary's, checked as ``status`` checks it)


@dataclass(frozen=True)
class RunEnvironment:
    """What runs where after the run: the report's last section. Plain text only: URLs come
    without credentials (the caller strips them, as every message does)."""

    instances: Sequence[RunningInstance] = ()
    primaries: str = ""  # what happens to the primaries, e.g. "kept running after pytest exits"
    prometheus: str = ""  # e.g. "http://127.0.0.1:9093 (embedded, stops with the session)"
    history: str = ""
    events: str = ""
    logs: str = ""
    state_dir: str = ""
    stop_command: str = ""  # the command that stops what is left running


# --- reading Keptn's evaluation data ------------------------------------------------------------


def _status(value: object) -> str:
    text = str(value or "").lower()
    return text if text in STATUSES else "none"


def indicator_results(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    evaluation = data.get("evaluation") if isinstance(data, Mapping) else None
    if not isinstance(evaluation, Mapping):
        return []
    rows = evaluation.get("indicatorResults") or []
    return [r for r in rows if isinstance(r, Mapping)]


def _metric(row: Mapping[str, Any]) -> str:
    value = row.get("value")
    return str(value.get("metric", "")) if isinstance(value, Mapping) else ""


def _value_map(row: Mapping[str, Any] | None) -> Mapping[str, Any]:
    value = row.get("value") if row is not None else None
    return value if type(value) is dict or isinstance(value, Mapping) else {}


def _number(value: Mapping[str, Any]) -> float | None:
    """The finite number of an indicator result's ``value`` mapping; none when it failed."""
    if value.get("success") is False:
        return None
    number = value.get("value")
    if type(number) is float:
        return number if math.isfinite(number) else None
    if isinstance(number, bool) or not isinstance(number, int | float):
        return None
    return float(number) if math.isfinite(number) else None


def _targets(row: Mapping[str, Any] | None, key: str) -> list[Mapping[str, Any]]:
    if row is None:
        return []
    targets = row.get(key) or []
    return [t for t in targets if isinstance(t, Mapping)]


def _no_basis(target: Mapping[str, Any]) -> bool:
    return without_basis(str(target.get("criteria", "")), target.get("targetValue"),
                         bool(target.get("violated")))


@functools.lru_cache(maxsize=16384)
def _target_info(criteria: str, target: object, violated: bool) -> tuple[str, float, str]:
    """What the report draws and says of one target: (the operator of its band, "" for none;
    the band's bound; ``<=1 (target 1) violated`` for titles). Cached: a report of 50 SLIs x 30
    evaluations reads ~4,500 targets, most of them alike."""
    words = f"{criteria} ({target_text(criteria, target, violated)}){' violated' if violated else ''}"
    if (isinstance(target, bool) or not isinstance(target, int | float) or not math.isfinite(target)
            or without_basis(criteria, target, violated)):
        return "", 0.0, words  # no number, or relative with nothing to compare with: no band
    return criterion_shape(criteria)[0], float(target), words


_PLAIN = (int, float, bool, str)


def _read_targets(raw: Mapping[str, Any], key: str, label: str) -> tuple[Band | None, str]:
    """The band the targets allow (their intersection; Keptn's flattened groups lose OR) and
    their words for a title. A relative criterion counts with its target, resolved against the
    comparison value; without a comparison value it has none and draws nothing."""
    targets = raw.get(key)
    if not targets or not isinstance(targets, list | tuple):
        return None, ""
    low, high = -math.inf, math.inf
    seen = False
    words = []
    for t in targets:
        if type(t) is not dict and not isinstance(t, Mapping):
            continue
        target = t.get("targetValue")
        if target is not None and type(target) not in _PLAIN:
            target = str(target)  # a list or a mapping where a number belongs: said as it is
        operator, bound, text = _target_info(str(t.get("criteria", "")), target,
                                             bool(t.get("violated")))
        words.append(text)
        if not operator:
            continue
        seen = True
        if operator in ("<", "<="):
            high = min(high, bound)
        elif operator in (">", ">="):
            low = max(low, bound)
        else:
            low, high = max(low, bound), min(high, bound)
    return ((low, high) if seen else None), (f"\n{label}: " + ", ".join(words) if words else "")


def _target(target: Mapping[str, Any]) -> str:
    return target_text(str(target.get("criteria", "")), target.get("targetValue"),
                       bool(target.get("violated")))


def _display(row: Mapping[str, Any] | None, metric: str) -> str:
    name = str(row.get("displayName") or "") if row else ""
    return name or metric


def _short_time(text: str) -> str:
    m = re.match(r"^\d{4}-(\d{2}-\d{2})[T ](\d{2}:\d{2})", text)
    return f"{m.group(1)} {m.group(2)}" if m else text


def verdict(stage: StageReport) -> str:
    """One line: ``hardening: fail, score 33.3% < 75% (warning)`` (see report.wording)."""
    if not indicator_results(stage.data) and not stage.result:
        return f"{stage.stage}: no evaluation"
    if stage.result == "errored":
        message = stage.data.get("message") if isinstance(stage.data, Mapping) else ""
        return wording.errored_verdict(stage.stage, str(message or "nothing measured"))
    key_failed = [
        _display(r, _metric(r)) for r in indicator_results(stage.data)
        if r.get("keySli") and _status(r.get("status")) == "fail"
    ]
    return wording.verdict(stage.stage, stage.result or "none", stage.score,
                           stage.pass_threshold, stage.warning_threshold, key_failed=key_failed)


# --- bands: what the pass and warning criteria allow --------------------------------------------


Band = tuple[float, float]  # (low, high); +-inf for open ends
SYMBOLS = {"<=": "≤", ">=": "≥", "<": "<", ">": ">", "=": "=", "==": "="}


def _band(targets: list[Mapping[str, Any]]) -> Band | None:
    return _read_targets({"t": targets}, "t", "")[0]


def _absolute_only(targets: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [t for t in targets if not criterion_shape(str(t.get("criteria", "")))[1]]


def _band_label(kind: str, band: Band) -> str:
    """``pass ≤ 1``, ``pass ≥ 36``, ``pass 36 – 360``."""
    low, high = band
    if math.isfinite(low) and math.isfinite(high):
        if low == high:
            return f"{kind} = {format_number(low)}"
        return f"{kind} {format_number(low)} – {format_number(high)}"
    if math.isfinite(high):
        return f"{kind} ≤ {format_number(high)}"
    return f"{kind} ≥ {format_number(low)}"


def _criteria_note(kind: str, targets: list[Mapping[str, Any]]) -> str:
    """How the chart read the criteria of one kind, for the chart's title."""
    parts = []
    for t in targets:
        criteria = str(t.get("criteria", ""))
        if _no_basis(t):
            parts.append(f"{criteria}: {wording.NO_BASIS}, no band")
        elif criterion_shape(criteria)[1]:
            parts.append(f"{criteria}: {format_number(t.get('targetValue'))} against the "
                         "comparison value")
        else:
            parts.append(criteria)
    return f"\n{kind}: " + "; ".join(parts) if parts else ""


# --- the view model the templates draw ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Row:
    """One indicator result of one evaluation, read once for the heatmap and the chart."""

    raw: Mapping[str, Any]
    value: float | None
    status: str
    pass_band: Band | None
    warning_band: Band | None
    title: str  # value, targets, status and score, for the heatmap cell's title


def _read_row(raw: Mapping[str, Any]) -> _Row:
    pass_band, pass_words = _read_targets(raw, "passTargets", "pass")
    warning_band, warning_words = _read_targets(raw, "warningTargets", "warning")
    value = _value_map(raw)
    message = f" ({value['message']})" if value.get("message") else ""
    status = raw.get("status", "")
    title = (f"value: {format_number(value.get('value'))}{message}{pass_words}{warning_words}"
             f"\nstatus: {status}, score: {format_number(raw.get('score'))}")
    return _Row(raw, _number(value), _status(status), pass_band, warning_band, title)


@dataclass(frozen=True, slots=True)
class _Column:
    entry: HistoryEntry
    rows: Mapping[str, _Row]  # metric -> indicator result
    errored: bool


def _columns(stage: StageReport, limit: int) -> list[_Column]:
    entries = list(stage.history[: max(limit, 0)])
    if not entries and indicator_results(stage.data):
        entries = [HistoryEntry("current", "", stage.image, stage.tag, stage.result, stage.score,
                                stage.data)]
    columns = []
    for entry in reversed(entries):  # oldest -> newest
        rows: dict[str, _Row] = {}
        for row in indicator_results(entry.data):
            metric = _metric(row)
            if metric not in rows:
                rows[metric] = _read_row(row)
        columns.append(_Column(entry, rows, entry.result == "errored"))
    return columns


def _objective_order(stage: StageReport, columns: Sequence[_Column]) -> list[str]:
    order: dict[str, None] = {}
    for row in indicator_results(stage.data):
        order.setdefault(_metric(row), None)
    for column in reversed(columns):  # then objectives only older evaluations had, newest first
        for metric in column.rows:
            order.setdefault(metric, None)
    return list(order)


@dataclass(frozen=True, slots=True)
class Chart:
    """An objective's chart over the evaluations, in SVG coordinates (numbers as text)."""

    width: int
    height: int
    title: str
    plot_left: int
    plot_right: int
    top: int
    bottom: int
    axis_max: str  # the y axis' labels
    axis_min: str
    # one SVG path per kind of band and per status of dot (a few elements per chart, not one
    # per evaluation: 50 charts of 30 evaluations drew 4,500 elements)
    bands: Sequence[tuple[str, str]]  # (class, path of rectangles)
    band_labels: Sequence[tuple[str, str, str]]  # (class, y, text)
    lines: Sequence[str]  # polyline points
    dots: Sequence[tuple[str, str]]  # (status, path of zero-length strokes: round dots)
    current: tuple[str, str, str, str] | None  # (status, cx, cy, value text)
    current_y: str  # where the current value's label sits


def _nice_range(low: float, high: float) -> tuple[float, float]:
    """An axis from ``low`` to ``high`` widened to round numbers (0, 0.5, 200 ...)."""
    if high - low < 1e-12:
        pad = abs(high) * 0.1 or 1.0
        low, high = low - pad, high + pad
    step = 10 ** math.floor(math.log10(high - low))
    if (high - low) / step < 3:
        step /= 2
    nice_low, nice_high = math.floor(low / step) * step, math.ceil(high / step) * step
    if low >= 0 > nice_low:
        nice_low = 0.0
    return float(f"{nice_low:.6g}"), float(f"{nice_high:.6g}")


CHART_WIDTH, CHART_HEIGHT = 246, 54
PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM = 38, 196, 5, 49


def chart(metric: str, columns: Sequence[_Column], current: Mapping[str, Any] | None) -> Chart | None:
    """The objective's value over the evaluations with its pass (green) and warning (yellow)
    bands, the y axis' min and max, the current value and the thresholds as labels. Absolute
    criteria give one band; relative ones each evaluation's own target (resolved against that
    evaluation's comparison value), none when it had nothing to compare with."""
    n = len(columns)
    if n == 0:
        return None
    rows = [c.rows.get(metric) for c in columns]
    values = [r.value if r is not None else None for r in rows]
    pass_now, warn_now = _targets(current, "passTargets"), _targets(current, "warningTargets")
    absolute_pass, absolute_warn = _band(_absolute_only(pass_now)), _band(_absolute_only(warn_now))
    bands: list[tuple[Band | None, Band | None]] = [
        (absolute_pass, absolute_warn) if row is None else
        (row.pass_band or absolute_pass, row.warning_band or absolute_warn) for row in rows]
    finite = [v for v in values if v is not None]
    for distinct in {b for pair in bands for b in pair if b is not None}:
        finite += [x for x in distinct if -math.inf < x < math.inf]
    if not finite:
        return None
    low, high = _nice_range(min(finite), max(finite))
    top, bottom = PLOT_TOP, PLOT_BOTTOM
    scale = (bottom - top) / (high - low)
    step = (PLOT_RIGHT - PLOT_LEFT) / n
    y = [bottom - (min(max(v, low), high) - low) * scale if v is not None else 0.0
         for v in values]
    xs = [f"{PLOT_LEFT + step * i + step / 2:.1f}" for i in range(n)]

    def edge(v: float, open_end: float) -> float:
        return bottom - (min(max(v if -math.inf < v < math.inf else open_end, low), high)
                         - low) * scale

    rects: list[tuple[str, str]] = []
    for kind, which in (("kq-band-warning", 1), ("kq-band-pass", 0)):
        start, path = 0, []
        for i in range(1, n + 1):  # consecutive evaluations with the same band: one rectangle
            if i < n and bands[i][which] == bands[start][which]:
                continue
            band = bands[start][which]
            if band is not None:
                upper, lower = edge(band[1], high), edge(band[0], low)
                width = step * (i - start)
                path.append(f"M{PLOT_LEFT + step * start:.1f},{upper:.1f}h{width:.1f}"
                            f"v{max(lower - upper, 0.75):.1f}h{-width:.1f}z")
            start = i
        if path:
            rects.append((kind, "".join(path)))
    labels: list[tuple[str, str, str]] = []
    taken: list[float] = []
    for kind, band in (("pass", bands[-1][0]), ("warning", bands[-1][1])):
        if band is None:
            continue
        upper_bound = math.isfinite(band[1])
        # inside the band, next to the threshold it names; clear of the other label
        at = edge(band[1], high) + 8.0 if upper_bound else edge(band[0], low) - 2.0
        at = min(max(at, top + 7.0), float(bottom))
        while any(abs(at - t) < 8 for t in taken):
            at = at + 8 if at + 8 <= bottom else at - 16
        taken.append(at)
        labels.append((f"kq-band-label kq-band-label-{kind}", f"{at:.1f}", _band_label(kind, band)))
    lines: list[str] = []
    segment: list[str] = []
    dots: dict[str, list[str]] = {}
    for i, v in enumerate(values):
        if v is None:
            if len(segment) > 1:
                lines.append(" ".join(segment))
            segment = []
            continue
        point = f"{xs[i]},{y[i]:.1f}"
        segment.append(point)
        row = rows[i]
        dots.setdefault(row.status if row is not None else "none", []).append(f"M{point}h0")
    if len(segment) > 1:
        lines.append(" ".join(segment))
    now, last = values[-1], rows[-1]
    current_dot = None
    label_y = top + 6.0
    if now is not None:
        current_dot = (last.status if last is not None else "none", xs[-1], f"{y[-1]:.1f}",
                       format_number(now))
        label_y = min(max(y[-1] + 3.5, top + 6.0), bottom + 2.0)
    summary = ", ".join(
        f"{c.entry.tag or c.entry.id}: {format_number(v)}" for c, v in zip(columns, values, strict=True))
    title = (f"{metric}: {summary}" + _criteria_note("pass", pass_now)
             + _criteria_note("warning", warn_now))
    return Chart(width=CHART_WIDTH, height=CHART_HEIGHT, title=title, plot_left=PLOT_LEFT,
                 plot_right=PLOT_RIGHT, top=top, bottom=bottom, axis_max=format_number(high),
                 axis_min=format_number(low), bands=rects, band_labels=labels, lines=lines,
                 dots=[(status, "".join(path)) for status, path in dots.items()], current=current_dot, current_y=f"{label_y:.1f}")


@dataclass(frozen=True, slots=True)
class _Target:
    criteria: str
    target: str
    violated: bool


@dataclass(frozen=True, slots=True)
class _Objective:
    status: str
    name: str
    metric: str  # shown under the name when it differs
    key: bool
    value: str
    message: str | None
    pass_targets: Sequence[_Target]
    warning_targets: Sequence[_Target]
    score: str
    chart: Chart | None
    query: str
    live_lines: Sequence[str]
    box_plots: BoxPlots | None
    basis: str  # the history basis; "" when judged live only
    basis_muted: bool


def _target_list(row: Mapping[str, Any], key: str) -> list[_Target]:
    return [_Target(str(t.get("criteria", "")), _target(t), bool(t.get("violated")))
            for t in _targets(row, key)]


def _history_basis(stage: StageReport, metric: str, row: Mapping[str, Any]) -> tuple[str, bool]:
    if metric in stage.basis:
        return stage.basis[metric], False
    targets = _targets(row, "passTargets") + _targets(row, "warningTargets")
    if any(criterion_shape(str(t.get("criteria", "")))[1] for t in targets):
        evaluation = stage.data.get("evaluation", {})
        compared = evaluation.get("comparedEvents") if isinstance(evaluation, Mapping) else None
        n = len(compared) if isinstance(compared, list) else 0
        return f"{n} previous evaluation{'s' if n != 1 else ''}", False
    return "absolute", True


def _objectives(stage: StageReport, columns: Sequence[_Column]) -> list[_Objective]:
    out = []
    for row in indicator_results(stage.data):
        metric = _metric(row)
        value = _value_map(row)
        message = None
        if value.get("success") is False or value.get("message"):
            message = str(value.get("message", "no value"))
        live = IndicatorResult(sli=metric, display_name="", value=0.0, success=True, message="",
                               score=0.0, status="", **live_fields(row.get("liveComparison")))
        basis, muted = ("", False) if judged_live(live) else _history_basis(stage, metric, row)
        name = _display(row, metric)
        out.append(_Objective(
            status=_status(row.get("status")), name=name, metric=metric if name != metric else "",
            key=bool(row.get("keySli")), value=format_number(value.get("value")), message=message,
            pass_targets=_target_list(row, "passTargets"),
            warning_targets=_target_list(row, "warningTargets"),
            score=format_number(row.get("score")), chart=chart(metric, columns, row),
            query=stage.queries.get(metric, ""), live_lines=live_lines(live),
            box_plots=box_plot_data(metric, live), basis=basis, basis_muted=muted,
        ))
    return out


@dataclass(frozen=True, slots=True)
class _Heatmap:
    headers: Sequence[tuple[str, str, str]]  # (class, title, label)
    scores: Sequence[tuple[str, str, str]]  # (class, title, text)
    rows: Sequence[tuple[str, str, Sequence[tuple[str, str]]]]  # (metric, name, (class, title))


def _cell_title(where: str, column: _Column, row: _Row | None) -> str:
    if column.errored:
        return f"{where}\nerrored: {column.entry.data.get('message') or 'nothing measured'}"
    return f"{where}\n{row.title}" if row is not None else f"{where}\nno result"


def _heatmap(columns: Sequence[_Column], metrics: Sequence[str]) -> _Heatmap | None:
    if not columns:
        return None
    last = len(columns) - 1
    current = [" kq-current" if i == last else "" for i in range(len(columns))]
    headers, scores = [], []
    for i, column in enumerate(columns):
        e = column.entry
        headers.append((current[i].strip(), f"{e.image}:{e.tag}\n{e.time}\n{e.id}\nresult: {e.result}",
                        f"{e.tag or e.id} · {_short_time(e.time)}".strip(" ·")))
        scores.append((f"kq-cell kq-{_status(e.result)}{current[i]}",
                       f"score @ {e.tag or e.id} {e.time}\nscore: {format_percent(e.score)}%, "
                       f"result: {e.result}", format_percent(round(e.score))))
    places = [f"{c.entry.tag or c.entry.id} {c.entry.time}".rstrip() for c in columns]
    newest = columns[-1].rows
    rows = []
    for metric in metrics:
        cells = []
        for i, column in enumerate(columns):
            row = column.rows.get(metric)
            # an errored evaluation measured nothing: grey and hatched
            status = "errored" if column.errored else (row.status if row is not None else "none")
            cells.append((f"kq-cell kq-{status}{current[i]}",
                           _cell_title(f"{metric} @ {places[i]}", column, row)))
        shown = newest.get(metric)
        rows.append((metric, _display(shown.raw if shown else None, metric), cells))
    return _Heatmap(headers, scores, rows)


@dataclass(frozen=True, slots=True)
class _StageView:
    stage: StageReport
    status: str
    verdict: str
    evaluated: bool
    score: str
    thresholds: str
    window: tuple[str, str] | None
    message: str
    tasks: Sequence[tuple[str, str, str, str, str]]  # (class, name, result, duration, message)
    heatmap: _Heatmap | None
    heading: str
    objectives: Sequence[_Objective]
    endpoint_header: Sequence[str]
    endpoints: Sequence[tuple[str, ...]]


TASK_CLASSES = {"pass": "pass", "warning": "warning", "fail": "fail", "skipped": "none"}


def _stage_view(stage: StageReport, max_evaluations: int) -> _StageView:
    limit = history_limit(len(indicator_results(stage.data)), max_evaluations)
    columns = _columns(stage, limit)
    metrics = _objective_order(stage, columns)
    evaluation = stage.data.get("evaluation") if isinstance(stage.data, Mapping) else None
    ev: Mapping[str, Any] = evaluation if isinstance(evaluation, Mapping) else {}
    thresholds = f"pass ≥ {format_percent(stage.pass_threshold)}%"
    if stage.warning_threshold is not None:
        thresholds += f", warning ≥ {format_percent(stage.warning_threshold)}%"
    window = (str(ev.get("timeStart", "")), str(ev.get("timeEnd", ""))) if (
        ev.get("timeStart") or ev.get("timeEnd")) else None
    message = stage.data.get("message") if isinstance(stage.data, Mapping) else None
    capped = "" if limit >= max_evaluations or len(stage.history) < limit else (
        f"; {len(metrics):,} objectives: the view holds at most {HISTORY_CELLS:,} values")
    return _StageView(
        stage=stage, status=_status(stage.result), verdict=verdict(stage),
        evaluated=bool(indicator_results(stage.data) or stage.result),
        score=format_percent(stage.score), thresholds=thresholds, window=window,
        message=str(message or ""),
        tasks=[(TASK_CLASSES.get(result, "none"), name, result,
                "" if result == "not run" else f"{seconds:.1f} s", said)
               for name, result, seconds, said in stage.tasks],
        heatmap=_heatmap(columns, metrics),
        heading=f"Recent evaluations ({len(columns)}, oldest → newest{capped})",
        objectives=_objectives(stage, columns), endpoint_header=HEADER,
        endpoints=endpoint_rows(stage.endpoints),
    )


def render_html(stages: Sequence[StageReport], max_evaluations: int = 30,
                environment: RunEnvironment | None = None) -> str:
    """The quality report for ``stages`` (and what runs where after the run) as one
    self-contained HTML fragment."""
    from pytest_keptn.report.templating import render

    return render("report.html", stages=[_stage_view(s, max_evaluations) for s in stages],
                  environment=environment, statuses=(*STATUSES, "none"))
