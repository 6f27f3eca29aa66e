"""Copy an image between registries (another account's ECR) through the registry API, without Docker.

    copy_image(ecr_registry(here), "churn", ecr_registry(there), "churn-production", "base-1a2b...",
               platform="linux/amd64")

ECR mounts no blob from another account's registry, so a stage's Lambda in another account (issue 21,
docs/decisions/0056) gets its base image by copy: the tag's single-platform manifest (an index resolved to
`platform`), each blob the destination lacks (HEAD first) streamed through a temporary file, then the manifest's
own bytes under the tag, last: the digest is the source's, and a failure at any step leaves the tag as it was.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from deploy.image.manifest import ACCEPT, INDEX_TYPES, ManifestRefused, image_manifest, pick_platform
from deploy.image.refs import Platform, check_reference, check_repository
from deploy.image.registry import RegistryClient, short

__all__ = ["CopyResult", "copy_image"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CopyResult:
    """The image copied: its manifest digest (the source's), blobs uploaded and bytes sent."""

    digest: str
    blobs_uploaded: int
    bytes_sent: int
    manifest_written: bool


def copy_image(source: RegistryClient, source_repository: str, dest: RegistryClient, dest_repository: str,
               tag: str, *, platform: Platform | str | None = None) -> CopyResult:
    """Make `dest_repository:tag` the image `source_repository:tag` is (module docstring); a no-op when it is.

    Raises:
        ImageError: a registry step failed, or the source is an index without `platform`'s manifest.
        ParameterError: a malformed repository or tag.
    """
    check_repository(source_repository), check_repository(dest_repository), check_reference(tag)
    step = f"read {tag} to copy"
    media_type, body, digest = source.manifest(source_repository, tag, ACCEPT)
    try:
        if media_type in INDEX_TYPES:
            wanted = Platform.parse(platform) if platform is not None else None
            digest = pick_platform(media_type, json.loads(body), wanted)
            media_type, body, digest = source.manifest(source_repository, digest, ACCEPT)
        manifest = image_manifest(media_type, body)
        blobs = [str(manifest["config"]["digest"]), *(str(layer["digest"]) for layer in manifest.get("layers", []))]
    except (ManifestRefused, ValueError, TypeError, KeyError) as exc:
        raise source.error(step, source_repository, detail=str(exc) or type(exc).__name__) from None
    if dest.manifest_digest(dest_repository, tag, ACCEPT) == digest:
        log.info("%s/%s:%s already is %s: nothing to copy", dest.name, dest_repository, tag, short(digest))
        return CopyResult(digest, 0, 0, False)
    sent, uploaded = dest.stats.bytes_sent, dest.stats.blobs_uploaded
    with tempfile.TemporaryDirectory(prefix="greenlight-copy-") as tmp:
        for blob in blobs:
            if dest.blob_exists(dest_repository, blob):
                continue
            path = Path(tmp) / blob.replace(":", "-")
            source.download_blob(source_repository, blob, path)
            dest.upload_blob(dest_repository, blob, path)
            path.unlink()
    written = dest.put_manifest(dest_repository, tag, media_type, body)
    log.info("copied %s/%s:%s to %s/%s (%s, %s blobs, %s bytes sent)", source.name, source_repository, tag,
             dest.name, dest_repository, short(written), dest.stats.blobs_uploaded - uploaded,
             f"{dest.stats.bytes_sent - sent:,}")
    return CopyResult(written, dest.stats.blobs_uploaded - uploaded, dest.stats.bytes_sent - sent, True)
