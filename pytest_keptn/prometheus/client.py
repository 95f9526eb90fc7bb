"""A small, synchronous Prometheus HTTP API client that turns each instant query into an SLIResult.

Works with anything speaking Prometheus' ``/api/v1/query`` (a base URL may carry a path prefix
such as Mimir's ``/prometheus``). Concurrency uses threads (one shared ``httpx.Client``); never
asyncio. Credentials live only in the request headers built here: they are scrubbed from every
message and never shown by ``repr``.
"""

from __future__ import annotations

import base64
import contextlib
import math
import re
import ssl
import threading
import time
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import httpx

from pytest_keptn.errors import ProviderError
from pytest_keptn.model import COMPAT_087, SLIResult, SLIStatus
from pytest_keptn.prometheus.answers import (
    PrometheusOutage,
    compat_087,
    is_prom_timeout,
    sample,
    series_labels,
)
from pytest_keptn.prometheus.auth import (
    credential,
    normalize_url,
    parse_headers,
    secret_forms,
    sensitive,
    split_userinfo,
    tls_verify,
)

_BACKOFF = 0.2  # seconds before the first retry; doubles per retry
_MAX_BODY = 300  # characters of a non-JSON error body kept in a message


# Indicators per batched query (see PrometheusClient.query_many) and the label that tells them apart.
BATCH_SIZE = 50
SUBQUERY_BATCH_SIZE = 20
_SUBQUERY = re.compile(r"\[[^\]]*:[^\]]*\]")  # [range:resolution] or [range:]
_BATCH_LABEL = "keptn_sli_index"


class _BatchTimedOut(Exception):
    """A batch of queries timed out (see ``PrometheusClient.query_many``)."""


def _balanced_or(parts: Sequence[str]) -> str:
    """``a or b or c ...`` as a balanced tree.

    Prometheus evaluates ``a or b or c`` as ``((a or b) or c)``: every ``or`` copies and hashes
    its whole left side again, so a chain of n parts costs O(n²); a balanced tree O(n log n).
    """
    if len(parts) == 1:
        return parts[0]
    middle = len(parts) // 2
    return f"({_balanced_or(parts[:middle])}) or ({_balanced_or(parts[middle:])})"


