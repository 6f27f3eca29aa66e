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

from deploy.batch.aws_requests import ModelRef, previous_model, update_request_from
from deploy.batch.aws_smoke import SmokeTransform, validate_request
from deploy.batch.config import BatchConfig
from deploy.batch.observed import observed_schedule, schedule_model, staged_schedule, unstaged_schedule
from deploy.endpoint.aws_resources import GroupResources
from deploy.engine.model import Observed, Release, TargetKind
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


class SageMakerBatchTarget:
    """DeployTarget for the EventBridge Scheduler schedule of one group's Batch Transform jobs.

    `config` must have input, output (s3://), role_arn and dead_letter_arn (the composition root checks);
    `model_role_arn` is the SageMaker execution role the version's Model runs as (the endpoint's).
    """

    kind = TargetKind.BATCH

    def __init__(self, scheduler: EventBridgeSchedulerClient, sagemaker: SageMakerClient, s3: S3Client,
                 config: BatchConfig, group: str, model_role_arn: str, *, name: str = "batch", poll: float = 15.0,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic):
        self.group, self.name, self.model_role_arn = group, name, model_role_arn
        self.config = config.names_for(group)
        self.schedule = self.config.schedule_name
        self._scheduler, self._sm = scheduler, sagemaker
        self.models = GroupResources(sagemaker, group)
        self.smoke = SmokeTransform(sagemaker, s3, self.config, timeout=self.config.smoke_timeout_seconds, poll=poll,
                                    sleep=sleep, clock=clock)

    @property
    def _label(self) -> str:
        return f"batch schedule {self.schedule}"

    def observe(self) -> Observed:
        schedule = get_schedule(self._scheduler, self.schedule)
        return observed_schedule(self.name, self.schedule, self._label, schedule, self.config, self.group,
                                 local=False)

    # -- the deploy primitives -------------------------------------------------------------------

    def fetch(self, release: Release, scratch: Path) -> Artifact:
        return Artifact(release.version, release.model_data_url)  # SageMaker reads it from the model package

    def stage(self, release: Release, artifact: Artifact) -> Staged:
        step = "create the SageMaker Model"
        try:
            model = self.models.ensure_model(release, self.model_role_arn)
            step = "check the job request"
            ref = staged_schedule(self.config, self.group, self._label, release, model,
                                  get_schedule(self._scheduler, self.schedule), local=False)
            validate_request(self._sm, json.loads(ref["request"]["Target"]["Input"]))
        except DeploymentFailed:
            raise
        except GreenlightError as exc:
            raise DeploymentFailed(f"batch schedule {self.schedule}: could not {step} for v{release.version}: "
                                   f"{exc}") from exc
        return Staged(self.name, release.version, ref)

    def probe(self, staged: Staged, smoke: SmokeTest) -> str:
        ref = ModelRef(self.group, staged.version, staged.ref["model"])
        if not self.config.smoke_transform:
            return (f"not run (batch.smoke_transform = false): Model {ref.model_name} exists and the job request is "
                    "a valid CreateTransformJob request")
        return self.smoke.run(ref, smoke)

    def switch(self, staged: Staged) -> str:
        request = staged.ref["request"]
        exists = staged.ref["restore"] is not None
        try:
            aws_call("UpdateSchedule" if exists else "CreateSchedule",
                     self._scheduler.update_schedule if exists else self._scheduler.create_schedule, **request)
        except GreenlightError as exc:
            raise DeploymentFailed(f"batch schedule {self.schedule}: could not {'update' if exists else 'create'} "
                                   f"the schedule for v{staged.version}: {exc}") from exc
        return (f"schedule {self.schedule} ENABLED, {self.config.schedule} {self.config.timezone}, model "
                f"{staged.ref['model']}")

    def confirm(self, staged: Staged, smoke: SmokeTest | None) -> str | None:
        return None  # the schedule names a Model its probe ran: nothing more to check

    def unstage(self, staged: Staged) -> None:
        request = unstaged_schedule(staged.ref, get_schedule(self._scheduler, self.schedule))
        if request is not None:
            log.warning("%s: putting back the schedule it had before", self._label)
            aws_call("UpdateSchedule", self._scheduler.update_schedule, **request)

    def stop(self) -> str:
        before = get_schedule(self._scheduler, self.schedule)
        if before is None:
            return f"nothing to stop: no batch schedule {self.schedule}"
        version = self._ours(before).version
        try:
            aws_call("UpdateSchedule", self._scheduler.update_schedule, **update_request_from(before, State="DISABLED"))
        except GreenlightError as exc:
            raise DeploymentFailed(f"could not disable batch schedule {self.schedule}: {exc}") from exc
        return f"v{version} -> stopped (schedule {self.schedule} DISABLED; it keeps its Input)"

    def prune(self, keep: frozenset[int]) -> list[str]:
        """Delete the group's Models beyond `retention` that no schedule or endpoint config uses (docstring)."""
        held: set[str] = set()
        schedule = get_schedule(self._scheduler, self.schedule)
        if schedule is not None:
            held |= {self._ours(schedule).model_name, previous_model(schedule) or ""}
        held |= {m for config in self.models.listed("c") for m in [self.models.model_of(config)] if m}
        models = self.models.listed("m")
        return [f"model {name} (v{models[name]})" for name in doomed(models, held, keep, self.config.retention)
                if self.models.delete_owned("m", name)]

    # -- helpers -----------------------------------------------------------------------------------

    def _ours(self, schedule: dict) -> ModelRef:
        """The version a schedule runs. Raises: ScheduleInputError if it is not this group's."""
        return schedule_model(schedule, self.group, self._label)
