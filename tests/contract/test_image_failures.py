"""Registry failures during an append: retried when transient, else one line naming the step, tags untouched.

Faults come from a small proxy in front of the real registry (tests/support/registry.py: FaultProxy),
or from stopping the registry process itself.
"""

from __future__ import annotations

import pytest

from deploy.image import RegistryClient, append_model
from deploy.image.manifest import ACCEPT
from greenlight.errors import ImageError
from tests.support.images import BASE, client, push_base, trained_models
from tests.support.registry import FaultProxy, running_registry


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict:
    return trained_models(tmp_path_factory.mktemp("models"))


@pytest.fixture
def registry(tmp_path):
    with running_registry(tmp_path / "registry") as reg:
        yield reg


@pytest.fixture
def deployed(registry, models, tmp_path) -> tuple[RegistryClient, str]:
    """A base and model a as diabetes-v1; returns the client and v1's digest."""
    c = client(registry.url)
    push_base(c, tmp_path, repo="r")
    return c, append_model(c, "r", BASE, models["a"], "diabetes-v1").digest


def tags(c: RegistryClient) -> dict[str, str | None]:
    return {t: c.manifest_digest("r", t, ACCEPT) for t in ("diabetes-v1", "diabetes-v2")}


@pytest.mark.parametrize("method, path, step", [
    ("POST", r"/blobs/uploads/$", "upload blob"),
    ("PUT", r"/blobs/uploads/", "upload blob"),
    ("HEAD", r"/blobs/sha256:", "check blob"),
    ("PUT", r"/manifests/diabetes-v2$", "put manifest diabetes-v2"),
])
def test_a_failing_step_is_one_line_and_leaves_every_tag_as_it_was(registry, deployed, models, method, path,
                                                                     step):
    c, v1 = deployed
    with FaultProxy(registry.url) as proxy:
        proxy.fail(method, path, 500)
        # WHEN model b is appended as v2 through a registry that keeps answering 500 at one step
        with pytest.raises(ImageError) as err:
            append_model(client(proxy.url), "r", BASE, models["b"], "diabetes-v2")
    # THEN one line names the registry, the repository, the step, the status and the attempts
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"registry 127.0.0.1:{proxy.url.rsplit(':', 1)[1]}, repository r: ")
    detail = "Internal Server Error" if method == "HEAD" else "INJECTED: injected 500"  # a HEAD answer has no body
    assert f": {step}" in message and f"failed: HTTP 500 ({detail}; 4 attempts)" in message
    assert (err.value.status, err.value.repository) == (500, "r") and err.value.step.startswith(step)
    assert sum(1 for m, p, s in proxy.seen if s == 500) == 4  # tried four times in all
    # AND v1 still names its image, v2 names nothing
    assert tags(c) == {"diabetes-v1": v1, "diabetes-v2": None}


def test_a_failing_chunk_fails_the_upload_and_leaves_the_tags(registry, deployed, models):
    c, v1 = deployed
    with FaultProxy(registry.url) as proxy:
        proxy.fail("PATCH", r"/blobs/uploads/", 503)
        with pytest.raises(ImageError, match=r"upload blob sha256:[0-9a-f]{12}… \([\d,]+ bytes\) failed: HTTP 503"):
            append_model(client(proxy.url, chunk_size=4096, monolithic_max=4096), "r", BASE, models["b"], "diabetes-v2")
    assert tags(c) == {"diabetes-v1": v1, "diabetes-v2": None}


def test_transient_errors_are_retried(registry, deployed, models):
    c, v1 = deployed
    with FaultProxy(registry.url) as proxy:
        proxy.fail("HEAD", r"/manifests/", 503, times=1)
        proxy.fail("PATCH", r"/blobs/uploads/", 500, times=1)
        proxy.fail("PUT", r"/manifests/diabetes-v2$", 502, times=2)
        through = client(proxy.url, chunk_size=4096, monolithic_max=4096)
        result = append_model(through, "r", BASE, models["b"], "diabetes-v2")
    assert through.stats.retries == 4
    assert tags(c) == {"diabetes-v1": v1, "diabetes-v2": result.digest}
    # The same image as a clean append gives (uploads restarted from scratch store the same bytes)
    assert append_model(c, "r", BASE, models["b"], "diabetes-v2").digest == result.digest


def test_a_stopped_registry_is_one_line_and_the_tags_survive(registry, deployed, models, tmp_path):
    c, v1 = deployed
    registry.stop()
    with pytest.raises(ImageError) as err:
        append_model(c, "r", BASE, models["b"], "diabetes-v2")
    message = str(err.value)
    assert message.startswith(f"registry {registry.host}, repository r: read manifest {BASE} failed: ")
    assert "Connection refused" in message and "4 attempts" in message and "\n" not in message
    assert err.value.status is None
    # The storage, served again, still has v1 as it was and no v2
    with running_registry(tmp_path / "again", storage=registry.storage) as again:
        assert tags(client(again.url)) == {"diabetes-v1": v1, "diabetes-v2": None}


def test_every_request_has_a_timeout(registry, deployed, models):
    # GIVEN a "registry" that accepts connections and never answers
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        c = RegistryClient(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=0.2, attempts=2,
                           sleep=lambda _s: None)
        with pytest.raises(ImageError, match=r"read manifest base-test failed: TimeoutError: timed out; 2 attempts"):
            append_model(c, "r", BASE, models["b"], "diabetes-v2")
