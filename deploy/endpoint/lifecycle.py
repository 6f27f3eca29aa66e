"""What the local endpoint and the local Lambda front share: an HTTP server plus a watcher thread.

A subclass sets `httpd` (a socketserver), `poll_seconds` and `name`, and implements `tick()` (one
watcher step: hot swap, idle drop ...). `start()` serves in background threads (tests, notebooks),
`serve_forever()` in the calling thread (the CLI), `close()` stops both; a failing tick is logged and
the watcher goes on.
"""

from __future__ import annotations

import logging
import threading
from typing import Self

__all__ = ["ServedHTTP"]

log = logging.getLogger(__name__)


class ServedHTTP:
    name = "server"
    poll_seconds = 1.0
    httpd = None

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._serving = False

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

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
