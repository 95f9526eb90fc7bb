"""The quality report: rendering rules, and the real thing inside pytest-html in headless Chromium."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
from report_samples import XSS, big_stage, tutorial_stages

from pytest_keptn.report.html import (
    HistoryEntry,
    RunEnvironment,
    RunningInstance,
    StageReport,
    format_number,
    format_percent,
    render_html,
    verdict,
)

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "build" / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Dom(HTMLParser):
    """Just enough of a DOM: elements with attributes, and which text sits inside which tag."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.stack: list[str] = []
        self.texts: list[tuple[tuple[str, ...], str]] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))
        if tag not in ("br", "img", "input", "meta", "link", "hr", "circle", "rect", "polyline"):
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.stack:
            while self.stack and self.stack.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        self.texts.append((tuple(self.stack), data))

    def with_class(self, cls: str) -> list[dict[str, str]]:
        return [a for _, a in self.elements if cls in a.get("class", "").split()]

    def text_in(self, tag: str) -> list[str]:
        return [t for stack, t in self.texts if stack and stack[-1] == tag]


# --- rendering rules ----------------------------------------------------------------------------


def test_numbers_and_percentages() -> None:
    assert format_percent(100.0) == "100"
    assert format_percent(100 / 3) == "33.3"
    assert format_percent(75.3) == "75.3"
    assert format_number(158) == "158"
    assert format_number(0.00523456) == "0.005235"
    assert format_number(None) == "–"
    assert format_number(float("nan")) == "nan"


def test_verdicts() -> None:
    hardening, production = tutorial_stages()
    assert verdict(hardening) == "hardening: fail, score 33.3% < 75% (warning)"
    assert verdict(production) == "production: no evaluation"
    passing = dataclasses.replace(hardening, result="pass", score=100.0)
    assert verdict(passing) == "hardening: pass, score 100.0% >= 90% (pass)"
    warning = dataclasses.replace(hardening, result="warning", score=80.0)
    assert verdict(warning) == "hardening: warning, score 80.0% < 90% (pass), >= 75% (warning)"
    no_warning = dataclasses.replace(hardening, warning_threshold=None)
    assert verdict(no_warning) == "hardening: fail, score 33.3% < 90% (pass)"


def test_every_string_is_escaped() -> None:
    out = render_html(tutorial_stages())
    assert XSS not in out
    assert "<script" not in out  # the report needs no script at all
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    dom = Dom(out)
    assert not [t for t, _ in dom.elements if t == "script"]
    assert any(XSS in text for _, text in dom.texts)


def test_the_markup_comes_from_autoescaped_templates() -> None:
    from pytest_keptn.report.templating import environment

    assert environment().autoescape is True
    package = REPO / "pytest_keptn" / "report"
    for module in ("html.py", "live.py", "endpoints.py"):  # nothing escapes or trusts by hand
        source = (package / module).read_text(encoding="utf-8")
        assert "import html\n" not in source and "escape(" not in source
        assert "Markup" not in source and "markupsafe" not in source
    for template in (package / "templates").iterdir():
        assert "|safe" not in template.read_text(encoding="utf-8").replace(" ", ""), template
    # the style sheet is the package's file, verbatim
    css = (package / "report.css").read_text(encoding="utf-8")
    assert f"<style>{css.rstrip()}</style>" in render_html(tutorial_stages())


