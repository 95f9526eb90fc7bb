"""The quality report as an HTML fragment: per-stage summary, objective tables, a Bridge-like
heatmap of recent evaluations and a sparkline per objective.

Input is plain data (Keptn 0.8 ``evaluation.finished`` ``data`` mappings plus a few labels), so
this module depends on nothing else in the package and can be fed from stored events. The output
needs no external assets and no JavaScript: hover details are ``title`` attributes. Every string
from the input is escaped.

pytest-html 4 inserts ``pytest_html_results_summary`` prefix strings unescaped (``|safe``), so the
fragment goes straight into ``prefix.append(render_html(stages))``.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from pytest_keptn.gate.scoring import IndicatorResult, live_fields
from pytest_keptn.report import wording
from pytest_keptn.report.endpoints import HEADER, endpoint_rows
from pytest_keptn.report.live import judged_live, live_html
from pytest_keptn.report.wording import (
    criterion_shape,
    format_number,
    format_percent,
    target_text,
    without_basis,
)

__all__ = ["HISTORY_CELLS", "HistoryEntry", "StageReport", "format_percent", "history_limit",
           "render_html"]

# The history view (heatmap cells, chart points) embeds at most this many objective x
# evaluation values per stage: with 10,000 objectives, 30 evaluations made a 130 MB report and
# a pytest process holding 30 whole evaluations (issue 14 item 15, docs/benchmarks.md).
HISTORY_CELLS = 30_000


def history_limit(objectives: int, most: int = 30) -> int:
    """How many evaluations (the current one included) the history view of a stage with
    ``objectives`` objectives shows: at most ``most`` and HISTORY_CELLS values, at least 1."""
    return max(1, min(most, HISTORY_CELLS // max(objectives, 1)))

# the report's style sheet, a file of the package (inlined: the report needs no external assets)
CSS = resources.files("pytest_keptn.report").joinpath("report.css").read_text(encoding="utf-8")

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


# --- small helpers ------------------------------------------------------------------------------


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


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


def _value(row: Mapping[str, Any]) -> float | None:
    value = row.get("value")
    if not isinstance(value, Mapping) or value.get("success") is False:
        return None
    number = value.get("value")
    if isinstance(number, bool) or not isinstance(number, int | float):
        return None
    return float(number) if math.isfinite(number) else None


def _targets(row: Mapping[str, Any] | None, key: str) -> list[Mapping[str, Any]]:
    if row is None:
        return []
    targets = row.get(key) or []
    return [t for t in targets if isinstance(t, Mapping)]


def _shape(target: Mapping[str, Any]) -> tuple[str, bool]:
    return criterion_shape(str(target.get("criteria", "")))


def _no_basis(target: Mapping[str, Any]) -> bool:
    return without_basis(str(target.get("criteria", "")), target.get("targetValue"),
                         bool(target.get("violated")))


def _target(target: Mapping[str, Any]) -> str:
    return target_text(str(target.get("criteria", "")), target.get("targetValue"),
                       bool(target.get("violated")))


def _targets_html(targets: list[Mapping[str, Any]], none_text: str) -> str:
    if not targets:
        return f'<span class="kq-muted">{esc(none_text)}</span>'
    items = []
    for t in targets:
        violated = bool(t.get("violated"))
        mark = '<span class="kq-x" title="violated">✗</span>' if violated else (
            '<span class="kq-ok" title="met">✓</span>'
        )
        items.append(
            f'<li class="{"kq-violated" if violated else "kq-met"}">'
            f"<code>{esc(t.get('criteria', ''))}</code> → {esc(_target(t))} {mark}</li>"
        )
    return f'<ul class="kq-targets">{"".join(items)}</ul>'


def _targets_title(label: str, targets: list[Mapping[str, Any]]) -> str:
    if not targets:
        return ""
    parts = [
        f"{t.get('criteria', '')} ({_target(t)}){' violated' if t.get('violated') else ''}"
        for t in targets
    ]
    return f"\n{label}: " + ", ".join(parts)


def _display(row: Mapping[str, Any] | None, metric: str) -> str:
    name = str(row.get("displayName") or "") if row else ""
    return name or metric


# --- bands for sparklines -----------------------------------------------------------------------


Band = tuple[float, float]  # (low, high); +-inf for open ends


def _band(targets: list[Mapping[str, Any]]) -> Band | None:
    """The interval the targets allow (their intersection; Keptn's flattened groups lose OR)."""
    low, high = -math.inf, math.inf
    seen = False
    for t in targets:
        target = t.get("targetValue")
        if _no_basis(t):
            continue
        if isinstance(target, bool) or not isinstance(target, int | float):
            continue
        if not math.isfinite(target):
            continue
        operator, _ = _shape(t)
        seen = True
        if operator in ("<", "<="):
            high = min(high, float(target))
        elif operator in (">", ">="):
            low = max(low, float(target))
        else:
            low, high = max(low, float(target)), min(high, float(target))
    return (low, high) if seen else None


def _absolute_only(targets: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [t for t in targets if not _shape(t)[1]]


# --- the model the page is drawn from -----------------------------------------------------------


@dataclass(frozen=True)
class _Column:
    entry: HistoryEntry
    rows: Mapping[str, Mapping[str, Any]]  # metric -> indicator result


def _columns(stage: StageReport, limit: int) -> list[_Column]:
    entries = list(stage.history[: max(limit, 0)])
    if not entries and indicator_results(stage.data):
        entries = [HistoryEntry("current", "", stage.image, stage.tag, stage.result, stage.score,
                                stage.data)]
    columns = []
    for entry in reversed(entries):  # oldest -> newest
        rows: dict[str, Mapping[str, Any]] = {}
        for row in indicator_results(entry.data):
            rows.setdefault(_metric(row), row)
        columns.append(_Column(entry, rows))
    return columns


def _objective_order(stage: StageReport, columns: Sequence[_Column]) -> list[str]:
    order: dict[str, None] = {}
    for row in indicator_results(stage.data):
        order.setdefault(_metric(row), None)
    for column in reversed(columns):  # then objectives only older evaluations had, newest first
        for metric in column.rows:
            order.setdefault(metric, None)
    return list(order)


def _short_time(text: str) -> str:
    m = re.match(r"^\d{4}-(\d{2}-\d{2})[T ](\d{2}:\d{2})", text)
    return f"{m.group(1)} {m.group(2)}" if m else text


# --- rendering ----------------------------------------------------------------------------------


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


def _badge(status: str, text: str | None = None) -> str:
    cls = _status(status)
    return f'<span class="kq-badge kq-{cls}">{esc(text if text is not None else status or "none")}</span>'


def _summary(stage: StageReport) -> str:
    evaluation = stage.data.get("evaluation") if isinstance(stage.data, Mapping) else None
    ev: Mapping[str, Any] = evaluation if isinstance(evaluation, Mapping) else {}
    thresholds = f"pass ≥ {format_percent(stage.pass_threshold)}%"
    if stage.warning_threshold is not None:
        thresholds += f", warning ≥ {format_percent(stage.warning_threshold)}%"
    if not indicator_results(stage.data) and not stage.result:
        items = []  # a stage without evaluation: no score or thresholds to speak of
    else:
        items = [
            ("Result", _badge(stage.result)),
            ("Score", f'<span class="kq-score">{esc(format_percent(stage.score))}%</span>'),
            ("Thresholds", esc(thresholds)),
        ]
    items += [
        ("Build", f"<code>{esc(stage.image)}:{esc(stage.tag)}</code>"),
        ("Service", f"{esc(stage.project)} / {esc(stage.service)}"),
    ]
    if ev.get("timeStart") or ev.get("timeEnd"):
        items.append(("Window", f"{esc(ev.get('timeStart', ''))} – {esc(ev.get('timeEnd', ''))}"))
    if stage.sequence_result:
        items.append(("Sequence", esc(stage.sequence_result)))
    message = stage.data.get("message") if isinstance(stage.data, Mapping) else None
    if message:
        items.append(("Message", esc(message)))
    if stage.note:
        items.append(("Note", esc(stage.note)))
    cells = "".join(f"<div><dt>{label}</dt><dd>{value}</dd></div>" for label, value in items)
    return f'<dl class="kq-summary">{cells}</dl>'


def _basis(stage: StageReport, metric: str, row: Mapping[str, Any]) -> str:
    live = IndicatorResult(sli=metric, display_name="", value=0.0, success=True, message="",
                           score=0.0, status="", **live_fields(row.get("liveComparison")))
    if judged_live(live):
        return live_html(metric, live)  # judged against the live baseline, not the history
    return live_html(metric, live) + _history_basis(stage, metric, row)


def _history_basis(stage: StageReport, metric: str, row: Mapping[str, Any]) -> str:
    if metric in stage.basis:
        return esc(stage.basis[metric])
    targets = _targets(row, "passTargets") + _targets(row, "warningTargets")
    if any(_shape(t)[1] for t in targets):
        evaluation = stage.data.get("evaluation", {})
        compared = evaluation.get("comparedEvents") if isinstance(evaluation, Mapping) else None
        n = len(compared) if isinstance(compared, list) else 0
        return esc(f"{n} previous evaluation{'s' if n != 1 else ''}")
    return '<span class="kq-muted">absolute</span>'


def _objectives_table(stage: StageReport, columns: Sequence[_Column]) -> str:
    rows = indicator_results(stage.data)
    if not rows:
        return '<p class="kq-muted">No objectives were evaluated in this stage.</p>'
    body = []
    for row in rows:
        metric = _metric(row)
        value = row.get("value")
        value_map: Mapping[str, Any] = value if isinstance(value, Mapping) else {}
        status = _status(row.get("status"))
        value_html = esc(format_number(value_map.get("value")))
        if value_map.get("success") is False or value_map.get("message"):
            value_html += f'<div class="kq-message">{esc(value_map.get("message", "no value"))}</div>'
        name = _display(row, metric)
        name_html = f"<strong>{esc(name)}</strong>"
        if name != metric:
            name_html += f'<div class="kq-muted">{esc(metric)}</div>'
        if row.get("keySli"):
            name_html += ' <span class="kq-key" title="key SLI">key</span>'
        query = stage.queries.get(metric)
        query_html = f'<code class="kq-query">{esc(query)}</code>' if query else (
            '<span class="kq-muted">–</span>'
        )
        body.append(
            f'<tr class="kq-row kq-{status}">'
            f'<td class="kq-name" rowspan="2">{name_html}</td>'
            f'<td class="kq-num">{value_html}</td>'
            f"<td>{_targets_html(_targets(row, 'passTargets'), 'none (informational)')}</td>"
            f"<td>{_targets_html(_targets(row, 'warningTargets'), 'none')}</td>"
            f"<td>{_badge(status)}</td>"
            f'<td class="kq-num">{esc(format_number(row.get("score")))}</td>'
            f'<td class="kq-spark">{sparkline(metric, columns, row)}</td>'
            "</tr>"
            # the query and the comparison basis fold into a second line under the objective,
            # so the table fits a 1400 px window however long the PromQL is
            f'<tr class="kq-detail kq-{status}"><td colspan="6">'
            f'<span class="kq-detail-part"><span class="kq-detail-label">query</span>{query_html}</span>'
            f'<span class="kq-detail-part"><span class="kq-detail-label">compared with</span>'
            f"{_basis(stage, metric, row)}</span></td></tr>"
        )
    head = "".join(
        f"<th>{h}</th>"
        for h in ("Objective", "Value", "Pass criteria → target", "Warning criteria → target",
                  "Status", "Score", "Over evaluations")
    )
    return (
        '<div class="kq-scroll"><table class="kq-objectives">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def _cell_title(metric: str, column: _Column, row: Mapping[str, Any] | None) -> str:
    entry = column.entry
    where = f"{metric} @ {entry.tag or entry.id} {entry.time}".rstrip()
    if entry.result == "errored":
        return f"{where}\nerrored: {entry.data.get('message') or 'nothing measured'}"
    if row is None:
        return f"{where}\nno result"
    value = row.get("value")
    value_map: Mapping[str, Any] = value if isinstance(value, Mapping) else {}
    text = f"{where}\nvalue: {format_number(value_map.get('value'))}"
    if value_map.get("message"):
        text += f" ({value_map.get('message')})"
    text += _targets_title("pass", _targets(row, "passTargets"))
    text += _targets_title("warning", _targets(row, "warningTargets"))
    text += f"\nstatus: {row.get('status', '')}, score: {format_number(row.get('score'))}"
    return text


def _heatmap(stage: StageReport, columns: Sequence[_Column], metrics: Sequence[str]) -> str:
    if not columns:
        return ""
    last = len(columns) - 1
    head = ['<th class="kq-corner" scope="col">objective \\ evaluation</th>']
    for i, column in enumerate(columns):
        entry = column.entry
        label = f"{entry.tag or entry.id} · {_short_time(entry.time)}".strip(" ·")
        title = f"{entry.image}:{entry.tag}\n{entry.time}\n{entry.id}\nresult: {entry.result}"
        cls = ' class="kq-current"' if i == last else ""
        head.append(f'<th scope="col"{cls} title="{esc(title)}"><span>{esc(label)}</span></th>')
    score_cells = []
    for i, column in enumerate(columns):
        entry = column.entry
        title = (f"score @ {entry.tag or entry.id} {entry.time}\n"
                 f"score: {format_percent(entry.score)}%, result: {entry.result}")
        current = " kq-current" if i == last else ""
        score_cells.append(
            f'<td class="kq-cell kq-{_status(entry.result)}{current}" title="{esc(title)}">'
            f"{esc(format_percent(round(entry.score)))}</td>"
        )
    rows = [f'<tr class="kq-score-row"><th scope="row">score</th>{"".join(score_cells)}</tr>']
    newest = columns[-1].rows
    for metric in metrics:
        cells = []
        for i, column in enumerate(columns):
            row = column.rows.get(metric)
            status = _status(row.get("status")) if row is not None else "none"
            if column.entry.result == "errored":  # measured nothing: grey and hatched
                status = "errored"
            current = " kq-current" if i == last else ""
            cells.append(
                f'<td class="kq-cell kq-{status}{current}" '
                f'title="{esc(_cell_title(metric, column, row))}"></td>'
            )
        name = _display(newest.get(metric), metric)
        rows.append(f'<tr><th scope="row" title="{esc(metric)}">{esc(name)}</th>{"".join(cells)}</tr>')
    return (
        f'<div class="kq-heatmap-scroll"><table class="kq-heatmap" '
        f'aria-label="{esc(stage.stage)} evaluations heatmap">'
        f'<thead><tr>{"".join(head)}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'
    )


def sparkline(
    metric: str, columns: Sequence[_Column], current: Mapping[str, Any] | None = None,
    width: int = 160, height: int = 40,
) -> str:
    """Inline SVG of the metric's value over the evaluations, with pass (green) and warning
    (yellow) bands: absolute criteria give a constant band, relative ones each evaluation's
    own targetValue."""
    n = len(columns)
    if n == 0:
        return ""
    values = [_value(c.rows[metric]) if metric in c.rows else None for c in columns]
    absolute_pass = _band(_absolute_only(_targets(current, "passTargets")))
    absolute_warn = _band(_absolute_only(_targets(current, "warningTargets")))
    bands: list[tuple[Band | None, Band | None]] = []
    for column in columns:
        row = column.rows.get(metric)
        if row is None:
            bands.append((absolute_pass, absolute_warn))
            continue
        bands.append((_band(_targets(row, "passTargets")) or absolute_pass,
                      _band(_targets(row, "warningTargets")) or absolute_warn))
    finite = [v for v in values if v is not None]
    for pair in bands:
        for band in pair:
            if band:
                finite += [x for x in band if math.isfinite(x)]
    if not finite:
        return '<span class="kq-muted">no values</span>'
    low, high = min(finite), max(finite)
    if high - low < 1e-12:
        pad = abs(high) * 0.1 or 1.0
        low, high = low - pad, high + pad
    else:
        pad = (high - low) * 0.08
        low, high = low - pad, high + pad
    step = width / n

    def y(v: float) -> float:
        v = min(max(v, low), high)
        return height - (v - low) / (high - low) * height

    def x(i: int) -> float:
        return step * i + step / 2

    parts = []
    for i, (pass_band, warn_band) in enumerate(bands):
        for band, cls in ((warn_band, "kq-band-warning"), (pass_band, "kq-band-pass")):
            if band is None:
                continue
            top, bottom = y(band[1] if math.isfinite(band[1]) else high), y(
                band[0] if math.isfinite(band[0]) else low
            )
            parts.append(
                f'<rect class="{cls}" x="{step * i:.2f}" y="{top:.2f}" width="{step:.2f}" '
                f'height="{max(bottom - top, 0.75):.2f}"/>'
            )
    segment: list[str] = []
    lines = []
    for i, v in enumerate(values):
        if v is None:
            if segment:
                lines.append(segment)
            segment = []
            continue
        segment.append(f"{x(i):.2f},{y(v):.2f}")
    if segment:
        lines.append(segment)
    for points in lines:
        if len(points) > 1:
            parts.append(f'<polyline class="kq-line" points="{" ".join(points)}"/>')
    for i, v in enumerate(values):
        if v is not None:
            row = columns[i].rows.get(metric)
            status = _status(row.get("status")) if row else "none"
            parts.append(f'<circle class="kq-dot kq-{status}" cx="{x(i):.2f}" cy="{y(v):.2f}" r="2"/>')
    summary = ", ".join(
        f"{c.entry.tag or c.entry.id}: {format_number(v)}" for c, v in zip(columns, values, strict=True)
    )
    return (
        f'<svg class="kq-sparkline" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{esc(metric)}: {esc(summary)}</title>{''.join(parts)}</svg>"
    )


def _legend() -> str:
    items = "".join(
        f'<span class="kq-legend-item"><span class="kq-swatch kq-{s}"></span>{s}</span>'
        for s in (*STATUSES, "none")
    )
    return f'<div class="kq-legend">{items}</div>'


def _load(stage: StageReport) -> str:
    """Locust's per-endpoint table of the load, and the link to Locust's own report."""
    rows = endpoint_rows(stage.endpoints)
    link = (f'<p><a class="kq-locust-report" href="{esc(stage.locust_report)}">Locust\'s own '
            "report of this load</a></p>" if stage.locust_report else "")
    if not rows:
        return f"<h4>Load</h4>{link}" if link else ""
    head = "".join(f"<th>{esc(h)}</th>" for h in HEADER)
    num = ' class="kq-num"'
    body = "".join(
        "<tr>" + "".join(f"<td{num if i else ''}>{esc(c)}</td>" for i, c in enumerate(row))
        + "</tr>" for row in rows)
    return (f'<h4>Load</h4><div class="kq-scroll"><table class="kq-objectives kq-endpoints">'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>{link}")


TASK_CLASSES = {"pass": "pass", "warning": "warning", "fail": "fail", "skipped": "none"}


def _tasks(stage: StageReport) -> str:
    """The sequence's tasks as a strip, like the Bridge's sequence view: status and duration."""
    if not stage.tasks:
        return ""
    items = "".join(
        f'<li class="kq-task kq-{TASK_CLASSES.get(result, "none")}" title="{esc(message)}">'
        f'<span class="kq-task-name">{esc(name)}</span> '
        f'<span class="kq-task-result">{esc(result)}</span> '
        f'<span class="kq-task-time">{seconds:.1f} s</span></li>'
        for name, result, seconds, message in stage.tasks)
    return f'<ol class="kq-tasks" aria-label="{esc(stage.stage)} tasks">{items}</ol>'


def render_stage(stage: StageReport, max_evaluations: int = 30) -> str:
    limit = history_limit(len(indicator_results(stage.data)), max_evaluations)
    columns = _columns(stage, limit)
    metrics = _objective_order(stage, columns)
    heatmap = _heatmap(stage, columns, metrics)
    parts = [
        f'<section class="kq-stage kq-stage-{_status(stage.result)}" '
        f'data-stage="{esc(stage.stage)}">',
        f"<h3>Stage {esc(stage.stage)} {_badge(stage.result) if stage.result else ''}</h3>",
        f'<p class="kq-verdict">{esc(verdict(stage))}</p>',
        _summary(stage),
        _tasks(stage),
    ]
    if heatmap:  # first, as in the Bridge: the overview before the details
        capped = "" if limit >= max_evaluations or len(stage.history) < limit else (
            f"; {len(metrics):,} objectives: the view holds at most {HISTORY_CELLS:,} values")
        parts += [
            f"<h4>Recent evaluations ({len(columns)}, oldest → newest{esc(capped)})</h4>",
            _legend(),
            heatmap,
        ]
    parts += ["<h4>Objectives</h4>", _objectives_table(stage, columns), _load(stage), "</section>"]
    return "".join(parts)


def render_html(stages: Sequence[StageReport], max_evaluations: int = 30) -> str:
    """The quality report for ``stages`` as one self-contained HTML fragment."""
    body = "".join(render_stage(s, max_evaluations) for s in stages)
    if not stages:
        body = '<p class="kq-muted">No stage was run.</p>'
    return (
        f'<div class="keptn-report" id="keptn-quality-gate"><style>{CSS}</style>'
        f"<h2>Keptn quality gate</h2>{body}</div>"
    )
