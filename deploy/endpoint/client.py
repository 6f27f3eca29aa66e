"""One `POST /invocations` with urllib: what `greenlight invoke` sends to an endpoint."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass

from deploy.endpoint.server import VERSION_HEADER
from greenlight.errors import DataError, GreenlightError

__all__ = ["InvocationResult", "error_message", "invoke", "invocations_url"]


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
           timeout: float = 60.0) -> InvocationResult:
    """POST body to the endpoint; return the 2xx answer.

    Raises:
        DataError: the endpoint refused the payload (4xx); the message is the endpoint's.
        GreenlightError: the endpoint failed (5xx) or could not be reached.
    """
    url = invocations_url(endpoint)
    headers = {"Content-Type": content_type}
    if accept:
        headers["Accept"] = accept
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return InvocationResult(response.status, response.read(),
                                    response.headers.get("Content-Type", ""), response.headers.get(VERSION_HEADER))
    except urllib.error.HTTPError as exc:
        message = f"endpoint answered {exc.code}: {error_message(exc.read())}"
        raise (DataError(message) if 400 <= exc.code < 500 else GreenlightError(message)) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise GreenlightError(f"cannot reach the endpoint at {url}: {reason}") from None
