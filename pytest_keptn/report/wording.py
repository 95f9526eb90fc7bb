"""The words every output uses for a gate: numbers, targets, the verdict line and the
comparison basis. The terminal, the failure messages, markdown and HTML all call these, so a
gate reads the same wherever it is shown."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pytest_keptn.spec.criteria import parse_criterion

if TYPE_CHECKING:
    from pytest_keptn.gate.record import EvaluationRecord


def format_number(value: object) -> str:
    """Compact, stable number text: 1, 0.005235, 1.234e+06; ``–`` for none, others as given."""
    if type(value) is float and math.isfinite(value):  # the common case first (a report: ~10,000)
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.4g}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "–" if value is None else str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"


def format_percent(value: float) -> str:
    """A score or threshold in percent: ``33.3``, ``100``."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


# cached: a report of 50 SLIs x 30 evaluations asks ~14,000 times about a few distinct
# criteria (parsing them was half of its rendering time, bench_report.py)
@functools.lru_cache(maxsize=4096)
def criterion_shape(criteria: str) -> tuple[str, bool]:
    """(operator, relative?) of a criterion string such as ``<=+10%``; ``("=", False)`` for one
    that does not parse (Keptn 0.8.7 keeps those, violated)."""
    try:
        parsed = parse_criterion(criteria)
    except ValueError:
        return "=", False
    return parsed.operator, parsed.relative


NO_BASIS = "no earlier evaluation to compare with"


def without_basis(criteria: str, target_value: object, violated: bool,
                  compared: bool | None = None) -> bool:
    """A relative criterion with nothing to compare with: Keptn 0.8 shows it satisfied with a
    placeholder target 0. ``compared``: whether the objective had comparison values, when
    known (a stored evaluation does not say, so its target 0 tells)."""
    if not criterion_shape(criteria)[1] or violated:
        return False
    return not compared if compared is not None else target_value == 0


def target_text(criteria: str, target_value: object, violated: bool,
                compared: bool | None = None) -> str:
    """``target 100`` (the number the value was compared with), or the words for a relative
    criterion that had no earlier evaluation to compare with."""
    if without_basis(criteria, target_value, violated, compared):
        return NO_BASIS
    return f"target {format_number(target_value)}"


def targets_line(targets: Sequence[tuple[str, object, bool]] | None,
                 compared: bool | None = None) -> str:
    """``<=1 (target 1, violated), >=-80% (no earlier evaluation to compare with)``; ``-``
    for none."""
    if not targets:
        return "-"
    return ", ".join(f"{c} ({target_text(c, v, x, compared)}{', violated' if x else ''})"
                     for c, v, x in targets)


def verdict(stage: str, result: str, score: float, pass_threshold: float,
            warning_threshold: float | None, *, key_failed: Sequence[str] = (),
            key_sli_failed: bool = False) -> str:
    """One line per gate: ``hardening: fail, score 33.3% < 75% (warning)``."""
    pass_t = format_percent(pass_threshold)
    if result == "pass":
        tail = f">= {pass_t}% (pass)"
    elif result == "warning":
        tail = f"< {pass_t}% (pass), >= {format_percent(warning_threshold or 0.0)}% (warning)"
    elif warning_threshold is not None:
        tail = f"< {format_percent(warning_threshold)}% (warning)"
    else:
        tail = f"< {pass_t}% (pass)"
    if key_failed:
        tail += f", key SLI failed: {', '.join(key_failed)}"
    elif key_sli_failed:
        tail += ", a key SLI failed"
    return f"{stage}: {result}, score {score:.1f}% {tail}"


def errored_verdict(stage: str, message: str) -> str:
    """The verdict line of an evaluation that measured nothing (status errored)."""
    return f"{stage}: errored: {message}"


def outage_headline(statuses: Sequence[str]) -> str:
    """What kept the SLI provider from answering, from its answers' statuses."""
    for status, text in (("unauthorized", "Prometheus refused the credentials"),
                         ("unreachable", "Prometheus unreachable"),
                         ("server_error", "Prometheus failed (HTTP 5xx after the retries)"),
                         ("timeout", "Prometheus timed out")):
        if status in statuses:
            return text
    return "the SLI provider could not answer"


def record_verdict(stage: str, record: EvaluationRecord) -> str:
    """The verdict line of a scored gate (or of one that errored)."""
    if record.errored:
        return errored_verdict(stage, record.message)
    return verdict(stage, record.result, record.score, record.pass_threshold,
                   record.warning_threshold, key_failed=record.key_failed,
                   key_sli_failed=record.key_sli_failed)


def basis_selection(compare_with: str, include_result_with_score: str) -> str:
    """How the comparison basis was chosen: the slo.yaml's comparison, or pinned."""
    if compare_with.startswith("pinned"):
        return compare_with
    return f"{compare_with}, include_result_with_score={include_result_with_score}"


def basis_text(aggregate_function: str, values: Sequence[float], events: int,
               selection: str) -> str:
    """What relative criteria were compared with, in one line."""
    if not events:
        return NO_BASIS
    shown = ", ".join(format_number(v) for v in values) or "none"
    return (f"{aggregate_function} of {len(values)} value(s) [{shown}] from {events} earlier "
            f"evaluation(s) ({selection})")
