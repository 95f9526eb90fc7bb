"""``python -m pytest_keptn`` (or ``pytest-keptn``) ``stop|status|history|approve|upgrade``:
what the local deployer left running, the evaluation history (list, invalidate, export, import,
rescore), pending approvals, and Keptn 0.7 shipyards converted. The state folder and history are found as the plugin finds them (rootdir,
ini file, ``keptn_root``, ``keptn_state_dir``, ``keptn_history``); a command that finds nothing
says where it looked and exits 1; a bad argument or a broken store exits 2."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_keptn.gate.history import History
    from pytest_keptn.locate import Located

FOUND_NOTHING = 1
FAILED = 2


def _parser() -> argparse.ArgumentParser:
    from importlib.metadata import PackageNotFoundError, version

    try:
        own = version("pytest-keptn")
    except PackageNotFoundError:
        own = "unknown"
    parser = argparse.ArgumentParser(prog="pytest-keptn")
    parser.add_argument("--version", action="version", version=f"pytest-keptn {own}")
    sub = parser.add_subparsers(dest="command", required=True)
    state_help = "the runs' state folder (default: as the plugin resolves keptn_state_dir)"
    history_help = ("the history: a SQLite file or a postgresql:// URL (default: as the "
                    "plugin resolves keptn_history)")
    for name, text in (("stop", "stop every process the local deployer recorded and a kept embedded Prometheus"),
                       ("status", "show what runs as primary/canary in each stage")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--state-dir", help=state_help)
    sub.choices["status"].add_argument(
        "--url", nargs=2, metavar=("STAGE", "SERVICE"),
        help="print only the primary's URL of STAGE/SERVICE (exit 1 when none runs)",
    )
    history = sub.add_parser("history", help="the evaluation history: list, invalidate, "
                             "export, import, rescore")
    approve = sub.add_parser("approve", help="pending approvals: list them, or answer one")
    for cmd in (history, approve):
        cmd.add_argument("--history", help=history_help)
        cmd.add_argument("--state-dir", help=state_help)
    approve.add_argument("id", nargs="?", help="the approval to answer (none: list pending)")
    approve.add_argument("--reject", action="store_true", help="reject instead of approve")
    approve.add_argument("--who", help="who answers (default: the user name)")
    actions = history.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="evaluations, newest first (ids for --keptn-baseline)")
    for option in ("project", "stage", "service", "image", "tag", "context"):
        listing.add_argument(f"--{option}")
    listing.add_argument("--limit", type=int, default=20)
    invalidate = actions.add_parser(
        "invalidate", help="exclude an evaluation from every later comparison")
    invalidate.add_argument("id")
    invalidate.add_argument("--reason", default="invalidated by hand")
    for name, text in (("export", "write every evaluation as Keptn events (JSON lines)"),
                       ("import", "read Keptn evaluation.finished events (JSON lines)")):
        actions.add_parser(name, help=text).add_argument("file")
    rescore = actions.add_parser(
        "rescore", help="re-score stored evaluations under another slo.yaml (what-if)")
    rescore.add_argument("--slo", required=True, help="the edited slo.yaml")
    for option in ("project", "stage", "service"):
        rescore.add_argument(f"--{option}")
    rescore.add_argument("--last", type=int, default=10, help="how many evaluations (newest)")
    from pytest_keptn.calibrate import add_parser

    add_parser(sub)
    upgrade = sub.add_parser("upgrade", help="convert Keptn files to the format Keptn 0.8 reads")
    kinds = upgrade.add_subparsers(dest="kind", required=True)
    shipyard = kinds.add_parser(
        "shipyard", help="a Keptn 0.7 shipyard to spec.keptn.sh/0.2.0, as Keptn 0.8.7's "
        "`keptn upgrade project --shipyard` converts it")
    shipyard.add_argument("file", help="the Keptn 0.7 shipyard.yaml")
    shipyard.add_argument("--output", help="where to write the result (default: stdout)")
    shipyard.add_argument("--project", default="", help="metadata.name of the result")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "upgrade":
        return _upgrade(args)
    if args.command == "calibrate":
        from pytest_keptn.calibrate import run

        return run(args)
    from pytest_keptn.errors import KeptnError
    from pytest_keptn.locate import locate

    try:
        where = locate(state_dir=args.state_dir, history=getattr(args, "history", None))
        if args.command in ("history", "approve"):
            return _with_history(args, where)
        return _deployer(args, where)
    except KeptnError as exc:
        print(f"pytest-keptn: {exc}", file=sys.stderr)
        return FAILED


def _upgrade(args: argparse.Namespace) -> int:
    from pytest_keptn.errors import KeptnError
    from pytest_keptn.spec.shipyard import load_shipyard
    from pytest_keptn.spec.upgrade import upgrade_file

    try:
        text = upgrade_file(Path(args.file), project=args.project).to_yaml()
        load_shipyard(text.encode(), file=args.output or "the converted shipyard")  # it runs
    except KeptnError as exc:
        print(f"pytest-keptn: {exc}", file=sys.stderr)
        return FAILED
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        Path(args.output).write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"pytest-keptn: {args.output}: cannot write: {exc.strerror or exc}", file=sys.stderr)
        return FAILED
    print(f"wrote {args.output} (spec.keptn.sh/0.2.0)", file=sys.stderr)
    return 0


def _looked(where: Located, what: str) -> str:
    return f"pytest-keptn: {what} (looked in {where.state_dir}: {where.how})"


def _deployer(args: argparse.Namespace, where: Located) -> int:
    from pytest_keptn.deploy import local
    from pytest_keptn.deploy import state as st

    workdir = where.state_dir
    if args.command == "stop":
        from pytest_keptn.prometheus.file_sd import prune_recorded
        from pytest_keptn.prometheus.keep import stop_kept

        # what was stopped leaves the file_sd files of --keptn-prometheus-file-sd
        lines = [*local.stop_all(workdir), *prune_recorded(workdir)]
        kept = stop_kept(workdir / "prometheus")  # --keptn-prometheus-keep
        lines += [kept] if kept else []
        for line in lines:
            print(line)
        if not lines:
            print(_looked(where, "nothing to stop"), file=sys.stderr)
            return FOUND_NOTHING
        return 0
    if args.url:
        url = local.primary_url(workdir, args.url[0], args.url[1])
        if url is None:
            print(_looked(where, f"no primary runs for {args.url[0]}/{args.url[1]}"),
                  file=sys.stderr)
            return FOUND_NOTHING
        print(url)
        return 0
    data = st.read(workdir)
    shown = 0
    for name, entry in sorted(data["services"].items()):
        stage, service = name.split("/", 1)
        for role, inst in sorted(entry.items()):
            if isinstance(inst, dict) and "pid" in inst:
                live = local.primary_url(workdir, stage, service) if role == "primary" else None
                alive = "serving" if role != "primary" or live else "gone"
                print(f"{name:30} {role:8} {inst.get('image', '')}:{inst.get('tag', '')} "
                      f"{inst.get('url', '')} pid {inst['pid']} ({alive})")
                shown += 1
    if not shown:
        print(_looked(where, "no deployment recorded"), file=sys.stderr)
        return FOUND_NOTHING
    return 0


def _with_history(args: argparse.Namespace, where: Located) -> int:
    from pytest_keptn.gate._postgres import is_postgres_url
    from pytest_keptn.gate.history import History

    location = where.history
    if (getattr(args, "action", "") != "import" and not is_postgres_url(location)
            and not Path(location).is_file()):
        print(f"pytest-keptn: no history at {location} (give --history or --state-dir; "
              f"{where.how})", file=sys.stderr)
        return FAILED
    with History(location) as store:
        if args.command == "approve":
            return _approve(args, store)
        code = _history_action(args, store)
        for line in store.take_warnings():
            print(f"pytest-keptn: {line}", file=sys.stderr)
        return code


def _history_action(args: argparse.Namespace, store: History) -> int:
    from pytest_keptn.gate.history import ImportRefused

    if args.action == "list":
        rows = store.evaluations(args.project, args.stage, args.service, args.limit,
                                 image=args.image, tag=args.tag, context=args.context)
        for row in rows:
            note = f"  invalidated: {row.invalidated}" if row.invalidated else ""
            if row.unreadable:
                note += f"  unreadable: {row.unreadable}"
            context = f"  context {row.context}" if row.context else ""
            print(f"{row.time:%Y-%m-%d %H:%M:%S}  {row.id}  {row.project}/{row.stage}/"
                  f"{row.service}  {row.image}:{row.tag}  {row.result} "
                  f"{row.score:.1f}%{context}{note}")
        if not rows:
            print(f"pytest-keptn: no evaluations in {store.location}", file=sys.stderr)
            return FOUND_NOTHING
    elif args.action == "invalidate":
        store.invalidate(args.id, args.reason)
        print(f"invalidated {args.id}: {args.reason}")
    elif args.action == "export":
        print(f"exported {store.export_events(args.file)} evaluation(s) to {args.file}")
    elif args.action == "import":
        try:
            count = store.import_events(args.file)
        except ImportRefused as exc:
            for problem in exc.problems:
                print(f"pytest-keptn: {exc.file}: {problem}", file=sys.stderr)
            print(f"pytest-keptn: nothing imported ({len(exc.problems)} bad events)",
                  file=sys.stderr)
            return FAILED
        print(f"imported {count} evaluation(s) from {args.file}")
    else:
        return _rescore(args, store)
    return 0


def _rescore(args: argparse.Namespace, store: History) -> int:
    from pytest_keptn.gate.rescore import rescore
    from pytest_keptn.spec.slo import load_slo

    slo = load_slo(Path(args.slo))
    found = rescore(store, slo, project=args.project, stage=args.stage, service=args.service,
                    last=args.last)
    for item in found:
        old = f"{item.old_result} {item.old_score:.1f}%"
        new = f"{item.new_result} {item.new_score:.1f}%"
        flag = "CHANGED" if item.old_result != item.new_result else "same"
        changed = "; ".join(item.changed) or "no objective changed"
        print(f"{item.time:%Y-%m-%d %H:%M:%S}  {item.id}  {item.stage}  {item.image}:{item.tag}"
              f"  {old} -> {new}  {flag}  ({changed})")
    if not found:
        print(f"pytest-keptn: no evaluations to re-score in {store.location}", file=sys.stderr)
        return FOUND_NOTHING
    flips = sum(1 for item in found if item.old_result != item.new_result)
    print(f"{len(found)} evaluation(s) re-scored under {args.slo}: {flips} would change result")
    return 0


def _approve(args: argparse.Namespace, store: History) -> int:
    if args.id is None:
        pending = store.approvals(pending_only=True)
        for item in pending:
            print(f"{item.requested:%Y-%m-%d %H:%M:%S}  {item.id}  {item.project}/{item.stage}/"
                  f"{item.service}  {item.image}:{item.tag}  {item.sequence}  pending")
        if not pending:
            print(f"pytest-keptn: no pending approvals in {store.location}", file=sys.stderr)
            return FOUND_NOTHING
        return 0
    who = args.who or os.environ.get("GITHUB_ACTOR") or getpass.getuser()
    done = store.answer_approval(args.id, approve=not args.reject, who=who)
    print(f"{done.decision} {done.image}:{done.tag} in {done.stage} ({done.id}) by {done.who}")
    return 0


def cli() -> None:
    """The ``pytest-keptn`` console script."""
    sys.exit(main())


if __name__ == "__main__":
    cli()
