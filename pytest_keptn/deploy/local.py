"""The embedded default deployer: each build is a local child process on a free 127.0.0.1 port.

Blue/green (``blue_green_service``, alias ``duplicate``, the default) as Keptn's helm-service
does it (keptn-0.8-semantics.md §12):

* **deployment** starts the new build as the *canary* beside the current *primary*; the stage's
  test traffic (``<service>-<project>-<stage>``) goes to the canary;
* **release** promotes: the canary process becomes the primary, the old primary stops;
* **rollback** stops the canary; the primary keeps serving, untouched.

``direct`` replaces the running build in place (start the new one, then stop the old one);
its rollback starts the previous build again (Keptn scales the stage to zero, which
``--keptn-compat=0.8.7`` does), or with no earlier build stops the failed one: the stage then
serves nothing. ``user_managed`` deploys nothing. Any other ``deploymentstrategy`` (or none)
fails the deployment, as in Keptn.

A stage/service is delivered by one live run at a time (:mod:`.lease`); release and rollback
act only on the instance this sequence deployed (pid and start time), never on what another
run recorded.

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

from pytest_keptn.deploy import lease, targets
from pytest_keptn.deploy import state as st
from pytest_keptn.deploy.targets import address as _address
from pytest_keptn.deploy.targets import jobs
from pytest_keptn.deploy.targets import labels as _labels
from pytest_keptn.deploy.targets import slot_labels as _slot_labels
from pytest_keptn.errors import DeployError
from pytest_keptn.model import Deployment, Instance, StageContext, TargetSlot
from pytest_keptn.system import processes as procs
from pytest_keptn.system.processes import ProcessRegistry

BLUE_GREEN = "blue_green_service"
DIRECT = "direct"
USER_MANAGED = "user_managed"
# Keptn 0.8.7's names (go-utils deployment_strategy.go): ``duplicate`` is blue/green.
STRATEGIES = {"blue_green_service": BLUE_GREEN, "duplicate": BLUE_GREEN, DIRECT: DIRECT,
              USER_MANAGED: USER_MANAGED}

def strategy_of(properties: dict[str, object] | None) -> str:
    raw = str((properties or {}).get("deploymentstrategy") or "").strip()
    name = STRATEGIES.get(raw)
    if name is None:
        raise DeployError(
            (f"unknown deploymentstrategy {raw!r}" if raw else "no deploymentstrategy")
            + " (Keptn's are direct, duplicate, blue_green_service and user_managed)",
            field="deploymentstrategy",
        )
    return name




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
        lease.acquire(ctx.workdir, ctx.stage, ctx.service, tag=ctx.tag,
                      timeout=float(ctx.settings.stage_lock_timeout), say=ctx.say,
                      processes=ctx.processes)
        try:
            _retire_leftovers(ctx)
            if strategy == DIRECT:
                return self._deploy_direct(ctx, ctx.image, ctx.tag)
            return self._deploy_canary(ctx)
        except BaseException:
            lease.release(ctx.workdir, ctx.stage, ctx.service, ctx.processes)
            raise

    @pytest.hookimpl(trylast=True)
    def pytest_keptn_release(self, ctx: StageContext, deployment: Deployment) -> bool:
        if deployment.strategy != BLUE_GREEN:
            lease.release(ctx.workdir, ctx.stage, ctx.service, ctx.processes)
            return True  # direct and user_managed: nothing to promote (as helm-service)
        traffic, primary_job, canary_job = jobs(ctx)
        ours = _ours(deployment, "canary")
        with st.locked(ctx.workdir) as data:
            canary = st.get(data, ctx.stage, ctx.service, "canary")
            old = st.get(data, ctx.stage, ctx.service, "primary")
            if ours is None or canary is None or not _same(canary, ours):
                raise DeployError(
                    f"release in {ctx.stage}: "
                    + (f"the canary recorded for {ctx.service} ({_who(canary)}) is not the build "
                       f"this sequence deployed ({_who(ours)})" if canary is not None
                       else f"no canary of {ctx.service} to promote")
                    + "; nothing promoted, the primary keeps serving")
            gone = _stopped(ctx, "canary", canary)
            if gone is not None:
                st.put(data, ctx.stage, ctx.service, "canary", None)
                raise DeployError(f"release in {ctx.stage}: {gone}")
            promoted = dict(canary, role="primary", promoted=st.now())
            # The switch is recorded the moment it happens, with the old primary as
            # "retiring" until it has stopped: a run killed in between leaves no process
            # unrecorded (the next deployment or 'pytest_keptn stop' stops it).
            st.put(data, ctx.stage, ctx.service, "primary", promoted)
            st.put(data, ctx.stage, ctx.service, "canary", None)
            if old is not None and not _same(old, promoted):
                st.put(data, ctx.stage, ctx.service, "retiring", dict(old, role="retiring"))
        ctx.processes.update(int(promoted["pid"]), role="primary", keep=bool(ctx.settings.keep_primaries))
        address = _address(promoted)
        labels = _labels(ctx, "primary", promoted)
        ctx.targets.replace(primary_job, address, labels)
        ctx.targets.replace(traffic, address, labels)
        ctx.targets.unregister(canary_job)
        note = ""
        if old is not None and not _same(old, promoted):
            note = _stop(old, ctx.processes)
            with st.locked(ctx.workdir) as data:
                if _same(st.get(data, ctx.stage, ctx.service, "retiring"), old):
                    st.put(data, ctx.stage, ctx.service, "retiring", None)
        lease.release(ctx.workdir, ctx.stage, ctx.service, ctx.processes)
        ctx.say(
            f"release: {ctx.service}:{promoted['tag']} is the primary of {ctx.stage} at "
            f"{promoted['url']}" + (f" (stopped {old['tag']}, pid {old['pid']}{note})"
                                    if old else "")
        )
        return True

    @pytest.hookimpl(trylast=True)
    def pytest_keptn_rollback(self, ctx: StageContext, deployment: Deployment) -> bool | str:
        if deployment.strategy == USER_MANAGED:
            return True
        try:
            if deployment.strategy == DIRECT:
                return self._rollback_direct(ctx, deployment)
            return self._rollback_canary(ctx, deployment)
        finally:
            lease.release(ctx.workdir, ctx.stage, ctx.service, ctx.processes)

    @pytest.hookimpl(trylast=True)
    def pytest_keptn_target_slots(self, ctx: StageContext) -> list[TargetSlot] | None:
        """A blue/green stage's canary and live primary (issue 17: no discovery waits)."""
        return targets.slots(ctx, lambda: _live(ctx.workdir, ctx.stage, ctx.service, "primary"))

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
        primary = _live(ctx.workdir, ctx.stage, ctx.service, "primary")
        # a pre-registered port (pytest_keptn_target_slots) is scraped already
        port = ctx.targets.slot(canary_job, _slot_labels(ctx, "canary", ctx.tag))
        canary = _start(ctx, "canary", ctx.image, ctx.tag, port=port)
        with st.locked(ctx.workdir) as data:
            st.put(data, ctx.stage, ctx.service, "canary", canary)
        address = _address(canary)
        ctx.targets.replace(canary_job, address, _labels(ctx, "canary", canary))
        ctx.targets.replace(traffic, address, _labels(ctx, "canary", canary))
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

    def _rollback_canary(self, ctx: StageContext, deployment: Deployment) -> str:
        traffic, _, canary_job = jobs(ctx)
        ours = _ours(deployment, "canary")
        with st.locked(ctx.workdir) as data:
            canary = st.get(data, ctx.stage, ctx.service, "canary")
            if ours is not None and _same(canary, ours):
                st.put(data, ctx.stage, ctx.service, "canary", None)
            promoted = ours is not None and _same(
                st.get(data, ctx.stage, ctx.service, "primary"), ours)
        if promoted:
            assert ours is not None
            raise DeployError(
                f"rollback in {ctx.stage}: nothing rolled back: {ctx.service}:{ours.get('tag')} "
                f"(pid {ours.get('pid')}) had already been released and is the primary")
        note = _stop(ours, ctx.processes) if ours is not None else ""
        if ours is not None and _same(canary, ours):
            ctx.targets.unregister(canary_job)
        what = (f"stopped canary {ctx.service}:{ours.get('tag')} (pid {ours.get('pid')}{note})"
                if ours is not None else "no canary of this sequence to stop")
        primary = _live(ctx.workdir, ctx.stage, ctx.service, "primary")
        if primary is not None:
            ctx.targets.register(traffic, _address(primary), _labels(ctx, "primary", primary))
            ctx.say(f"rollback: {what}; primary {primary['tag']} keeps serving at "
                    f"{primary['url']}")
            return f"{what}; primary {primary['tag']} keeps serving"
        ctx.targets.unregister(traffic)
        ctx.say(f"rollback: {what}; {ctx.stage} has no primary")
        return f"{what}; {ctx.stage} has no primary"

    # -- live baseline (slo.yaml comparison.baseline: live) ---------------------------------

    @pytest.hookimpl(trylast=True)
    def pytest_keptn_start_baseline(
        self, ctx: StageContext, deployment: Deployment
    ) -> Instance | None:
        if deployment.strategy != BLUE_GREEN:
            return None
        primary = _live(ctx.workdir, ctx.stage, ctx.service, "primary")
        if primary is None:
            return None
        # a fresh process of the primary's build, so both sides are equally warm (Kayenta)
        port = ctx.targets.slot(ctx.job + "-baseline",
                                _slot_labels(ctx, "baseline", str(primary["tag"])))
        baseline = _start(ctx, "baseline", str(primary["image"]), str(primary["tag"]), port=port)
        with st.locked(ctx.workdir) as data:
            st.put(data, ctx.stage, ctx.service, "baseline", baseline)
        ctx.targets.replace(
            ctx.job + "-baseline", _address(baseline), _labels(ctx, "baseline", baseline)
        )
        ctx.say(f"deployment: baseline {ctx.service}:{primary['tag']} (the primary's build) "
                f"ready at {baseline['url']} (pid {baseline['pid']})")
        return _instance("baseline", baseline)

    @pytest.hookimpl(trylast=True)
    def pytest_keptn_stop_baseline(self, ctx: StageContext, baseline: Instance) -> None:
        with st.locked(ctx.workdir) as data:
            recorded = st.get(data, ctx.stage, ctx.service, "baseline")
            if recorded is not None and int(recorded["pid"]) == baseline.pid:
                st.put(data, ctx.stage, ctx.service, "baseline", None)
            else:
                recorded = None
        ctx.targets.unregister(ctx.job + "-baseline")
        if recorded is not None:
            note = _stop(recorded, ctx.processes)
            ctx.say(f"baseline: stopped {ctx.service}:{baseline.tag} (pid {baseline.pid}{note})")

    # -- direct -----------------------------------------------------------------------------

    def _deploy_direct(self, ctx: StageContext, image: str, tag: str) -> Deployment:
        traffic, primary_job, canary_job = jobs(ctx)
        old = _live(ctx.workdir, ctx.stage, ctx.service, "primary")
        new = _start(ctx, "direct", image, tag)
        ctx.processes.update(int(new["pid"]), keep=bool(ctx.settings.keep_primaries))
        with st.locked(ctx.workdir) as data:
            st.put(data, ctx.stage, ctx.service, "primary", new)
            if old is not None:
                st.put(data, ctx.stage, ctx.service, "previous",
                       {"image": old["image"], "tag": old["tag"]})
                st.put(data, ctx.stage, ctx.service, "retiring", dict(old, role="retiring"))
        ctx.targets.register(traffic, _address(new), _labels(ctx, "direct", new))
        ctx.targets.unregister(canary_job)
        ctx.targets.unregister(primary_job)
        note = ""
        if old is not None:
            note = _stop(old, ctx.processes)
            with st.locked(ctx.workdir) as data:
                st.put(data, ctx.stage, ctx.service, "retiring", None)
        ctx.say(f"deployment: {ctx.service}:{tag} serves {ctx.stage} at {new['url']} (direct)"
                + (f"; stopped {old['tag']} (pid {old['pid']}{note})" if old else ""))
        return Deployment(
            strategy=DIRECT,
            url=str(new["url"]),
            deployment_names=("direct",),
            instances=(_instance("direct", new),),
            details={"direct": new},
        )

    def _rollback_direct(self, ctx: StageContext, deployment: Deployment) -> str:
        traffic = ctx.job
        ours = _ours(deployment, "direct")
        data = st.read(ctx.workdir)
        current = st.get(data, ctx.stage, ctx.service, "primary")
        if ours is None or not _same(current, ours):
            # another build serves the stage (or nothing does): not ours to touch
            ctx.say(f"rollback: {ctx.service}:{ctx.tag} (direct) no longer serves {ctx.stage}; "
                    "nothing to roll back")
            return f"{ctx.service}:{ctx.tag} no longer serves {ctx.stage}; nothing rolled back"
        previous = st.get(data, ctx.stage, ctx.service, "previous")
        if previous is None or ctx.settings.compat_087:  # Keptn scales it to zero
            note = _stop(ours, ctx.processes)
            with st.locked(ctx.workdir) as fresh:
                if _same(st.get(fresh, ctx.stage, ctx.service, "primary"), ours):
                    st.put(fresh, ctx.stage, ctx.service, "primary", None)
            ctx.targets.unregister(traffic)
            why = ("as Keptn 0.8.7 does (--keptn-compat=0.8.7)" if previous is not None
                   else "no earlier build to return to")
            what = (f"stopped {ctx.service}:{ctx.tag} (direct, pid {ours['pid']}{note}); {why}: "
                    f"{ctx.stage} now serves nothing")
            ctx.say(f"rollback: {what}")
            return what
        self._deploy_direct(ctx, str(previous["image"]), str(previous["tag"]))
        with st.locked(ctx.workdir) as fresh:
            st.put(fresh, ctx.stage, ctx.service, "previous", None)
        what = (f"restarted the previous build {ctx.service}:{previous['tag']} (direct) in place "
                f"of {ctx.tag}")
        ctx.say(f"rollback: {what}")
        return what


