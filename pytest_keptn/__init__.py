"""pytest-keptn: Keptn 0.8 quality gates inside pytest.

The public API is small: load the Keptn files, score an evaluation as Keptn 0.8.7's lighthouse
did, and keep a history of evaluations. Attributes are imported on first use, so that loading
the pytest plugin costs nothing when no stage is selected.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_keptn.errors import KeptnError

if TYPE_CHECKING:
    from pytest_keptn.api import Evaluation, History, evaluate, load_shipyard, load_sli, load_slo

__all__ = ["Evaluation", "History", "KeptnError", "evaluate", "load_shipyard", "load_sli", "load_slo"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from pytest_keptn import api

        return getattr(api, name)
    raise AttributeError(f"module 'pytest_keptn' has no attribute {name!r}")
