"""Render an indicator's PromQL from ``sli.yaml`` with Keptn's placeholders (semantics §10.2, §10.3).

Substitution follows Keptn's order (SLO filters ``$k`` then ``$K``; ``$PROJECT``, ``$STAGE``,
``$SERVICE`` and their lower-case forms; ``$DURATION_SECONDS``; then the later providers'
``$DEPLOYMENT`` and ``$LABEL.<name>``) and Keptn's substring matching (``$SERVICE_NAME`` becomes
``<service>_NAME``), but in one pass, so a substituted value is never substituted again.

SLO filter values are pasted verbatim, as Keptn pastes them (after removing their ``'`` and ``"``
characters, as Keptn does): a regex filter ``Items\\.get`` written for Keptn keeps its escape,
and a value may stand outside a literal (``sum by ($GROUPBY)``, a negative number). Only a value
that cannot give valid PromQL is refused: inside a string literal, one that would end it (its
quote character, a newline) or escape its closing quote (a trailing backslash). The collection
checks this for every objective's query (:func:`filter_problem`), naming the slo.yaml.

Every other value (``$LABEL.<name>``, the names) is escaped for where it lands: inside a
``"..."`` or ``'...'`` literal for that literal (backslash, the quote character, newlines), so
``"}`` inside a value stays text and cannot close the matcher; inside a raw ```...``` literal it
may not contain a backtick or a newline; outside any literal it must be a plain token
(letters, digits, ``_ : .``), else the indicator is rejected.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from pytest_keptn.errors import ProviderError
from pytest_keptn.model import COMPAT_087, Window

BUILTIN_INDICATORS = (
    "throughput",
    "error_rate",
    "response_time_p50",
    "response_time_p90",
    "response_time_p95",
)

_PLAIN_TOKEN = re.compile(r"[A-Za-z0-9_:.]*\Z")
_LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_UNRESOLVED = re.compile(r"\$[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)?")
_OPERATORS = ("!=", "=~", "!~", "=")  # two-character operators first


def _escape_in_literal(value: str, quote: str, name: str, placeholder: str) -> str:
    if quote == "`":
        if "`" in value or "\n" in value or "\r" in value:
            raise ProviderError(
                f"value of {placeholder} cannot go inside a `raw` string (backtick or newline)",
                field=name,
            )
        return value
    out = []
    for ch in value:
        if ch == "\\":
            out.append("\\\\")
        elif ch == quote:
            out.append("\\" + quote)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            raise ProviderError(f"value of {placeholder} contains a control character", field=name)
        else:
            out.append(ch)
    return "".join(out)


def _verbatim_problem(value: str, quote: str | None) -> str | None:
    """Why an SLO filter value pasted verbatim cannot give valid PromQL where it lands."""
    if quote is None:
        return None
    where = {"`": "the `raw` string literal", "'": "the '...' string literal",
             '"': 'the "..." string literal'}[quote]
    if quote in value:
        return f"would end {where} it stands in (it contains {quote})"
    if "\n" in value or "\r" in value:
        return f"would end {where} it stands in (it contains a newline)"
    if quote != "`" and (len(value) - len(value.rstrip("\\"))) % 2:
        return f"would escape the closing quote of {where} it stands in (a trailing backslash)"
    return None


def _substitute(name: str, template: str, replacements: list[tuple[str, str]],
                verbatim: frozenset[str] = frozenset()) -> str:
    """Replace placeholders in one pass, escaping each value for where it lands (values of the
    ``verbatim`` placeholders, the SLO filters, are pasted as they are)."""
    out: list[str] = []
    quote: str | None = None  # the literal we are in, if any
    i = 0
    n = len(template)
    while i < n:
        ch = template[i]
        if ch == "$":
            for placeholder, value in replacements:
                if template.startswith(placeholder, i):
                    if placeholder in verbatim:
                        problem = _verbatim_problem(value, quote)
                        if problem:
                            raise ProviderError(f"SLO filter value {value!r} of {placeholder} "
                                                f"{problem}", field=name)
                        out.append(value)
                    elif quote is None:
                        if not _PLAIN_TOKEN.match(value):
                            raise ProviderError(
                                f"value {value!r} of {placeholder} is used outside a string"
                                " literal and may only contain letters, digits, '_', ':' and '.'",
                                field=name,
                            )
                        out.append(value)
                    else:
                        out.append(_escape_in_literal(value, quote, name, placeholder))
                    i += len(placeholder)
                    break
            else:
                out.append(ch)
                i += 1
            continue
        if quote is None:
            if ch in "\"'`":
                quote = ch
        elif ch == "\\" and quote != "`" and i + 1 < n:
            out.append(ch)
            out.append(template[i + 1])
            i += 2
            continue
        elif ch == quote:
            quote = None
        out.append(ch)
        i += 1
    rendered = "".join(out)
    return rendered


def _replacements(
    *,
    project: str,
    stage: str,
    service: str,
    window: Window,
    filters: Mapping[str, str],
    deployment: str,
    labels: Mapping[str, str],
) -> list[tuple[str, str]]:
    reps: list[tuple[str, str]] = []
    for key, value in filters.items():
        clean = str(value).replace("'", "").replace('"', "")
        reps.append(("$" + key, clean))
        reps.append(("$" + key.upper(), clean))
    reps += [
        ("$PROJECT", project),
        ("$STAGE", stage),
        ("$SERVICE", service),
        ("$project", project),
        ("$stage", stage),
        ("$service", service),
        ("$DURATION_SECONDS", window.duration_placeholder),
        ("$DEPLOYMENT", deployment),
    ]
    for key in sorted(labels, key=len, reverse=True):
        reps.append(("$LABEL." + key, str(labels[key])))
    return reps


def render_query(
    name: str,
    template: str,
    *,
    project: str,
    stage: str,
    service: str,
    window: Window,
    filters: Mapping[str, str] = {},
    deployment: str = "canary",
    labels: Mapping[str, str] = {},
) -> str:
    """Render indicator ``name``'s PromQL ``template`` (§10.2).

    Raises :class:`ProviderError` naming the indicator when a ``$PLACEHOLDER`` is left
    unresolved or a value cannot be substituted safely.
    """
    reps = _replacements(
        project=project,
        stage=stage,
        service=service,
        window=window,
        filters=filters,
        deployment=deployment,
        labels=labels,
    )
    verbatim = frozenset(p for k in filters for p in ("$" + k, "$" + k.upper()))
    rendered = _substitute(name, template, reps, verbatim)
    # Only the template's own text can still hold placeholders: values were escaped, not
    # re-scanned. Check the template with the known placeholders removed.
    leftover = template
    for placeholder, _ in reps:
        leftover = leftover.replace(placeholder, "")
    match = _UNRESOLVED.search(leftover)
    if match:
        raise ProviderError(
            f"placeholder {match.group(0)} is not resolved (known: $PROJECT, $STAGE, $SERVICE,"
            " $DURATION_SECONDS, $DEPLOYMENT, $LABEL.<name>, SLO filter keys)",
            field=name,
        )
    return rendered


def filter_problem(template: str | None, key: str, value: str) -> str | None:
    """Why SLO filter ``key: value`` cannot be pasted into ``template`` (an sli.yaml query, or
    None for a built-in query, where it becomes a label matcher), or None."""
    try:
        if template is None:
            _filter_matcher("", key, value)
        else:
            clean = str(value).replace("'", "").replace('"', "")
            reps = [("$" + key, clean), ("$" + key.upper(), clean)]
            _substitute("", template, reps, frozenset(p for p, _ in reps))
    except ProviderError as exc:
        return exc.message
    return None


def _filter_matcher(name: str, key: str, value: str) -> str:
    if not _LABEL_NAME.match(key):
        raise ProviderError(f"SLO filter key {key!r} is not a Prometheus label name", field=name)
    value = str(value)
    for op in _OPERATORS:
        if value.startswith(op):
            rest = value[len(op):].strip()
            if len(rest) >= 2 and rest[0] == rest[-1] and rest[0] in "'\"":
                rest = rest[1:-1]
            break
    else:
        op, rest = "=", value.replace("'", "").replace('"', "")
    # pasted verbatim, as Keptn does: a regex escape (``Items\\.get``) stays as written
    problem = _verbatim_problem(rest, "'")
    if problem:
        raise ProviderError(f"SLO filter {key}: value {rest!r} {problem}", field=name)
    return f"{key}{op}'{rest}'"


def default_filter(
    name: str, *, project: str, stage: str, service: str, filters: Mapping[str, str] = {}
) -> str:
    """Keptn's default label matchers ``F`` (§10.3): the canary job, then one per SLO filter."""
    job = _escape_in_literal(f"{service}-{project}-{stage}-canary", "'", name, "job")
    matchers = [] if "job" in filters else [f"job='{job}'"]
    matchers += [_filter_matcher(name, k, v) for k, v in filters.items()]
    return ",".join(matchers)