# -- module API -------------------------------------------------------------------------------


def primary_url(workdir: Path, stage: str, service: str) -> str | None:
    """The URL of the primary serving ``service`` in ``stage``, if one is running."""
    primary = _live(Path(workdir), stage, service, "primary")
    return None if primary is None else str(primary["url"])


def stop_all(
    workdir: Path, which: Callable[[str, dict[str, Any]], bool] | None = None,
    processes: ProcessRegistry | None = None,
) -> list[str]:
    """Stop the processes recorded in ``workdir``'s state and forget them (also in
    ``processes``): those for which ``which(role, instance)`` is true, or everything
    (``pytest_keptn stop``)."""
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
                behind = procs.left_behind(pid, start_ticks=inst.get("start_ticks"),
                                           tag=inst.get("proc_tag"))
                ran = procs.stop_pid(pid, start_ticks=inst.get("start_ticks"),
                                     tag=inst.get("proc_tag"))
                if processes is not None:
                    processes.forget(pid)
                del entry[role]
                what = f"{name} {role} {inst.get('image', '')}:{inst.get('tag', '')} (pid {pid})"
                lines.append(f"stopped {what}" if ran else f"{what} was not running"
                             + (f"; stopped what it left behind: {procs.describe_pids(behind)}"
                                if behind else ""))
        data["services"] = {} if which is None else {
            name: entry for name, entry in data["services"].items() if entry}
    return lines


