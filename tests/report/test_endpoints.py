"""Locust's per-endpoint table: the rows the terminal summary and the HTML report show."""

from __future__ import annotations

from pytest_keptn.report.endpoints import HEADER, endpoint_rows, text_table

ENDPOINTS = [
    {"method": "GET", "name": "/health", "requests": 40, "failures": 0, "rps": 4.0,
     "p50_ms": 2.0, "p95_ms": 5.0, "p99_ms": 9.0},
    {"method": "GET", "name": "/", "requests": 400, "failures": 4, "rps": 40.04,
     "p50_ms": 6.4, "p95_ms": 12.0, "p99_ms": 31.0},
    {"method": "POST", "name": "/cart", "requests": 0, "failures": 0, "rps": 0.0,
     "p50_ms": None, "p95_ms": None, "p99_ms": None},
]


def test_rows_busiest_first_with_failure_share() -> None:
    rows = endpoint_rows(ENDPOINTS)
    assert rows[0] == ("GET /", "400", "4 (1.0%)", "6", "12", "31", "40.0")
    assert rows[1][0] == "GET /health" and rows[1][2] == "0"
    assert rows[2] == ("POST /cart", "0", "0", "–", "–", "–", "0.0")
    assert endpoint_rows(None) == [] and endpoint_rows([42]) == []  # type: ignore[list-item]


def test_text_table_aligns_numbers_right() -> None:
    lines = text_table(endpoint_rows(ENDPOINTS))
    assert lines[0].split() == ["endpoint", "requests", "failures", "median", "ms", "p95", "ms",
                                "p99", "ms", "rps"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert len({len(line) for line in lines[:2]}) == 1
    assert lines[2].startswith("  GET /") and lines[2].endswith("40.0")
    assert text_table([]) == [] and len(HEADER) == len(endpoint_rows(ENDPOINTS)[0])
