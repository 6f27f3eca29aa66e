"""What a model version is, and the pure rules about requests, ARNs and version references.

No I/O here: both registry adapters (SQLite and SageMaker) build `ModelVersion`s from a
DescribeModelPackage-shaped dict with `version_from_description`, and check a CreateModelPackage
request with `check_create_request` before touching storage.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from greenlight.errors import NotFoundError, ParameterError

__all__ = [
    "ApprovalStatus",
    "ModelLifeCycle",
    "ModelVersion",
    "STAGE_KEY_PREFIX",
    "StageStatus",
    "check_create_request",
    "iso_z",
    "missing_group_error",
    "missing_version_error",
    "package_arn",
    "parse_approval_status",
    "parse_package_arn",
    "parse_version_ref",
    "valid_group_name",
    "version_from_description",
]

# SageMaker's pattern for ModelPackageGroupName.
_GROUP_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_PACKAGE_ARN = re.compile(
    r"^arn:aws[a-z-]*:sagemaker:(?P<region>[^:]+):(?P<account>[^:]+):"
    r"model-package/(?P<group>[^/]+)/(?P<version>[1-9][0-9]*)$"
)

# The members of the CreateModelPackage request (botocore's sagemaker service model; a unit test
# compares the two).
CREATE_REQUEST_KEYS = frozenset({
    "ModelPackageName", "ModelPackageGroupName", "ModelPackageDescription", "InferenceSpecification",
    "ValidationSpecification", "SourceAlgorithmSpecification", "CertifyForMarketplace", "Tags",
    "ModelApprovalStatus", "MetadataProperties", "ModelMetrics", "ClientToken", "Domain", "Task",
    "SamplePayloadUrl", "CustomerMetadataProperties", "DriftCheckBaselines",
    "AdditionalInferenceSpecifications", "SkipModelValidation", "SourceUri", "SecurityConfig",
    "ModelCard", "ModelLifeCycle", "ModelPackageRegistrationType", "ManagedStorageType",
})


class ApprovalStatus(str, Enum):
    """SageMaker's ModelApprovalStatus."""

    PENDING = "PendingManualApproval"
    APPROVED = "Approved"
    REJECTED = "Rejected"

    def __str__(self) -> str:
        return self.value


class StageStatus(str, Enum):
    """ModelLifeCycle.StageStatus as Greenlight writes it (SageMaker accepts any string up to 63)."""

    APPROVED = "Approved"
    REJECTED = "Rejected"

    def __str__(self) -> str:
        return self.value


# CustomerMetadataProperties key per stage ("greenlight:stage:production" -> "Approved"): ModelLifeCycle holds
# one stage at a time, so a later promotion would hide an earlier one (docs/decisions/0046).
STAGE_KEY_PREFIX = "greenlight:stage:"


@dataclass(frozen=True)
class ModelLifeCycle:
    """SageMaker's ModelLifeCycle of a model package: Stage, StageStatus, StageDescription."""

    stage: str
    stage_status: str
    stage_description: str | None = None

    def to_request(self) -> dict[str, str]:
        """The ModelLifeCycle member of UpdateModelPackage / DescribeModelPackage."""
        shape = {"Stage": self.stage, "StageStatus": self.stage_status}
        if self.stage_description:
            shape["StageDescription"] = self.stage_description
        return shape

    @classmethod
    def from_shape(cls, shape: Any) -> ModelLifeCycle | None:
        if not isinstance(shape, dict) or not shape.get("Stage"):
            return None
        return cls(shape["Stage"], shape.get("StageStatus", ""), shape.get("StageDescription"))


@dataclass(frozen=True)
class ModelVersion:
    """One version of a model package group, as either registry describes it."""

    group: str
    version: int
    arn: str
    status: ApprovalStatus
    approval_description: str | None
    model_data_url: str | None
    image: str
    content_types: tuple[str, ...]
    response_types: tuple[str, ...]
    model_metrics: dict[str, Any] = field(hash=False)
    customer_metadata: dict[str, str] = field(hash=False)
    description: str | None
    created: datetime
    modified: datetime
    # DriftCheckBaselines: the baselines a version's traffic is checked against (greenlight.monitor)
    drift_check_baselines: dict[str, Any] = field(default_factory=dict, hash=False)
    lifecycle: ModelLifeCycle | None = None

    def stage_status(self, stage: str) -> StageStatus | None:
        """This version's status in `stage`: its ModelLifeCycle when that names the stage, else the
        per-stage record Greenlight keeps beside it (STAGE_KEY_PREFIX), else None (never promoted there)."""
        value: str | None
        if self.lifecycle is not None and self.lifecycle.stage == stage:
            value = self.lifecycle.stage_status
        else:
            value = self.customer_metadata.get(STAGE_KEY_PREFIX + stage)
        try:
            return None if value is None else StageStatus(value)
        except ValueError:
            return None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: enum as its value, tuples as lists, times as ISO 8601 UTC with Z."""
        return {
            "group": self.group,
            "version": self.version,
            "arn": self.arn,
            "status": self.status.value,
            "approval_description": self.approval_description,
            "model_data_url": self.model_data_url,
            "image": self.image,
            "content_types": list(self.content_types),
            "response_types": list(self.response_types),
            "model_metrics": self.model_metrics,
            "customer_metadata": self.customer_metadata,
            "description": self.description,
            "created": iso_z(self.created, precise=True),
            "modified": iso_z(self.modified, precise=True),
            "drift_check_baselines": self.drift_check_baselines,
            "lifecycle": None if self.lifecycle is None else self.lifecycle.to_request(),
        }


def iso_z(moment: datetime, precise: bool = False) -> str:
    """'2026-11-28T17:00:14Z' (EventBridge style), or with microseconds when precise."""
    utc = _utc(moment)
    text = utc.isoformat(timespec="microseconds" if precise else "seconds")
    return text.replace("+00:00", "Z")


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def valid_group_name(name: object) -> bool:
    """True when name follows SageMaker's ModelPackageGroupName rule (1-63 letters, digits, hyphens)."""
    return isinstance(name, str) and _GROUP_NAME.match(name) is not None


