"""Upsert and start the pipeline on SageMaker, and follow an execution to its end (with a deadline).

The SageMaker client is passed in (built by the composition root, greenlight.workspace); botocore's
errors become Greenlight's in greenlight.aws_errors.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from greenlight.aws_errors import aws_call, aws_errors
from greenlight.errors import AwsError, ExecutionFailed, WaitTimeout

__all__ = ["ExecutionResult", "PipelineExecutionStatus", "start_execution", "upsert_pipeline",
           "wait_for_execution"]

log = logging.getLogger(__name__)


class PipelineExecutionStatus(str, Enum):
    """SageMaker's PipelineExecutionStatus."""

    EXECUTING = "Executing"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    FAILED = "Failed"
    SUCCEEDED = "Succeeded"

    @property
    def terminal(self) -> bool:
        return self in {PipelineExecutionStatus.STOPPED, PipelineExecutionStatus.FAILED,
                        PipelineExecutionStatus.SUCCEEDED}


def upsert_pipeline(client, *, name: str, definition: str, role_arn: str, tags: list[dict],
                    description: str = "Greenlight training pipeline") -> tuple[str, bool]:
    """Create the pipeline, or update it if it exists; returns (arn, created)."""
    try:
        with aws_errors("CreatePipeline"):
            response = client.create_pipeline(PipelineName=name, PipelineDefinition=definition, RoleArn=role_arn,
                                              PipelineDescription=description, Tags=tags)
        log.info("created pipeline %s", name)
        return response["PipelineArn"], True
    except AwsError as exc:
        exists = exc.code == "ResourceInUse" or (exc.code == "ValidationException" and "already exists" in str(exc))
        if not exists:
            raise
    response = aws_call("UpdatePipeline", client.update_pipeline, PipelineName=name, PipelineDefinition=definition,
                        RoleArn=role_arn, PipelineDescription=description)
    arn = response["PipelineArn"]
    if tags:
        aws_call("AddTags", client.add_tags, ResourceArn=arn, Tags=tags)
    log.info("updated pipeline %s", name)
    return arn, False


def start_execution(client, *, name: str, parameters: Mapping[str, str] | None = None,
                    display_name: str | None = None) -> str:
    """Start an execution with parameter overrides; returns its ARN."""
    kwargs: dict[str, Any] = {
        "PipelineName": name,
        "PipelineParameters": [{"Name": k, "Value": str(v)} for k, v in (parameters or {}).items()]}
    if display_name:
        kwargs["PipelineExecutionDisplayName"] = display_name
    return aws_call("StartPipelineExecution", client.start_pipeline_execution, **kwargs)["PipelineExecutionArn"]


@dataclass(frozen=True)
class ExecutionResult:
    arn: str
    status: str
    failure_reason: str | None
    steps: tuple[dict, ...]


def _steps(client, arn: str) -> tuple[dict, ...]:
    steps: list[dict] = []
    kwargs: dict[str, Any] = {"PipelineExecutionArn": arn, "SortOrder": "Ascending"}
    while True:
        page = aws_call("ListPipelineExecutionSteps", client.list_pipeline_execution_steps, **kwargs)
        steps.extend(page.get("PipelineExecutionSteps", []))
        if not page.get("NextToken"):
            return tuple(steps)
        kwargs["NextToken"] = page["NextToken"]


def wait_for_execution(client, arn: str, *, poll_seconds: float = 30.0, timeout_seconds: float | None = None,
                       on_step: Callable[[dict], None] = lambda step: None,
                       sleep: Callable[[float], None] = time.sleep,
                       clock: Callable[[], float] = time.monotonic) -> ExecutionResult:
    """Poll until the execution ends, or until `timeout_seconds` have passed (None: no deadline).

    `on_step` is called once per step each time its status changes.

    Raises:
        ExecutionFailed: the execution ended Failed or Stopped; the message has the reason.
        WaitTimeout: the deadline passed first; the execution goes on running on SageMaker.
    """
    deadline = None if timeout_seconds is None else clock() + timeout_seconds
    seen: dict[str, str] = {}
    while True:
        described = aws_call("DescribePipelineExecution", client.describe_pipeline_execution,
                             PipelineExecutionArn=arn)
        status = PipelineExecutionStatus(described["PipelineExecutionStatus"])
        steps = _steps(client, arn)
        for step in steps:
            key = step.get("StepName", "?")
            if seen.get(key) != step.get("StepStatus"):
                seen[key] = step.get("StepStatus", "?")
                on_step(step)
        if status.terminal:
            reason = described.get("FailureReason") or next(
                (s.get("FailureReason") for s in steps if s.get("FailureReason")), None)
            result = ExecutionResult(arn, status.value, reason, steps)
            if status is not PipelineExecutionStatus.SUCCEEDED:
                raise ExecutionFailed(f"pipeline execution {arn} ended {status.value}: {reason or 'no reason given'}")
            return result
        if deadline is not None and clock() + poll_seconds > deadline:
            running = ", ".join(f"{name} {state}" for name, state in seen.items()) or "no step started"
            raise WaitTimeout(f"stopped waiting after {timeout_seconds:g} s: pipeline execution {arn} is still "
                              f"{status.value} ({running}); it goes on running on SageMaker (follow it with "
                              "`aws sagemaker describe-pipeline-execution`, or wait longer with --timeout)")
        sleep(poll_seconds)
