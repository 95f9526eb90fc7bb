"""The Locust load driver: runs the stage's locustfile in a child process and reads its stats.

Locust is never imported here (it monkey-patches the process with gevent); the child
``python -m pytest_keptn.load._child`` does that and reports one JSON line per second.

Settings, strongest first: ``--keptn-locust-users/-spawn-rate/-run-time`` > the shipyard test
task's properties (``users``, ``spawn_rate``, ``run_time``) > the stage's ``locust/locust.conf``
> 10 users, 10/s, 10 s. ``locust.conf`` is read in the child by Locust's own configuration
parser, so every key means what it means to ``locust --config`` (tags, stop-timeout, the
locustfile's own arguments ...); the child says once what it applied and what it did not (host:
the canary's URL is the host). Locust's own HTML report of the run is written next to its log
(``details["html_report"]``), after the runner gave its result: the evaluation does not wait
for it, the session's end does.

The **load window** recorded in the :class:`LoadResult` runs from the moment users start
spawning to the moment they are stopped (both measured in the child, UTC); worker start-up
and the final stats collection are outside it.

Live baseline (slo.yaml ``comparison.baseline: live``): given ``baseline_url``, half the users
(rounded up: an odd count gains one) run against the canary and half against the baseline over
the same window, each user staying on its side; every request's response time and outcome is
recorded per side (``details["samples"]``, read by :func:`pytest_keptn.load.provider.
live_samples`). Only the local runner can record them: with workers the load goes to the
canary alone and ``details["live_unavailable"]`` says why.

Scaling: ``--keptn-locust-workers=N`` runs a master and N local worker processes on
127.0.0.1. ``--keptn-locust-master-bind=HOST:PORT`` runs a master bound to HOST:PORT that
waits for ``--keptn-locust-expect-workers`` remote workers, started on other machines with::

    locust -f locustfile.py --worker --master-host HOST --master-port PORT
"""

from __future__ import annotations

import json
import queue
import re
import subprocess
import sys
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import pytest

from pytest_keptn.errors import LoadError
from pytest_keptn.extras import LOCUST
from pytest_keptn.model import LoadResult, StageContext, Window
from pytest_keptn.system import processes as procs
from pytest_keptn.system.processes import ProcessRegistry

WORKER_WAIT = 120.0
# How long a phase that runs the locustfile's own code may take (--keptn-locust-hang-timeout):
# importing Locust and the locustfile takes a few seconds on a loaded 2-core machine.
DEFAULT_HANG_TIMEOUT = 30.0
# How long the session's cleanup lets a runner that gave its result write Locust's HTML report
# and quit before stopping it.
DRAIN = 20.0
PHASES = {
    "start": "starting (the Python process before Locust is imported)",
    "import": "importing Locust and the locustfile",
    "setup": "setting up (the locustfile's init and test_start listeners)",
    "waiting": "waiting for its workers",
    "run": "running the load (the users' on_start or tasks do not yield)",
    "stop": "stopping the users (a User's on_stop or a test_stop listener)",
    "quit": "quitting",
}

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(h|m|s)")


