"""Load: the Locust driver (parent side), its child-process runner and the Locust SLI provider.

``LocustDriver`` (:mod:`.locust_driver`) implements ``pytest_keptn_run_load`` by running
``python -m pytest_keptn.load._child`` (the only module that imports locust, which would
otherwise monkey-patch the pytest process with gevent). ``LocustSLIProvider`` and
``reconcile`` live in :mod:`.provider`.
"""

from __future__ import annotations
