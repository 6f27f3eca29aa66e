"""The batch target, AWS adapter: an EventBridge Scheduler schedule that starts Batch Transform jobs.

    observe  GetSchedule: its Input names the version (model_from_schedule); DISABLED is not active,
             a missing schedule runs nothing, one whose settings differ from the configuration
             (schedule_drift: expression, time zone, role, retry policy, dead-letter queue, the job
             request) is not active, so the next reconcile replaces it. Read only.
    fetch    nothing: SageMaker reads the model from the model package
    stage    the version's SageMaker Model (found or created with the endpoint target's deterministic
             name and tags: deploy.endpoint.aws_resources.GroupResources, so both targets share it) and
             the job request, checked against botocore's CreateTransformJob shape
    probe    deploy.batch.aws_smoke: a real transform job on the recorded smoke rows, compared exactly
             (with `smoke_transform = false` only the checks of the stage)
    switch   CreateSchedule or UpdateSchedule, ENABLED; UpdateSchedule replaces a schedule whole or not
             at all, so a failure means the previous version still runs
    unstage  the schedule as it was before, if the switch replaced it (DISABLED if there was none)
    stop     UpdateSchedule with State DISABLED and everything else kept (nothing is Approved)
    prune    the group's SageMaker Models beyond `retention` newest versions that neither the
             schedule (its model, and the one before it, named in its Description) nor any of the
             group's endpoint configs use, never a version the reconcile keeps, only Models tagged
             with the group

EventBridge Scheduler fires the schedule; moto stores schedules but never fires them, so the tests
show the schedule's contents (what its next run would start) and the local scheduler shows running.
Every call goes through greenlight.aws_errors.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deploy.batch.aws_requests import ModelRef, previous_model
from deploy.batch.aws_smoke import SmokeTransform, validate_request
from deploy.batch.config import BatchConfig
from deploy.batch.observed import ScheduleTarget, schedule_model
from deploy.endpoint.aws_resources import GroupResources
from deploy.engine.model import Release
from deploy.engine.protocol import Artifact, Staged
from deploy.engine.retention import doomed
from deploy.engine.smoke import SmokeTest
from greenlight.aws_errors import aws_call
from greenlight.errors import DeploymentFailed, GreenlightError, NotFoundError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sagemaker import SageMakerClient
    from mypy_boto3_scheduler import EventBridgeSchedulerClient

__all__ = ["SageMakerBatchTarget", "get_schedule"]

log = logging.getLogger(__name__)


def get_schedule(client: EventBridgeSchedulerClient, name: str) -> dict[str, Any] | None:
    """GetSchedule's response without ResponseMetadata, or None when there is no such schedule.

    Raises:
        AwsError: any other failure.
    """
    try:
        response = aws_call("GetSchedule", client.get_schedule, Name=name,
                            on_missing=lambda: NotFoundError(f"no schedule {name!r}"))
    except NotFoundError:
        return None
    return {key: value for key, value in response.items() if key != "ResponseMetadata"}


class SageMakerBatchTarget(ScheduleTarget):
    """DeployTarget for the EventBridge Scheduler schedule of one group's Batch Transform jobs.

    `config` must have input, output (s3://), role_arn and dead_letter_arn (the composition root checks);
    `model_role_arn` is the SageMaker execution role the version's Model runs as (the endpoint's).
    """

    local = False

    def __init__(self, scheduler: EventBridgeSchedulerClient, sagemaker: SageMakerClient, s3: S3Client,
                 config: BatchConfig, group: str, model_role_arn: str, *, name: str = "batch", poll: float = 15.0,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic):
        self.group, self.name, self.model_role_arn = group, name, model_role_arn
        self.config = config.names_for(group)
        self.schedule = self.config.schedule_name
        self.label = f"batch schedule {self.schedule}"
        self._scheduler, self._sm = scheduler, sagemaker
        self.models = GroupResources(sagemaker, group)
        self.smoke = SmokeTransform(sagemaker, s3, self.config, timeout=self.config.smoke_timeout_seconds, poll=poll,
                                    sleep=sleep, clock=clock)

    def _read(self) -> dict[str, Any] | None:
        return get_schedule(self._scheduler, self.schedule)

    def _write(self, request: dict[str, Any], exists: bool) -> None:
        aws_call("UpdateSchedule" if exists else "CreateSchedule",
                 self._scheduler.update_schedule if exists else self._scheduler.create_schedule, **request)

    def fetch(self, release: Release, scratch: Path) -> Artifact:
        return Artifact(release.version, release.model_data_url)  # SageMaker reads it from the model package

    def stage(self, release: Release, artifact: Artifact) -> Staged:
        step = "create the SageMaker Model"
        try:
            model = self.models.ensure_model(release, self.model_role_arn)
            step = "check the job request"
            staged = self._staged(release, model)
            validate_request(self._sm, json.loads(staged.ref["request"]["Target"]["Input"]))
        except DeploymentFailed:
            raise
        except GreenlightError as exc:
            raise DeploymentFailed(f"{self.label}: could not {step} for v{release.version}: {exc}") from exc
        return staged

    def probe(self, staged: Staged, smoke: SmokeTest) -> str:
        ref = ModelRef(self.group, staged.version, staged.ref["model"])
        if not self.config.smoke_transform:
            return (f"not run (batch.smoke_transform = false): Model {ref.model_name} exists and the job request is "
                    "a valid CreateTransformJob request")
        return self.smoke.run(ref, smoke)

    def prune(self, keep: frozenset[int]) -> list[str]:
        """Delete the group's Models beyond `retention` that no schedule or endpoint config uses (docstring)."""
        held: set[str] = set()
        schedule = self._read()
        if schedule is not None:
            held |= {schedule_model(schedule, self.group, self.label).model_name, previous_model(schedule) or ""}
        held |= {m for config in self.models.listed("c") for m in [self.models.model_of(config)] if m}
        models = self.models.listed("m")
        return [f"model {name} (v{models[name]})" for name in doomed(models, held, keep, self.config.retention)
                if self.models.delete_owned("m", name)]
