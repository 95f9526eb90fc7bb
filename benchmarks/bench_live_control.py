"""Does a live baseline beat Keptn's history comparison on a noisy machine?

In a fresh copy of ``example_project/``, with the tutorial's slo.yaml plus the live opt-in and
``<=+10%`` on the main page's response time (the tutorial's ``<=1`` stays):

* a seed delivery makes ``v0.1.1`` the primary of hardening (the shipyard then loses its release
  task, so every later delivery leaves that primary, and so the baseline's build, in place);
* ``--aa`` deliveries of ``v0.1.1`` (A/A) and ``--ab`` deliveries of ``v0.1.4`` (the same build
  about 15 % slower on the main page, A/B), interleaved, each a real ``pytest
  --keptn-stage=hardening`` run: canary and a fresh baseline of ``v0.1.1`` side by side, half
  the Locust users each, the SLIs sampled per side by Prometheus range queries;
* during a seeded random half of the A/A and of the A/B deliveries, a CPU-heavy background
  process runs (``python -c 'while True: pass'``; ``--noise-procs N`` of them), the noise a
  shared CI runner sees.

A delivery is **flagged** when its gate result is not ``pass`` (with this slo.yaml a violated
``<=+10%`` turns the response-time objective into a warning and the gate into a warning; with
``--keptn-fail-on-warning`` the job fails). The history verdict is computed on the same runs:
the same slo.yaml without the opt-in, scored by Keptn's rules (``gate.scoring.evaluate``) against
the previous A/A run that passed the history gate (``single_result``,
``include_result_with_score: pass``); an A/B run is compared with the last such A/A run, as if
each slower build were the next delivery after it.

Prints ``RESULT live_false_fail_rate=`` (goal <= 0.05), ``RESULT history_false_fail_rate=``,
``RESULT live_detection_rate=`` (goal >= 0.9), ``RESULT history_detection_rate=``, the machine's
load average before each run, and one line per delivery.

Usage: ``python benchmarks/bench_live_control.py [--aa 20] [--ab 20] [--load 20] [--seed 7]
[--noise-procs 1]``
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from pytest_keptn.gate.scoring import evaluate
from pytest_keptn.spec import load_slo

REPO = Path(__file__).resolve().parent.parent
STAGE_DIR = Path("keptn/hardening/helloservice")
LIVE_KEYS = """  baseline: live
  confidence: 0.95
"""
SLO = """---
spec_version: '0.1.0'
comparison:
  compare_with: "single_result"
  include_result_with_score: "pass"
  aggregate_function: avg
{live}objectives:
  - sli: http_response_time_seconds_main_page_sum
    pass:
      - criteria:
          - "<=1"
          - "<=+10%"
    warning:
      - criteria:
          - "<=0.5"
  - sli: request_throughput
    pass:
      - criteria:
          - "<=+100%"
          - ">=-80%"
  - sli: go_routines
    pass:
      - criteria:
          - "<=100"
total_score:
  pass: "90%"
  warning: "75%"
"""
NO_RELEASE = """apiVersion: "spec.keptn.sh/0.2.0"
kind: "Shipyard"
metadata:
  name: "shipyard-sockshop"
spec:
  stages:
    - name: "hardening"
      sequences:
        - name: "delivery"
          tasks:
            - name: "deployment"
              properties:
                deploymentstrategy: "blue_green_service"
            - name: "test"
              properties:
                teststrategy: "performance"
            - name: "evaluation"
