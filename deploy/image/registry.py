"""An OCI Distribution (registry HTTP API v2) client: manifests, blobs and uploads, stdlib HTTP only.

Works against ECR (`ecr_registry`: Basic auth from GetAuthorizationToken) and any standard registry:
anonymous, Basic, or the Bearer-token challenge. Every call has a socket timeout; connection errors,
429 and 5xx answers are retried `attempts` times in all with exponential backoff (an upload is retried
whole, from a new session). Blobs up to `monolithic_max` bytes go in one PUT; larger ones in PATCH
chunks of `chunk_size` bytes (10 MiB: inside ECR's 5-20 MiB part limits), read from disk as they are
sent. A chunk's PATCH is accepted with 202 (the distribution spec) or 201 (what ECR is reported to
answer, aws/containers-roadmap#2831); the offsets are our own count of the bytes sent, never the
answer's Range (ECR's is reported not to advance), and the final PUT names the digest, which the
registry checks against everything it received. Every failure is one ImageError naming the registry,
the repository, the step and the HTTP status. `stats` counts requests and bytes sent (what the tests
and the benchmark read). HTTP goes through `transport` (deploy/image/transport.py; the real one by
default, an in-memory MockTransport in tests).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploy.image.auth import Anonymous, Credentials, EcrCredentials, basic_header, parse_challenge
from deploy.image.refs import check_digest, check_reference, check_repository
from deploy.image.transport import BaseTransport, FileSlice, HttpResponse, Transport
from greenlight.errors import ImageError

__all__ = ["CHUNK_SIZE", "RegistryClient", "RegistryStats", "ecr_registry", "short"]

log = logging.getLogger(__name__)

CHUNK_SIZE = 10 * 1024 * 1024
TRANSIENT = frozenset({429, 500, 502, 503, 504})
CHUNK_ACCEPTED = (201, 202)  # 202 in the distribution spec; 201 from ECR (module docstring)


def short(digest: str) -> str:
    """sha256:0123456789ab… for messages."""
    return digest[:19] + "…" if len(digest) > 19 else digest


@dataclass
class RegistryStats:
    """What a client sent: requests by method, request body bytes, retries, blobs uploaded."""

    requests: Counter = field(default_factory=Counter)
    bytes_sent: int = 0
    retries: int = 0
    blobs_uploaded: int = 0


class _Transient(Exception):
    def __init__(self, detail: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(detail)
        self.status, self.retry_after = status, retry_after


class RegistryClient:
    """One registry (`url` such as https://123456789012.dkr.ecr.eu-west-1.amazonaws.com or http://127.0.0.1:5000).

    One request at a time: use a client per thread.
    """

    def __init__(self, url: str, credentials: Credentials | None = None, *, timeout: float = 30.0,
                 attempts: int = 4, backoff: float = 0.5, chunk_size: int = CHUNK_SIZE,
                 monolithic_max: int | None = None, sleep: Callable[[float], None] = time.sleep, ssl_context=None,
                 transport: BaseTransport | None = None):
        self.url = url.rstrip("/")
        self.name = urllib.parse.urlsplit(self.url).netloc or self.url
        self.credentials = credentials or Anonymous()
        self.attempts, self.backoff, self._sleep = max(1, attempts), backoff, sleep
        self.chunk_size = chunk_size
        self.monolithic_max = chunk_size if monolithic_max is None else monolithic_max
        self.stats = RegistryStats()
        self._http = transport if transport is not None else Transport(timeout=timeout, ssl_context=ssl_context)
        self._tokens: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"RegistryClient({self.url!r}, {self.credentials!r})"

    def close(self) -> None:
        self._http.close()

    # -- manifests --------------------------------------------------------------------------------

    def manifest(self, repository: str, reference: str, accept: tuple[str, ...]) -> tuple[str, bytes, str]:
        """(media type, exact bytes, digest) of a manifest. Raises: ImageError (missing, digest mismatch)."""
        check_repository(repository), check_reference(reference)
        step = f"read manifest {short(reference)}"
        resp = self._call(step, repository, "GET", self._v2(repository, "manifests", reference),
                          {"Accept": ", ".join(accept)})
        digest = "sha256:" + hashlib.sha256(resp.body).hexdigest()
        if reference.startswith("sha256:") and digest != reference:
            raise self.error(step, repository, detail=f"the registry answered bytes whose digest is {digest}")
        media_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
        try:
            media_type = json.loads(resp.body).get("mediaType") or media_type
        except (ValueError, AttributeError):
            raise self.error(step, repository, detail="the manifest is not a JSON object") from None
        return media_type, resp.body, digest

    def manifest_digest(self, repository: str, reference: str, accept: tuple[str, ...]) -> str | None:
        """The digest a tag (or digest) resolves to, or None if the registry has no such manifest."""
        check_repository(repository), check_reference(reference)
        resp = self._call(f"check manifest {short(reference)}", repository, "HEAD",
                          self._v2(repository, "manifests", reference), {"Accept": ", ".join(accept)},
                          expect=(200, 404))
        return resp.headers.get("Docker-Content-Digest") if resp.status == 200 else None

    def put_manifest(self, repository: str, reference: str, media_type: str, body: bytes) -> str:
        """Store a manifest under a tag (or its digest); returns its digest, checked against the registry's."""
        check_repository(repository), check_reference(reference)
        step = f"put manifest {reference}"
        resp = self._call(step, repository, "PUT", self._v2(repository, "manifests", reference),
                          {"Content-Type": media_type}, body=body, expect=(201,))
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        answered = resp.headers.get("Docker-Content-Digest")
        if answered and answered != digest:
            raise self.error(step, repository, detail=f"the registry stored {answered}, we sent {digest}")
        return digest

    # -- blobs ----------------------------------------------------------------------------------

    def blob_exists(self, repository: str, digest: str) -> bool:
        """True if the repository holds the blob (HEAD 200, or a redirect to its storage), False on 404."""
        check_repository(repository), check_digest(digest)
        resp = self._call(f"check blob {short(digest)}", repository, "HEAD", self._v2(repository, "blobs", digest),
                          {}, expect=(200, 404, 302, 303, 307, 308))
        return resp.status != 404

    def blob(self, repository: str, digest: str) -> bytes:
        """A small blob's bytes (a config), checked against its digest."""
        check_repository(repository), check_digest(digest)
        step = f"read blob {short(digest)}"
        resp = self._call(step, repository, "GET", self._v2(repository, "blobs", digest), {})
        if "sha256:" + hashlib.sha256(resp.body).hexdigest() != digest:
            raise self.error(step, repository, detail="the bytes answered do not have that digest")
        return resp.body

    def download_blob(self, repository: str, digest: str, dest: Path) -> int:
        """Stream a blob into dest, checking its digest; returns its size."""
        check_repository(repository), check_digest(digest)
        step = f"download blob {short(digest)}"
        resp = self._call(step, repository, "GET", self._v2(repository, "blobs", digest), {}, stream_to=Path(dest))
        if f"sha256:{resp.streamed_sha256}" != digest:
            raise self.error(step, repository, detail="the bytes answered do not have that digest")
        return resp.streamed_size

    def ensure_blob(self, repository: str, digest: str, source: bytes | Path) -> bool:
        """Upload the blob unless the repository has it (HEAD first); True if it was uploaded."""
        if self.blob_exists(repository, digest):
            log.debug("%s/%s already holds %s", self.name, repository, short(digest))
            return False
        self.upload_blob(repository, digest, source)
        return True

    def upload_blob(self, repository: str, digest: str, source: bytes | Path) -> None:
        """Upload a blob: one PUT up to monolithic_max bytes, else PATCH chunks; the whole upload is retried."""
        check_repository(repository), check_digest(digest)
        size = len(source) if isinstance(source, bytes | bytearray) else Path(source).stat().st_size
        step = f"upload blob {short(digest)} ({size:,} bytes)"

        def piece(offset: int, length: int) -> bytes | FileSlice:
            if isinstance(source, bytes | bytearray):
                return bytes(source[offset:offset + length])
            return FileSlice(Path(source), offset, length)

        def upload() -> None:
            start = self._once(step, repository, "POST", self._v2(repository, "blobs", "uploads/"), {},
                               body=b"", expect=(202,))
            location = self._location(step, repository, start)
            if size > self.monolithic_max:
                for offset in range(0, size, self.chunk_size):
                    length = min(self.chunk_size, size - offset)
                    resp = self._once(step, repository, "PATCH", location,
                                      {"Content-Type": "application/octet-stream",
                                       "Content-Range": f"{offset}-{offset + length - 1}"},
                                      body=piece(offset, length), expect=CHUNK_ACCEPTED)
                    location = self._location(step, repository, resp, previous=location)
                body = b""
            else:
                body = piece(0, size)
            sep = "&" if "?" in location else "?"
            self._once(step, repository, "PUT", f"{location}{sep}{urllib.parse.urlencode({'digest': digest})}",
                       {"Content-Type": "application/octet-stream"}, body=body, expect=(201,))

        self._retrying(step, repository, upload)
        self.stats.blobs_uploaded += 1
        log.info("uploaded %s (%s bytes) to %s/%s", short(digest), f"{size:,}", self.name, repository)

    # -- requests -------------------------------------------------------------------------------

    def _v2(self, repository: str, kind: str, reference: str) -> str:
        return f"{self.url}/v2/{repository}/{kind}/{reference}"

    def _location(self, step: str, repository: str, resp: HttpResponse, previous: str | None = None) -> str:
        """The upload's next URL: the answer's Location, else (a chunk's answer without one) the same URL."""
        location = resp.headers.get("Location")
        if not location:
            if previous is not None:
                return previous
            raise self.error(step, repository, resp.status, "the registry gave no upload Location")
        return urllib.parse.urljoin(resp.url, location)

    def _call(self, step: str, repository: str, method: str, url: str, headers: dict[str, str], *,
              body: bytes | None = None, expect: tuple[int, ...] = (200,),
              stream_to: Path | None = None) -> HttpResponse:
        return self._retrying(step, repository, lambda: self._once(step, repository, method, url, headers, body=body,
                                                                      expect=expect, stream_to=stream_to))

    def _retrying(self, step: str, repository: str, fn: Callable[[], Any]) -> Any:
        for attempt in range(1, self.attempts + 1):
            try:
                return fn()
            except _Transient as exc:
                if attempt == self.attempts:
                    noun = "attempt" if attempt == 1 else "attempts"
                    raise self.error(step, repository, exc.status, f"{exc}; {attempt} {noun}") from None
                delay = exc.retry_after if exc.retry_after is not None else self.backoff * 2 ** (attempt - 1)
                log.warning("%s on %s/%s: %s; retrying in %.1f s", step, self.name, repository, exc, delay)
                self.stats.retries += 1
                self._sleep(min(delay, 30.0))
        raise AssertionError("unreachable")

    def _once(self, step: str, repository: str, method: str, url: str, headers: dict[str, str], *,
              body: bytes | FileSlice | None = None, expect: tuple[int, ...] = (200,),
              stream_to: Path | None = None) -> HttpResponse:
        scope = f"repository:{repository}:{'pull' if method in ('GET', 'HEAD') else 'pull,push'}"
        sent_auth = self._authorization(scope)
        resp = self._send(method, url, {**headers, **sent_auth}, body, stream_to)
        if resp.status == 401 and self._answer_challenge(step, repository, resp, scope, sent_auth):
            resp = self._send(method, url, {**headers, **self._authorization(scope)}, body, stream_to)
        if resp.status in TRANSIENT:
            retry_after = resp.headers.get("Retry-After", "")
            raise _Transient(_describe(resp), resp.status, float(retry_after) if retry_after.isdigit() else None)
        if resp.status not in expect:
            raise self.error(step, repository, resp.status, _describe(resp))
        return resp

    def _send(self, method: str, url: str, headers: dict[str, str], body, stream_to) -> HttpResponse:
        self.stats.requests[method] += 1
        self.stats.bytes_sent += body.length if isinstance(body, FileSlice) else len(body or b"")
        try:
            return self._http.request(method, url, {"User-Agent": "greenlight-image/1", **headers}, body, stream_to)
        except (OSError, http.client.HTTPException) as exc:
            raise _Transient(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from None

    def _authorization(self, scope: str) -> dict[str, str]:
        token = self._tokens.get(scope) or (self._tokens.get(scope + ",push") if scope.endswith(":pull") else None)
        if token:
            return {"Authorization": f"Bearer {token}"}
        creds = self.credentials.basic()
        return {"Authorization": basic_header(*creds)} if creds else {}

    def _answer_challenge(self, step: str, repository: str, resp: HttpResponse, scope: str, sent: dict) -> bool:
        """After a 401: True if new credentials are ready to retry with (a fresh token or ECR password)."""
        scheme, params = parse_challenge(resp.headers.get("WWW-Authenticate"))
        if scheme == "bearer" and params.get("realm"):
            query = {"service": params.get("service"), "scope": params.get("scope") or scope}
            query = {k: v for k, v in query.items() if v}
            creds = self.credentials.basic()
            headers = {"Authorization": basic_header(*creds)} if creds else {}
            url = params["realm"] + ("&" if "?" in params["realm"] else "?") + urllib.parse.urlencode(query)
            answer = self._send("GET", url, headers, None, None)
            token_step = f"{step}: get a token from {params['realm']}"
            if answer.status != 200:
                raise self.error(token_step, repository, answer.status, _describe(answer))
            try:
                data = json.loads(answer.body)
                self._tokens[scope] = str(data.get("token") or data["access_token"])
            except (ValueError, KeyError, AttributeError):
                raise self.error(token_step, repository, 200, "the answer holds no token") from None
            return True
        if scheme == "basic":
            fresh = self.credentials.basic(refresh=isinstance(self.credentials, EcrCredentials))
            return bool(fresh) and {"Authorization": basic_header(*fresh)} != sent
        return False

    def error(self, step: str, repository: str, status: int | None = None, detail: str = "") -> ImageError:
        """The ImageError for a failed step: `registry R, repository P: <step> failed: HTTP <status> (<detail>)`."""
        where = f"registry {self.name}, repository {repository}"
        what = f"HTTP {status}" + (f" ({detail})" if detail else "") if status else detail
        return ImageError(f"{where}: {step} failed: {what}", registry=self.name, repository=repository, step=step,
                          status=status)


def _describe(resp: HttpResponse) -> str:
    """The reason and the registry's first errors (OCI error JSON), in one short line."""
    text = resp.reason or ""
    try:
        errors = json.loads(resp.body or b"{}").get("errors") or []
        text = "; ".join(f"{e.get('code', '?')}: {e.get('message', '')}".strip() for e in errors[:2]) or text
    except (ValueError, AttributeError):
        pass
    if resp.status == 401:
        text += " (credentials missing or refused)"
    return " ".join(text.split())[:300]


def ecr_registry(ecr_client: Any, registry_id: str | None = None, **options: Any) -> RegistryClient:
    """A client for the account's ECR registry: URL and Basic credentials from ecr:GetAuthorizationToken.

    Raises:
        AwsError: GetAuthorizationToken failed.
    """
    credentials = EcrCredentials(ecr_client, registry_id)
    return RegistryClient(credentials.endpoint(), credentials, **options)
