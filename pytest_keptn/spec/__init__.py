"""The Keptn files: shipyard.yaml, slo.yaml and sli.yaml as frozen dataclasses."""

from __future__ import annotations

from pytest_keptn.spec._yaml import SpecWarning, load_yaml
from pytest_keptn.spec.shipyard import Sequence, Shipyard, Stage, Task, Trigger, load_shipyard
from pytest_keptn.spec.sli import SLIConfig, load_sli, merge_sli
from pytest_keptn.spec.slo import SLO, Comparison, Objective, TotalScore, load_slo

__all__ = [
    "SLO",
    "Comparison",
    "Objective",
    "SLIConfig",
    "Sequence",
    "Shipyard",
    "SpecWarning",
    "Stage",
    "Task",
    "TotalScore",
    "Trigger",
    "load_shipyard",
    "load_sli",
    "load_slo",
    "load_yaml",
    "merge_sli",
]
