"""What a batch target is: one Batch Transform definition for both modes, checked before anything runs.

`BatchConfig` holds SageMaker Batch Transform's semantics (what CreateTransformJob takes) and the
EventBridge Scheduler schedule that starts it. The local runner and the AWS request builders both
read it, so the two modes cannot drift. Field names read as environment-variable suffixes
(`max_payload_mb` <- GREENLIGHT_BATCH_MAX_PAYLOAD_MB, see `from_env`).

Service rules encoded here, with their sources:

- CreateTransformJob (SageMaker API reference, and botocore's sagemaker service model):
  `MaxPayloadInMB` "cannot be greater than 100 MB", must be at least the size of one record, default
  6 MB; 0 is "for cases where the payload might be arbitrarily large and is transmitted using HTTP
  chunked encoding ... works only in supported algorithms". A MultiRecord mini-batch is "as many
  records as can fit within the MaxPayloadInMB limit", which 0 leaves undefined, so 0 is accepted
  with SingleRecord only (our reading: the documentation does not state this combination rule).
  `BatchStrategy` MultiRecord | SingleRecord needs `SplitType` Line. `AssembleWith` None | Line;
  `DataProcessing.JoinSource` None | Input ("for CSV data, SageMaker ... appending each transformed
  row to the end of the input"). `TransformResources.InstanceType` is one of the service model's
  TransformInstanceType values (copied here, so checking touches no disk; a unit test compares them
  with botocore's); `InstanceCount` >= 1. Several instances split the input files
  between them by S3 key (ShardedByS3Key); Batch Transform does this by itself, there is no setting.
- EventBridge Scheduler (API reference CreateSchedule, RetryPolicy, DeadLetterConfig, Target):
  `RetryPolicy.MaximumRetryAttempts` 0-185, `MaximumEventAgeInSeconds` 60-86400; the dead-letter
  queue is an SQS queue ARN (`arn:aws[a-z-]*:sqs:<region>:<account>:<name>`); `RoleArn` an IAM role
  ARN; schedule `Name` 1-64 of `[0-9a-zA-Z-_.]`; `ScheduleExpressionTimezone` at most 50 characters
  (an IANA name, checked with zoneinfo); expressions as `deploy.batch.expressions` documents.
- TransformJobName is `[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}`. A scheduled job is named
  `<job_name_prefix>-<aws.scheduler.execution-id>`; the execution id's length is not documented
  (the example, d32c5kddcf5bb8c3, has 16 characters), so the prefix keeps 36 characters free for it.

Defaults work on a bare machine: only `input` and `output` have none (a job needs them; `require_io`
says so; the local batch target defaults them to folders under GREENLIGHT_HOME), and `role_arn` and
`dead_letter_arn` matter only for AWS. `schedule_name` and `job_name_prefix` default to names derived
from the model package group by deploy/names.py (`<group>-batch`; the group in lower case, or its head
and a hash beyond 26 characters: `names_for`), so two groups in one account never share a schedule,
any group SageMaker allows has a job name prefix, and the deploy stack's policies can name what the
engine touches (the stack is given the same derived prefix).

The target's own settings (deploy.config nests this model as DeployConfig's `batch` section, read
from greenlight.toml `[batch]` and GREENLIGHT_BATCH_* like every other section): `enabled`,
`retention` (SageMaker Models kept for rollback), and on AWS the smoke test: `smoke_transform` runs
the recorded smoke rows through a real Batch Transform job of the new version before the schedule
moves to it, waiting at most `smoke_timeout_seconds`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from deploy.batch.expressions import ScheduleExpressionError, parse_schedule_expression
from deploy.names import TRANSFORM_JOB_PREFIX, GroupNames
from greenlight.errors import ConfigurationError

__all__ = [
    "ENV_PREFIX",
    "MAX_PAYLOAD_LIMIT_MB",
    "TRANSFORM_INSTANCE_TYPES",
    "BatchConfig",
    "BatchStrategy",
    "JoinSource",
    "config_error",
    "parse_batch_config",
]

ENV_PREFIX = "GREENLIGHT_BATCH_"
MAX_PAYLOAD_LIMIT_MB = 100
MB = 1024 * 1024
EXECUTION_ID_RESERVE = 63 - 1 - TRANSFORM_JOB_PREFIX.max_length  # deploy/names.py says why 36
_S3_URI = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
_SQS_ARN = re.compile(r"^arn:aws[a-z-]*:sqs:[a-z0-9-]+:\d{12}:[a-zA-Z0-9_-]+$")
_SCHEDULE_NAME = re.compile(r"^[0-9a-zA-Z_.-]{1,64}$")
_JOB_PREFIX = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")
# TransformResources.InstanceType's values in botocore's sagemaker service model (a unit test compares).
_INSTANCE_SIZES = {
    "m4": "xlarge 2xlarge 4xlarge 10xlarge 16xlarge",
    "c4": "xlarge 2xlarge 4xlarge 8xlarge",
    "p2": "xlarge 8xlarge 16xlarge",
    "p3": "2xlarge 8xlarge 16xlarge",
    "c5": "xlarge 2xlarge 4xlarge 9xlarge 18xlarge",
    "m5": "large xlarge 2xlarge 4xlarge 12xlarge 24xlarge",
    "m6i": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 32xlarge",
    "c6i": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 32xlarge",
    "r6i": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 32xlarge",
    "m7i": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 48xlarge",
    "c7i": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 48xlarge",
    "r7i": "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 48xlarge",
    "g4dn": "xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge",
    "g5": "xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 48xlarge",
    "trn1": "2xlarge 32xlarge",
    "inf2": "xlarge 8xlarge 24xlarge 48xlarge",
    "g6": "xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 48xlarge",
    "g6e": "xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge 48xlarge",
}
TRANSFORM_INSTANCE_TYPES = frozenset(f"ml.{family}.{size}" for family, sizes in _INSTANCE_SIZES.items()
                                     for size in sizes.split())

# One line per field: the rule, said when pydantic's own type check fails.
RULES = {
    "input": "an s3://bucket/prefix or a local folder",
    "output": "an s3://bucket/prefix or a local folder, outside the input",
    "content_type": "TransformInput.ContentType: text/csv (what Greenlight's models read)",
    "accept": "TransformOutput.Accept: text/csv",
    "split_type": "TransformInput.SplitType: Line (one record per line)",
    "strategy": "BatchStrategy: MultiRecord or SingleRecord",
    "max_payload_mb": f"MaxPayloadInMB: a whole number 0-{MAX_PAYLOAD_LIMIT_MB}",
    "assemble_with": "TransformOutput.AssembleWith: Line",
    "join_source": "DataProcessing.JoinSource: None or Input",
    "instance_type": "TransformResources.InstanceType, e.g. ml.m5.large",
    "instance_count": "TransformResources.InstanceCount: a whole number >= 1",
    "schedule": "cron(...) or rate(...) as EventBridge Scheduler reads them",
    "timezone": "an IANA time zone name such as UTC or Europe/Paris",
    "max_retry_attempts": "RetryPolicy.MaximumRetryAttempts: 0-185",
    "max_event_age_seconds": "RetryPolicy.MaximumEventAgeInSeconds: 60-86400",
    "dead_letter_arn": "DeadLetterConfig.Arn: an SQS queue ARN",
    "role_arn": "Target.RoleArn: an IAM role ARN",
    "schedule_name": "schedule Name: 1-64 of letters, digits, - _ .",
    "job_name_prefix": f"1-{63 - 1 - EXECUTION_ID_RESERVE} of [a-zA-Z0-9-], starting and ending alphanumeric",
    "enabled": "true or false: whether approvals move a batch schedule",
    "retention": "a whole number 0-100: older SageMaker Models kept for rollback",
    "smoke_transform": "true or false: smoke-test a version with a Batch Transform job on AWS",
    "smoke_timeout_seconds": "seconds above 0, at most 3600: the wait for the smoke transform job",
}
JOB_PREFIX_LIMIT = TRANSFORM_JOB_PREFIX.max_length


class BatchStrategy(str, Enum):
    """CreateTransformJob's BatchStrategy."""

    MULTI_RECORD = "MultiRecord"
    SINGLE_RECORD = "SingleRecord"

    def __str__(self) -> str:
        return self.value


