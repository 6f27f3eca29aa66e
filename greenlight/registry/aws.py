"""The SageMaker Model Registry behind the ModelRegistry protocol; the client is passed in.

botocore errors stop here (greenlight.aws_errors): a missing group or version becomes
NotFoundError, any other failure AwsError, both `from` the original.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from greenlight.aws_errors import aws_errors as _aws
from greenlight.errors import AwsError, NotFoundError
from greenlight.registry.model import (
    STAGE_KEY_PREFIX,
    ApprovalStatus,
    ModelLifeCycle,
    ModelVersion,
    check_create_request,
    missing_group_error,
    missing_version_error,
    parse_approval_status,
    version_from_description,
)

if TYPE_CHECKING:
    from mypy_boto3_sagemaker import SageMakerClient

__all__ = ["SageMakerModelRegistry"]

log = logging.getLogger(__name__)


class SageMakerModelRegistry:
    """ModelRegistry over SageMaker's CreateModelPackage, ListModelPackages and friends."""

    def __init__(self, sagemaker_client: SageMakerClient):
        self._sm = sagemaker_client

    def create_model_package(self, request: dict[str, Any]) -> ModelVersion:
        checked = check_create_request(request)
        group = checked["ModelPackageGroupName"]
        self._ensure_group(group)
        with _aws("CreateModelPackage"):
            arn = self._sm.create_model_package(**checked)["ModelPackageArn"]
        version = self._describe(arn)
        log.info("registered version %s of %s as %s", version.version, group, version.status.value)
        return version

    def list_versions(self, group: str | None = None, status: ApprovalStatus | None = None) -> list[ModelVersion]:
        if group is not None:
            self._require_group(group)
        groups = [group] if group is not None else self.list_groups()
        wanted = parse_approval_status(status) if status is not None else None
        versions = [self._describe(s["ModelPackageArn"]) for g in groups for s in self._summaries(g, wanted)]
        return sorted(versions, key=lambda v: (v.created, v.version), reverse=True)

    def get(self, group: str, version: int) -> ModelVersion:
        self._require_group(group)
        summaries = list(self._summaries(group))
        for summary in summaries:
            if summary.get("ModelPackageVersion") == version:
                return self._describe(summary["ModelPackageArn"])
        raise missing_version_error(group, version, [s.get("ModelPackageVersion", 0) for s in summaries])

    def update_status(
        self, group: str, version: int, status: ApprovalStatus, description: str | None = None
    ) -> ModelVersion:
        status = parse_approval_status(status)
        current = self.get(group, version)
        if current.status is status:
            # SageMaker has no conditional update, so this check is best effort between processes.
            log.info("version %s of %s is already %s: nothing changed%s", version, group, status.value,
                     " (the new description was not applied)" if description is not None else "")
            return current
        kwargs: dict[str, Any] = {"ModelPackageArn": current.arn, "ModelApprovalStatus": status.value}
        # Real SageMaker keeps ApprovalDescription and CustomerMetadataProperties when they are left
        # out of UpdateModelPackage; moto (5.2) wipes them. Passing the current values again gives the
        # same result on both.
        new_description = description if description is not None else current.approval_description
        if new_description is not None:
            kwargs["ApprovalDescription"] = new_description
        if current.customer_metadata:
            kwargs["CustomerMetadataProperties"] = dict(current.customer_metadata)
        with _aws("UpdateModelPackage", lambda: NotFoundError(f"{current.arn} disappeared before its update")):
            self._sm.update_model_package(**kwargs)
        log.info("version %s of %s: %s -> %s (%s)", version, group, current.status.value, status.value,
                 new_description or "no description")
        return self._describe(current.arn)

    def update_lifecycle(self, group: str, version: int, lifecycle: ModelLifeCycle) -> ModelVersion:
        """UpdateModelPackage with ModelLifeCycle, and the stage's record in CustomerMetadataProperties
        (STAGE_KEY_PREFIX): SageMaker keeps one ModelLifeCycle, the record keeps every stage's status."""
        current = self.get(group, version)
        key = STAGE_KEY_PREFIX + lifecycle.stage
        if (current.lifecycle is not None and current.lifecycle.to_request() == lifecycle.to_request()
                and current.customer_metadata.get(key) == lifecycle.stage_status):
            log.info("version %s of %s is already %s in %s: nothing changed", version, group,
                     lifecycle.stage_status, lifecycle.stage)
            return current
        # never ModelApprovalStatus: the promoter's policy refuses a promotion that carries it (deploy/template.yaml)
        kwargs: dict[str, Any] = {"ModelPackageArn": current.arn, "ModelLifeCycle": lifecycle.to_request(),
                                  "CustomerMetadataProperties": {**current.customer_metadata,
                                                                 key: lifecycle.stage_status}}
        with _aws("UpdateModelPackage", lambda: NotFoundError(f"{current.arn} disappeared before its update")):
            self._sm.update_model_package(**kwargs)
        log.info("version %s of %s: stage %s is %s (%s)", version, group, lifecycle.stage, lifecycle.stage_status,
                 lifecycle.stage_description or "no description")
        return self._describe(current.arn)

    def list_groups(self) -> list[str]:
        with _aws("ListModelPackageGroups"):
            pages = self._sm.get_paginator("list_model_package_groups").paginate()
            return sorted(g["ModelPackageGroupName"] for page in pages for g in page["ModelPackageGroupSummaryList"])

    # -- helpers -----------------------------------------------------------------------------

    def _summaries(self, group: str, status: ApprovalStatus | None = None) -> Iterator[Mapping[str, Any]]:
        kwargs: dict[str, Any] = {"ModelPackageGroupName": group, "SortBy": "CreationTime",
                                  "SortOrder": "Descending"}
        if status is not None:
            kwargs["ModelApprovalStatus"] = status.value
        with _aws("ListModelPackages"):
            pages = list(self._sm.get_paginator("list_model_packages").paginate(**kwargs))
        for page in pages:
            yield from page["ModelPackageSummaryList"]

    def _describe(self, arn: str) -> ModelVersion:
        with _aws("DescribeModelPackage"):
            return version_from_description(self._sm.describe_model_package(ModelPackageName=arn))

    def _require_group(self, group: str) -> None:
        with _aws("DescribeModelPackageGroup", lambda: missing_group_error(group, self.list_groups())):
            self._sm.describe_model_package_group(ModelPackageGroupName=group)

    def _ensure_group(self, group: str) -> None:
        try:
            with _aws("DescribeModelPackageGroup", lambda: NotFoundError(group)):
                self._sm.describe_model_package_group(ModelPackageGroupName=group)
            return
        except NotFoundError:
            pass
        try:
            with _aws("CreateModelPackageGroup"):
                self._sm.create_model_package_group(ModelPackageGroupName=group)
            log.info("created model package group %s", group)
        except AwsError as exc:
            if "already exists" not in str(exc).lower():  # another writer created it first
                raise
