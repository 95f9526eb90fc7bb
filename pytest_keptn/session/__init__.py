"""The pytest session of a run: the object that owns the run's resources (run folder, history,
embedded Prometheus, processes), the items and their collection, the session's outcome, and
the integrations with pytest-xdist and pytest-html.

``plugin.py`` imports this package once, in ``pytest_configure``, and only when a stage is
selected: nothing here costs an ordinary test suite anything.
"""

from __future__ import annotations

import pytest

from pytest_keptn.config import Settings
from pytest_keptn.errors import KeptnError
from pytest_keptn.prometheus.server import EmbeddedPrometheus
from pytest_keptn.run.plan import check_plans
from pytest_keptn.session.items import KeptnItems, Ordering
from pytest_keptn.session.session import KeptnSession
from pytest_keptn.spec import SpecWarning
from pytest_keptn.spec.checks import reissued_spec_warnings

__all__ = ["KeptnSession", "start"]


def start(config: pytest.Config, settings: Settings,
          early: EmbeddedPrometheus | None = None) -> KeptnSession:
    """Plan the run and register the session's plugins; a setup mistake is a usage error.
    ``early``: the embedded Prometheus plugin.py spawned before importing this runtime."""
    session: KeptnSession | None = None
    try:
        with reissued_spec_warnings(config):
            session = KeptnSession(config, settings, early)
    except (KeptnError, SpecWarning) as exc:  # SpecWarning: the user's filterwarnings = error
        if session is not None:
            session.close()
        elif early is not None:
            early.close()
        raise pytest.UsageError(f"pytest-keptn: {exc}") from None
    except BaseException:
        if early is not None:
            early.close()
        raise
    pm = config.pluginmanager
    pm.register(session, "keptn-session")
    pm.register(KeptnItems(session), "keptn-items")
    pm.register(Ordering(session), "keptn-ordering")
    session.register_builtins()
    try:
        check_plans(session.plans, pm)
        session.check_prometheus()  # after the offline checks: it may ask the network
    except KeptnError as exc:  # the session is closed in its pytest_unconfigure
        raise pytest.UsageError(f"pytest-keptn: {exc}") from None
    session.start_prometheus_early()
    return session
