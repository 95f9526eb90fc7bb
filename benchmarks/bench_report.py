"""Render the HTML quality report of 50 SLIs x 30 evaluations (goal: under 100 ms).

Prints ``RESULT report_render_ms=<ms>`` as its last line (median of 20 renders after one warm-up
render; the stage and its history are built once, as the plugin builds them from the history
store). The sample stage is tests/report/report_samples.py's ``big_stage``.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "report"))

from report_samples import big_stage

from pytest_keptn.report.html import render_html

SLIS = 50
EVALUATIONS = 30
RUNS = 20


def main() -> None:
    stage = big_stage(slis=SLIS, evaluations=EVALUATIONS)
    page = render_html([stage], max_evaluations=EVALUATIONS)  # warm-up (imports, templates)
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        render_html([stage], max_evaluations=EVALUATIONS)
        times.append((time.perf_counter() - started) * 1000)
    print(f"slis={SLIS} evaluations={EVALUATIONS} bytes={len(page)} "
          f"min_ms={min(times):.1f} max_ms={max(times):.1f}")
    print(f"RESULT report_render_ms={statistics.median(times):.1f}")


if __name__ == "__main__":
    main()
