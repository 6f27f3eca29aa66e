"""HTTP for the local servers' clients, behind a transport seam (in the style of httpx's BaseTransport).

    transport.handle(HttpRequest("POST", url, headers, body, timeout)) -> HttpResponse

`UrllibTransport` (the default) sends the request with urllib; `MockTransport(handler)` answers it in
memory with `handler(request)`, so failure cases (a refused connection, a 500, a wrong version header)
are tested without a server. Every client here (`invoke`, the local endpoint target, the Lambda
front's invoker) takes a transport and builds the real one only when none is given.

`invoke()` is one POST /invocations: what `greenlight invoke` sends to an endpoint.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from greenlight.errors import DataError, GreenlightError

__all__ = ["HttpRequest", "HttpResponse", "InvocationResult", "MockTransport", "Transport", "TransportError",
           "UrllibTransport", "VERSION_HEADER", "error_message", "invocations_url", "invoke"]

VERSION_HEADER = "X-Greenlight-Model-Version"


@dataclass(frozen=True)
class HttpRequest:
    """One request, as a transport sends it."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None
    timeout: float = 60.0


@dataclass(frozen=True)
class HttpResponse:
    """The server's answer, whatever its status."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)  # names lower-cased
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class TransportError(GreenlightError):
    """The server could not be reached (refused, timed out, reset)."""


class Transport(Protocol):
    def handle(self, request: HttpRequest) -> HttpResponse:
        """The server's answer, whatever its status. Raises: TransportError if there is none."""
        ...


class UrllibTransport:
    """The real HTTP transport (urllib; one connection per request)."""

    def handle(self, request: HttpRequest) -> HttpResponse:
        try:
            raw = urllib.request.Request(request.url, data=request.body, method=request.method,
                                         headers=dict(request.headers))
            with urllib.request.urlopen(raw, timeout=request.timeout) as response:
                return HttpResponse(response.status, {k.lower(): v for k, v in response.headers.items()},
                                    response.read())
        except urllib.error.HTTPError as exc:
            return HttpResponse(exc.code, {k.lower(): v for k, v in (exc.headers or {}).items()}, exc.read())
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise TransportError(f"cannot reach {request.url}: {getattr(exc, 'reason', exc)}") from None


class MockTransport:
    """Answers every request with `handler(request)` (in memory); a handler may raise TransportError."""

    def __init__(self, handler: Callable[[HttpRequest], HttpResponse]):
        self.handler = handler
        self.requests: list[HttpRequest] = []

    def handle(self, request: HttpRequest) -> HttpResponse:
        self.requests.append(request)
        return self.handler(request)


@dataclass(frozen=True)
class InvocationResult:
    status: int
    body: bytes
    content_type: str
    model_version: str | None


def invocations_url(endpoint: str) -> str:
    """The /invocations URL of an endpoint given as its base URL (or already as /invocations)."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/invocations") else endpoint + "/invocations"


def error_message(body: bytes) -> str:
    """One line from an error body: its JSON `message`/`error` field, else the text itself."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        doc = json.loads(text)
    except ValueError:
        return " ".join(text.split()) or "(empty body)"
    if isinstance(doc, dict):
        for key in ("message", "error", "detail"):
            value = doc.get(key)
            if isinstance(value, dict):
                value = value.get("message") or json.dumps(value)
            if value:
                return " ".join(str(value).split())
    return " ".join(text.split())


def invoke(endpoint: str, body: bytes, content_type: str = "text/csv", accept: str | None = None,
           timeout: float = 60.0, transport: Transport | None = None) -> InvocationResult:
    """POST body to the endpoint; return the 2xx answer.

    Raises:
        DataError: the endpoint refused the payload (4xx); the message is the endpoint's.
        GreenlightError: the endpoint failed (5xx) or could not be reached.
    """
    url = invocations_url(endpoint)
    headers = {"Content-Type": content_type}
    if accept:
        headers["Accept"] = accept
    try:
        response = (transport or UrllibTransport()).handle(HttpRequest("POST", url, headers, body, timeout))
    except TransportError as exc:
        raise GreenlightError(f"cannot reach the endpoint at {url}: {str(exc).split(': ', 1)[-1]}") from None
    if response.status >= 400:
        message = f"endpoint answered {response.status}: {error_message(response.body)}"
        raise DataError(message) if 400 <= response.status < 500 else GreenlightError(message)
    return InvocationResult(response.status, response.body, response.header("Content-Type") or "",
                            response.header(VERSION_HEADER))
