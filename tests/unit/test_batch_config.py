"""BatchConfig: Batch Transform semantics and the schedule, checked before anything runs."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from deploy.batch.config import TRANSFORM_INSTANCE_TYPES, BatchConfig, BatchStrategy, JoinSource, parse_batch_config
from greenlight.errors import ConfigurationError


def error_of(**fields) -> str:
    with pytest.raises(ConfigurationError) as caught:
        parse_batch_config(fields)
    return str(caught.value)


def test_defaults_validate_on_a_bare_machine():
    config = BatchConfig()
    assert (config.strategy, config.max_payload_mb, config.join_source) == (BatchStrategy.MULTI_RECORD, 6,
                                                                           JoinSource.NONE)
    assert (config.content_type, config.accept, config.split_type, config.assemble_with) == (
        "text/csv", "text/csv", "Line", "Line")
    assert config.schedule == "cron(0 2 * * ? *)" and config.timezone == "UTC"
    assert config.max_payload_bytes == 6 * 1024 * 1024
    with pytest.raises(ConfigurationError, match=r"needs input \(GREENLIGHT_BATCH_INPUT\) and output"):
        config.require_io()


def test_the_config_is_frozen():
    with pytest.raises(ValidationError):
        BatchConfig().max_payload_mb = 7


@pytest.mark.parametrize("fields, expected", [
    ({"max_payload_mb": 101}, "max_payload_mb: 101 is outside 0-100 (CreateTransformJob MaxPayloadInMB"),
    ({"max_payload_mb": -1}, "max_payload_mb: -1 is outside 0-100"),
    ({"max_payload_mb": 0}, "max_payload_mb: 0 (no limit, HTTP chunked encoding) leaves a MultiRecord"),
    ({"max_payload_mb": "six"}, "max_payload_mb: Input should be a valid integer"),
    ({"strategy": "Multi"}, "strategy: Input should be 'MultiRecord' or 'SingleRecord'"),
    ({"join_source": "Output"}, "join_source: Input should be 'None' or 'Input'"),
    ({"content_type": "application/json"}, "content_type: Input should be 'text/csv'"),
    ({"accept": "application/json"}, "accept: Input should be 'text/csv'"),
    ({"split_type": "RecordIO"}, "split_type: Input should be 'Line'"),
    ({"assemble_with": "None"}, "assemble_with: Input should be 'Line'"),
    ({"instance_type": "ml.m5.larg"}, "instance_type: 'ml.m5.larg' is not a Batch Transform instance type"),
    ({"instance_type": "ml.t2.medium"}, "instance_type: 'ml.t2.medium' is not a Batch Transform instance type"),
    ({"instance_count": 0}, "instance_count: 0 is below 1"),
    ({"schedule": "rate(1 minutes)"}, "schedule: 'rate(1 minutes)': with a value of 1 the unit is singular"),
    ({"schedule": "cron(0 2 * * * *)"}, "schedule: 'cron(0 2 * * * *)': exactly one of day-of-month"),
    ({"timezone": "Mars/Olympus"}, "timezone: 'Mars/Olympus' is not a known time zone"),
    ({"max_retry_attempts": 186}, "max_retry_attempts: 186 is outside 0-185 (RetryPolicy.MaximumRetryAttempts)"),
    ({"max_event_age_seconds": 59}, "max_event_age_seconds: 59 is outside 60-86400"),
    ({"max_event_age_seconds": 86401}, "max_event_age_seconds: 86401 is outside 60-86400"),
    ({"dead_letter_arn": "arn:aws:sns:us-east-1:123456789012:topic"}, "dead_letter_arn: 'arn:aws:sns"),
    ({"dead_letter_arn": "arn:aws:sqs:us-east-1:123456789012:q.fifo"}, "FIFO queues are not accepted"),
    ({"role_arn": "arn:aws:iam::123:role/x"}, "role_arn: 'arn:aws:iam::123:role/x' is not an IAM role ARN"),
    ({"schedule_name": "my schedule"}, "schedule_name: 'my schedule' is not 1-64"),
    ({"job_name_prefix": "greenlight-batch-predictions-x"}, "job_name_prefix: 'greenlight-batch-predictions-x' must be 1-26"),
    ({"job_name_prefix": "bad_name"}, "TransformJobName"),
    ({"input": "s3://B/in"}, "input: 's3://B/in' is not an S3 URI"),
    ({"input": "https://example.com/in"}, "only s3:// URIs and local folders"),
    ({"input": "data", "output": "data/out"}, "output: 'data/out' is inside the input 'data'"),
    ({"input": "s3://bucket/in", "output": "s3://bucket/in-results"}, "is inside the input"),
    ({"colour": "blue"}, "colour: unknown setting (known: input, output"),
])
def test_each_bad_field_is_named_with_its_rule(fields, expected):
    message = error_of(**fields)
    assert message.startswith("invalid batch configuration: ")
    assert expected in message


def test_every_bad_field_is_reported_at_once():
    message = error_of(max_payload_mb=500, schedule="rate(2 hour)", timezone="Nowhere", instance_count=0)
    problems = message.removeprefix("invalid batch configuration: ").split("; ")
    assert [p.split(":")[0] for p in problems] == ["max_payload_mb", "instance_count", "schedule", "timezone"]


def test_zero_payload_is_accepted_with_single_record():
    config = parse_batch_config({"max_payload_mb": 0, "strategy": "SingleRecord"})
    assert config.max_payload_bytes is None


def test_environment_variables_name_the_variable_in_errors():
    config = BatchConfig.from_env({"GREENLIGHT_BATCH_MAX_PAYLOAD_MB": "12", "GREENLIGHT_BATCH_STRATEGY": "SingleRecord",
                                   "GREENLIGHT_BATCH_JOIN_SOURCE": "Input", "GREENLIGHT_BATCH_INPUT": "s3://bucket/in/",
                                   "GREENLIGHT_BATCH_OUTPUT": "s3://bucket/out/", "OTHER": "x"})
    assert (config.max_payload_mb, config.strategy, config.join_input) == (12, BatchStrategy.SINGLE_RECORD, True)
    with pytest.raises(ConfigurationError) as caught:
        BatchConfig.from_env({"GREENLIGHT_BATCH_MAX_PAYLOAD_MB": "200", "GREENLIGHT_BATCH_TYPO": "1"})
    assert "GREENLIGHT_BATCH_MAX_PAYLOAD_MB: 200 is outside 0-100" in str(caught.value)
    assert "GREENLIGHT_BATCH_TYPO: unknown setting" in str(caught.value)


def test_the_instance_types_are_botocore_s_list():
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    assert TRANSFORM_INSTANCE_TYPES == frozenset(model.shape_for("TransformInstanceType").enum)
    assert BatchConfig(instance_type="ml.g6e.48xlarge").instance_type == "ml.g6e.48xlarge"
