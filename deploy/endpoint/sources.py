"""Model directories for the endpoint: a fixed `--model PATH` (FixedModelSource), and unpacking model.tar.gz.

The deployed version of a group comes from deploy.endpoint.deployed.DeployedSource.

A model is a SageMaker model directory (model.joblib, metadata.json, code/inference.py) or the
model.tar.gz holding one; archives are unpacked once into a content-addressed cache
(`<home>/endpoint-cache/<sha256 prefix>/`), so a restart or a second endpoint reuses them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from deploy.endpoint.loader import CODE_DIR, ENTRY_MODULE
from deploy.endpoint.slot import ModelTarget
from greenlight.errors import DataError, NotFoundError

__all__ = ["FixedModelSource", "prepare_model_dir", "unpack_archive"]

logger = logging.getLogger(__name__)

ARCHIVE_NAME = "model.tar.gz"


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def unpack_archive(archive: Path, cache_dir: Path) -> Path:
    """Unpack model.tar.gz into cache_dir/<sha256 prefix>/ (once) and return that directory.

    Raises:
        DataError: the file is not a readable tar.gz archive.
    """
    target = Path(cache_dir) / _sha256(archive)[:16]
    if (target / CODE_DIR / f"{ENTRY_MODULE}.py").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".unpack-"))
    try:
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(tmp, filter="data")
        try:
            os.replace(tmp, target)
        except OSError:  # another process unpacked the same archive first
            if not target.is_dir():
                raise
    except (tarfile.TarError, EOFError) as exc:
        raise DataError(f"cannot unpack {archive}: {exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("unpacked %s into %s", archive, target)
    return target


def prepare_model_dir(path: Path, cache_dir: Path) -> Path:
    """A servable model directory for a model dir, a model.tar.gz, or a dir holding model.tar.gz.

    Raises:
        NotFoundError: the path does not exist or holds no model.
    """
    path = Path(path).expanduser().resolve()
    if path.is_file():
        return unpack_archive(path, cache_dir)
    if not path.is_dir():
        raise NotFoundError(f"no model at {path}: pass a model directory or a model.tar.gz")
    if (path / CODE_DIR / f"{ENTRY_MODULE}.py").is_file():
        return path
    if (path / ARCHIVE_NAME).is_file():
        return unpack_archive(path / ARCHIVE_NAME, cache_dir)
    raise NotFoundError(f"{path} holds neither {CODE_DIR}/{ENTRY_MODULE}.py nor {ARCHIVE_NAME}: not a model directory")


def _label_for(model_dir: Path) -> str:
    """'local-<first 12 hex of the model's sha256>' from metadata.json, else the directory name."""
    try:
        metadata = json.loads((model_dir / "metadata.json").read_text(encoding="utf-8"))
        return f"local-{str(metadata['model_sha256'])[:12]}"
    except (OSError, ValueError, KeyError, TypeError):
        return f"local-{model_dir.name}"


class FixedModelSource:
    """Always the one model given by `--model PATH` (unpacked and checked once, at construction)."""

    def __init__(self, path: Path, cache_dir: Path, version: str | None = None):
        model_dir = prepare_model_dir(path, cache_dir)
        self.target = ModelTarget(version or _label_for(model_dir), model_dir)

    def __call__(self) -> ModelTarget:
        return self.target

    def __repr__(self) -> str:
        return f"model {self.target.version} at {self.target.model_dir}"
