"""What a local job runs on: the model version (and its unpacked directory), and where s3:// lives.

The registry is anything with `list_versions(group, status)` (newest first) and `get(group,
version)`; the store maps s3:// URIs to local files (`greenlight.store.LocalArtifactStore`).
"""

from __future__ import annotations

from pathlib import Path

from greenlight.errors import NotFoundError
from greenlight.registry.model import ApprovalStatus

__all__ = ["deployed_version", "local_location", "model_dir_for"]


def deployed_version(registry, group: str) -> int:
    """The model version the batch target is deployed on, used when no version is given.

    Stand-in until the deployment engine exists: the newest Approved version of `group` (the engine's
    desired state). The coordinator replaces this with the engine's deployed state of the batch target.

    Raises:
        NotFoundError: the group has no Approved version (or does not exist).
    """
    versions = registry.list_versions(group, ApprovalStatus.APPROVED)
    if not versions:
        raise NotFoundError(f"no Approved version in model package group {group!r}: approve one "
                            "(greenlight models approve N) or pass --model-version")
    return versions[0].version


def model_dir_for(registry, store, group: str, version: int, cache_dir: Path) -> Path:
    """The unpacked model directory of a registered version (model.tar.gz unpacked once into cache_dir).

    Raises:
        NotFoundError: no such version, or its ModelDataUrl is not in the local store.
    """
    from deploy.endpoint.sources import prepare_model_dir

    found = registry.get(group, version)
    if not found.model_data_url:
        raise NotFoundError(f"version {group}/{version} has no ModelDataUrl")
    archive = store.path_for(found.model_data_url)
    if not archive.is_file():
        raise NotFoundError(f"version {group}/{version} names {found.model_data_url}, which is not in the local "
                            f"artifact store ({archive})")
    return prepare_model_dir(archive, cache_dir)


def local_location(location: str, store) -> tuple[Path, str | None]:
    """(folder or file, S3 key prefix within it or None) for a local path or an s3:// URI.

    An s3:// URI is read from the local artifact store with S3's prefix semantics: `s3://b/in/`
    or a URI naming a folder takes everything below it; `s3://b/in/part` takes the keys beginning
    with `in/part` (files of `in/` whose relative path starts with `part`).
    """
    if not location.startswith("s3://"):
        return Path(location).expanduser(), None
    path = store.path_for(location)
    if location.endswith("/") or path.is_dir() or path.is_file():
        return path, None
    return path.parent, path.name
