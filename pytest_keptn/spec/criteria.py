"""Keptn 0.8.7 criterion strings, parsed as lighthouse's ``parseCriteriaString`` does (§3), and
Go's ``strconv.ParseFloat`` syntax they use."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

OPERATORS = ("<=", "<", "=", ">=", ">")
INVALID_CRITERIA = "invalid criteria string"
UNPARSABLE_TARGET = "could not parse criteria target value"

# Go strconv.ParseFloat syntax (decimal and hexadecimal), underscores checked separately.
_DEC = re.compile(r"[+-]?(?:[0-9_]+\.?[0-9_]*|\.[0-9_]+)(?:[eE][+-]?[0-9_]+)?")
_HEX = re.compile(r"[+-]?0[xX](?:[0-9a-fA-F_]+\.?[0-9a-fA-F_]*|\.[0-9a-fA-F_]+)[pP][+-]?[0-9_]+")
_SPECIAL = re.compile(r"[+-]?(?:inf|infinity)|nan", re.IGNORECASE)


def _underscore_ok(s: str) -> bool:
    """Go's ``underscoreOK``: underscores only between digits (or after a base prefix)."""
    saw = "^"
    i = 0
    if s[:1] in ("+", "-"):
        s = s[1:]
    hexa = False
    if len(s) >= 2 and s[0] == "0" and s[1] in "xXbBoO":
        i = 2
        saw = "0"
        hexa = s[1] in "xX"
    while i < len(s):
        c = s[i]
        if c.isdigit() or (hexa and c.lower() in "abcdef"):
            saw = "0"
        elif c == "_":
            if saw != "0":
                return False
            saw = "_"
        else:
            if saw == "_":
                return False
            saw = "!"
        i += 1
    return saw != "_"


def parse_go_float(text: str) -> float:
    """Parse like Go's ``strconv.ParseFloat(text, 64)``; ``ValueError`` on a syntax error.

    Accepts ``1e3``, ``.5``, ``5.``, ``inf``/``infinity``/``nan`` in any case (signed infinities)
    and hexadecimal floats (``0x1p-2``); rejects surrounding whitespace, empty strings and
    misplaced underscores. A finite literal that overflows float64 is an error (Go returns
    ``ErrRange``, which lighthouse treats as a parse failure); underflow gives 0 as in Go.
    """
    if not text.isascii():
        raise ValueError(f"invalid float {text!r}")
    if _SPECIAL.fullmatch(text):
        low = text.lower()
        if low == "nan":
            return math.nan
        return -math.inf if low.startswith("-") else math.inf
    if _HEX.fullmatch(text):
        if "_" in text and not _underscore_ok(text):
            raise ValueError(f"invalid float {text!r}")
        clean = text.replace("_", "")
        sign = -1.0 if clean.startswith("-") else 1.0
        body = clean.lstrip("+-")
        mant, _, exp = body[2:].partition("p") if "p" in body else body[2:].partition("P")
        if not any(c in "0123456789abcdefABCDEF" for c in mant):
            raise ValueError(f"invalid float {text!r}")
        if "." not in mant:
            mant += "."
        try:
            return sign * float.fromhex(f"0x{mant}p{exp}")
        except OverflowError:
            raise ValueError(f"value out of range {text!r}") from None
    if _DEC.fullmatch(text):
        if not any(c.isdigit() for c in text.split("e")[0].split("E")[0]):
            raise ValueError(f"invalid float {text!r}")
        if "_" in text and not _underscore_ok(text):
            raise ValueError(f"invalid float {text!r}")
        result = float(text.replace("_", ""))
        if math.isinf(result):
            raise ValueError(f"value out of range {text!r}")
        return result
    raise ValueError(f"invalid float {text!r}")


@dataclass(frozen=True)
class Criterion:
    """One criterion string of an objective, parsed (``valid=False``: Keptn 0.8.7 keeps it anyway)."""

    text: str
    operator: str = ""
    value: float = 0.0
    relative: bool = False
    percentage: bool = False
    increase: bool = False
    valid: bool = True
    error: str = ""


def parse_criterion(text: str) -> Criterion:
    """Parse a criterion string exactly as lighthouse 0.8.7 does; ``ValueError`` with its message."""
    s = text.replace(" ", "")
    if not s or s[0] not in "<=>|":
        raise ValueError(INVALID_CRITERIA)
    operator = ""
    for op in OPERATORS:
        if s.startswith(op):
            operator = op
            s = s[len(op) :]
            break
    percentage = relative = increase = False
    if s.endswith("%"):
        percentage = relative = increase = True
        s = s[:-1]
    if s.startswith("-"):
        relative, increase = True, False
        s = s[1:]
    elif s.startswith("+"):
        relative, increase = True, True
        s = s[1:]
    try:
        value = parse_go_float(s)
    except ValueError:
        raise ValueError(UNPARSABLE_TARGET) from None
    if not operator:
        raise ValueError(UNPARSABLE_TARGET)
    return Criterion(text, operator, value, relative, percentage, increase)


def invalid_criterion(text: str, error: str) -> Criterion:
    return Criterion(text, valid=False, error=error)
