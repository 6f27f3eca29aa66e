"""What a batch schedule runs, read the same way by the local and the AWS adapter (pure).

    schedule_model(schedule, group, label)      the ModelRef a schedule names, refused if another group's
    observed_schedule(...)                      the engine's Observed for a schedule (or for none)
"""

from __future__ import annotations

import logging
from typing import Any

from deploy.batch.aws_requests import (ModelRef, ScheduleInputError, model_from_schedule, schedule_drift,
                                       schedule_request)
from deploy.batch.config import BatchConfig
from deploy.engine.model import Observed, TargetKind

__all__ = ["observed_schedule", "schedule_model"]

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
