"""Gate overhead: a full hardening stage of the example project minus its configured load.

Runs ``pytest --keptn-stage=hardening --keptn-tag=v0.1.1 --keptn-locust-run-time=10s`` in a
fresh copy of ``example_project/`` (its own build/ folder, so the demo's state is untouched),
timestamps every ``[keptn]`` progress line as it arrives and splits the wall time into:

* ``startup``: interpreter, pytest, plugins, spec loading, collection (process start until the
  sequence starts);
* ``deployment``: the deployment task (the canary process until its health check answers,
  target registration; the embedded Prometheus starts in the background at configure);
* ``scrape_wait``: Locust is set up and the driver waits until Prometheus has discovered the
  canary's targets (its 5 s discovery tick; none with a discovered target slot) before the
  load window starts;
* ``load_overhead``: the test task minus the configured load and the scrape wait (Locust child
  start and import, spawn, final statistics);
* ``evaluation_prepare``: the evaluation task until the freshness wait starts (rendering queries,
  history lookup);
* ``freshness_wait``: until every scraped job has a sample at the window's end;
* ``queries``: the SLI queries; ``scoring``: scoring, history, event, after the last answer;
* ``release``; ``between_tasks``: pytest's own work between the items that drive the tasks;
* ``teardown``: from the sequence's end until the process exits (terminal summary, stopping
  Prometheus and the processes of the session).

``RESULT gate_overhead_seconds`` (goal <= 6.5, issue 17; was <= 8) is the median over ``--runs`` of wall time minus
the configured load, measured as a user's install runs it: with ``-p no:hypothesispytest``,
because Hypothesis is a test extra of this repository (not a dependency of pytest-keptn) whose
pytest plugin imports all of Hypothesis in its terminal-summary hook (~1.5 s per run). With
``--also-as-is`` each round also runs the stage with every plugin this repo's venv has and
prints ``gate_overhead_as_is_seconds``.

``RESULT warm_gate_overhead_seconds`` (goal <= 1.5, issue 17): the same stage run a second time
in the same project with ``--keptn-prometheus-keep=10m``, reusing the first run's Prometheus
(no start, no discovery wait: the canary takes the spare target slot armed when the first
run's canary claimed its own).

Usage: ``python benchmarks/bench_gate_overhead.py [--runs 3] [--load 10] [--no-warm] [--also-as-is]``
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from delivery_project import stopping_all

REPO = Path(__file__).resolve().parent.parent
PHASES = ("startup", "deployment", "scrape_wait", "load_overhead", "evaluation_prepare",
          "freshness_wait", "queries", "scoring", "release", "between_tasks", "teardown")


def run_once(project: Path, load: float, extra: list[str],
             stop: bool = True) -> tuple[float, dict[str, float], int]:
    argv = [sys.executable, "-m", "pytest", "--keptn-stage=hardening", "--keptn-tag=v0.1.1",
            f"--keptn-locust-run-time={load:g}s", "-p", "no:cacheprovider", *extra]
    began = time.monotonic()
    proc = subprocess.Popen(argv, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1)
    assert proc.stdout is not None
    lines: list[tuple[float, str]] = []
    for line in proc.stdout:
        lines.append((time.monotonic() - began, line.rstrip("\n")))
    code = proc.wait()
    total = time.monotonic() - began
    if stop:  # also a kept Prometheus
        subprocess.run([sys.executable, "-m", "pytest_keptn", "stop", "--state-dir",
                        "build/state"], cwd=project, capture_output=True, check=False)

    def at(pattern: str) -> float:
        for t, text in lines:
            if "[keptn]" in text and re.search(pattern, text):
                return t
        raise SystemExit(f"no progress line matching {pattern!r}; output:\n"
                         + "\n".join(t for _, t in lines[-40:]))

    answered = next((text for _, text in lines if re.search(r"quer(y|ies) answered in", text)), "")
    m = re.search(r"answered in ([\d.]+)s \(freshness wait ([\d.]+)s\)", answered)
    queries, wait = (float(m.group(1)), float(m.group(2))) if m else (0.0, 0.0)
    # The embedded Prometheus starts in the background at configure, overlapping collection
    # and deployment; the load driver then waits for the canary's first scrape while Locust
    # sets up ("waited Xs").
    ready = next((text for _, text in lines if "Locust ready" in text), "")
    w = re.search(r"waited ([\d.]+)s", ready)
    scrape_wait = float(w.group(1)) if w else 0.0
    phases = {
        "startup": at(r"sequence delivery started"),
        "deployment": at(r"deployment finished") - at(r"deployment started"),
        "scrape_wait": scrape_wait,
        "load_overhead": at(r"test finished") - at(r"test started") - load - scrape_wait,
        "evaluation_prepare": at(r"waiting for samples") - at(r"evaluation started"),
        "freshness_wait": wait,
        "queries": queries,
        "scoring": at(r"evaluation finished") - at(r"answered in"),
        "release": at(r"release finished") - at(r"release started"),
        "between_tasks": (at(r"test started") - at(r"deployment finished"))
        + (at(r"evaluation started") - at(r"test finished"))
        + (at(r"release started") - at(r"evaluation finished"))
        + (at(r"sequence delivery finished") - at(r"release finished"))
        + (at(r"deployment started") - at(r"sequence delivery started"))
        + (at(r"answered in") - at(r"waiting for samples") - wait - queries),
        "teardown": total - at(r"sequence delivery finished"),
    }
    return total, phases, code


def fresh_project(base: Path, n: int) -> Path:
    target = base / f"p{n}"
    shutil.copytree(REPO / "example_project", target,
                    ignore=shutil.ignore_patterns("build", "__pycache__"))
    return target


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--load", type=float, default=10.0, help="configured load, seconds")
    parser.add_argument("--no-warm", action="store_true",
                        help="skip the warm runs (--keptn-prometheus-keep, a second run)")
    parser.add_argument("--also-as-is", action="store_true",
                        help="also run with this repo's dev-only plugins (Hypothesis) loaded")
    args = parser.parse_args()
    variants: list[tuple[str, list[str]]] = [("user install", ["-p", "no:hypothesispytest"])]
    if args.also_as_is:
        variants.append(("as is", []))
    results: dict[str, list[tuple[float, dict[str, float]]]] = {v: [] for v, _ in variants}
    warm: list[tuple[float, dict[str, float]]] = []
    print(f"PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r}; "
          f"load average at start: {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-gate-") as tmp, stopping_all(Path(tmp)):
        n = 0
        for r in range(args.runs):
            if not args.no_warm:
                # warm: a first run keeps its Prometheus (--keptn-prometheus-keep), the second,
                # measured, reuses it; the project's 'stop' ends it
                n += 1
                project = fresh_project(Path(tmp), n)
                keep = ["-p", "no:hypothesispytest", "--keptn-prometheus-keep=10m"]
                run_once(project, args.load, keep, stop=False)
                total, phases, code = run_once(project, args.load, keep)
                if code != 0:
                    raise SystemExit(f"the warm hardening stage exited {code} (expected a pass)")
                warm.append((total, phases))
                print(f"run {r + 1} (warm): {total:.2f}s wall, overhead {total - args.load:.2f}s: "
                      + ", ".join(f"{k} {v:.2f}" for k, v in phases.items())
                      + f" (load {os.getloadavg()[0]:.2f})", flush=True)
            for label, extra in variants if r % 2 == 0 else variants[::-1]:
                n += 1
                total, phases, code = run_once(fresh_project(Path(tmp), n), args.load, extra)
                if code != 0:
                    raise SystemExit(f"the hardening stage exited {code} (expected a pass)")
                results[label].append((total, phases))
                print(f"run {r + 1} ({label}): {total:.2f}s wall, overhead "
                      f"{total - args.load:.2f}s: "
                      + ", ".join(f"{k} {v:.2f}" for k, v in phases.items()), flush=True)
    med = statistics.median
    runs = results["user install"]
    print(f"breakdown (median of {len(runs)} runs, seconds):")
    for phase in PHASES:
        value = med(p[phase] for _, p in runs)
        print(f"  {phase:<20} {value:6.2f}")
        print(f"RESULT {phase}_seconds={value:.3f}")
    print(f"RESULT wall_seconds={med(t for t, _ in runs):.3f}")
    print(f"RESULT configured_load_seconds={args.load:g}")
    if "as is" in results:
        dev = results["as is"]
        print(f"RESULT gate_overhead_as_is_seconds={med(t for t, _ in dev) - args.load:.3f}")
    print(f"RESULT gate_overhead_seconds={med(t for t, _ in runs) - args.load:.3f}")
    if warm:
        print(f"warm breakdown (median of {len(warm)} runs, seconds):")
        for phase in PHASES:
            print(f"  {phase:<20} {med(p[phase] for _, p in warm):6.2f}")
        print(f"RESULT warm_gate_overhead_seconds={med(t for t, _ in warm) - args.load:.3f}")


if __name__ == "__main__":
    main()
