"""Unserved intervals: what Prometheus scrapes of a target while it does not serve its job,
deleted before the queries (issue 17).

Prometheus 2.42 applies a file_sd change only on its discovery manager's 5 s tick. So a
released canary is still scraped as the canary for up to 5 s after its release: a run started
within seconds, with a kept Prometheus (``--keptn-prometheus-keep``), would count the old
build in its canary job. And the spare slot armed for the next build (:mod:`.slots`) is
scraped, ``up`` 0, under the jobs it will serve. The registry records each such interval
(``slots.unserved``) when it writes the file_sd files, and :func:`hide` deletes their samples
through the embedded Prometheus' admin API before the queries, so that the queries read only
what served each job: as if Prometheus applied every change at once.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_keptn.prometheus import slots

if TYPE_CHECKING:
    import httpx

_POLL = 0.05


def note(folder: Path, job: str, gone: Mapping[str, Mapping[str, str]],
         came: Mapping[str, Mapping[str, str]], spare: str | None) -> None:
    """``job``'s file_sd file lost the targets ``gone`` and gained ``came`` (address ->
    labels): a target that left starts an unserved interval, and so does ``spare`` (an empty
    slot); a build that joined ends its address's."""
    now = time.time()
    with slots.unserved(folder) as entries:
        for address, labels in gone.items():  # an empty slot dropped (its port was taken)
            _close(entries, job, labels.get("instance", address), now)
        for kind, found in (("gone", gone), ("slot", {a: v for a, v in came.items() if a == spare})):
            for address, labels in found.items():
                entries.append({"job": job, "instance": labels.get("instance", address),
                                "since": now, "until": None, "kind": kind})
        for address, labels in came.items():
            if address != spare:
                _close(entries, job, labels.get("instance", address), now)


def served(folder: Path, jobs: Sequence[str], instance: str) -> None:
    """A build claimed the slot ``instance``: from now on it serves ``jobs``."""
    now = time.time()
    with slots.unserved(folder) as entries:
        for job in jobs:
            _close(entries, job, instance, now)


def hide(folder: Path, http: httpx.Client, url: str, scrape_interval: float,
         jobs: Sequence[str] = ()) -> str:
    """Delete the samples of every unserved interval of the Prometheus at ``url``; a note
    when some could not be, else ''.

    An empty slot's samples (``up`` 0, a series that began when it was armed) are deleted up
    to now. A target that left a job is still scraped until Prometheus' discovery tick applies
    it, which then ends each of its series with a staleness marker: its samples from the moment
    it left up to its last scrape are deleted once that marker is written, not before (an
    instant query would then find the series' sample from before it left, within the 5 min
    lookback). For ``jobs`` this waits for the marker, at most a discovery tick plus three
    scrape intervals; other jobs' intervals wait for a later call."""
    if not (folder / slots.UNSERVED_FILE).exists():
        return ""
    deadline = time.monotonic() + 5.0 + 3 * scrape_interval + 2.0
    problems: list[str] = []
    while True:
        with slots.unserved(folder) as entries:
            pending = _hide(entries, http, url, problems)
        if problems or not any(e["job"] in jobs for e in pending) \
                or time.monotonic() >= deadline:
            break
        time.sleep(_POLL)
    waiting = sorted({f"{e['job']} {e['instance']}" for e in pending if e["job"] in jobs})
    if waiting and not problems:
        problems.append(f"still scraped after it left the job: {', '.join(waiting)}")
    if problems:
        return ("the samples of targets that did not serve their job could not be hidden "
                "from the queries: " + "; ".join(problems[:3]))
    return ""


def _hide(entries: list[dict[str, Any]], http: httpx.Client, url: str,
          problems: list[str]) -> list[dict[str, Any]]:
    """One pass over ``entries`` (changed in place); the gone targets still pending."""
    import httpx

    now = time.time()
    active: set[tuple[str, str]] | None = None
    pending: list[dict[str, Any]] = []
    for entry in list(entries):
        match = f"{{job={json.dumps(entry['job'])},instance={json.dumps(entry['instance'])}}}"
        try:
            if entry.get("kind") == "gone" and entry["until"] is None:
                if active is None:
                    active = active_targets(http, url)
                ends = (None if active is None or (entry["job"], entry["instance"]) in active
                        else _series_ends(http, url, match, entry["since"], now))
                if ends is None:
                    pending.append(entry)
                    continue
                for selector, last in ends.items():
                    _delete(http, url, selector, entry["since"], last)
                entries.remove(entry)
            else:
                until = entry["until"] if entry["until"] is not None else now
                _delete(http, url, match, entry["since"], until)
                if entry["until"] is not None:
                    entries.remove(entry)
        except httpx.TransportError as exc:
            # Prometheus does not answer (hung, gone): the rest would each wait a timeout too
            problems.append(f"{match}: {exc or type(exc).__name__}")
            break
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            problems.append(f"{match}: {exc}")
    return pending


def _delete(http: httpx.Client, url: str, selector: str, start: float, end: float) -> None:
    response = http.post(url + "/api/v1/admin/tsdb/delete_series",
                         data={"match[]": selector, "start": f"{start:.3f}", "end": f"{end:.3f}"})
    if response.status_code not in (200, 204):
        raise ValueError(f"HTTP {response.status_code} {response.text[:100]}")


def _series_ends(http: httpx.Client, url: str, match: str, since: float,
                 now: float) -> dict[str, float] | None:
    """Each series of the target ``match`` that has samples since ``since``, as a selector of
    its labels, with its last sample's time; None while one is not ended by a staleness
    marker yet (an instant query at now still answers)."""
    def ask(query: str) -> list[dict[str, Any]]:
        response = http.post(url + "/api/v1/query", data={"query": query, "time": f"{now:.3f}"})
        return list(response.json()["data"]["result"])

    if ask(f"up{match}"):
        return None
    ends: dict[str, float] = {}
    for series in ask(f"up{match}[{int((now - since) * 1000) + 1000}ms]"):
        labels = {k: v for k, v in series["metric"].items() if k != "__name__"}
        last = max(float(t) for t, _ in series["values"])
        if last >= since:
            ends["{" + ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels.items())) + "}"] = last
    return ends


def active_targets(http: httpx.Client, url: str) -> set[tuple[str, str]] | None:
    """(job, instance) of every target Prometheus scrapes now; None when it cannot say."""
    import httpx

    try:
        response = http.get(url + "/api/v1/targets", params={"state": "active"})
        return {(t["labels"].get("job", ""), t["labels"].get("instance", ""))
                for t in response.json()["data"]["activeTargets"]}
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None


def scraped_at(stamp: object) -> float:
    """A target's ``lastScrape`` (RFC 3339 with nanoseconds; the zero time when never) as unix
    seconds."""
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)",
                         str(stamp or ""))
    if match is None:
        return 0.0
    fraction = (match.group(2) or ".0")[:7]
    zone = "+00:00" if match.group(3) == "Z" else match.group(3)
    try:
        return datetime.fromisoformat(match.group(1) + fraction + zone).timestamp()
    except ValueError:
        return 0.0



def _close(entries: list[dict[str, Any]], job: str, instance: str, at: float) -> None:
    for entry in entries:
        if entry["job"] == job and entry["instance"] == instance and entry["until"] is None:
            entry["until"] = at
