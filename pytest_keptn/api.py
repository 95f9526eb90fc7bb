"""The small public API, re-exported by ``pytest_keptn``."""

from __future__ import annotations

from pytest_keptn.gate.history import History
from pytest_keptn.gate.scoring import Evaluation, evaluate
from pytest_keptn.spec.shipyard import load_shipyard
from pytest_keptn.spec.sli import load_sli
from pytest_keptn.spec.slo import load_slo

__all__ = ["Evaluation", "History", "evaluate", "load_shipyard", "load_sli", "load_slo"]
