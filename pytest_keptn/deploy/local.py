"""The embedded default deployer: each build is a local child process on a free 127.0.0.1 port.

Blue/green (``blue_green_service``, alias ``duplicate``, the default) as Keptn's helm-service
does it (keptn-0.8-semantics.md §12):

* **deployment** starts the new build as the *canary* beside the current *primary*; the stage's
  test traffic (``<service>-<project>-<stage>``) goes to the canary;
* **release** promotes: the canary process becomes the primary, the old primary stops;
* **rollback** stops the canary; the primary keeps serving, untouched.

``direct`` replaces the running build in place (start the new one, then stop the old one);
its rollback starts the previous build again. ``user_managed`` deploys nothing.

The build command is ``--keptn-local-command``, a template with ``{image}``, ``{tag}``,
``{port}``, ``{stage}``, ``{service}``, ``{project}`` and ``{python}`` (this interpreter),
split like a shell would (no shell runs). It always runs with the **project folder**
(``ctx.root.parent``, the folder that holds the Keptn folder) as its working directory, so a
relative path or ``{python} -m mypackage`` resolves there. Output goes to
``<workdir>/logs/<stage>-<service>-<role>-<tag>-<time>.log``.

Scrape targets use Keptn's job names (§11): ``<service>-<project>-<stage>-canary``,
``<service>-<project>-<stage>-primary`` and ``<service>-<project>-<stage>`` (what receives the
stage's traffic).

State is kept in ``<workdir>/deploy-state.json`` (see :mod:`pytest_keptn.deploy.state`), so a
later pytest run (production in another CI job) finds the primary; ``python -m pytest_keptn
stop`` (:func:`stop_all`) stops everything recorded.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pytest_keptn.deploy import procs
from pytest_keptn.deploy import state as st
from pytest_keptn.errors import DeployError
from pytest_keptn.model import Deployment, Instance, StageContext

BLUE_GREEN = "blue_green_service"
DIRECT = "direct"
USER_MANAGED = "user_managed"
_ALIASES = {"duplicate": BLUE_GREEN, "blue_green": BLUE_GREEN, "user-managed": USER_MANAGED}

# Popen objects of this session, to report exit codes of builds that died at start.
_POPENS: dict[int, subprocess.Popen[bytes]] = {}


def strategy_of(properties: dict[str, object] | None) -> str:
    raw = str((properties or {}).get("deploymentstrategy") or BLUE_GREEN).strip()
    name = _ALIASES.get(raw, raw)
    if name not in (BLUE_GREEN, DIRECT, USER_MANAGED):
        raise DeployError(
            f"unknown deploymentstrategy {raw!r} (expected blue_green_service, duplicate, "
            "direct or user_managed)",
            field="deploymentstrategy",
        )
    return name


def jobs(ctx: StageContext) -> tuple[str, str, str]:
    """Keptn's job names: (traffic, primary, canary)."""
    return ctx.job, ctx.job + "-primary", ctx.job + "-canary"


