"""What a batch schedule runs, read the same way by the local and the AWS adapter (pure).

    schedule_model(schedule, group, label)      the ModelRef a schedule names, refused if another group's
    observed_schedule(...)                      the engine's Observed for a schedule (or for none)
    staged_schedule(...) / unstaged_schedule(...)  the schedule a deployment switches to, and back
    ScheduleTarget                              what both batch adapters do alike (observe, switch, unstage,
                                                stop); an adapter reads and writes its schedule
"""

from __future__ import annotations

import abc
import json
import logging
from collections.abc import Mapping
from typing import Any

from deploy.batch.aws_requests import (ModelRef, ScheduleInputError, model_from_schedule, schedule_drift,
                                       schedule_request, update_request_from)
from deploy.batch.config import BatchConfig
from deploy.engine.model import Observed, Release, TargetKind
from deploy.engine.protocol import Staged
from deploy.engine.smoke import SmokeTest
from greenlight.errors import DeploymentFailed, GreenlightError

__all__ = ["ScheduleTarget", "observed_schedule", "schedule_model", "staged_schedule", "unstaged_schedule"]

log = logging.getLogger(__name__)


def schedule_model(schedule: dict[str, Any], group: str, label: str) -> ModelRef:
    """The version a schedule runs. Raises: ScheduleInputError if it is not `group`'s."""
    ref = model_from_schedule(schedule)
    if ref.group != group:
        raise ScheduleInputError(f"{label} runs {ref.label}, a version of another group; set batch.schedule_name "
                                 f"to a schedule Greenlight may manage for {group}")
    return ref


def observed_schedule(target: str, schedule_name: str, label: str, schedule: dict[str, Any] | None,
                      config: BatchConfig, group: str, *, local: bool) -> Observed:
    """Observed for `schedule` (None: absent): active only when ENABLED and as configured (else drift)."""
    if schedule is None:
        return Observed(target, TargetKind.BATCH, None, False, {"schedule": schedule_name, "state": "absent"})
    ref = schedule_model(schedule, group, label)
    drift = schedule_drift(schedule, schedule_request(config, ref, local=local))
    if drift:
        log.warning("%s differs from the configuration (%s); the next deployment replaces it", label, ", ".join(drift))
    return Observed(target, TargetKind.BATCH, ref.version, schedule.get("State") == "ENABLED" and not drift,
                    {"schedule": schedule_name, "state": schedule.get("State"), "model": ref.model_name,
                     "expression": schedule.get("ScheduleExpression"),
                     "timezone": schedule.get("ScheduleExpressionTimezone"), "drift": drift,
                     "input": config.input, "output": config.output})


def staged_schedule(config: BatchConfig, group: str, label: str, release: Release, model: str,
                    before: dict[str, Any] | None, *, local: bool) -> dict[str, Any]:
    """The Staged.ref of a schedule change (both adapters): the model, the request, the schedule to go back to."""
    prior = schedule_model(before, group, label) if before is not None else None
    ref = ModelRef(group, release.version, model)
    request = schedule_request(config, ref, local=local, previous=prior)
    restore = None if before is None else update_request_from(before)
    return json.loads(json.dumps({"model": model, "request": request, "restore": restore}, default=str))


def unstaged_schedule(ref: Mapping[str, Any], current: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The request that undoes a switch to `ref` (None: the schedule does not run the staged model)."""
    if current is None:
        return None
    try:
        switched = json.loads(current["Target"]["Input"]) == json.loads(ref["request"]["Target"]["Input"])
    except (TypeError, KeyError, ValueError):
        switched = False
    if not switched:
        return None
    return ref["restore"] or update_request_from(current, State="DISABLED")


class ScheduleTarget(abc.ABC):
    """The batch target's steps both adapters share; a subclass sets `name`, `group`, `config`, `schedule`,
    `label` and `local`, and implements `_read()` (GetSchedule's shape, or None) and `_write(request, exists)`
    (CreateSchedule when it does not exist, else UpdateSchedule)."""

    kind = TargetKind.BATCH
    name: str
    group: str
    config: BatchConfig
    schedule: str
    label: str
    local: bool

    @abc.abstractmethod
    def _read(self) -> dict[str, Any] | None:
        """The schedule's request as it stands, or None when there is none."""

    @abc.abstractmethod
    def _write(self, request: dict[str, Any], exists: bool) -> None:
        """Create (`exists` False) or replace the schedule with `request`."""

    def observe(self) -> Observed:
        return observed_schedule(self.name, self.schedule, self.label, self._read(), self.config, self.group,
                                 local=self.local)

    def _staged(self, release: Release, model: str, **more: Any) -> Staged:
        ref = staged_schedule(self.config, self.group, self.label, release, model, self._read(), local=self.local)
        return Staged(self.name, release.version, {**ref, **more})

    def switch(self, staged: Staged) -> str:
        exists = staged.ref["restore"] is not None
        try:
            self._write(staged.ref["request"], exists)
        except GreenlightError as exc:
            raise DeploymentFailed(f"{self.label}: could not {'update' if exists else 'create'} the schedule for "
                                   f"v{staged.version}: {exc}") from exc
        return (f"schedule {self.schedule} ENABLED, {self.config.schedule} {self.config.timezone}, model "
                f"{staged.ref['model']}")

    def confirm(self, staged: Staged, smoke: SmokeTest | None) -> str | None:
        return None  # the schedule names a Model its probe ran: nothing more to check

    def unstage(self, staged: Staged) -> None:
        request = unstaged_schedule(staged.ref, self._read())
        if request is not None:
            log.warning("%s: putting back the schedule it had before", self.label)
            self._write(request, True)

    def stop(self) -> str:
        before = self._read()
        if before is None:
            return f"nothing to stop: no {self.label}"
        version = schedule_model(before, self.group, self.label).version
        try:
            self._write(update_request_from(before, State="DISABLED"), True)
        except GreenlightError as exc:
            raise DeploymentFailed(f"could not disable {self.label}: {exc}") from exc
        return f"v{version} -> stopped (schedule {self.schedule} DISABLED; it keeps its Input)"
