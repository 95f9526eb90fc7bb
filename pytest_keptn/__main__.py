"""``python -m pytest_keptn stop|status|history|upgrade``: what the local deployer left running,
the evaluation history (list, invalidate, export, import), and Keptn 0.7 shipyards converted."""

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
    history = sub.add_parser("history", help="the evaluation history: list, invalidate, "
                             "export, import")
    history.add_argument("--history", help="the history file (default: <state-dir>/history.sqlite)")
    history.add_argument("--state-dir", default=".keptn", help="the --keptn-state-dir of the runs")
    actions = history.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="evaluations, newest first (ids for --keptn-baseline)")
    listing.add_argument("--project")
    listing.add_argument("--stage")
    listing.add_argument("--service")
    listing.add_argument("--limit", type=int, default=20)
    invalidate = actions.add_parser(
        "invalidate", help="exclude an evaluation from every later comparison")
    invalidate.add_argument("id")
    invalidate.add_argument("--reason", default="invalidated by hand")
    for name, text in (("export", "write every evaluation as Keptn events (JSON lines)"),
                       ("import", "read Keptn evaluation.finished events (JSON lines)")):
        actions.add_parser(name, help=text).add_argument("file")
    upgrade = sub.add_parser("upgrade", help="convert Keptn files to the format Keptn 0.8 reads")
    kinds = upgrade.add_subparsers(dest="kind", required=True)
    shipyard = kinds.add_parser(
        "shipyard", help="a Keptn 0.7 shipyard to spec.keptn.sh/0.2.0, as Keptn 0.8.7's "
        "`keptn upgrade project --shipyard` converts it")
    shipyard.add_argument("file", help="the Keptn 0.7 shipyard.yaml")
    shipyard.add_argument("--output", help="where to write the result (default: stdout)")
    shipyard.add_argument("--project", default="", help="metadata.name of the result")
    args = parser.parse_args(argv)
    if args.command == "history":
        return _history(args)
    if args.command == "upgrade":
        return _upgrade(args)
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


def _upgrade(args: argparse.Namespace) -> int:
    from pytest_keptn.errors import KeptnError
    from pytest_keptn.spec.shipyard import load_shipyard
    from pytest_keptn.spec.upgrade import upgrade_file

    try:
        text = upgrade_file(Path(args.file), project=args.project).to_yaml()
        load_shipyard(text.encode(), file=args.output or "the converted shipyard")  # it runs
    except KeptnError as exc:
        print(f"pytest-keptn: {exc}", file=sys.stderr)
        return 2
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        Path(args.output).write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"pytest-keptn: {args.output}: cannot write: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.output} (spec.keptn.sh/0.2.0)", file=sys.stderr)
    return 0


def _history(args: argparse.Namespace) -> int:
    from pytest_keptn.errors import KeptnError
    from pytest_keptn.gate.history import History

    path = Path(args.history) if args.history else Path(args.state_dir) / "history.sqlite"
    if args.action != "import" and not path.is_file():
        print(f"pytest-keptn: no history at {path} (give --history or --state-dir)",
              file=sys.stderr)
        return 2
    try:
        with History(path) as store:
            if args.action == "list":
                rows = store.evaluations(args.project, args.stage, args.service, args.limit)
                for row in rows:
                    note = f"  invalidated: {row.invalidated}" if row.invalidated else ""
                    print(f"{row.time:%Y-%m-%d %H:%M:%S}  {row.id}  {row.project}/{row.stage}/"
                          f"{row.service}  {row.image}:{row.tag}  {row.result} "
                          f"{row.score:.1f}%{note}")
                if not rows:
                    print("no evaluations", file=sys.stderr)
            elif args.action == "invalidate":
                store.invalidate(args.id, args.reason)
                print(f"invalidated {args.id}: {args.reason}")
            elif args.action == "export":
                print(f"exported {store.export_events(args.file)} evaluation(s) to {args.file}")
            else:
                print(f"imported {store.import_events(args.file)} evaluation(s) from {args.file}")
        return 0
    except KeptnError as exc:
        print(f"pytest-keptn: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
