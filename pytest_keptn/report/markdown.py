"""The gate as GitHub-flavoured markdown, for job summaries (``$GITHUB_STEP_SUMMARY``) and PR
comments."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_keptn.report.html import StageReport, indicator_results, verdict
from pytest_keptn.report.wording import format_number, target_text

__all__ = ["render_markdown", "summary_path", "write_markdown_summary"]

_ENTITY = re.compile(r"&(?=#?\w+;)")
_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")

ICONS = {"pass": "✅", "warning": "⚠️", "fail": "❌", "info": "ℹ️", "errored": "⛔"}


def cell(value: object) -> str:
    """Markdown-safe text: anything GitHub could read as an HTML tag or entity is escaped (so
    ``<script>`` shows as text) while ``score 33.3% < 75%`` and ``<=1`` stay readable; pipes and
    newlines cannot break the table."""
    text = _ENTITY.sub("&amp;", str(value))
    text = _TAG_START.sub("&lt;", text)
    return text.replace("|", "\\|").replace("\r", " ").replace("\n", " ").replace("`", "'")


def _targets(row: Mapping[str, Any], key: str) -> str:
    targets = row.get(key) or []
    parts = []
    for t in targets:
        if not isinstance(t, Mapping):
            continue
        criteria = str(t.get("criteria", ""))
        target = target_text(criteria, t.get("targetValue"), bool(t.get("violated")))
        text = f"{criteria} ({target})"
        parts.append(f"~~{cell(text)}~~" if t.get("violated") else cell(text))
    return ", ".join(parts) or "–"


def render_markdown(stages: Sequence[StageReport]) -> str:
    """A verdict line per stage and a table of its objectives."""
    if not stages:
        return "### Keptn quality gate\n\nNo stage was run.\n"
    first = stages[0]
    lines = [f"### Keptn quality gate: {cell(first.project)} / {cell(first.service)}", ""]
    for stage in stages:
        icon = ICONS.get(stage.result, "•")
        build = f"{stage.image}:{stage.tag}" if stage.image or stage.tag else ""
        line = f"{icon} **{cell(verdict(stage))}**"
        if build:
            line += f" ({cell(build)})"
        if stage.sequence_result:
            line += f", {cell(stage.sequence_result)}"
        lines.append(line)
        if stage.note:
            lines += ["", f"> {cell(stage.note)}"]
        rows = indicator_results(stage.data)
        if rows:
            lines += [
                "",
                "| Objective | Value | Pass criteria (target) | Warning criteria (target) | Status | Score |",
                "|---|---:|---|---|---|---:|",
            ]
            for row in rows:
                value = row.get("value")
                value_map: Mapping[str, Any] = value if isinstance(value, Mapping) else {}
                metric = str(value_map.get("metric", ""))
                name = str(row.get("displayName") or metric)
                if row.get("keySli"):
                    name += " (key)"
                status = str(row.get("status", ""))
                shown = format_number(value_map.get("value"))
                if value_map.get("success") is False:
                    shown += f" ({value_map.get('message', 'no value')})"
                lines.append(
                    f"| {cell(name)} | {cell(shown)} | {_targets(row, 'passTargets')} | "
                    f"{_targets(row, 'warningTargets')} | {ICONS.get(status, '')} {cell(status)} | "
                    f"{cell(format_number(row.get('score')))} |"
                )
        lines.append("")
    lines.append("_Struck-through targets were violated._")
    return "\n".join(lines) + "\n"


def summary_path(fallback: Path) -> Path:
    """Where the summary goes: ``$GITHUB_STEP_SUMMARY`` when set, else ``fallback``."""
    target = os.environ.get("GITHUB_STEP_SUMMARY", "").strip()
    return Path(target) if target else fallback


def write_markdown_summary(stages: Sequence[StageReport], fallback: Path) -> Path:
    """Append the summary to ``$GITHUB_STEP_SUMMARY`` when set, else write ``fallback``; return
    the path written. OSError when it cannot be written."""
    text = render_markdown(stages)
    path = summary_path(fallback)
    if path != fallback:
        with path.open("a", encoding="utf-8") as f:
            f.write(text)
        return path
    fallback.parent.mkdir(parents=True, exist_ok=True)
    fallback.write_text(text, encoding="utf-8")
    return fallback