def builtin_query(
    name: str,
    *,
    project: str,
    stage: str,
    service: str,
    window: Window,
    filters: Mapping[str, str] = {},
    compat: str | None = None,
) -> str | None:
    """The built-in query for ``name`` (§10.3), or None when there is none.

    ``error_rate`` is written so that no errors yields 0, not an empty vector (a documented
    difference); ``compat="0.8.7"`` gives Keptn's exact text, whose empty result Keptn counts
    as 0.
    """
    if name not in BUILTIN_INDICATORS:
        return None
    f = default_filter(name, project=project, stage=stage, service=service, filters=filters)
    d = window.duration_placeholder
    if name == "throughput":
        return f"sum(rate(http_requests_total{{{f}}}[{d}]))"
    if name == "error_rate":
        errors = f"sum(rate(http_requests_total{{{f},status!~'2..'}}[{d}]))"
        if compat != COMPAT_087:
            errors = f"({errors} or vector(0))"
        return f"{errors}/sum(rate(http_requests_total{{{f}}}[{d}]))"
    quantile = "0." + name[-2:]
    return (
        f"histogram_quantile({quantile},"
        f"sum(rate(http_response_time_milliseconds_bucket{{{f}}}[{d}]))by(le))"
    )


_OPEN, _CLOSE = "([{", ")]}"


def ratio_numerator(promql: str) -> str | None:
    """``a`` of a top-level ``a / b`` (or ``a / b * c ...``), or None when the query is not
    plainly such a ratio (a lower-precedence operator at the top level, or no ``/`` there)."""
    depth, quote, escaped = 0, "", False
    top: list[str] = []  # the query with everything inside brackets and strings blanked out
    for i, char in enumerate(promql):
        if quote:
            if escaped:
                escaped = False
            elif char == "\\" and quote != "`":
                escaped = True
            elif char == quote:
                quote = ""
            continue
        if char in "\"'`":
            quote = char
        elif char in _OPEN:
            depth += 1
        elif char in _CLOSE:
            depth -= 1
        elif depth == 0 and char in "+-<>=!^#":
            return None
        elif depth == 0 and char == "/":
            left = promql[:i].strip()
            words = f" {''.join(top)} ".replace("(", " ").replace(")", " ")
            if not left or any(f" {w} " in words for w in ("or", "and", "unless", "offset")):
                return None
            return left
        top.append(char if depth == 0 else " ")
    return None
