"""The Helm deployer: Keptn's release names and namespaces, driven through the ``helm`` CLI.

* deployment (``blue_green_service``): ``helm upgrade --install <service> <chart>
  --namespace <project>-<stage> --create-namespace --set image.repository=<image>
  --set image.tag=<tag> --wait --timeout <helm_timeout>`` (the canary release);
  ``direct`` installs ``<service>`` the same way and it serves directly;
* release: the same upgrade for ``<service>-primary``, then ``helm uninstall <service>``;
* rollback: ``helm uninstall <service>`` (blue/green); ``helm rollback <service>`` (direct,
  back to the previous build), or ``helm uninstall <service>`` when the deployment installed
  the first build (the stage then serves nothing);
* ``user_managed``: nothing is installed; the URL template says where the stage's traffic goes.

The chart is ``--keptn-helm-chart`` or ``<project folder>/helm-charts/<service>``; the service
URL comes from ``--keptn-helm-url-template`` with ``{service}``, ``{namespace}``, ``{release}``.
Every failure is a :class:`DeployError` that carries helm's stderr.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from pytest_keptn.deploy.local import BLUE_GREEN, DIRECT, USER_MANAGED, strategy_of
from pytest_keptn.deploy.targets import jobs
from pytest_keptn.errors import DeployError
from pytest_keptn.model import Deployment, Instance, StageContext


def namespace(ctx: StageContext) -> str:
    return f"{ctx.project}-{ctx.stage}"


def chart(ctx: StageContext) -> str:
    configured = ctx.settings.helm_chart
    return str(configured) if configured else str(ctx.root.parent / "helm-charts" / ctx.service)


def url(ctx: StageContext, release: str) -> str:
    template = str(ctx.settings.helm_url_template)
    try:
        return template.format(service=ctx.service, namespace=namespace(ctx), release=release)
    except (KeyError, IndexError, ValueError) as exc:
        raise DeployError(
            f"bad URL template {template!r}: {exc!r} (placeholders: {{service}} {{namespace}} "
            "{release})",
            field="keptn_helm_url_template",
        ) from None


def run_helm(args: list[str], what: str) -> str:
    """Run ``helm args...``; stdout on success, DeployError with helm's stderr otherwise."""
    exe = shutil.which("helm")
    if exe is None:
        raise DeployError(f"{what}: the helm executable is not on PATH (--keptn-deployer=helm)")
    try:
        done = subprocess.run(
            [exe, *args], capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False
        )
    except OSError as exc:
        raise DeployError(f"{what}: cannot run helm: {exc}") from None
    if done.returncode != 0:
        stderr = " ".join(done.stderr.split()) or "(no stderr)"
        raise DeployError(f"{what} failed: helm {args[0]} exited with {done.returncode}: {stderr}")
    return done.stdout


def _installed(release: str, ns: str) -> bool:
    """Whether helm knows ``release`` in ``ns`` (``helm status`` answers 0)."""
    exe = shutil.which("helm")
    if exe is None:
        return False
    try:
        done = subprocess.run([exe, "status", release, "--namespace", ns], capture_output=True,
                              stdin=subprocess.DEVNULL, check=False)
    except OSError:
        return False
    return done.returncode == 0


class HelmDeployer:
    """Deploy, release and roll back with ``helm`` (the ``helm`` deployer)."""

    @pytest.hookimpl(trylast=True)
    def pytest_keptn_deploy(self, ctx: StageContext, properties: dict[str, object]) -> Deployment:
        strategy = strategy_of(properties)
        ns = namespace(ctx)
        if strategy == USER_MANAGED:
            return Deployment(strategy=USER_MANAGED, url=url(ctx, ctx.service),
                              deployment_names=("user-managed",))
        # direct: whether an earlier build exists that a rollback can return to
        earlier = strategy == DIRECT and _installed(ctx.service, ns)
        self._upgrade(ctx, ctx.service, f"deployment of {ctx.service}:{ctx.tag} in {ns}")
        role = "canary" if strategy == BLUE_GREEN else "direct"
        where = url(ctx, ctx.service)
        traffic, _, canary_job = jobs(ctx)
        ctx.say(f"deployment: helm release {ctx.service} ({role}) in {ns}: {where}")
        return Deployment(
            strategy=strategy,
            url=where,
            deployment_names=(role,),
            instances=(Instance(role=role, url=where, image=ctx.image, tag=ctx.tag),),
            details={"namespace": ns, "release": ctx.service, "chart": chart(ctx),
                     "jobs": [traffic, canary_job] if role == "canary" else [traffic],
                     "earlier_build": earlier},
        )

    @pytest.hookimpl(trylast=True)
    def pytest_keptn_release(self, ctx: StageContext, deployment: Deployment) -> bool:
        if deployment.strategy != BLUE_GREEN:
            return True
        ns = namespace(ctx)
        primary = f"{ctx.service}-primary"
        self._upgrade(ctx, primary, f"release of {ctx.service}:{ctx.tag} in {ns}")
        run_helm(["uninstall", ctx.service, "--namespace", ns],
                 f"release of {ctx.service}:{ctx.tag} in {ns} (removing the canary)")
        ctx.say(f"release: helm release {primary} in {ns} runs {ctx.tag}; canary removed")
        return True

    @pytest.hookimpl(trylast=True)
    def pytest_keptn_rollback(self, ctx: StageContext, deployment: Deployment) -> bool | str:
        ns = namespace(ctx)
        if deployment.strategy == USER_MANAGED:
            return True
        if deployment.strategy == DIRECT:
            if not deployment.details.get("earlier_build", True) or ctx.settings.compat_087:
                run_helm(["uninstall", ctx.service, "--namespace", ns],
                         f"rollback of {ctx.service}:{ctx.tag} in {ns}")
                why = ("as Keptn 0.8.7 scales it to zero (--keptn-compat=0.8.7)"
                       if deployment.details.get("earlier_build", True)
                       else "no earlier build to return to")
                what = (f"helm release {ctx.service} ({ctx.tag}, direct) uninstalled from {ns}; "
                        f"{why}: {ctx.stage} now serves nothing")
            else:
                run_helm(["rollback", ctx.service, "--namespace", ns, "--wait",
                          "--timeout", str(ctx.settings.helm_timeout)],
                         f"rollback of {ctx.service} in {ns}")
                what = (f"helm rollback {ctx.service} in {ns}: the previous build serves "
                        f"{ctx.stage} again (direct)")
            ctx.say(f"rollback: {what}")
            return what
        run_helm(["uninstall", ctx.service, "--namespace", ns],
                 f"rollback of {ctx.service}:{ctx.tag} in {ns}")
        what = f"canary release {ctx.service} removed from {ns}; the primary keeps serving"
        ctx.say(f"rollback: {what}")
        return what

    def _upgrade(self, ctx: StageContext, release: str, what: str) -> None:
        location = chart(ctx)  # a folder, repo/chart or oci://: helm says what is wrong with it
        run_helm(
            [
                "upgrade", "--install", release, location,
                "--namespace", namespace(ctx), "--create-namespace",
                "--set", f"image.repository={ctx.image}",
                "--set", f"image.tag={ctx.tag}",
                "--wait", "--timeout", str(ctx.settings.helm_timeout),
            ],
            what,
        )
