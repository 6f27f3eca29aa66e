"""The one error tree of Greenlight (host side; `src/` has its own, for the containers).

    GreenlightError                 anything Greenlight raises on purpose; the CLI prints its
    │                               message as one line and exits non-zero
    ├── UsageError                  the caller asked for something invalid (exit 2)
    │   ├── ParameterError          unknown pipeline parameter, or a value of the wrong type
    │   ├── DataError               unreadable or unusable input data
    │   └── NotFoundError           unknown model version, group, execution ...
    ├── ConfigurationError          a setting is missing (role, bucket, region ...) (exit 2)
    ├── DefinitionError             a pipeline definition uses a construct we cannot honour
    ├── ExecutionFailed             a pipeline execution ended Failed or Stopped
    ├── ConflictError               a concurrent change won; retry
    └── AwsError                    an AWS call failed; wraps botocore's ClientError
"""

from __future__ import annotations

__all__ = [
    "AwsError",
    "ConfigurationError",
    "ConflictError",
    "DataError",
    "DefinitionError",
    "ExecutionFailed",
    "GreenlightError",
    "NotFoundError",
    "ParameterError",
    "UsageError",
]


class GreenlightError(Exception):
    """Base of every error Greenlight raises on purpose."""

    exit_code = 1


class UsageError(GreenlightError):
    """The caller asked for something invalid."""

    exit_code = 2


class ParameterError(UsageError):
    """An unknown parameter, or a value that does not fit its type."""


class DataError(UsageError):
    """Input data that cannot be read or used."""


class NotFoundError(UsageError):
    """A named thing (model version, group, execution) does not exist."""


class ConfigurationError(GreenlightError):
    """A required setting is missing or invalid."""

    exit_code = 2


class DefinitionError(GreenlightError):
    """A pipeline definition uses a construct Greenlight cannot honour."""


class ExecutionFailed(GreenlightError):
    """A pipeline execution ended in Failed or Stopped."""


class ConflictError(GreenlightError):
    """A concurrent writer changed the same thing first."""


class AwsError(GreenlightError):
    """An AWS API call failed; the message names the operation and AWS's error code."""

    @classmethod
    def from_client_error(cls, operation: str, exc: Exception) -> "AwsError":
        response = getattr(exc, "response", {}) or {}
        err = response.get("Error", {})
        code = err.get("Code", type(exc).__name__)
        message = err.get("Message", str(exc))
        return cls(f"AWS {operation} failed: {code}: {message}")