class LocalDeployer:
    """Deploy, release and roll back builds as local processes (the ``local`` deployer)."""

    @pytest.hookimpl(trylast=True)
    def pytest_keptn_deploy(self, ctx: StageContext, properties: dict[str, object]) -> Deployment:
        strategy = strategy_of(properties)
        if strategy == USER_MANAGED:
            primary = _live(ctx.workdir, ctx.stage, ctx.service, "primary")
            url = str(properties.get("url") or (primary or {}).get("url") or "")
            ctx.say(f"deployment: user_managed, nothing to start (traffic: {url or 'unknown'})")
            return Deployment(strategy=USER_MANAGED, url=url, deployment_names=("user-managed",))
        if strategy == DIRECT:
            return self._deploy_direct(ctx, ctx.image, ctx.tag)
        return self._deploy_canary(ctx)

    @pytest.hookimpl(trylast=True)
    def pytest_keptn_release(self, ctx: StageContext, deployment: Deployment) -> bool:
        if deployment.strategy != BLUE_GREEN:
            return True  # direct and user_managed: nothing to promote (as helm-service)
        traffic, primary_job, canary_job = jobs(ctx)
        with st.locked(ctx.workdir) as data:
            canary = st.get(data, ctx.stage, ctx.service, "canary")
            old = st.get(data, ctx.stage, ctx.service, "primary")
            if canary is None:
                raise DeployError(f"release in {ctx.stage}: no canary of {ctx.service} to promote")
            gone = _stopped(ctx, "canary", canary)
            if gone is not None:
                st.put(data, ctx.stage, ctx.service, "canary", None)
                raise DeployError(f"release in {ctx.stage}: {gone}")
            promoted = dict(canary, role="primary", promoted=_now())
            st.put(data, ctx.stage, ctx.service, "primary", promoted)
            st.put(data, ctx.stage, ctx.service, "canary", None)
        procs.update(int(promoted["pid"]), role="primary", keep=bool(ctx.settings.keep_primaries))
        address = _address(promoted)
        labels = _labels(ctx, "primary", promoted)
        ctx.targets.register(primary_job, address, labels)
        ctx.targets.register(traffic, address, labels)
        ctx.targets.unregister(canary_job)
        if old is not None and int(old["pid"]) != int(promoted["pid"]):
            _stop(old)
        ctx.say(
            f"release: {ctx.service}:{promoted['tag']} is the primary of {ctx.stage} at "
            f"{promoted['url']}" + (f" (stopped {old['tag']}, pid {old['pid']})" if old else "")
        )
        return True

    @pytest.hookimpl(trylast=True)
    def pytest_keptn_rollback(self, ctx: StageContext, deployment: Deployment) -> bool:
        traffic, _, canary_job = jobs(ctx)
        if deployment.strategy == USER_MANAGED:
            return True
        if deployment.strategy == DIRECT:
            return self._rollback_direct(ctx)
        with st.locked(ctx.workdir) as data:
            canary = st.get(data, ctx.stage, ctx.service, "canary")
            st.put(data, ctx.stage, ctx.service, "canary", None)
        if canary is not None:
            _stop(canary)
        ctx.targets.unregister(canary_job)
        primary = _live(ctx.workdir, ctx.stage, ctx.service, "primary")
        if primary is not None:
            ctx.targets.register(traffic, _address(primary), _labels(ctx, "primary", primary))
            ctx.say(
                f"rollback: stopped canary {ctx.service}:{canary['tag'] if canary else '?'}; "
                f"primary {primary['tag']} keeps serving at {primary['url']}"
            )
        else:
            ctx.targets.unregister(traffic)
            ctx.say(f"rollback: stopped the canary; {ctx.stage} has no primary")
        return True

    @pytest.hookimpl(trylast=True)
    def pytest_keptn_check_deployment(self, ctx: StageContext, deployment: Deployment) -> str | None:
        for role in ("canary", "direct"):
            inst = deployment.details.get(role)
            if isinstance(inst, dict) and "pid" in inst:
                gone = _stopped(ctx, role, inst, " during the test")
                if gone is not None:
                    return gone
        return None

    # -- blue/green -------------------------------------------------------------------------

    def _deploy_canary(self, ctx: StageContext) -> Deployment:
        traffic, primary_job, canary_job = jobs(ctx)
        with st.locked(ctx.workdir) as data:
            leftover = st.get(data, ctx.stage, ctx.service, "canary")
            st.put(data, ctx.stage, ctx.service, "canary", None)
        if leftover is not None:
            _stop(leftover)  # an earlier canary that was neither released nor rolled back
        primary = _live(ctx.workdir, ctx.stage, ctx.service, "primary")
        canary = _start(ctx, "canary", ctx.image, ctx.tag)
        with st.locked(ctx.workdir) as data:
            st.put(data, ctx.stage, ctx.service, "canary", canary)
        address = _address(canary)
        ctx.targets.register(canary_job, address, _labels(ctx, "canary", canary))
        ctx.targets.register(traffic, address, _labels(ctx, "canary", canary))
        instances = [_instance("canary", canary)]
        if primary is not None:
            ctx.targets.register(primary_job, _address(primary), _labels(ctx, "primary", primary))
            instances.append(_instance("primary", primary))
        ctx.say(
            f"deployment: canary {ctx.service}:{ctx.tag} ready at {canary['url']} "
            f"(pid {canary['pid']})"
            + (f" beside primary {primary['tag']} at {primary['url']}" if primary else "")
        )
        return Deployment(
            strategy=BLUE_GREEN,
            url=str(canary["url"]),
            deployment_names=("canary",),
            instances=tuple(instances),
            details={"canary": canary, "primary": primary},
        )

    # -- direct -----------------------------------------------------------------------------

    def _deploy_direct(self, ctx: StageContext, image: str, tag: str) -> Deployment:
        traffic, primary_job, canary_job = jobs(ctx)
        old = _live(ctx.workdir, ctx.stage, ctx.service, "primary")
        new = _start(ctx, "direct", image, tag)
        procs.update(int(new["pid"]), keep=bool(ctx.settings.keep_primaries))
        with st.locked(ctx.workdir) as data:
            st.put(data, ctx.stage, ctx.service, "primary", new)
            if old is not None:
                st.put(data, ctx.stage, ctx.service, "previous",
                       {"image": old["image"], "tag": old["tag"]})
        ctx.targets.register(traffic, _address(new), _labels(ctx, "direct", new))
        ctx.targets.unregister(canary_job)
        ctx.targets.unregister(primary_job)
        if old is not None:
            _stop(old)
        ctx.say(f"deployment: {ctx.service}:{tag} serves {ctx.stage} at {new['url']} (direct)")
        return Deployment(
            strategy=DIRECT,
            url=str(new["url"]),
            deployment_names=("direct",),
            instances=(_instance("direct", new),),
            details={"direct": new},
        )

    def _rollback_direct(self, ctx: StageContext) -> bool:
        data = st.read(ctx.workdir)
        previous = st.get(data, ctx.stage, ctx.service, "previous")
        if previous is None:
            ctx.say(f"rollback: {ctx.stage} has no earlier direct build to return to")
            return True
        self._deploy_direct(ctx, str(previous["image"]), str(previous["tag"]))
        with st.locked(ctx.workdir) as data:
            st.put(data, ctx.stage, ctx.service, "previous", None)
        return True


