"""A release's model from S3 to a directory the image append reads: streamed, only what the image needs.

    model_dir = fetch_model(s3_client, "s3://bucket/prefix/model.tar.gz", workdir)

model.tar.gz is downloaded in parts to a file in `workdir` (boto3's transfer manager: never held in
memory), then unpacked without the files the image leaves out: the scikit-learn pickle (metadata.json's
NOT_SERVED keys: the image has no scikit-learn, and serving reads the forest) and `code/` (the handler
and serving modules come with the base image). deploy.image.model_files decides what goes in the layer
from what is left, and checks every sha256.
"""

from __future__ import annotations

import json
import logging
import tarfile
from pathlib import Path, PurePosixPath
from typing import Any

from deploy.image.model_files import METADATA_FILE, NOT_SERVED
from greenlight.aws_errors import aws_errors
from greenlight.errors import DataError, NotFoundError
from greenlight.store import split_s3_uri

__all__ = ["fetch_model", "unpack_serving_files"]

log = logging.getLogger(__name__)

LEFT_OUT_DIRS = ("code",)


def _name(member: tarfile.TarInfo) -> str:
    return PurePosixPath(member.name.removeprefix("./")).as_posix()


def unpack_serving_files(archive: Path, out: Path) -> Path:
    """Unpack model.tar.gz into `out`, leaving out the pickle and code/. Raises: DataError."""
    out.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = {_name(m): m for m in tar.getmembers()}
            meta = members.get(METADATA_FILE)
            meta_file = tar.extractfile(meta) if meta is not None and meta.isfile() else None
            if meta_file is None:
                raise DataError(f"{archive.name} holds no {METADATA_FILE}: not a model trained by Greenlight")
            metadata = json.load(meta_file)
            skipped = {str(metadata[k]) for k in NOT_SERVED if isinstance(metadata, dict) and metadata.get(k)}
            wanted = [m for name, m in members.items()
                      if name not in skipped and (PurePosixPath(name).parts or ("",))[0] not in LEFT_OUT_DIRS]
            tar.extractall(out, members=wanted, filter="data")
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise DataError(f"cannot unpack {archive}: {exc}") from exc
    return out


def fetch_model(s3_client: Any, uri: str, workdir: Path) -> Path:
    """Download `uri` (model.tar.gz) into workdir and unpack its serving files; returns the model directory.

    Raises:
        NotFoundError: no object at uri.
        AwsError: the download failed.
        DataError: the archive is not a usable model.
    """
    bucket, key = split_s3_uri(uri)
    workdir = Path(workdir)
    archive = workdir / "model.tar.gz"
    with aws_errors("GetObject", on_missing=lambda: NotFoundError(f"no model at {uri}")):
        s3_client.download_file(bucket, key, str(archive))
    log.info("downloaded %s (%s bytes)", uri, f"{archive.stat().st_size:,}")
    try:
        return unpack_serving_files(archive, workdir / "model")
    finally:
        archive.unlink(missing_ok=True)
