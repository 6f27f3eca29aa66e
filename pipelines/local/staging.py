"""Input data for a local run: check the CSV files behind `--data` and put them in the artifact store.

Refuses what cannot be read before anything runs; the default is the shipped diabetes data.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from greenlight.data import default_dataset_csv
from greenlight.errors import DataError
from greenlight.store import LocalArtifactStore
from pipelines.config import PipelineConfig

__all__ = ["check_csv", "check_input_uri", "stage_data"]


def check_csv(path: Path) -> list[Path]:
    """The CSV files behind --data (a file, or every *.csv under a directory), each checked readable.

    Raises:
        DataError: the path is missing, holds no .csv, or a file is empty or not UTF-8 text.
    """
    if not path.exists():
        raise DataError(f"--data {path}: no such file or directory")
    files = sorted(p for p in path.rglob("*.csv")) if path.is_dir() else [path]
    if not files:
        raise DataError(f"--data {path}: no .csv files in the directory")
    for file in files:
        try:
            with open(file, encoding="utf-8") as fh:
                header = fh.readline()
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"--data {file}: cannot read it as UTF-8 text: {exc}") from None
        if not header.strip():
            raise DataError(f"--data {file}: empty file (a CSV with a header line is needed)")
    return files


def stage_data(store: LocalArtifactStore, config: PipelineConfig, data: Path | None) -> str:
    """Put the input data in the local artifact store; return its S3 URI (a prefix for --data).

    Files land under a prefix named by a digest of their content, so two data sets never mix.
    """
    if data is None:
        store.put_bytes(config.default_input_uri, default_dataset_csv())
        return config.default_input_uri
    files = check_csv(data)
    digest = hashlib.sha256()  # of the files' bytes one after another, read in blocks
    for file in files:
        with open(file, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    prefix = f"s3://{config.bucket}/{config.prefix}/data/{digest.hexdigest()[:12]}"
    for file in files:
        rel = file.relative_to(data).as_posix() if data.is_dir() else file.name
        store.put_bytes(f"{prefix}/{rel}", file.read_bytes())
    return prefix


def check_input_uri(store: LocalArtifactStore, uri: str) -> str:
    """An InputDataUrl given with --param must name objects in the local artifact store.

    Raises:
        DataError: naming the URI and the local path it maps to.
    """
    if not store.list(uri):
        raise DataError(f"InputDataUrl {uri} has no objects in the local artifact store "
                        f"({store.path_for(uri)}); stage a file there or use --data FILE")
    return uri
