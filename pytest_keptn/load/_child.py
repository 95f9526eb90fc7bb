"""The Locust runner, run as ``python -m pytest_keptn.load._child``: the only place locust is imported.

Importing locust monkey-patches the whole process with gevent, so it never happens in the
pytest process (ecosystem-notes.md §3.6). The parent reads one JSON object per stdout line:

* ``{"event": "waiting", "workers": k, "expected": n}`` while a master waits for workers;
* ``{"event": "status", "elapsed", "total", "users", "requests", "failures", "rps", "p95"}``
  every second during the run (``rps`` over the last second);
* ``{"event": "result", "start", "end", ...}`` once at the end: the load window (UTC, from
  the moment users start spawning to the moment they are stopped) and the statistics (Locust's
  HTML report is written after it, and the process exits once it is);
* ``{"event": "error", "message"}`` when the run could not happen (exit code 2);
* ``{"event": "phase", "phase"}`` when a phase that runs the locustfile's code begins
  (``import``, ``setup``, ``stop``, ``quit``), so that the parent can say which one hung.
* ``{"event": "config", "users", "spawn_rate", "run_time", "applied", "not_applied"}`` once,
  after the locustfile is imported: the settings the run uses and what ``--config`` (the stage's
  ``locust.conf``) and ``LOCUST_*`` variables set, as Locust's own parser read them.

``--config FILE`` is read by Locust's own configuration parser (with the arguments the
locustfile adds through ``init_command_line_parser``), so a setting means what it means to
``locust``: users, spawn rate, run time (``--users``/``--spawn-rate``/``--run-time`` given
here override them; else 10, 10/s, 10 s), tags, exclude tags, stop timeout, reset stats, log
level and ``html`` are applied; the whole namespace is ``environment.parsed_options``; host, the
web UI and distribution settings are reported as not applied, with the reason.
``--html-report FILE``: Locust's own HTML report of the run is written there.

``--baseline-host URL`` (live baseline, local runner only): every User class runs twice, half
the users against ``--host`` (the canary) and half against the baseline, each user staying on
its side (sessions and cookies stay consistent); ``--samples FILE`` records every request of
the window per side (response time, failure) as JSON for the statistical comparison. The
``result`` then describes the canary's requests only, so Locust's SLIs stay the canary's.

``--prestart`` (alone): import Locust, then read the run's arguments from stdin (see main).

Modes: one local process (default); ``--workers N``: a master on 127.0.0.1 with N local
``locust --worker`` processes; ``--master-bind HOST:PORT --expect-workers N``: a master that
waits for remote workers started with
``locust -f locustfile.py --worker --master-host HOST --master-port PORT``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def fail(message: str) -> int:
    emit("error", message=" ".join(message.split()))
    return 2


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pytest_keptn.load._child")
    parser.add_argument("--locustfile", required=True)
    parser.add_argument("--host", required=True)
    parser.add_argument("--users", type=int, default=None)
    parser.add_argument("--spawn-rate", type=float, default=None)
    parser.add_argument("--run-time", type=float, default=None)
    parser.add_argument("--config", default=None, help="a Locust config file (locust.conf)")
    parser.add_argument("--html-report", default=None, help="write Locust's HTML report here")
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--master-bind", default=None)
    parser.add_argument("--expect-workers", type=int, default=1)
    parser.add_argument("--worker-wait", type=float, default=120.0)
    parser.add_argument("--baseline-host", default=None)
    parser.add_argument("--samples", default=None)
    parser.add_argument("--go-file", default=None,
                        help="set up, say 'ready', then start only once this file exists")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--prestart"]:
        # A spare runner (``locust_driver.prestart``): Locust is imported now, while the stage
        # before evaluates and releases; this run's arguments come later on stdin, as one JSON
        # object {"argv": [...], "cwd": ..., "stderr": log file}.
        import gevent
        import locust
        from locust.env import Environment

        line = sys.stdin.readline()
        if not line.strip():
            return 0  # not needed after all
        request = json.loads(line)
        os.chdir(request["cwd"])
        with open(request["stderr"], "ab") as err:
            os.dup2(err.fileno(), 2)
        argv = list(request["argv"])
    args = parse_args(argv)
    emit("phase", phase="import")
    # Imported here, in the child only: this monkey-patches the process with gevent.
    import gevent
    import locust
    from locust import log as locust_log
    from locust.env import Environment
    from locust.util.load_locustfile import load_locustfile

    setup_logging: Any = locust_log.setup_logging  # untyped in locust
    setup_logging("WARNING")
    try:
        # (user classes, shapes); Locust 2.30 put the docstring first
        user_map = load_locustfile(args.locustfile)[-2]
    except BaseException as exc:  # SyntaxError, ImportError, SystemExit from a locustfile
        return fail(f"locustfile {args.locustfile} failed to import: {type(exc).__name__}: {exc}")
    if not user_map:
        return fail(f"locustfile {args.locustfile} defines no User class")
    try:
        options, settings = read_options(args)
    except ValueError as exc:
        return fail(str(exc))
    if args.baseline_host:
        settings.users += settings.users % 2  # the same number of users on each side
    users, spawn_rate, run_time = settings.users, settings.spawn_rate, settings.run_time
    emit("config", **settings.event())
    if options.loglevel and "loglevel" in settings.given:
        setup_logging(options.loglevel)
    emit("phase", phase="setup")
    user_classes = list(user_map.values())
    recorder: Recorder | None = None
    if args.baseline_host:
        if args.workers or args.master_bind:
            return fail("a live baseline needs the local Locust runner (no workers)")
        user_classes = split_users(user_classes, args.host, args.baseline_host)
        recorder = Recorder(args.baseline_host)
        hooks: Any = locust.events  # untyped in locust
        hooks.request.add_listener(recorder.on_request)
    # Locust copies Environment.host onto every User class when it starts: with a baseline each
    # class already carries its side's host, so the environment must not have one.
    host = None if recorder is not None else args.host
    env = Environment(user_classes=user_classes, host=host, events=locust.events,
                      tags=options.tags, exclude_tags=options.exclude_tags,
                      stop_timeout=options.stop_timeout, reset_stats=options.reset_stats,
                      parsed_options=options)

    workers: list[subprocess.Popen[bytes]] = []
    distributed = bool(args.workers or args.master_bind)
    try:
        if args.master_bind:
            host, _, port = args.master_bind.rpartition(":")
            try:
                runner: Any = env.create_master_runner(host or "127.0.0.1", int(port))
            except (Exception, SystemExit) as exc:  # Locust's RPCError, or its sys.exit(1)
                if "in use" in str(exc) or isinstance(exc, SystemExit):
                    return fail(f"the Locust master cannot listen on {args.master_bind}: port "
                                f"{port} is in use (--keptn-locust-master-bind)")
                return fail(f"cannot bind the Locust master to {args.master_bind}: {exc}")
            expected = args.expect_workers
        elif args.workers:
            runner = env.create_master_runner("127.0.0.1", 0)
            expected = args.workers
            for _ in range(args.workers):
                workers.append(subprocess.Popen(
                    [sys.executable, "-m", "locust", "-f", args.locustfile, "--worker",
                     "--master-host", "127.0.0.1", "--master-port", str(runner.server.port),
                     "--loglevel", "WARNING"],
                    stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                ))
        else:
            runner = env.create_local_runner()
            expected = 0
        events: Any = env.events
        events.init.fire(environment=env, runner=runner, web_ui=None)

        if distributed:
            deadline = time.monotonic() + args.worker_wait
            last = -1.0
            while len(runner.clients.ready) < expected:
                if time.monotonic() > deadline:
                    return fail(f"only {len(runner.clients.ready)} of {expected} Locust workers "
                                f"connected within {args.worker_wait:g}s")
                if any(w.poll() is not None for w in workers):
                    return fail("a local Locust worker exited before the run started")
                if time.monotonic() - last >= 2.0:
                    emit("waiting", workers=len(runner.clients.ready), expected=expected)
                    last = time.monotonic()
                gevent.sleep(0.1)

        if args.go_file:
            # The parent waits (e.g. for Prometheus to scrape the canary) while this process
            # imports Locust and sets up; the load window starts on its word.
            emit("ready")
            deadline = time.monotonic() + args.worker_wait
            while not os.path.exists(args.go_file):
                if time.monotonic() > deadline:
                    return fail(f"no go from the parent within {args.worker_wait:g}s")
                gevent.sleep(0.02)

        start = datetime.now(UTC)
        t0 = time.monotonic()
        if recorder is not None:
            recorder.start = time.time()
        runner.start(users, spawn_rate=spawn_rate)
        previous = 0
        tick = 1
        while True:
            now = time.monotonic() - t0
            if now >= run_time:
                break
            gevent.sleep(min(tick - now, run_time - now))
            if time.monotonic() - t0 >= tick:
                tick += 1
                total = env.stats.total  # runner.start() may replace the stats objects
                done = total.num_requests
                emit("status", elapsed=round(time.monotonic() - t0, 2), total=run_time,
                     users=runner.user_count, requests=done, failures=total.num_failures,
                     rps=done - previous, p95=total.get_response_time_percentile(0.95) or 0)
                previous = done
        emit("phase", phase="stop")
        if recorder is not None:
            recorder.end = time.time()
        runner.stop()
        end = datetime.now(UTC)
        if distributed:
            gevent.sleep(2.0)  # the workers' last stats reports (they report every 3 s)
        result = summarize(env, start, end)
        result["workers"] = expected
        if recorder is not None:
            result.update(recorder.canary_summary(result, (end - start).total_seconds()))
            result["baseline"] = recorder.side_summary("baseline")
            if args.samples:
                with open(args.samples, "w", encoding="utf-8") as out:
                    json.dump(recorder.samples(), out, separators=(",", ":"))
                result["samples"] = args.samples
        reports = {args.html_report, options.html_file if "html_file" in settings.given else None}
        if args.html_report:
            result["html_report"] = os.path.abspath(args.html_report)
        # The result first: the parent's evaluation does not wait for Locust's HTML report,
        # which is written now, beside its freshness wait (the session waits for this process
        # before it ends); a report that cannot be written is said in the log.
        emit("result", **result)
        html_error = write_html_reports(env, sorted(p for p in reports if p))
        if html_error:
            print(f"Locust's HTML report could not be written: {html_error}", file=sys.stderr,
                  flush=True)
        emit("phase", phase="quit")
        runner.quit()
        return 0
    finally:
        for worker in workers:
            if worker.poll() is None:
                try:
                    worker.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    worker.kill()


# What pytest-keptn's runner does with a setting of locust.conf, by Locust's option name.
APPLIED = frozenset({"num_users", "spawn_rate", "run_time", "tags", "exclude_tags",
                     "stop_timeout", "reset_stats", "loglevel", "html_file"})
NOT_APPLIED = {
    "host": "the host is the canary's URL",
    "locustfile": "the stage's locust/locustfile.py runs",
    **dict.fromkeys(("headless", "headful", "autostart", "autoquit", "web_host", "web_port",
                     "web_auth", "web_login", "web_base_path", "web_host_display_name",
                     "tls_cert", "tls_key", "class_picker", "legacy_ui", "build_path"),
                    "no web UI: the load runs headless"),
    **dict.fromkeys(("master", "worker", "processes", "expect_workers", "expect_workers_max_wait",
                     "master_host", "master_port", "master_bind_host", "master_bind_port"),
                    "use --keptn-locust-workers or --keptn-locust-master-bind"),
}
DEFAULTS = {"num_users": 10, "spawn_rate": 10.0, "run_time": 10.0}


@dataclass
class LoadSettings:
    """The run's users, spawn rate and run time, and what the config file set."""

    users: int = 0
    spawn_rate: float = 0.0
    run_time: float = 0.0
    config: str | None = None
    applied: list[str] = field(default_factory=list)  # "users=7", "users=7 (overridden: 20)"
    not_applied: list[str] = field(default_factory=list)  # "host (the host is the canary's URL)"
    given: dict[str, str] = field(default_factory=dict)  # Locust's option name -> key as written

    def event(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "given"}


