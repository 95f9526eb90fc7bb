"""``python -m pytest_keptn calibrate --stage S --runs N``: A/A calibration of relative criteria.

Delivers the stage's current build (the primary's image:tag) N times against a fresh live
baseline of itself, each a real ``pytest --keptn-stage=S --keptn-live-baseline`` run in the
current folder (so the ini settings apply), with the history and events in a temporary folder
(the team's history is not touched; the stage keeps serving the same build, whether a run
releases its canary or rolls it back). Then prints, per SLI and relative criterion, the
run-to-run spread of the effect, how many runs the current tolerance failed, and the smallest
tolerance that would have failed none at the slo.yaml's confidence, and a draft slo.yaml with
the live opt-in and those tolerances.
"""

from __future__ import annotations

import argparse
import base64
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from pytest_keptn.gate.calibration import calibrate, draft_slo
from pytest_keptn.gate.live import LiveJudgement


def add_parser(sub: Any) -> None:
    cmd = sub.add_parser("calibrate", help="A/A runs of the stage's current build: spread and "
                         "smallest tolerance per relative criterion, as a draft slo.yaml")
    cmd.add_argument("--stage", required=True)
    cmd.add_argument("--runs", type=int, default=10)
    cmd.add_argument("--tag", help="the build to run against itself (default: the primary's)")
    cmd.add_argument("--image", help="its image (default: the primary's)")
    cmd.add_argument("--state-dir", default=None, help="the runs' state folder, to find the "
                     "primary (default: as the plugin resolves keptn_state_dir)")
    cmd.add_argument("pytest_args", nargs="*", help="more pytest arguments (after --)")


def _primary(state_dir: str | None, stage: str) -> tuple[str, str] | None:
    from pytest_keptn.deploy import local
    from pytest_keptn.deploy import state as st
    from pytest_keptn.locate import locate

    folder = locate(state_dir=state_dir).state_dir
    if not st.state_path(folder).exists():
        return None
    for name, entry in sorted(st.read(folder)["services"].items()):
        inst = entry.get("primary")
        stage_of, _, service = name.partition("/")
        if stage_of == stage and isinstance(inst, dict) and local.primary_url(folder, stage, service):
            return str(inst.get("image", "")), str(inst.get("tag", ""))
    return None


def judgements(event: dict[str, Any]) -> dict[str, list[LiveJudgement]]:
    out: dict[str, list[LiveJudgement]] = {}
    for row in event["data"]["evaluation"].get("indicatorResults") or ():
        live = row.get("liveComparison") or {}
        found = [LiveJudgement.from_mapping(c) for c in live.get("criteria") or ()]
        if found:
            out[str(row["value"]["metric"])] = found
    return out


def run(args: argparse.Namespace) -> int:
    found = _primary(args.state_dir, args.stage)
    image = args.image or (found[0] if found else "")
    tag = args.tag or (found[1] if found else "")
    if not tag:
        print(f"pytest-keptn: calibrate: no primary runs in stage {args.stage} (deliver a build "
              "first, or give --tag and --image)", file=sys.stderr)
        return 4
    if args.runs < 2:
        print("pytest-keptn: calibrate: --runs must be at least 2", file=sys.stderr)
        return 4
    runs: list[dict[str, list[LiveJudgement]]] = []
    slo_raw = b""
    with tempfile.TemporaryDirectory(prefix="keptn-calibrate-") as tmp:
        for i in range(args.runs):
            events = Path(tmp) / f"events-{i}"
            argv = [sys.executable, "-m", "pytest", f"--keptn-stage={args.stage}",
                    f"--keptn-tag={tag}", "--keptn-live-baseline", f"--keptn-events={events}",
                    f"--keptn-history={Path(tmp) / 'history.sqlite'}", "-p", "no:cacheprovider",
                    "-q", *([f"--keptn-image={image}"] if image else []), *args.pytest_args]
            proc = subprocess.run(argv, capture_output=True, text=True, check=False)
            files = sorted(events.glob("*.json"))
            if not files:
                tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
                print(f"pytest-keptn: calibrate: run {i + 1} produced no evaluation "
                      f"(exit {proc.returncode}): {' / '.join(tail)}", file=sys.stderr)
                return 1
            event = json.loads(files[-1].read_text(encoding="utf-8"))
            slo_raw = base64.b64decode(event["data"]["evaluation"].get("sloFileContent") or "")
            judged = judgements(event)
            runs.append(judged)
            effects = ", ".join(f"{sli} {j.criterion} {j.effect_text(j.effect)} (p={j.pvalue:.2g})"
                                for sli, js in judged.items() for j in js)
            print(f"run {i + 1}/{args.runs}: {event['data']['result']}; "
                  f"{effects or 'no live comparison'}", flush=True)
    calibrations = calibrate(runs)
    if not calibrations:
        print("pytest-keptn: calibrate: no relative criterion was compared with the live "
              "baseline (see the runs' notes)", file=sys.stderr)
        return 1
    print(f"\nA/A calibration of {args.stage} ({image}:{tag}), {args.runs} runs:")
    for c in calibrations:
        low, high = c.spread
        j = next(js[0] for r in runs for s, js in r.items() if s == c.sli)
        print(f"  {c.sli} {c.criterion}: effect from {j.effect_text(low)} to "
              f"{j.effect_text(high)} (sd {j.effect_text(c.stdev).lstrip('+')}), "
              f"{sum(c.significant)} significant, {c.failed} failed; smallest tolerance "
              f"that fails none: {j.effect_text(c.smallest_tolerance)}, covering every run: "
              f"{j.effect_text(c.covering_tolerance)} -> {c.proposed()}")
    from pytest_keptn.spec import load_slo

    spec = load_slo(slo_raw, file="slo.yaml")
    print("\n# draft slo.yaml (A/A calibrated)\n" + draft_slo(spec, calibrations), end="")
    return 0
