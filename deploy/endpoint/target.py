"""The endpoint target, local adapter: the SageMaker Serverless endpoint's stand-in on this machine.

Deploying writes the deployment record (deploy.endpoint.deployed); a running `greenlight endpoint
serve` picks it up through its hot swap (no request fails), and the smoke test then runs against that
running endpoint over HTTP, as on AWS: the deployer waits (bounded) until `/ping` reports the new
version, sends the recorded rows and compares the answer exactly. Without a running endpoint the smoke
test loads the version in-process through the same loader and serving code. On any failure the
previous record is written back (the endpoint swaps back, or never left it) and DeploymentFailed says
why.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from deploy.endpoint.deployed import EndpointState, read_serving, version_label
from deploy.endpoint.loader import load_version
from deploy.endpoint.server import VERSION_HEADER
from deploy.endpoint.sources import prepare_model_dir
from deploy.engine.model import Observed, Release, TargetKind
from deploy.engine.smoke import SmokeMismatch, SmokeTest
from greenlight.errors import DeploymentFailed, GreenlightError

__all__ = ["LocalEndpointTarget"]

log = logging.getLogger(__name__)


class LocalEndpointTarget:
    """DeployTarget for the local endpoint of one model package group."""

    kind = TargetKind.ENDPOINT

    def __init__(self, home: Path, group: str, model_path: Callable[[str], Path], *, name: str = "endpoint",
                 smoke_timeout: float = 120.0, poll: float = 0.05):
        self.home, self.group, self.name = Path(home), group, name
        self._model_path = model_path  # s3:// URI of model.tar.gz -> local file (the artifact store)
        self.smoke_timeout = smoke_timeout
        self.poll = poll

    def observe(self) -> Observed:
        state = EndpointState.read(self.home, self.group)
        serving = read_serving(self.home, self.group)
        return Observed(self.name, self.kind, state.version, state.version is not None,
                        {**state.summary(), "serving_url": None if serving is None else serving.url})

    def deploy(self, release: Release, smoke: SmokeTest | None) -> str:
        before = EndpointState.read(self.home, self.group)
        try:
            model_dir = prepare_model_dir(self._model_path(release.model_data_url or ""), self.home / "endpoint-cache")
        except GreenlightError as exc:
            raise DeploymentFailed(f"cannot fetch v{release.version}'s model {release.model_data_url}: {exc}") from exc
        after = EndpointState(release.version, str(model_dir), release.package_arn,
                              datetime.now(UTC).isoformat(timespec="seconds"),
                              before.summary() if before.version is not None else None)
        after.write(self.home, self.group)
        try:
            where = self._smoke(release, model_dir, smoke)
        except DeploymentFailed as exc:
            self._restore(before)
            raise DeploymentFailed(f"{exc}; {self._kept(before)}") from exc
        moved = "nothing" if before.version is None else f"v{before.version}"
        return f"{moved} -> v{release.version} (smoke test passed {where})"

    def stop(self) -> str:
        before = EndpointState.read(self.home, self.group)
        EndpointState(None, previous=before.summary() if before.version is not None else None).write(
            self.home, self.group)
        serving = read_serving(self.home, self.group)
        if serving is not None:
            self._wait_for(serving.url, None)
        return f"v{before.version} -> stopped (requests get 503 model_unavailable)"

    def prune(self, keep: frozenset[int]) -> list[str]:
        return []  # unpacked models live in the content-addressed endpoint-cache, shared by every endpoint

    # -- helpers ----------------------------------------------------------------------------

    def _kept(self, before: EndpointState) -> str:
        return "nothing was deployed before, so nothing is" if before.version is None else \
            f"v{before.version} still serves"

    def _restore(self, before: EndpointState) -> None:
        before.write(self.home, self.group)
        serving = read_serving(self.home, self.group)
        if serving is not None:
            try:
                self._wait_for(serving.url, None if before.version is None
                               else version_label(self.group, before.version))
            except DeploymentFailed as exc:
                log.error("the endpoint at %s did not swap back to v%s: %s", serving.url, before.version, exc)

    def _smoke(self, release: Release, model_dir: Path, smoke: SmokeTest | None) -> str:
        label = version_label(self.group, release.version)
        serving = read_serving(self.home, self.group)
        if smoke is None:
            return "not run: no smoke-test data and smoke.required = false"
        if serving is not None:
            self._wait_for(serving.url, label)
            status, version, body = _post(serving.url, smoke, self.smoke_timeout)
            if status != 200 or version != label:
                raise DeploymentFailed(f"smoke test at {serving.url}: answered {status} from version {version} "
                                       f"(expected 200 from {label}): {body[:200]!r}")
            where = f"at {serving.url}"
        else:
            try:
                loaded = load_version(label, model_dir)
                body, _ = loaded.finish(loaded.parse(smoke.body.encode(), smoke.content_type), smoke.accept)
            except Exception as exc:  # the model's own code failed: report it, keep the old version
                raise DeploymentFailed(f"smoke test in-process: v{release.version} failed to serve: "
                                       f"{type(exc).__name__}: {exc}") from exc
            where = "in-process (no local endpoint is running)"
        try:
            smoke.check(body)
        except SmokeMismatch as exc:
            raise DeploymentFailed(f"smoke test {where}: {exc}") from exc
        return where

    def _wait_for(self, url: str, label: str | None) -> None:
        """Until the endpoint's /ping reports `label` loaded (None: no model), bounded by smoke_timeout."""
        deadline = time.monotonic() + self.smoke_timeout
        last = "no answer"
        while True:
            try:
                with urllib.request.urlopen(f"{url}/ping", timeout=5) as response:
                    ping = json.loads(response.read())
            except urllib.error.HTTPError as exc:
                ping = {"status_code": exc.code}
            except (urllib.error.URLError, OSError, ValueError) as exc:
                ping = {"error": str(exc)}
            if label is None and ping.get("status_code") == 503:
                return
            if label is not None and ping.get("model_version") == label:
                return
            if label is not None and ping.get("pending_version") == label and ping.get("pending_error"):
                raise DeploymentFailed(f"the endpoint at {url} cannot load {label}: {ping['pending_error']}")
            last = json.dumps(ping)
            if time.monotonic() >= deadline:
                raise DeploymentFailed(f"the endpoint at {url} did not switch to {label or 'no model'} within "
                                       f"{self.smoke_timeout:g} s (last /ping: {last})")
            time.sleep(self.poll)


def _post(url: str, smoke: SmokeTest, timeout: float) -> tuple[int, str | None, bytes]:
    request = urllib.request.Request(f"{url}/invocations", data=smoke.body.encode(), method="POST",
                                     headers={"Content-Type": smoke.content_type, "Accept": smoke.accept})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.headers.get(VERSION_HEADER), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get(VERSION_HEADER), exc.read()
    except (urllib.error.URLError, OSError) as exc:
        raise DeploymentFailed(f"smoke test: cannot reach the endpoint at {url}: {exc}") from exc
