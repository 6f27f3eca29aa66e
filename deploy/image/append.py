"""Append a trained model to the Lambda base image as one layer, through the registry API, without Docker.

    client = ecr_registry(ws.client("ecr"))                       # or RegistryClient("http://127.0.0.1:5000")
    result = append_model(client, "greenlight-inference", base_tag(), model_dir, model_tag(group, 7))
    lambda_client.update_function_code(FunctionName=..., ImageUri=result.image_uri(client))

Order of writes: the layer blob, then the config blob (each only if the registry lacks it: HEAD first),
then the manifest under the tag, last, and only if the tag does not already name the same digest. A
failure at any step leaves every tag as it was; blobs already uploaded are content-addressed and
harmless (the next try finds them present). The same model on the same base always gives the same
image digest.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from deploy.image.layer import Layer, LayerFile, build_layer, layer_diff_id
from deploy.image.manifest import (
    ACCEPT, CONFIG_TYPES, INDEX_TYPES, LAYER_TYPES, Image, ManifestRefused, appended_config, appended_manifest,
    canonical_json, check_image, image_manifest, is_appended, pick_platform,
)
from deploy.image.model_files import MODEL_PATH, model_layer_files
from deploy.image.refs import Platform, check_reference, check_repository, check_tag
from deploy.image.registry import RegistryClient, short
from greenlight.errors import DataError

__all__ = ["AppendResult", "append_model", "push_image", "read_image"]

log = logging.getLogger(__name__)

MODEL_LABEL = "io.greenlight.model.metadata-sha256"


@dataclass(frozen=True)
class AppendResult:
    """The image written: its manifest `digest` (what Lambda's ImageUri takes) and what it took to write it."""

    repository: str
    tag: str
    digest: str
    media_type: str
    base_digest: str
    layer_digest: str
    diff_id: str
    config_digest: str
    files: tuple[str, ...]
    bytes_sent: int
    blobs_uploaded: int
    manifest_written: bool

    def image_uri(self, client: RegistryClient) -> str:
        """`<registry host>/<repository>@sha256:<digest>`, Lambda's ImageUri (by digest, never by tag)."""
        return f"{client.name}/{self.repository}@{self.digest}"


def read_image(client: RegistryClient, repository: str, reference: str, platform: Platform | str | None = None,
               model_path: str | None = None) -> Image:
    """The single-platform image `reference` names (an index resolved to `platform`), checked for Lambda.

    Raises:
        ImageError: not found, unreadable, an index with no `platform` manifest (or no platform given),
            a media type Lambda does not accept, layers that are not gzip, or another platform.
    """
    platform = Platform.parse(platform) if platform is not None else None
    step = f"read base image {reference}"
    media_type, body, digest = client.manifest(repository, reference, ACCEPT)
    try:
        if media_type in INDEX_TYPES:
            digest = pick_platform(media_type, json.loads(body), platform)
            media_type, body, _ = client.manifest(repository, digest, ACCEPT)
        manifest = image_manifest(media_type, body)
        config_digest = str(manifest["config"].get("digest"))
        config = json.loads(client.blob(repository, config_digest))
        image = Image(media_type, manifest, digest, config, config_digest)
        check_image(image, platform, model_path)
    except (ManifestRefused, ValueError, TypeError, KeyError) as exc:
        raise client.error(step, repository, detail=str(exc) or type(exc).__name__) from None
    return image


def append_model(client: RegistryClient, repository: str, base: str, model_dir: Path | str, tag: str, *,
                 platform: Platform | str = "linux/amd64", workdir: Path | str | None = None) -> AppendResult:
    """Write `base` + a layer with the model's files at /opt/ml/model as `repository:tag`.

    `base` is a tag or digest in the same repository (the CodeBuild base, `base_tag()`); `tag` is the
    model version's (`model_tag(group, version)`). The model files are read once uncompressed first
    (their sha256 checked, the layer's diff_id computed): if the tag already names this base plus this
    layer, nothing is compressed or written. Otherwise the layer is built in `workdir` (a temporary
    directory by default; it holds the compressed model while uploading).

    Raises:
        DataError: the model directory is unusable, or a file differs from its sha256 in metadata.json.
        ParameterError: a malformed repository, tag or platform.
        ImageError: any registry step failed (the message names registry, repository, step, HTTP status).
    """
    check_repository(repository), check_reference(base), check_tag(tag)
    files = model_layer_files(model_dir)
    metadata_sha256 = hashlib.sha256(files[0].path.read_bytes()).hexdigest()
    image = read_image(client, repository, base, Platform.parse(platform), MODEL_PATH)
    layer_files = [LayerFile(f"{MODEL_PATH}/{f.name}", f.path, f.sha256) for f in files]
    diff_id = layer_diff_id(layer_files)
    history = {"created": image.config.get("created", "1970-01-01T00:00:00Z"),
               "created_by": f"greenlight: model layer, {len(files)} files in {MODEL_PATH}",
               "comment": f"metadata.json sha256 {metadata_sha256}"}
    config_bytes = appended_config(image, diff_id=diff_id, history=history, labels={MODEL_LABEL: metadata_sha256})
    config_digest = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
    sent = client.stats.bytes_sent
    existing = _existing(client, repository, tag, image, config_digest)
    if existing is not None:
        log.info("%s/%s:%s already is %s (base %s + this model's layer): nothing to write", client.name, repository,
                 tag, short(existing[0]), short(image.digest))
        return AppendResult(repository, tag, existing[0], image.media_type, image.digest, existing[1], diff_id,
                            config_digest, tuple(f.image_path for f in layer_files), client.stats.bytes_sent - sent,
                            0, False)
    with tempfile.TemporaryDirectory(prefix="greenlight-layer-", dir=workdir) as tmp:
        layer = build_layer(layer_files, Path(tmp) / "model.tar.gz")
        if layer.diff_id != diff_id:
            raise DataError(f"a file of {model_dir} changed while it was read (layer diff_id {short(diff_id)} "
                            f"then {short(layer.diff_id)}); try again")
        manifest_bytes = appended_manifest(image, config_bytes, digest=layer.digest, size=layer.size)
        return _write(client, repository, tag, image, layer, config_bytes, manifest_bytes)


def _existing(client: RegistryClient, repository: str, tag: str, image: Image,
              config_digest: str) -> tuple[str, str] | None:
    """(manifest digest, model layer digest) if `tag` already names image + a layer under this config."""
    current = client.manifest_digest(repository, tag, ACCEPT)
    if current is None:
        return None
    media_type, body, digest = client.manifest(repository, current, ACCEPT)
    try:
        manifest = json.loads(body)
    except ValueError:
        return None
    if media_type != image.media_type or not is_appended(image, manifest, config_digest):
        return None
    return digest, str(manifest["layers"][-1]["digest"])


def _write(client: RegistryClient, repository: str, tag: str, image: Image, layer: Layer, config_bytes: bytes,
           manifest_bytes: bytes) -> AppendResult:
    """Layer, then config (each only if missing), then the manifest under the tag, last."""
    sent, uploaded = client.stats.bytes_sent, client.stats.blobs_uploaded
    config_digest = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
    client.ensure_blob(repository, layer.digest, layer.path)
    client.ensure_blob(repository, config_digest, config_bytes)
    digest = client.put_manifest(repository, tag, image.media_type, manifest_bytes)
    log.info("%s/%s:%s is %s (base %s + model layer %s, %s bytes sent)", client.name, repository, tag, short(digest),
             short(image.digest), short(layer.digest), f"{client.stats.bytes_sent - sent:,}")
    return AppendResult(repository, tag, digest, image.media_type, image.digest, layer.digest, layer.diff_id,
                        config_digest, layer.files, client.stats.bytes_sent - sent,
                        client.stats.blobs_uploaded - uploaded, True)


def push_image(client: RegistryClient, repository: str, tag: str, layers: Sequence[Layer], config: dict, *,
               media_type: str = "application/vnd.docker.distribution.manifest.v2+json") -> str:
    """Push a whole image (every layer, a config with their diff_ids, the manifest); returns its digest.

    What `docker push` of a fresh image does: the baseline of the benchmark, and how tests build a base.

    Raises:
        ImageError: a registry step failed.
    """
    check_repository(repository), check_tag(tag)
    config = {**config, "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]}}
    config_bytes = canonical_json(config)
    config_digest = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
    for layer in layers:
        client.ensure_blob(repository, layer.digest, layer.path)
    client.ensure_blob(repository, config_digest, config_bytes)
    manifest = {"schemaVersion": 2, "mediaType": media_type,
                "config": {"mediaType": CONFIG_TYPES[media_type], "size": len(config_bytes), "digest": config_digest},
                "layers": [{"mediaType": LAYER_TYPES[media_type], "size": layer.size, "digest": layer.digest}
                           for layer in layers]}
    return client.put_manifest(repository, tag, media_type, canonical_json(manifest))
