from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

Behaviour = Callable[[BaseHTTPRequestHandler], tuple[int, str, dict[str, str]]]


@dataclass
class Stub:
    """A tiny local HTTP server standing in for faults a real Prometheus cannot be made to give."""

    url: str
    behaviour: list[Behaviour]
    requests: list[dict[str, str]] = field(default_factory=list)

    def set(self, behaviour: Behaviour) -> None:
        self.behaviour[0] = behaviour


def ok_vector(value: str = "1") -> Behaviour:
    body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {}, "value": [1, value]}]}, "warnings": ["partial data"]})
    return lambda h: (200, body, {"Content-Type": "application/json"})


def sleeper(seconds: float) -> Behaviour:
    def behave(h: BaseHTTPRequestHandler) -> tuple[int, str, dict[str, str]]:
        time.sleep(seconds)
        return ok_vector()(h)

    return behave