def cleanup_run(workdir: Path, processes: ProcessRegistry, *, keep_primaries: bool) -> list[str]:
    """At the end of an xdist run, on the controller: stop what the workers handed over, i.e.
    the instances of the run the deploy state still records, as a worker's own session end
    would have (canaries always, primaries unless ``keep_primaries``)."""
    run_id = processes.run_id
    if not run_id:
        return []
    lines = stop_all(workdir, lambda role, inst: inst.get("run") == run_id
                     and (role in ("canary", "retiring", "baseline") or not keep_primaries),
                     processes)
    lease.release_run(Path(workdir), run_id)
    return lines


def cleanup_session(processes: ProcessRegistry) -> list[int]:
    """Stop every process this session started, except primaries kept by ``keep_primaries``."""
    stopped = processes.cleanup()
    if not processes.hand_over:  # an xdist worker leaves its leases to the controller
        lease.release_held(processes)
    for started in processes.remaining():
        popen = started.popen
        if popen is not None and popen.poll() is None:
            # A primary kept serving after this session, on purpose: detach it, so that the
            # interpreter does not warn "subprocess ... is still running" on the way out.
            popen._child_created = False
        processes.forget(started.pid)
    return stopped


# -- helpers ----------------------------------------------------------------------------------


def _same(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    """Whether two records are the same process (pid and start time)."""
    return (a is not None and b is not None and int(a.get("pid") or 0) == int(b.get("pid") or -1)
            and a.get("start_ticks") == b.get("start_ticks"))


def _ours(deployment: Deployment, role: str) -> dict[str, Any] | None:
    """The instance this sequence deployed, as its deployment task recorded it."""
    inst = deployment.details.get(role)
    return inst if isinstance(inst, dict) and "pid" in inst else None


def _who(inst: dict[str, Any] | None) -> str:
    if inst is None:
        return "none"
    return f"{inst.get('tag')}, pid {inst.get('pid')}" + (
        f", run {inst['run']}" if inst.get("run") else "")


def _retire_leftovers(ctx: StageContext) -> None:
    """With the stage's lease taken, a recorded canary or retiring primary belongs to a run
    that is gone (killed before its release or rollback finished): stop it."""
    with st.locked(ctx.workdir) as data:
        leftovers = [(role, inst) for role in ("canary", "retiring", "baseline")
                     if (inst := st.get(data, ctx.stage, ctx.service, role)) is not None]
        for role, _ in leftovers:
            st.put(data, ctx.stage, ctx.service, role, None)
    for role, inst in leftovers:
        note = _stop(inst, ctx.processes)
        ctx.say(f"deployment: stopped the {role} {inst.get('tag')} (pid {inst.get('pid')}{note}) "
                "left by an earlier run")


def _path(value: object) -> Path | None:
    return Path(str(value)) if value else None


def _stopped(ctx: StageContext, role: str, inst: dict[str, Any], when: str = "") -> str | None:
    """None while the instance's process runs; else what became of it, with its log's tail."""
    pid = int(inst["pid"])
    if procs.alive(pid, inst.get("start_ticks")):
        return None
    started = ctx.processes.get(pid)
    popen = started.popen if started is not None else None
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


def _stop(inst: dict[str, Any], processes: ProcessRegistry) -> str:
    """Stop an instance and everything it started; says what it had left behind, if anything."""
    pid = int(inst["pid"])
    ticks, tag = inst.get("start_ticks"), inst.get("proc_tag")
    behind = procs.left_behind(pid, start_ticks=ticks, tag=tag)
    procs.stop_pid(pid, start_ticks=ticks, tag=tag)
    started = processes.forget(pid)
    if started is not None and started.popen is not None:
        started.popen.poll()
    return (f"; it had exited and left {len(behind)} process(es) behind, now stopped: "
            f"{procs.describe_pids(behind)}" if behind else "")


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
    quoted = {name: shlex.quote(value) for name, value in values.items()}
    try:
        parts = shlex.split(str(template))
        script = _shell_script_index(parts)
        return [part.format(**(quoted if i == script else values)) for i, part in enumerate(parts)]
    except (KeyError, IndexError, ValueError) as exc:
        raise DeployError(
            f"bad build command template {template!r}: {exc!r} (placeholders: "
            "{image} {tag} {port} {stage} {service} {project} {python})",
            field="keptn_local_command",
        ) from None


SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "busybox"})


