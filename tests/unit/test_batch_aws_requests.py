"""The schedule and CreateTransformJob requests, checked against botocore's own service models.

botocore's ParamValidator checks types, required members and minimums; the walk below also holds
every string to its shape's pattern, maximum length and enum (what the service itself enforces).
"""

from __future__ import annotations

import json
import re

import botocore.session
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
    schedule_request,
    substitute_context,
    transform_job_input,
    update_request_from,
)
from deploy.batch.config import BatchConfig
from greenlight.errors import ConfigurationError

MODEL = ModelRef("greenlight-models", 7, "greenlight-models-v7")
CONFIG = BatchConfig(input="s3://greenlight-data/batch/in/", output="s3://greenlight-data/batch/out",
                     role_arn="arn:aws:iam::123456789012:role/greenlight-scheduler",
                     dead_letter_arn="arn:aws:sqs:us-east-1:123456789012:greenlight-batch-dlq",
                     schedule="cron(30 1 ? * MON-FRI *)", timezone="Europe/Paris", instance_count=3,
                     join_source="Input", max_payload_mb=20)
# What EventBridge Scheduler substitutes; the execution id is AWS's documented example, and a
# UUID-length one shows the name still fits.
CONTEXT = {"schedule_arn": "arn:aws:scheduler:us-east-1:123456789012:schedule/default/greenlight-batch",
           "scheduled_time": "2026-11-30T01:30:00Z", "execution_id": "d32c5kddcf5bb8c3"}


def _session():
    return botocore.session.get_session()


def _python_pattern(pattern: str) -> str:
    """AWS's Java-style Unicode classes (Tag keys and values use them) for ASCII values: \\p{L} letters,
    \\p{N} digits, \\p{Z} spaces."""
    return pattern.replace(r"\p{L}", "a-zA-Z").replace(r"\p{N}", "0-9").replace(r"\p{Z}", " ")


def strict_errors(shape, value, path="") -> list[str]:
    """Patterns, maximum lengths and enums, which ParamValidator does not check."""
    errors = []
    meta = shape.metadata
    if shape.type_name == "structure":
        for name, member in shape.members.items():
            if name in value:
                errors += strict_errors(member, value[name], f"{path}.{name}")
    elif shape.type_name == "list":
        for i, item in enumerate(value):
            errors += strict_errors(shape.member, item, f"{path}[{i}]")
    elif shape.type_name == "map":
        for key, item in value.items():
            errors += strict_errors(shape.value, item, f"{path}[{key}]")
    elif shape.type_name == "string":
        if "pattern" in meta and not re.fullmatch(_python_pattern(meta["pattern"]), value):
            errors.append(f"{path}: {value!r} does not match {meta['pattern']}")
        if "max" in meta and len(value) > meta["max"]:
            errors.append(f"{path}: longer than {meta['max']}")
        if getattr(shape, "enum", None) and value not in shape.enum:
            errors.append(f"{path}: {value!r} not in {shape.enum}")
    elif shape.type_name == "integer" and "max" in meta and value > meta["max"]:
        errors.append(f"{path}: above {meta['max']}")
    return errors


def assert_valid(service: str, operation: str, request: dict) -> None:
    shape = _session().get_service_model(service).operation_model(operation).input_shape
    report = ParamValidator().validate(request, shape)
    assert not report.has_errors(), report.generate_report()
    assert strict_errors(shape, request) == []


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
    shape = _session().get_service_model("sagemaker").operation_model("CreateTransformJob").input_shape
    named_by_time = {**request, "TransformJobName": "greenlight-2026-11-30T01:30:00Z"}
    assert any("TransformJobName" in e for e in strict_errors(shape, named_by_time))
    assert any("BatchStrategy" in e for e in strict_errors(shape, {**request, "BatchStrategy": "Many"}))
    missing = {k: v for k, v in request.items() if k != "ModelName"}
    assert ParamValidator().validate(missing, shape).has_errors()
