"""The Lambda target, local adapter: function versions and the `live` alias mirrored under GREENLIGHT_HOME.

A deployment does what the AWS adapter does, in the same order, on the local state
(deploy.function.state: deployments/<group>/lambda.json):

1. unpack the release's model.tar.gz from the artifact store (a content-addressed cache, lambda-cache/);
2. publish a function version holding it (numbered, never reused; its Description and environment
   recorded, GREENLIGHT_PREDICT_THREADS included), unless one with this model and configuration exists;
3. remove the throttle if `stop` left one (as DeleteFunctionConcurrency: the smoke invocation needs it);
4. smoke-test THAT version: through the running front's Invoke API (`greenlight lambda serve`,
   addressed by version number) when one runs, else in-process with the version's own handler;
5. only then move the alias. A failure at any step leaves the alias where it was (and the throttle as
   it was) and raises DeploymentFailed saying why.

A live version whose recorded environment is not what the configured memory gives is observed as not
active, so the next reconcile publishes the model again with the new configuration (as on AWS).

The recorded environment is not applied to a local process (it is process-wide and would leak between
versions served side by side); predictions do not depend on the thread count.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

from deploy.endpoint.deployed import read_serving
from deploy.endpoint.sources import prepare_model_dir
from deploy.engine.model import Observed, Release, TargetKind
from deploy.engine.smoke import SmokeTest
from deploy.function.events import smoke_event, smoke_verdict
from deploy.function.handler import load_function
from deploy.function.invoke import FrontInvoker
from deploy.function.model import describe_version, function_environment, model_label, versions_to_prune
from deploy.function.state import TARGET, FunctionState, FunctionVersion
from greenlight.errors import DeploymentFailed, GreenlightError

__all__ = ["CACHE_DIR", "LocalLambdaTarget"]

log = logging.getLogger(__name__)

CACHE_DIR = "lambda-cache"


def _label(version: FunctionVersion | None) -> str:
    return "nothing" if version is None else f"v{version.model_version}"


class LocalLambdaTarget:
    """DeployTarget for the local mirror of one group's inference Lambda."""

    kind = TargetKind.LAMBDA

    def __init__(self, home: Path, group: str, model_path: Callable[[str], Path], *, name: str = "lambda",
                 function: str | None = None, alias: str = "live", memory_mb: int = 1024, retention: int = 3,
                 smoke_timeout: float = 120.0):
        self.home, self.group, self.name = Path(home), group, name
        self.function, self.alias = function or group, alias
        self._model_path = model_path  # s3:// URI of model.tar.gz -> local file (the artifact store)
        self.memory_mb, self.retention, self.smoke_timeout = memory_mb, retention, smoke_timeout

    def _state(self) -> FunctionState:
        return FunctionState.read(self.home, self.group, self.function, self.alias)

    def observe(self) -> Observed:
        state = self._state()
        live = state.live_version
        serving = read_serving(self.home, self.group, TARGET)
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

    def deploy(self, release: Release, smoke: SmokeTest | None) -> str:
        state = self._state()
        before, kept = state.live_version, self._kept(state)
        try:
            model_dir = prepare_model_dir(self._model_path(release.model_data_url or ""), self.home / CACHE_DIR)
        except GreenlightError as exc:
            raise DeploymentFailed(f"cannot fetch v{release.version}'s model {release.model_data_url}: {exc}; "
                                   f"{kept}") from exc
        environment = function_environment({}, self.memory_mb, model_label(self.group, release.version))
        version = state.find(release.version, str(model_dir), environment)
        if version is None:
            state, version = state.publish(release.version, str(model_dir), release.package_arn,
                                           describe_version(self.group, release.version), environment)
            state.write(self.home, self.group)
            log.info("%s: published function version %s (model v%s)", self.function, version.number, release.version)
        else:
            log.info("%s: function version %s already holds model v%s", self.function, version.number,
                     release.version)
        throttled = state.throttled
        if throttled:
            state = state.with_throttle(False)
            state.write(self.home, self.group)
        try:
            where = self._smoke(version, smoke)
        except DeploymentFailed as exc:
            if throttled:
                state.with_throttle(True).write(self.home, self.group)
            raise DeploymentFailed(f"{exc}; {kept}") from exc
        state.move_alias(version.number).write(self.home, self.group)
        return (f"{_label(before)} -> v{release.version} (function version {version.number}; smoke test passed "
                f"{where}; alias {self.alias} moved)")

    def stop(self) -> str:
        state = self._state()
        state.with_throttle(True).write(self.home, self.group)
        return (f"{_label(state.live_version)} -> stopped ({self.function} throttled: alias {self.alias} answers "
                "429 until a version is deployed)")

    def prune(self, keep: frozenset[int]) -> list[str]:
        state = self._state()
        doomed = versions_to_prune({n: v.model_version for n, v in state.versions.items()},
                                   (state.live, state.previous), keep, self.retention)
        if not doomed:
            return []
        remaining = state.without(set(doomed))
        remaining.write(self.home, self.group)
        pruned = [f"function version {n} (model v{state.versions[n].model_version})" for n in doomed]
        used = {Path(v.model_dir) for v in remaining.versions.values()}
        cache = self.home / CACHE_DIR
        for n in doomed:
            model_dir = Path(state.versions[n].model_dir)
            if model_dir not in used and model_dir.parent == cache and model_dir.is_dir():
                shutil.rmtree(model_dir, ignore_errors=True)
                used.add(model_dir)
                pruned.append(f"its unpacked model {model_dir.name}")
        return pruned

    # -- helpers ----------------------------------------------------------------------------

    def _kept(self, state: FunctionState) -> str:
        live = state.live_version
        if live is None:
            return "nothing was deployed before, so nothing is"
        if state.throttled:
            return f"the alias stays on v{live.model_version}, throttled"
        return f"v{live.model_version} still serves"

    def _smoke(self, version: FunctionVersion, smoke: SmokeTest | None) -> str:
        if smoke is None:
            return "(not run: no smoke-test data and smoke.required = false)"
        event = smoke_event(smoke)
        what = f"smoke test of function version {version.number} (model v{version.model_version})"
        serving = read_serving(self.home, self.group, TARGET)
        try:
            if serving is not None:
                where = f"through the local front at {serving.url}"
                response = FrontInvoker(serving.url, self.smoke_timeout).invoke(self.function, str(version.number),
                                                                               event)
            else:
                where = "in-process (no local Lambda front is running)"
                response = load_function(str(version.number), Path(version.model_dir)).invoke(event)
        except GreenlightError as exc:
            raise DeploymentFailed(f"{what} failed: {exc}") from exc
        except Exception as exc:  # the version's own code failed to import or load: report it, keep the alias
            raise DeploymentFailed(f"{what} {where} failed: {type(exc).__name__}: {exc}") from exc
        verdict = smoke_verdict(response, smoke)
        if verdict is not None:
            raise DeploymentFailed(f"{what} {where} failed: {verdict}")
        return where
