"""A three-stage delivery, cold, against its hand-written floor (issue 17).

Each run makes a fresh project (``delivery_project.py``: the example service and SLOs through
dev, staging and production, each blue/green with ``--load`` seconds of Locust, evaluation and
release) and runs ``pytest --keptn-stage=all`` in it (a fresh embedded Prometheus each time),
then ``floor_delivery.py`` on another fresh copy: the same work by hand. Runs alternate which
goes first. Wall times are taken from outside, process start to exit.

* ``delivery_overhead_seconds``: median plugin wall minus 3 x load (goal <= 8.5);
* ``extra_stage_overhead_seconds``: a later stage's cost beyond its load window, from the
  previous stage's "sequence delivery finished" to its own, median over stages 2-3 and runs
  (goal <= 1.2);
* ``floor_delivery_overhead_seconds``: the floor's wall minus 3 x load;
* ``delivery_over_floor``: the plugin's overhead over the floor's (goal <= 1.0);
* ``schedule_floor_*``, ``delivery_over_schedule_floor``: the same against a floor that also
  uses the plugin's freshness rule (``floor_delivery.py --freshness=schedule``: it stops
  waiting once each target's next scrape is due after the window's end, instead of waiting
  for a sample after it), so that what the plugin gained by that rule is not counted as a
  gain over the floor.

Runs with ``-p no:hypothesispytest`` (a dev-only plugin of this repository, see
bench_gate_overhead.py). Usage: ``python benchmarks/bench_delivery.py [--runs 3] [--load 10]``
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from itertools import pairwise
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from delivery_project import STAGES, TAG, make_project, stopping_all

HERE = Path(__file__).resolve().parent


def timed(argv: list[str], cwd: Path) -> tuple[float, list[tuple[float, str]], int]:
    began = time.monotonic()
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1)
    assert proc.stdout is not None
    lines = [(time.monotonic() - began, line.rstrip("\n")) for line in proc.stdout]
    code = proc.wait()
    return time.monotonic() - began, lines, code


def plugin_run(project: Path, load: float) -> tuple[float, list[float]]:
    total, lines, code = timed(
        [sys.executable, "-m", "pytest", "--keptn-stage=all", f"--keptn-tag={TAG}",
         "-p", "no:cacheprovider", "-p", "no:hypothesispytest"], project)
    subprocess.run([sys.executable, "-m", "pytest_keptn", "stop", "--state-dir", "build/state"],
                   cwd=project, capture_output=True, check=False)
    if code != 0:
        raise SystemExit(f"the delivery exited {code}:\n" + "\n".join(t for _, t in lines[-40:]))
    finished = []
    for stage in STAGES:
        at = [t for t, text in lines
              if re.search(rf"\b{stage} › sequence delivery finished", text)]
        if not at:
            raise SystemExit(f"no 'sequence delivery finished' for {stage}:\n"
                             + "\n".join(t for _, t in lines[-40:]))
        finished.append(at[0])
    return total, finished


def floor_run(project: Path, load: float, freshness: str = "sample"
              ) -> tuple[float, list[float]]:
    total, lines, code = timed([sys.executable, str(HERE / "floor_delivery.py"), str(project),
                                "--load", f"{load:g}", "--freshness", freshness], project)
    if code != 0:
        raise SystemExit("the floor failed:\n" + "\n".join(t for _, t in lines[-20:]))
    finished = [float(m.group(1)) for _, text in lines
                if (m := re.search(r"FLOOR \w+ finished at ([\d.]+)s", text))]
    return total, finished


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--load", type=float, default=10.0)
    args = parser.parse_args()
    load = args.load
    runs: dict[str, list[tuple[float, list[float]]]] = {"plugin": [], "floor": [],
                                                         "schedule_floor": []}
    print(f"PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r}; "
          f"load average at start: {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-delivery-") as tmp, stopping_all(Path(tmp)):
        n = 0
        variants = list(runs)
        for r in range(args.runs):
            for which in variants[r % 3:] + variants[:r % 3]:  # each goes first once in 3
                n += 1
                project = make_project(Path(tmp), n, load)
                if which == "plugin":
                    total, finished = plugin_run(project, load)
                else:
                    total, finished = floor_run(
                        project, load, "schedule" if which == "schedule_floor" else "sample")
                runs[which].append((total, finished))
                stages = [b - a - load for a, b in pairwise(finished)]
                print(f"run {r + 1} {which}: wall {total:.2f}s, overhead {total - 3 * load:.2f}s, "
                      f"later stages " + ", ".join(f"{s:.2f}s" for s in stages)
                      + f" (load {os.getloadavg()[0]:.2f})", flush=True)
    med = statistics.median
    overhead = {k: med(t for t, _ in v) - 3 * load for k, v in runs.items()}
    extra = {k: med(b - a - load for _, f in v for a, b in pairwise(f)) for k, v in runs.items()}
    print(f"RESULT delivery_overhead_seconds={overhead['plugin']:.3f}")
    print(f"RESULT extra_stage_overhead_seconds={extra['plugin']:.3f}")
    print(f"RESULT floor_delivery_overhead_seconds={overhead['floor']:.3f}")
    print(f"RESULT floor_extra_stage_overhead_seconds={extra['floor']:.3f}")
    print(f"RESULT delivery_over_floor={overhead['plugin'] / overhead['floor']:.3f}")
    print(f"RESULT schedule_floor_delivery_overhead_seconds={overhead['schedule_floor']:.3f}")
    print(f"RESULT schedule_floor_extra_stage_overhead_seconds={extra['schedule_floor']:.3f}")
    print(f"RESULT delivery_over_schedule_floor="
          f"{overhead['plugin'] / overhead['schedule_floor']:.3f}")

if __name__ == "__main__":
    main()