def test_the_core_imports_the_report_without_jinja2() -> None:
    # a core install (no [html] extra) imports the report's dataclasses for the markdown
    # summary; only rendering HTML needs Jinja2
    code = ("import sys; sys.modules['jinja2'] = None\n"
            "import pytest_keptn.session.outcome, pytest_keptn.report.markdown\n"
            "from pytest_keptn.report import html\n"
            "assert 'jinja2' not in sys.modules or sys.modules['jinja2'] is None\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_report_structure() -> None:
    out = render_html(tutorial_stages())
    dom = Dom(out)
    assert [a["data-stage"] for a in dom.with_class("kq-stage")] == ["hardening", "production"]
    assert len(dom.with_class("kq-objectives")) == 1
    assert len(dom.with_class("kq-heatmap")) == 1
    # score row + 4 objectives, 9 evaluations (8 of v0.1.1 and the current v0.1.2)
    assert len(dom.with_class("kq-cell")) == 5 * 9
    assert len(dom.with_class("kq-current")) == 5 + 1  # a column: its header and 5 cells
    assert len(dom.with_class("kq-sparkline")) == 4
    assert "hardening: fail, score 33.3% &lt; 75% (warning)" in out
    assert "gabrieltanner/hello-server:v0.1.2" in out
    # computed targets and violated marks of the failing objectives
    assert "target 100" in out and "kq-violated" in out
    # queries in <code>, comparison basis text
    assert 'go_goroutines{job="helloservice-pod-tato-head-hardening"}' in "".join(
        Dom(out).text_in("code")
    )
    assert "avg of 1 previous pass evaluation (single_result)" in out


def test_heatmap_columns_are_oldest_to_newest_and_capped() -> None:
    stage = big_stage(slis=3, evaluations=40)
    dom = Dom(render_html([stage], max_evaluations=30))
    headers = [a["title"] for t, a in dom.elements if t == "th" and "title" in a and "\n" in a["title"]]
    tags = [h.split("\n")[0].split(":")[1] for h in headers]
    assert len(tags) == 30
    assert tags[-1] == "v1.39" and tags[0] == "v1.10"


def test_cell_titles_carry_value_targets_and_status() -> None:
    dom = Dom(render_html(tutorial_stages()))
    titles = [a["title"] for a in dom.with_class("kq-cell")]
    current = [t for t in titles if t.startswith("go_routines @ v0.1.2")]
    assert current == [
        "go_routines @ v0.1.2 2024-05-01T19:00:00.000Z\nvalue: 158\npass: <=100 (target 100) violated"
        "\nstatus: fail, score: 0"
    ]
    assert any(t.startswith("score @ v0.1.2") and "33.3%" in t for t in titles)


def sparklines(out: str) -> list[str]:
    return re.findall(r"<svg class=\"kq-sparkline\".*?</svg>", out, re.S)


def test_sparkline_bands_follow_absolute_and_relative_targets() -> None:
    stage = tutorial_stages()[0]
    out = render_html([stage])
    rt, throughput, goroutines, hostile = sparklines(out)
    # absolute "<=1" and "<=0.5": the same band in every evaluation, drawn once across the plot
    assert re.findall(r'<path class="kq-band-pass" d="M38.0,[0-9.]+h158.0v[0-9.]+h-158.0z"/>', rt)
    assert len(bands(rt, "pass")) == len(bands(rt, "warning")) == 1
    # relative "<=+100%" / ">=-80%": each evaluation's own targets, so the band moves
    assert len(set(bands(throughput, "pass"))) == 9 and bands(throughput, "warning") == []
    assert "kq-band" not in hostile  # informational: nothing to draw
    # a dot per evaluation, coloured by its status
    assert dots(goroutines) == {"pass": 8, "fail": 1}
    assert "&lt;script&gt;" in hostile


def bands(svg: str, kind: str) -> list[str]:
    """The upper edges of the chart's bands of ``kind``, one per rectangle."""
    paths = re.findall(rf'<path class="kq-band-{kind}" d="([^"]+)"', svg)
    return re.findall(r"M[0-9.]+,([0-9.]+)", "".join(paths))


def dots(svg: str) -> dict[str, int]:
    return {status: path.count("h0") for status, path in
            re.findall(r'<path class="kq-dot kq-(\w+)" d="([^"]+)"', svg)}


def texts(svg: str, cls: str) -> list[str]:
    return re.findall(rf'<text class="{cls}[^"]*"[^>]*>([^<]*)</text>', svg)


def test_each_chart_shows_its_scale_the_current_value_and_labelled_thresholds() -> None:
    rt, throughput, goroutines, hostile = sparklines(render_html(tutorial_stages()[:1]))
    # y axis: round min and max around the values and the thresholds
    assert (texts(rt, "kq-axis kq-axis-min"), texts(rt, "kq-axis kq-axis-max")) == (["0"], ["1.5"])
    assert texts(goroutines, "kq-axis kq-axis-max") == ["200"]
    # the current value, coloured by its status, at the end of the line
    assert texts(rt, "kq-now") == ["1.21"] and '<text class="kq-now kq-fail"' in rt
    assert texts(goroutines, "kq-now") == ["158"]
    # the thresholds as labelled bands: absolute ones as written, relative ones resolved
    # against the comparison value the evaluation had
    assert texts(rt, "kq-band-label") == ["pass ≤ 1", "warning ≤ 0.5"]
    assert texts(goroutines, "kq-band-label") == ["pass ≤ 100"]
    assert texts(throughput, "kq-band-label") == ["pass 36.48 – 364.8"]
    assert "&lt;=+100%: 364.8 against the comparison value" in throughput
    assert texts(hostile, "kq-band-label") == [] and texts(hostile, "kq-now") == ["3"]
    # labels are drawn inside the chart
    for svg in (rt, throughput, goroutines):
        for y in re.findall(r'<text class="kq-(?:band-label|now|axis)[^"]*" x="[^"]+" y="([^"]+)"', svg):
            assert 0 < float(y) <= 54


def test_missing_results_render_as_none_cells() -> None:
    stage = big_stage(slis=10, evaluations=10)
    dom = Dom(render_html([stage]))
    assert dom.with_class("kq-none")


def test_no_history_uses_the_current_evaluation() -> None:
    stage = dataclasses.replace(tutorial_stages()[0], history=[])
    dom = Dom(render_html([stage]))
    assert len(dom.with_class("kq-cell")) == 5


def test_error_event_without_results() -> None:
    data = {"status": "errored", "result": "fail", "message": "no target score defined",
            "evaluation": {"result": "fail", "score": 0, "indicatorResults": None}}
    stage = StageReport("p", "hardening", "s", "i", "t", "fail", 0, 90, None, data,
                        [HistoryEntry("1", "", "i", "t", "fail", 0, data)])
    out = render_html([stage])
    assert "no target score defined" in out and "No objectives were evaluated" in out


def test_50_slis_by_30_evaluations_renders_fast_and_sane() -> None:
    stage = big_stage(slis=50, evaluations=30)
    render_html([stage])  # warm up (imports, templates compiled once)
    times = []
    for _ in range(5):
        started = time.perf_counter()
        out = render_html([stage])
        times.append(time.perf_counter() - started)
    # ~25 ms on an idle 2-core machine (benchmarks/bench_report.py, docs/benchmarks.md); the
    # bound only catches a regression by an order of magnitude, never a busy neighbour
    assert statistics.median(times) < 1.0, times
    dom = Dom(out)
    heatmap_rows = [a for t, a in dom.elements if t == "tr"]
    assert len(dom.with_class("kq-cell")) == 51 * 30
    assert len(dom.with_class("kq-sparkline")) == len(stage.data["evaluation"]["indicatorResults"])
    assert len(heatmap_rows) >= 51
    assert out.count("<table") == out.count("</table>") == 2
    assert out.count("<svg") == out.count("</svg>")
    assert len(out) < 2_000_000


def environment_sample() -> RunEnvironment:
    return RunEnvironment(
        instances=[
            RunningInstance("hardening", "helloservice", "primary", "hello-server:v0.1.1",
                            "http://127.0.0.1:8081", 4242, serving=True),
            RunningInstance("production", XSS, "primary", f"hello-server:{XSS}",
                            "http://127.0.0.1:8082", 4243, serving=False),
        ],
        primaries="kept running after pytest exits (--keptn-keep-primaries)",
        prometheus="http://127.0.0.1:9093 (embedded, stops with the session)",
        history=".keptn/history.sqlite", events="build/events", logs=".keptn/logs",
        state_dir=".keptn", stop_command="python -m pytest_keptn stop --state-dir .keptn",
    )


def test_what_runs_where_after_the_run() -> None:
    out = render_html(tutorial_stages(), environment=environment_sample())
    where = out[out.index('<section class="kq-environment"'):]
    assert out.index("<section class=\"kq-environment\"") > out.rindex("<section class=\"kq-stage")
    dom = Dom(where)
    rows = [a for t, a in dom.elements if t == "tr"]
    assert len(rows) == 3  # a header and one line per instance, as `pytest-keptn status`
    assert "<td>hardening/helloservice</td><td>primary</td>" in where
    assert '<a href="http://127.0.0.1:8081">http://127.0.0.1:8081</a>' in where
    assert "pid 4242 (serving)" in where and "pid 4243 (gone)" in where
    for fact in ("kept running after pytest exits", "http://127.0.0.1:9093 (embedded",
                 ".keptn/history.sqlite", "build/events", ".keptn/logs",
                 "python -m pytest_keptn stop --state-dir .keptn"):
        assert fact in where, fact
    assert XSS not in out and f"production/{XSS}".replace("<", "&lt;").replace(">", "&gt;") in where
    nothing = render_html(tutorial_stages(), environment=RunEnvironment(primaries="x"))
    assert "No deployment is recorded" in nothing and "<dt>Events</dt>" not in nothing
    assert "<section class=\"kq-environment" not in render_html(tutorial_stages())


# --- inside pytest-html, in a real browser ------------------------------------------------------


CONFTEST = """
import json
from pathlib import Path

from pytest_keptn.report.html import HistoryEntry, RunEnvironment, RunningInstance, StageReport
from pytest_keptn.report.html import render_html


def _stages():
    raw = json.loads(Path(__file__).with_name("stages.json").read_text(encoding="utf-8"))
    return [StageReport(**{**s, "history": [HistoryEntry(**h) for h in s["history"]]}) for s in raw]


def _environment():
    raw = json.loads(Path(__file__).with_name("environment.json").read_text(encoding="utf-8"))
    return RunEnvironment(**{**raw, "instances": [RunningInstance(**i) for i in raw["instances"]]})


def pytest_html_results_summary(prefix, summary, postfix):
    prefix.append(render_html(_stages(), environment=_environment()))
"""

# What a reader sees, measured in the laid-out page: visibility, the objectives table inside the
# window (no horizontal scrolling), each chart's labels inside its drawing, the environment.
LAYOUT_PROBE = """<script>
(function () {
  function visible(el) {
    if (!el) return "missing";
    var r = el.getBoundingClientRect(), s = getComputedStyle(el);
    return (r.width > 0 && r.height > 0 && s.visibility !== "hidden" && s.display !== "none")
      ? "visible" : "hidden";
  }
  function texts(root, sel) {
    return Array.prototype.map.call(root.querySelectorAll(sel), function (e) {
      return e.textContent; });
  }
  var out = {};
  [".keptn-report", ".kq-heatmap", ".kq-objectives", ".kq-sparkline", ".kq-summary",
   ".kq-environment", ".kq-tasks"].forEach(function (s) {
    out[s] = visible(document.querySelector(s)); });
  var table = document.querySelector(".kq-objectives"), wrap = table.parentElement;
  var box = table.getBoundingClientRect();
  out.objectivesFit = box.right <= window.innerWidth && wrap.scrollWidth <= wrap.clientWidth + 1;
  out.objectivesWidth = Math.round(box.width);
  out.charts = Array.prototype.map.call(document.querySelectorAll(".kq-sparkline"), function (svg) {
    var frame = svg.getBoundingClientRect(), inside = true;
    svg.querySelectorAll("text").forEach(function (t) {
      var r = t.getBoundingClientRect();
      if (r.width === 0 || r.left < frame.left - 1 || r.right > frame.right + 1 ||
          r.top < frame.top - 1 || r.bottom > frame.bottom + 1) inside = false;
    });
    return {min: texts(svg, ".kq-axis-min"), max: texts(svg, ".kq-axis-max"),
            now: texts(svg, ".kq-now"), bands: texts(svg, ".kq-band-label"),
            rects: Array.prototype.reduce.call(svg.querySelectorAll("path[class^=kq-band]"),
              function (n, p) { return n + p.getAttribute("d").split("M").length - 1; }, 0),
            labelsInside: inside};
  });
  out.strips = Array.prototype.map.call(document.querySelectorAll(".kq-tasks"), function (ol) {
    return Array.prototype.map.call(ol.querySelectorAll("li"), function (li) {
      return li.textContent.replace(/\\s+/g, " ").trim(); }); });
  var env = document.querySelector(".kq-environment");
  out.environment = env ? {heading: env.querySelector("h3").textContent,
    rows: env.querySelectorAll("tbody tr").length, facts: texts(env, "dt")} : null;
  out.scripts = Array.prototype.filter.call(document.scripts, function (s) {
    return s.textContent.indexOf("alert" + "(1)") >= 0; }).length;
  document.documentElement.setAttribute("data-kq-probe", JSON.stringify(out));
})();
</script>"""


def chromium(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--hide-scrollbars", f"--user-data-dir={profile}", *args],
            capture_output=True, text=True, timeout=timeout, check=False,
        )


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")
def test_report_in_pytest_html_in_headless_chromium(pytester: pytest.Pytester, tmp_path: Path) -> None:
    stages = tutorial_stages()
    pytester.makefile(".json", stages=json.dumps([dataclasses.asdict(s) for s in stages]),
                      environment=json.dumps(dataclasses.asdict(environment_sample())))
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_demo="def test_ok():\n    assert True\n")
    result = pytester.runpytest_subprocess(
        "-p", "no:keptn", "-p", "no:cacheprovider", "--html=report.html", "--self-contained-html"
    )
    result.assert_outcomes(passed=1)
    report = pytester.path / "report.html"
    text = report.read_text(encoding="utf-8")
    assert "kq-heatmap" in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text

    # The DOM after pytest-html's own scripts ran, plus the layout probe, in both windows.
    probed = tmp_path / "probed.html"
    probed.write_text(text.replace("</body>", LAYOUT_PROBE + "</body>"), encoding="utf-8")
    for width in (1400, 1920):  # a laptop and a desktop window
        dumped = chromium(f"--window-size={width},1400", "--dump-dom", probed.as_uri())
        assert dumped.returncode == 0, dumped.stderr[-2000:]
        dom = Dom(dumped.stdout)
        assert dom.with_class("keptn-report"), "the gate section is missing from the rendered page"
        assert len(dom.with_class("kq-heatmap")) == 1
        assert len(dom.with_class("kq-objectives")) == 2  # the objectives and what runs where
        assert len(dom.with_class("kq-cell")) == 5 * 9
        # the hostile SLI is text, never an element
        assert any(XSS in t for _, t in dom.texts)
        assert not any("alert(1)" in t for t in dom.text_in("script")), "the SLI name became a script"
        seen = json.loads(next(a["data-kq-probe"] for t, a in dom.elements if "data-kq-probe" in a))
        assert {k: v for k, v in seen.items() if k.startswith(".")} == dict.fromkeys(
            (".keptn-report", ".kq-heatmap", ".kq-objectives", ".kq-sparkline", ".kq-summary",
             ".kq-environment", ".kq-tasks"), "visible"), seen
        # the objectives table fits the window: PromQL and basis fold into the details row
        assert seen["objectivesFit"] is True and seen["objectivesWidth"] <= width, seen
        assert seen["scripts"] == 0
        # each chart: its scale, the current value and the thresholds as labelled bands, all
        # inside the drawing
        rt, throughput, goroutines, hostile = seen["charts"]
        assert (rt["min"], rt["max"], rt["now"]) == (["0"], ["1.5"], ["1.21"]), rt
        assert rt["bands"] == ["pass ≤ 1", "warning ≤ 0.5"] and rt["rects"] == 2, rt
        assert throughput["bands"] == ["pass 36.48 – 364.8"] and throughput["rects"] == 9
        assert goroutines["bands"] == ["pass ≤ 100"] and goroutines["now"] == ["158"]
        assert hostile["bands"] == [] and hostile["rects"] == 0
        assert all(c["labelsInside"] for c in seen["charts"]), seen["charts"]
        # every stage as a strip of its tasks, also the one that was not triggered
        assert seen["strips"] == [["deployment pass 3.2 s", "test pass 12.4 s",
                                   "evaluation fail 1.1 s", "rollback pass 0.4 s"],
                                  ["deployment not run", "release not run"]], seen["strips"]
        # after the stages, what runs where
        assert seen["environment"] == {
            "heading": "What runs where", "rows": 2,
            "facts": ["Primaries", "Prometheus", "History", "Events", "Logs", "State folder",
                      "Stop them"]}

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for width in (1400, 1920):
        screenshot = tmp_path / f"report-{width}.png"
        shot = chromium(f"--screenshot={screenshot}", f"--window-size={width},2400", report.as_uri())
        assert shot.returncode == 0 and screenshot.stat().st_size > 10_000, shot.stderr[-2000:]
        shutil.copyfile(screenshot, ARTIFACTS / f"report-{width}.png")
    shutil.copyfile(report, ARTIFACTS / "report.html")