def parse_approval_status(value: str | ApprovalStatus) -> ApprovalStatus:
    """ApprovalStatus from its value; ParameterError naming the allowed values otherwise."""
    try:
        return ApprovalStatus(value)
    except ValueError:
        allowed = ", ".join(s.value for s in ApprovalStatus)
        raise ParameterError(f"unknown approval status {value!r} (expected one of: {allowed})") from None


def package_arn(region: str, account: str, group: str, version: int) -> str:
    """The versioned model package ARN; SageMaker lower-cases the group name in it."""
    return f"arn:aws:sagemaker:{region}:{account}:model-package/{group.lower()}/{version}"


def parse_package_arn(arn: str) -> tuple[str, int]:
    """(group as written in the ARN, i.e. lower case; version) from a versioned model package ARN."""
    match = _PACKAGE_ARN.match(arn)
    if not match:
        raise ParameterError(
            f"not a versioned model package ARN: {arn!r} "
            "(expected arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>)"
        )
    return match["group"], int(match["version"])


def parse_version_ref(ref: str) -> tuple[str | None, int]:
    """(None, 2) for '2'; (group, version) for a model package ARN. ParameterError otherwise."""
    text = ref.strip()
    if text.startswith("arn:"):
        return parse_package_arn(text)
    if text.isdigit() and int(text) >= 1:
        return None, int(text)
    raise ParameterError(f"VERSION must be a version number such as 2 or a model package ARN, got {ref!r}")


def check_create_request(request: dict[str, Any]) -> dict[str, Any]:
    """A checked copy of a CreateModelPackage request, ModelApprovalStatus defaulted to Pending.

    Raises:
        ParameterError: unknown keys, no or invalid group name, no container with an Image,
            an unknown approval status, or non-string customer metadata.
    """
    if not isinstance(request, dict):
        raise ParameterError(f"a CreateModelPackage request must be a dict, got {type(request).__name__}")
    unknown = sorted(set(request) - CREATE_REQUEST_KEYS)
    if unknown:
        raise ParameterError(f"unknown CreateModelPackage parameter(s): {', '.join(unknown)}")
    if "ModelPackageName" in request:
        raise ParameterError("ModelPackageName is for unversioned packages; pass ModelPackageGroupName only")
    group = request.get("ModelPackageGroupName")
    if not valid_group_name(group):
        raise ParameterError(
            f"invalid ModelPackageGroupName {group!r} (1-63 letters, digits and hyphens, "
            "starting with a letter or digit)"
        )
    spec = request.get("InferenceSpecification")
    containers = spec.get("Containers") if isinstance(spec, dict) else None
    if not containers or not all(isinstance(c, dict) and c.get("Image") for c in containers):
        raise ParameterError("InferenceSpecification.Containers must list at least one container with an Image")
    metadata = request.get("CustomerMetadataProperties", {})
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in metadata.items()):
        raise ParameterError("CustomerMetadataProperties must map strings to strings")
    checked = dict(request)
    checked["ModelApprovalStatus"] = parse_approval_status(
        request.get("ModelApprovalStatus", ApprovalStatus.PENDING)).value
    return checked


def version_from_description(desc: Mapping[str, Any]) -> ModelVersion:
    """A ModelVersion from a DescribeModelPackage response (or our local equivalent)."""
    spec = desc.get("InferenceSpecification") or {}
    container = (spec.get("Containers") or [{}])[0]
    created = _utc(desc["CreationTime"])
    return ModelVersion(
        group=desc["ModelPackageGroupName"],
        version=int(desc["ModelPackageVersion"]),
        arn=desc["ModelPackageArn"],
        status=parse_approval_status(desc.get("ModelApprovalStatus") or ApprovalStatus.PENDING),
        approval_description=desc.get("ApprovalDescription"),
        model_data_url=container.get("ModelDataUrl"),
        image=container.get("Image", ""),
        content_types=tuple(spec.get("SupportedContentTypes") or ()),
        response_types=tuple(spec.get("SupportedResponseMIMETypes") or ()),
        model_metrics=dict(desc.get("ModelMetrics") or {}),
        customer_metadata=dict(desc.get("CustomerMetadataProperties") or {}),
        description=desc.get("ModelPackageDescription"),
        created=created,
        modified=_utc(desc["LastModifiedTime"]) if desc.get("LastModifiedTime") else created,
        drift_check_baselines=dict(desc.get("DriftCheckBaselines") or {}),
        lifecycle=ModelLifeCycle.from_shape(desc.get("ModelLifeCycle")),
    )


def missing_version_error(group: str, version: int, existing: list[int]) -> NotFoundError:
    """NotFoundError naming the group, the version asked for and the versions there are."""
    there = ", ".join(str(v) for v in sorted(existing)) or "none yet"
    return NotFoundError(f"model package group {group!r} has no version {version} (versions: {there})")


def missing_group_error(group: str, existing: list[str]) -> NotFoundError:
    """NotFoundError naming the group asked for and the groups there are."""
    there = ", ".join(sorted(existing)) or "none yet; register a model first (greenlight run)"
    return NotFoundError(f"no model package group {group!r} (groups: {there})")
