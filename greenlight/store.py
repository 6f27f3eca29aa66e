"""Local artifact store: `s3://bucket/key` URIs map to files under GREENLIGHT_HOME/s3/bucket/key.

The disk's refusals (no space, read-only, permission) are StorageError naming the path (greenlight.os_errors).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from urllib.parse import urlparse

from greenlight.errors import NotFoundError, UsageError
from greenlight.os_errors import storage_errors

__all__ = ["LocalArtifactStore", "split_s3_uri"]


def split_s3_uri(uri: str) -> tuple[str, str]:
    """('bucket', 'key/with/slashes') for 's3://bucket/key/with/slashes'."""
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise UsageError(f"not an S3 URI: {uri!r} (expected s3://bucket/key)")
    return parsed.netloc, parsed.path.lstrip("/")


class LocalArtifactStore:
    """S3-shaped storage on the local disk; keys containing '..' are refused."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def path_for(self, uri: str) -> Path:
        bucket, key = split_s3_uri(uri)
        parts = [bucket, *[p for p in key.split("/") if p]]
        if any(p in {".", ".."} for p in parts):
            raise UsageError(f"refusing S3 key with '.' or '..' segments: {uri!r}")
        return self.root.joinpath(*parts)

    def uri_for(self, path: Path) -> str:
        rel = Path(path).resolve().relative_to(self.root.resolve())
        bucket, *key = rel.parts
        return f"s3://{bucket}/{'/'.join(key)}"

    def put_bytes(self, uri: str, data: bytes) -> Path:
        """Write atomically (temp file + rename), so readers never see half an object."""
        path = self.path_for(uri)
        with storage_errors("writing", path):
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".put-")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return path

    def get_bytes(self, uri: str) -> bytes:
        path = self.path_for(uri)
        if not path.is_file():
            raise NotFoundError(f"no object at {uri} (looked in {path})")
        with storage_errors("reading", path):
            return path.read_bytes()

    def exists(self, uri: str) -> bool:
        return self.path_for(uri).exists()

    def list(self, prefix_uri: str) -> list[str]:
        """URIs of the objects under a prefix (a 'directory' or a key prefix), sorted."""
        base = self.path_for(prefix_uri)
        if base.is_file():
            return [prefix_uri]
        if base.is_dir():
            return sorted(self.uri_for(p) for p in base.rglob("*") if p.is_file() and not p.name.startswith(".put-"))
        parent, stem = base.parent, base.name
        if not parent.is_dir():
            return []
        return sorted(self.uri_for(p) for c in parent.iterdir() if c.name.startswith(stem)
                      for p in ([c] if c.is_file() else c.rglob("*")) if p.is_file())
