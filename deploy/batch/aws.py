"""The batch schedule on AWS: thin calls to EventBridge Scheduler through an injected boto3 client.

Every call goes through `greenlight.aws_errors`, so callers see AwsError / NotFoundError /
ParameterError, never botocore. The requests come from `deploy.batch.aws_requests`; these functions
only send them. (Moto's EventBridge Scheduler stores schedules but never fires them.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from greenlight.aws_errors import aws_call
from greenlight.errors import NotFoundError

if TYPE_CHECKING:
    from mypy_boto3_scheduler import EventBridgeSchedulerClient
else:
    EventBridgeSchedulerClient = Any

__all__ = ["create_schedule", "get_schedule", "update_schedule"]


def create_schedule(client: EventBridgeSchedulerClient, request: Mapping[str, Any]) -> str:
    """CreateSchedule; returns the schedule's ARN. Raises: AwsError (e.g. ConflictException if it exists)."""
    return aws_call("CreateSchedule", client.create_schedule, **request)["ScheduleArn"]


def update_schedule(client: EventBridgeSchedulerClient, request: Mapping[str, Any]) -> str:
    """UpdateSchedule (replaces the whole schedule); returns its ARN. Raises: AwsError, NotFoundError."""
    return aws_call("UpdateSchedule", client.update_schedule, **request)["ScheduleArn"]


def get_schedule(client: EventBridgeSchedulerClient, name: str, group: str | None = None) -> dict[str, Any] | None:
    """GetSchedule's response without ResponseMetadata, or None when there is no such schedule.

    Raises:
        AwsError: any other failure.
    """
    kwargs = {"Name": name, **({"GroupName": group} if group else {})}
    try:
        response = aws_call("GetSchedule", client.get_schedule,
                            on_missing=lambda: NotFoundError(f"no schedule {name!r}"), **kwargs)
    except NotFoundError:
        return None
    return {key: value for key, value in response.items() if key != "ResponseMetadata"}
