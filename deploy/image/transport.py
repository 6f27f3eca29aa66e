"""HTTP for the registry client: the transport seam (`BaseTransport`), the real one on http.client, and an
in-memory one for tests (`MockTransport`, after httpx's: a function answers each request).

`Transport` keeps one kept-alive connection per host, bounded by a timeout.

Bodies are bytes or a slice of a file (`FileSlice`), sent in 64 KiB blocks, so a large blob never sits
in memory. Redirects of GET are followed (ECR sends blob downloads to S3) without the Authorization
header when the host changes; a HEAD's redirect is returned as it is (a presigned GET URL refuses a
HEAD). A response can be streamed into a file, hashed on the way.
Everything here raises OSError or http.client.HTTPException on a broken connection; the caller decides
what is transient.
"""

from __future__ import annotations

import hashlib
import http.client
import ssl
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

__all__ = ["BaseTransport", "FileSlice", "HttpRequest", "HttpResponse", "MockTransport", "Transport", "response"]

_BLOCK = 1 << 16
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class FileSlice:
    """`length` bytes of `path` from `offset`: a request body read from disk as it is sent."""

    path: Path
    offset: int
    length: int


class _SliceReader:
    def __init__(self, fh, length: int):
        self.fh, self.left = fh, length

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        data = self.fh.read(n) if n > 0 else b""
        self.left -= len(data)
        return data


@dataclass
class HttpResponse:
    status: int
    reason: str
    headers: http.client.HTTPMessage
    body: bytes = b""
    url: str = ""
    streamed_sha256: str | None = None  # when the body went to a file: its sha256 (hex)
    streamed_size: int = 0


class BaseTransport(Protocol):
    """What the registry client needs of HTTP (httpx's BaseTransport in spirit): send one request, read the
    whole answer (or stream a 200's body into `stream_to`), follow GET redirects; raise OSError or
    http.client.HTTPException on a broken connection."""

    def request(self, method: str, url: str, headers: dict[str, str], body: bytes | FileSlice | None = None,
                stream_to: Path | None = None, redirects: int = 5) -> HttpResponse: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class HttpRequest:
    """A request as MockTransport's handler sees it (the body read into bytes)."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes


def response(status: int, body: bytes = b"", headers: dict[str, str] | None = None, reason: str = "") -> HttpResponse:
    """An HttpResponse built in memory (for MockTransport handlers)."""
    message = http.client.HTTPMessage()
    for name, value in (headers or {}).items():
        message[name] = value
    return HttpResponse(status, reason or http.client.responses.get(status, ""), message, body)


class MockTransport:
    """An in-memory transport: `handler(HttpRequest)` answers each request with an HttpResponse (or raises
    OSError, as a broken connection does). The requests it saw are in `requests`."""

    def __init__(self, handler: Callable[[HttpRequest], HttpResponse]):
        self.handler = handler
        self.requests: list[HttpRequest] = []

    def request(self, method: str, url: str, headers: dict[str, str], body: bytes | FileSlice | None = None,
                stream_to: Path | None = None, redirects: int = 5) -> HttpResponse:
        if isinstance(body, FileSlice):
            with body.path.open("rb") as fh:
                fh.seek(body.offset)
                data = fh.read(body.length)
        else:
            data = body or b""
        sent = HttpRequest(method, url, dict(headers), data)
        self.requests.append(sent)
        answer = self.handler(sent)
        out = HttpResponse(answer.status, answer.reason, answer.headers, answer.body, url=url)
        if stream_to is not None and out.status == 200:
            stream_to.write_bytes(out.body)
            out.streamed_sha256, out.streamed_size, out.body = hashlib.sha256(out.body).hexdigest(), len(out.body), b""
        return out

    def close(self) -> None:
        pass


@dataclass
class Transport:
    """Sends one request at a time (not thread-safe), reusing a connection per scheme and host."""

    timeout: float = 30.0
    ssl_context: ssl.SSLContext | None = None
    _connections: dict = field(default_factory=dict)

    def request(self, method: str, url: str, headers: dict[str, str], body: bytes | FileSlice | None = None,
                stream_to: Path | None = None, redirects: int = 5) -> HttpResponse:
        """Send and read the whole response (or stream a 200's body into stream_to)."""
        parts = urllib.parse.urlsplit(url)
        target = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
        conn = self._connection(parts.scheme, parts.netloc)
        try:
            if isinstance(body, FileSlice):
                with body.path.open("rb") as fh:
                    fh.seek(body.offset)
                    conn.request(method, target, body=_SliceReader(fh, body.length),
                                 headers={**headers, "Content-Length": str(body.length)})
            else:
                conn.request(method, target, body=body,
                             headers={**headers, "Content-Length": str(len(body or b""))}
                             if method in ("POST", "PUT", "PATCH") else headers)
            resp = conn.getresponse()
            out = HttpResponse(resp.status, resp.reason, resp.headers, url=url)
            if stream_to is not None and resp.status == 200:
                digest = hashlib.sha256()
                with stream_to.open("wb") as sink:
                    for chunk in iter(lambda: resp.read(_BLOCK), b""):
                        digest.update(chunk)
                        sink.write(chunk)
                        out.streamed_size += len(chunk)
                out.streamed_sha256 = digest.hexdigest()
            else:
                out.body = resp.read()
            if resp.will_close:
                self._drop(parts.scheme, parts.netloc)
        except BaseException:
            self._drop(parts.scheme, parts.netloc)
            raise
        location = out.headers.get("Location")
        if out.status in _REDIRECTS and location and method == "GET" and redirects > 0:
            nxt = urllib.parse.urljoin(url, location)
            if urllib.parse.urlsplit(nxt).netloc != parts.netloc:
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            return self.request(method, nxt, headers, None, stream_to, redirects - 1)
        return out

    def close(self) -> None:
        for key in list(self._connections):
            self._drop(*key)

    def _connection(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        conn = self._connections.get((scheme, netloc))
        if conn is None:
            if scheme == "https":
                conn = http.client.HTTPSConnection(netloc, timeout=self.timeout, blocksize=_BLOCK,
                                                   context=self.ssl_context or ssl.create_default_context())
            elif scheme == "http":
                conn = http.client.HTTPConnection(netloc, timeout=self.timeout, blocksize=_BLOCK)
            else:
                raise http.client.InvalidURL(f"unsupported URL scheme {scheme!r}")
            self._connections[(scheme, netloc)] = conn
        return conn

    def _drop(self, scheme: str, netloc: str) -> None:
        conn = self._connections.pop((scheme, netloc), None)
        if conn is not None:
            conn.close()
