"""Chunked blob uploads through a registry front that answers as ECR is reported to (aws/containers-roadmap#2831):
201 instead of 202 for each PATCH, and a Range that never advances. The upload completes, the blob read back
has its digest, and skopeo reads the image; with only 202 accepted (the client before this change), the
same push fails at the first chunk.
"""

from __future__ import annotations

import json

import pytest

from deploy.image import append_model, registry
from deploy.image.manifest import ACCEPT
from greenlight.errors import ImageError
from tests.support.images import BASE, client, push_base, trained_models
from tests.support.registry import EcrChunkAnswers, running_registry, skopeo

CHUNK = 64 * 1024  # small chunks, so the model layer goes up in several PATCHes


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict:
    return trained_models(tmp_path_factory.mktemp("models"))


@pytest.fixture
def registry_url(tmp_path):
    with running_registry(tmp_path / "registry") as reg:
        yield reg.url


def test_chunks_answered_201_with_a_stuck_range_still_upload(registry_url, models, tmp_path):
    push_base(client(registry_url), tmp_path, repo="r")
    with EcrChunkAnswers(registry_url) as front:
        through = client(front.url, chunk_size=CHUNK, monolithic_max=CHUNK)
        result = append_model(through, "r", BASE, models["a"], "diabetes-v1")
    assert len(front.patches) >= 2 and {status for status, _ in front.patches} == {201}
    assert len({rng for _, rng in front.patches}) == 1, "the front's Range never advanced"
    # read back directly from the registry: every blob has its digest, and an independent reader agrees
    direct = client(registry_url)
    _, body, digest = direct.manifest("r", "diabetes-v1", ACCEPT)
    assert digest == result.digest
    layers = json.loads(body)["layers"]
    assert result.layer_digest in [layer["digest"] for layer in layers]
    for layer in layers:
        assert direct.download_blob("r", layer["digest"], tmp_path / layer["digest"][7:]) == layer["size"]
    host = registry_url.removeprefix("http://")
    assert "diabetes-v1" in skopeo("inspect", "--tls-verify=false", f"docker://{host}/r:diabetes-v1").stdout


def test_only_202_accepted_fails_at_the_first_chunk(registry_url, models, tmp_path, monkeypatch):
    """The planted regression: the client as it was (202 only) cannot push through ECR's answers."""
    push_base(client(registry_url), tmp_path, repo="r")
    monkeypatch.setattr(registry, "CHUNK_ACCEPTED", (202,))
    with EcrChunkAnswers(registry_url) as front, pytest.raises(ImageError, match=r"upload blob .* failed: HTTP 201"):
        append_model(client(front.url, chunk_size=CHUNK, monolithic_max=CHUNK), "r", BASE, models["a"], "diabetes-v1")