# -- module API -------------------------------------------------------------------------------


def primary_url(workdir: Path, stage: str, service: str) -> str | None:
    """The URL of the primary serving ``service`` in ``stage``, if one is running."""
    primary = _live(Path(workdir), stage, service, "primary")
    return None if primary is None else str(primary["url"])


def stop_all(
    workdir: Path, which: Callable[[str, dict[str, Any]], bool] | None = None
) -> list[str]:
    """Stop the processes recorded in ``workdir``'s state and forget them: those for which
    ``which(role, instance)`` is true, or everything (``pytest_keptn stop``)."""
    workdir = Path(workdir)
    if not st.state_path(workdir).exists():
        return []
    lines: list[str] = []
    with st.locked(workdir) as data:
        for name, entry in sorted(data["services"].items()):
            for role, inst in sorted(entry.items()):
                if not isinstance(inst, dict) or "pid" not in inst or (
                        which is not None and not which(role, inst)):
                    continue
                pid = int(inst["pid"])
                ran = procs.stop_pid(pid, start_ticks=inst.get("start_ticks"))
                procs.forget(pid)
                del entry[role]
                what = f"{name} {role} {inst.get('image', '')}:{inst.get('tag', '')} (pid {pid})"
                lines.append(f"stopped {what}" if ran else f"{what} was not running")
        data["services"] = {} if which is None else {
            name: entry for name, entry in data["services"].items() if entry}
    return lines


def cleanup_run(workdir: Path, run_id: str, *, keep_primaries: bool) -> list[str]:
    """At the end of an xdist run, on the controller: stop what the workers handed over, i.e.
    the instances of run ``run_id`` the deploy state still records, as a worker's own session
    end would have (canaries always, primaries unless ``keep_primaries``)."""
    if not run_id:
        return []
    return stop_all(workdir, lambda role, inst: inst.get("run") == run_id
                    and (role == "canary" or not keep_primaries))


def cleanup_session() -> list[int]:
    """Stop every process this session started, except primaries kept by ``keep_primaries``."""
    stopped = procs.cleanup_session()
    for pid, popen in list(_POPENS.items()):
        if popen.poll() is None:
            # A primary kept serving after this session, on purpose: detach it, so that the
            # interpreter does not warn "subprocess ... is still running" on the way out.
            popen._child_created = False  # type: ignore[attr-defined]
        del _POPENS[pid]
    return stopped


# -- helpers ----------------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _path(value: object) -> Path | None:
    return Path(str(value)) if value else None


def _address(inst: dict[str, Any]) -> str:
    return f"127.0.0.1:{inst['port']}"


def _labels(ctx: StageContext, role: str, inst: dict[str, Any]) -> dict[str, str]:
    return {
        "keptn_project": ctx.project,
        "keptn_stage": ctx.stage,
        "keptn_service": ctx.service,
        "keptn_deployment": role,
        "tag": str(inst.get("tag", "")),
    }


def _stopped(ctx: StageContext, role: str, inst: dict[str, Any], when: str = "") -> str | None:
    """None while the instance's process runs; else what became of it, with its log's tail."""
    pid = int(inst["pid"])
    if procs.alive(pid, inst.get("start_ticks")):
        return None
    popen = _POPENS.get(pid)
    code = popen.poll() if popen is not None else None
    how = ("" if code is None else f", killed by {signal.Signals(-code).name}" if code < 0
           else f", exit status {code}")
    return (f"the {role} {ctx.service}:{inst.get('tag')} (pid {pid}{how}) stopped{when}; "
            f"log {inst.get('log')}: {procs.log_tail(_path(inst.get('log')))}")


