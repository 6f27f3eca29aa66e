"""The batch target, AWS adapter: an EventBridge Scheduler schedule that starts Batch Transform jobs.

    observe  GetSchedule: its Input names the version (model_from_schedule); DISABLED is not active,
             a missing schedule runs nothing, one whose settings differ from the configuration
             (schedule_drift: expression, time zone, role, retry policy, dead-letter queue, the job
             request) is not active, so the next reconcile replaces it. Read only.
    deploy   the version's SageMaker Model (found or created with the endpoint target's deterministic
             name and tags: deploy.endpoint.aws_resources.GroupResources, so both targets share
             it), the job request checked against botocore's CreateTransformJob shape, the smoke test
             (deploy.batch.aws_smoke: a real transform job on the recorded smoke rows, compared
             exactly; with `smoke_transform = false` only the checks before it), then CreateSchedule
             or UpdateSchedule, ENABLED. Every step before the schedule write leaves the schedule as
             it was, and UpdateSchedule replaces a schedule whole or not at all, so a failure means
             the previous version still runs.
    stop     UpdateSchedule with State DISABLED and everything else kept (nothing is Approved)
    prune    the group's SageMaker Models beyond `retention` newest versions that neither the
             schedule (its model, and the one before it, named in its Description) nor any of the
             group's endpoint configs use, never a version the reconcile keeps, only Models tagged
             with the group

EventBridge Scheduler fires the schedule; moto stores schedules but never fires them, so the tests
show the schedule's contents (what its next run would start) and the local scheduler shows running.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from deploy.batch.aws import create_schedule, get_schedule, update_schedule
from deploy.batch.aws_requests import (
    ModelRef,
    previous_model,
    schedule_request,
    update_request_from,
)
from deploy.batch.aws_smoke import SmokeTransform, validate_request
from deploy.batch.config import BatchConfig
from deploy.batch.observed import observed_schedule, schedule_model
from deploy.endpoint.aws_resources import GroupResources
from deploy.engine.model import Observed, Release, TargetKind
from deploy.engine.smoke import SmokeTest
from greenlight.errors import DeploymentFailed, GreenlightError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sagemaker import SageMakerClient
    from mypy_boto3_scheduler import EventBridgeSchedulerClient

__all__ = ["SageMakerBatchTarget"]

log = logging.getLogger(__name__)


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

    def deploy(self, release: Release, smoke: SmokeTest | None) -> str:
        before = get_schedule(self._scheduler, self.schedule)
        prior = self._ours(before) if before is not None else None
        running = prior if prior is not None and before.get("State") == "ENABLED" else None
        kept = ("nothing was scheduled before, so nothing is" if running is None else
                f"v{running.version} still serves (schedule {self.schedule} unchanged)")
        step = "create the SageMaker Model"
        try:
            ref = ModelRef(self.group, release.version, self.models.ensure_model(release, self.model_role_arn))
            step = "check the job request"
            request = schedule_request(self.config, ref, previous=prior)
            validate_request(self._sm, json.loads(request["Target"]["Input"]))
            step = "smoke-test"
            where = self._smoke(ref, smoke)
            step = "create the schedule" if before is None else "update the schedule"
            if before is None:
                create_schedule(self._scheduler, request)
            else:
                update_schedule(self._scheduler, request)
        except DeploymentFailed as exc:
            raise DeploymentFailed(f"{exc}; {kept}") from exc
        except GreenlightError as exc:
            raise DeploymentFailed(f"batch schedule {self.schedule}: could not {step} for v{release.version}: {exc}; "
                                   f"{kept}") from exc
        moved = "nothing" if running is None else f"v{running.version}"
        return (f"{moved} -> v{release.version} (smoke test passed {where}; schedule {self.schedule} ENABLED, "
                f"{self.config.schedule} {self.config.timezone}, model {ref.model_name})")

    def stop(self) -> str:
        before = get_schedule(self._scheduler, self.schedule)
        if before is None:
            return f"nothing to stop: no batch schedule {self.schedule}"
        version = self._ours(before).version
        try:
            update_schedule(self._scheduler, update_request_from(before, State="DISABLED"))
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
        held_versions = {v for name, v in models.items() if name in held}
        others = sorted(set(models.values()) - held_versions - keep, reverse=True)
        retained = keep | held_versions | set(others[:self.config.retention])
        pruned = []
        for name, version in sorted(models.items(), key=lambda item: (item[1], item[0])):
            if version not in retained and name not in held and self.models.delete_owned("m", name):
                pruned.append(f"model {name} (v{version})")
        return pruned

    # -- helpers -----------------------------------------------------------------------------------

    def _ours(self, schedule: dict) -> ModelRef:
        """The version a schedule runs. Raises: ScheduleInputError if it is not this group's."""
        return schedule_model(schedule, self.group, self._label)

    def _smoke(self, ref: ModelRef, smoke: SmokeTest | None) -> str:
        if smoke is None:
            return "not run: no smoke-test data and smoke.required = false"
        if not self.config.smoke_transform:
            return (f"not run (batch.smoke_transform = false): Model {ref.model_name} exists and the job request is "
                    "a valid CreateTransformJob request")
        return self.smoke.run(ref, smoke)
