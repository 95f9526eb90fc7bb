from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pytest_keptn.errors import ProviderError
from pytest_keptn.model import Window
from pytest_keptn.prometheus.provider import jobs_in
from pytest_keptn.prometheus.render import builtin_query, ratio_numerator, render_query

END = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)
WINDOW = Window(END - timedelta(seconds=299.2), END)
KW = dict(project="pod-tato-head", stage="hardening", service="helloservice", window=WINDOW)

TUTORIAL = {
    "http_response_time_seconds_main_page_sum": 'sum(rate(http_server_request_duration_seconds_sum{method="GET",route="/",status_code="200",job="$SERVICE-$PROJECT-$STAGE-canary"}[$DURATION_SECONDS])/rate(http_server_request_duration_seconds_count{method="GET",route="/",status_code="200",job="$SERVICE-$PROJECT-$STAGE-canary"}[$DURATION_SECONDS]))',
    "go_routines": 'go_goroutines{job="$SERVICE-$PROJECT-$STAGE"}',
}


def test_tutorial_queries_render() -> None:
    q = render_query("x", TUTORIAL["http_response_time_seconds_main_page_sum"], **KW)  # type: ignore[arg-type]
    assert 'job="helloservice-pod-tato-head-hardening-canary"}[300s]' in q
    assert "$" not in q
    assert render_query("go_routines", TUTORIAL["go_routines"], **KW) == (  # type: ignore[arg-type]
        'go_goroutines{job="helloservice-pod-tato-head-hardening"}'
    )


def test_order_lower_case_substring_deployment_and_labels() -> None:
    q = render_query(
        "x",
        'm{a="$service",b="$SERVICE_NAME",d="$DEPLOYMENT",l="$LABEL.buildId",s="$LABEL.b"}',
        deployment="primary",
        labels={"b": "short", "buildId": "42"},
        **KW,  # type: ignore[arg-type]
    )
    assert q == 'm{a="helloservice",b="helloservice_NAME",d="primary",l="42",s="short"}'


def test_filters_first_with_upper_case_and_quotes_removed() -> None:
    q = render_query(
        "x", 'm{h="$handler",s="$SERVICE",u="$HANDLER"}', filters={"handler": "'/api'", "service": "svc"}, **KW  # type: ignore[arg-type]
    )
    assert q == 'm{h="/api",s="svc",u="/api"}'


@pytest.mark.parametrize(
    "value",
    ['x"}) or vector(1) #', "x\\\"} or up{a=\"", "a\nb", "}\"",],
)
def test_values_cannot_break_out_of_a_matcher(value: str) -> None:
    q = render_query("x", 'sum(m{job="$LABEL.v"})', labels={"v": value}, **KW)  # type: ignore[arg-type]
    # the value is inside one string literal: find its end by scanning escapes
    body = q[len('sum(m{job="'):]
    i = 0
    while body[i] != '"':
        i += 2 if body[i] == "\\" else 1
    assert body[i:] == '"})'


def test_single_quoted_literal_escapes_single_quote() -> None:
    q = render_query("x", "m{job='$LABEL.v'}", labels={"v": "a'} or up{b='"}, **KW)  # type: ignore[arg-type]
    assert q == "m{job='a\\'} or up{b=\\''}"


def test_value_outside_literal_must_be_a_plain_token() -> None:
    with pytest.raises(ProviderError, match=r"^x: .*\$LABEL\.v.*outside a string"):
        render_query("x", "rate(m[$LABEL.v])", labels={"v": "5m]) or vector(1"}, **KW)  # type: ignore[arg-type]
    assert render_query("x", "rate(m[$LABEL.v])", labels={"v": "5m"}, **KW) == "rate(m[5m])"  # type: ignore[arg-type]


def test_unresolved_placeholder_names_indicator() -> None:
    with pytest.raises(ProviderError) as info:
        render_query("my_sli", 'm{job="$NAMESPACE"}', **KW)  # type: ignore[arg-type]
    assert str(info.value).startswith("my_sli: placeholder $NAMESPACE is not resolved")
    with pytest.raises(ProviderError, match=r"\$LABEL\.missing"):
        render_query("my_sli", 'm{job="$LABEL.missing"}', **KW)  # type: ignore[arg-type]


