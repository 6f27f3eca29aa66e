"""The endpoint target, local adapter: the SageMaker Serverless endpoint's stand-in on this machine.

The primitives of the deploy transaction (deploy.engine.protocol), no request ever answered by an
unverified version:

    fetch    the release's model.tar.gz from the artifact store, unpacked (content-addressed cache), its sha256
    stage    a running `greenlight endpoint serve` loads the version in its second slot, through its
             token-guarded side channel (deploy.endpoint.server; the token is in the owner-only
             registration file); with no server running, the version is loaded here, in-process
    probe    the smoke rows go to the staged slot (or the in-process model) and are compared exactly
    switch   endpoint.json names the version (written only now); the server's hot swap promotes the
             model it staged, without a second load
    confirm  the server's /ping reports the version (bounded by smoke_timeout)
    unstage  endpoint.json back to the previous record if it names the staged version; the staged slot
             dropped; a rollout record removed (the previous version takes every request again)

Progressive delivery (issue 22): `shift` writes the rollout record (deploy.endpoint.split) naming the
probed version and its share, which the running server routes by; `switch` keeps it at 100% while the
version bakes, `confirm` removes it; `traffic` reads the counts the server wrote.

HTTP goes through a transport (deploy.endpoint.client: the real one by default, an in-memory one in
failure tests).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deploy.endpoint.client import HttpRequest, HttpResponse, Transport, TransportError, UrllibTransport
from deploy.endpoint.deployed import EndpointState, ServingRecord, read_serving, version_label
from deploy.endpoint.loader import LoadedModel, load_version
from deploy.endpoint.server import STAGED_PATH, TOKEN_HEADER, VERSION_HEADER
from deploy.endpoint.split import read_rollout, read_traffic, remove_rollout, write_rollout
from deploy.endpoint.sources import prepare_model_dir
from deploy.engine.local_state import CorruptState
from deploy.engine.model import Observed, Release, TargetKind
from deploy.engine.protocol import Artifact, Staged
from deploy.engine.smoke import SmokeMismatch, SmokeTest
from deploy.engine.traffic import VersionTraffic
from greenlight.errors import DeploymentFailed

__all__ = ["LocalEndpointTarget", "file_digest"]

log = logging.getLogger(__name__)

SPLIT = "endpoint"  # the server's name for its rollout record and counts (deploy.endpoint.split)


def file_digest(path: Path) -> str | None:
    """`sha256:<hex>` of a file (None for a directory: a model given unpacked)."""
    if not Path(path).is_file():
        return None
    with open(path, "rb") as fh:
        return "sha256:" + hashlib.file_digest(fh, "sha256").hexdigest()


class LocalEndpointTarget:
    """DeployTarget for the local endpoint of one model package group (module docstring)."""

    kind = TargetKind.ENDPOINT

    def __init__(self, home: Path, group: str, model_path: Callable[[str], Path], *, name: str = "endpoint",
                 smoke_timeout: float = 120.0, poll: float = 0.05, transport: Transport | None = None):
        self.home, self.group, self.name = Path(home), group, name
        self._model_path = model_path  # s3:// URI of model.tar.gz -> local file (the artifact store)
        self.smoke_timeout = smoke_timeout
        self.poll = poll
        self.transport = transport or UrllibTransport()
        self._in_process: dict[str, LoadedModel] = {}  # staged here when no server runs (label -> model)

    def observe(self) -> Observed:
        serving = read_serving(self.home, self.group)
        detail: dict[str, Any] = {"serving_url": None if serving is None else serving.url}
        try:
            state = EndpointState.read(self.home, self.group)
        except CorruptState as exc:  # rebuilt by the next deployment; what serves is the server's own
            log.warning("%s; it is rewritten by the next deployment", exc)
            return Observed(self.name, self.kind, None, False, {**detail, "unreadable": str(exc)})
        rollout = read_rollout(self.home, self.group, SPLIT)
        if rollout is not None:
            detail["rollout"] = {"version": rollout.get("version"), "percent": rollout.get("percent")}
        return Observed(self.name, self.kind, state.version, state.version is not None, {**state.summary(), **detail})

    # -- the deploy primitives -------------------------------------------------------------------

    def fetch(self, release: Release, scratch: Path) -> Artifact:
        archive = self._model_path(release.model_data_url or "")
        model_dir = prepare_model_dir(archive, self.home / "endpoint-cache")
        return Artifact(release.version, release.model_data_url, model_dir, file_digest(archive))

    def stage(self, release: Release, artifact: Artifact) -> Staged:
        label = version_label(self.group, release.version)
        try:
            previous = EndpointState.read(self.home, self.group).summary()
        except CorruptState:
            previous = None
        ref = {"label": label, "model_dir": str(artifact.path), "digest": artifact.digest,
               "package_arn": release.package_arn, "previous": previous}
        serving = read_serving(self.home, self.group)
        if serving is None:
            try:
                self._in_process[label] = load_version(label, Path(str(artifact.path)))
            except Exception as exc:  # the model's own code failed: report it, keep the old version
                raise DeploymentFailed(f"v{release.version} failed to load in-process: {type(exc).__name__}: "
                                       f"{exc}") from exc
            return Staged(self.name, release.version, {**ref, "server": None})
        answer = self._call(serving, "POST", STAGED_PATH, json.dumps(
            {"version": label, "model_dir": ref["model_dir"], "digest": artifact.digest}).encode(),
            {"Content-Type": "application/json"})
        if answer.status != 200:
            raise DeploymentFailed(f"the endpoint at {serving.url} cannot stage {label}: {_text(answer)}")
        return Staged(self.name, release.version, {**ref, "server": serving.url})

    def probe(self, staged: Staged, smoke: SmokeTest) -> str:
        label, server = staged.ref["label"], staged.ref.get("server")
        if server is None:
            loaded = self._in_process.get(label)
            if loaded is None:
                raise DeploymentFailed(f"{label} is not staged in this process")
            try:
                body, _ = loaded.finish(loaded.parse(smoke.body.encode(), smoke.content_type), smoke.accept)
            except Exception as exc:  # the model's own code failed: report it, keep the old version
                raise DeploymentFailed(f"smoke test in-process: v{staged.version} failed to serve: "
                                       f"{type(exc).__name__}: {exc}") from exc
            where = "in-process (no local endpoint is running)"
        else:
            serving = self._server(server)
            answer = self._call(serving, "POST", f"{STAGED_PATH}/invocations", smoke.body.encode(),
                                {"Content-Type": smoke.content_type, "Accept": smoke.accept}, self.smoke_timeout)
            version = answer.header(VERSION_HEADER)
            if answer.status != 200 or version != label:
                raise DeploymentFailed(f"smoke test of the staged {label} at {server}: answered {answer.status} from "
                                       f"version {version}: {answer.body[:200]!r}")
            body, where = answer.body, f"at {server} (staged beside the serving version)"
        try:
            smoke.check(body)
        except SmokeMismatch as exc:
            raise DeploymentFailed(f"smoke test {where}: {exc}") from exc
        return where

    def shift(self, staged: Staged, previous: int | None, percent: float) -> str:
        ref = staged.ref
        written = write_rollout(self.home, self.group, SPLIT, {
            "version": staged.version, "label": ref["label"], "model_dir": ref["model_dir"],
            "digest": ref.get("digest"), "percent": percent, "previous": previous})
        return f"v{staged.version} answers {percent:g}% of requests" if written else ""

    def traffic(self, version: int, since: float) -> VersionTraffic:
        return read_traffic(self.home, self.group, SPLIT, version, since)

    def switch(self, staged: Staged) -> str:
        ref = staged.ref
        rollout = read_rollout(self.home, self.group, SPLIT)
        if rollout is not None and rollout.get("version") == staged.version:  # it bakes: still counted
            write_rollout(self.home, self.group, SPLIT, {**rollout, "percent": 100.0})
        EndpointState(staged.version, ref["model_dir"], ref.get("package_arn"),
                      datetime.now(UTC).isoformat(timespec="seconds"), ref.get("previous"), ref.get("digest")
                      ).write(self.home, self.group)
        self._in_process.pop(ref["label"], None)
        return ""

    def confirm(self, staged: Staged, smoke: SmokeTest | None) -> str | None:
        serving = read_serving(self.home, self.group)
        if serving is not None:
            self._wait_for(serving, staged.ref["label"])
        remove_rollout(self.home, self.group, SPLIT)  # a rollout complete: no split, no counting
        return None

    def unstage(self, staged: Staged) -> None:
        ref = staged.ref
        self._in_process.pop(ref["label"], None)
        remove_rollout(self.home, self.group, SPLIT)  # first: the previous version takes every request again
        try:
            current = EndpointState.read(self.home, self.group)
        except CorruptState:
            current = None
        switched = current is not None and (current.version, current.model_dir, current.digest) == (
            staged.version, ref["model_dir"], ref.get("digest"))
        if switched:
            previous = EndpointState.from_dict(ref.get("previous") or {})
            EndpointState(previous.version, previous.model_dir, previous.package_arn, previous.deployed_at, None,
                          previous.digest).write(self.home, self.group)
        serving = read_serving(self.home, self.group)
        if serving is None:
            return
        self._wait_unsplit(serving)  # no request reaches the staged version once unstage returns
        try:
            self._call(serving, "DELETE", STAGED_PATH, b"", {}, timeout=5.0)
        except DeploymentFailed as exc:  # the server drops an unpromoted staged model by itself when idle
            log.warning("could not drop the staged %s at %s: %s", ref["label"], serving.url, exc)
        if current is not None and switched:
            previous_label = None if current.previous is None or current.previous.get("version") is None \
                else version_label(self.group, current.previous["version"])
            try:
                self._wait_for(serving, previous_label)
            except DeploymentFailed as exc:
                log.error("the endpoint at %s did not swap back: %s", serving.url, exc)

    def stop(self) -> str:
        try:
            before = EndpointState.read(self.home, self.group)
        except CorruptState:
            before = EndpointState(None)
        EndpointState(None, previous=before.summary() if before.version is not None else None).write(
            self.home, self.group)
        remove_rollout(self.home, self.group, SPLIT)
        serving = read_serving(self.home, self.group)
        if serving is not None:
            self._wait_for(serving, None)
        return f"v{before.version} -> stopped (requests get 503 model_unavailable)"

    def prune(self, keep: frozenset[int]) -> list[str]:
        return []  # unpacked models live in the content-addressed endpoint-cache, shared by every endpoint

    # -- HTTP ------------------------------------------------------------------------------------

    def _server(self, url: str) -> ServingRecord:
        serving = read_serving(self.home, self.group)
        if serving is None or serving.url != url:
            raise DeploymentFailed(f"the endpoint at {url} that staged the version is no longer registered")
        return serving

    def _call(self, serving: ServingRecord, method: str, path: str, body: bytes, headers: dict[str, str],
              timeout: float | None = None) -> HttpResponse:
        request = HttpRequest(method, f"{serving.url}{path}", {**headers, TOKEN_HEADER: serving.token or ""}, body,
                              self.smoke_timeout if timeout is None else timeout)
        try:
            return self.transport.handle(request)
        except TransportError as exc:
            raise DeploymentFailed(f"cannot reach the endpoint at {serving.url}: {exc}") from exc

    def _wait_unsplit(self, serving: ServingRecord) -> None:
        """Until the endpoint's /ping reports no traffic split (its next poll of the removed rollout record),
        bounded by smoke_timeout; an unreachable endpoint is logged, since unstage itself must not fail."""
        deadline = time.monotonic() + self.smoke_timeout
        while True:
            try:
                answer = self.transport.handle(HttpRequest("GET", f"{serving.url}/ping", timeout=5.0))
                ping = json.loads(answer.body) if answer.status == 200 else {}
            except (TransportError, ValueError) as exc:
                log.warning("could not ask the endpoint at %s whether it dropped the split: %s", serving.url, exc)
                return
            if not ping.get("split_percent"):
                return
            if time.monotonic() >= deadline:
                log.error("the endpoint at %s still splits traffic %s s after the rollout record went",
                          serving.url, self.smoke_timeout)
                return
            time.sleep(self.poll)

    def _wait_for(self, serving: ServingRecord, label: str | None) -> None:
        """Until the endpoint's /ping reports `label` loaded (None: no model), bounded by smoke_timeout."""
        deadline = time.monotonic() + self.smoke_timeout
        last = "no answer"
        while True:
            try:
                answer = self.transport.handle(HttpRequest("GET", f"{serving.url}/ping", timeout=5.0))
                ping = json.loads(answer.body) if answer.status == 200 else {"status_code": answer.status}
            except (TransportError, ValueError) as exc:
                ping = {"error": str(exc)}
            if label is None and ping.get("status_code") == 503:
                return
            if label is not None and ping.get("model_version") == label:
                return
            if label is not None and ping.get("pending_version") == label and ping.get("pending_error"):
                raise DeploymentFailed(f"the endpoint at {serving.url} cannot load {label}: {ping['pending_error']}")
            last = json.dumps(ping)
            if time.monotonic() >= deadline:
                raise DeploymentFailed(f"the endpoint at {serving.url} did not switch to {label or 'no model'} within "
                                       f"{self.smoke_timeout:g} s (last /ping: {last})")
            time.sleep(self.poll)


def _text(answer: HttpResponse) -> str:
    try:
        doc = json.loads(answer.body)
        return f"{answer.status} {doc.get('error')}: {doc.get('message')}"
    except (ValueError, AttributeError):
        return f"{answer.status}: {answer.body[:200]!r}"
