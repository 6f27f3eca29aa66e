"""`greenlight models ...` against the local registry in the tmp GREENLIGHT_HOME (tests/conftest.py)."""

from __future__ import annotations

import json

import pytest

from greenlight.cli import main
from greenlight.registry import ApprovalStatus, LocalModelRegistry
from greenlight.settings import DEFAULT_MODEL_PACKAGE_GROUP, home
from greenlight.store import LocalArtifactStore

GROUP = DEFAULT_MODEL_PACKAGE_GROUP
EVALUATION = "s3://greenlight-local/evaluate/evaluation.json"


def register(registry: LocalModelRegistry, group: str = GROUP, **overrides):
    request = {
        "ModelPackageGroupName": group,
        "ModelPackageDescription": "Random Forest regressor",
        "InferenceSpecification": {
            "Containers": [{"Image": "sagemaker-scikit-learn:1.9-0-cpu-py3",
                            "ModelDataUrl": "s3://greenlight-local/train/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        "ModelMetrics": {"ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": EVALUATION}}},
        "CustomerMetadataProperties": {"sklearn_version": "1.9.0"},
        **overrides,
    }
    return registry.create_model_package(request)


@pytest.fixture(autouse=True)
def _no_deploy_targets(monkeypatch):
    """These versions have no real model: approving them records and delivers the event, deploys nothing."""
    monkeypatch.setenv("GREENLIGHT_ENDPOINT_ENABLED", "false")
    monkeypatch.setenv("GREENLIGHT_LAMBDA_ENABLED", "false")


@pytest.fixture
def registry() -> LocalModelRegistry:
    registry = LocalModelRegistry(home())
    register(registry)
    register(registry)
    return registry


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_approve_2_records_the_approval_and_its_event(registry, capsys):
    code, out, err = run(capsys, "models", "approve", "2", "--description", "r2 0.91")
    assert code == 0, err
    assert "Approved version 2 of greenlight-models" in out
    version = registry.get(GROUP, 2)
    assert (version.status, version.approval_description) == (ApprovalStatus.APPROVED, "r2 0.91")
    assert "Delivered 3 state-change events to the approval handler" in out  # 2 creations, 1 approval
    assert registry.pending_events() == []  # handed to the approval handler in the same command
    event = registry.events()[-1]
    assert event["delivered"] is not None
    assert event["detail-type"] == "SageMaker Model Package State Change"
    assert (event["detail"]["ModelPackageVersion"], event["detail"]["ModelApprovalStatus"],
            event["detail"]["ApprovalDescription"]) == (2, "Approved", "r2 0.91")


def test_approving_twice_says_so_and_writes_no_second_event(registry, capsys):
    run(capsys, "models", "approve", "2")
    events = len(registry.events())
    code, out, _ = run(capsys, "models", "approve", "2")
    assert code == 0 and "already Approved; nothing changed" in out
    assert len(registry.events()) == events


def test_reject_by_arn(registry, capsys):
    arn = registry.get(GROUP, 1).arn
    code, out, err = run(capsys, "models", "reject", arn, "-d", "too slow")
    assert code == 0, err
    assert "Rejected version 1" in out
    assert registry.get(GROUP, 1).status is ApprovalStatus.REJECTED


def test_list_json_is_newest_first_and_filters(registry, capsys):
    registry.update_status(GROUP, 1, ApprovalStatus.APPROVED)
    code, out, _ = run(capsys, "models", "list", "--json")
    assert code == 0
    listed = json.loads(out)
    assert [(v["version"], v["status"]) for v in listed] == [(2, "PendingManualApproval"), (1, "Approved")]
    code, out, _ = run(capsys, "models", "list", "--status", "Approved", "--json")
    assert [v["version"] for v in json.loads(out)] == [1]


def test_list_table_for_humans(registry, capsys):
    register(registry, "other-group")
    code, out, _ = run(capsys, "models", "list")
    assert code == 0
    assert "greenlight-models" in out and "PendingManualApproval" in out
    code, out, _ = run(capsys, "models", "list", "--group", "other-group", "--json")
    assert [v["group"] for v in json.loads(out)] == ["other-group"]


def test_show_resolves_the_evaluation_file_from_the_local_store(registry, capsys):
    report = {"regression_metrics": {"mse": {"value": 0.25}, "r2": {"value": 0.91}}, "test_rows": 200}
    LocalArtifactStore(home() / "s3").put_bytes(EVALUATION, json.dumps(report).encode())
    code, out, err = run(capsys, "models", "show", "2", "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["version"] == 2 and shown["arn"].endswith("/greenlight-models/2")
    assert shown["customer_metadata"] == {"sklearn_version": "1.9.0"}
    [metrics] = shown["metric_values"]
    assert (metrics["source"], metrics["uri"]) == ("ModelQuality.Statistics", EVALUATION)
    assert metrics["values"]["regression_metrics.r2.value"] == 0.91
    assert metrics["values"]["test_rows"] == 200
    code, out, _ = run(capsys, "models", "show", "2")
    assert code == 0
    assert "regression_metrics.r2.value" in out and "0.91" in out


def test_show_says_when_the_evaluation_file_is_missing(registry, capsys):
    code, out, err = run(capsys, "models", "show", "1", "--json")
    assert code == 0, err
    [metrics] = json.loads(out)["metric_values"]
    assert metrics["values"] is None and "not available locally" in metrics["note"]
    code, out, _ = run(capsys, "models", "show", "1")
    assert code == 0 and "not available locally" in out


@pytest.mark.parametrize("args, message", [
    (["models", "approve", "7"], "no version 7 (versions: 1, 2)"),
    (["models", "show", "1", "--group", "nope"], "no model package group 'nope' (groups: greenlight-models)"),
    (["models", "list", "--group", "nope"], "no model package group 'nope'"),
    (["models", "approve", "latest"], "VERSION must be a version number"),
    (["models", "reject", "2", "--target", "gcp"], "unknown --target 'gcp'"),
    (["models", "list", "--status", "approved"], "unknown approval status 'approved'"),
    (["models", "approve", "arn:aws:sagemaker:local:000000000000:model-package/greenlight-models/9"], "no version 9"),
])
def test_bad_input_is_one_line_a_non_zero_exit_and_no_change(registry, capsys, args, message):
    events = registry.events()
    code, out, err = run(capsys, *args)
    assert out == ""
    assert code != 0
    assert err.count("\n") == 1 and message in err
    assert registry.events() == events
    assert [v.status for v in registry.list_versions(GROUP)] == [ApprovalStatus.PENDING] * 2


def test_an_empty_registry_points_at_the_fix(capsys):
    code, _, err = run(capsys, "models", "list")
    assert code == 2 and "none yet" in err


def test_aws_target_needs_a_region(registry, capsys, monkeypatch):
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    code, _, err = run(capsys, "models", "list", "--target", "aws")
    assert code == 2 and "AWS_REGION" in err


@pytest.mark.parametrize("args, message", [
    (["models", "list", "--bogus"], "No such option: --bogus"),
    (["models", "approve"], "Missing argument 'VERSION'"),
])
def test_usage_errors_exit_2_and_change_nothing(registry, capsys, args, message):
    events = registry.events()
    code, out, err = run(capsys, *args)
    assert code == 2 and message in err and out == ""
    assert registry.events() == events
