"""Inference Lambda: Function URL / API Gateway HTTP API (payload format 2.0) events in, predictions out.

Composition root of the Lambda image: reads the environment, loads the model once per execution
environment (from GREENLIGHT_MODEL_DIR, else /opt/ml/model, else $LAMBDA_TASK_ROOT/model) with
inference.model_fn, and serves it with the same codecs and predictor as SageMaker. Routes:

    GET  /health, /ping           200 with the model's identity (503 if it failed to load)
    POST /, /invocations          input_fn -> predict_fn -> output_fn
    anything else                 404 / 405, as JSON

Client errors answer their PayloadError status (400/406/413/415) with its JSON body; the body
limit is GREENLIGHT_MAX_PAYLOAD_BYTES, else 6 MiB (Lambda's synchronous payload limit); a JSON
body nesting deeper than serving_contract.MAX_JSON_DEPTH answers 400, and so does an event that
is not a JSON object (a list, a string ...). A fault of ours answers 500 with a JSON body and the
execution environment keeps serving.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
from pathlib import Path

import capture
import inference
import serving_contract
from payload import JSON, PayloadError

__all__ = ["LAMBDA_MAX_PAYLOAD_BYTES", "handle", "lambda_handler", "load_model", "model_dir"]

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)

LAMBDA_MAX_PAYLOAD_BYTES = serving_contract.LAMBDA_MAX_PAYLOAD_BYTES
HEALTH_PATHS = frozenset({"/health", "/ping"})
INVOKE_PATHS = frozenset({"/", "/invocations"})

_loaded: dict = {}  # "model" or "error", set once per execution environment
capture.serving_as("lambda")  # capture records of this handler's predictions name the Lambda (capture.py)


def model_dir(environ=os.environ) -> Path:
    """Where the image keeps the model: GREENLIGHT_MODEL_DIR, /opt/ml/model, or $LAMBDA_TASK_ROOT/model."""
    if environ.get("GREENLIGHT_MODEL_DIR"):
        return Path(environ["GREENLIGHT_MODEL_DIR"])
    default = Path("/opt/ml/model")
    if default.is_dir() or not environ.get("LAMBDA_TASK_ROOT"):
        return default
    return Path(environ["LAMBDA_TASK_ROOT"]) / "model"


def load_model():
    """The model of this execution environment, loaded on first use; None if it cannot be loaded."""
    if not _loaded:
        directory = model_dir()
        try:
            _loaded["model"] = inference.model_fn(str(directory))
        except (inference.ModelIntegrityError, OSError) as exc:
            logger.error("cannot load the model from %s: %s", directory, exc)
            _loaded["error"] = f"{type(exc).__name__}: {exc}"
    return _loaded.get("model")


def lambda_handler(event, context):
    """The Lambda entry point (CMD lambda_function.lambda_handler)."""
    try:
        model = load_model()
        return handle(event, model, max_bytes=inference.max_payload_bytes(LAMBDA_MAX_PAYLOAD_BYTES),
                      load_error=_loaded.get("error"))
    finally:
        capture.answered()  # the capture extension writes this invocation's records after the answer


def handle(event: dict, model, *, max_bytes: int = LAMBDA_MAX_PAYLOAD_BYTES, load_error: str | None = None) -> dict:
    """One payload-2.0 event to its response; never raises. An event that is not a JSON object answers 400."""
    if not isinstance(event, dict):
        return _error(400, "bad_request", f"the event is a JSON {_json_kind(event)}; the function takes a Function "
                                          "URL or API Gateway HTTP API event (payload format 2.0), a JSON object")
    try:
        http = (event.get("requestContext") or {}).get("http") or {}
        method = str(http.get("method") or "GET").upper()
        path = event.get("rawPath") or http.get("path") or "/"
        if path in HEALTH_PATHS:
            if method not in ("GET", "HEAD"):
                return _error(405, "method_not_allowed", f"{path} takes GET")
            return _health(model, load_error)
        if path not in INVOKE_PATHS:
            return _error(404, "not_found", f"no route {path!r}; POST / or /invocations, GET /health")
        if method != "POST":
            return _error(405, "method_not_allowed", f"{path} takes POST")
        if model is None:
            return _error(503, "model_unavailable", load_error or "the model is not loaded")
        headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
        body = _body(event)
        data = inference.input_fn(body, headers.get("content-type") or JSON, max_bytes=max_bytes, model=model)
        out, out_type = inference.output_fn(inference.predict_fn(data, model), headers.get("accept") or JSON)
        return _response(200, out, out_type)
    except PayloadError as exc:
        logger.info("client error %s: %s", exc.status_code, exc.message)
        return _response(exc.status_code, exc.to_json(), JSON)
    except Exception:  # a fault of ours: answer 500, keep the execution environment serving
        logger.exception("unexpected error while handling the request")
        return _error(500, "internal_error", "the inference function failed; see its logs")


def _json_kind(value) -> str:
    kinds = ((bool, "boolean"), (int, "number"), (float, "number"), (str, "string"), (list, "array"))
    return "null" if value is None else next((name for kind, name in kinds if isinstance(value, kind)),
                                              type(value).__name__)


def _body(event: dict):
    body = event.get("body") or ""
    if not event.get("isBase64Encoded"):
        return body
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise PayloadError("bad_encoding", "isBase64Encoded is true, but the body is not valid base64") from None


def _health(model, load_error: str | None) -> dict:
    if model is None:
        return _error(503, "model_unavailable", load_error or "the model is not loaded")
    meta = model.metadata
    return _response(200, json.dumps({
        "status": "ok",
        "model_sha256": meta.get("model_sha256"),
        "forest_sha256": meta.get("forest_sha256"),
        "predictor": model.predictor_name,
        "feature_names": list(model.feature_names),
        "accepts_missing_values": model.schema.allow_nan,
        "versions": meta.get("versions", {}),
    }), JSON)


def _error(status: int, code: str, message: str) -> dict:
    return _response(status, serving_contract.error_json(code, message), JSON)


def _response(status: int, body: str, content_type: str) -> dict:
    return {"statusCode": status, "headers": {"content-type": content_type}, "body": body, "isBase64Encoded": False}


if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
    load_model()  # in the init phase, which runs at full CPU before the first request
    capture.start_lambda_extension()  # also only in the init phase: capture records written after each answer
