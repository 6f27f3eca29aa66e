"""Helpers for tests that talk to a local endpoint over HTTP (one keep-alive connection per Client)."""

from __future__ import annotations

import http.client
from contextlib import contextmanager

from deploy.endpoint.server import Endpoint
from deploy.endpoint.slot import ModelSlot, ModelTarget

ROW = "0.0380759,0.0506801,0.0616962,0.0218724,-0.0442235,-0.0348208,-0.0434008,-0.00259226,0.0199075,-0.0176461"
OTHER_ROW = "-0.00188202,-0.0446416,-0.0514741,-0.0263275,-0.00844872,-0.0191633,0.0744116,-0.0394934,-0.0683315,-0.092204"
BOUND_SECONDS = 60  # upper bound on every wait; tests never assert how long anything took


class Switch:
    """A model source the test flips by hand."""

    def __init__(self, target: ModelTarget | None):
        self.target = target

    def __call__(self) -> ModelTarget | None:
        return self.target


@contextmanager
def serving(source, **slot_options):
    poll = slot_options.pop("poll_seconds", 3600.0)  # tests call slot.tick() themselves unless they ask
    slot = ModelSlot(source, **slot_options)
    with Endpoint(slot, "127.0.0.1", 0, poll_seconds=poll) as endpoint:
        yield endpoint


class Client:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, url: str):
        host, port = url.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=BOUND_SECONDS)

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        self.conn.request(method, path, body=body, headers=headers or {})
        response = self.conn.getresponse()
        data = response.read()
        if response.getheader("Connection", "").lower() == "close":
            self.conn.close()
        return response.status, response, data

    def invoke(self, body: bytes, content_type: str | None = "text/csv", accept: str | None = None):
        headers = {}
        if content_type is not None:
            headers["Content-Type"] = content_type
        if accept is not None:
            headers["Accept"] = accept
        return self.request("POST", "/invocations", body, headers)

    def close(self) -> None:
        self.conn.close()