def read_options(args: argparse.Namespace) -> tuple[Any, LoadSettings]:
    """Locust's options as ``locust --config FILE -f locustfile`` reads them (the locustfile is
    imported already, so its own arguments are known), with this run's overrides applied."""
    from locust.argument_parser import default_args_dict, get_parser
    from locust.util.timespan import parse_timespan

    where = args.config or "LOCUST_* environment variables"
    parser = get_parser(default_config_files=[])  # not ~/.locust.conf or ./pyproject.toml
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            options = parser.parse_args(
                ["-f", args.locustfile] + (["--config", args.config] if args.config else []))
    except SystemExit:
        said = [line for line in errors.getvalue().splitlines() if line.strip()]
        raise ValueError(f"{where}: Locust cannot read it: "
                         f"{said[-1] if said else 'invalid configuration'}") from None
    for dest in ("run_time", "stop_timeout"):  # Locust 2.30 leaves timespans as text
        value = getattr(options, dest, None)
        if isinstance(value, str):
            try:
                setattr(options, dest, parse_timespan(value))
            except ValueError as exc:
                raise ValueError(f"{where}: {dest.replace('_', '-')}: {exc}") from None
    settings = LoadSettings()
    settings.config = args.config
    values: dict[str, str] = {}
    for source, entries in parser.get_source_to_settings_dict().items():
        if source.startswith("config_file") or source == "environment_variables":
            for key, (action, value) in entries.items():
                if action is not None:
                    settings.given[action.dest] = key
                    values[action.dest] = " ".join(value) if isinstance(value, list) else str(value)
    known = set(default_args_dict())
    overrides = {"num_users": args.users, "spawn_rate": args.spawn_rate, "run_time": args.run_time}
    for dest, key in settings.given.items():
        shown = f"{key}={values[dest]}"
        if overrides.get(dest) is not None:
            settings.applied.append(f"{shown} (overridden: {overrides[dest]:g})")
        elif dest in APPLIED or dest not in known:  # not known: the locustfile's own argument
            settings.applied.append(shown)
        else:
            settings.not_applied.append(
                f"{key} ({NOT_APPLIED.get(dest, 'not used by pytest-keptn, which runs Locust as a library')})")

    def pick(dest: str) -> Any:
        if overrides[dest] is not None:
            return overrides[dest]
        return getattr(options, dest) if dest in settings.given else DEFAULTS[dest]

    try:
        settings.users = int(pick("num_users"))
        settings.spawn_rate = float(pick("spawn_rate"))
        settings.run_time = float(pick("run_time"))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from None
    if settings.users < 1 or settings.spawn_rate <= 0 or settings.run_time <= 0:
        raise ValueError(f"{where}: Locust needs at least 1 user, a positive spawn rate and run "
                         f"time (got {settings.users}, {settings.spawn_rate:g}, "
                         f"{settings.run_time:g}s)")
    return options, settings


