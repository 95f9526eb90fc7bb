"""Pre-registered target slots: ports the deployers will use, scraped before anything listens.

Prometheus 2.42 applies a new file_sd target only on its discovery manager's 5 s tick (and the
scrape manager's own 5 s reload tick), so a canary registered when it is deployed is first
scraped 4-6 s later: every stage paid that wait (issue 17). A slot is a free port registered,
when the embedded Prometheus starts, under the jobs a stage's canary will have (its canary job
and the stage's traffic job) with the labels the deployer will give it. Prometheus scrapes the
empty port (``up`` 0) until the canary listens there; its next scrape, one scrape interval
later, finds it up.

The pool is a JSON file beside the file_sd folder (not in it: Prometheus reads ``sd/*.json``),
changed under a file lock, so the pytest-xdist workers and a later session reusing a kept
Prometheus (``--keptn-prometheus-keep``) share it. A slot whose port another process took
meanwhile is dropped; the deployer then picks any port and registers it (the 5 s wait again).
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

POOL_FILE = "slots.json"
UNSERVED_FILE = "unserved.json"


@contextmanager
def pool(folder: Path) -> Iterator[list[dict[str, Any]]]:
    """The slot entries (``jobs``, ``labels``, ``address``, ``claimed``), read and written back
    under the pool's lock."""
    with _locked(folder, POOL_FILE) as entries:
        yield entries


@contextmanager
def unserved(folder: Path) -> Iterator[list[dict[str, Any]]]:
    """The intervals in which Prometheus scrapes a target that does not serve its job
    (``job``, ``instance``, ``since``, ``until``: unix seconds, ``until`` None while it lasts):
    an empty slot until a build claims it, a target the file_sd no longer lists until
    Prometheus applies that on its discovery tick. Their samples are deleted before queries
    (``EmbeddedPrometheus.hide_unserved``). Under its own lock: it is changed while the pool's
    is held."""
    with _locked(folder, UNSERVED_FILE) as entries:
        yield entries


@contextmanager
def _locked(folder: Path, name: str) -> Iterator[list[dict[str, Any]]]:
    path = folder / name
    with open(path.with_suffix(".lock"), "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            try:
                entries: list[dict[str, Any]] = json.loads(path.read_text())
            except (OSError, ValueError):
                entries = []
            before = json.dumps(entries, sort_keys=True)
            yield entries
            if json.dumps(entries, sort_keys=True) != before:
                tmp = path.with_suffix(".tmp")
                tmp.write_text(json.dumps(entries))
                os.replace(tmp, path)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def free_addresses(folder: Path) -> set[str]:
    """The addresses of the slots nothing has claimed yet (nobody listens there on purpose)."""
    with pool(folder) as entries:
        return {str(e["address"]) for e in entries if not e.get("claimed")}
