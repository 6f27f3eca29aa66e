"""What Lambda accepts as a base, the appended config and manifest, and the names we give images (pure)."""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from deploy.image.manifest import (
    DOCKER_LIST, DOCKER_MANIFEST, LAYER_TYPES, OCI_INDEX, OCI_MANIFEST, Image, ManifestRefused, append_layer,
    canonical_json, check_image, image_manifest, pick_platform,
)
from deploy.image.refs import Platform, check_digest, check_repository, model_tag
from greenlight.errors import ParameterError

D = ["sha256:" + hashlib.sha256(str(i).encode()).hexdigest() for i in range(8)]


def base(media_type: str = DOCKER_MANIFEST, arch: str = "amd64", env: list[str] | None = None) -> Image:
    config = {"architecture": arch, "os": "linux", "created": "2026-01-01T00:00:00Z",
              "config": {"Env": env or ["PATH=/usr/bin"], "Labels": {"keep": "me"}},
              "rootfs": {"type": "layers", "diff_ids": [D[0], D[1]]},
              "history": [{"created_by": "one"}, {"created_by": "two"}]}
    manifest = {"schemaVersion": 2, "mediaType": media_type,
                "config": {"mediaType": "x", "size": 10, "digest": D[2]},
                "layers": [{"mediaType": LAYER_TYPES[media_type], "size": 5, "digest": D[3]},
                           {"mediaType": LAYER_TYPES[media_type], "size": 6, "digest": D[4],
                            "annotations": {"a": "b"}}]}
    return Image(media_type, manifest, D[5], config, D[2])


@pytest.mark.parametrize("media_type", [DOCKER_MANIFEST, OCI_MANIFEST])
def test_append_keeps_the_base_and_adds_one_layer(media_type):
    image = base(media_type)
    history = {"created_by": "greenlight: model layer"}
    config_bytes, manifest_bytes = append_layer(image, digest=D[6], size=123, diff_id=D[7], history=history,
                                                labels={"io.greenlight.model.metadata-sha256": "f" * 64})
    config, manifest = json.loads(config_bytes), json.loads(manifest_bytes)
    # The base's layer descriptors are untouched, the new one last, with the manifest family's gzip type
    assert manifest["layers"][:2] == image.manifest["layers"]
    assert manifest["layers"][2] == {"mediaType": LAYER_TYPES[media_type], "size": 123, "digest": D[6]}
    assert manifest["mediaType"] == media_type and manifest["schemaVersion"] == 2
    assert manifest["config"]["digest"] == "sha256:" + hashlib.sha256(config_bytes).hexdigest()
    assert manifest["config"]["size"] == len(config_bytes)
    # The config: one diff_id and one history entry more, the rest as it was
    assert config["rootfs"] == {"type": "layers", "diff_ids": [D[0], D[1], D[7]]}
    assert config["history"] == [*image.config["history"], history]
    assert config["config"]["Labels"] == {"keep": "me", "io.greenlight.model.metadata-sha256": "f" * 64}
    assert {k: v for k, v in config.items() if k not in ("rootfs", "history", "config")} == \
        {k: v for k, v in image.config.items() if k not in ("rootfs", "history", "config")}
    # The base Image is not modified, and the bytes are canonical (the same inputs, the same digest)
    assert image.config["rootfs"]["diff_ids"] == [D[0], D[1]] and len(image.manifest["layers"]) == 2
    assert canonical_json(config) == config_bytes and canonical_json(manifest) == manifest_bytes
    again = append_layer(base(media_type), digest=D[6], size=123, diff_id=D[7], history=dict(history),
                         labels={"io.greenlight.model.metadata-sha256": "f" * 64})
    assert again == (config_bytes, manifest_bytes)


def index(media_type: str = OCI_INDEX) -> dict:
    return {"schemaVersion": 2, "mediaType": media_type, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": D[0], "size": 1, "platform": {"os": "linux", "architecture": "amd64"}},
        {"mediaType": OCI_MANIFEST, "digest": D[1], "size": 1,
         "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        {"mediaType": OCI_MANIFEST, "digest": D[2], "size": 1, "platform": {"os": "unknown", "architecture": "unknown"}},
    ]}


