"""Function URL requests as Lambda sees them, and back (payload format 2.0; pure, no I/O).

    event = function_url_event("POST", "/invocations", "", {"Content-Type": "text/csv"}, b"1,2,3")
    status, headers, body = http_response(handler(event))

A Function URL hands the function an event of payload format 2.0 (the API Gateway HTTP API shape:
`rawPath`, `rawQueryString`, lower-cased `headers`, `requestContext.http.method`, `body`,
`isBase64Encoded`), and turns its answer back into HTTP: a dict with `statusCode` is taken as the
response (`headers`, `body`, `isBase64Encoded`, `cookies`); anything else is a 200 JSON body. A body
that is not text is passed base64-encoded, as Lambda does. `smoke_event` is the recorded smoke rows
as such an event, which the deployer sends to a function version before moving the alias.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from deploy.engine.smoke import SmokeMismatch, SmokeTest

__all__ = ["TEXT_TYPES", "function_url_event", "http_response", "smoke_event", "smoke_verdict"]

# Content types a Function URL passes as text (others are base64-encoded in the event)
TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript", "+json", "+xml",
              "application/x-www-form-urlencoded")


def _is_text(content_type: str, body: bytes) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind and not any(kind.startswith(t) or kind.endswith(t) for t in TEXT_TYPES):
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _query(raw: str) -> dict[str, str] | None:
    from urllib.parse import parse_qsl

    pairs: dict[str, list[str]] = {}
    for key, value in parse_qsl(raw, keep_blank_values=True):
        pairs.setdefault(key, []).append(value)
    return {k: ",".join(v) for k, v in pairs.items()} or None


def function_url_event(method: str, path: str, query: str, headers: Iterable[tuple[str, str]] | Mapping[str, str],
                       body: bytes, *, source_ip: str = "127.0.0.1", domain: str = "localhost",
                       now: float | None = None, request_id: str | None = None) -> dict[str, Any]:
    """The payload-2.0 event a Function URL gives the function for one HTTP request."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    merged: dict[str, str] = {}
    for name, value in items:
        key = name.lower()
        merged[key] = f"{merged[key]},{value}" if key in merged else value
    now = time.time() if now is None else now
    text = _is_text(merged.get("content-type", ""), body)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path or "/",
        "rawQueryString": query,
        "headers": merged,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": domain.split(".", 1)[0],
            "domainName": domain,
            "domainPrefix": domain.split(".", 1)[0],
            "http": {"method": method.upper(), "path": path or "/", "protocol": "HTTP/1.1",
                     "sourceIp": source_ip, "userAgent": merged.get("user-agent", "")},
            "requestId": request_id or str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": not text,
    }
    if query:
        event["queryStringParameters"] = _query(query)
    if body:
        event["body"] = body.decode("utf-8") if text else base64.b64encode(body).decode("ascii")
    return event


def http_response(result: Any) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) for what the function returned, as a Function URL answers it.

    Raises:
        ValueError: a statusCode that is not an HTTP status, or a base64 body that is not base64.
    """
    if isinstance(result, dict) and "statusCode" in result:
        status = int(result["statusCode"])
        if not 100 <= status <= 599:
            raise ValueError(f"statusCode {status} is not an HTTP status")
        headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
        raw = result.get("body")
        if raw is None:
            body = b""
        elif result.get("isBase64Encoded"):
            body = base64.b64decode(raw, validate=True)
        else:
            body = (raw if isinstance(raw, str) else json.dumps(raw)).encode("utf-8")
        if result.get("cookies"):
            headers["set-cookie"] = ", ".join(result["cookies"])
        headers.setdefault("content-type", "application/json")
        return status, headers, body
    return 200, {"content-type": "application/json"}, json.dumps(result).encode("utf-8")


def smoke_event(smoke: SmokeTest) -> dict[str, Any]:
    """The recorded smoke rows as the Function URL request `POST /` (what a client of the function sends)."""
    return function_url_event("POST", "/", "", {"content-type": smoke.content_type, "accept": smoke.accept},
                              smoke.body.encode("utf-8"), request_id="greenlight-smoke-test")


def smoke_verdict(response: Any, smoke: SmokeTest) -> str | None:
    """Why the function's answer to smoke_event fails the smoke test (None: it passes, bit for bit)."""
    try:
        status, _, body = http_response(response)
    except (ValueError, TypeError) as exc:
        return f"the function returned a malformed response ({exc})"
    if status != 200:
        text = body.decode("utf-8", "replace")
        try:
            doc = json.loads(text)
            text = f"{doc.get('error')}: {doc.get('message')}" if isinstance(doc, dict) and "error" in doc else text
        except ValueError:
            pass
        return f"it answered {status} ({' '.join(text.split())[:300]})"
    try:
        smoke.check(body)
    except SmokeMismatch as exc:
        return str(exc)
    return None
