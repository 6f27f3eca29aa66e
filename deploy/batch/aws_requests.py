"""The AWS requests of a batch target, built and read back without calling AWS (pure: no boto3).

    transform_job_input(config, model)      CreateTransformJob request, with Scheduler placeholders
    schedule_request(config, model, state)  CreateSchedule / UpdateSchedule request (the same shape)
    model_from_schedule(schedule)           the ModelRef a schedule starts jobs with (observing)
    substitute_context(text, ...)           what EventBridge Scheduler does to Input when it fires

The schedule's target is the universal target `arn:aws:scheduler:::aws-sdk:sagemaker:createTransformJob`
(EventBridge Scheduler User Guide, "Using universal targets"); its `Input` is the CreateTransformJob
request as JSON. EventBridge Scheduler substitutes context attributes in `Input` when it invokes the
target (managing-schedule-context-attributes.html): `<aws.scheduler.execution-id>` is "the unique ID
that EventBridge Scheduler assigns for each attempted invocation" (example d32c5kddcf5bb8c3), so the job
name `<prefix>-<aws.scheduler.execution-id>` is new on every run and every retry, and matches
TransformJobName's pattern; `<aws.scheduler.scheduled-time>` (2022-03-22T18:59:43Z) has ':' and
cannot go in a name. Each run writes under `<output>/<job name>/`.

The model version travels in the job's Tags (`greenlight:model-package-group`,
`greenlight:model-version`) next to `ModelName` (the SageMaker Model of that version, named by the
caller), so reading a schedule back tells which version it runs, and each job is tagged with it.
The transform job's Environment sets `GREENLIGHT_MAX_PAYLOAD_BYTES` to MaxPayloadInMB, so the model's
own payload check (4 MiB by default) lets through the mini-batches the job sends.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from deploy.batch.config import MB, BatchConfig
from greenlight.errors import ConfigurationError, DataError

__all__ = [
    "EXECUTION_ID",
    "GROUP_TAG",
    "SCHEDULED_TIME",
    "SCHEDULE_ARN",
    "TRANSFORM_TARGET_ARN",
    "VERSION_TAG",
    "ModelRef",
    "ScheduleInputError",
    "model_from_schedule",
    "model_from_transform_request",
    "schedule_request",
    "substitute_context",
    "transform_job_input",
    "update_request_from",
]

TRANSFORM_TARGET_ARN = "arn:aws:scheduler:::aws-sdk:sagemaker:createTransformJob"
EXECUTION_ID = "<aws.scheduler.execution-id>"
SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"
SCHEDULE_ARN = "<aws.scheduler.schedule-arn>"
ATTEMPT_NUMBER = "<aws.scheduler.attempt-number>"
GROUP_TAG = "greenlight:model-package-group"
VERSION_TAG = "greenlight:model-version"
PAYLOAD_ENV = "GREENLIGHT_MAX_PAYLOAD_BYTES"
# The members of a GetSchedule response that CreateSchedule/UpdateSchedule also take.
_WRITABLE = ("Name", "GroupName", "ScheduleExpression", "StartDate", "EndDate", "Description",
             "ScheduleExpressionTimezone", "State", "KmsKeyArn", "Target", "FlexibleTimeWindow",
             "ActionAfterCompletion")


class ScheduleInputError(DataError):
    """A schedule's Input is not what Greenlight writes (edited by hand, or another tool's)."""


@dataclass(frozen=True)
class ModelRef:
    """The model version a batch target runs: its registry group and version, and its SageMaker Model."""

    group: str
    version: int
    model_name: str

    @property
    def label(self) -> str:
        return f"{self.group}/{self.version}"


def transform_job_input(config: BatchConfig, model: ModelRef, *, local: bool = False) -> dict[str, Any]:
    """The CreateTransformJob request a scheduled run sends, `<aws.scheduler.execution-id>` unresolved.

    Raises:
        ConfigurationError: input or output is unset, or (unless `local`) not an s3:// URI.
    """
    source, destination = config.require_io()
    if not local:
        bad = [f"{name} {value!r}" for name, value in (("input", source), ("output", destination))
               if not value.startswith("s3://")]
        if bad:
            raise ConfigurationError(f"a SageMaker Batch Transform job reads and writes S3: {' and '.join(bad)} "
                                     "must be s3://bucket/prefix")
    job_name = f"{config.job_name_prefix}-{EXECUTION_ID}"
    request: dict[str, Any] = {
        "TransformJobName": job_name,
        "ModelName": model.model_name,
        "BatchStrategy": config.strategy.value,
        "MaxPayloadInMB": config.max_payload_mb,
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": source}},
            "ContentType": config.content_type,
            "SplitType": config.split_type,
            "CompressionType": "None",
        },
        "TransformOutput": {
            "S3OutputPath": f"{destination.rstrip('/')}/{job_name}/",
            "Accept": config.accept,
            "AssembleWith": config.assemble_with,
        },
        "TransformResources": {"InstanceType": config.instance_type, "InstanceCount": config.instance_count},
        "DataProcessing": {"JoinSource": config.join_source.value},
        "Tags": [{"Key": GROUP_TAG, "Value": model.group}, {"Key": VERSION_TAG, "Value": str(model.version)}],
    }
    if config.max_payload_mb:
        request["Environment"] = {PAYLOAD_ENV: str(config.max_payload_mb * MB)}
    return request


def schedule_request(config: BatchConfig, model: ModelRef, *, state: str = "ENABLED",
                     local: bool = False) -> dict[str, Any]:
    """The CreateSchedule (= UpdateSchedule) request that runs `model` on `config.schedule`.

    Raises:
        ConfigurationError: no role_arn (unless `local`), or transform_job_input's reasons.
    """
    if state not in ("ENABLED", "DISABLED"):
        raise ValueError(f"state must be ENABLED or DISABLED, not {state!r}")
    if not local and not config.role_arn:
        raise ConfigurationError("the batch schedule needs role_arn (GREENLIGHT_BATCH_ROLE_ARN): the IAM role "
                                 "EventBridge Scheduler assumes to call sagemaker:CreateTransformJob")
    target: dict[str, Any] = {
        "Arn": TRANSFORM_TARGET_ARN,
        "RoleArn": config.role_arn or "arn:aws:iam::000000000000:role/greenlight-local",
        "Input": json.dumps(transform_job_input(config, model, local=local), sort_keys=True),
        "RetryPolicy": {"MaximumRetryAttempts": config.max_retry_attempts,
                        "MaximumEventAgeInSeconds": config.max_event_age_seconds},
    }
    if config.dead_letter_arn:
        target["DeadLetterConfig"] = {"Arn": config.dead_letter_arn}
    return {
        "Name": config.schedule_name,
        "Description": f"Greenlight batch predictions with {model.label} ({model.model_name})",
        "ScheduleExpression": config.schedule,
        "ScheduleExpressionTimezone": config.timezone,
        "State": state,
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "Target": target,
    }


def update_request_from(schedule: Mapping[str, Any], **changes: Any) -> dict[str, Any]:
    """An UpdateSchedule request that keeps everything a GetSchedule response holds, with `changes`.

    UpdateSchedule replaces the whole schedule, so disabling one (State="DISABLED") must send the rest.
    """
    request = {key: schedule[key] for key in _WRITABLE if schedule.get(key) is not None}
    request.update(changes)
    return request


def substitute_context(text: str, *, schedule_arn: str, scheduled_time: str, execution_id: str,
                       attempt_number: int = 1) -> str:
    """Input with the context attributes replaced, as EventBridge Scheduler does when it fires."""
    for key, value in ((SCHEDULE_ARN, schedule_arn), (SCHEDULED_TIME, scheduled_time),
                       (EXECUTION_ID, execution_id), (ATTEMPT_NUMBER, str(attempt_number))):
        text = text.replace(key, value)
    return text


def model_from_schedule(schedule: Mapping[str, Any]) -> ModelRef:
    """The model version a schedule (a GetSchedule response, or a request) runs.

    Raises:
        ScheduleInputError: the schedule's target or Input is not the shape Greenlight writes,
            naming the schedule and what is wrong.
    """
    name = schedule.get("Name", "?") if isinstance(schedule, Mapping) else "?"
    where = f"schedule {name!r}"
    target = schedule.get("Target") if isinstance(schedule, Mapping) else None
    if not isinstance(target, Mapping):
        raise ScheduleInputError(f"{where} has no Target")
    if target.get("Arn") != TRANSFORM_TARGET_ARN:
        raise ScheduleInputError(f"{where} targets {target.get('Arn')!r}, not {TRANSFORM_TARGET_ARN}")
    try:
        request = json.loads(target.get("Input") or "")
    except ValueError as exc:
        raise ScheduleInputError(f"{where}: its Input is not JSON ({exc})") from None
    return model_from_transform_request(request, where)


def model_from_transform_request(request: Any, where: str = "the CreateTransformJob request") -> ModelRef:
    """The ModelRef named by a CreateTransformJob request's ModelName and Greenlight tags.

    Raises:
        ScheduleInputError: a member is missing or malformed (named in the message).
    """
    if not isinstance(request, Mapping):
        raise ScheduleInputError(f"{where}: its Input is not a JSON object")
    model_name = request.get("ModelName")
    if not isinstance(model_name, str) or not model_name:
        raise ScheduleInputError(f"{where}: its Input has no ModelName")
    tags = request.get("Tags")
    if not isinstance(tags, list):
        raise ScheduleInputError(f"{where}: its Input has no Tags naming the model version ({GROUP_TAG}, "
                                 f"{VERSION_TAG})")
    values = {t.get("Key"): t.get("Value") for t in tags if isinstance(t, Mapping)}
    group, version = values.get(GROUP_TAG), values.get(VERSION_TAG)
    if not isinstance(group, str) or not group:
        raise ScheduleInputError(f"{where}: its Input lacks the tag {GROUP_TAG}")
    if not isinstance(version, str) or not version.isdigit() or int(version) < 1:
        raise ScheduleInputError(f"{where}: its Input's tag {VERSION_TAG} is {version!r}, not a version number")
    return ModelRef(group, int(version), model_name)
