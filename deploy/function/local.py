"""The Lambda target, local adapter: function versions and the `live` alias mirrored under GREENLIGHT_HOME.

The primitives of the deploy transaction (deploy.engine.protocol), in the AWS adapter's order, on the
local state (deploy.function.state: deployments/<group>/lambda.json):

    fetch    the release's model.tar.gz from the artifact store, unpacked (content-addressed lambda-cache/)
    stage    publish a function version holding it (numbered, never reused; its Description and
             environment recorded, GREENLIGHT_PREDICT_THREADS included), unless one with this model and
             configuration exists; the alias does not move
    probe    remove the throttle if `stop` left one (as DeleteFunctionConcurrency: an invocation needs it),
             then invoke THAT version: through the running front's Invoke API (`greenlight lambda serve`,
             addressed by version number, which no Function URL request reaches) when one runs, else
             in-process with the version's own handler
    switch   move the alias
    unstage  the alias back where it was if it moved, and the throttle back if the probe removed it; then, if a
             front runs, until its /ping reports no split (no share, no request it routed by one still running)
    shift    (issue 22) the rollout record deploy.endpoint.split names the function version and its share of
             the alias, as RoutingConfig.AdditionalVersionWeights would; the front routes and counts by it

A live version whose recorded environment is not what the configured memory gives is observed as not
active, so the next reconcile publishes the model again with the new configuration (as on AWS).

The recorded environment is not applied to a local process (it is process-wide and would leak between
versions served side by side); predictions do not depend on the thread count.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from deploy.endpoint.client import HttpRequest, Transport, TransportError, UrllibTransport
from deploy.endpoint.deployed import read_serving
from deploy.endpoint.sources import prepare_model_dir
from deploy.endpoint.split import read_rollout, read_traffic, remove_rollout, write_rollout
from deploy.endpoint.target import file_digest
from deploy.engine.local_state import CorruptState
from deploy.engine.model import Observed, Release, TargetKind
from deploy.engine.protocol import Artifact, Staged
from deploy.engine.retention import doomed
from deploy.engine.smoke import SmokeTest
from deploy.engine.traffic import VersionTraffic
from deploy.function.events import smoke_event, smoke_verdict
from deploy.function.handler import load_function
from deploy.function.invoke import FrontInvoker
from deploy.function.model import describe_version, function_environment, model_label
from deploy.function.state import TARGET, FunctionState
from greenlight.errors import DeploymentFailed, GreenlightError

__all__ = ["CACHE_DIR", "LocalLambdaTarget"]

log = logging.getLogger(__name__)

CACHE_DIR = "lambda-cache"


class LocalLambdaTarget:
    """DeployTarget for the local mirror of one group's inference Lambda."""

    kind = TargetKind.LAMBDA

    def __init__(self, home: Path, group: str, model_path: Callable[[str], Path], *, name: str = "lambda",
                 function: str | None = None, alias: str = "live", memory_mb: int = 1024, retention: int = 3,
                 smoke_timeout: float = 120.0, transport: Transport | None = None, poll: float = 0.05):
        self.home, self.group, self.name = Path(home), group, name
        self.function, self.alias = function or group, alias
        self._model_path = model_path  # s3:// URI of model.tar.gz -> local file (the artifact store)
        self.memory_mb, self.retention, self.smoke_timeout = memory_mb, retention, smoke_timeout
        self.transport, self.poll = transport, poll

    def _state(self) -> FunctionState:
        return FunctionState.read(self.home, self.group, self.function, self.alias)

    def _state_or_new(self) -> FunctionState:
        """The state, or a new one in place of a state file that cannot be read (said in one line)."""
        try:
            return self._state()
        except CorruptState as exc:
            log.warning("%s; a new state replaces it", exc)
            return FunctionState(self.function, self.alias)

    def observe(self) -> Observed:
        serving = read_serving(self.home, self.group, TARGET)
        try:
            state = self._state()
        except CorruptState as exc:
            log.warning("%s; the next deployment writes a new state", exc)
            return Observed(self.name, self.kind, None, False, {"function": self.function, "alias": self.alias,
                                                               "unreadable": str(exc)})
        live = state.live_version
        drift = None
        if live is not None and live.environment != function_environment(
                {}, self.memory_mb, model_label(self.group, live.model_version)):
            drift = f"its environment {live.environment} is not what memory_mb = {self.memory_mb} gives"
        return Observed(self.name, self.kind, None if live is None else live.model_version,
                        live is not None and not state.throttled and drift is None,
                        {"function": self.function, "alias": self.alias, "function_version": state.live,
                         "previous_function_version": state.previous, "throttled": state.throttled,
                         "configuration_drift": drift, "model_dir": None if live is None else live.model_dir,
                         "serving_url": None if serving is None else serving.url})

    # -- the deploy primitives -------------------------------------------------------------------

    def fetch(self, release: Release, scratch: Path) -> Artifact:
        archive = self._model_path(release.model_data_url or "")
        return Artifact(release.version, release.model_data_url, prepare_model_dir(archive, self.home / CACHE_DIR),
                        file_digest(archive))

    def stage(self, release: Release, artifact: Artifact) -> Staged:
        state = self._state_or_new()
        environment = function_environment({}, self.memory_mb, model_label(self.group, release.version))
        version = state.find(release.version, str(artifact.path), environment)
        if version is None:
            state, version = state.publish(release.version, str(artifact.path), release.package_arn,
                                           describe_version(self.group, release.version), environment)
            state.write(self.home, self.group)
            log.info("%s: published function version %s (model v%s)", self.function, version.number, release.version)
        else:
            log.info("%s: function version %s already holds model v%s", self.function, version.number,
                     release.version)
        return Staged(self.name, release.version, {"number": version.number, "model_dir": version.model_dir,
                                                   "alias_before": state.live, "throttled": state.throttled},
                      f"function version {version.number}")

    def probe(self, staged: Staged, smoke: SmokeTest) -> str:
        number = staged.ref["number"]
        state = self._state()
        if state.throttled:  # an invocation needs the throttle off (unstage puts it back if this fails)
            state.with_throttle(False).write(self.home, self.group)
        version = state.versions.get(number)
        if version is None:
            raise DeploymentFailed(f"function version {number} is no longer published")
        event = smoke_event(smoke)
        what = f"smoke test of function version {number} (model v{version.model_version})"
        serving = read_serving(self.home, self.group, TARGET)
        where = f"through the local front at {serving.url}" if serving is not None else \
            "in-process (no local Lambda front is running)"
        try:
            if serving is not None:
                response = FrontInvoker(serving.url, self.smoke_timeout, self.transport).invoke(
                    self.function, str(number), event)
            else:
                response = load_function(str(number), Path(version.model_dir)).invoke(event)
        except GreenlightError as exc:
            raise DeploymentFailed(f"{what} failed: {exc}") from exc
        except Exception as exc:  # the version's own code failed to import or load: report it, keep the alias
            raise DeploymentFailed(f"{what} {where} failed: {type(exc).__name__}: {exc}") from exc
        verdict = smoke_verdict(response, smoke)
        if verdict is not None:
            raise DeploymentFailed(f"{what} {where} failed: {verdict}")
        return where

    def shift(self, staged: Staged, previous: int | None, percent: float) -> str:
        """The alias's additional version weight, mirrored (AWS: RoutingConfig.AdditionalVersionWeights)."""
        written = write_rollout(self.home, self.group, TARGET, {
            "version": staged.version, "number": staged.ref["number"], "percent": percent, "previous": previous})
        return f"function version {staged.ref['number']} answers {percent:g}% of {self.alias}" if written else ""

    def traffic(self, version: int, since: float) -> VersionTraffic:
        return read_traffic(self.home, self.group, TARGET, version, since)

    def switch(self, staged: Staged) -> str:
        rollout = read_rollout(self.home, self.group, TARGET)
        if rollout is not None and rollout.get("version") == staged.version:  # it bakes: still counted
            write_rollout(self.home, self.group, TARGET, {**rollout, "percent": 100.0})
        state = self._state()
        state.with_throttle(False).move_alias(staged.ref["number"]).write(self.home, self.group)
        return f"alias {self.alias} moved"

    def confirm(self, staged: Staged, smoke: SmokeTest | None) -> str | None:
        remove_rollout(self.home, self.group, TARGET)  # a rollout complete: no weights, no counting
        return None  # the alias names a version that passed its probe: nothing more to check

    def unstage(self, staged: Staged) -> None:
        remove_rollout(self.home, self.group, TARGET)  # first: the alias's own version takes every request again
        state = self._state()
        number, before = staged.ref["number"], staged.ref.get("alias_before")
        if state.live == number and before != number:
            state = state.move_alias(before) if before in state.versions else \
                FunctionState(state.function, state.alias, state.versions, state.last_version, None, None,
                              state.throttled)
        if staged.ref.get("throttled"):
            state = state.with_throttle(True)
        state.write(self.home, self.group)
        serving = read_serving(self.home, self.group, TARGET)
        if serving is not None:
            self._wait_unsplit(serving.url)  # no request reaches the staged version once unstage returns

    def _wait_unsplit(self, url: str) -> None:
        """Until the front's /ping reports no split, bounded by smoke_timeout; an unreachable front is logged, since
        unstage itself must not fail."""
        transport = self.transport or UrllibTransport()
        deadline = time.monotonic() + self.smoke_timeout
        while True:
            try:
                answer = transport.handle(HttpRequest("GET", f"{url}/ping", timeout=5.0))
                ping = json.loads(answer.body) if answer.status == 200 else {}
            except (TransportError, ValueError) as exc:
                log.warning("could not ask the local Lambda front at %s whether it stopped splitting: %s", url, exc)
                return
            if not isinstance(ping, dict) or not (ping.get("split_percent") or ping.get("split_in_flight")):
                return
            if time.monotonic() >= deadline:
                log.error("the local Lambda front at %s still splits traffic %s s after the rollout record went",
                          url, self.smoke_timeout)
                return
            time.sleep(self.poll)

    def stop(self) -> str:
        state = self._state_or_new()
        state.with_throttle(True).write(self.home, self.group)
        remove_rollout(self.home, self.group, TARGET)
        live = state.live_version
        return (f"{'nothing' if live is None else f'v{live.model_version}'} -> stopped ({self.function} throttled: "
                f"alias {self.alias} answers 429 until a version is deployed)")

    def prune(self, keep: frozenset[int]) -> list[str]:
        state = self._state()
        gone = [int(n) for n in doomed({str(n): v.model_version for n, v in state.versions.items()},
                                       {str(state.live), str(state.previous)}, keep, self.retention)]
        if not gone:
            return []
        remaining = state.without(set(gone))
        remaining.write(self.home, self.group)
        pruned = [f"function version {n} (model v{state.versions[n].model_version})" for n in gone]
        used = {Path(v.model_dir) for v in remaining.versions.values()}
        cache = self.home / CACHE_DIR
        for n in gone:
            model_dir = Path(state.versions[n].model_dir)
            if model_dir not in used and model_dir.parent == cache and model_dir.is_dir():
                shutil.rmtree(model_dir, ignore_errors=True)
                used.add(model_dir)
                pruned.append(f"its unpacked model {model_dir.name}")
        return pruned
