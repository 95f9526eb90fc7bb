"""Setup mistakes of a delivery, found at configure time (usage errors, before anything starts).

* a deployment with no ``--keptn-tag``, or a tag or image that no image reference allows
  (``v1$(touch x)``): the values end up in commands, file names, events and the history;
* ``--keptn-deployer=local`` without ``--keptn-local-command``;
* a stage with a ``locust/locustfile.py`` while Locust is not installed (looked up without
  importing it: Locust monkey-patches the process it is imported into).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pytest_keptn.errors import ConfigError
from pytest_keptn.extras import LOCUST, require

# distribution/reference's grammar (what docker, helm and Keptn accept as image:tag)
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
IMAGE = re.compile(
    rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*(?::{_TAG})?(?:@{_DIGEST})?")
TAG = re.compile(_TAG)


def _shown(value: str) -> str:
    return value if len(value) <= 80 else value[:77] + "..."


def check_build(image: str, tag: str) -> None:
    """``--keptn-image``/``--keptn-tag`` as an image reference allows them."""
    if tag and not TAG.fullmatch(tag):
        raise ConfigError(
            f"{_shown(tag)!r} is not a valid image tag (letters, digits, '_', '.', '-'; at most "
            "128, not starting with '.' or '-')", field="--keptn-tag")
    if image and (len(image) > 255 or not IMAGE.fullmatch(image)):
        raise ConfigError(
            f"{_shown(image)!r} is not a valid image reference (e.g. "
            "registry.example.com:5000/team/service, lowercase path)", field="--keptn-image")


def _has_task(stage: Any, names: Iterable[str]) -> bool:
    wanted = set(names)
    return any(task.name in wanted for seq in stage.sequences for task in seq.tasks)


def check_delivery(settings: Any, root: Path, plans: dict[str, Any], *, evaluation_only: bool,
                   own_deployer: bool = False, own_load: bool = False) -> None:
    """Refuse a delivery that cannot work, naming the option (ConfigError, one line).
    ``own_deployer``/``own_load``: a plugin of the user's implements the deploy/load hook, so
    the local deployer's command or Locust may not be needed."""
    check_build(str(settings.image or ""), str(settings.tag or ""))
    if evaluation_only or settings.deployer == "none":
        return
    deploying = [name for name, plan in plans.items() if _has_task(plan.stage, ("deployment",))]
    if deploying and not settings.tag:
        raise ConfigError(
            f"stage {deploying[0]} deploys a build but no tag is given: set --keptn-tag "
            "(or keptn_tag)", field="--keptn-tag")
    if deploying and settings.deployer == "local" and not settings.local_command and not own_deployer:
        raise ConfigError(
            f"stage {deploying[0]} deploys with the local deployer, which needs the command "
            "that starts a build: set --keptn-local-command (e.g. '{python} -m myservice "
            "--port {port} --tag {tag}'), or choose --keptn-deployer=helm or none",
            field="--keptn-local-command")
    for name, plan in plans.items():
        if own_load or not _has_task(plan.stage, ("test",)):
            continue
        levels = (root / name / plan.service, root / name, root)
        locustfile = next((p / "locust" / "locustfile.py" for p in levels
                           if (p / "locust" / "locustfile.py").is_file()), None)
        if locustfile is not None:
            require(LOCUST, f"stage {name} has a locustfile (remove it to run the test task "
                    "without load)", file=str(locustfile))