def _short(text: str, limit: int = _MAX_BODY) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _unix(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return f"{moment.timestamp():.3f}"


class PrometheusClient:
    """Query a Prometheus-compatible API at ``base_url``; results are typed ``SLIResult`` values.

    ``timeout`` bounds one query including its retries; connection errors and 5xx answers are
    retried ``retries`` times with backoff, 4xx answers never.
    """

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str] = {},
        token: str | None = None,
        basic_auth: tuple[str, str] | None = None,
        timeout: float = 10.0,
        retries: int = 2,
        max_workers: int = 16,
        batch_size: int = BATCH_SIZE,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        # ``http://user:password@host`` works, but the userinfo becomes basic auth and never
        # stays in ``base_url``, which goes into messages.
        base_url, url_auth = split_userinfo(normalize_url(base_url))
        self.base_url = base_url.rstrip("/")
        self.timeout = float(timeout)
        self.retries = max(0, int(retries))
        self.max_workers = max(1, int(max_workers))
        self.batch_size = max(1, int(batch_size))
        all_headers = {str(k): str(v) for k, v in headers.items()}
        secrets = [v for k, v in all_headers.items() if sensitive(k) and v]
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
            secrets.append(token)
        auth: httpx.BasicAuth | None = None
        if basic_auth is None:
            basic_auth = url_auth
        if basic_auth is not None:
            auth = httpx.BasicAuth(basic_auth[0], basic_auth[1])
            secrets += [s for s in basic_auth if s]
            # what goes on the wire, in case a server echoes the Authorization header back
            secrets.append(base64.b64encode(f"{basic_auth[0]}:{basic_auth[1]}".encode()).decode())
        # every form a secret can take in a message: "Basic <b64>" before its parts
        # (a credential of 1-3 characters is not hidden: replacing it would garble every message)
        self._secrets = sorted({f for s in secrets for f in secret_forms(s) if len(f) >= 4},
                               key=len, reverse=True)
        if self.base_url.startswith("http://"):
            verify = False  # no TLS, no redirects: loading the CA bundle would cost 24-54 ms
        self._http = httpx.Client(
            headers=all_headers,
            auth=auth,
            timeout=self.timeout,
            limits=httpx.Limits(
                max_connections=self.max_workers, max_keepalive_connections=self.max_workers
            ),
            follow_redirects=False,
            verify=verify,
        )
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"PrometheusClient({self.base_url!r}, timeout={self.timeout}, retries={self.retries})"

    __str__ = __repr__

    # -- lifecycle --------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        self._http.close()

    def __enter__(self) -> PrometheusClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- helpers ----------------------------------------------------------------------------
    def scrub(self, text: str) -> str:
        """``text`` with every credential this client knows replaced by ``***``."""
        for secret in self._secrets:
            if secret:
                text = text.replace(secret, "***")
        return text

    def post(self, path: str, data: Mapping[str, str], deadline: float) -> httpx.Response:
        """POST with retries on connection errors and 5xx; raises httpx errors on giving up."""
        attempt = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise httpx.TimeoutException("deadline exceeded")
            try:
                response = self._http.post(
                    self.base_url + path, data=dict(data), timeout=httpx.Timeout(remaining)
                )
            except httpx.TimeoutException:
                raise  # retrying a query that timed out would only time out again
            except httpx.TransportError:
                if attempt >= self.retries:
                    raise
            else:
                retryable = response.status_code >= 500 and not is_prom_timeout(response)
                if not retryable or attempt >= self.retries:
                    return response
            pause = min(_BACKOFF * (2**attempt), max(0.0, deadline - time.monotonic()))
            time.sleep(pause)
            attempt += 1

    # -- queries ----------------------------------------------------------------------------
    def query(
        self,
        promql: str,
        at: datetime,
        *,
        metric: str = "",
        aggregate: bool = False,
        compat: str | None = None,
    ) -> SLIResult:
        """Run an instant query at ``at``; never raises for Prometheus-side problems."""
        first = compat == COMPAT_087  # Keptn 0.8.7 silently takes the first of several series
        result = self._query(promql, at, metric=metric, aggregate=aggregate, first=first)
        if compat == COMPAT_087:
            result = compat_087(result)
        return self._scrubbed(result)

    def _scrubbed(self, result: SLIResult) -> SLIResult:
        """``result`` with no credential in its message or warnings, whatever Prometheus put
        in a sample value, a label or an error (a proxy may echo the Authorization header)."""
        if not self._secrets:
            return result
        return replace(result, message=self.scrub(result.message),
                       warnings=tuple(self.scrub(w) for w in result.warnings))

    def _query(
        self, promql: str, at: datetime, *, metric: str, aggregate: bool, first: bool = False
    ) -> SLIResult:
        base = SLIResult(metric=metric, value=0.0, success=False, query=promql)
        data = {"query": promql, "time": _unix(at), "timeout": f"{self.timeout:g}s"}
        deadline = time.monotonic() + self.timeout
        try:
            response = self.post("/api/v1/query", data, deadline)
        except httpx.TimeoutException:
            return replace(
                base,
                status=SLIStatus.TIMEOUT,
                message=f"query timed out after {self.timeout:g}s: {promql}",
            )
        except httpx.TransportError as exc:
            return self._unreachable(base, exc)
        return self._read(base, response, aggregate, first)

    def query_range(
        self, promql: str, start: datetime, end: datetime, step: float
    ) -> list[float] | str:
        """A range query's finite points (one series; several are an error), or why not."""
        data = {"query": promql, "start": _unix(start), "end": _unix(end), "step": f"{step:g}",
                "timeout": f"{self.timeout:g}s"}
        try:
            response = self.post("/api/v1/query_range", data, time.monotonic() + self.timeout)
            body: Any = response.json()
        except httpx.TimeoutException:
            return f"range query timed out after {self.timeout:g}s: {promql}"
        except httpx.TransportError as exc:
            return self._unreachable(SLIResult(metric="", query=promql), exc).message
        except ValueError:
            body = None
        if not isinstance(body, dict) or body.get("status") != "success":
            error = str(body.get("error") or "") if isinstance(body, dict) else _short(response.text)
            return self.scrub(f"range query failed: HTTP {response.status_code} {error}: {promql}")
        result = (body.get("data") or {}).get("result")
        if not isinstance(result, list) or not result:
            return f"range query returned no data: {promql}"
        if len(result) > 1:
            return f"range query returned {len(result)} series; aggregate them: {promql}"
        points: list[float] = []
        for _, raw in result[0].get("values") or []:
            try:
                value = float(raw)
            except (TypeError, ValueError):
                continue
            if math.isfinite(value):
                points.append(value)  # NaN points (0/0 in an idle step) carry no sample
        return points

    def _unreachable(self, base: SLIResult, exc: Exception) -> SLIResult:
        reason = self.scrub(_short(str(exc) or type(exc).__name__, 150))
        return replace(
            base,
            status=SLIStatus.UNREACHABLE,
            message=f"Prometheus at {self.base_url} unreachable ({reason}): {base.query}",
        )

    def _warnings(self, envelope: Mapping[str, Any]) -> tuple[str, ...]:
        """Prometheus' ``warnings`` (and ``infos``), scrubbed of credentials."""
        return tuple(
            self.scrub(str(w)) for key in ("warnings", "infos") for w in (envelope.get(key) or [])
        )

    def _read(
        self, base: SLIResult, response: httpx.Response, aggregate: bool, first: bool
    ) -> SLIResult:
        promql = base.query
        body: Any = None
        try:
            body = response.json()
        except ValueError:
            body = None
        envelope = body if isinstance(body, dict) else {}
        warnings = self._warnings(envelope)
        base = replace(base, warnings=warnings)
        if response.status_code != 200 or envelope.get("status") != "success":
            error_type = str(envelope.get("errorType") or "")
            error = str(envelope.get("error") or "")
            if not envelope:
                error = _short(response.text) or response.reason_phrase
            if response.status_code == 401 or response.status_code == 403:
                error = (error + " (check the Prometheus credentials)").strip()
            detail = ": ".join(p for p in (error_type, error) if p)
            status = SLIStatus.QUERY_ERROR
            if error_type == "timeout":
                status = SLIStatus.TIMEOUT
            elif response.status_code in (401, 403):
                status = SLIStatus.UNAUTHORIZED
            elif response.status_code >= 500:
                status = SLIStatus.SERVER_ERROR
            message = f"HTTP {response.status_code} {detail}: {promql}"
            return replace(base, status=status, message=self.scrub(message))
        data = envelope.get("data") or {}
        kind = data.get("resultType")
        result = data.get("result")
        if kind == "scalar" and isinstance(result, list) and len(result) == 2:
            return sample(base, result[1])
        if kind == "vector" and isinstance(result, list):
            return self._vector(base, result, aggregate, first)
        return replace(
            base,
            status=SLIStatus.INVALID,
            message=f"query returned a {kind or 'malformed'} result, not an instant vector "
            f"or scalar: {promql}",
        )

    def _vector(
        self, base: SLIResult, result: list[Any], aggregate: bool, first: bool
    ) -> SLIResult:
        promql = base.query
        if not result:
            return replace(
                base, status=SLIStatus.NO_DATA, message=f"query returned no data: {promql}"
            )
        if len(result) > 1 and not aggregate and not first:
            series = ", ".join(series_labels(r.get("metric", {})) for r in result[:3])
            more = f" and {len(result) - 3} more" if len(result) > 3 else ""
            return replace(
                base,
                status=SLIStatus.MULTIPLE,
                message=f"query returned {len(result)} series ({series}{more}); "
                f"aggregate them (e.g. sum(...)): {promql}",
            )
        if len(result) > 1 and aggregate:
            samples = [sample(base, r.get("value", [None, None])[1]) for r in result]
            bad = [s for s in samples if s.status != SLIStatus.VALUE]
            if bad:
                return bad[0]
            return replace(base, value=sum(s.value for s in samples), success=True,
                           status=SLIStatus.VALUE)
        value = result[0].get("value") or [None, None]
        return sample(base, value[1] if len(value) == 2 else None)

    def query_many(
        self,
        queries: Mapping[str, str],
        at: datetime,
        *,
        compat: str | None = None,
        aggregate: Collection[str] = (),
    ) -> dict[str, SLIResult]:
        """Run every query, keyed by indicator; batches run concurrently (``max_workers``).

        Queries go to Prometheus in batches of up to ``BATCH_SIZE`` (``SUBQUERY_BATCH_SIZE``
        for queries with a subquery), identical ones once: one instant query
        ``label_replace((q1), "keptn_sli_index", "0", "", "") or ...`` whose series are split
        back by that label, so that 500 indicators cost a handful of HTTP round trips and query
        setups instead of 500. A batch Prometheus refuses (a query that is not an instant
        vector, bad PromQL in one of them) falls back to one query per indicator, so every
        indicator still gets its own typed result and message. Keptn 0.8.7 compatibility
        (``compat``) always queries one by one, as Keptn did.
        """
        if not queries:
            return {}
        pool = self._executor()
        # An indicator's result depends only on its query and its aggregation flag: identical
        # queries (several SLIs, or an SLO's key and info objectives, over the same PromQL)
        # are asked once and answered for each of them.
        asked: dict[tuple[str, bool], list[str]] = {}
        for name, promql in queries.items():
            asked.setdefault((promql, name in aggregate), []).append(name)
        items = [(names[0], promql) for (promql, _), names in asked.items()]
        batches: list[list[tuple[str, str]]] = []
        # Subqueries go in smaller batches: Prometheus spends more CPU on many subqueries in
        # one query than on the same ones asked apart (2.42, bench_sli_fetch --step 2ms: 200
        # fine-grained subqueries cost 13.4 s of CPU in batches of 50, 6.9 s in batches of 20;
        # batches of 20 cost ordinary subqueries nothing measurable).
        heavy: list[tuple[str, str]] = []
        light: list[tuple[str, str]] = []
        for item in items:
            (heavy if _SUBQUERY.search(item[1]) else light).append(item)
        for group, limit in ((heavy, min(self.batch_size, SUBQUERY_BATCH_SIZE)),
                             (light, self.batch_size)):
            size = 1 if compat == COMPAT_087 else limit
            count = -(-len(group) // size)  # batches of equal size: 120 by 50 is 40+40+40
            batches += [group[i::count] for i in range(count)]

        def one(name: str, promql: str) -> Future[SLIResult]:
            return pool.submit(self.query, promql, at, metric=name,
                               aggregate=name in aggregate, compat=compat)

        singles: dict[str, Future[SLIResult]] = {}
        batched: list[tuple[list[tuple[str, str]], Future[dict[str, SLIResult] | None]]] = []
        for batch in batches:
            if len(batch) == 1:
                singles[batch[0][0]] = one(*batch[0])
            else:
                batched.append((batch, pool.submit(self._batched, batch, at, aggregate)))
        merged: dict[str, SLIResult] = {}
        alive: bool | None = None
        for batch, future in batched:
            try:
                answered = future.result()
            except _BatchTimedOut:
                # one slow query must not time out the others, so they are asked one by one;
                # unless Prometheus does not even answer vector(1): then it hangs, and asking
                # again would only double the wait
                alive = self._answers(at) if alive is None else alive
                if not alive:
                    merged.update({name: self._hung(name, q) for name, q in batch})
                    continue
                answered = None
            if answered is None:  # refused as a whole: one query per indicator
                singles.update({name: one(name, q) for name, q in batch})
            else:
                merged.update(answered)
        merged.update({name: f.result() for name, f in singles.items()})
        for names in asked.values():
            first = merged[names[0]]
            merged.update({name: replace(first, metric=name) for name in names[1:]})
        return {name: self._scrubbed(merged[name]) for name in queries}

    def _answers(self, at: datetime) -> bool:
        """Whether Prometheus answers a trivial query within a second (or the timeout)."""
        data = {"query": "vector(1)", "time": _unix(at)}
        try:
            response = self.post("/api/v1/query", data, time.monotonic() + min(1.0, self.timeout))
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    def probe(self, timeout: float) -> None:
        """Ask ``vector(1)`` once (with the retries): raises :class:`PrometheusOutage` when
        Prometheus cannot be connected to (refused, DNS, TLS, no connection within
        ``timeout``), refuses the credentials, or has no query API at this URL (404). A slow or
        failing answer is left to the evaluation: it may be an outage, not a setup mistake."""
        data = {"query": "vector(1)"}
        try:
            response = self.post("/api/v1/query", data, time.monotonic() + timeout)
        except httpx.ConnectTimeout as exc:
            raise self.outage(httpx.ConnectError(f"no connection within {timeout:g}s")) from exc
        except httpx.TimeoutException:
            return
        except httpx.TransportError as exc:
            raise self.outage(exc) from None
        if response.status_code in (401, 403):
            raise self.outage(response)
        if response.status_code == 404:
            raise PrometheusOutage(self.scrub(
                f"no Prometheus query API at {self.base_url} (HTTP 404 for /api/v1/query; "
                "a path prefix such as Mimir's /prometheus belongs in the URL)"),
                status=SLIStatus.UNREACHABLE)

    def _hung(self, name: str, promql: str) -> SLIResult:
        return SLIResult(
            metric=name, value=0.0, success=False, status=SLIStatus.TIMEOUT, query=promql,
            message=f"query timed out after {self.timeout:g}s, and Prometheus did not answer "
            f"vector(1) within {min(1.0, self.timeout):g}s either: {promql}",
        )

    def _batched(
        self, batch: list[tuple[str, str]], at: datetime, aggregate: Collection[str]
    ) -> dict[str, SLIResult] | None:
        """One round trip for the whole batch, or None when it must be asked one by one;
        raises ``_BatchTimedOut`` when it timed out."""
        promql = _balanced_or([
            f'label_replace(({q}), "{_BATCH_LABEL}", "{i}", "", "")'
            for i, (_, q) in enumerate(batch)
        ])
        bases = [SLIResult(metric=name, value=0.0, success=False, query=q) for name, q in batch]
        data = {"query": promql, "time": _unix(at), "timeout": f"{self.timeout:g}s"}
        try:
            response = self.post("/api/v1/query", data, time.monotonic() + self.timeout)
        except httpx.TimeoutException:
            raise _BatchTimedOut from None
        except httpx.TransportError as exc:
            return {b.metric: self._unreachable(b, exc) for b in bases}
        if response.status_code in (400, 422):
            return None  # one of the queries is wrong or not a vector: ask one by one
        try:
            envelope = response.json()
        except ValueError:
            envelope = None
        data_ = envelope.get("data") if isinstance(envelope, dict) else None
        if (response.status_code != 200 or not isinstance(data_, dict)
                or envelope.get("status") != "success" or data_.get("resultType") != "vector"
                or not isinstance(data_.get("result"), list)):
            # an error for the whole batch (401, 503, ...): the same reading as one query gives
            return {b.metric: self._read(b, response, b.metric in aggregate, False) for b in bases}
        groups: dict[int, list[dict[str, Any]]] = {i: [] for i in range(len(batch))}
        for series in data_["result"]:
            metric = dict(series.get("metric") or {})
            index = metric.pop(_BATCH_LABEL, None)
            if index is None or not str(index).isdigit() or int(index) not in groups:
                return None
            groups[int(index)].append({**series, "metric": metric})
        warnings = self._warnings(envelope)
        return {
            name: self._vector(
                SLIResult(metric=name, value=0.0, success=False, query=q, warnings=warnings),
                groups[i], name in aggregate, False,
            )
            for i, (name, q) in enumerate(batch)
        }

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._closed:
                raise ProviderError("the Prometheus client is closed")
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.max_workers, thread_name_prefix="keptn-sli")
            return self._pool

    def wait_fresh(self, jobs: Sequence[str], after: datetime, timeout: float,
                   interval: float | None = None) -> None:
        """Wait until Prometheus holds every sample of ``jobs`` at or before ``after``
        (:func:`pytest_keptn.prometheus.freshness.wait`: ``interval`` is the scrape interval
        when it is known, which lets most waits end before the next scrape)."""
        from pytest_keptn.prometheus import freshness

        freshness.wait(self, jobs, after, timeout, interval)

    def outage(self, cause: Exception | httpx.Response) -> PrometheusOutage:
        """The typed error for a Prometheus that cannot be asked: ``cause`` is the transport
        error, or the 401/403 answer."""
        if isinstance(cause, httpx.Response):
            error = ""
            with contextlib.suppress(ValueError, AttributeError):
                error = str(cause.json().get("error") or "")
            detail = _short(error or cause.text or cause.reason_phrase, 150)
            return PrometheusOutage(
                self.scrub(f"Prometheus at {self.base_url} refused the credentials (HTTP "
                           f"{cause.status_code}{': ' + detail if detail else ''})"),
                status=SLIStatus.UNAUTHORIZED)
        reason = _short(str(cause) or type(cause).__name__, 150)
        return PrometheusOutage(
            self.scrub(f"Prometheus at {self.base_url} unreachable ({reason})"),
            status=SLIStatus.UNREACHABLE)


def client_from_settings(settings: Any, url: str) -> PrometheusClient:
    """A client for ``url`` with the headers, credentials and TLS settings ``settings`` name.

    Token, user and password are read from the environment variables whose *names* the
    settings hold; basic auth is sent only when both user and password are non-empty, as
    Keptn's provider did. A bad setting is a :class:`ConfigError` that never shows a secret.
    """
    headers = parse_headers(getattr(settings, "prometheus_headers", None) or "")
    token = credential(settings, "prometheus_token_env")
    user = credential(settings, "prometheus_user_env")
    password = credential(settings, "prometheus_password_env")
    return PrometheusClient(
        url,
        headers=headers,
        token=token,
        basic_auth=(user, password) if user and password else None,
        timeout=float(getattr(settings, "query_timeout", 10.0)),
        verify=tls_verify(settings),
    )