def test_an_index_resolves_to_the_configured_platform():
    assert pick_platform(OCI_INDEX, index(), Platform.parse("linux/amd64")) == D[0]
    assert pick_platform(DOCKER_LIST, index(DOCKER_LIST), Platform.for_lambda("arm64")) == D[1]


def test_an_index_without_a_platform_or_without_that_platform_is_refused():
    with pytest.raises(ManifestRefused, match=re.escape(f"image index ({OCI_INDEX}; platforms linux/amd64, linux/arm64/v8")):
        pick_platform(OCI_INDEX, index(), None)
    with pytest.raises(ManifestRefused, match=re.escape(f"{DOCKER_LIST}) has no linux/s390x manifest")):
        pick_platform(DOCKER_LIST, index(DOCKER_LIST), Platform.parse("linux/s390x"))


@pytest.mark.parametrize("media_type, message", [
    (OCI_INDEX, "is an image index"),
    ("application/vnd.docker.distribution.manifest.v1+prettyjws", "is not one Lambda accepts"),
    ("", r"\(none\) is not one Lambda accepts"),
])
def test_only_single_platform_manifests_are_images(media_type, message):
    with pytest.raises(ManifestRefused, match=message):
        image_manifest(media_type, b"{}")


def test_check_image_refuses_what_lambda_cannot_run():
    check_image(base(), Platform.parse("linux/amd64"), "/opt/ml/model")
    image = base()
    image.manifest["layers"][0]["mediaType"] = "application/vnd.docker.image.rootfs.diff.tar"
    with pytest.raises(ManifestRefused, match=r"media type application/vnd.docker.image.rootfs.diff.tar; Lambda needs gzip"):
        check_image(image, None)
    image = base()
    image.manifest["layers"][1]["urls"] = ["https://example.invalid/layer"]
    with pytest.raises(ManifestRefused, match="with external URLs"):
        check_image(image, None)
    with pytest.raises(ManifestRefused, match="the base is linux/arm64, not linux/amd64"):
        check_image(base(arch="arm64"), Platform.parse("linux/amd64"))
    image = base()
    image.config["rootfs"]["diff_ids"].pop()
    with pytest.raises(ManifestRefused, match=r"rootfs.diff_ids \(1\) do not match the manifest's 2 layers"):
        check_image(image, None)
    with pytest.raises(ManifestRefused, match="GREENLIGHT_MODEL_DIR=/var/task/model, but the model layer goes to"):
        check_image(base(env=["GREENLIGHT_MODEL_DIR=/var/task/model"]), None, "/opt/ml/model")


def test_model_tag_and_names():
    assert model_tag("diabetes-regression", 7) == "diabetes-regression-v7"
    with pytest.raises(ParameterError, match="not a positive integer"):
        model_tag("g", 0)
    with pytest.raises(ParameterError, match="registry's tag grammar"):
        model_tag("-bad", 1)
    with pytest.raises(ParameterError, match="registry's tag grammar"):
        model_tag("g" * 126, 10)
    check_repository("team/greenlight-inference")
    for bad in ("Upper", "a//b", "-a", ""):
        with pytest.raises(ParameterError):
            check_repository(bad)
    with pytest.raises(ParameterError):
        check_digest("sha256:ABC")


def test_platforms():
    assert str(Platform.parse("linux/arm64/v8")) == "linux/arm64/v8"
    assert Platform.for_lambda("x86_64") == Platform("linux", "amd64")
    assert Platform.parse("linux/arm64").matches("linux", "arm64", "v8")
    assert not Platform.parse("linux/arm64").matches("linux", "arm64", "v7")
    assert not Platform.parse("linux/amd64").matches("windows", "amd64")
    for bad in ("linux", "linux/", "a/b/c/d"):
        with pytest.raises(ParameterError):
            Platform.parse(bad)
    with pytest.raises(ParameterError, match="x86_64 or arm64"):
        Platform.for_lambda("amd64")