def write_html_reports(env: Any, paths: list[str]) -> str | None:
    """Locust's own HTML report of the run at each path; the error, if one could not be written."""
    if not paths:
        return None
    try:
        from locust import html

        get_html_report: Any = html.get_html_report  # untyped in locust
        page = get_html_report(env, show_download_link=False)
        for path in paths:
            with open(path, "w", encoding="utf-8") as out:
                out.write(page)
    except Exception as exc:  # a report is a by-product: the load's figures still count
        return f"{type(exc).__name__}: {exc}"
    return None


def split_users(user_classes: list[Any], canary: str, baseline: str) -> list[Any]:
    """Each User class twice, same weight: one on the canary's host, one on the baseline's.

    Locust dispatches users of equal weight alternately, so with an even user count each side
    gets half of them, spawned interleaved (the parent makes the count even).
    """
    out: list[Any] = []
    for cls in user_classes:
        for side, host in (("canary", canary), ("baseline", baseline)):

            def context(self: Any, _base: Any = cls.context, _side: str = side) -> dict[str, Any]:
                return {**_base(self), "keptn_side": _side}

            out.append(type(f"{cls.__name__}_{side}", (cls,), {
                "host": host, "context": context, "__module__": cls.__module__,
            }))
    return out


class Recorder:
    """Every request of the load window, per side: response times (ms) and failures."""

    def __init__(self, baseline_host: str) -> None:
        self.baseline_host = baseline_host.rstrip("/")
        self.start = self.end = 0.0
        self.times: dict[str, list[float]] = {"canary": [], "baseline": []}
        self.failures: dict[str, int] = {"canary": 0, "baseline": 0}
        self.seconds: dict[str, dict[int, int]] = {"canary": {}, "baseline": {}}

    def on_request(self, response_time: float = 0.0, exception: Any = None,
                   context: Any = None, start_time: float | None = None, url: str | None = None,
                   **_: Any) -> None:
        began = start_time if start_time is not None else time.time()
        if not self.start or began < self.start or (self.end and began > self.end):
            return
        side = (context or {}).get("keptn_side") if isinstance(context, dict) else None
        if side not in self.times:
            side = "baseline" if (url or "").startswith(self.baseline_host) else "canary"
        self.times[side].append(round(float(response_time or 0.0), 3))
        if exception is not None:
            self.failures[side] += 1
        second = int(began - self.start)
        per = self.seconds[side]
        per[second] = per.get(second, 0) + 1

    def side_summary(self, side: str) -> dict[str, Any]:
        times = sorted(self.times[side])

        def pct(p: float) -> float:
            return times[min(len(times) - 1, int(p * len(times)))] if times else 0.0

        return {
            "requests": len(times), "failures": self.failures[side],
            "avg_ms": sum(times) / len(times) if times else 0.0,
            "p50_ms": pct(0.5), "p95_ms": pct(0.95), "p99_ms": pct(0.99),
            "max_ms": times[-1] if times else 0.0,
        }

    def canary_summary(self, result: dict[str, Any], seconds: float) -> dict[str, Any]:
        out = self.side_summary("canary")
        out["rps"] = out["requests"] / max(seconds, 1e-9)
        out["all_requests"] = result["requests"]  # both sides, as Locust counted them
        return out

    def samples(self) -> dict[str, Any]:
        span = max(1, int(self.end - self.start))
        return {
            side: {
                "response_times_ms": self.times[side],
                "requests": len(self.times[side]),
                "failures": self.failures[side],
                "per_second": [self.seconds[side].get(i, 0) for i in range(span)],
            }
            for side in ("canary", "baseline")
        }