"""


def deliver(
    project: Path, tag: str, load: float, events: Path, noise_procs: int
) -> dict[str, Any]:
    events.mkdir(parents=True)
    noise = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(noise_procs)
    ]
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "--keptn-stage=hardening",
                f"--keptn-tag={tag}",
                f"--keptn-locust-run-time={load:g}s",
                f"--keptn-events={events}",
                "-p",
                "no:cacheprovider",
                "-p",
                "no:hypothesispytest",
                "-q",
            ],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    finally:
        for proc in noise:
            proc.kill()
            proc.wait()
    found = sorted(events.glob("*.json"))
    if not found:
        raise SystemExit(f"no evaluation event from the {tag} delivery:\n{proc.stdout[-3000:]}")
    event: dict[str, Any] = json.loads(found[-1].read_text())
    return event


def values_of(event: dict[str, Any]) -> dict[str, float]:
    rows = event["data"]["evaluation"]["indicatorResults"] or []
    return {r["value"]["metric"]: r["value"]["value"] for r in rows if r["value"]["success"]}


def live_line(event: dict[str, Any]) -> str:
    for row in event["data"]["evaluation"]["indicatorResults"] or []:
        live = row.get("liveComparison")
        if row["value"]["metric"] == "http_response_time_seconds_main_page_sum" and live:
            if not live["criteria"]:
                return f"no live comparison: {live.get('note', '')}"
            j = live["criteria"][0]
            low, high = j["interval"]
            return (
                f"effect {j['effect']:+.3f} [{low if low is None else round(low, 3)}, "
                f"{high if high is None else round(high, 3)}] p={j['pValue']:.3g} "
                f"n={j['samples']['canary']}/{j['samples']['baseline']} {j['decision']}"
            )
    return "no live comparison in the event"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--aa", type=int, default=20)
    parser.add_argument("--ab", type=int, default=20)
    parser.add_argument("--load", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--noise-procs", type=int, default=1,
                        help="CPU-busy processes during a noisy delivery (the machine has 2 cores)")
    args = parser.parse_args()
    rnd = random.Random(args.seed)
    noisy_aa = set(rnd.sample(range(args.aa), args.aa // 2))
    noisy_ab = set(rnd.sample(range(args.ab), args.ab // 2))
    history_slo = load_slo(SLO.format(live="").encode(), file="slo.yaml")

    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
        project = Path(tmp) / "example_project"
        shutil.copytree(
            REPO / "example_project", project, ignore=shutil.ignore_patterns("build", "__pycache__")
        )
        (project / STAGE_DIR / "slo.yaml").write_text(SLO.format(live=LIVE_KEYS))
        seed = deliver(project, "v0.1.1", args.load, Path(tmp) / "events-seed", 0)
        print(f"seed: v0.1.1 {seed['data']['result']} (now the primary)", flush=True)
        (project / "keptn" / "shipyard.yaml").write_text(NO_RELEASE)

        plan = []
        for i in range(max(args.aa, args.ab)):
            if i < args.aa:
                plan.append(("A/A", "v0.1.1", i in noisy_aa))
            if i < args.ab:
                plan.append(("A/B", "v0.1.4", i in noisy_ab))
        live_flags: dict[str, list[bool]] = {"A/A": [], "A/B": []}
        history_flags: dict[str, list[bool]] = {"A/A": [], "A/B": []}
        basis: list[dict[str, Any]] = [seed["data"]]  # the last A/A run the history passed
        try:
            for n, (kind, tag, noisy) in enumerate(plan):
                load1 = os.getloadavg()[0]
                event = deliver(project, tag, args.load, Path(tmp) / f"events-{n}",
                                args.noise_procs if noisy else 0)
                live_result = event["data"]["result"]
                history = evaluate(history_slo, values_of(event), basis[-1:])
                if kind == "A/A" and history.result == "pass":
                    basis.append(event["data"])
                live_flags[kind].append(live_result != "pass")
                history_flags[kind].append(history.result != "pass")
                print(
                    f"{n:2d} {kind} {tag} noise={'on ' if noisy else 'off'} load1={load1:.2f} "
                    f"live={live_result:7} history={history.result:7} "
                    f"rt={values_of(event).get('http_response_time_seconds_main_page_sum', 0) * 1000:.2f}ms "
                    f"{live_line(event)}",
                    flush=True,
                )
        finally:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pytest_keptn",
                    "stop",
                    "--state-dir",
                    str(project / "build" / "state"),
                ],
                check=False,
                capture_output=True,
            )

    def rate(flags: list[bool]) -> float:
        return sum(flags) / len(flags) if flags else float("nan")

    print(f"RESULT live_false_fail_rate={rate(live_flags['A/A']):.3f}")
    print(f"RESULT history_false_fail_rate={rate(history_flags['A/A']):.3f}")
    print(f"RESULT live_detection_rate={rate(live_flags['A/B']):.3f}")
    print(f"RESULT history_detection_rate={rate(history_flags['A/B']):.3f}")


if __name__ == "__main__":
    main()