class JoinSource(str, Enum):
    """DataProcessing.JoinSource: Input appends each prediction to its input line."""

    NONE = "None"
    INPUT = "Input"

    def __str__(self) -> str:
        return self.value


class BatchConfig(BaseModel):
    """A batch target: Batch Transform semantics plus its schedule. Frozen; unknown fields refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: str | None = None
    output: str | None = None
    content_type: Literal["text/csv"] = "text/csv"
    accept: Literal["text/csv"] = "text/csv"
    split_type: Literal["Line"] = "Line"
    strategy: BatchStrategy = BatchStrategy.MULTI_RECORD
    max_payload_mb: int = 6
    assemble_with: Literal["Line"] = "Line"
    join_source: JoinSource = JoinSource.NONE
    instance_type: str = "ml.m5.large"
    instance_count: int = 1
    schedule: str = "cron(0 2 * * ? *)"
    timezone: str = "UTC"
    # Small on purpose: each attempt gets a new execution id, hence a new job name, so a retry after
    # an ambiguous failure could start a second job.
    max_retry_attempts: int = 2
    max_event_age_seconds: int = 3600
    dead_letter_arn: str | None = None
    role_arn: str | None = None
    schedule_name: str | None = None  # default: <group>-batch (names_for)
    job_name_prefix: str | None = None  # default: derived from the group's name (names_for)
    enabled: bool = True
    retention: int = Field(3, ge=0, le=100)
    smoke_transform: bool = True
    # the approval Lambda itself stops at 900 s; the next reconcile finds the smoke job by its name
    smoke_timeout_seconds: float = Field(600.0, gt=0, le=3600)

    @property
    def join_input(self) -> bool:
        return self.join_source is JoinSource.INPUT

    @property
    def max_payload_bytes(self) -> int | None:
        """The mini-batch limit in bytes (1 MB = 1,048,576 bytes); None for 0 (no limit)."""
        return self.max_payload_mb * MB or None

    def require_io(self) -> tuple[str, str]:
        """(input, output). Raises: ConfigurationError naming what is missing."""
        missing = [f"{name} ({ENV_PREFIX}{name.upper()})" for name in ("input", "output") if not getattr(self, name)]
        if missing:
            raise ConfigurationError(f"the batch target needs {' and '.join(missing)}")
        return self.input, self.output

    def names_for(self, group: str) -> BatchConfig:
        """This configuration with schedule_name and job_name_prefix filled in for `group`: the configured
        ones, else the names deploy/names.py derives (`<group>-batch`; the group in lower case when it fits
        26 characters, else its head and a hash).

        Raises:
            NameDerivationError: no name can be derived (not for any group SageMaker allows).
        """
        prefix = self.job_name_prefix or GroupNames(group).job_prefix
        return self.model_copy(update={"schedule_name": self.schedule_name_for(group), "job_name_prefix": prefix})

    def schedule_name_for(self, group: str) -> str:
        """The schedule's name: schedule_name, else `<group>-batch` (fitted by deploy/names.py)."""
        return self.schedule_name or GroupNames(group).batch_schedule

    @field_validator("input", "output")
    @classmethod
    def _location(cls, value: str | None, info) -> str | None:
        if value is None:
            return None
        if not value.strip() or "\0" in value:
            raise ValueError(f"{info.field_name}: {value!r} is not a location; {RULES[info.field_name]}")
        if value.startswith("s3://") and not _S3_URI.match(value):
            raise ValueError(f"{info.field_name}: {value!r} is not an S3 URI (s3://bucket/prefix, bucket names "
                             "3-63 of a-z 0-9 . -)")
        if "://" in value and not value.startswith("s3://"):
            raise ValueError(f"{info.field_name}: {value!r}: only s3:// URIs and local folders are supported")
        return value

    @field_validator("max_payload_mb")
    @classmethod
    def _payload(cls, value: int) -> int:
        if not 0 <= value <= MAX_PAYLOAD_LIMIT_MB:
            raise ValueError(f"max_payload_mb: {value} is outside 0-{MAX_PAYLOAD_LIMIT_MB} (CreateTransformJob "
                             "MaxPayloadInMB cannot be greater than 100 MB)")
        return value

    @field_validator("instance_type")
    @classmethod
    def _instance_type(cls, value: str) -> str:
        if value not in TRANSFORM_INSTANCE_TYPES:
            raise ValueError(f"instance_type: {value!r} is not a Batch Transform instance type "
                             "(TransformInstanceType, e.g. ml.m5.large, ml.c5.xlarge)")
        return value

    @field_validator("instance_count")
    @classmethod
    def _instance_count(cls, value: int) -> int:
        if value < 1:
            raise ValueError(f"instance_count: {value} is below 1 (TransformResources.InstanceCount)")
        return value

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        try:
            parse_schedule_expression(value)
        except ScheduleExpressionError as exc:
            raise ValueError(f"schedule: {exc}") from None
        return value.strip()

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        if not 1 <= len(value) <= 50:
            raise ValueError(f"timezone: {value!r} is not 1-50 characters (ScheduleExpressionTimezone)")
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timezone: {value!r} is not a known time zone (an IANA name such as UTC, "
                             "America/New_York)") from None
        return value

    @field_validator("max_retry_attempts")
    @classmethod
    def _retries(cls, value: int) -> int:
        if not 0 <= value <= 185:
            raise ValueError(f"max_retry_attempts: {value} is outside 0-185 (RetryPolicy.MaximumRetryAttempts)")
        return value

    @field_validator("max_event_age_seconds")
    @classmethod
    def _event_age(cls, value: int) -> int:
        if not 60 <= value <= 86400:
            raise ValueError(f"max_event_age_seconds: {value} is outside 60-86400 "
                             "(RetryPolicy.MaximumEventAgeInSeconds)")
        return value

    @field_validator("dead_letter_arn")
    @classmethod
    def _dead_letter(cls, value: str | None) -> str | None:
        if value is not None and not (_SQS_ARN.match(value) and len(value) <= 1600):
            raise ValueError(f"dead_letter_arn: {value!r} is not an SQS queue ARN "
                             "(arn:aws:sqs:<region>:<account>:<queue name>; FIFO queues are not accepted)")
        return value

    @field_validator("role_arn")
    @classmethod
    def _role(cls, value: str | None) -> str | None:
        if value is not None and not (_ROLE_ARN.match(value) and len(value) <= 1600):
            raise ValueError(f"role_arn: {value!r} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)")
        return value

    @field_validator("schedule_name")
    @classmethod
    def _schedule_name(cls, value: str | None) -> str | None:
        if value is not None and not _SCHEDULE_NAME.match(value):
            raise ValueError(f"schedule_name: {value!r} is not 1-64 of letters, digits, '-', '_' and '.'")
        return value

    @field_validator("job_name_prefix")
    @classmethod
    def _job_prefix(cls, value: str | None) -> str | None:
        limit = JOB_PREFIX_LIMIT
        if value is not None and (not _JOB_PREFIX.match(value) or len(value) > limit):
            raise ValueError(f"job_name_prefix: {value!r} must be 1-{limit} characters of letters, digits and "
                             "'-', starting and ending with a letter or digit (TransformJobName "
                             "[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}, with room for the execution id)")
        return value

    @model_validator(mode="after")
    def _combinations(self) -> BatchConfig:
        if self.max_payload_mb == 0 and self.strategy is BatchStrategy.MULTI_RECORD:
            raise ValueError("max_payload_mb: 0 (no limit, HTTP chunked encoding) leaves a MultiRecord mini-batch "
                             "unbounded; use 1-100 or strategy SingleRecord")
        if self.input and self.output and _inside(self.output, self.input):
            raise ValueError(f"output: {self.output!r} is inside the input {self.input!r}; the next job would "
                             "read its own results")
        return self

    @classmethod
    def from_env(cls, environ: Mapping[str, str], prefix: str = ENV_PREFIX) -> BatchConfig:
        """The configuration from `<prefix><FIELD>` variables. Raises: ConfigurationError."""
        data = {key[len(prefix):].lower(): value for key, value in environ.items() if key.startswith(prefix)}
        return parse_batch_config(data, name=lambda f: f"{prefix}{f.upper()}")


