"""The HTTP side of the local endpoint: SageMaker's container protocol on stdlib http.server.

`GET /ping` and `POST /invocations`, and beside them the SageMaker Runtime API's InvokeEndpoint
(`POST /endpoints/{EndpointName}/invocations`, deploy.endpoint.runtime_api: what an unmodified boto3
`sagemaker-runtime` client sends and parses), one thread per connection (HTTP/1.1 keep-alive), Nagle's
algorithm off on every accepted socket, the whole response written in one send. Every response
carries `X-Greenlight-Model-Version`; every error body is the serving contract's
(`src/serving_contract.py`: `{"error", "message", "row", "column"}`, the same as the Lambda's and
the SageMaker entry point's). Status codes:

    200  prediction (or /ping with a model available)
    4xx  the payload's fault: the inference code's PayloadError status (400/406/413/415), a
         ValueError from input_fn (400 bad_request), a body over the size limit (413
         payload_too_large), unknown path (404 not_found), chunked body (411 length_required)
    500  internal_error: a fault in the inference code (logged with its traceback); serving goes on
    503  model_unavailable: no model version is available, or it failed to load

The deployer's side channel (only with the per-server token the owner-only registration file holds,
header X-Greenlight-Token; without it these paths answer 404 like any unknown path, so live traffic
cannot reach a staged model):

    POST   /greenlight/staged               {"version", "model_dir", "digest"}: load it beside the serving
                                            model (200 once loaded; 503 with the reason if it cannot load)
    POST   /greenlight/staged/invocations   the staged model answers, as /invocations would (the probe)
    DELETE /greenlight/staged               drop the staged model

During a progressive rollout (issue 22, deploy.endpoint.split) a `Split` routes the rollout record's share of
/invocations to the new version's own slot and counts every answer (status, latency) per version.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
import time
from http import HTTPStatus
from http.server import ThreadingHTTPServer
from pathlib import Path

from deploy.endpoint.client import VERSION_HEADER
from deploy.endpoint import runtime_api
from deploy.endpoint.lifecycle import ContractHandler, ServedHTTP
from deploy.endpoint.loader import LoadedModel
from deploy.endpoint.runtime_api import RuntimeAnswer, RuntimeIdentity
from deploy.endpoint.slot import ModelSlot, ModelTarget, NoModelAvailable
from deploy.endpoint.split import Split
from greenlight.errors import ServingUnavailable
from src import serving_contract

__all__ = ["DEFAULT_ACCEPT", "DEFAULT_CONTENT_TYPE", "Endpoint", "EndpointServer", "MAX_BODY_BYTES", "STAGED_PATH",
           "TOKEN_HEADER", "VERSION_HEADER"]

logger = logging.getLogger(__name__)

STAGED_PATH = "/greenlight/staged"
TOKEN_HEADER = "X-Greenlight-Token"
DEFAULT_CONTENT_TYPE = "application/json"  # what SageMaker assumes when Content-Type is missing
DEFAULT_ACCEPT = "application/json"  # SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT's default
MAX_BODY_BYTES = serving_contract.SAGEMAKER_MAX_PAYLOAD_BYTES


def _json(payload: dict) -> bytes:
    return json.dumps(payload).encode("utf-8")


def _error_body(exc: BaseException) -> bytes:
    """The inference code's own JSON error body if it has one, else the contract's bad_request."""
    to_json = getattr(exc, "to_json", None)
    if callable(to_json):
        body = to_json()
        if isinstance(body, dict):
            return _json(body)
        return body.encode("utf-8") if isinstance(body, str) else bytes(body)
    return _json(serving_contract.error_body("bad_request", str(exc) or type(exc).__name__))


def _client_status(exc: BaseException, stage: str) -> int | None:
    """4xx for a client error, None for a fault of ours."""
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and 400 <= status < 500:
        return status
    if status is None and stage == "input" and isinstance(exc, ValueError):
        return 400
    return None


class _Handler(ContractHandler):
    server_version = "greenlight-endpoint"
    server: "EndpointServer"
    runtime_name: str | None = None  # set while answering InvokeEndpoint: answers take its shapes
    last_status = 0  # the status of the last answer (a Split counts it)

    def _send(self, status: int, body: bytes, content_type: str, version: str,
              extra: tuple[tuple[str, str], ...] = ()) -> None:
        name = self.runtime_name
        if name is not None:  # InvokeEndpoint: the container's error becomes SageMaker's ModelError
            self.runtime_name = None
            if status >= 400:
                answer = runtime_api.model_error(name, self.server.runtime, status, body)
                self._send(answer.status, answer.body, "application/json", version, answer.headers)
                return
            extra = ((runtime_api.VARIANT_HEADER, runtime_api.VARIANT), *extra)
        self.last_status = status
        close = self.close_connection
        head = (f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
                f"Server: {self.server_version}\r\n"
                f"Content-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\n"
                f"{VERSION_HEADER}: {version}\r\n"
                + "".join(f"{key}: {value}\r\n" for key, value in extra)
                + ("Connection: close\r\n" if close else "")
                + "\r\n")
        self.wfile.write(head.encode("latin-1") + body)
        self.log_request(status, len(body))

    def _send_runtime(self, answer: RuntimeAnswer) -> None:
        """An InvokeEndpoint error of the API itself (not the container's), as botocore parses it."""
        self.runtime_name = None
        self._send(answer.status, answer.body, "application/json", self.server.slot.version_hint(), answer.headers)

    def _send_json(self, status: int, payload: dict, version: str | None = None) -> None:
        self._send(status, _json(payload), "application/json",
                   version if version is not None else self.server.slot.version_hint())

    def _send_contract_error(self, code: str, message: str, version: str) -> None:
        """A contract error answered with the version that was asked (not the slot's hint)."""
        self._send_json(serving_contract.STATUS[code], serving_contract.error_body(code, message), version)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = self.path.split("?", 1)[0]
        if path != "/ping":
            self._send_error("not_found", f"no route {path!r}; GET /ping or POST /invocations")
            return
        slot = self.server.slot
        current = slot.current
        if current is not None:
            body = {"status": "healthy", "model_version": current.version, "loaded": True}
            wanted = slot.wanted
            if wanted is not None and wanted != current.version:  # a swap is pending, or failed
                body["pending_version"] = wanted
                error = slot.load_error()
                if error is not None:
                    body["pending_error"] = error
            split = self.server.split
            if split is not None and split.percent > 0:  # a rollout's share goes to another version
                body["split_percent"] = split.percent
            self._send_json(200, body, current.version)
            return
        try:
            target = slot.resolve()
        except Exception as exc:  # the source itself is broken: unhealthy, but keep serving
            logger.warning("ping: cannot ask the model source which version is current: %s", exc)
            target = None
        if target is None:
            self._send_contract_error("model_unavailable", "no model version is available", "none")
            return
        self._send_json(200, {"status": "healthy", "model_version": target.version, "loaded": False},
                        target.version)

    def do_POST(self) -> None:  # noqa: N802
        path = self.path.split("?", 1)[0]
        runtime_name = runtime_api.endpoint_name_of(path)
        self.runtime_name = runtime_name  # a refused body is the container's answer, as in SageMaker
        body = self._read_body(self.server.max_body_bytes)
        if body is None:
            return
        if runtime_name is not None and not self._runtime_checks(runtime_name):
            return
        if path.startswith(STAGED_PATH) and self._trusted():
            self._staged(path, body)
            return
        if path != "/invocations" and runtime_name is None:
            self._send_error("not_found", f"no route {path!r}; POST /invocations, GET /ping")
            return
        headers = self.headers
        content_type = headers.get("Content-Type") or DEFAULT_CONTENT_TYPE
        accept = headers.get("Accept") or DEFAULT_ACCEPT
        if accept.strip() == "*/*":
            accept = DEFAULT_ACCEPT
        split = self.server.split
        started = time.perf_counter()
        slot = self.server.slot if split is None else split.route(self.server.slot)
        try:
            model = slot.acquire()
        except NoModelAvailable as exc:
            if runtime_name is not None:
                self._send_runtime(runtime_api.not_ready(runtime_name, self.server.runtime, str(exc)))
            else:
                self._send_error("model_unavailable", str(exc))
            return
        except ServingUnavailable as exc:
            self._send_error("model_unavailable", str(exc))
            return
        except Exception:  # a bug of ours: answer, log, keep serving
            logger.exception("cannot get a model to serve this request")
            self._send_error("internal_error", "internal error while loading the model; see the endpoint's log")
            return
        try:
            self._invoke(model, body, content_type, accept)
        finally:
            slot.release()
        if split is not None:
            split.count(model.version, self.last_status, 1000.0 * (time.perf_counter() - started))

    def do_DELETE(self) -> None:  # noqa: N802
        path = self.path.split("?", 1)[0]
        if self._read_body(self.server.max_body_bytes) is None:
            return
        if path == STAGED_PATH and self._trusted():
            self._send_json(200, {"dropped": self.server.slot.unstage()})
            return
        self._send_error("not_found", f"no route {path!r}; POST /invocations, GET /ping")

    def _runtime_checks(self, name: str) -> bool:
        """InvokeEndpoint's own checks (the endpoint's name, the variant); False once answered."""
        identity = self.server.runtime
        if name not in identity.names:
            self._send_runtime(runtime_api.not_found(name, identity))
            return False
        variant = self.headers.get(runtime_api.TARGET_VARIANT_HEADER)
        if variant and variant != runtime_api.VARIANT:
            self._send_runtime(runtime_api.unknown_variant(name, variant, identity))
            return False
        return True

    # -- the deployer's side channel -------------------------------------------------------------

    def _trusted(self) -> bool:
        """The request carries this server's token (constant-time comparison)."""
        token = self.server.token
        given = self.headers.get(TOKEN_HEADER) or ""
        return token is not None and hmac.compare_digest(given.encode(), token.encode())

    def _staged(self, path: str, body: bytes) -> None:
        slot = self.server.slot
        if path == f"{STAGED_PATH}/invocations":
            model = slot.staged_model()
            if model is None:
                self._send_error("model_unavailable", "no model version is staged")
                return
            headers = self.headers
            self._invoke(model, body, headers.get("Content-Type") or DEFAULT_CONTENT_TYPE,
                         headers.get("Accept") or DEFAULT_ACCEPT)
            return
        if path != STAGED_PATH:
            self._send_error("not_found", f"no route {path!r}")
            return
        try:
            doc = json.loads(body)
            target = ModelTarget(str(doc["version"]), Path(doc["model_dir"]), doc.get("digest"))
        except (ValueError, KeyError, TypeError) as exc:
            self._send_error("bad_request", f"a staging request is {{\"version\", \"model_dir\", \"digest\"}}: {exc}")
            return
        try:
            loaded = slot.stage(target)
        except Exception as exc:  # the version's own code failed to load: the deployer reports it
            logger.error("cannot stage model version %s from %s: %s", target.version, target.model_dir, exc)
            self._send_contract_error("model_unavailable", f"cannot load model version {target.version}: "
                                      f"{type(exc).__name__}: {exc}", target.version)
            return
        self._send_json(200, {"staged": loaded.version, "load_seconds": loaded.load_seconds}, loaded.version)

    def _invoke(self, model, body: bytes, content_type: str, accept: str) -> None:
        stage = "input"
        try:
            data = model.parse(body, content_type, self.server.max_body_bytes)
            stage = "predict"
            out, out_type = model.finish(data, accept)
        except Exception as exc:
            status = _client_status(exc, stage)
            if status is None:
                logger.exception("model version %s failed in %s stage", model.version, stage)
                self._send_contract_error("internal_error", f"the inference code failed ({type(exc).__name__}); see "
                                          "the endpoint's log", model.version)
            else:
                self._send(status, _error_body(exc), "application/json", model.version)
            return
        self._send(200, out, out_type, model.version)


class EndpointServer(ThreadingHTTPServer):
    """ThreadingHTTPServer bound to a ModelSlot."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], slot: ModelSlot[LoadedModel], max_body_bytes: int = MAX_BODY_BYTES,
                 token: str | None = None, runtime: RuntimeIdentity | None = None, split: Split | None = None):
        self.slot = slot
        self.split = split  # a progressive rollout's traffic split (None: everything to `slot`)
        self.runtime = runtime if runtime is not None else RuntimeIdentity(frozenset())
        self.max_body_bytes = max_body_bytes
        self.token = token  # the deployer's side channel is open only to holders of this token
        super().__init__(address, _Handler)

    def handle_error(self, request, client_address) -> None:
        logger.debug("connection from %s ended with an error", client_address, exc_info=True)


class Endpoint(ServedHTTP):
    """The server plus its watcher thread (hot swap and idle drop every poll_seconds)."""

    name = "endpoint"

    def __init__(self, slot: ModelSlot[LoadedModel], host: str = "127.0.0.1", port: int = 8080, *,
                 poll_seconds: float = 1.0, max_body_bytes: int = MAX_BODY_BYTES, token: str | None = None,
                 runtime: RuntimeIdentity | None = None, split: Split | None = None):
        super().__init__()
        self.slot = slot
        self.split = split
        self.poll_seconds = poll_seconds
        self.token = token or secrets.token_urlsafe(32)  # what the registration file gives the deployer
        self.httpd = EndpointServer((host, port), slot, max_body_bytes, self.token, runtime, split)

    def tick(self) -> None:
        self.slot.tick()
        if self.split is not None:
            self.split.tick()
