"""The one place botocore's errors become Greenlight's: every AWS adapter calls through here.

    with aws_errors("UpdateEndpoint"):          # ClientError -> AwsError naming the operation
        client.update_endpoint(...)
    aws_call("DescribeEndpoint", client.describe_endpoint, EndpointName=name)
    with aws_errors("DescribeEndpoint", on_missing=lambda: NotFoundError("no endpoint x")): ...

- `ClientError` -> `on_missing()` when AWS says the resource does not exist (when given), else
  `AwsError("AWS <operation> failed: <Code>: <Message>", code=...)`;
- `ParamValidationError` (the request failed botocore's own checks) -> `ParameterError`;
- any other `BotoCoreError` (no credentials, no region, endpoint unreachable) -> `AwsError` naming the
  operation and the cause in one line;
- `boto3.exceptions.Boto3Error` (S3 transfers) -> `AwsError`.
Every translation chains the original (`from exc`) for `--debug`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from greenlight.errors import AwsError, GreenlightError, ParameterError

__all__ = ["aws_call", "aws_errors", "error_code", "is_missing"]

T = TypeVar("T")

# Codes AWS services use for "no such resource" (SageMaker uses ValidationException + a message).
_MISSING_CODES = frozenset({"ResourceNotFound", "ResourceNotFoundException", "NoSuchEntity", "NoSuchKey",
                            "NoSuchBucket", "RepositoryNotFoundException", "ImageNotFoundException", "404",
                            "NotFound", "NotFoundException"})
_MISSING_PHRASES = ("does not exist", "not found", "could not find", "cannot find")


def error_code(exc: BaseException) -> str:
    """AWS's error code of a ClientError ('' for anything else)."""
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def is_missing(exc: BaseException) -> bool:
    """True when a ClientError says the named resource does not exist."""
    response = getattr(exc, "response", None) or {}
    err = response.get("Error", {})
    code, message = str(err.get("Code", "")), str(err.get("Message", "")).lower()
    if code in _MISSING_CODES:
        return True
    return code in {"ValidationException", "ValidationError"} and any(p in message for p in _MISSING_PHRASES)


@contextmanager
def aws_errors(operation: str, on_missing: Callable[[], GreenlightError] | None = None) -> Iterator[None]:
    """Translate botocore/boto3 errors raised inside the block (see the module docstring)."""
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

    try:
        yield
    except ClientError as exc:
        if on_missing is not None and is_missing(exc):
            raise on_missing() from exc
        err = exc.response.get("Error", {})
        code = str(err.get("Code", type(exc).__name__))
        message = " ".join(str(err.get("Message", exc)).split())
        raise AwsError(f"AWS {operation} failed: {code}: {message}", code=code, operation=operation) from exc
    except ParamValidationError as exc:
        raise ParameterError(f"invalid {operation} request: {' '.join(str(exc).split())}") from exc
    except (BotoCoreError, Boto3Error) as exc:
        raise AwsError(f"AWS {operation} failed: {' '.join(str(exc).split())}",
                       code=type(exc).__name__, operation=operation) from exc


def aws_call(operation: str, fn: Callable[..., T], /, *args: Any,
             on_missing: Callable[[], GreenlightError] | None = None, **kwargs: Any) -> T:
    """fn(*args, **kwargs) inside aws_errors(operation, on_missing)."""
    with aws_errors(operation, on_missing):
        return fn(*args, **kwargs)
