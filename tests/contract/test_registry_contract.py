"""One contract for both model registries: LocalModelRegistry (SQLite in a tmp dir) and
SageMakerModelRegistry against moto's HTTP server. Whatever passes here, callers may rely on."""

from __future__ import annotations

import json
from datetime import UTC

import pytest

from greenlight.errors import NotFoundError, ParameterError
from greenlight.registry import (
    ApprovalStatus,
    LocalModelRegistry,
    ModelRegistry,
    SageMakerModelRegistry,
    resolve_version,
)

GROUP = "greenlight-models"
OTHER = "Other-Group"


def request(group: str = GROUP, **overrides) -> dict:
    """A CreateModelPackage request like the pipeline's RegisterModel step sends."""
    req = {
        "ModelPackageGroupName": group,
        "ModelPackageDescription": "Random Forest regressor",
        "InferenceSpecification": {
            "Containers": [{
                "Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3",
                "ModelDataUrl": "s3://greenlight-artifacts/train/output/model.tar.gz",
            }],
            "SupportedContentTypes": ["text/csv", "application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        "ModelMetrics": {"ModelQuality": {"Statistics": {
            "ContentType": "application/json",
            "S3Uri": "s3://greenlight-artifacts/evaluate/evaluation.json",
        }}},
        "CustomerMetadataProperties": {"sklearn_version": "1.9.0", "git_sha": "abc123"},
    }
    req.update(overrides)
    return req


@pytest.fixture(params=["local", "sagemaker"])
def registry(request, tmp_path) -> ModelRegistry:
    if request.param == "local":
        return LocalModelRegistry(tmp_path / "home")
    return SageMakerModelRegistry(request.getfixturevalue("sagemaker_client"))


def test_both_adapters_implement_the_protocol(registry):
    assert isinstance(registry, ModelRegistry)


def test_versions_are_numbered_from_one_in_each_group(registry):
    # GIVEN two groups WHEN versions are registered in both THEN each group counts 1, 2, ...
    a1 = registry.create_model_package(request())
    b1 = registry.create_model_package(request(OTHER))
    a2 = registry.create_model_package(request())
    assert [(a1.group, a1.version), (b1.group, b1.version), (a2.group, a2.version)] == [
        (GROUP, 1), (OTHER, 1), (GROUP, 2)]
    assert a2.arn.endswith(f":model-package/{GROUP}/2")
    assert b1.arn.endswith(f":model-package/{OTHER.lower()}/1")  # SageMaker lower-cases the group in ARNs
    assert a1.arn.startswith("arn:aws:sagemaker:")


def test_create_returns_every_field_of_the_request(registry):
    v = registry.create_model_package(request())
    assert v.status is ApprovalStatus.PENDING  # SageMaker's default for versioned packages
    assert v.approval_description is None
    assert v.image.endswith("sagemaker-scikit-learn:1.9-0-cpu-py3")
    assert v.model_data_url == "s3://greenlight-artifacts/train/output/model.tar.gz"
    assert v.content_types == ("text/csv", "application/json")
    assert v.response_types == ("application/json",)
    assert v.model_metrics == request()["ModelMetrics"]
    assert v.customer_metadata == {"sklearn_version": "1.9.0", "git_sha": "abc123"}
    assert v.description == "Random Forest regressor"
    assert v.created.tzinfo is not None and v.created.utcoffset() == UTC.utcoffset(None)
    assert v.modified == v.created
    assert registry.get(GROUP, 1) == v
    json.dumps(v.to_dict())  # JSON-ready


def test_create_honours_an_explicit_approval_status(registry):
    v = registry.create_model_package(request(ModelApprovalStatus="Approved"))
    assert v.status is ApprovalStatus.APPROVED


def test_create_makes_the_group_when_missing(registry):
    assert registry.list_groups() == []
    registry.create_model_package(request(OTHER))
    registry.create_model_package(request())
    assert registry.list_groups() == sorted([GROUP, OTHER])


