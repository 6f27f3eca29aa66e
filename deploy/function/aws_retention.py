"""Retention for the Lambda target on AWS: old function versions, then the model image tags nothing runs.

Function versions Greenlight published (their Description says so, for this group) beyond `retention`
are deleted (DeleteFunction with a Qualifier), never the alias's version, the one before it (the alias's
Description names it), nor one holding a model version the reconcile keeps (what runs, what is desired).
Then model image tags `<group>-v<N>` in the ECR repository (BatchDeleteImage) beyond `retention`, never
a tag whose image a remaining version or $LATEST runs: Lambda pins a version to its image digest, and a
version whose image is gone cannot start (ImageDeleted). Other tags (the base image's) are never touched.
Every failure is logged and skipped: retention is housekeeping.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from deploy.function.model import VersionRecord, image_digest, tags_to_prune, versions_to_prune
from greenlight.aws_errors import aws_call, aws_errors
from greenlight.errors import GreenlightError

if TYPE_CHECKING:
    from deploy.function.aws import AwsLambdaTarget, Live

__all__ = ["prune_function", "repository_tags"]

log = logging.getLogger(__name__)


def _number(version: str | None) -> int | None:
    return int(version) if version and version.isdigit() else None


def repository_tags(ecr_client, repository: str) -> dict[str, str]:
    """Every tag of the repository -> its image digest (DescribeImages, paginated). Raises: AwsError."""
    tags: dict[str, str] = {}
    with aws_errors("DescribeImages"):
        pages = ecr_client.get_paginator("describe_images").paginate(repositoryName=repository,
                                                                     filter={"tagStatus": "TAGGED"})
        for page in pages:
            for image in page.get("imageDetails", []):
                for tag in image.get("imageTags") or []:
                    tags[tag] = image["imageDigest"]
    return tags


def prune_function(target: AwsLambdaTarget, live: Live, keep: frozenset[int]) -> list[str]:
    """Delete what is beyond retention (module docstring); returns what was deleted, in words."""
    done: list[str] = []
    try:
        versions = {int(v["Version"]): VersionRecord.parse(v.get("Description")) for v in target._versions()}
    except GreenlightError as exc:
        log.warning("%s: not pruning, cannot list its versions: %s", target.function, exc)
        return done
    ours = {n: r for n, r in versions.items() if r is not None and r.group == target.group}
    doomed = versions_to_prune({n: r.model_version for n, r in ours.items()},
                               (_number(live.version), _number(live.previous)), keep, target.retention)
    for number in doomed:
        try:
            aws_call("DeleteFunction", target.client.delete_function, FunctionName=target.function,
                     Qualifier=str(number))
        except GreenlightError as exc:
            log.warning("%s: cannot delete version %s: %s", target.function, number, exc)
            continue
        del ours[number]
        done.append(f"function version {number} (model v{versions[number].model_version})")
    if target.ecr is None:
        return done
    try:
        latest = aws_call("GetFunction", target.client.get_function, FunctionName=target.function)
        running = {r.digest for r in ours.values() if r.digest} | {live.digest} | {
            image_digest((latest.get("Code") or {}).get("ImageUri"))}
        tags = repository_tags(target.ecr, target.repository)
    except GreenlightError as exc:
        log.warning("%s: not pruning model images: %s", target.repository, exc)
        return done
    doomed_tags = tags_to_prune(tags, target.group, {d for d in running if d}, keep, target.retention)
    for start in range(0, len(doomed_tags), 100):  # BatchDeleteImage takes at most 100 image ids
        chunk = doomed_tags[start:start + 100]
        try:
            answer = aws_call("BatchDeleteImage", target.ecr.batch_delete_image, repositoryName=target.repository,
                              imageIds=[{"imageTag": tag} for tag in chunk])
        except GreenlightError as exc:
            log.warning("%s: cannot delete model image tags %s: %s", target.repository, chunk, exc)
            continue
        failed = {f.get("imageId", {}).get("imageTag"): f.get("failureReason") for f in answer.get("failures", [])}
        for tag, reason in failed.items():
            log.warning("%s: cannot delete model image tag %s: %s", target.repository, tag, reason)
        done += [f"model image tag {target.repository}:{tag}" for tag in chunk if tag not in failed]
    return done
