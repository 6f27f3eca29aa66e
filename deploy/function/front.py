"""The local Lambda's HTTP front: a Function URL on the `live` alias, and Lambda's Invoke API by version.

    front = FunctionFront(home, group, function).start()     # or serve_forever() (greenlight lambda serve)

Routes:

    POST /2015-03-31/functions/<function>/invocations[?Qualifier=<version or alias>]
        Lambda's Invoke API: the body is an event, the answer the handler's response as JSON, with
        X-Amz-Executed-Version. The deployer smoke-tests a new version here, by its number, before the
        alias moves. Errors as Lambda names them (x-amzn-ErrorType): ResourceNotFoundException 404,
        TooManyRequestsException 429 (throttled), InvalidRequestContentException 400.
    anything else
        the Function URL of the alias: the request becomes a payload-2.0 event (deploy.function.events),
        the alias's version answers it, and its response becomes the HTTP answer, with
        X-Greenlight-Model-Version (`<group>/<model version>`) and X-Greenlight-Function-Version. The
        handler's routes: POST / and /invocations predict, GET /health and /ping describe the model.
        Nothing behind the alias: 503 model_unavailable; throttled (`stop`): 429.

During a progressive rollout (issue 22) the rollout record (deploy.endpoint.split, target "lambda") gives the
new function version its share of the Function URL's requests, as the alias's AdditionalVersionWeights do on
AWS, and every answer is counted per model version while the record exists. While the front splits (a record
gives a share, or a request it routed by one still runs), its GET /ping and /health answers carry
`split_percent` and `split_in_flight`; unstage (a rollback, `deploy --abort`) returns only once both are gone.

Each function version is served by its own deploy.endpoint.slot.ModelSlot (cold start on the first
request, concurrent cold requests wait for one load, idle drop, a failed load not retried for
`retry_seconds`); the alias is read from the state file on every request (re-parsed only when it
changed). Moving the alias therefore sends the next request to the new version while requests already
running finish on the old one: nothing is refused. The deployer's smoke test has loaded the new version
through the Invoke API before the alias moves, so the first request after the move is warm.
"""

from __future__ import annotations

import json
import logging
import random
import re
import threading
import time
import urllib.parse
from http import HTTPStatus
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from deploy.endpoint.lifecycle import ContractHandler, ServedHTTP
from deploy.endpoint.slot import ModelSlot, ModelTarget
from deploy.endpoint.split import RolloutWatch, count
from deploy.function.events import function_url_event, http_response
from deploy.function.handler import LoadedFunction, load_function
from deploy.function.model import model_label
from deploy.function.state import TARGET, FunctionVersion, StateReader
from greenlight.errors import ServingUnavailable
from src import serving_contract

__all__ = ["FUNCTION_VERSION_HEADER", "FunctionFront", "INVOKE_PATH", "MAX_BODY_BYTES", "VERSION_HEADER"]

log = logging.getLogger(__name__)

VERSION_HEADER = "X-Greenlight-Model-Version"  # the same header as the local endpoint's
FUNCTION_VERSION_HEADER = "X-Greenlight-Function-Version"
MAX_BODY_BYTES = serving_contract.LAMBDA_MAX_PAYLOAD_BYTES  # Lambda's synchronous payload limit
INVOKE_PATH = re.compile(r"/2015-03-31/functions/(?P<function>[^/]+)/invocations")


class _Answer(Exception):
    """An answer the front gives itself (no version, throttled, unknown version)."""

    def __init__(self, status: int, body: dict[str, Any], error_type: str | None = None):
        super().__init__(body)
        self.status, self.body, self.error_type = status, body, error_type