def test_an_invalid_request_changes_nothing(registry):
    with pytest.raises(ParameterError, match="InferenceSpecification"):
        registry.create_model_package(request(InferenceSpecification={"Containers": []}))
    with pytest.raises(ParameterError, match="NoSuchParameter"):
        registry.create_model_package(request(NoSuchParameter=1))
    with pytest.raises(ParameterError, match="approval status"):
        registry.create_model_package(request(ModelApprovalStatus="Maybe"))
    assert registry.list_groups() == []


def test_list_versions_is_newest_first_and_filters_by_status(registry):
    for _ in range(3):
        registry.create_model_package(request())
    registry.update_status(GROUP, 2, ApprovalStatus.APPROVED)
    assert [v.version for v in registry.list_versions(GROUP)] == [3, 2, 1]
    assert [v.version for v in registry.list_versions(GROUP, ApprovalStatus.APPROVED)] == [2]
    assert [v.version for v in registry.list_versions(GROUP, ApprovalStatus.PENDING)] == [3, 1]
    assert registry.list_versions(GROUP, ApprovalStatus.REJECTED) == []


def test_list_versions_without_a_group_covers_every_group(registry):
    registry.create_model_package(request())
    registry.create_model_package(request(OTHER))
    registry.create_model_package(request())
    listed = [(v.group, v.version) for v in registry.list_versions()]
    assert listed == [(GROUP, 2), (OTHER, 1), (GROUP, 1)]


def test_unknown_group_or_version_is_not_found_and_says_what_exists(registry):
    registry.create_model_package(request())
    registry.create_model_package(request())
    with pytest.raises(NotFoundError) as missing_version:
        registry.get(GROUP, 7)
    assert f"'{GROUP}'" in str(missing_version.value) and "version 7" in str(missing_version.value)
    assert "1, 2" in str(missing_version.value)
    with pytest.raises(NotFoundError) as missing_group:
        registry.get("no-such-group", 1)
    assert "'no-such-group'" in str(missing_group.value) and GROUP in str(missing_group.value)
    with pytest.raises(NotFoundError):
        registry.list_versions("no-such-group")


def test_approve_records_status_and_description_and_keeps_metadata(registry):
    registry.create_model_package(request())
    registry.create_model_package(request())
    approved = registry.update_status(GROUP, 2, ApprovalStatus.APPROVED, "r2 0.91 on the test split")
    assert approved.status is ApprovalStatus.APPROVED
    assert approved.approval_description == "r2 0.91 on the test split"
    assert approved.modified >= approved.created
    again = registry.get(GROUP, 2)
    assert again == approved
    assert again.customer_metadata == {"sklearn_version": "1.9.0", "git_sha": "abc123"}
    assert registry.get(GROUP, 1).status is ApprovalStatus.PENDING


def test_the_same_status_again_changes_nothing(registry):
    registry.create_model_package(request())
    first = registry.update_status(GROUP, 1, ApprovalStatus.APPROVED, "first")
    second = registry.update_status(GROUP, 1, ApprovalStatus.APPROVED, "second")
    assert second == first
    assert registry.get(GROUP, 1).approval_description == "first"


def test_a_rejected_version_can_be_approved_and_keeps_its_description_unless_given(registry):
    registry.create_model_package(request())
    registry.update_status(GROUP, 1, ApprovalStatus.REJECTED, "too slow")
    approved = registry.update_status(GROUP, 1, ApprovalStatus.APPROVED)
    assert approved.status is ApprovalStatus.APPROVED
    assert approved.approval_description == "too slow"  # SageMaker keeps it when not passed
    assert approved.customer_metadata == request()["CustomerMetadataProperties"]
    back = registry.update_status(GROUP, 1, ApprovalStatus.REJECTED, "rolled back")
    assert (back.status, back.approval_description) == (ApprovalStatus.REJECTED, "rolled back")


