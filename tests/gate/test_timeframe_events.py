from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_keptn.errors import ConfigError
from pytest_keptn.gate.events import evaluation_finished_event, write_event
from pytest_keptn.spec.timeframe import parse_go_duration, resolve_window

NOW = datetime(2021, 6, 1, 12, 0, 0, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("5m", 300),
        ("1h30m", 5400),
        ("90s", 90),
        ("1.5h", 5400),
        ("500ms", 0.5),
        ("0", 0),
        ("1h0m0s", 3600),
    ],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "5 m", "m", "1d", "5M", "1h 30m"])
def test_bad_go_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_go_duration(text)


@given(st.integers(0, 99), st.integers(0, 59), st.integers(0, 59))
def test_duration_compositions(h: int, m: int, s: int) -> None:
    assert parse_go_duration(f"{h}h{m}m{s}s") == h * 3600 + m * 60 + s


def test_start_end() -> None:
    w = resolve_window(
        start="2021-06-01T10:00:00.000Z", end="2021-06-01T10:05:00.500Z", timeframe=None, now=NOW
    )
    assert w.start == datetime(2021, 6, 1, 10, tzinfo=UTC)
    assert w.seconds == 300.5 and w.duration_placeholder == "301s"


def test_timeframe_only_ends_now() -> None:
    w = resolve_window(start=None, end=None, timeframe="5m", now=NOW)
    assert w.end == datetime(2021, 6, 1, 12, 0, 0, 123000, tzinfo=UTC)
    assert w.seconds == 300


def test_start_plus_timeframe() -> None:
    w = resolve_window(start="2021-06-01T10:00:00.000Z", end=None, timeframe="1h30m", now=NOW)
    assert w.end == datetime(2021, 6, 1, 11, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": None, "end": None, "timeframe": None}, "does not contain evaluation timeframe"),
        ({"start": "2021-06-01T10:00:00.000Z", "end": None, "timeframe": None}, "does not contain"),
        ({"start": None, "end": "2021-06-01T10:00:00.000Z", "timeframe": "5m"}, "mutually exclusive"),
        ({"start": "2021-06-01T10:00:00.000Z", "end": "2021-06-01T10:00:59.999Z", "timeframe": None},
         "at least 1 minute"),
        ({"start": None, "end": None, "timeframe": "30s"}, "at least 1 minute"),
        ({"start": "2021-06-01T10:00:00Z", "end": "2021-06-01T10:05:00.000Z", "timeframe": None},
         "cannot parse"),
        ({"start": "2021-06-01 10:00:00.000Z", "end": "2021-06-01T10:05:00.000Z", "timeframe": None},
         "cannot parse"),
        ({"start": None, "end": None, "timeframe": "5x"}, "duration"),
    ],
)  # fmt: skip
def test_window_errors(kwargs: dict[str, str | None], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        resolve_window(now=NOW, **kwargs)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def test_event_envelope_and_file(tmp_path: Path) -> None:
    data = {
        "project": "p",
        "stage": "hardening",
        "service": "svc",
        "result": "pass",
        "evaluation": {},
    }
    event = evaluation_finished_event(
        data, event_id="abc", time=NOW, shkeptncontext="ctx", triggeredid="t"
    )
    assert event["specversion"] == "1.0" and event["source"] == "pytest-keptn"
    assert event["type"] == "sh.keptn.event.evaluation.finished"
    assert event["time"] == "2021-06-01T12:00:00.123Z"
    assert (event["shkeptncontext"], event["triggeredid"], event["data"]) == ("ctx", "t", data)
    path = write_event(tmp_path / "events", event)
    assert path.name == "hardening-svc-abc.json"
    assert json.loads(path.read_text()) == event
