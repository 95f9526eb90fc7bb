"""What a run will do, resolved once at configure: where the Keptn files are, which stages
are selected, and per stage its service, objectives and indicators."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_keptn.config import Settings
from pytest_keptn.errors import ConfigError, SpecError
from pytest_keptn.load.provider import INDICATORS as LOCUST_INDICATORS
from pytest_keptn.prometheus.render import BUILTIN_INDICATORS, filter_problem
from pytest_keptn.spec.checks import (
    check_objectives,
    check_option_name,
    filter_problems,
    served_names,
)
from pytest_keptn.spec.shipyard import Sequence, Shipyard, Stage, load_shipyard
from pytest_keptn.spec.sli import load_sli, merge_sli
from pytest_keptn.spec.slo import SLO, load_slo


@dataclass
class StagePlan:
    """What the run will do in a stage: its objectives and sequences, resolved at configure."""

    stage: Stage
    service: str
    slo: SLO | None
    slo_path: Path | None
    sli_indicators: dict[str, str]
    sli_files: tuple[Path, ...]


@dataclass
class RunPlan:
    """The stages this pytest session runs, in shipyard order."""

    root: Path
    shipyard: Shipyard
    project: str
    selected: tuple[str, ...]
    stages: dict[str, StagePlan]  # the selected stages only
    entry_sequence: str

    def entry_of(self, stage: str) -> Sequence:
        """The sequence the run starts in ``stage`` (``--keptn-sequence``, else the first)."""
        sequences = self.stages[stage].stage.sequences
        return next((s for s in sequences if s.name == self.entry_sequence), sequences[0])

    def sequence(self, stage: str, name: str) -> Sequence | None:
        plan = self.stages.get(stage)
        return next((s for s in plan.stage.sequences if s.name == name), None) if plan else None

    def starts_run(self, stage: str, sequence: str) -> bool:
        """Whether ``stage.sequence`` is the one this run starts (the user's trigger): refusing
        it fails the session, while other sequences that do not fire are merely skipped."""
        return stage == self.selected[0] and sequence == self.entry_of(stage).name

    @property
    def needs_prometheus(self) -> bool:
        return any(not o.sli.startswith("locust_") for p in self.stages.values() if p.slo
                   for o in p.slo.objectives)


def plan_run(settings: Settings, rootpath: Path) -> RunPlan:
    """Find the Keptn files, load and check them, and select the stages to run."""
    root = find_root(settings, rootpath)
    shipyard = load_shipyard(root / "shipyard.yaml", compat=settings.compat)
    check_option_name(settings.project, "--keptn-project")
    stages = {s.name: _stage_plan(settings, root, s) for s in shipyard.stages}
    names = list(stages)
    if settings.stage == "all":
        selected = tuple(names)
    else:
        wanted = [s.strip() for s in str(settings.stage).split(",") if s.strip()]
        unknown = [s for s in wanted if s not in names]
        if unknown:
            raise ConfigError(f"unknown stage {unknown[0]!r} (stages: {', '.join(names)})",
                              file=str(root / "shipyard.yaml"), field="--keptn-stage")
        selected = tuple(s for s in names if s in wanted)
    return RunPlan(root=root, shipyard=shipyard, project=settings.project or shipyard.name,
                   selected=selected, stages={k: v for k, v in stages.items() if k in selected},
                   entry_sequence=settings.sequence)


def find_root(settings: Settings, rootpath: Path) -> Path:
    if settings.root:
        root = Path(settings.root)
        if not (root / "shipyard.yaml").is_file():
            raise ConfigError("no shipyard.yaml in this folder", file=str(root), field="--keptn-root")
        return root
    for candidate in (rootpath, rootpath / "keptn"):
        if (candidate / "shipyard.yaml").is_file():
            return candidate
    raise ConfigError(
        f"no shipyard.yaml in {rootpath} or {rootpath / 'keptn'}; set --keptn-root",
        field="--keptn-root",
    )


def _stage_plan(settings: Settings, root: Path, stage: Stage) -> StagePlan:
    service = settings.service or _guess_service(root, stage.name)
    check_option_name(service, "--keptn-service")
    levels = (root, root / stage.name, root / stage.name / service)
    sli_files = tuple(p / "prometheus" / "sli.yaml" for p in levels
                      if (p / "prometheus" / "sli.yaml").is_file())
    indicators = merge_sli(*(load_sli(f) for f in sli_files)) if sli_files else {}
    slo_path = next((p / "slo.yaml" for p in reversed(levels) if (p / "slo.yaml").is_file()), None)
    has_evaluation = any(t.name == "evaluation" for q in stage.sequences for t in q.tasks)
    slo = None
    if has_evaluation:
        if slo_path is None:
            raise SpecError(
                f"stage {stage.name!r} has an evaluation task but no slo.yaml "
                f"(looked in {', '.join(str(p) for p in reversed(levels))})",
                file=str(root / "shipyard.yaml"), field=f"stages[{stage.name}]",
            )
        slo = load_slo(slo_path, compat=settings.compat)
        if not slo.objectives and not settings.compat_087:
            # Keptn 0.8.7 passes such a gate with score 100; we refuse to.
            raise SpecError(f"no objectives, but stage {stage.name!r} evaluates with it",
                            file=str(slo_path), field="objectives")
    return StagePlan(stage, service, slo, slo_path, indicators, sli_files)


def _guess_service(root: Path, stage: str) -> str:
    folder = root / stage
    services = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    if len(services) == 1:
        return services[0]
    for other in sorted(root.iterdir()):
        if other.is_dir():
            subs = [p.name for p in other.iterdir() if p.is_dir() and (p / "slo.yaml").exists()]
            if len(subs) == 1:
                return subs[0]
    raise ConfigError("cannot tell the service: set --keptn-service (or keptn_service)",
                      file=str(root), field="--keptn-service")


def check_plans(plans: Mapping[str, StagePlan], pluginmanager: Any) -> None:
    """The spec checks that need the registered SLI providers, over every selected stage's
    plan: filters that cannot go into a query, SLIs no provider answers (spec/checks.py).
    Here, not in spec/, because it asks the providers: spec stays free of them."""
    builtin = BUILTIN_INDICATORS + tuple(LOCUST_INDICATORS)
    for stage, plan in plans.items():
        if plan.slo is None:
            continue
        for key, problem in filter_problems(plan.slo, plan.sli_indicators, filter_problem,
                                            BUILTIN_INDICATORS):
            raise SpecError(problem, file=plan.slo.file, field=f"filter.{key}")
        served = served_names(pluginmanager, stage, plan.service, plan.sli_indicators)
        check_objectives(plan.slo, stage, plan.sli_indicators, served, builtin)