def _shell_script_index(parts: list[str]) -> int | None:
    """The index of the script in ``sh -c 'script'`` (``bash -ec``, ``env X=1 sh -c`` ...):
    its placeholders are shell-quoted, so a tag like ``v1$(touch x)`` stays a word."""
    for i, part in enumerate(parts):
        if os.path.basename(part) not in SHELLS:
            continue
        command_option = skip = False
        for j in range(i + 1, len(parts)):
            arg = parts[j]
            if skip:  # the value of -o/+o (sh -o pipefail -c '...')
                skip = False
                continue
            if arg in ("-o", "+o"):
                skip = True
                continue
            if arg.startswith("-") and arg != "-" and not command_option:
                command_option = arg != "--" and "c" in arg.lstrip("-") and not arg.startswith("--")
                continue
            return j if command_option else None
        return None
    return None


def _start(ctx: StageContext, role: str, image: str, tag: str,
           port: int | None = None) -> dict[str, Any]:
    """Start one build (on ``port``, else a free one) and wait until its health path answers;
    DeployError otherwise."""
    port = port or procs.free_port()
    argv = _command(ctx, image, tag, port)
    logs = ctx.workdir / "logs"
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    safe_tag = "".join(c if c.isalnum() or c in "._-" else "_" for c in tag) or "untagged"
    log = logs / f"{ctx.stage}-{ctx.service}-{role}-{safe_tag}-{stamp}.log"
    cwd = ctx.root.parent
    what = f"{ctx.service}:{tag} ({role}) in {ctx.stage}"
    proc_tag = procs.new_tag()
    env = procs.tagged_env(proc_tag, dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        logs.mkdir(parents=True, exist_ok=True)
        out = open(log, "ab")
    except OSError as exc:  # a full or read-only state folder
        raise DeployError(f"cannot write the build's log: {exc.strerror or exc}",
                          file=str(log)) from None
    with out:
        try:
            popen = subprocess.Popen(
                argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, env=env,
            )
        except OSError as exc:
            raise DeployError(f"cannot start {what}: {argv[0]}: {exc.strerror or exc}") from None
    ctx.processes.track(procs.Started(popen.pid, role, on_stop=lambda pid: st.drop_pid(ctx.workdir, pid),
                                      handed_over=lambda pid: st.recorded(ctx.workdir, pid),
                                      tag=proc_tag, popen=popen))
    url = f"http://127.0.0.1:{port}"
    health = url + "/" + str(ctx.settings.health_path or "/").lstrip("/")
    why = procs.wait_ready(health, lambda: popen.poll() is None, float(ctx.settings.deploy_timeout))
    if why is not None:
        code = popen.poll()
        behind = procs.left_behind(popen.pid, tag=proc_tag) if code is not None else set()
        procs.stop_pid(popen.pid, tag=proc_tag)
        ctx.processes.forget(popen.pid)
        code = popen.wait() if code is None else code
        if why == "exited":
            reason = f"the build exited with code {code} before {health} answered"
        elif why.startswith("answered HTTP 4"):
            reason = (f"{health} {why}: the build runs but does not serve that path; set "
                      "--keptn-health-path to a path it answers with 2xx")
        else:
            reason = f"{health} {why}"
        if behind:
            reason += (f"; it left {len(behind)} process(es) behind (stopped now: "
                       f"{procs.describe_pids(behind)}); a command that daemonizes cannot be "
                       "tracked, run the server in the foreground")
        raise DeployError(
            f"deployment of {what} failed: {reason}; command: {shlex.join(argv)}; "
            f"log {log}: {procs.log_tail(log) or '(empty)'}"
        )
    return {
        "pid": popen.pid,
        "run": ctx.processes.run_id,
        "start_ticks": procs.process_start_ticks(popen.pid),
        "port": port,
        "url": url,
        "image": image,
        "tag": tag,
        "role": role,
        "strategy": DIRECT if role == "direct" else BLUE_GREEN,
        "started": st.now(),
        "log": str(log),
        "command": argv,
        "deployer": "local",
        "proc_tag": proc_tag,
    }
