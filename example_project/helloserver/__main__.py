"""``python -m helloserver --port 8080 --tag v0.1.1``: the demo service.

Builds by tag, as the tutorial delivers them:

* ``v0.1.1``: healthy (about 5 ms per request);
* ``v0.1.2``: a regression the tutorial's SLO catches: the main page is slow (over 1 s per
  request, failing ``http_response_time_seconds_main_page_sum <= 1``) and goroutine-like
  workers pile up past 100 (failing ``go_routines <= 100``);
* ``v0.1.3``: returns errors (HTTP 500 on about half of the requests);
* ``crash``: exits at start, a build that cannot come up.

Metrics at ``/metrics`` (Prometheus text format): ``http_server_request_duration_seconds``
(histogram, labels ``method``/``route``/``status_code``), ``http_requests_total`` (label
``status`` = ``success``/``error``) and ``go_goroutines`` (a gauge standing in for Go's).
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

BUILDS = {
    # tag: (delay seconds, error ratio, extra goroutines)
    "v0.1.1": (0.005, 0.0, 0),
    "v0.1.2": (1.2, 0.0, 150),
    "v0.1.3": (0.005, 0.5, 0),
    # about 15 % slower on the main page (6.3 -> 7.3 ms served, +16 %; +11 % seen by a client,
    # measured on a busy 2-core machine), otherwise v0.1.1:
    # the regression a live baseline must catch on a noisy machine (bench_live_control.py)
    "v0.1.4": (0.0058, 0.0, 0),
}


class Metrics:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        # (method, route, status_code) -> [bucket counts..., sum, count]
        self.hist: dict[tuple[str, str, str], list[float]] = {}
        self.requests = {"success": 0, "error": 0}
        self.in_flight = 0

    def observe(self, method: str, route: str, code: int, seconds: float) -> None:
        key = (method, route, str(code))
        with self.lock:
            row = self.hist.setdefault(key, [0.0] * (len(BUCKETS) + 2))
            for i, le in enumerate(BUCKETS):
                if seconds <= le:
                    row[i] += 1
            row[-2] += seconds
            row[-1] += 1
            self.requests["success" if code < 400 else "error"] += 1

    def render(self, base_goroutines: int) -> str:
        out = [
            "# HELP http_server_request_duration_seconds Duration of HTTP requests.",
            "# TYPE http_server_request_duration_seconds histogram",
        ]
        with self.lock:
            for (method, route, code), row in sorted(self.hist.items()):
                labels = f'method="{method}",route="{route}",status_code="{code}"'
                for i, le in enumerate(BUCKETS):
                    out.append(f'http_server_request_duration_seconds_bucket{{{labels},le="{le}"}} {row[i]:g}')
                out.append(f'http_server_request_duration_seconds_bucket{{{labels},le="+Inf"}} {row[-1]:g}')
                out.append(f"http_server_request_duration_seconds_sum{{{labels}}} {row[-2]!r}")
                out.append(f"http_server_request_duration_seconds_count{{{labels}}} {row[-1]:g}")
            out += ["# HELP http_requests_total Requests by outcome.", "# TYPE http_requests_total counter"]
            for status, n in sorted(self.requests.items()):
                out.append(f'http_requests_total{{status="{status}"}} {n}')
            out += ["# HELP go_goroutines Workers in flight (stand-in for Go's goroutines).",
                    "# TYPE go_goroutines gauge", f"go_goroutines {base_goroutines + self.in_flight}"]
        return "\n".join(out) + "\n"


def make_handler(tag: str, metrics: Metrics) -> type[BaseHTTPRequestHandler]:
    delay, error_ratio, extra = BUILDS.get(tag, BUILDS["v0.1.1"])
    base_goroutines = 8 + extra
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
                self._send(200, metrics.render(base_goroutines).encode(), "text/plain; version=0.0.4")
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
    server = Server((args.host, args.port), make_handler(args.tag, Metrics()))
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
