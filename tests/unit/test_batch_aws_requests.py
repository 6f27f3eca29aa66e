"""The schedule and CreateTransformJob requests, checked against botocore's own service models.

botocore's ParamValidator checks types, required members and minimums; the walk below also holds
every string to its shape's pattern, maximum length and enum (what the service itself enforces).
"""

from __future__ import annotations

import json
import re

import pytest
from botocore.validate import ParamValidator

from deploy.batch.aws_requests import (
    EXECUTION_ID,
    GROUP_TAG,
    TRANSFORM_TARGET_ARN,
    VERSION_TAG,
    ModelRef,
    ScheduleInputError,
    model_from_schedule,
    previous_model,
    schedule_drift,
    schedule_request,
    substitute_context,
    transform_job_input,
    update_request_from,
)
from deploy.batch.config import BatchConfig
from greenlight.errors import ConfigurationError
from tests.support.aws_shapes import assert_valid, session, strict_errors

MODEL = ModelRef("greenlight-models", 7, "greenlight-models-v7")
CONFIG = BatchConfig(input="s3://greenlight-data/batch/in/", output="s3://greenlight-data/batch/out",
                     role_arn="arn:aws:iam::123456789012:role/greenlight-scheduler",
                     dead_letter_arn="arn:aws:sqs:us-east-1:123456789012:greenlight-batch-dlq",
                     schedule="cron(30 1 ? * MON-FRI *)", timezone="Europe/Paris", instance_count=3,
                     join_source="Input", max_payload_mb=20, schedule_name="greenlight-batch",
                     job_name_prefix="greenlight")
# What EventBridge Scheduler substitutes; the execution id is AWS's documented example, and a
# UUID-length one shows the name still fits.
CONTEXT = {"schedule_arn": "arn:aws:scheduler:us-east-1:123456789012:schedule/default/greenlight-batch",
           "scheduled_time": "2026-11-30T01:30:00Z", "execution_id": "d32c5kddcf5bb8c3"}


def test_the_scheduled_input_is_a_valid_create_transform_job_request():
    text = schedule_request(CONFIG, MODEL)["Target"]["Input"]
    assert EXECUTION_ID in text
    request = json.loads(substitute_context(text, **CONTEXT))
    assert_valid("sagemaker", "CreateTransformJob", request)
    assert request["TransformJobName"] == "greenlight-d32c5kddcf5bb8c3"
    assert request["ModelName"] == "greenlight-models-v7"
    assert request["TransformOutput"] == {"S3OutputPath": "s3://greenlight-data/batch/out/greenlight-d32c5kddcf5bb8c3/",
                                          "Accept": "text/csv", "AssembleWith": "Line"}
    assert request["TransformInput"]["DataSource"] == {"S3DataSource": {"S3DataType": "S3Prefix",
                                                                        "S3Uri": "s3://greenlight-data/batch/in/"}}
    assert (request["TransformInput"]["ContentType"], request["TransformInput"]["SplitType"]) == ("text/csv", "Line")
    assert (request["BatchStrategy"], request["MaxPayloadInMB"]) == ("MultiRecord", 20)
    assert request["DataProcessing"] == {"JoinSource": "Input"}
    assert request["TransformResources"] == {"InstanceType": "ml.m5.large", "InstanceCount": 3}
    assert request["Environment"] == {"GREENLIGHT_MAX_PAYLOAD_BYTES": str(20 * 1024 * 1024)}
    assert {"Key": VERSION_TAG, "Value": "7"} in request["Tags"] and {"Key": GROUP_TAG, "Value": "greenlight-models"} in request["Tags"]


def test_job_names_are_unique_per_execution_and_fit_the_limit_with_the_longest_prefix():
    config = CONFIG.model_copy(update={"job_name_prefix": "a" * 26})
    text = schedule_request(config, MODEL)["Target"]["Input"]
    names = set()
    for execution_id in ("d32c5kddcf5bb8c3", "0f8fad5b-d9cb-469f-a165-70867728950e"):  # 16 and 36 characters
        name = json.loads(substitute_context(text, **{**CONTEXT, "execution_id": execution_id}))["TransformJobName"]
        assert re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", name) and len(name) <= 63
        names.add(name)
    assert len(names) == 2
    # The scheduled time cannot be part of a name: it has ':' (the reason the execution id is used).
    assert not re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", "greenlight-" + CONTEXT["scheduled_time"])


def test_the_whole_create_schedule_request_is_valid_for_the_scheduler_service():
    request = schedule_request(CONFIG, MODEL)
    assert_valid("scheduler", "CreateSchedule", request)
    assert_valid("scheduler", "UpdateSchedule", request)
    assert request["Target"]["Arn"] == TRANSFORM_TARGET_ARN
    assert request["Target"]["RetryPolicy"] == {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 3600}
    assert request["Target"]["DeadLetterConfig"] == {"Arn": CONFIG.dead_letter_arn}
    assert (request["ScheduleExpression"], request["ScheduleExpressionTimezone"], request["State"]) == (
        "cron(30 1 ? * MON-FRI *)", "Europe/Paris", "ENABLED")
    assert "DeadLetterConfig" not in schedule_request(CONFIG.model_copy(update={"dead_letter_arn": None}),
                                                      MODEL)["Target"]


def test_reading_the_model_back_from_a_schedule():
    assert model_from_schedule(schedule_request(CONFIG, MODEL)) == MODEL
    disabled = update_request_from({**schedule_request(CONFIG, MODEL), "Arn": "arn:...", "CreationDate": "x",
                                    "ResponseMetadata": {}}, State="DISABLED")
    assert disabled["State"] == "DISABLED" and "Arn" not in disabled and "CreationDate" not in disabled
    assert model_from_schedule(disabled) == MODEL
    assert_valid("scheduler", "UpdateSchedule", disabled)


