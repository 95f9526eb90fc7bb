"""Scale: many indicators in one stage, end to end, and a long chain of stages.

Prints ``RESULT name=value`` lines:

* **Indicators** (the real path): a fresh copy of ``example_project/`` whose hardening stage has
  a generated ``sli.yaml`` of N distinct cheap queries over helloserver's metrics (request rate,
  mean latency, goroutines, each plus a distinct constant) and an ``slo.yaml`` with N
  objectives; ``pytest --keptn-stage=hardening --keptn-locust-run-time=3s`` with the local
  deployer, Locust and the embedded Prometheus. For N = 100 and 500 (side by side in one run):
  ``indicators_<N>_wall_seconds`` (the whole pytest process),
  ``indicators_<N>_evaluation_seconds`` (the evaluation task: freshness wait, queries, scoring,
  history, event) and ``indicators_<N>_queries_seconds`` (the queries alone, from the
  provider's progress line); ``indicators_growth`` is the 500 / 100 ratio of the evaluation.
* **Stages** (stand-ins, no processes): a shipyard of S stages, each with a delivery sequence
  (deployment, test, evaluation, release) triggered by the previous stage's
  ``delivery.finished``, 20 objectives each; ``--keptn-stage=all --keptn-deployer=none`` with
  a conftest that blocks the built-in Prometheus provider and answers every SLI at once, so
  the figure is the plugin's own cost per stage (collection, triggers, scoring, SQLite
  history, state files, reports), not Prometheus' 5 s target discovery per new canary. For S
  = 5 and 20: ``stages_<S>_wall_seconds``, and ``seconds_per_extra_stage`` = (t20 - t5) / 15.
* **History** (stand-ins, issue 14 item 15): one stage of N objectives (default 10,000) run R
  times (default 4) in the same project with ``--html``, so that each run stores one more
  evaluation of N indicators: per run ``history_<N>_run<k>_rss_mib`` (the pytest process's
  peak RSS), ``..._report_mib`` (the HTML report), ``..._cpu_seconds``; and
  ``history_<N>_rss_growth_mib`` / ``history_<N>_report_growth_mib`` (last run - first run).

Every pytest process runs as a user's install does, without the repo's dev-only Hypothesis
plugin (``-p no:hypothesispytest``), and every case prints the pytest process's own CPU
seconds (user + system, without its children: Locust, the build, Prometheus) and peak RSS
next to its wall time: wall time here is mostly fixed waits.

Usage: ``python benchmarks/bench_scale.py [--indicators 100,500] [--stages 5,20]
[--history 10000x4]``
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CANARY = '$SERVICE-$PROJECT-$STAGE-canary'
TEMPLATES = (
    'sum(rate(http_requests_total{{status="success",job="{canary}"}}[$DURATION_SECONDS])) + {i}',
    'sum(rate(http_server_request_duration_seconds_sum{{job="{canary}"}}[$DURATION_SECONDS]))'
    ' / sum(rate(http_server_request_duration_seconds_count{{job="{canary}"}}[$DURATION_SECONDS]))'
    ' + {i}',
    'max(go_goroutines{{job="$SERVICE-$PROJECT-$STAGE"}}) + {i}',
)


def slo_text(names: list[str]) -> str:
    lines = ["spec_version: '0.1.0'", "comparison:", "  compare_with: single_result",
             "  include_result_with_score: pass", "  aggregate_function: avg", "objectives:"]
    for name in names:
        lines += [f"  - sli: {name}", "    pass:", "      - criteria:", '          - "<=100000"']
    lines += ["total_score:", '  pass: "90%"', '  warning: "75%"']
    return "\n".join(lines) + "\n"


# pytest in a process of its own that says, as it ends, its own CPU seconds and peak RSS
# (getrusage(RUSAGE_SELF): not its children's)
MEASURED = """\
import resource, sys
import pytest
code = pytest.main(sys.argv[1:])
use = resource.getrusage(resource.RUSAGE_SELF)
print(f"BENCH_PROCESS cpu={use.ru_utime + use.ru_stime:.3f} maxrss_kib={use.ru_maxrss}",
      flush=True)