def test_regex_dollar_is_not_a_placeholder() -> None:
    assert render_query("x", 'm{a=~"^x$"}', **KW) == 'm{a=~"^x$"}'  # type: ignore[arg-type]


def test_builtins() -> None:
    t = builtin_query("throughput", **KW)  # type: ignore[arg-type]
    assert t == "sum(rate(http_requests_total{job='helloservice-pod-tato-head-hardening-canary'}[300s]))"
    e = builtin_query("error_rate", filters={"handler": "=~'/a|/b'", "x": "y\"}"}, **KW)  # type: ignore[arg-type]
    assert e is not None and "or vector(0)" in e
    assert "handler=~'/a|/b'" in e and "x='y}'" in e
    p = builtin_query("response_time_p95", filters={"job": "other"}, **KW)  # type: ignore[arg-type]
    assert p == "histogram_quantile(0.95,sum(rate(http_response_time_milliseconds_bucket{job='other'}[300s]))by(le))"
    assert builtin_query("nope", **KW) is None  # type: ignore[arg-type]
    with pytest.raises(ProviderError, match="label name"):
        builtin_query("throughput", filters={"bad key": "v"}, **KW)  # type: ignore[arg-type]


def test_jobs_in() -> None:
    q = "a{job=\"x-canary\"} / b{job='y'} + c{job=\"x-canary\"} + d{job=~\"z\"}"
    assert jobs_in(q) == ["x-canary", "y"]


def test_provider_reports_unresolved_placeholder_without_querying() -> None:
    from pathlib import Path

    from pytest_keptn.config import Settings
    from pytest_keptn.model import SLIStatus, StageContext
    from pytest_keptn.prometheus.provider import PrometheusSLIProvider

    ctx = StageContext(
        project="p", service="s", stage="dev", image="i", tag="t", root=Path("."),
        workdir=Path("."), settings=Settings(),
        sli_indicators={"broken": 'up{job="$NAMESPACE"}'},
        prometheus_url="http://127.0.0.1:9",  # nothing listens: it must not be asked
    )
    got = PrometheusSLIProvider().pytest_keptn_get_sli(ctx, ["broken", "locust_x"], WINDOW, "canary", None)
    assert got is not None and len(got) == 1
    assert got[0].status is SLIStatus.QUERY_ERROR and not got[0].success
    assert got[0].message.startswith("broken: placeholder $NAMESPACE is not resolved")


@pytest.mark.parametrize(("query", "numerator"), [
    ('sum(rate(a{s="5.."}[1m]))/sum(rate(b[1m]))', 'sum(rate(a{s="5.."}[1m]))'),
    ("sum by (job) (a) / on(job) sum by (job) (b) * 100", "sum by (job) (a)"),
    ('a{path="/x"} / b', 'a{path="/x"}'),
    ("sum(a / b)", None),  # not a ratio at the top level
    ("a + b / c", None),  # the numerator is b, not a + b: no advice rather than wrong advice
    ("x or y / z", None),
    ("(a or vector(0)) / b", "(a or vector(0))"),
])
def test_ratio_numerator(query: str, numerator: str | None) -> None:
    assert ratio_numerator(query) == numerator


def test_error_rate_is_keptns_text_under_compat() -> None:
    window = Window(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 0, 1, tzinfo=UTC))
    names = {"project": "p", "stage": "s", "service": "v", "window": window}
    assert builtin_query("error_rate", **names, compat="0.8.7") == (  # type: ignore[arg-type]
        "sum(rate(http_requests_total{job='v-p-s-canary',status!~'2..'}[60s]))"
        "/sum(rate(http_requests_total{job='v-p-s-canary'}[60s]))")
    assert builtin_query("error_rate", **names).startswith(  # type: ignore[arg-type]
        "(sum(rate(http_requests_total{job='v-p-s-canary',status!~'2..'}[60s])) or vector(0))/")
