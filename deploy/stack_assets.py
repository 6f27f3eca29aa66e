"""What the stacks need outside CloudFormation: the handler's zip in S3, the base image's presence in ECR,
and emptying the repository and the bucket that CloudFormation cannot delete while they hold anything.

Every call goes through greenlight.aws_errors; the clients are injected.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from greenlight.aws_errors import aws_errors as _aws
from greenlight.errors import NotFoundError

__all__ = ["HANDLER_PREFIX", "empty_bucket", "empty_repository", "image_exists", "upload_handler"]

log = logging.getLogger(__name__)

HANDLER_PREFIX = "greenlight/handler/"


class _Gone(NotFoundError):
    """Absent (internal)."""


def upload_handler(s3: Any, bucket: str, package: Path) -> tuple[str, bool]:
    """Put the handler's zip at greenlight/handler/<its name> (named by its digest) unless it is there;
    (key, uploaded)."""
    key = HANDLER_PREFIX + Path(package).name
    try:
        with _aws("HeadObject", lambda: _Gone(key)):
            s3.head_object(Bucket=bucket, Key=key)
        return key, False
    except _Gone:
        pass
    with _aws("PutObject"):
        s3.upload_file(str(package), bucket, key)
    return key, True


def image_exists(ecr: Any, repository: str, tag: str) -> bool:
    """Whether `repository` (which may not exist yet) holds an image tagged `tag`."""
    try:
        with _aws("DescribeImages", lambda: _Gone(f"{repository}:{tag}")):
            ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])
    except _Gone:
        return False
    return True


def empty_repository(ecr: Any, repository: str) -> int:
    """Delete every image of `repository` (gone already: 0); the number deleted."""
    try:
        with _aws("ListImages", lambda: _Gone(repository)):
            pages = ecr.get_paginator("list_images").paginate(repositoryName=repository)
            ids = [image for page in pages for image in page.get("imageIds", [])]
    except _Gone:
        return 0
    unique = list({(i.get("imageDigest"), i.get("imageTag")): i for i in ids}.values())
    for start in range(0, len(unique), 100):
        with _aws("BatchDeleteImage"):
            ecr.batch_delete_image(repositoryName=repository, imageIds=unique[start:start + 100])
    return len(unique)


def empty_bucket(s3: Any, bucket: str, delete: bool = True) -> int:
    """Delete every object version and delete marker of `bucket`, then the bucket (gone already: 0);
    the number of versions deleted."""
    deleted = 0
    try:
        with _aws("ListObjectVersions", lambda: _Gone(bucket)):
            for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
                batch = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                         for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
                if batch:
                    with _aws("DeleteObjects"):
                        s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
                    deleted += len(batch)
        if delete:
            with _aws("DeleteBucket", lambda: _Gone(bucket)):
                s3.delete_bucket(Bucket=bucket)
    except _Gone:
        return deleted
    return deleted
