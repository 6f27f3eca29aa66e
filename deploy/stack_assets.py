"""What the stacks need outside CloudFormation: the handler's zip in S3, the base image's presence in ECR,
the seed code and the product template of the portfolio, and emptying the repository and the bucket that
CloudFormation cannot delete while they hold anything.

Every call goes through greenlight.aws_errors; the clients are injected.
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
import zipfile
from pathlib import Path
from typing import Any

from greenlight.aws_errors import aws_errors as _aws
from greenlight.errors import ConfigurationError, NotFoundError

__all__ = ["HANDLER_PREFIX", "SEED_PREFIX", "empty_bucket", "empty_repository", "image_exists", "seed_archive",
           "upload_file", "upload_handler"]

log = logging.getLogger(__name__)

HANDLER_PREFIX = "greenlight/handler/"
SEED_PREFIX = "seed/"
_EPOCH = (1980, 1, 1, 0, 0, 0)
# never in the seed, even if tracked: local state and what builds and tests leave
_NOT_SEED = (".venv", ".git", ".greenlight", ".greenlight-demo", "__pycache__", ".pytest_cache", ".ruff_cache",
             ".hypothesis")


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


def upload_file(s3: Any, bucket: str, key: str, path: Path) -> bool:
    """Put `path` at `key` unless an object is there already (keys are content-addressed); True if uploaded."""
    try:
        with _aws("HeadObject", lambda: _Gone(key)):
            s3.head_object(Bucket=bucket, Key=key)
        return False
    except _Gone:
        pass
    with _aws("PutObject"):
        s3.upload_file(str(path), bucket, key)
    return True


def _repository_files(root: Path) -> list[Path]:
    """The checkout's files: what git tracks (with uncommitted changes), else every file but local state."""
    try:
        command = ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"]
        listed = subprocess.run(command, capture_output=True, check=True).stdout.decode().split("\0")
        files = [root / name for name in listed if name]
    except (OSError, subprocess.CalledProcessError):
        files = [p for p in root.rglob("*")]
    return sorted(p for p in files if p.is_file() and not set(p.relative_to(root).parts) & set(_NOT_SEED))


def seed_archive(root: Path, out_dir: Path) -> Path:
    """A zip of the Greenlight checkout at `root` (what a new project's pipeline starts from), written to
    out_dir as greenlight-<sha256 prefix>.zip: the same files give the same bytes and name.

    Raises:
        ConfigurationError: `root` is not a Greenlight checkout (no setup.py, buildspec.yml and deploy/).
    """
    root = Path(root)
    if not all((root / name).exists() for name in ("setup.py", "buildspec.yml", "deploy/project.yaml")):
        raise ConfigurationError(f"{root} is not a Greenlight checkout (the seed code is the repository itself): "
                                 "run `greenlight stack project` from a clone")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / ".seed.zip.partial"
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in _repository_files(root):
            info = zipfile.ZipInfo(path.relative_to(root).as_posix(), _EPOCH)
            info.external_attr = (0o755 if path.stat().st_mode & 0o111 else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    final = out_dir / f"greenlight-{hashlib.sha256(tmp.read_bytes()).hexdigest()[:12]}.zip"
    tmp.replace(final)
    return final


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