def summarize(env: Any, start: datetime, end: datetime) -> dict[str, Any]:
    total = env.stats.total
    seconds = max((end - start).total_seconds(), 1e-9)

    def entry(stats: Any) -> dict[str, Any]:
        return {
            "method": stats.method, "name": stats.name,
            "requests": stats.num_requests, "failures": stats.num_failures,
            "rps": stats.num_requests / seconds,
            "avg_ms": stats.avg_response_time,
            "p50_ms": stats.get_response_time_percentile(0.5) or 0,
            "p95_ms": stats.get_response_time_percentile(0.95) or 0,
            "p99_ms": stats.get_response_time_percentile(0.99) or 0,
            "max_ms": stats.max_response_time or 0,
        }

    errors = sorted(env.stats.errors.values(), key=lambda e: -e.occurrences)
    exceptions = list(getattr(env.runner, "exceptions", {}).values())
    return {
        "start": start.isoformat(), "end": end.isoformat(),
        **{k: v for k, v in entry(total).items() if k not in ("method", "name")},
        "locust_total_rps": total.total_rps,
        "endpoints": [entry(s) for s in env.stats.entries.values()],
        "errors": [{"method": e.method, "name": e.name, "error": str(e.error),
                    "occurrences": e.occurrences} for e in errors],
        "exceptions": [{"msg": str(x.get("msg", "")), "count": int(x.get("count", 0))}
                       for x in exceptions][:5],
    }


if __name__ == "__main__":
    sys.exit(main())