def test_updating_an_unknown_version_changes_nothing(registry):
    registry.create_model_package(request())
    with pytest.raises(NotFoundError, match="version 5"):
        registry.update_status(GROUP, 5, ApprovalStatus.APPROVED)
    with pytest.raises(ParameterError):
        registry.update_status(GROUP, 1, "Maybe")
    assert [v.status for v in registry.list_versions(GROUP)] == [ApprovalStatus.PENDING]


def test_resolve_version_takes_a_number_or_the_arn(registry):
    registry.create_model_package(request(OTHER))
    v = registry.create_model_package(request(OTHER))
    assert resolve_version(registry, "2", OTHER) == v
    assert resolve_version(registry, v.arn, GROUP) == v  # the ARN wins over --group
    foreign = v.arn.replace(v.arn.split(":")[4], "999999999999")
    with pytest.raises(NotFoundError, match="not in this registry"):
        resolve_version(registry, foreign, OTHER)
    with pytest.raises(ParameterError):
        resolve_version(registry, "latest", OTHER)


# -- ModelLifeCycle (issue 21) --------------------------------------------------------------------

def test_lifecycle_is_set_read_back_and_each_stage_remembered(registry):
    from greenlight.registry.model import ModelLifeCycle, StageStatus

    v = registry.create_model_package(request())
    registry.update_status(GROUP, v.version, ApprovalStatus.APPROVED, "ok")
    after = registry.update_lifecycle(GROUP, v.version, ModelLifeCycle("preprod", "Approved", "soaked a day"))
    after = registry.update_lifecycle(GROUP, v.version, ModelLifeCycle("production", "Approved"))
    assert after.lifecycle == ModelLifeCycle("production", "Approved")
    assert registry.get(GROUP, v.version).lifecycle == ModelLifeCycle("production", "Approved")
    # ModelLifeCycle holds one stage; the earlier promotion is still known (per-stage record)
    assert (after.stage_status("preprod"), after.stage_status("production"), after.stage_status("qa")) == (
        StageStatus.APPROVED, StageStatus.APPROVED, None)
    # neither the approval nor the other metadata is lost on the way
    assert (after.status, after.approval_description) == (ApprovalStatus.APPROVED, "ok")
    assert after.customer_metadata["git_sha"] == "abc123"
    rejected = registry.update_lifecycle(GROUP, v.version, ModelLifeCycle("production", "Rejected"))
    assert (rejected.stage_status("production"), rejected.stage_status("preprod")) == (
        StageStatus.REJECTED, StageStatus.APPROVED)
    assert rejected.to_dict()["lifecycle"] == {"Stage": "production", "StageStatus": "Rejected"}


def test_lifecycle_of_a_missing_version_is_not_found(registry):
    from greenlight.registry.model import ModelLifeCycle

    registry.create_model_package(request())
    with pytest.raises(NotFoundError):
        registry.update_lifecycle(GROUP, 9, ModelLifeCycle("production", "Approved"))


def test_a_promotion_on_aws_carries_only_what_the_promoters_policy_allows(sagemaker_client):
    """UpdateModelPackage of a promotion names ModelLifeCycle and the stage's record, never ModelApprovalStatus
    nor metadata to remove: deploy/template.yaml's PromoterRole refuses both (tests/unit/test_template_stages.py)."""
    from greenlight.registry.model import ModelLifeCycle

    registry = SageMakerModelRegistry(sagemaker_client)
    v = registry.create_model_package(request())
    registry.update_status(GROUP, v.version, ApprovalStatus.APPROVED, "ok")
    sent: list[dict] = []
    sagemaker_client.meta.events.register("provide-client-params.sagemaker.UpdateModelPackage",
                                          lambda params, **_: sent.append(dict(params)))
    registry.update_lifecycle(GROUP, v.version, ModelLifeCycle("production", "Approved"))
    [params] = sent
    assert set(params) == {"ModelPackageArn", "ModelLifeCycle", "CustomerMetadataProperties"}, params
    assert params["ModelLifeCycle"] == {"Stage": "production", "StageStatus": "Approved"}
