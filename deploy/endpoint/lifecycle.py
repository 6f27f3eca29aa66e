"""What the local endpoint and the local Lambda front share: the HTTP handler's plumbing, and an HTTP
server plus a watcher thread.

`ContractHandler` is the request handler's common part: HTTP/1.1 keep-alive, Nagle off on every accepted
socket, http.server's own errors and body refusals (chunked 411, bad Content-Length 400, over the limit
413 after draining the body) in the serving contract's JSON shape. A subclass provides
`_send_json(status, body)`.

A subclass sets `httpd` (a socketserver), `poll_seconds` and `name`, and implements `tick()` (one
watcher step: hot swap, idle drop ...). `start()` serves in background threads (tests, notebooks),
`serve_forever()` in the calling thread (the CLI), `close()` stops both; a failing tick is logged and
the watcher goes on.
"""

from __future__ import annotations

import abc
import logging
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, Self

from src import serving_contract

__all__ = ["ContractHandler", "ServedHTTP"]

log = logging.getLogger(__name__)

DRAIN_LIMIT = 64 * 1024 * 1024  # read (and discard) at most this much of a refused body
_HTTP_ERRORS = {404: "not_found", 405: "method_not_allowed", 501: "method_not_allowed"}


class ContractHandler(BaseHTTPRequestHandler, abc.ABC):
    protocol_version = "HTTP/1.1"
    sys_version = ""
    timeout = 120  # seconds an idle keep-alive connection is kept

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (stdlib's signature)
        logging.getLogger(type(self).__module__).debug("%s %s", self.address_string(), format % args)

    @abc.abstractmethod
    def _send_json(self, status: int, body: dict[str, Any]) -> None:
        """Answer `status` with `body` as JSON; each server writes its own headers."""

    def _send_error(self, code: str, message: str, status: int | None = None) -> None:
        """An error in the serving contract's shape, with the status its code has there (or `status`)."""
        self._send_json(status or serving_contract.STATUS[code], serving_contract.error_body(code, message))

    def send_error(self, code, message=None, explain=None) -> None:
        """http.server's own errors (bad request line, unsupported method) in the contract's shape."""
        self.close_connection = True
        status = int(code)
        self._send_error(_HTTP_ERRORS.get(status, "bad_request"), message or HTTPStatus(status).phrase, status)

    def _read_body(self, limit: int) -> bytes | None:
        """The request body, or None after answering 411/400/413 (a refused body is drained)."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self.close_connection = True
            self._send_error("length_required", "chunked bodies are not supported; send Content-Length")
            return None
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            self._send_error("bad_request", "Content-Length is not a number")
            return None
        if length > limit:
            remaining = min(length, DRAIN_LIMIT)
            while remaining > 0:
                chunk = self.rfile.read(min(remaining, 1 << 20))
                if not chunk:
                    break
                remaining -= len(chunk)
            self.close_connection = True
            self._send_error("payload_too_large", f"the body is {length} bytes; the limit is {limit}")
            return None
        return self.rfile.read(length) if length else b""


class ServedHTTP:
    name = "server"
    poll_seconds = 1.0
    httpd: HTTPServer  # set by the subclass's __init__

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._serving = False

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host.decode() if isinstance(host, bytes) else host}:{port}"

    def tick(self) -> None:
        """One watcher step; subclasses override."""

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.tick()
            except Exception:  # the watcher must outlive any one bad step
                log.exception("%s watcher step failed", self.name)

    def _start_watcher(self) -> None:
        watcher = threading.Thread(target=self._watch, name=f"{self.name}-watcher", daemon=True)
        watcher.start()
        self._threads.append(watcher)

    def start(self) -> Self:
        """Serve in background threads."""
        self._start_watcher()
        self._serving = True
        server = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                  name=f"{self.name}-http", daemon=True)
        server.start()
        self._threads.append(server)
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until close() or KeyboardInterrupt."""
        self._start_watcher()
        self._serving = True
        try:
            self.httpd.serve_forever()
        finally:
            self._serving = False

    def close(self) -> None:
        self._stop.set()
        if self._serving:
            self.httpd.shutdown()
            self._serving = False
        self.httpd.server_close()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()
