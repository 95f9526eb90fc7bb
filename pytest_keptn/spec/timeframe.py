"""The evaluation time window (§9): Keptn's timestamp layout and Go durations (pure: read at
collection for the shipyard's evaluation properties and triggeredAfter, and by the evaluation)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from pytest_keptn.errors import ConfigError
from pytest_keptn.model import Window

_LAYOUT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_go_duration(text: str) -> float:
    """Seconds in a Go duration string (``5m``, ``1h30m``, ``90s``, ``1.5h``); ``ValueError`` else."""
    s = text
    sign = 1.0
    if s[:1] in ("+", "-"):
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if s == "0":
        return 0.0
    if not s:
        raise ValueError(f"time: invalid duration {text!r}")
    total = 0.0
    pos = 0
    while pos < len(s):
        m = _PART.match(s, pos)
        if m is None:
            if re.match(r"(\d+\.?\d*|\.\d+)", s[pos:]):
                raise ValueError(f"time: missing unit in duration {text!r}")
            raise ValueError(f"time: invalid duration {text!r}")
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return sign * total


def parse_keptn_time(text: str) -> datetime:
    """Parse ``2006-01-02T15:04:05.000Z`` exactly (milliseconds, literal Z)."""
    if not _LAYOUT.fullmatch(text):
        raise ValueError(f'parsing time "{text}" as "2006-01-02T15:04:05.000Z": cannot parse')
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(f'parsing time "{text}": out of range') from None


def resolve_window(
    *, start: str | None, end: str | None, timeframe: str | None, now: datetime
) -> Window:
    """Resolve ``start``/``end``/``timeframe`` into a window as lighthouse 0.8.7 does (§9).

    Errors are :class:`ConfigError` with Keptn's messages.
    """
    if not ((start and end) or timeframe):
        raise ConfigError("evaluation.triggered event does not contain evaluation timeframe")
    if end and timeframe:
        raise ConfigError("'end' and 'timeframe' are mutually exclusive")
    try:
        if start and end:
            t0, t1 = parse_keptn_time(start), parse_keptn_time(end)
        else:
            assert timeframe is not None
            seconds = parse_go_duration(timeframe)
            if start:
                t0 = parse_keptn_time(start)
                t1 = t0 + timedelta(seconds=seconds)
            else:
                t1 = now.astimezone(UTC)
                t0 = t1 - timedelta(seconds=seconds)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if t1 - t0 < timedelta(minutes=1):
        raise ConfigError("end date must be at least 1 minute after start date")
    # Keptn re-formats both ends in its millisecond layout.
    return Window(_truncate_ms(t0), _truncate_ms(t1))


def _truncate_ms(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def go_duration_text(seconds: float) -> str:
    """A duration as Go's ``time.Duration.String`` writes it (``2s``, ``10m0s``, ``1h30m0s``,
    ``500ms``), so a progress line shows what the shipyard's ``triggeredAfter`` means."""
    if seconds < 0:
        return "-" + go_duration_text(-seconds)
    if seconds == 0:
        return "0s"
    if seconds < 1:
        for unit, size in (("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
            if seconds >= size:
                return f"{round(seconds / size, 9):g}{unit}"
        return "0s"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{round(secs, 9):g}s"
    if hours:
        return f"{int(hours)}h{int(minutes)}m{text}"
    if minutes:
        return f"{int(minutes)}m{text}"
    return text
