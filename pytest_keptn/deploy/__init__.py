"""Deployers: the embedded local-process deployer (default) and the Helm deployer.

``LocalDeployer`` (:mod:`.local`) and ``HelmDeployer`` (:mod:`.helm`) implement the
``pytest_keptn_deploy/release/rollback`` hooks. ``stop_all(workdir)`` stops every build the
local deployer recorded (``python -m pytest_keptn stop``); ``cleanup_session(processes)`` stops what
this session started, sparing primaries when ``keep_primaries`` is set.

Submodules are imported on demand (``from pytest_keptn.deploy.local import LocalDeployer``)
so that importing the package stays cheap.
"""

from __future__ import annotations