def test_relative_criteria_without_comparison_basis() -> None:
    stage = tutorial_stages()[0]
    rows = [dict(r) for r in stage.data["evaluation"]["indicatorResults"]]
    rows[1] = {**rows[1], "passTargets": [
        {"criteria": "<=+100%", "targetValue": 0, "violated": False},
        {"criteria": ">=-80%", "targetValue": 0, "violated": False},
    ]}
    data = {**stage.data, "evaluation": {**stage.data["evaluation"], "indicatorResults": rows}}
    out = render_html([dataclasses.replace(stage, data=data, history=[])])
    assert "no earlier evaluation to compare with" in out
    throughput = sparklines(out)[1]
    assert "kq-band" not in throughput
    # the chart says why it draws no band
    assert "&lt;=+100%: no earlier evaluation to compare with, no band" in throughput


def test_load_section_lists_locusts_endpoints_and_links_its_report() -> None:
    stage = dataclasses.replace(tutorial_stages()[0], endpoints=[
        {"method": "GET", "name": "/", "requests": 400, "failures": 4, "rps": 40.0,
         "p50_ms": 6.4, "p95_ms": 12.0, "p99_ms": 31.0},
        {"method": "GET", "name": XSS, "requests": 3, "failures": 0, "rps": 0.3,
         "p50_ms": 1.0, "p95_ms": 1.0, "p99_ms": 1.0},
    ], locust_report="../state/logs/locust-hardening.html")
    out = render_html([stage])
    load = out[out.index("<h4>Load</h4>"):]
    assert "<th>median ms</th>" in load and "<td>GET /</td>" in load
    assert '<td class="kq-num">4 (1.0%)</td>' in load
    assert XSS not in out and "GET &lt;script&gt;" in load
    assert 'href="../state/logs/locust-hardening.html"' in load
    assert "<h4>Load</h4>" not in render_html(tutorial_stages()[:1])


def test_every_stage_shows_its_tasks_with_status_and_duration() -> None:
    hardening, production = tutorial_stages()
    production = dataclasses.replace(production, tasks=(("deployment", "pass", 2.0, ""),
                                                        ("release", "skipped", 0.0, "not run")))
    out = render_html([hardening, production])
    strips = re.findall(r'<ol class="kq-tasks".*?</ol>', out, re.S)
    assert len(strips) == 2
    assert '<li class="kq-task kq-fail" title="hardening: fail' in strips[0]
    assert '<span class="kq-task-name">evaluation</span>' in strips[0]
    assert '<span class="kq-task-time">12.4 s</span>' in strips[0] and XSS not in strips[0]
    assert '<li class="kq-task kq-none" title="not run">' in strips[1]
    assert "production: no evaluation" in out
