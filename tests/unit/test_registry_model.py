"""Pure registry rules: requests, ARNs, version references, descriptions and events."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from greenlight.errors import ParameterError
from greenlight.registry.events import state_change_event
from greenlight.registry.model import (
    CREATE_REQUEST_KEYS,
    ApprovalStatus,
    check_create_request,
    iso_z,
    package_arn,
    parse_approval_status,
    parse_package_arn,
    parse_version_ref,
    version_from_description,
)

CONTAINERS = {"Containers": [{"Image": "img:1", "ModelDataUrl": "s3://b/m.tar.gz"}]}


def test_approval_status_values_are_sagemakers():
    assert [s.value for s in ApprovalStatus] == ["PendingManualApproval", "Approved", "Rejected"]
    assert ApprovalStatus.APPROVED == "Approved"
    assert parse_approval_status("Rejected") is ApprovalStatus.REJECTED
    with pytest.raises(ParameterError, match="PendingManualApproval, Approved, Rejected"):
        parse_approval_status("approved")


def test_package_arn_round_trips_with_the_group_lower_cased():
    arn = package_arn("local", "000000000000", "My-Models", 12)
    assert arn == "arn:aws:sagemaker:local:000000000000:model-package/my-models/12"
    assert parse_package_arn(arn) == ("my-models", 12)


@pytest.mark.parametrize("ref, expected", [
    ("2", (None, 2)),
    (" 17 ", (None, 17)),
    ("arn:aws:sagemaker:us-east-1:123456789012:model-package/greenlight-models/3", ("greenlight-models", 3)),
])
def test_parse_version_ref(ref, expected):
    assert parse_version_ref(ref) == expected


@pytest.mark.parametrize("ref", ["0", "-1", "latest", "2.0", "",
                                 "arn:aws:sagemaker:us-east-1:1:model-package/unversioned",
                                 "arn:aws:sagemaker:us-east-1:1:model-package-group/g"])
def test_parse_version_ref_refuses_anything_else(ref):
    with pytest.raises(ParameterError):
        parse_version_ref(ref)


def test_known_request_keys_are_botocores_create_model_package_members():
    import botocore.session

    operation = botocore.session.get_session().get_service_model("sagemaker").operation_model("CreateModelPackage")
    assert set(operation.input_shape.members) == CREATE_REQUEST_KEYS


def test_check_create_request_defaults_to_pending_and_copies():
    request = {"ModelPackageGroupName": "g", "InferenceSpecification": CONTAINERS}
    checked = check_create_request(request)
    assert checked["ModelApprovalStatus"] == "PendingManualApproval"
    assert "ModelApprovalStatus" not in request


@pytest.mark.parametrize("change, message", [
    ({"ModelPackageGroupName": None}, "ModelPackageGroupName"),
    ({"ModelPackageGroupName": "bad name"}, "ModelPackageGroupName"),
    ({"ModelPackageGroupName": "-starts-with-hyphen"}, "ModelPackageGroupName"),
    ({"ModelPackageGroupName": "x" * 64}, "ModelPackageGroupName"),
    ({"ModelPackageName": "unversioned"}, "ModelPackageName"),
    ({"InferenceSpecification": {"Containers": [{"ModelDataUrl": "s3://b/m"}]}}, "Image"),
    ({"InferenceSpecification": None}, "InferenceSpecification"),
    ({"ModelApprovalStatus": "Yes"}, "approval status"),
    ({"CustomerMetadataProperties": {"n": 1}}, "CustomerMetadataProperties"),
    ({"Bogus": 1, "Other": 2}, "Bogus, Other"),
])
def test_check_create_request_refuses_bad_requests(change, message):
    request = {"ModelPackageGroupName": "g", "InferenceSpecification": CONTAINERS, **change}
    with pytest.raises(ParameterError, match=message):
        check_create_request(request)


def description(**overrides):
    desc = {
        "ModelPackageGroupName": "g",
        "ModelPackageVersion": 3,
        "ModelPackageArn": "arn:aws:sagemaker:local:000000000000:model-package/g/3",
        "CreationTime": datetime(2026, 11, 28, 17, 0, 14, 123456),  # naive: read as UTC
        "InferenceSpecification": {**CONTAINERS, "SupportedContentTypes": ["text/csv"]},
        "ModelApprovalStatus": "Approved",
        "ModelMetrics": {},
    }
    desc.update(overrides)
    return desc


def test_version_from_description_fills_gaps_and_normalises_times():
    v = version_from_description(description())
    assert (v.group, v.version, v.status) == ("g", 3, ApprovalStatus.APPROVED)
    assert (v.image, v.model_data_url, v.content_types, v.response_types) == (
        "img:1", "s3://b/m.tar.gz", ("text/csv",), ())
    assert v.created.tzinfo is UTC and v.modified == v.created  # no LastModifiedTime yet
    later = datetime(2026, 11, 28, 20, 0, tzinfo=timezone(timedelta(hours=2)))
    assert version_from_description(description(LastModifiedTime=later)).modified == datetime(
        2026, 11, 28, 18, 0, tzinfo=UTC)
    assert version_from_description(description(ModelApprovalStatus=None)).status is ApprovalStatus.PENDING


def test_to_dict_is_json_with_z_times():
    data = version_from_description(description(CustomerMetadataProperties={"k": "v"})).to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["created"] == "2026-11-28T17:00:14.123456Z"
    assert data["status"] == "Approved" and data["content_types"] == ["text/csv"]


def test_iso_z():
    assert iso_z(datetime(2021, 2, 24, 17, 0, 14, 999, tzinfo=UTC)) == "2021-02-24T17:00:14Z"


def test_state_change_event_is_eventbridges_envelope():
    event = state_change_event(description(ApprovalDescription=None, CustomerMetadataProperties={}),
                               account="000000000000", region="local", event_id="e-1",
                               time=datetime(2026, 11, 28, 17, 1, tzinfo=UTC))
    assert {k: event[k] for k in ("version", "id", "detail-type", "source", "account", "time", "region")} == {
        "version": "0", "id": "e-1", "detail-type": "SageMaker Model Package State Change",
        "source": "aws.sagemaker", "account": "000000000000", "time": "2026-11-28T17:01:00Z", "region": "local"}
    assert event["resources"] == ["arn:aws:sagemaker:local:000000000000:model-package/g/3"]
    detail = event["detail"]
    assert detail["CreationTime"] == "2026-11-28T17:00:14Z"
    assert detail["ModelPackageVersion"] == 3
    assert "ApprovalDescription" not in detail and "CustomerMetadataProperties" not in detail
    json.dumps(event)
