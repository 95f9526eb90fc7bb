"""Sample gate results for the report tests: the tutorial's hardening stage delivering v0.1.1
several times and then the v0.1.2 regression, plus a hostile SLI name."""

from __future__ import annotations

import random
from typing import Any

from pytest_keptn.report.html import HistoryEntry, StageReport

XSS = "<script>alert(1)</script>"


def target(criteria: str, value: float, violated: bool) -> dict[str, Any]:
    return {"criteria": criteria, "targetValue": value, "violated": violated}


def row(metric: str, value: float, status: str, score: float, passes: list[dict[str, Any]] | None,
        warnings: list[dict[str, Any]] | None = None, *, key: bool = False,
        display: str = "", success: bool = True, message: str = "") -> dict[str, Any]:
    v: dict[str, Any] = {"metric": metric, "value": value, "success": success}
    if message:
        v["message"] = message
    return {"score": score, "value": v, "displayName": display, "passTargets": passes,
            "warningTargets": warnings, "keySli": key, "status": status}


def tutorial_data(tag: str, rt: float, throughput: float, previous: float, goroutines: float,
                  hostile: float) -> tuple[dict[str, Any], str, float]:
    rt_row = row("http_response_time_seconds_main_page_sum", rt,
                 "pass" if rt <= 1 else "fail", 1 if rt <= 1 else 0,
                 [target("<=1", 1, rt > 1)], [target("<=0.5", 0.5, rt > 0.5)])
    hi, lo = previous * 2, previous * 0.2
    tp_ok = lo <= throughput <= hi
    tp_row = row("request_throughput", throughput, "pass" if tp_ok else "fail", 1 if tp_ok else 0,
                 [target("<=+100%", hi, throughput > hi), target(">=-80%", lo, throughput < lo)])
    go_row = row("go_routines", goroutines, "pass" if goroutines <= 100 else "fail",
                 1 if goroutines <= 100 else 0, [target("<=100", 100, goroutines > 100)])
    xss_row = row(XSS, hostile, "info", 0, None, None, display=f"{XSS} & friends")
    rows = [rt_row, tp_row, go_row, xss_row]
    score = 100.0 * sum(r["score"] for r in rows) / 3
    result = "pass" if score >= 90 else "warning" if score >= 75 else "fail"
    data = {
        "project": "pod-tato-head", "stage": "hardening", "service": "helloservice",
        "status": "succeeded", "result": result,
        "evaluation": {
            "timeStart": "2024-05-01T12:00:00.000Z", "timeEnd": "2024-05-01T12:00:10.000Z",
            "result": result, "score": score, "sloFileContent": "",
            "indicatorResults": rows, "comparedEvents": ["e-prev"], "gitCommit": "",
        },
    }
    return data, result, score


def tutorial_stages() -> list[StageReport]:
    history: list[HistoryEntry] = []
    previous = 180.0
    rnd = random.Random(7)
    for i in range(8):
        tag = "v0.1.1"
        tp = 180 + rnd.uniform(-20, 20)
        data, result, score = tutorial_data(tag, 0.006 + rnd.uniform(0, 0.003), tp, previous,
                                            9 + rnd.randint(0, 3), rnd.uniform(0, 5))
        history.insert(0, HistoryEntry(f"e{i}", f"2024-05-01T1{i}:00:00.000Z",
                                       "gabrieltanner/hello-server", tag, result, score, data))
        previous = tp
    data, result, score = tutorial_data("v0.1.2", 1.21, 40.5, previous, 158, 3)
    current = HistoryEntry("e-current", "2024-05-01T19:00:00.000Z", "gabrieltanner/hello-server",
                           "v0.1.2", result, score, data)
    history.insert(0, current)
    hardening = StageReport(
        project="pod-tato-head", stage="hardening", service="helloservice",
        image="gabrieltanner/hello-server", tag="v0.1.2", result=result, score=score,
        pass_threshold=90, warning_threshold=75, data=data, history=history,
        queries={
            "http_response_time_seconds_main_page_sum":
                'sum(rate(http_server_request_duration_seconds_sum{method="GET",route="/",'
                'status_code="200",job="helloservice-pod-tato-head-hardening-canary"}[10s])/'
                'rate(http_server_request_duration_seconds_count{method="GET",route="/",'
                'status_code="200",job="helloservice-pod-tato-head-hardening-canary"}[10s]))',
            "request_throughput": 'sum(rate(http_requests_total{status="success"}[10s]))',
            "go_routines": 'go_goroutines{job="helloservice-pod-tato-head-hardening"}',
            XSS: f'up{{job="{XSS}"}}',
        },
        basis={"request_throughput": "avg of 1 previous pass evaluation (single_result)",
               XSS: f"basis {XSS}"},
        sequence_result="rolled back; production keeps v0.1.1",
        note=f"note with {XSS}",
        tasks=(("deployment", "pass", 3.2, "canary at http://127.0.0.1:8081"),
               ("test", "pass", 12.4, f"400 requests {XSS}"),
               ("evaluation", "fail", 1.1, "hardening: fail, score 33.3% < 75% (warning)"),
               ("rollback", "pass", 0.4, "canary removed")),
    )
    production = StageReport(
        project="pod-tato-head", stage="production", service="helloservice",
        image="gabrieltanner/hello-server", tag="v0.1.1", result="", score=0,
        pass_threshold=90, warning_threshold=75, data={}, history=[],
        sequence_result="not triggered (hardening failed)",
        tasks=tuple((task, "not run", 0.0, "not triggered: hardening.delivery finished with fail")
                    for task in ("deployment", "release")),
    )
    return [hardening, production]


def big_stage(slis: int = 50, evaluations: int = 30) -> StageReport:
    rnd = random.Random(11)
    history = []
    for e in range(evaluations):
        rows = []
        for s in range(slis):
            value = rnd.uniform(0, 2)
            status = rnd.choice(["pass", "pass", "pass", "warning", "fail", "info"])
            if e % 7 == 3 and s % 5 == 0:
                continue  # missing result: a "none" cell
            rows.append(row(f"sli_{s:02d}_with_a_rather_long_indicator_name", value, status,
                            {"pass": 1, "warning": 0.5}.get(status, 0),
                            [target("<=1.5", 1.5, value > 1.5),
                             target("<=+10%", 1.1 + rnd.uniform(0, 0.2), False)],
                            [target("<=1.8", 1.8, value > 1.8)]))
        score = rnd.uniform(40, 100)
        result = "pass" if score >= 90 else "warning" if score >= 75 else "fail"
        data = {"result": result, "evaluation": {"score": score, "result": result,
                                                  "indicatorResults": rows}}
        history.insert(0, HistoryEntry(f"id{e}", f"2024-05-{1 + e % 28:02d}T10:00:00Z", "img",
                                       f"v1.{e}", result, score, data))
    current = history[0]
    return StageReport("p", "hardening", "svc", "img", current.tag, current.result,
                       current.score, 90, 75, current.data, history)