def _instance(role: str, inst: dict[str, Any]) -> Instance:
    return Instance(
        role=role,
        url=str(inst["url"]),
        image=str(inst.get("image", "")),
        tag=str(inst.get("tag", "")),
        pid=int(inst["pid"]),
        log=_path(inst.get("log")),
    )


def _live(workdir: Path, stage: str, service: str, role: str) -> dict[str, Any] | None:
    """The recorded instance if its process still runs; a stale record is dropped."""
    data = st.read(workdir)
    inst = st.get(data, stage, service, role)
    if inst is None:
        return None
    if procs.alive(int(inst["pid"]), inst.get("start_ticks")):
        return inst
    with st.locked(workdir) as fresh:
        current = st.get(fresh, stage, service, role)
        if current is not None and current.get("pid") == inst.get("pid"):
            st.put(fresh, stage, service, role, None)
    return None


def _stop(inst: dict[str, Any]) -> None:
    pid = int(inst["pid"])
    procs.stop_pid(pid, start_ticks=inst.get("start_ticks"))
    procs.forget(pid)
    popen = _POPENS.pop(pid, None)
    if popen is not None:
        popen.poll()


def _command(ctx: StageContext, image: str, tag: str, port: int) -> list[str]:
    template = ctx.settings.local_command
    if not template:
        raise DeployError(
            "the local deployer needs a build command: set --keptn-local-command "
            "(e.g. '{python} -m helloserver --port {port} --tag {tag}')",
            field="keptn_local_command",
        )
    values = {
        "image": image, "tag": tag, "port": str(port), "stage": ctx.stage,
        "service": ctx.service, "project": ctx.project, "python": sys.executable,
    }
    try:
        return [part.format(**values) for part in shlex.split(str(template))]
    except (KeyError, IndexError, ValueError) as exc:
        raise DeployError(
            f"bad build command template {template!r}: {exc!r} (placeholders: "
            "{image} {tag} {port} {stage} {service} {project} {python})",
            field="keptn_local_command",
        ) from None


def _start(ctx: StageContext, role: str, image: str, tag: str) -> dict[str, Any]:
    """Start one build and wait until its health path answers; DeployError otherwise."""
    port = procs.free_port()
    argv = _command(ctx, image, tag, port)
    logs = ctx.workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    safe_tag = "".join(c if c.isalnum() or c in "._-" else "_" for c in tag) or "untagged"
    log = logs / f"{ctx.stage}-{ctx.service}-{role}-{safe_tag}-{stamp}.log"
    cwd = ctx.root.parent
    what = f"{ctx.service}:{tag} ({role}) in {ctx.stage}"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(log, "ab") as out:
        try:
            popen = subprocess.Popen(
                argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, env=env,
            )
        except OSError as exc:
            raise DeployError(f"cannot start {what}: {argv[0]}: {exc.strerror or exc}") from None
    _POPENS[popen.pid] = popen
    procs.track(procs.Started(popen.pid, role, on_stop=lambda pid: st.drop_pid(ctx.workdir, pid),
                              handed_over=lambda pid: st.recorded(ctx.workdir, pid)))
    url = f"http://127.0.0.1:{port}"
    health = url + "/" + str(ctx.settings.health_path or "/").lstrip("/")
    why = procs.wait_ready(health, lambda: popen.poll() is None, float(ctx.settings.deploy_timeout))
    if why is not None:
        code = popen.poll()
        procs.stop_pid(popen.pid)
        procs.forget(popen.pid)
        _POPENS.pop(popen.pid, None)
        code = popen.wait() if code is None else code
        reason = (f"the build exited with code {code} before {health} answered"
                  if why == "exited" else f"{health} {why}")
        raise DeployError(
            f"deployment of {what} failed: {reason}; command: {shlex.join(argv)}; "
            f"log {log}: {procs.log_tail(log) or '(empty)'}"
        )
    return {
        "pid": popen.pid,
        "run": procs.RUN_ID,
        "start_ticks": procs.process_start_ticks(popen.pid),
        "port": port,
        "url": url,
        "image": image,
        "tag": tag,
        "role": role,
        "strategy": DIRECT if role == "direct" else BLUE_GREEN,
        "started": _now(),
        "log": str(log),
        "command": argv,
        "deployer": "local",
    }
