"""`greenlight models ... --target aws` end to end against moto's SageMaker (HTTP server).

The command builds its own boto3 client (it is the composition root); botocore's standard
AWS_ENDPOINT_URL_SAGEMAKER variable points that client at moto.
"""

from __future__ import annotations

import json

import pytest

from greenlight.cli import main
from greenlight.registry import ApprovalStatus, SageMakerModelRegistry
from greenlight.settings import DEFAULT_MODEL_PACKAGE_GROUP as GROUP


@pytest.fixture
def registry(sagemaker_client, moto_endpoint, monkeypatch) -> SageMakerModelRegistry:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", moto_endpoint)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    registry = SageMakerModelRegistry(sagemaker_client)
    for _ in range(2):
        registry.create_model_package({
            "ModelPackageGroupName": GROUP,
            "InferenceSpecification": {"Containers": [{"Image": "sklearn:1.9-0", "ModelDataUrl": "s3://b/m.tar.gz"}]},
            "ModelMetrics": {"ModelQuality": {"Statistics": {"ContentType": "application/json",
                                                             "S3Uri": "s3://b/evaluation.json"}}},
            "CustomerMetadataProperties": {"sklearn_version": "1.9.0"},
        })
    return registry


def test_approve_list_and_show_on_aws(registry, capsys):
    assert main(["models", "approve", "2", "--target", "aws", "--description", "ship it"]) == 0
    assert "Approved version 2 of greenlight-models" in capsys.readouterr().out
    approved = registry.get(GROUP, 2)
    assert (approved.status, approved.approval_description) == (ApprovalStatus.APPROVED, "ship it")
    assert approved.customer_metadata == {"sklearn_version": "1.9.0"}

    assert main(["models", "list", "--target", "aws", "--json"]) == 0
    assert [(v["version"], v["status"]) for v in json.loads(capsys.readouterr().out)] == [
        (2, "Approved"), (1, "PendingManualApproval")]

    assert main(["models", "show", approved.arn, "--target", "aws", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["arn"] == approved.arn
    [metrics] = shown["metric_values"]
    assert metrics["values"] is None and "local storage only" in metrics["note"]


def test_unknown_version_on_aws_is_one_line(registry, capsys):
    assert main(["models", "reject", "9", "--target", "aws"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no version 9 (versions: 1, 2)" in err
    assert [v.status for v in registry.list_versions(GROUP)] == [ApprovalStatus.PENDING] * 2
