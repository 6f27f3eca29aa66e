"""Image manifests and configs: which ones Lambda accepts, and the image with one layer appended (pure).

Lambda runs single-platform images only: a Docker v2 schema 2 or OCI v1 image manifest with gzip
layers. An image index (OCI) or manifest list (Docker) is resolved to one platform's manifest, or
refused when no platform is given or none matches. Appending a layer keeps every base layer's
descriptor as it was, adds the new one (gzip type of the manifest's family), and in the config adds
the layer's uncompressed digest to `rootfs.diff_ids` and one `history` entry. Configs and manifests we
write are JSON with sorted keys and no spaces, so the same inputs give the same bytes and digests.
Functions here raise `ManifestRefused` with a reason; the caller names the registry and the step.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from deploy.image.refs import Platform

__all__ = ["ACCEPT", "CONFIG_TYPES", "DOCKER_LIST", "DOCKER_MANIFEST", "INDEX_TYPES", "LAYER_TYPES", "OCI_INDEX",
           "OCI_MANIFEST", "SINGLE_PLATFORM", "Image", "ManifestRefused", "append_layer", "appended_config",
           "appended_manifest", "canonical_json", "check_image", "image_manifest", "is_appended", "pick_platform"]

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
SINGLE_PLATFORM = (DOCKER_MANIFEST, OCI_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
ACCEPT = SINGLE_PLATFORM + INDEX_TYPES
LAYER_TYPES = {DOCKER_MANIFEST: "application/vnd.docker.image.rootfs.diff.tar.gzip",
               OCI_MANIFEST: "application/vnd.oci.image.layer.v1.tar+gzip"}
CONFIG_TYPES = {DOCKER_MANIFEST: "application/vnd.docker.container.image.v1+json",
                OCI_MANIFEST: "application/vnd.oci.image.config.v1+json"}
GZIP_LAYERS = frozenset(LAYER_TYPES.values())


class ManifestRefused(Exception):
    """A manifest or config that cannot serve as a Lambda base (the message says why)."""


@dataclass(frozen=True)
class Image:
    """A single-platform image as read from a registry."""

    media_type: str
    manifest: dict
    digest: str
    config: dict
    config_digest: str

    @property
    def layers(self) -> list[dict]:
        return list(self.manifest.get("layers", []))


def canonical_json(obj: Any) -> bytes:
    """JSON with sorted keys and no spaces: byte-stable."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def pick_platform(media_type: str, index: dict, platform: Platform | None) -> str:
    """The digest of `platform`'s manifest in an image index / manifest list.

    Raises:
        ManifestRefused: no platform given (Lambda takes single-platform images), or none matches.
    """
    entries = [m for m in index.get("manifests", []) if isinstance(m, dict)]
    offered = [f"{p.get('os')}/{p.get('architecture')}" + (f"/{p['variant']}" if p.get("variant") else "")
               for p in (m.get("platform") or {} for m in entries)]
    if platform is None:
        raise ManifestRefused(f"the base is an image index ({media_type}; platforms {', '.join(offered) or 'none'}) "
                              "and Lambda runs single-platform images only: name the platform or use a "
                              "single-platform base")
    for entry in entries:
        p = entry.get("platform") or {}
        if entry.get("mediaType", DOCKER_MANIFEST) in SINGLE_PLATFORM and \
                platform.matches(p.get("os"), p.get("architecture"), p.get("variant")):
            return str(entry["digest"])
    raise ManifestRefused(f"the base image index ({media_type}) has no {platform} manifest "
                          f"(it has: {', '.join(offered) or 'none'})")


def image_manifest(media_type: str, body: bytes) -> dict:
    """The parsed single-platform manifest. Raises: ManifestRefused naming any other media type."""
    if media_type in INDEX_TYPES:
        raise ManifestRefused(f"{media_type} is an image index, not a single-platform image")
    if media_type not in SINGLE_PLATFORM:
        raise ManifestRefused(f"manifest media type {media_type or '(none)'} is not one Lambda accepts "
                              f"({' or '.join(SINGLE_PLATFORM)})")
    manifest = json.loads(body)
    if manifest.get("schemaVersion") != 2 or not isinstance(manifest.get("config"), dict):
        raise ManifestRefused(f"the {media_type} manifest has no schemaVersion 2 or no config")
    return manifest


