"""Deterministic gzip'd tar layers: the same files always give the same bytes, hence the same digest.

Entries are sorted by path, parent directories are added, owners are uid/gid 0 (`root`), modes fixed
(directories 0755, files 0644, or 0755 when the source is executable), every mtime is 0, the tar is
USTAR, and the gzip header has no file name and mtime 0 at a fixed compression level. Files stream
from disk into a file on disk, hashed on the way (the tar for the config's `diff_ids`, the gzip for
the blob digest), so a forest of any size never sits in memory; a file whose sha256 differs from the
one expected (metadata.json's) is refused. The bytes depend on zlib too: another zlib may compress
differently (a different digest for the same diff_id), so compare images built by the same runtime.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from greenlight.errors import DataError

__all__ = ["COMPRESS_LEVEL", "Layer", "LayerFile", "build_layer", "directory_files", "layer_diff_id"]

# Level 1: on a 110 MB forest, 3.4 s for 44.7 MB against level 6's 6.4 s for 42.1 MB (BENCHMARKS.md, image):
# compression time is the bulk of an append, and 6% more bytes cost far less on the way to ECR.
COMPRESS_LEVEL = 1
_COPY_CHUNK = 1 << 20


@dataclass(frozen=True)
class LayerFile:
    """One file in a layer: its absolute path in the image, where to read it, its expected sha256 (hex)."""

    image_path: str
    source: Path
    sha256: str | None = None
    executable: bool = False


@dataclass(frozen=True)
class Layer:
    """A built layer on disk: `digest` of the gzip bytes (the blob), `diff_id` of the tar inside."""

    path: Path
    digest: str
    diff_id: str
    size: int
    uncompressed_size: int
    files: tuple[str, ...]


class _HashingWriter:
    """A write-only file object that hashes and counts what passes through it."""

    def __init__(self, raw):
        self.raw, self.hash, self.size = raw, hashlib.sha256(), 0

    def write(self, data) -> int:
        self.hash.update(data)
        self.size += len(data)
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()


class _HashingReader:
    def __init__(self, raw):
        self.raw, self.hash = raw, hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.hash.update(data)
        return data


def build_layer(files: Iterable[LayerFile], out_path: Path | str, *, compresslevel: int = COMPRESS_LEVEL) -> Layer:
    """Write the layer holding `files` to out_path (gzip'd tar) and return its digests.

    Raises:
        DataError: a path that is not absolute or repeats, an unreadable file, or a sha256 mismatch.
    """
    entries = _entries(files)
    out_path = Path(out_path)
    try:
        with out_path.open("wb") as raw:
            blob = _HashingWriter(raw)
            with gzip.GzipFile(filename="", mode="wb", fileobj=blob, compresslevel=compresslevel, mtime=0) as gz:
                tar_stream = _HashingWriter(gz)
                _write_tar(entries, tar_stream)
    except BaseException:
        out_path.unlink(missing_ok=True)
        raise
    return Layer(out_path, f"sha256:{blob.hash.hexdigest()}", f"sha256:{tar_stream.hash.hexdigest()}", blob.size,
                 tar_stream.size, tuple(f"/{n}" for n in sorted(entries)))


def layer_diff_id(files: Iterable[LayerFile]) -> str:
    """The diff_id (sha256 of the tar) build_layer would give, without compressing or writing anything.

    Raises:
        DataError: as build_layer.
    """
    tar_stream = _HashingWriter(_Discard())
    _write_tar(_entries(files), tar_stream)
    return f"sha256:{tar_stream.hash.hexdigest()}"


class _Discard:
    def write(self, data) -> int:
        return len(data)

    def flush(self) -> None:
        pass


def _entries(files: Iterable[LayerFile]) -> dict[str, LayerFile]:
    by_path: dict[str, LayerFile] = {}
    for f in files:
        path = PurePosixPath(f.image_path)
        if not path.is_absolute() or ".." in path.parts or len(path.parts) < 2:
            raise DataError(f"layer path {f.image_path!r} must be an absolute file path inside the image")
        name = str(path.relative_to("/"))
        if name in by_path:
            raise DataError(f"layer path {f.image_path} is given twice")
        by_path[name] = f
    return by_path


def _write_tar(entries: dict[str, LayerFile], sink) -> None:
    directories = {str(p) for name in entries for p in PurePosixPath(name).parents if str(p) != "."}
    with tarfile.open(fileobj=sink, mode="w|", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted([*directories, *entries]):
            if name in entries:
                _add_file(tar, name, entries[name])
            else:
                tar.addfile(_info(name, tarfile.DIRTYPE, 0o755, 0))


def directory_files(source: Path | str, image_dir: str) -> list[LayerFile]:
    """Every regular file under `source` as a LayerFile below `image_dir` (symbolic links are skipped)."""
    source = Path(source)
    out = []
    for dirpath, dirnames, filenames in os.walk(source):
        dirnames.sort()
        for filename in sorted(filenames):
            path = Path(dirpath) / filename
            if path.is_symlink() or not path.is_file():
                continue
            rel = path.relative_to(source).as_posix()
            out.append(LayerFile(f"{image_dir.rstrip('/')}/{rel}", path, executable=os.access(path, os.X_OK)))
    return out


def _add_file(tar: tarfile.TarFile, name: str, f: LayerFile) -> None:
    try:
        with f.source.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            reader = _HashingReader(fh)
            tar.addfile(_info(name, tarfile.REGTYPE, 0o755 if f.executable else 0o644, size), reader)
    except (OSError, ValueError) as exc:  # ValueError: a name USTAR cannot hold (over 256 bytes)
        reason = getattr(exc, "strerror", None) or exc
        raise DataError(f"cannot add {f.source} to the layer as {name}: {reason}") from None
    if f.sha256 is not None and reader.hash.hexdigest() != f.sha256:
        raise DataError(f"refusing {f.source}: its sha256 is {reader.hash.hexdigest()}, "
                        f"but metadata.json records {f.sha256}")


def _info(name: str, kind: bytes, mode: int, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size, info.mtime = kind, mode, size, 0
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info
