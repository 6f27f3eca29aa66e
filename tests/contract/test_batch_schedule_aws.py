"""The batch schedule on EventBridge Scheduler, against moto's real HTTP server.

Moto stores schedules (create, get, update) but never fires them: what runs on a schedule is shown
by the local scheduler's tests; here the requests Greenlight sends are accepted by the service API,
read back, and the model version is recovered from what AWS returns.
"""

from __future__ import annotations

import json

import pytest

from deploy.batch.aws_target import get_schedule
from deploy.batch.aws_requests import ModelRef, model_from_schedule, schedule_request, update_request_from
from deploy.batch.config import BatchConfig
from greenlight.aws_errors import aws_call
from greenlight.errors import AwsError, ParameterError
from tests.contract.conftest import aws_client

CONFIG = BatchConfig(input="s3://greenlight-data/batch/in/", output="s3://greenlight-data/batch/out/",
                     role_arn="arn:aws:iam::123456789012:role/greenlight-scheduler",
                     dead_letter_arn="arn:aws:sqs:us-east-1:123456789012:greenlight-batch-dlq",
                     schedule="cron(0 2 * * ? *)", timezone="Europe/Paris", schedule_name="greenlight-batch",
                     job_name_prefix="greenlight")
V1 = ModelRef("greenlight-models", 1, "greenlight-models-v1")
V2 = ModelRef("greenlight-models", 2, "greenlight-models-v2")


@pytest.fixture
def scheduler(moto_endpoint):
    return aws_client("scheduler", moto_endpoint)


def create_schedule(client, request) -> str:
    """CreateSchedule as the batch target's switch sends it (through Greenlight's AWS edge)."""
    return aws_call("CreateSchedule", client.create_schedule, **request)["ScheduleArn"]


def update_schedule(client, request) -> str:
    return aws_call("UpdateSchedule", client.update_schedule, **request)["ScheduleArn"]


def test_create_read_back_update_and_disable(scheduler):
    assert get_schedule(scheduler, CONFIG.schedule_name) is None
    arn = create_schedule(scheduler, schedule_request(CONFIG, V1))
    assert arn.endswith(":schedule/default/greenlight-batch")

    stored = get_schedule(scheduler, CONFIG.schedule_name)
    assert "ResponseMetadata" not in stored
    assert model_from_schedule(stored) == V1  # observing the target: the version comes back from AWS
    assert (stored["State"], stored["ScheduleExpression"], stored["ScheduleExpressionTimezone"]) == (
        "ENABLED", "cron(0 2 * * ? *)", "Europe/Paris")
    target = stored["Target"]
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 3600}
    assert target["DeadLetterConfig"] == {"Arn": CONFIG.dead_letter_arn}
    assert json.loads(target["Input"])["TransformJobName"] == "greenlight-<aws.scheduler.execution-id>"

    update_schedule(scheduler, schedule_request(CONFIG, V2))
    assert model_from_schedule(get_schedule(scheduler, CONFIG.schedule_name)) == V2

    update_schedule(scheduler, update_request_from(get_schedule(scheduler, CONFIG.schedule_name), State="DISABLED"))
    disabled = get_schedule(scheduler, CONFIG.schedule_name)
    assert disabled["State"] == "DISABLED" and model_from_schedule(disabled) == V2  # kept, not running


def test_errors_come_through_greenlight_s_aws_edge(scheduler):
    create_schedule(scheduler, schedule_request(CONFIG, V1))
    with pytest.raises(AwsError, match="AWS CreateSchedule failed: ConflictException") as caught:
        create_schedule(scheduler, schedule_request(CONFIG, V1))
    assert caught.value.operation == "CreateSchedule"
    with pytest.raises(AwsError, match="AWS UpdateSchedule failed: ResourceNotFoundException"):
        update_schedule(scheduler, schedule_request(CONFIG.model_copy(update={"schedule_name": "missing"}), V1))
    with pytest.raises(ParameterError, match="invalid CreateSchedule request"):
        create_schedule(scheduler, {**schedule_request(CONFIG, V1), "State": 3})
