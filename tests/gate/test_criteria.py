from __future__ import annotations

import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_keptn.gate.criteria import aggregate, compare, percentile, target
from pytest_keptn.spec.criteria import (
    INVALID_CRITERIA,
    UNPARSABLE_TARGET,
    parse_criterion,
    parse_go_float,
)

# §3 table: input -> operator, value, relative, percentage, increase
TABLE = [
    ("<600", "<", 600.0, False, False, False),
    ("<=+10%", "<=", 10.0, True, True, True),
    ("<=10%", "<=", 10.0, True, True, True),
    (">=-80%", ">=", 80.0, True, True, False),
    ("<=+10", "<=", 10.0, True, False, True),
    (">-5", ">", 5.0, True, False, False),
    ("=0", "=", 0.0, False, False, False),
    ("  <=+10   %", "<=", 10.0, True, True, True),
    ("<=+-5", "<=", -5.0, True, False, True),
]


@pytest.mark.parametrize(("text", "op", "value", "relative", "percentage", "increase"), TABLE)
def test_reference_table(
    text: str, op: str, value: float, relative: bool, percentage: bool, increase: bool
) -> None:
    c = parse_criterion(text)
    assert (c.operator, c.value, c.relative, c.percentage, c.increase) == (
        op,
        value,
        relative,
        percentage,
        increase,
    )
    assert c.text == text and c.valid


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("600", INVALID_CRITERIA),
        ("", INVALID_CRITERIA),
        ("!=5", INVALID_CRITERIA),
        ("\t<5", INVALID_CRITERIA),
        ("==5", UNPARSABLE_TARGET),
        ("=<5", UNPARSABLE_TARGET),
        ("=>5", UNPARSABLE_TARGET),
        ("<>5", UNPARSABLE_TARGET),
        ("|5", UNPARSABLE_TARGET),
        ("<5\t", UNPARSABLE_TARGET),
        ("<", UNPARSABLE_TARGET),
        ("<%", UNPARSABLE_TARGET),
        ("<1e400", UNPARSABLE_TARGET),
    ],
)
def test_rejected_criteria(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        parse_criterion(text)


# §3.2 worked examples: base -> target, computed in Go's order
@pytest.mark.parametrize(
    ("text", "base", "expected"),
    [
        ("<=+10%", 10.0, 11.0),
        ("<=+15%", 10.0, 11.5),
        ("<=+75%", 200.0, 350.0),
        (">=-80%", 200.0, 40.0),
        ("<=+10", 5.0, 15.0),
        (">-5", 5.0, 0.0),
        ("<=+100%", 10.0, 20.0),
    ],
)
def test_relative_targets(text: str, base: float, expected: float) -> None:
    assert target(parse_criterion(text), base) == expected


def test_operation_order_matters() -> None:
    # multiply first, then divide: 3 * 110 / 100 == 3.3, but 3 * (110 / 100) == 3.3000000000000003
    assert 3.0 * (110 / 100) != 3.3
    assert target(parse_criterion("<=+10%"), 3.0) == 3.3
    assert target(parse_criterion(">=-15%"), 7.0) == 7.0 * 85 / 100


def test_percentiles_reference() -> None:
    values = [float(v) for v in range(11)]
    assert percentile(values, 0.5) == 5.0
    assert percentile(values, 0.9) == 9.8
    assert percentile(values, 0.95) == 10.0
    assert aggregate(values, "p50") == 5.0
    assert aggregate(values, "p90") == 9.8
    assert aggregate(values, "p95") == 10.0
    assert aggregate(values, "avg") == 5.0


def test_percentile_edges() -> None:
    assert percentile([3.0], 0.5) == 3.0  # pos 1 >= n 1 -> largest
    assert percentile([1.0, 2.0], 0.1) == 1.0  # pos < 1 -> smallest
    assert percentile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.5  # unsorted input


@pytest.mark.parametrize("fn", ["p99", "max", "AVG", ""])
def test_unknown_aggregate_is_zero(fn: str) -> None:
    assert aggregate([1.0, 2.0, 3.0], fn) == 0.0


def test_compare_operators() -> None:
    assert compare(1, "<", 2) and not compare(2, "<", 2)
    assert compare(2, "<=", 2) and compare(2, "=", 2) and compare(2, ">=", 2)
    assert compare(3, ">", 2) and not compare(math.nan, "=", math.nan)
    assert not compare(1, "!=", 2)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1e3", 1000.0),
        (".5", 0.5),
        ("5.", 5.0),
        ("Inf", math.inf),
        ("-infinity", -math.inf),
        ("+INF", math.inf),
        ("0x1p-2", 0.25),
        ("0X1.8P1", 3.0),
        ("1_23.50_0_0e+1_2", 1.235e14),  # Go's own test table accepts digit-separating underscores
        ("0x_1_2.3_4_5p+1_2", float.fromhex("0x12.345p12")),
        ("1e-400", 0.0),
        ("-0", -0.0),
    ],
)
def test_go_float_accepts(text: str, value: float) -> None:
    assert parse_go_float(text) == value


