"""The model-layer append against a real registry on loopback (docker-registry, CNCF distribution 2.8).

Each test builds its base image with our own code (no network pull): a stand-in runtime layer and a
layer with the real serving modules at /var/task, pushed through the client. Results are read back by
our client and, independently, by skopeo (`skopeo copy` checks every blob's digest).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from deploy.image import LayerFile, Platform, append_model, build_layer, model_layer_files, model_tag, push_image, read_image
from deploy.image.manifest import ACCEPT, OCI_MANIFEST, SINGLE_PLATFORM
from greenlight.errors import ImageError
from tests.support.images import (BASE, REPO, ROOT, base_config, base_layers, client, pull, push_base, push_index,
                                  trained_models)
from tests.support.registry import running_registry, skopeo

@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    with running_registry(tmp_path_factory.mktemp("registry")) as reg:
        yield reg


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    return trained_models(tmp_path_factory.mktemp("models"))


def test_append_model_round_trip(registry, models, tmp_path):
    c = client(registry.url)
    base_digest, layers = push_base(c, tmp_path)
    # WHEN the model is appended to the base under its version's tag
    result = append_model(c, REPO, BASE, models["a"], model_tag("diabetes", 1), workdir=tmp_path)
    assert (result.tag, result.base_digest, result.manifest_written) == ("diabetes-v1", base_digest, True)
    assert c.manifest_digest(REPO, "diabetes-v1", ACCEPT) == result.digest
    media_type, manifest, config, blobs = pull(c, REPO, result.digest, tmp_path / "pulled")
    # THEN a single-platform manifest Lambda accepts, of the base's type
    assert media_type == manifest["mediaType"] == result.media_type and media_type in SINGLE_PLATFORM
    assert (config["os"], config["architecture"]) == ("linux", "amd64")
    # the base layers unchanged: the same digests, the same bytes
    assert [d["digest"] for d in manifest["layers"][:2]] == [layer.digest for layer in layers]
    for blob, layer in zip(blobs, layers, strict=False):
        assert blob.read_bytes() == layer.path.read_bytes()
    # the config's diff_ids are the layers' uncompressed digests, recomputed from the blobs
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(gzip.decompress(b.read_bytes())).hexdigest()
                                            for b in blobs]
    assert config["history"][-1]["created_by"].startswith("greenlight: model layer")
    # the model files at the handler's path, with the sha256 metadata.json records
    with tarfile.open(blobs[-1]) as tar:
        names = {m.name for m in tar.getmembers() if m.isfile()}
        assert names == {f"opt/ml/model/{f.name}" for f in model_layer_files(models["a"])}
        metadata = json.loads(tar.extractfile("opt/ml/model/metadata.json").read())
        forest = tar.extractfile(f"opt/ml/model/{metadata['forest_file']}").read()
    assert hashlib.sha256(forest).hexdigest() == metadata["forest_sha256"]
    assert metadata == json.loads((models["a"] / "metadata.json").read_text())
    # and skopeo, reading on its own, agrees
    inspect = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{registry.host}/{REPO}:diabetes-v1").stdout)
    assert inspect["Digest"] == result.digest and inspect["Layers"] == [d["digest"] for d in manifest["layers"]]
    assert (inspect["Os"], inspect["Architecture"]) == ("linux", "amd64")
    raw = skopeo("inspect", "--tls-verify=false", "--raw", f"docker://{registry.host}/{REPO}@{result.digest}").stdout
    assert hashlib.sha256(raw.encode()).hexdigest() == result.digest.split(":")[1]


def test_the_pulled_image_serves_a_prediction(registry, models, tmp_path):
    # GIVEN the appended image copied out by skopeo (which checks every blob's digest) and unpacked
    c = client(registry.url)
    push_base(c, tmp_path)
    result = append_model(c, REPO, BASE, models["a"], model_tag("diabetes", 1))
    skopeo("copy", "--src-tls-verify=false", f"docker://{registry.host}/{REPO}@{result.digest}", f"oci:{tmp_path}/oci:x")
    index = json.loads((tmp_path / "oci" / "index.json").read_text())
    manifest = json.loads((tmp_path / "oci/blobs/sha256" / index["manifests"][0]["digest"][7:]).read_text())
    rootfs = tmp_path / "rootfs"
    for layer in manifest["layers"]:
        with tarfile.open(tmp_path / "oci/blobs/sha256" / layer["digest"][7:]) as tar:
            tar.extractall(rootfs, filter="data")
    # WHEN the handler runs from the image's task root with the image's model directory
    event = (ROOT / "tests/events/lambda_url_predict_json.json").read_text()
    script = ("import json, lambda_function\n"
              f"r = lambda_function.lambda_handler(json.loads({event!r}), None)\n"
              "print(json.dumps([r['statusCode'], json.loads(r['body'])]))\n")
    env = {**os.environ, "LAMBDA_TASK_ROOT": str(rootfs / "var/task"), "GREENLIGHT_MODEL_DIR": str(rootfs / "opt/ml/model"),
           "AWS_LAMBDA_FUNCTION_NAME": "greenlight-test"}
    run = subprocess.run([sys.executable, "-c", script], cwd=rootfs / "var/task", env=env, capture_output=True,
                         text=True, timeout=120)
    # THEN it answers with a prediction
    assert run.returncode == 0, run.stderr
    status, body = json.loads(run.stdout.strip().splitlines()[-1])
    assert status == 200 and len(body["predictions"]) == 1


def test_the_same_model_twice_gives_the_same_digest_and_uploads_nothing(registry, models, tmp_path):
    c = client(registry.url)
    push_base(c, tmp_path, repo="twice")
    first = append_model(c, "twice", BASE, models["a"], model_tag("diabetes", 3))
    assert first.blobs_uploaded == 2 and first.bytes_sent > 0
    before = dict(c.stats.requests)
    second = append_model(c, "twice", BASE, models["a"], model_tag("diabetes", 3))
    sent = {m: c.stats.requests[m] - before.get(m, 0) for m in c.stats.requests}
    assert second.digest == first.digest and second.layer_digest == first.layer_digest
    assert (second.bytes_sent, second.blobs_uploaded, second.manifest_written) == (0, 0, False)
    assert sent.get("PUT", 0) == sent.get("PATCH", 0) == sent.get("POST", 0) == 0, sent
    # A fresh client (a new process) gets the same digest too
    again = append_model(client(registry.url), "twice", BASE, models["a"], model_tag("diabetes", 3))
    assert again.digest == first.digest and again.bytes_sent == 0
    # Another model is another image on the same base
    other = append_model(c, "twice", BASE, models["b"], model_tag("diabetes", 4))
    assert other.digest != first.digest and other.base_digest == first.base_digest


def test_a_new_base_under_the_same_tag_repoints_the_model_tag(registry, models, tmp_path):
    c = client(registry.url)
    push_base(c, tmp_path, repo="rebased")
    first = append_model(c, "rebased", BASE, models["a"], "diabetes-v1")
    # GIVEN the base tag now names another base (new serving code, say)
    layers = base_layers(tmp_path)
    (tmp_path / "extra.py").write_text("CHANGED = True\n")
    layers.append(build_layer([LayerFile("/var/task/extra.py", tmp_path / "extra.py")], tmp_path / "extra.tar.gz"))
    config = base_config()
    config["history"].append({"created_by": "COPY extra.py"})
    push_image(c, "rebased", BASE, layers, config)
    # WHEN the same model is appended under the same tag THEN the tag names the new image, model layer reused
    second = append_model(c, "rebased", BASE, models["a"], "diabetes-v1")
    assert second.manifest_written and second.digest != first.digest and second.base_digest != first.base_digest
    assert second.layer_digest == first.layer_digest and second.blobs_uploaded == 1  # the config only
    assert c.manifest_digest("rebased", "diabetes-v1", ACCEPT) == second.digest


def test_an_oci_base_gives_an_oci_image(registry, models, tmp_path):
    c = client(registry.url)
    push_base(c, tmp_path, repo="oci-base", media_type=OCI_MANIFEST)
    result = append_model(c, "oci-base", BASE, models["a"], model_tag("diabetes", 1))
    media_type, manifest, _, _ = pull(c, "oci-base", "diabetes-v1", tmp_path / "pulled")
    assert media_type == result.media_type == OCI_MANIFEST
    assert {layer["mediaType"] for layer in manifest["layers"]} == {"application/vnd.oci.image.layer.v1.tar+gzip"}
    skopeo("copy", "--src-tls-verify=false", f"docker://{registry.host}/oci-base:diabetes-v1", f"oci:{tmp_path}/oci:x")


def test_an_image_index_is_resolved_to_the_platform_or_refused(registry, models, tmp_path):
    # GIVEN a base tag naming an OCI image index of an amd64 and an arm64 image
    c = client(registry.url)
    amd64, arm64 = push_index(c, tmp_path, "multi")
    # WHEN the model is appended for each platform THEN each result is that platform's single image
    for platform, digest in (("linux/amd64", amd64), ("linux/arm64", arm64)):
        result = append_model(c, "multi", BASE, models["a"], f"diabetes-{platform[6:]}", platform=platform)
        assert result.base_digest == digest and result.media_type == OCI_MANIFEST
        assert json.loads(c.blob("multi", result.config_digest))["architecture"] == platform[6:]
    # AND a platform the index lacks, or none, is refused naming the media type and what it has
    with pytest.raises(ImageError, match=r"image index \(application/vnd\.oci\.image\.index\.v1\+json\) has no "
                                         r"linux/s390x manifest \(it has: linux/amd64, linux/arm64\)") as err:
        append_model(c, "multi", BASE, models["a"], "diabetes-s390x", platform="linux/s390x")
    assert err.value.step == f"read base image {BASE}" and err.value.repository == "multi"
    with pytest.raises(ImageError, match="Lambda runs single-platform images only"):
        read_image(c, "multi", BASE, platform=None)
    # AND a single-platform base of another architecture is refused too
    with pytest.raises(ImageError, match="the base is linux/arm64, not linux/amd64"):
        append_model(c, "multi", "arm64", models["a"], "diabetes-x", platform=Platform.for_lambda("x86_64"))


def test_a_big_layer_goes_up_in_chunks(registry, models, tmp_path):
    c = client(registry.url, chunk_size=16 * 1024, monolithic_max=16 * 1024)
    push_base(c, tmp_path, repo="chunked")
    before = c.stats.requests["PATCH"]
    result = append_model(c, "chunked", BASE, models["a"], "diabetes-v1")
    layer_size = next(d["size"] for d in json.loads(c.manifest("chunked", result.digest, ACCEPT)[1])["layers"]
                      if d["digest"] == result.layer_digest)
    assert layer_size > 16 * 1024
    assert c.stats.requests["PATCH"] - before == math.ceil(layer_size / (16 * 1024))
    skopeo("copy", "--src-tls-verify=false", f"docker://{registry.host}/chunked:diabetes-v1", f"oci:{tmp_path}/oci:x")
    # The same bytes, hence the same image, as a monolithic upload gives
    mono = client(registry.url)
    push_base(mono, tmp_path, repo="monolithic")
    assert append_model(mono, "monolithic", BASE, models["a"], "diabetes-v1").digest == result.digest


def test_missing_base_and_bad_model_are_one_clear_error(registry, models, tmp_path):
    c = client(registry.url)
    with pytest.raises(ImageError) as err:
        append_model(c, REPO, "base-missing", models["a"], "diabetes-v9")
    message = str(err.value)
    assert message.startswith(f"registry {registry.host}, repository {REPO}: read manifest base-missing failed: "
                              "HTTP 404 (MANIFEST_UNKNOWN") and "\n" not in message
    assert (err.value.status, err.value.step) == (404, "read manifest base-missing")


# -- a base image copied into another account's repository (issue 21, deploy/image/copy.py) ---------------------

def test_a_base_copied_to_another_repository_is_the_same_image_and_takes_the_model(registry, models, tmp_path):
    from deploy.image.copy import copy_image

    here, there = client(registry.url), client(registry.url)  # ECR mounts nothing across accounts: two repositories
    digest, _ = push_base(here, tmp_path, repo="source-group")
    # GIVEN a destination without the base WHEN it is copied THEN the tag names the same digest, every blob sent
    result = copy_image(here, "source-group", there, "target-stage", BASE, platform="linux/amd64")
    assert result.digest == digest and result.manifest_written and result.blobs_uploaded == 3  # 2 layers + config
    assert there.manifest_digest("target-stage", BASE, ACCEPT) == digest
    skopeo("copy", "--src-tls-verify=false", f"docker://{registry.host}/target-stage:{BASE}", f"oci:{tmp_path}/oci:x")
    # AND a model appended there is the image the source would give (same base digest, same layer)
    assert (append_model(there, "target-stage", BASE, models["a"], "diabetes-v1").digest
            == append_model(here, "source-group", BASE, models["a"], "diabetes-v1").digest)
    # WHEN copied again THEN nothing is written
    sent = _writes(there)
    assert not copy_image(here, "source-group", there, "target-stage", BASE).manifest_written
    assert _writes(there) == sent


def test_copying_an_index_takes_the_platforms_image_or_is_refused(registry, tmp_path):
    from deploy.image.copy import copy_image

    c = client(registry.url)
    amd64, arm64 = push_index(c, tmp_path, "multi-source")
    assert copy_image(c, "multi-source", c, "multi-target", BASE, platform="linux/arm64").digest == arm64
    assert c.manifest("multi-target", BASE, ACCEPT)[0] == OCI_MANIFEST
    with pytest.raises(ImageError, match="has no linux/s390x manifest") as err:
        copy_image(c, "multi-source", c, "multi-other", BASE, platform="linux/s390x")
    assert err.value.repository == "multi-source" and c.manifest_digest("multi-other", BASE, ACCEPT) is None


def _writes(c) -> int:
    """The write requests (PUT, POST, PATCH) a client has sent."""
    return c.stats.requests["PUT"] + c.stats.requests["POST"] + c.stats.requests["PATCH"]