class FunctionFront(ServedHTTP):
    """The HTTP front plus one ModelSlot per function version and a watcher thread (idle drop, pruned versions)."""

    name = "function-front"

    def __init__(self, home: Path, group: str, function: str, alias: str = "live", host: str = "127.0.0.1",
                 port: int = 0, *, idle_seconds: float = 300.0, poll_seconds: float = 1.0, retry_seconds: float = 30.0,
                 max_body_bytes: int = MAX_BODY_BYTES):
        super().__init__()
        self.group, self.function, self.alias = group, function, alias
        self.state = StateReader(home, group, function, alias)
        self.idle_seconds, self.poll_seconds, self.retry_seconds = idle_seconds, poll_seconds, retry_seconds
        self.max_body_bytes = max_body_bytes
        self._slots: dict[tuple[int, str], ModelSlot[LoadedFunction]] = {}
        self._slots_lock = threading.Lock()
        self.home = Path(home)
        self.rollout = RolloutWatch(home, group, TARGET)
        self._split_in_flight = 0  # Function URL requests routed by the rollout record, still running
        self._split_lock = threading.Lock()
        self.httpd = _Server((host, port), self)

    # -- what serves -------------------------------------------------------------------------

    def resolve(self, qualifier: str | None) -> FunctionVersion:
        """The version a qualifier names (None or the alias: the alias's version). Raises: _Answer."""
        state = self.state()
        if state.throttled:
            raise _Answer(429, {"Type": "User", "message": "Rate Exceeded.",
                                "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded"},
                          "TooManyRequestsException")
        if qualifier in (None, "", self.alias):
            version = state.live_version
            if version is None:
                raise _Answer(503, serving_contract.error_body(
                    "model_unavailable", f"alias {self.alias} of {self.function} points at no version: nothing is "
                                         "deployed"))
            return version
        version = state.versions.get(int(qualifier)) if qualifier.isdigit() else None
        if version is None:
            raise _Answer(404, {"Type": "User", "Message": f"Function not found: {self.function}:{qualifier}"},
                          "ResourceNotFoundException")
        return version

    def route(self, live: FunctionVersion) -> FunctionVersion:
        """The version that answers a Function URL request: the rollout's new one with its share, else the alias's."""
        record = self.rollout()
        if record is None:
            return live
        try:
            share, number = float(record["percent"]), int(record["number"])
        except (KeyError, TypeError, ValueError):
            return live
        new = self.state().versions.get(number)
        if new is None or new.number == live.number or share >= 100.0 or random.random() * 100.0 >= share:
            return live
        return new

    def split(self) -> dict[str, float | int]:
        """What /ping reports while the front splits the alias's traffic (empty: it does not)."""
        record, fields = self.rollout(), {}
        try:
            percent = float(record["percent"]) if record is not None else 0.0
        except (KeyError, TypeError, ValueError):
            percent = 0.0
        if 0.0 < percent < 100.0:
            fields["split_percent"] = percent
        if self._split_in_flight:
            fields["split_in_flight"] = self._split_in_flight
        return fields

    def invoke_routed(self, version: FunctionVersion, live: FunctionVersion, event: dict[str, Any]) -> dict[str, Any]:
        """`invoke`, counting the request as split while it runs on a version other than the alias's."""
        if version.number == live.number:
            return self.invoke(version, event)
        with self._split_lock:
            self._split_in_flight += 1
        try:
            return self.invoke(version, event)
        finally:
            with self._split_lock:
                self._split_in_flight -= 1

    def count(self, version: FunctionVersion, status: int, latency_ms: float) -> None:
        if self.rollout() is not None:
            count(self.home, self.group, TARGET, model_label(self.group, version.model_version), status, latency_ms)

    def _slot(self, version: FunctionVersion) -> ModelSlot[LoadedFunction]:
        key = (version.number, version.model_dir)  # a number reused after a lost state file is another version
        with self._slots_lock:
            slot = self._slots.get(key)
            if slot is None:
                target = ModelTarget(str(version.number), Path(version.model_dir))
                slot = self._slots[key] = ModelSlot(lambda: target, idle_seconds=self.idle_seconds,
                                                    loader=load_function, retry_seconds=self.retry_seconds)
            return slot

    def invoke(self, version: FunctionVersion, event: dict[str, Any]) -> dict[str, Any]:
        """Run one event on `version`'s handler (cold-loading it if its slot is empty)."""
        slot = self._slot(version)
        try:
            loaded = slot.acquire()
        except ServingUnavailable as exc:
            return {"statusCode": 503, "headers": {"content-type": "application/json"},
                    "body": serving_contract.error_json("model_unavailable", str(exc))}
        try:
            return loaded.invoke(event)
        finally:
            slot.release()

    def tick(self) -> None:
        """Drop idle versions; forget versions pruned from the state (none of their requests running)."""
        existing = {(n, v.model_dir) for n, v in self.state().versions.items()}
        with self._slots_lock:
            slots = list(self._slots.items())
        for key, slot in slots:
            slot.drop_if_idle()
            if key not in existing and slot.in_flight == 0:  # pruned: forget it
                with self._slots_lock:
                    self._slots.pop(key, None)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], front: FunctionFront):
        self.front = front
        super().__init__(address, _Handler)

    def handle_error(self, request, client_address) -> None:
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


