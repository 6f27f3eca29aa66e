"""Upsert and start the pipeline on SageMaker, and follow an execution to its end.

The SageMaker client is passed in (built by the CLI, the composition root); ClientErrors become
greenlight.errors.AwsError here, once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from greenlight.errors import AwsError, ExecutionFailed

__all__ = ["ExecutionResult", "call", "start_execution", "upsert_pipeline", "wait_for_execution"]

log = logging.getLogger(__name__)
TERMINAL = {"Succeeded", "Failed", "Stopped"}


def call(operation: str, fn, **kwargs):
    """fn(**kwargs), with botocore's errors turned into AwsError naming the operation."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return fn(**kwargs)
    except ClientError as exc:
        raise AwsError.from_client_error(operation, exc) from exc
    except BotoCoreError as exc:  # no credentials, endpoint unreachable, ...
        raise AwsError(f"AWS {operation} failed: {exc}") from exc


def upsert_pipeline(client, *, name: str, definition: str, role_arn: str, tags: list[dict],
                    description: str = "Greenlight training pipeline") -> tuple[str, bool]:
    """Create the pipeline, or update it if it exists; returns (arn, created)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        response = client.create_pipeline(PipelineName=name, PipelineDefinition=definition, RoleArn=role_arn,
                                          PipelineDescription=description, Tags=tags)
        log.info("created pipeline %s", name)
        return response["PipelineArn"], True
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        message = exc.response.get("Error", {}).get("Message", "")
        if code not in {"ResourceInUse", "ValidationException"} or (
                code == "ValidationException" and "already exists" not in message):
            raise AwsError.from_client_error("CreatePipeline", exc) from exc
    except BotoCoreError as exc:
        raise AwsError(f"AWS CreatePipeline failed: {exc}") from exc
    response = call("UpdatePipeline", client.update_pipeline, PipelineName=name, PipelineDefinition=definition,
                     RoleArn=role_arn, PipelineDescription=description)
    arn = response["PipelineArn"]
    if tags:
        call("AddTags", client.add_tags, ResourceArn=arn, Tags=tags)
    log.info("updated pipeline %s", name)
    return arn, False


def start_execution(client, *, name: str, parameters: Mapping[str, str] | None = None,
                    display_name: str | None = None) -> str:
    """Start an execution with parameter overrides; returns its ARN."""
    kwargs = {"PipelineName": name,
              "PipelineParameters": [{"Name": k, "Value": str(v)} for k, v in (parameters or {}).items()]}
    if display_name:
        kwargs["PipelineExecutionDisplayName"] = display_name
    return call("StartPipelineExecution", client.start_pipeline_execution, **kwargs)["PipelineExecutionArn"]


@dataclass(frozen=True)
class ExecutionResult:
    arn: str
    status: str
    failure_reason: str | None
    steps: tuple[dict, ...]


def _steps(client, arn: str) -> tuple[dict, ...]:
    steps: list[dict] = []
    kwargs = {"PipelineExecutionArn": arn, "SortOrder": "Ascending"}
    while True:
        page = call("ListPipelineExecutionSteps", client.list_pipeline_execution_steps, **kwargs)
        steps.extend(page.get("PipelineExecutionSteps", []))
        if not page.get("NextToken"):
            return tuple(steps)
        kwargs["NextToken"] = page["NextToken"]


def wait_for_execution(client, arn: str, *, poll_seconds: float = 30.0,
                       on_step: Callable[[dict], None] = lambda step: None,
                       sleep: Callable[[float], None] = time.sleep) -> ExecutionResult:
    """Poll until the execution ends (no time cap: SageMaker bounds each job's runtime).

    `on_step` is called once per step each time its status changes.

    Raises:
        ExecutionFailed: the execution ended Failed or Stopped; the message has the reason.
    """
    seen: dict[str, str] = {}
    while True:
        described = call("DescribePipelineExecution", client.describe_pipeline_execution,
                          PipelineExecutionArn=arn)
        status = described["PipelineExecutionStatus"]
        steps = _steps(client, arn)
        for step in steps:
            key = step.get("StepName", "?")
            if seen.get(key) != step.get("StepStatus"):
                seen[key] = step.get("StepStatus", "?")
                on_step(step)
        if status in TERMINAL:
            reason = described.get("FailureReason") or next(
                (s.get("FailureReason") for s in steps if s.get("FailureReason")), None)
            result = ExecutionResult(arn, status, reason, steps)
            if status != "Succeeded":
                raise ExecutionFailed(f"pipeline execution {arn} ended {status}: {reason or 'no reason given'}")
            return result
        sleep(poll_seconds)