def check_image(image: Image, platform: Platform | None, model_path: str | None = None) -> None:
    """Refuse a base Lambda cannot run or we cannot append to.

    Raises:
        ManifestRefused: a layer that is not gzip (uncompressed, zstd, foreign), diff_ids that do not
            match the layers, another platform, or GREENLIGHT_MODEL_DIR pointing elsewhere than model_path.
    """
    for layer in image.layers:
        if layer.get("mediaType") not in GZIP_LAYERS or layer.get("urls"):
            raise ManifestRefused(f"layer {layer.get('digest')} has media type {layer.get('mediaType')}"
                                  f"{' with external URLs' if layer.get('urls') else ''}; Lambda needs gzip layers "
                                  "stored in the registry")
    diff_ids = (image.config.get("rootfs") or {}).get("diff_ids")
    if not isinstance(diff_ids, list) or len(diff_ids) != len(image.layers):
        raise ManifestRefused(f"the config's rootfs.diff_ids ({len(diff_ids or [])}) do not match the manifest's "
                              f"{len(image.layers)} layers")
    if platform is not None and not platform.matches(image.config.get("os"), image.config.get("architecture"),
                                                     image.config.get("variant")):
        raise ManifestRefused(f"the base is {image.config.get('os')}/{image.config.get('architecture')}, "
                              f"not {platform}")
    env = dict(e.partition("=")[::2] for e in (image.config.get("config") or {}).get("Env") or [])
    if model_path and env.get("GREENLIGHT_MODEL_DIR", model_path) != model_path:
        raise ManifestRefused(f"the base sets GREENLIGHT_MODEL_DIR={env['GREENLIGHT_MODEL_DIR']}, but the model layer "
                              f"goes to {model_path}")


def appended_config(image: Image, *, diff_id: str, history: dict, labels: dict[str, str] | None = None) -> bytes:
    """The config of `image` with one more layer: diff_id and history entry added, labels merged; canonical.

    It keeps the base's `created`, so it depends only on the base, the layer's content and history/labels.
    """
    config = json.loads(canonical_json(image.config))  # a deep copy
    config.setdefault("rootfs", {"type": "layers"})["diff_ids"] = [*image.config["rootfs"]["diff_ids"], diff_id]
    config["history"] = [*image.config.get("history", []), history]
    if labels:
        inner = config.setdefault("config", {})
        inner["Labels"] = {**(inner.get("Labels") or {}), **labels}
    return canonical_json(config)


def appended_manifest(image: Image, config_bytes: bytes, *, digest: str, size: int) -> bytes:
    """The manifest of `image` with the new config and one gzip layer (digest, size) on top; canonical.

    It keeps the base's media type, fields and layer descriptors as they were.
    """
    manifest = json.loads(canonical_json(image.manifest))
    manifest["config"] = {**manifest["config"], "digest": _digest(config_bytes), "size": len(config_bytes),
                          "mediaType": manifest["config"].get("mediaType") or CONFIG_TYPES[image.media_type]}
    manifest["layers"] = [*image.layers, {"mediaType": LAYER_TYPES[image.media_type], "size": size, "digest": digest}]
    if image.media_type == DOCKER_MANIFEST or "mediaType" in image.manifest:
        manifest["mediaType"] = image.media_type
    return canonical_json(manifest)


def is_appended(image: Image, manifest: dict, config_digest: str) -> bool:
    """True if `manifest` is `image` plus one gzip layer under the config `config_digest` (what
    appended_manifest makes from the same base and layer content, whatever the compressed bytes)."""
    layers = manifest.get("layers") or []
    return (manifest.get("config", {}).get("digest") == config_digest and layers[:-1] == image.layers
            and len(layers) == len(image.layers) + 1 and layers[-1].get("mediaType") == LAYER_TYPES[image.media_type])


def append_layer(image: Image, *, digest: str, size: int, diff_id: str, history: dict,
                 labels: dict[str, str] | None = None) -> tuple[bytes, bytes]:
    """(config bytes, manifest bytes) of `image` with one gzip layer added on top."""
    config_bytes = appended_config(image, diff_id=diff_id, history=history, labels=labels)
    return config_bytes, appended_manifest(image, config_bytes, digest=digest, size=size)