class _Handler(ContractHandler):
    server_version = "greenlight-lambda"
    server: _Server

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}", f"Server: {self.server_version}",
                 f"Content-Length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() not in ("content-length", "connection")]
        if self.close_connection:
            lines.append("Connection: close")
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        self.log_request(status, len(body))

    def _send_json(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self._send(status, {"Content-Type": "application/json", VERSION_HEADER: "none", **(headers or {})},
                   json.dumps(body).encode("utf-8"))

    def _dispatch(self) -> None:
        body = self._read_body(self.server.front.max_body_bytes)
        if body is None:
            return
        path, _, query = self.path.partition("?")
        match = INVOKE_PATH.fullmatch(path)
        try:
            if match is not None and self.command == "POST":
                self._invoke_api(match["function"], query, body)
            else:
                self._function_url(path, query, body)
        except _Answer as answer:
            headers = {"x-amzn-ErrorType": answer.error_type} if answer.error_type else {}
            self._send_json(answer.status, answer.body, headers)

    def _invoke_api(self, function: str, query: str, body: bytes) -> None:
        front = self.server.front
        if urllib.parse.unquote(function) not in (front.function, f"{front.function}:{front.alias}"):
            raise _Answer(404, {"Type": "User", "Message": f"Function not found: {function}"},
                          "ResourceNotFoundException")
        qualifiers = urllib.parse.parse_qs(query).get("Qualifier")
        qualifier = qualifiers[0] if qualifiers else None
        version = front.resolve(qualifier)
        try:
            event = serving_contract.load_json(body or b"{}")
        except ValueError as exc:
            raise _Answer(400, {"Type": "User", "message": f"Could not parse request body into json: {exc}"},
                          "InvalidRequestContentException") from None
        result = front.invoke(version, event)
        self._send_json(200, result, {"X-Amz-Executed-Version": str(version.number),
                                      VERSION_HEADER: model_label(front.group, version.model_version)})

    def _function_url(self, path: str, query: str, body: bytes) -> None:
        front = self.server.front
        started = time.perf_counter()
        live = front.resolve(None)
        version = front.route(live)
        host = self.headers.get("Host") or f"{front.function}.lambda-url.localhost"
        event = function_url_event(self.command, path, query, self.headers.items(), body,
                                   source_ip=self.client_address[0], domain=host.split(":", 1)[0])
        result = front.invoke_routed(version, live, event)
        try:
            status, headers, out = http_response(result)
        except (ValueError, TypeError) as exc:  # what Lambda answers for a malformed function response
            log.error("function version %s returned a malformed response: %s", version.number, exc)
            status, headers, out = 502, {"content-type": "application/json"}, b'{"Message": "Internal Server Error"}'
        if self.command == "GET" and path in ("/ping", "/health") and status == 200:
            out = _with_split(out, front.split())
        headers = {**headers, VERSION_HEADER: model_label(front.group, version.model_version),
                   FUNCTION_VERSION_HEADER: str(version.number)}
        self._send(status, headers, out)
        front.count(version, status, 1000.0 * (time.perf_counter() - started))

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _dispatch  # noqa: N815


def _with_split(body: bytes, split: dict[str, float | int]) -> bytes:
    """A /ping or /health answer with the front's split added (unchanged when it does not split)."""
    if not split:
        return body
    try:
        answer = json.loads(body)
    except ValueError:
        return body
    return json.dumps({**answer, **split}).encode("utf-8") if isinstance(answer, dict) else body
