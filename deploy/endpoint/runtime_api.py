"""The SageMaker Runtime API's InvokeEndpoint on the local endpoint: routes, headers and error shapes (pure).

    POST /endpoints/{EndpointName}/invocations     what boto3's `sagemaker-runtime` client sends

The shapes are botocore's service model (sagemaker-runtime 2017-05-13, rest-json): request headers
Content-Type, Accept, X-Amzn-SageMaker-Custom-Attributes, X-Amzn-SageMaker-Target-Variant; response
header x-Amzn-Invoked-Production-Variant; an error is its HTTP status, the `x-amzn-ErrorType` header
(which botocore reads as the error code) and a JSON body with `Message` and the shape's own members:

    424 ModelError              the container answered 4xx/5xx: OriginalStatusCode, OriginalMessage
                                (the container's body), LogStreamArn
    400 ValidationError         "Endpoint X of account Y not found."; a variant the endpoint lacks
    429 ModelNotReadyException  the endpoint exists but nothing is deployed on it (a serverless variant
                                whose resources are not provisioned: not InService)

Where each wording comes from is in docs/aws-behaviour.md ("SageMaker Runtime on the local endpoint").
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from urllib.parse import unquote

__all__ = ["ERROR_TYPE_HEADER", "VARIANT", "VARIANT_HEADER", "RuntimeAnswer", "RuntimeIdentity", "endpoint_name_of",
           "model_error", "not_found", "not_ready", "unknown_variant"]

VARIANT = "AllTraffic"  # the one variant deploy/endpoint/aws_resources.py gives every endpoint config
VARIANT_HEADER = "x-Amzn-Invoked-Production-Variant"
TARGET_VARIANT_HEADER = "X-Amzn-SageMaker-Target-Variant"
ERROR_TYPE_HEADER = "x-amzn-ErrorType"
REQUEST_ID_HEADER = "x-amzn-RequestId"
_ROUTE = re.compile(r"^/endpoints/([^/]+)/invocations$")


@dataclass(frozen=True)
class RuntimeIdentity:
    """Which endpoint names this server answers to, and the account and region its errors name."""

    names: frozenset[str]
    account: str = "000000000000"
    region: str = "local"


@dataclass(frozen=True)
class RuntimeAnswer:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


def endpoint_name_of(path: str) -> str | None:
    """The EndpointName of an InvokeEndpoint path (URL-decoded), or None for any other path."""
    match = _ROUTE.match(path)
    return unquote(match.group(1)) if match else None


def _error(status: int, code: str, body: dict) -> RuntimeAnswer:
    headers = ((ERROR_TYPE_HEADER, code), (REQUEST_ID_HEADER, str(uuid.uuid4())))
    return RuntimeAnswer(status, headers, json.dumps(body).encode("utf-8"))


def not_found(name: str, identity: RuntimeIdentity) -> RuntimeAnswer:
    """An endpoint name this server does not serve, worded as SageMaker words it."""
    return _error(400, "ValidationError", {"Message": f"Endpoint {name} of account {identity.account} not found."})


def unknown_variant(name: str, variant: str, identity: RuntimeIdentity) -> RuntimeAnswer:
    return _error(400, "ValidationError", {"Message": f"Endpoint {name} of account {identity.account} does not "
                                                      f"have a variant named {variant}; it has {VARIANT}."})


def not_ready(name: str, identity: RuntimeIdentity, why: str) -> RuntimeAnswer:
    """The endpoint exists, nothing is deployed on it: not InService."""
    return _error(429, "ModelNotReadyException", {"Message": f"Endpoint {name} of account {identity.account} is not "
                                                             f"in service: {why}"})


def _log_group(name: str) -> str:
    return f"/aws/sagemaker/Endpoints/{name}"


def model_error(name: str, identity: RuntimeIdentity, status: int, original: bytes) -> RuntimeAnswer:
    """The container answered `status` (4xx or 5xx) with `original`: SageMaker's 424 ModelError."""
    text = original.decode("utf-8", errors="replace")
    kind = "client" if status < 500 else "server"
    message = (f"Received {kind} error ({status}) from primary with message \"{text}\". See the local endpoint's "
               f"log (log group {_log_group(name)} in account {identity.account}) for more information.")
    return _error(424, "ModelError", {
        "ErrorCode": f"{kind.upper()}_ERROR_FROM_MODEL", "Message": message, "OriginalStatusCode": status,
        "OriginalMessage": text,
        "LogStreamArn": f"arn:aws:logs:{identity.region}:{identity.account}:log-group:{_log_group(name)}"})
