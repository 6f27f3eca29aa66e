"""The EventBridge "SageMaker Model Package State Change" event, built from a package description.

Shape: awsdocs/amazon-sagemaker-developer-guide, doc_source/automating-sagemaker-with-eventbridge.md
(canned copies in tests/events/). Pure: the caller supplies the id and the time.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from greenlight.registry.model import iso_z

__all__ = ["DETAIL_TYPE", "SOURCE", "state_change_event"]

DETAIL_TYPE = "SageMaker Model Package State Change"
SOURCE = "aws.sagemaker"

# Copied from the description into `detail` when present, in the order AWS's example uses.
_DETAIL_KEYS = (
    "ModelPackageGroupName",
    "ModelPackageVersion",
    "ModelPackageArn",
    "ModelPackageName",
    "ModelPackageDescription",
    "CreationTime",
    "InferenceSpecification",
    "ModelPackageStatus",
    "ModelPackageStatusDetails",
    "CertifyForMarketplace",
    "ModelApprovalStatus",
    "ApprovalDescription",
    "MetadataProperties",
    "ModelMetrics",
    "CustomerMetadataProperties",
    "LastModifiedTime",
    "ModelLifeCycle",
)


def state_change_event(
    description: dict[str, Any], *, account: str, region: str, event_id: str, time: datetime
) -> dict[str, Any]:
    """The event EventBridge sends when a model package is created or its status changes."""
    detail: dict[str, Any] = {}
    for key in _DETAIL_KEYS:
        value = description.get(key)
        if value is None or (key == "CustomerMetadataProperties" and not value):
            continue
        if isinstance(value, datetime):
            value = iso_z(value)
        detail[key] = copy.deepcopy(value)
    return {
        "version": "0",
        "id": event_id,
        "detail-type": DETAIL_TYPE,
        "source": SOURCE,
        "account": account,
        "time": iso_z(time),
        "region": region,
        "resources": [description["ModelPackageArn"]],
        "detail": detail,
    }