def _edited(mutate) -> dict:
    schedule = schedule_request(CONFIG, MODEL)
    request = json.loads(schedule["Target"]["Input"])
    mutate(schedule, request)
    if "Target" in schedule and schedule["Target"].get("Arn") == TRANSFORM_TARGET_ARN:
        schedule["Target"]["Input"] = json.dumps(request)
    return schedule


@pytest.mark.parametrize("mutate, message", [
    (lambda s, r: s.pop("Target"), "schedule 'greenlight-batch' has no Target"),
    (lambda s, r: s["Target"].update(Arn="arn:aws:lambda:us-east-1:123456789012:function:x"), "targets 'arn:aws:lambda"),
    (lambda s, r: r.pop("Tags"), "has no Tags naming the model version"),
    (lambda s, r: r.pop("ModelName"), "has no ModelName"),
    (lambda s, r: r["Tags"].pop(0), "lacks the tag greenlight:model-package-group"),
    (lambda s, r: r["Tags"][1].update(Value="seven"), "tag greenlight:model-version is 'seven', not a version number"),
    (lambda s, r: r.update(Tags="v7"), "has no Tags"),
])
def test_a_hand_edited_schedule_gives_a_clear_error(mutate, message):
    with pytest.raises(ScheduleInputError, match=re.escape(message)):
        model_from_schedule(_edited(mutate))


@pytest.mark.parametrize("text, message", [("not json", "its Input is not JSON"), ("[1, 2]", "is not a JSON object"),
                                           ("", "its Input is not JSON")])
def test_an_input_that_is_not_a_json_object_gives_a_clear_error(text, message):
    schedule = schedule_request(CONFIG, MODEL)
    schedule["Target"]["Input"] = text
    with pytest.raises(ScheduleInputError, match=message):
        model_from_schedule(schedule)


def test_aws_needs_s3_locations_and_a_role():
    with pytest.raises(ConfigurationError, match="input 'data/in' and output 'out' must be s3://"):
        transform_job_input(BatchConfig(input="data/in", output="out"), MODEL)
    with pytest.raises(ConfigurationError, match="needs role_arn"):
        schedule_request(CONFIG.model_copy(update={"role_arn": None}), MODEL)
    local = schedule_request(BatchConfig(input="data/in", output="out"), MODEL, local=True)
    assert json.loads(local["Target"]["Input"])["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] == "data/in"


def test_single_record_without_a_payload_limit_sets_no_payload_environment():
    config = BatchConfig(input="s3://bucket-a/in/", output="s3://bucket-a/out/", strategy="SingleRecord",
                         max_payload_mb=0, role_arn=CONFIG.role_arn)
    request = transform_job_input(config, MODEL)
    assert "Environment" not in request and request["MaxPayloadInMB"] == 0
    assert_valid("sagemaker", "CreateTransformJob", json.loads(substitute_context(json.dumps(request), **CONTEXT)))


def test_the_checks_above_do_catch_an_invalid_request():
    request = json.loads(substitute_context(schedule_request(CONFIG, MODEL)["Target"]["Input"], **CONTEXT))
    shape = session().get_service_model("sagemaker").operation_model("CreateTransformJob").input_shape
    named_by_time = {**request, "TransformJobName": "greenlight-2026-11-30T01:30:00Z"}
    assert any("TransformJobName" in e for e in strict_errors(shape, named_by_time))
    assert any("BatchStrategy" in e for e in strict_errors(shape, {**request, "BatchStrategy": "Many"}))
    missing = {k: v for k, v in request.items() if k != "ModelName"}
    assert ParamValidator().validate(missing, shape).has_errors()


def test_names_default_to_the_group():
    config = BatchConfig(input="s3://bucket-a/in/", output="s3://bucket-a/out/",
                         role_arn="arn:aws:iam::123456789012:role/r")
    request = schedule_request(config, MODEL)
    assert request["Name"] == "greenlight-models-batch"
    assert json.loads(request["Target"]["Input"])["TransformJobName"] == "greenlight-models-<aws.scheduler.execution-id>"


def test_the_previous_model_is_recorded_in_the_description_and_read_back():
    before = ModelRef("greenlight-models", 6, "greenlight-models-v6-m0123abcd")
    request = schedule_request(CONFIG, MODEL, previous=before)
    assert request["Description"].endswith("; before: greenlight-models/6 (greenlight-models-v6-m0123abcd)")
    assert previous_model(request) == "greenlight-models-v6-m0123abcd"
    assert previous_model(schedule_request(CONFIG, MODEL)) is None
    assert previous_model(schedule_request(CONFIG, MODEL, previous=MODEL)) is None  # the same model: no "before"
    assert previous_model({"Description": "edited by hand"}) is None


def test_drift_names_each_setting_that_differs_and_ignores_state_and_description():
    wanted = schedule_request(CONFIG, MODEL)
    same = {**wanted, "State": "DISABLED", "Description": "other", "Arn": "arn:...", "CreationDate": "x"}
    assert schedule_drift(same, wanted) == []
    changed = schedule_request(CONFIG.model_copy(update={"schedule": "rate(1 hour)", "instance_count": 5,
                                                         "max_retry_attempts": 0}), MODEL)
    assert schedule_drift(changed, wanted) == ["ScheduleExpression", "Target.RetryPolicy", "Input.TransformResources"]
    garbled = {**wanted, "Target": {**wanted["Target"], "Input": "not json"}}
    assert schedule_drift(garbled, wanted) == ["Target.Input"]
