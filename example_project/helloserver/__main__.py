"""``python -m helloserver --port 8080 --tag v0.1.1``: the demo service.

Builds by tag, as the tutorial delivers them:

* ``v0.1.1``: healthy (about 5 ms per request);
* ``v0.1.2``: a regression the tutorial's SLO catches: the main page is slow (over 1 s per
  request, failing ``http_response_time_seconds_main_page_sum <= 1``) and goroutine-like
  workers pile up past 100 (failing ``go_routines <= 100``);
* ``v0.1.3``: returns errors (HTTP 500 on about half of the requests);
* ``crash``: exits at start, a build that cannot come up.

Metrics at ``/metrics``, exported with ``prometheus_client`` (``pip install prometheus-client``,
in pytest-keptn's ``example`` extra): ``http_server_request_duration_seconds`` (histogram, labels
``method``/``route``/``status_code``), ``http_requests_total`` (label ``status`` =
``success``/``error``) and ``go_goroutines`` (a gauge standing in for Go's).
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

disable_created_metrics()  # no *_created series: the tutorial's queries do not read them

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

BUILDS = {
    # tag: (delay seconds, error ratio, extra goroutines)
    "v0.1.1": (0.005, 0.0, 0),
    "v0.1.2": (1.2, 0.0, 150),
    "v0.1.3": (0.005, 0.5, 0),
    "v0.1.4": (0.005, 0.0, 0),  # v0.1.1, 15 % slower on the main page (SLOWER)
}
# v0.1.4 waits 15 % of the time its main page took before answering: 15 % slower whatever the
# machine's load (a fixed extra sleep would be a smaller share on a busy machine); the
# regression a live baseline must catch under noise (benchmarks/bench_live_control.py)
SLOWER = {"v0.1.4": 0.15}


class Metrics:
    """The service's metrics, in a registry of its own (one per server, so tests can start
    several in one process)."""

    def __init__(self, base_goroutines: int = 8) -> None:
        self.registry = CollectorRegistry()
        self.duration = Histogram(
            "http_server_request_duration_seconds", "Duration of HTTP requests.",
            ["method", "route", "status_code"], buckets=BUCKETS, registry=self.registry)
        self.requests = Counter("http_requests", "Requests by outcome.", ["status"],
                                registry=self.registry)
        for status in ("success", "error"):
            self.requests.labels(status)  # both series exist (at 0) before the first request
        self.in_flight = 0
        self.lock = threading.Lock()
        goroutines = Gauge("go_goroutines", "Workers in flight (stand-in for Go's goroutines).",
                           registry=self.registry)
        goroutines.set_function(lambda: base_goroutines + self.in_flight)

    def observe(self, method: str, route: str, code: int, seconds: float) -> None:
        self.duration.labels(method, route, str(code)).observe(seconds)
        self.requests.labels("success" if code < 400 else "error").inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


def make_handler(tag: str, metrics: Metrics) -> type[BaseHTTPRequestHandler]:
    delay, error_ratio, _ = BUILDS.get(tag, BUILDS["v0.1.1"])
    slower = SLOWER.get(tag, 0.0)
    page = (f"<html><body><h1>Hello from helloservice {tag}</h1></body></html>").encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # else Nagle + delayed ACK add ~40 ms per keep-alive request

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _send(self, code: int, body: bytes, ctype: str = "text/html") -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, metrics.render(), CONTENT_TYPE_LATEST)
                return
            if path == "/health":
                self._send(200, b"ok", "text/plain")
                return
            started = time.perf_counter()
            with metrics.lock:
                metrics.in_flight += 1
            try:
                time.sleep(delay)
                if path != "/":
                    code, body = 404, b"not found"
                elif error_ratio and random.random() < error_ratio:
                    code, body = 500, b"internal error"
                else:
                    code, body = 200, page
                if slower and path == "/":
                    time.sleep(slower * (time.perf_counter() - started))
                self._send(code, body)
            finally:
                with metrics.lock:
                    metrics.in_flight -= 1
            metrics.observe("GET", path if code != 404 else "unknown", code, time.perf_counter() - started)

    return Handler


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="helloserver")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--tag", default="v0.1.1")
    args = parser.parse_args(argv)
    if args.tag == "crash":
        print("helloserver: build 'crash' cannot start: missing configuration", file=sys.stderr)
        return 3
    extra_goroutines = BUILDS.get(args.tag, BUILDS["v0.1.1"])[2]
    server = Server((args.host, args.port), make_handler(args.tag, Metrics(8 + extra_goroutines)))
    print(f"helloserver {args.tag} listening on http://{args.host}:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