def parse_run_time(value: object, *, source: str = "run_time") -> float:
    """``10s``, ``1m30s``, ``2h``, ``45`` (seconds) -> seconds."""
    text = str(value).strip().lower()
    try:
        seconds = float(text)
    except ValueError:
        parts = _DURATION.findall(text)
        if not parts or _DURATION.sub("", text).strip():
            raise LoadError(f"run time {value!r} is not a duration like 30s, 1m30s or 2h",
                            field=source) from None
        seconds = sum(float(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)
    if seconds <= 0:
        raise LoadError(f"run time {value!r} must be positive", field=source)
    return seconds


def overrides(ctx: StageContext, properties: dict[str, object]
              ) -> tuple[int | None, float | None, float | None]:
    """Users, spawn rate and run time from ``--keptn-locust-*`` or the test task's properties
    (None: locust.conf or the default decides, in the child)."""
    settings = ctx.settings

    def pick(setting: object, prop: str) -> tuple[object, str] | None:
        if setting is not None:
            return setting, f"keptn_locust_{prop}"
        if properties.get(prop) is not None:
            return properties[prop], prop
        return None

    users_p = pick(settings.locust_users, "users")
    rate_p = pick(settings.locust_spawn_rate, "spawn_rate")
    time_p = pick(settings.locust_run_time, "run_time")
    try:
        users = int(str(users_p[0])) if users_p else None
        rate = float(str(rate_p[0])) if rate_p else None
    except ValueError as exc:
        raise LoadError(f"bad Locust users or spawn rate: {exc}") from None
    run_time = parse_run_time(time_p[0], source=time_p[1]) if time_p else None
    if (users is not None and users < 1) or (rate is not None and rate <= 0):
        raise LoadError(f"Locust needs at least 1 user and a positive spawn rate (got {users}, {rate})")
    return users, rate, run_time


def _reader(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


class LocustDriver:
    """Drive the test task's load with Locust (the built-in load driver)."""

    def pytest_keptn_prepare_load(self, ctx: StageContext) -> None:
        if ctx.settings.locust_workers or ctx.settings.locust_master_bind:
            return  # a master with workers is started as it always was
        if ctx.resource("locust/locustfile.py") is not None:
            prestart(ctx.processes, ctx.stage)

    @pytest.hookimpl(trylast=True)
    def pytest_keptn_run_load(
        self, ctx: StageContext, url: str, properties: dict[str, object],
        baseline_url: str | None,
    ) -> LoadResult | None:
        locustfile = ctx.resource("locust/locustfile.py")
        if locustfile is None:
            return None
        if not LOCUST.installed:
            raise LoadError(f"this locustfile needs Locust, which is not installed: {LOCUST.pip}",
                            file=str(locustfile))
        users, rate, run_time = overrides(ctx, dict(properties or {}))
        return run_locust(ctx, url, locustfile, users=users, spawn_rate=rate, run_time=run_time,
                          conf=ctx.resource("locust/locust.conf"), baseline_url=baseline_url)


def run_locust(
    ctx: StageContext, url: str, locustfile: Path, *, users: int | None = None,
    spawn_rate: float | None = None, run_time: float | None = None, conf: Path | None = None,
    baseline_url: str | None = None,
) -> LoadResult:
    """Run Locust in a child process against ``url``; LoadError when no usable load happened.
    ``users``/``spawn_rate``/``run_time`` override ``conf`` (a locust.conf), which overrides the
    defaults (10, 10/s, 10 s)."""
    settings = ctx.settings
    workers = int(settings.locust_workers or 0)
    live_unavailable = ""
    if baseline_url and (workers > 0 or settings.locust_master_bind):
        live_unavailable = "Locust workers cannot record per-request samples"
        baseline_url = None
    argv = [
        sys.executable, "-m", "pytest_keptn.load._child", "--locustfile", str(locustfile),
        "--host", url, "--worker-wait", f"{WORKER_WAIT:g}",
    ]
    for flag, value in (("--users", users), ("--spawn-rate", spawn_rate), ("--run-time", run_time)):
        if value is not None:
            argv += [flag, f"{value:g}"]
    if conf is not None:
        argv += ["--config", str(conf)]
    mode = "1 process"
    if settings.locust_master_bind:
        argv += ["--master-bind", str(settings.locust_master_bind),
                 "--expect-workers", str(int(settings.locust_expect_workers or 1))]
        mode = f"master on {settings.locust_master_bind}"
    elif workers > 0:
        argv += ["--workers", str(workers)]
        mode = f"{workers} workers"
    logs = ctx.workdir / "logs"
    log = logs / f"locust-{ctx.stage}-{ctx.service}-{datetime.now(UTC):%Y%m%dT%H%M%S%f}.log"
    go_file = log.with_suffix(".go")
    argv += ["--go-file", str(go_file), "--html-report", str(log.with_suffix(".html"))]
    samples = log.with_suffix(".samples.json")
    target = url
    if baseline_url:
        argv += ["--baseline-host", baseline_url, "--samples", str(samples)]
        target = f"{url} and the baseline at {baseline_url} (half each)"
    what = f"locustfile {locustfile}"
    result: dict[str, Any] | None = None
    error: str | None = None
    tag = procs.new_tag()
    try:
        logs.mkdir(parents=True, exist_ok=True)
        err = open(log, "ab")
    except OSError as exc:  # a full or read-only state folder
        raise LoadError(f"cannot write the Locust log: {exc.strerror or exc}", file=str(log)) from None
    spare = _take_spare(ctx.processes, ctx.stage)
    if spare is not None:  # Locust is imported already (prestart)
        err.close()
        child, tag = spare
        assert child.stdin is not None
        child.stdin.write(json.dumps({"argv": argv[3:], "cwd": str(locustfile.parent),
                                      "stderr": str(log)}) + "\n")
        child.stdin.close()
    else:
        with err:
            child = subprocess.Popen(
                argv, cwd=locustfile.parent, stdout=subprocess.PIPE, stderr=err,
                stdin=subprocess.DEVNULL, text=True, start_new_session=True,
                env=procs.tagged_env(tag),
            )
        ctx.processes.track(procs.Started(child.pid, "load", tag=tag))
    hang = float(settings.locust_hang_timeout or DEFAULT_HANG_TIMEOUT)
    phase, limit = "start", hang
    since = time.monotonic()
    try:
        assert child.stdout is not None
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=_reader, args=(child.stdout, lines), daemon=True).start()
        while True:
            try:
                line = lines.get(timeout=max(0.1, since + limit - time.monotonic()))
            except queue.Empty:
                if result is None:
                    error = (f"Locust hung {PHASES.get(phase, phase)} for more than {limit:g}s "
                             f"(--keptn-locust-hang-timeout={hang:g}); log {log}"
                             + (f": {procs.log_tail(log, 3)}" if procs.log_tail(log, 3) else ""))
                break  # after the result, a hung quit only costs its timeout
            if line is None:
                break
            try:
                message = json.loads(line)
            except ValueError:
                continue  # a locustfile's own print()
            if not isinstance(message, dict):
                continue  # a locustfile printing 42 or [1]
            event = message.get("event")
            if event == "phase":
                phase, limit, since = str(message.get("phase")), hang, time.monotonic()
            elif event == "config":
                users, spawn_rate = int(message["users"]), float(message["spawn_rate"])
                run_time = float(message["run_time"])
                ctx.say(f"load: {users} users (spawn {spawn_rate:g}/s) for {run_time:g}s against "
                        f"{target} ({mode}; log {log})")
                if conf is not None:
                    ctx.say(f"load: {conf}: applied "
                            + (", ".join(message.get("applied") or []) or "nothing")
                            + ("; not applied: " + ", ".join(message["not_applied"])
                               if message.get("not_applied") else ""))
            elif event == "ready":
                # Locust is set up: once Prometheus has discovered the builds under load (a
                # new canary without a target slot takes up to ~6 s), the window may start.
                began = time.monotonic()
                _wait_for_scrapes(ctx, url, baseline_url)
                ctx.say(f"load: Locust ready; Prometheus scrapes the targets under load "
                        f"(waited {time.monotonic() - began:.1f}s); go")
                go_file.touch()
                phase, limit, since = "run", (run_time or 0.0) + hang, time.monotonic()
            elif event == "status":
                ctx.say(
                    f"load: {message['elapsed']:.0f}/{message['total']:g}s "
                    f"users={message['users']} rps={message['rps']:.0f} "
                    f"requests={message['requests']} failures={message['failures']} "
                    f"p95={message['p95']:.0f}ms"
                )
            elif event == "waiting":
                phase, limit = "waiting", WORKER_WAIT + hang
                ctx.say(f"load: waiting for Locust workers "
                        f"({message['workers']}/{message['expected']} connected)")
            elif event == "result":
                # The evaluation needs nothing more: the runner writes Locust's HTML report
                # and quits on its own, off the critical path (the session's cleanup waits
                # for it, up to DRAIN seconds, before it stops what is left).
                result = message
                break
            elif event == "error":
                error = str(message.get("message"))
        if error is None and result is None:
            code = child.wait(timeout=10)
            error = (f"the Locust process exited with code {code} without a result; "
                     f"log {log}: {procs.log_tail(log, 3)}")
    finally:
        tracked = ctx.processes.get(child.pid)
        if result is not None and child.poll() is None and tracked is not None:
            tracked.popen, tracked.drain = child, DRAIN
        else:
            if child.poll() is None:
                try:
                    child.wait(timeout=0.1)
                except subprocess.TimeoutExpired:
                    pass
            procs.stop_pid(child.pid, timeout=2.0, tag=tag)
            ctx.processes.forget(child.pid)
            child.poll()
        go_file.unlink(missing_ok=True)
    if error is not None:
        raise LoadError(f"load against {url} failed ({what}): {error}")
    assert result is not None and users is not None and spawn_rate is not None
    assert run_time is not None  # the child said them in its config event, before the result
    load = _to_result(result, url, what, log, users, spawn_rate, run_time, workers)
    extra: dict[str, Any] = {}
    if live_unavailable:
        extra["live_unavailable"] = live_unavailable
    if baseline_url:
        extra.update(baseline_url=baseline_url, baseline=result.get("baseline", {}),
                     samples=str(samples), all_requests=result.get("all_requests"))
    if extra:
        load = replace(load, details={**load.details, **extra})
    return load


# prestarted runners: the registry of the session that owns each, and the stage it is for
_SPARE: list[tuple[ProcessRegistry, subprocess.Popen[str], str, str]] = []


def prestart(processes: ProcessRegistry, stage: str) -> None:
    """Start a spare Locust runner for ``stage`` that imports Locust now (0.4-1.5 s) and takes
    its run's arguments when the stage's test task starts: a later stage has no discovery
    wait left to hide Locust's start-up in (issue 17). Stopped with the session's processes
    if unused."""
    if any(owner is processes and for_stage == stage and child.poll() is None
           for owner, child, _, for_stage in _SPARE):
        return
    tag = procs.new_tag()
    try:
        child = subprocess.Popen(
            [sys.executable, "-m", "pytest_keptn.load._child", "--prestart"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            start_new_session=True, env=procs.tagged_env(tag))
    except OSError:
        return  # the test task starts its runner itself
    processes.track(procs.Started(child.pid, "load", tag=tag))
    _SPARE.append((processes, child, tag, stage))


def _take_spare(processes: ProcessRegistry, stage: str
                ) -> tuple[subprocess.Popen[str], str] | None:
    """This session's runner prestarted for ``stage``, else its oldest one; another session's
    runners and dead ones are stopped."""
    for spare in list(_SPARE):
        owner, child, tag, _ = spare
        if owner is not processes or child.poll() is not None:
            _SPARE.remove(spare)
            owner.forget(child.pid)
            procs.stop_pid(child.pid, timeout=2.0, tag=tag)
    if not _SPARE:
        return None
    taken = next((sp for sp in _SPARE if sp[3] == stage), _SPARE[0])
    _SPARE.remove(taken)
    return taken[1], taken[2]


def _wait_for_scrapes(ctx: StageContext, url: str, baseline_url: str | None) -> None:
    """Until the builds under load are scraped (not the targets other stages registered a
    moment ago: they are not this window's)."""
    addresses = [urlsplit(u).netloc for u in (url, baseline_url) if u]
    ctx.targets.wait_scraped(addresses, float(ctx.settings.deploy_timeout))


def _to_result(result: dict[str, Any], url: str, what: str, log: Path, users: int,
               spawn_rate: float, run_time: float, workers: int) -> LoadResult:
    requests = int(result["requests"])
    failures = int(result["failures"])
    errors = result.get("errors") or []
    exceptions = result.get("exceptions") or []
    first = (errors[0]["error"] if errors else exceptions[0]["msg"] if exceptions else "")
    if requests == 0:
        raise LoadError(f"load against {url} made no request ({what})"
                        + (f": first error: {first}" if first else ""))
    if failures >= requests:
        raise LoadError(f"every request failed against {url} ({failures} of {requests}; {what}): "
                        f"first error: {first or 'unknown'}")
    window = Window(datetime.fromisoformat(result["start"]), datetime.fromisoformat(result["end"]))
    return LoadResult(
        window=window,
        requests=requests,
        failures=failures,
        rps=float(result["rps"]),
        p50_ms=float(result["p50_ms"]),
        p95_ms=float(result["p95_ms"]),
        p99_ms=float(result["p99_ms"]),
        details={
            "avg_ms": float(result["avg_ms"]),
            "max_ms": float(result["max_ms"]),
            "endpoints": result.get("endpoints", []),
            "errors": errors,
            "exceptions": exceptions,
            "users": users, "spawn_rate": spawn_rate, "run_time": run_time,
            "workers": workers, "host": url, "locustfile": what.split(" ", 1)[1], "log": str(log),
            "html_report": result.get("html_report"),
        },
    )