def test_go_float_nan() -> None:
    assert math.isnan(parse_go_float("nAn"))


@pytest.mark.parametrize(
    "text",
    ["", " 1", "1 ", "1_", "_1", "1__0", "1_.5", "1._5", "0x1", "0x", ".", "e5", "1e", "+nan", "infin",
     "1,5", "1e400", "0x1p99999", "١", "1.2.3", "--1", "0b101", "0o7", "1e+_2"],
)  # fmt: skip
def test_go_float_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_go_float(text)


finite = st.floats(allow_nan=False, allow_infinity=False)


@given(finite)
def test_any_finite_float_repr_parses(x: float) -> None:
    assert parse_go_float(repr(x)) == x
    assert parse_go_float(x.hex()) == x


@given(st.integers(min_value=0, max_value=10**12))
def test_integers_parse(n: int) -> None:
    assert parse_go_float(str(n)) == float(n)
    assert parse_go_float(f"{n:_}") == float(n)  # underscores between digits are Go syntax


@given(st.text(alphabet=" \t\n_", min_size=1, max_size=3), st.integers(0, 999))
def test_whitespace_or_stray_underscores_rejected(junk: str, n: int) -> None:
    for text in (junk + str(n), str(n) + junk):
        with pytest.raises(ValueError):
            parse_go_float(text)


@given(
    st.sampled_from(["<=", "<", "=", ">=", ">"]),
    st.sampled_from(["", "+", "-"]),
    st.floats(min_value=0, max_value=1e6, allow_nan=False),
    st.booleans(),
)
def test_grammar_round_trip(op: str, sign: str, value: float, pct: bool) -> None:
    text = f"{op}{sign}{value!r}{'%' if pct else ''}"
    c = parse_criterion(text)
    assert c.operator == op
    assert c.value == value
    assert c.percentage is pct
    assert c.relative is (pct or sign != "")
    assert c.increase is (sign == "+" or (sign == "" and pct))


@given(st.text(max_size=12))
def test_parse_never_crashes(text: str) -> None:
    try:
        c = parse_criterion(text)
    except ValueError as exc:
        assert str(exc) in (INVALID_CRITERIA, UNPARSABLE_TARGET)
    else:
        assert c.operator in ("<=", "<", "=", ">=", ">")
        assert text.replace(" ", "")[0] in "<=>"


@given(
    st.floats(min_value=-1e9, max_value=1e9, allow_nan=False),
    st.floats(min_value=0, max_value=1000, allow_nan=False),
    st.sampled_from(["+", "-"]),
    st.booleans(),
)
def test_targets_for_random_bases(base: float, v: float, sign: str, pct: bool) -> None:
    c = parse_criterion(f"<={sign}{v!r}{'%' if pct else ''}")
    t = target(c, base)
    if pct:
        expected = base * ((100 + v) if sign == "+" else (100 - v)) / 100
    else:
        expected = base + v if sign == "+" else base - v
    assert t == expected or (math.isnan(t) and math.isnan(expected))