def parse_batch_config(data: Mapping, name: Callable[[str], str] = str) -> BatchConfig:
    """BatchConfig from a mapping (a file's section, flags). Raises: ConfigurationError, every bad field."""
    try:
        return BatchConfig.model_validate(dict(data))
    except ValidationError as exc:
        raise config_error(exc, name) from None


def config_error(exc: ValidationError, name: Callable[[str], str] = str,
                 heading: str = "invalid batch configuration") -> ConfigurationError:
    """One ConfigurationError listing every bad field (joined by '; '), each naming the field and rule."""
    problems = []
    for error in exc.errors(include_url=False):
        loc = [str(part) for part in error.get("loc", ())]
        field = loc[0] if loc else ""
        message = str(error.get("msg", ""))
        if error.get("type") == "value_error":
            message = message.removeprefix("Value error, ")
            field, sep, rest = message.partition(": ")
            problems.append(f"{name(field)}: {rest}" if sep and field in RULES else message)
        elif error.get("type") == "extra_forbidden":
            problems.append(f"{name(field)}: unknown setting (known: {', '.join(name(k) for k in RULES)})")
        else:
            got = error.get("input")
            problems.append(f"{name(field)}: {message} (got {got!r}); {RULES.get(field, '')}".rstrip("; "))
    return ConfigurationError(f"{heading}: {'; '.join(problems)}")


def _inside(inner: str, outer: str) -> bool:
    """Whether location `inner` is at or below `outer`: an S3 prefix matches every key starting with
    it (so s3://b/in-results is inside s3://b/in); local folders are compared as absolute paths."""
    if inner.startswith("s3://") or outer.startswith("s3://"):
        return inner.startswith(outer)
    a, b = os.path.abspath(inner), os.path.abspath(outer)
    return a == b or a.startswith(b.rstrip(os.sep) + os.sep)
