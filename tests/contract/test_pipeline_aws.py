"""`greenlight pipeline upsert/start` against moto's real HTTP server (not an in-process mock)."""

from __future__ import annotations

import json

import pytest

from greenlight.cli import main
from tests.contract.conftest import REGION, aws_client

ROLE = "arn:aws:iam::123456789012:role/greenlight-pipeline"


@pytest.fixture
def aws_env(moto_endpoint, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    for name in ("SAGEMAKER_PROJECT_NAME", "SAGEMAKER_PROJECT_ID", "SAGEMAKER_PIPELINE_ROLE_ARN", "ARTIFACT_BUCKET"):
        monkeypatch.delenv(name, raising=False)
    aws_client("s3", moto_endpoint).create_bucket(Bucket="gl-bucket")
    return moto_endpoint


@pytest.mark.slow
def test_upsert_creates_then_updates_with_tags_and_uploads(aws_env, monkeypatch, capsys):
    monkeypatch.setenv("SAGEMAKER_PROJECT_NAME", "churn")
    monkeypatch.setenv("SAGEMAKER_PROJECT_ID", "p-42")
    monkeypatch.setenv("SAGEMAKER_PIPELINE_ROLE_ARN", ROLE)
    monkeypatch.setenv("ARTIFACT_BUCKET", "gl-bucket")
    sm, s3 = aws_client("sagemaker", aws_env), aws_client("s3", aws_env)

    assert main(["pipeline", "upsert", "--tag", "team=ml"]) == 0
    assert "created pipeline churn-p-42" in capsys.readouterr().out
    described = sm.describe_pipeline(PipelineName="churn-p-42")
    definition = json.loads(described["PipelineDefinition"])
    assert described["RoleArn"] == ROLE
    assert {s["Name"] for s in definition["Steps"]} == {"Preprocess", "Train", "Evaluate", "CheckRmse"}
    tags = {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=described["PipelineArn"])["Tags"]}
    assert tags == {"sagemaker:project-name": "churn", "sagemaker:project-id": "p-42", "team": "ml"}
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="gl-bucket")["Contents"]}
    assert "churn-p-42/data/diabetes.csv" in keys, "the default data set goes to InputDataUrl's default"
    assert any(k.endswith("/preprocess.py") for k in keys) and any(k.endswith("input/code/train.py") for k in keys)

    assert main(["pipeline", "upsert"]) == 0
    assert "updated pipeline churn-p-42" in capsys.readouterr().out
    assert len(sm.list_pipelines()["PipelineSummaries"]) == 1


@pytest.mark.slow
def test_upsert_definition_equals_the_offline_one(aws_env, capsys):
    assert main(["pipeline", "definition", "--role-arn", ROLE, "--bucket", "gl-bucket"]) == 0
    offline = capsys.readouterr().out
    assert main(["pipeline", "upsert", "--role-arn", ROLE, "--bucket", "gl-bucket"]) == 0
    online = aws_client("sagemaker", aws_env).describe_pipeline(PipelineName="greenlight-training")
    assert json.loads(online["PipelineDefinition"]) == json.loads(offline)


def test_upsert_without_role_or_bucket_is_one_clear_line(aws_env, capsys):
    assert main(["pipeline", "upsert"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--role-arn / SAGEMAKER_PIPELINE_ROLE_ARN" in err and "ARTIFACT_BUCKET" in err


@pytest.mark.slow
def test_start_passes_parameters_and_rejects_unknown_ones(aws_env, capsys):
    assert main(["pipeline", "upsert", "--role-arn", ROLE, "--bucket", "gl-bucket"]) == 0
    sm = aws_client("sagemaker", aws_env)
    assert main(["pipeline", "start", "--param", "NEstimators=50", "--param", "RmseThreshold=60.5"]) == 0
    arn = capsys.readouterr().out.split("started ")[1].split()[0]
    executions = sm.list_pipeline_executions(PipelineName="greenlight-training")["PipelineExecutionSummaries"]
    assert [e["PipelineExecutionArn"] for e in executions] == [arn]
    params = {p["Name"]: p["Value"] for p in
              sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)["PipelineParameters"]}
    assert params == {"NEstimators": "50", "RmseThreshold": "60.5"}

    assert main(["pipeline", "start", "--param", "Trees=5"]) == 2
    assert "unknown pipeline parameter 'Trees'" in capsys.readouterr().err
    assert main(["pipeline", "start", "--param", "NEstimators=many"]) == 2
    assert "parameter NEstimators is Integer, but 'many' is not" in capsys.readouterr().err
    assert len(sm.list_pipeline_executions(PipelineName="greenlight-training")["PipelineExecutionSummaries"]) == 1


def test_start_of_a_missing_pipeline_names_the_aws_error(aws_env, capsys):
    assert main(["pipeline", "start", "--pipeline-name", "nope"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("greenlight: error: AWS StartPipelineExecution failed: ")


def test_unreachable_aws_or_no_credentials_is_one_line(monkeypatch, capsys):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    assert main(["pipeline", "upsert", "--role-arn", ROLE, "--bucket", "gl-bucket"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("greenlight: error: AWS PutObject failed: Could not connect")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert main(["pipeline", "start"]) == 1
    assert capsys.readouterr().err.strip() == "greenlight: error: AWS StartPipelineExecution failed: Unable to locate credentials"
