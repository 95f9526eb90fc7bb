"""``python -m pytest_keptn stop|status``: manage what the local deployer left running."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_keptn")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("stop", "stop every process the local deployer recorded"),
                       ("status", "show what runs as primary/canary in each stage")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--state-dir", default=".keptn", help="the --keptn-state-dir of the runs")
    sub.choices["status"].add_argument(
        "--url", nargs=2, metavar=("STAGE", "SERVICE"),
        help="print only the primary's URL of STAGE/SERVICE (exit 1 when none runs)",
    )
    args = parser.parse_args(argv)
    from pytest_keptn.deploy import local
    from pytest_keptn.deploy import state as st
    from pytest_keptn.errors import KeptnError

    workdir = Path(args.state_dir)
    try:
        if args.command == "stop":
            for line in local.stop_all(workdir):
                print(line)
            return 0
        if args.url:
            url = local.primary_url(workdir, args.url[0], args.url[1])
            if url is None:
                print(f"no primary runs for {args.url[0]}/{args.url[1]}", file=sys.stderr)
                return 1
            print(url)
            return 0
        data = st.read(workdir)
        for name, entry in sorted(data["services"].items()):
            stage, service = name.split("/", 1)
            for role, inst in sorted(entry.items()):
                if isinstance(inst, dict) and "pid" in inst:
                    live = local.primary_url(workdir, stage, service) if role == "primary" else None
                    alive = "serving" if role != "primary" or live else "gone"
                    print(f"{name:30} {role:8} {inst.get('image', '')}:{inst.get('tag', '')} "
                          f"{inst.get('url', '')} pid {inst['pid']} ({alive})")
        return 0
    except KeptnError as exc:
        print(f"pytest-keptn: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
