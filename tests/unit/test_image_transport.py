"""The registry client's failure cases over an in-memory transport (deploy/image/transport.py MockTransport).

A small fake registry answers blob uploads (POST, PATCH chunks, the final PUT) as the distribution spec
says, or as ECR is reported to (201 for a chunk, a Range that does not advance, no Location), or fails a
step; round trips against a real registry stay in tests/contract/test_image_*.py.
"""

from __future__ import annotations

import hashlib
import urllib.parse

import pytest

from deploy.image.registry import RegistryClient
from deploy.image.transport import HttpRequest, MockTransport, response
from greenlight.errors import ImageError

DATA = bytes(range(256)) * 40  # 10,240 bytes: three chunks of 4,096
DIGEST = "sha256:" + hashlib.sha256(DATA).hexdigest()


class FakeRegistry:
    """Blob uploads in memory. `chunk_status`/`chunk_location`/`stuck_range` shape the PATCH answers;
    `fail` maps (method, occurrence) to an answer or an OSError to raise."""

    def __init__(self, chunk_status: int = 202, chunk_location: bool = True, stuck_range: bool = False):
        self.chunk_status, self.chunk_location, self.stuck_range = chunk_status, chunk_location, stuck_range
        self.uploads: dict[str, bytearray] = {}
        self.blobs: dict[str, bytes] = {}
        self.fail: dict[tuple[str, int], object] = {}
        self.seen: dict[str, int] = {}
        self.ranges: list[str] = []

    def __call__(self, request: HttpRequest):
        count = self.seen[request.method] = self.seen.get(request.method, 0) + 1
        injected = self.fail.get((request.method, count))
        if isinstance(injected, Exception):
            raise injected
        if injected is not None:
            return injected
        path = urllib.parse.urlsplit(request.url)
        query = urllib.parse.parse_qs(path.query)
        if request.method == "POST":
            upload = f"u{len(self.uploads)}"
            self.uploads[upload] = bytearray()
            return response(202, headers={"Location": f"/v2/r/blobs/uploads/{upload}?_state=0"})
        upload = path.path.rsplit("/", 1)[-1]
        if request.method == "PATCH":
            start, _, end = request.headers["Content-Range"].partition("-")
            assert int(start) == len(self.uploads[upload]), "the client's offsets are its own count"
            self.uploads[upload] += request.body
            self.ranges.append(request.headers["Content-Range"])
            headers = {"Range": "0-4095" if self.stuck_range else f"0-{len(self.uploads[upload]) - 1}"}
            if self.chunk_location:
                headers["Location"] = f"/v2/r/blobs/uploads/{upload}?_state={len(self.uploads[upload])}"
            return response(self.chunk_status, headers=headers)
        if request.method == "PUT":
            data = bytes(self.uploads.pop(upload)) + request.body
            if "sha256:" + hashlib.sha256(data).hexdigest() != query["digest"][0]:
                return response(400, b'{"errors":[{"code":"DIGEST_INVALID","message":"digest did not match"}]}')
            self.blobs[query["digest"][0]] = data
            return response(201, headers={"Location": f"/v2/r/blobs/{query['digest'][0]}"})
        return response(405)


def client(fake: FakeRegistry, **options) -> RegistryClient:
    return RegistryClient("https://registry.test", transport=MockTransport(fake), chunk_size=4096,
                          monolithic_max=4096, sleep=lambda _s: None, **options)


@pytest.mark.parametrize("status, location, stuck", [(202, True, False), (201, True, True), (201, False, True)])
def test_chunks_go_up_in_order_whatever_the_chunk_answers_say(status, location, stuck):
    fake = FakeRegistry(chunk_status=status, chunk_location=location, stuck_range=stuck)
    c = client(fake)
    c.upload_blob("r", DIGEST, DATA)
    assert fake.blobs == {DIGEST: DATA}
    assert fake.ranges == ["0-4095", "4096-8191", "8192-10239"]
    assert c.stats.blobs_uploaded == 1 and c.stats.requests["PATCH"] == 3 and c.stats.retries == 0


def test_a_refused_chunk_is_one_line_naming_the_step_and_status():
    fake = FakeRegistry()
    fake.fail[("PATCH", 2)] = response(400, b'{"errors":[{"code":"BLOB_UPLOAD_INVALID","message":"bad range"}]}')
    with pytest.raises(ImageError) as err:
        client(fake).upload_blob("r", DIGEST, DATA)
    message = str(err.value)
    assert message.startswith("registry registry.test, repository r: upload blob sha256:") and "\n" not in message
    assert "failed: HTTP 400 (BLOB_UPLOAD_INVALID: bad range)" in message and err.value.status == 400


def test_a_broken_connection_mid_upload_retries_the_whole_upload():
    fake = FakeRegistry()
    fake.fail[("PATCH", 2)] = ConnectionResetError("connection reset by peer")
    c = client(fake)
    c.upload_blob("r", DIGEST, DATA)
    assert fake.blobs == {DIGEST: DATA} and c.stats.retries == 1 and fake.seen["POST"] == 2


def test_a_digest_the_registry_refuses_is_named():
    fake = FakeRegistry()
    with pytest.raises(ImageError, match=r"failed: HTTP 400 \(DIGEST_INVALID: digest did not match\)"):
        client(fake).upload_blob("r", "sha256:" + "0" * 64, DATA)


def test_an_upload_without_a_location_is_one_line():
    fake = FakeRegistry()
    fake.fail[("POST", 1)] = response(202)
    with pytest.raises(ImageError, match="the registry gave no upload Location"):
        client(fake).upload_blob("r", DIGEST, DATA)


def test_every_attempt_failing_names_the_attempts():
    fake = FakeRegistry()
    for n in range(1, 5):
        fake.fail[("POST", n)] = response(503, b'{"errors":[{"code":"UNAVAILABLE","message":"try later"}]}')
    with pytest.raises(ImageError, match=r"HTTP 503 \(UNAVAILABLE: try later; 4 attempts\)"):
        client(fake).upload_blob("r", DIGEST, DATA)