sys.exit(int(code))
"""


@dataclass
class Measured:
    wall: float
    cpu: float  # the pytest process's user + system seconds
    rss_mib: float  # its peak RSS
    out: list[str]
    code: int


def run(argv: list[str], cwd: Path) -> Measured:
    began = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", MEASURED, "-p", "no:cacheprovider",
                           "-p", "no:hypothesispytest", *argv],
                          cwd=cwd, capture_output=True, text=True, check=False)
    wall = time.monotonic() - began
    found = re.search(r"BENCH_PROCESS cpu=([\d.]+) maxrss_kib=(\d+)", proc.stdout)
    cpu, rss = (float(found.group(1)), int(found.group(2)) / 1024) if found else (0.0, 0.0)
    return Measured(wall, cpu, rss, proc.stdout.splitlines(), proc.returncode)


def indicators_case(base: Path, n: int) -> dict[str, float]:
    project = base / f"ind{n}"
    shutil.copytree(REPO / "example_project", project,
                    ignore=shutil.ignore_patterns("build", "__pycache__"))
    service = project / "keptn" / "hardening" / "helloservice"
    names = [f"sli_{i:04d}" for i in range(n)]
    sli = ["spec_version: '1.0'", "indicators:"] + [
        f"  {name}: " + TEMPLATES[i % len(TEMPLATES)].format(canary=CANARY, i=i)
        for i, name in enumerate(names)
    ]
    (service / "prometheus" / "sli.yaml").write_text("\n".join(sli) + "\n")
    (service / "slo.yaml").write_text(slo_text(names))
    try:
        measured = run(["--keptn-stage=hardening", "--keptn-tag=v0.1.1",
                        "--keptn-locust-run-time=3s", "-q"], project)
        wall, out, code = measured.wall, measured.out, measured.code
    finally:
        subprocess.run([sys.executable, "-m", "pytest_keptn", "stop", "--state-dir",
                        "build/state"], cwd=project, capture_output=True, check=False)
    text = "\n".join(out)
    evaluation = re.search(r"evaluation finished in ([\d.]+)s: (\w+)", text)
    queries = re.search(r"(\d+) quer(?:y|ies) answered in ([\d.]+)s \(freshness wait ([\d.]+)s\)",
                        text)
    passed = re.search(r"(\d+) passed", text)
    if code != 0 or evaluation is None or queries is None:
        raise SystemExit(f"{n} indicators: pytest exited {code}:\n" + "\n".join(out[-40:]))
    return {
        "wall": wall,
        "cpu": measured.cpu,
        "rss": measured.rss_mib,
        "evaluation": float(evaluation.group(1)),
        "queries": float(queries.group(2)),
        "freshness_wait": float(queries.group(3)),
        "asked": float(queries.group(1)),
        "passed": float(passed.group(1)) if passed else 0.0,
    }


STANDIN = '''
from pytest_keptn.model import SLIResult


def pytest_configure(config):
    # answer every SLI here: no Prometheus, no processes
    config.pluginmanager.set_blocked("keptn-sli-prometheus")


def pytest_keptn_get_sli(ctx, indicators, window, deployment, load):
    return [SLIResult(metric=n, value=1.0, query=f"standin({n})") for n in indicators]
'''


INI = ("[pytest]\nkeptn_root = keptn\nkeptn_service = svc\nkeptn_image = bench/svc\n"
       "keptn_deployer = none\nkeptn_history = build/history.sqlite\n"
       "keptn_events = build/events\nkeptn_state_dir = build/state\n")


def stages_case(base: Path, stages: int, per_stage: int = 20) -> Measured:
    project = base / f"stages{stages}"
    root = project / "keptn"
    shipyard = ['apiVersion: "spec.keptn.sh/0.2.0"', 'kind: "Shipyard"', "metadata:",
                '  name: "chain"', "spec:", "  stages:"]
    names = [f"sli_{i:02d}" for i in range(per_stage)]
    for s in range(stages):
        stage = f"stage{s:02d}"
        shipyard += [f'    - name: "{stage}"', "      sequences:", '        - name: "delivery"']
        if s:
            shipyard += ["          triggeredOn:",
                         f'            - event: "stage{s - 1:02d}.delivery.finished"']
        shipyard += ["          tasks:", '            - name: "deployment"',
                     '              properties: {deploymentstrategy: "direct"}'] + [
            f'            - name: "{t}"' for t in ("test", "evaluation", "release")]
        (root / stage / "svc").mkdir(parents=True)
        (root / stage / "svc" / "slo.yaml").write_text(slo_text(names))
    (root / "shipyard.yaml").write_text("\n".join(shipyard) + "\n")
    (project / "conftest.py").write_text(STANDIN)
    (project / "pytest.ini").write_text(INI)
    measured = run(["--keptn-stage=all", "--keptn-tag=v1", "-q"], project)
    finished = sum(1 for line in measured.out if "sequence delivery finished: pass" in line)
    if measured.code != 0 or finished != stages:
        raise SystemExit(f"{stages} stages: exit {measured.code}, {finished} finished:\n"
                         + "\n".join(measured.out[-40:]))
    return measured


def history_case(base: Path, objectives: int, runs: int) -> list[tuple[Measured, float]]:
    """One stage of ``objectives`` objectives run ``runs`` times in one project: each run
    stores one more evaluation. Returns each run's measurement and its HTML report's MiB."""
    project = base / f"history{objectives}"
    root = project / "keptn"
    (root / "hardening" / "svc").mkdir(parents=True)
    (root / "shipyard.yaml").write_text(
        'apiVersion: "spec.keptn.sh/0.2.0"\nkind: "Shipyard"\nmetadata: {name: "big"}\n'
        'spec:\n  stages:\n    - name: "hardening"\n      sequences:\n'
        '        - name: "delivery"\n          tasks:\n            - name: "evaluation"\n'
        '              properties: {timeframe: "5m"}\n')
    names = [f"sli_{i:05d}" for i in range(objectives)]
    (root / "hardening" / "svc" / "slo.yaml").write_text(slo_text(names))
    (project / "conftest.py").write_text(STANDIN)
    (project / "pytest.ini").write_text(INI)
    report = project / "report.html"
    out = []
    for k in range(runs):
        measured = run(["--keptn-stage=hardening", f"--keptn-tag=v{k}", "-q",
                        f"--html={report}", "--self-contained-html"], project)
        if measured.code != 0:
            raise SystemExit(f"history run {k + 1}: exit {measured.code}:\n"
                             + "\n".join(measured.out[-40:]))
        out.append((measured, report.stat().st_size / 2**20))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--indicators", default="100,500")
    parser.add_argument("--stages", default="5,20")
    parser.add_argument("--history", default="10000x4", help="OBJECTIVESxRUNS, or empty")
    args = parser.parse_args()
    counts = [int(x) for x in args.indicators.split(",") if x]
    chains = [int(x) for x in args.stages.split(",") if x]
    objectives, runs = (int(x) for x in args.history.split("x")) if args.history else (0, 0)
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        base = Path(tmp)
        ind = {}
        for n in counts:
            ind[n] = r = indicators_case(base, n)
            print(f"{n} indicators: {r['wall']:.2f}s wall, pytest process {r['cpu']:.2f}s CPU "
                  f"{r['rss']:.0f} MiB peak RSS, evaluation {r['evaluation']:.2f}s "
                  f"(queries {r['queries']:.2f}s, freshness wait {r['freshness_wait']:.2f}s), "
                  f"{r['passed']:.0f} items passed", flush=True)
        walls = {}
        for s in chains:
            measured = stages_case(base, s)
            walls[s] = measured.wall
            print(f"{s} stages x 20 objectives: {measured.wall:.2f}s wall, pytest process "
                  f"{measured.cpu:.2f}s CPU, {measured.rss_mib:.0f} MiB peak RSS", flush=True)
            print(f"RESULT stages_{s}_cpu_seconds={measured.cpu:.3f}")
            print(f"RESULT stages_{s}_rss_mib={measured.rss_mib:.1f}")
        history = history_case(base, objectives, runs) if runs else []
        for k, (measured, report_mib) in enumerate(history, 1):
            print(f"{objectives} objectives, run {k} (history holds {k} evaluations): "
                  f"{measured.wall:.2f}s wall, pytest process {measured.cpu:.2f}s CPU, "
                  f"{measured.rss_mib:.0f} MiB peak RSS, report {report_mib:.1f} MiB", flush=True)
            print(f"RESULT history_{objectives}_run{k}_rss_mib={measured.rss_mib:.1f}")
            print(f"RESULT history_{objectives}_run{k}_report_mib={report_mib:.2f}")
            print(f"RESULT history_{objectives}_run{k}_cpu_seconds={measured.cpu:.2f}")
            print(f"RESULT history_{objectives}_run{k}_wall_seconds={measured.wall:.2f}")
        if len(history) >= 2:
            (first, first_mib), (last, last_mib) = history[0], history[-1]
            print(f"RESULT history_{objectives}_rss_growth_mib={last.rss_mib - first.rss_mib:.1f}")
            print(f"RESULT history_{objectives}_report_growth_mib={last_mib - first_mib:.2f}")
    for n, r in ind.items():
        print(f"RESULT indicators_{n}_wall_seconds={r['wall']:.3f}")
        print(f"RESULT indicators_{n}_pytest_cpu_seconds={r['cpu']:.3f}")
        print(f"RESULT indicators_{n}_rss_mib={r['rss']:.1f}")
        print(f"RESULT indicators_{n}_evaluation_seconds={r['evaluation']:.3f}")
        print(f"RESULT indicators_{n}_queries_seconds={r['queries']:.3f}")
    if len(counts) >= 2:
        lo, hi = min(counts), max(counts)
        print(f"RESULT indicators_growth={ind[hi]['evaluation'] / ind[lo]['evaluation']:.2f}")
    for s, w in walls.items():
        print(f"RESULT stages_{s}_wall_seconds={w:.3f}")
    if len(chains) >= 2:
        lo, hi = min(chains), max(chains)
        print(f"RESULT seconds_per_extra_stage={(walls[hi] - walls[lo]) / (hi - lo):.3f}")


if __name__ == "__main__":
    main()
