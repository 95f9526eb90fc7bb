"""Performance test of the hardening stage: hammer helloservice's main page.

The tutorial runs JMeter (``jmeter/load.jmx``); pytest-keptn runs Locust instead, with the
settings in ``locust.conf`` next to this file. The host is the build under test (the canary),
set by the plugin.
"""

from __future__ import annotations

from locust import constant, task
from locust.contrib.fasthttp import FastHttpUser


class MainPageUser(FastHttpUser):
    wait_time = constant(0.05)

    @task
    def main_page(self) -> None:
        self.client.get("/", name="/")
