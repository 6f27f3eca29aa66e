"""The one error tree of Greenlight (host side; `src/` has its own, for the containers).

    GreenlightError                 anything Greenlight raises on purpose; the CLI prints its
    │                               message as one line and exits with `exit_code` (1 unless below)
    ├── UsageError                  the caller asked for something invalid (exit 2)
    │   ├── ParameterError          unknown pipeline parameter, or a value of the wrong type
    │   ├── DataError               unreadable or unusable input data
    │   ├── NotFoundError           unknown model version, group, execution ...
    │   └── PromotionRefused        `greenlight promote` refused: not Approved, or not past the previous
    │                               stage (the rule: deploy.engine.stages.why_not_promotable)
    ├── ConfigurationError          a setting is missing or out of its limits (region, role ...) (exit 2)
    ├── DefinitionError             a pipeline definition uses a construct we cannot honour
    ├── ExecutionFailed             a pipeline execution ended Failed or Stopped
    │   └── JobFailed               one local Processing/Training job exited non-zero (pipelines.local.jobs)
    ├── ConflictError               a concurrent change won, or a lock stayed taken; retry
    ├── ServingUnavailable          no model version can serve (none deployed, or it failed to load) (HTTP 503)
    ├── DeploymentFailed            a target could not be brought to a version; the last good one serves
    ├── WaitTimeout                 a bounded wait (pipeline execution, endpoint update ...) ran out
    ├── ImageError                  a container registry step failed, or an image cannot be used as asked;
    │                               names the registry, repository, step and HTTP status (deploy.image)
    ├── StorageError                the local disk refused a read or write (no space, read-only, permission,
    │                               I/O error); names the filesystem and the path; made only by
    │                               greenlight.os_errors (OSError and sqlite3 errors)
    └── AwsError                    an AWS call failed; made only by greenlight.aws_errors

Exit codes: 0 success, 1 a GreenlightError, 2 a usage or configuration error (and click's own
usage errors), 130 interrupted (Ctrl-C). An unexpected exception (a bug) is exit 1 with one line
naming where its traceback was written (`greenlight.cli.main`).
"""

from __future__ import annotations

__all__ = [
    "AwsError",
    "ConfigurationError",
    "ConflictError",
    "DataError",
    "DefinitionError",
    "DeploymentFailed",
    "ExecutionFailed",
    "GreenlightError",
    "ImageError",
    "NotFoundError",
    "ParameterError",
    "PromotionRefused",
    "ServingUnavailable",
    "StorageError",
    "UsageError",
    "WaitTimeout",
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


class PromotionRefused(UsageError):
    """`greenlight promote` refused: the version is not Approved, or has not passed the previous stage."""


class ConfigurationError(GreenlightError):
    """A required setting is missing or invalid."""

    exit_code = 2


class DefinitionError(GreenlightError):
    """A pipeline definition uses a construct Greenlight cannot honour."""


class ExecutionFailed(GreenlightError):
    """A pipeline execution ended in Failed or Stopped."""


class ConflictError(GreenlightError):
    """A concurrent writer changed the same thing first, or a lock stayed taken."""


class ServingUnavailable(GreenlightError):
    """No model version can serve right now: none is deployed, or the one named failed to load."""


class DeploymentFailed(GreenlightError):
    """A target could not be brought to the desired version; it keeps its last good version."""

    step: str | None = None  # the deploy step it stopped at, when the engine knows it ("probe": the smoke test)


class WaitTimeout(GreenlightError):
    """A bounded wait ran out before the awaited state was reached."""


class ImageError(GreenlightError):
    """A container registry step failed, or an image cannot be used as asked (an image index, a foreign layer).

    The message names the registry, the repository, the step and the HTTP status when there was one;
    they are attributes too (`status` is None when no HTTP answer came: refused, timed out).
    """

    def __init__(self, message: str, *, registry: str | None = None, repository: str | None = None,
                 step: str | None = None, status: int | None = None):
        super().__init__(message)
        self.registry = registry
        self.repository = repository
        self.step = step
        self.status = status


class StorageError(GreenlightError):
    """The local disk refused a read or write: no space left, a read-only filesystem, no permission, an I/O error.

    The message names the condition, the filesystem (its mount point) and the path, e.g. "no space left on
    /mnt while writing /mnt/home/registry.sqlite3"; `path` and `errno` are attributes too (errno None for
    a SQLite error that carries none).
    """

    def __init__(self, message: str, *, path: str | None = None, errno: int | None = None):
        super().__init__(message)
        self.path = path
        self.errno = errno


class AwsError(GreenlightError):
    """An AWS API call failed; the message names the operation and AWS's error code.

    `code` is AWS's error code (e.g. "ValidationException"), or the botocore exception's class
    name for failures that never reached AWS (no credentials, endpoint unreachable).
    """

    def __init__(self, message: str, code: str | None = None, operation: str | None = None):
        super().__init__(message)
        self.code = code
        self.operation = operation
