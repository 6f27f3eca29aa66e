"""What a local job runs on: the model version (and its unpacked directory), and where s3:// lives.

The deployed version is the one the local batch schedule names (kept by reconcile: deploy.batch.
local_target). The registry is anything with `get(group, version)`; the store maps s3:// URIs to
local files (`greenlight.store.LocalArtifactStore`).
"""

from __future__ import annotations

from pathlib import Path

from deploy.batch.aws_requests import ScheduleInputError, model_from_schedule
from deploy.batch.local_schedule import read_local_schedule
from greenlight.errors import NotFoundError

__all__ = ["deployed_version", "local_location", "model_dir_for"]


def deployed_version(home: Path, group: str, schedule_name: str) -> int:
    """The version the local batch target is deployed on: the one its schedule names (what the
    scheduler's next run uses, and `greenlight batch run` when no version is given).

    Raises:
        NotFoundError: there is no schedule, it is DISABLED (no version is Approved), or it runs
            another group; the message says to approve a version or pass --model-version.
    """
    schedule = read_local_schedule(home, schedule_name)
    fix = "approve a version (greenlight models approve N) or pass --model-version"
    if schedule is None:
        raise NotFoundError(f"no version of {group!r} is deployed on the local batch target (there is no schedule "
                            f"{schedule_name!r} yet): {fix}")
    try:
        ref = model_from_schedule(schedule)
    except ScheduleInputError as exc:
        raise NotFoundError(f"the local batch schedule {schedule_name!r} names no version ({exc}): {fix}") from None
    if ref.group != group:
        raise NotFoundError(f"the local batch schedule {schedule_name!r} runs {ref.label}, not a version of "
                            f"{group!r}: {fix}")
    if schedule.get("State") != "ENABLED":
        raise NotFoundError(f"the local batch schedule {schedule_name!r} is {schedule.get('State')} (no version of "
                            f"{group!r} is Approved; it last ran v{ref.version}): {fix}")
    return ref.version


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
