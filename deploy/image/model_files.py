"""Which files of a trained model directory go into the Lambda image: the one place that decides.

metadata.json (written by src/train.py) names every file it vouches for, with its sha256:

- each `<name>_file` key with a `<name>_sha256` beside it (today `forest_file` -> forest.json, the
  forest's manifest, and `model_file` -> model.joblib; models of earlier versions: forest.npz);
- each `<name>_files` key holding a mapping of relative path -> sha256 (today `forest_files`: the
  forest's arrays, forest.<array>.npy).

The image takes metadata.json and every file so named, except the scikit-learn pickle (`model_file`):
the image has no scikit-learn, and serving reads the pickle only when no forest file exists. A model
format that adds or renames files adds keys to metadata.json, and the image follows without a change
here. Used by the registry append (deploy/image/append.py) and, for `docker build`, as

    python -m deploy.image.model_files MODEL_DIR OUT_DIR      # copies the files; then --build-arg MODEL_DIR=OUT_DIR
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from greenlight.errors import DataError

__all__ = ["METADATA_FILE", "MODEL_PATH", "NOT_SERVED", "ModelFile", "model_layer_files", "stage_model_files"]

METADATA_FILE = "metadata.json"
MODEL_PATH = "/opt/ml/model"  # GREENLIGHT_MODEL_DIR in deploy/lambda/Dockerfile: where the handler reads
NOT_SERVED = frozenset({"model_file"})  # metadata keys of files the image leaves out


@dataclass(frozen=True)
class ModelFile:
    """One file of the model layer: `name` relative to the model directory (POSIX), its recorded sha256."""

    name: str
    path: Path
    sha256: str | None  # None for metadata.json itself


def model_layer_files(model_dir: Path | str) -> list[ModelFile]:
    """The files of `model_dir` the image carries, metadata.json first, then by name.

    Raises:
        DataError: no readable metadata.json, a named file missing or outside the directory, a
            malformed entry, or no file to serve at all.
    """
    model_dir = Path(model_dir)
    meta_path = model_dir / METADATA_FILE
    try:
        metadata = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{model_dir} is not a trained model directory: cannot read {METADATA_FILE} ({exc})") from None
    if not isinstance(metadata, dict):
        raise DataError(f"{meta_path} is not a JSON object")
    named: dict[str, str] = {}
    for key, value in sorted(metadata.items()):
        if key.endswith("_file") and key not in NOT_SERVED and f"{key[:-5]}_sha256" in metadata:
            named[_name(value, key, meta_path)] = _digest(metadata[f"{key[:-5]}_sha256"], key, meta_path)
        elif key.endswith("_files") and isinstance(value, dict):
            for name, digest in value.items():
                named[_name(name, key, meta_path)] = _digest(digest, key, meta_path)
    if not named:
        raise DataError(f"{meta_path} names no file to serve (no <name>_file with <name>_sha256 besides "
                        f"{', '.join(sorted(NOT_SERVED))})")
    files = [ModelFile(METADATA_FILE, meta_path, None)]
    for name, digest in sorted(named.items()):
        path = model_dir / name
        if not path.is_file():
            raise DataError(f"{model_dir}: {METADATA_FILE} names {name}, which is not there")
        files.append(ModelFile(name, path, digest))
    return files


def stage_model_files(model_dir: Path | str, out_dir: Path | str) -> list[Path]:
    """Copy the model layer's files into out_dir (for `docker build`), checking each sha256.

    Raises:
        DataError: as model_layer_files, or a file whose sha256 differs from metadata.json's.
    """
    out = Path(out_dir)
    written = []
    for f in model_layer_files(model_dir):
        if f.sha256 is not None:
            with f.path.open("rb") as fh:
                actual = hashlib.file_digest(fh, "sha256").hexdigest()
            if actual != f.sha256:
                raise DataError(f"refusing {f.path}: its sha256 is {actual}, but {METADATA_FILE} records {f.sha256}")
        target = out / f.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f.path, target)
        written.append(target)
    return written


def _name(value, key: str, meta_path: Path) -> str:
    path = PurePosixPath(value) if isinstance(value, str) else None
    if path is None or not value or path.is_absolute() or ".." in path.parts or str(path) in (".", METADATA_FILE):
        raise DataError(f"{meta_path}: {key} names {value!r}, not a file inside the model directory")
    return str(path)


def _digest(value, key: str, meta_path: Path) -> str:
    if not (isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)):
        raise DataError(f"{meta_path}: the sha256 recorded for {key} is {value!r}, not 64 lowercase hex digits")
    return value


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m deploy.image.model_files MODEL_DIR OUT_DIR", file=sys.stderr)
        return 2
    try:
        for path in stage_model_files(*args):
            print(path)
    except DataError as exc:
        print(f"model_files: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
