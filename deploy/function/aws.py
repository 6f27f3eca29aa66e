"""The Lambda target, AWS adapter: a model version as one image layer, deployed by digest behind an alias.

The primitives of the deploy transaction (deploy.engine.protocol), each a precondition of the next:

    fetch    the release's model.tar.gz from S3 (streamed into the engine's scratch directory; the
             serving files only)
    stage    (a stage in another account, issue 21: first copy the base image from the group's repository
             when this repository lacks it, deploy.image.copy) append it to the base image in ECR as one
             layer (deploy.image.append_model, tag `<group>-v<N>`: the same model on the same base is the
             same digest, and an append already done writes nothing); reuse a published version that
             holds exactly this model, image and configuration, else UpdateFunctionCode with
             `ImageUri=<repo>@sha256:<digest>`, wait (bounded) for LastUpdateStatus Successful (Failed
             names its reason code), UpdateFunctionConfiguration when the memory or the managed
             environment differs (GREENLIGHT_PREDICT_THREADS from the memory, GREENLIGHT_MODEL_VERSION), wait, and
             PublishVersion with a Description recording group, model version and image digest.
             The alias does not move: nothing live changes
    probe    remove the throttle if `stop` left one (reserved concurrency 0 refuses every invocation),
             wait until THAT version's State is Active (deploy.function.states: Pending waited for,
             Inactive woken by one invoke, Failed or a timeout fail the target), then invoke it
             (Qualifier) with the recorded smoke rows as a Function URL event
    switch   the same wait (a probe may have been skipped), then point the alias at the version
             (created if missing; its Description names the previous version)
    unstage  the alias back if it moved (or split), the throttle back if the probe removed it

Progressive delivery (issue 22; the engine's TrafficTarget): `shift(staged, previous, percent)` keeps the
alias on the version that served and routes `percent` of its invocations to the staged one (a weighted
alias, deploy.function.aws_traffic); `traffic(version, since)` reads that model version's function
version's Invocations, Errors and Duration p99 through the alias from CloudWatch, and raises
TrafficBreach while a named alarm (`alarms`) is in ALARM, so the engine rolls back with its reason;
switch then ends the split (the staged version takes 100%), unstage gives the previous version 100%.

Observe reads the alias, its version's Description, image and configuration, and the throttle: read
calls only, so a replay writes nothing. A live version whose memory or managed variables differ from
the configuration (memory_mb changed) is observed as not active, so the next reconcile publishes the
same model with the new configuration.

Retention (`prune`, deploy.engine.retention.retained): function versions Greenlight published (their
Description says so, for this group), never the alias's version nor the one before it (the alias's
Description names it); then model image tags `<group>-v<N>` in the ECR repository (BatchDeleteImage),
never the newest tag of an image a remaining version or $LATEST runs: Lambda pins a version to its
image digest, and a version whose image is gone cannot start (ImageDeleted). Other tags (the base
image's) are never touched. Every failure is logged and skipped: retention is housekeeping.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy.engine.deadline import hand_over_before_sleep
from deploy.engine.model import Observed, Release, TargetKind
from deploy.engine.protocol import Artifact, Staged, TrafficBreach
from deploy.engine.retention import doomed
from deploy.engine.smoke import SmokeTest
from deploy.engine.traffic import VersionTraffic
from deploy.function.aws_traffic import AliasTraffic
from deploy.function.events import smoke_event, smoke_verdict
from deploy.function.fetch import fetch_model
from deploy.function.invoke import Invoker, LambdaInvoker
from deploy.function.states import wait_active
from deploy.function.model import (
    VersionRecord, describe_version, function_environment, held_tags, image_digest, model_label, model_tags,
)
from deploy.image import Platform, RegistryClient, append_model, model_tag
from deploy.image.copy import copy_image
from greenlight.aws_errors import aws_call, aws_errors
from greenlight.errors import DeploymentFailed, GreenlightError, NotFoundError

__all__ = ["AwsLambdaTarget", "Live"]

log = logging.getLogger(__name__)

_PREVIOUS = re.compile(r"previous version (\d+)")


class _NoAlias(NotFoundError):
    """The alias does not exist yet (nothing was ever deployed)."""


@dataclass(frozen=True)
class Live:
    """What the alias serves: its function version, the record of that version, the throttle."""

    version: str | None
    record: VersionRecord | None
    digest: str | None
    previous: str | None
    throttled: bool
    alias_exists: bool
    drift: str | None = None  # how the version's memory or managed variables differ from the configuration
    split: tuple[tuple[str, float], ...] = ()  # (function version, weight 0-1) the alias also routes to


class AwsLambdaTarget:
    """DeployTarget for the inference Lambda of one group on AWS (module docstring)."""

    kind = TargetKind.LAMBDA

    def __init__(self, lambda_client: Any, s3_client: Any, registry: Callable[[], RegistryClient], *, group: str,
                 function: str, repository: str, base_tag: str, alias: str = "live", architecture: str = "x86_64",
                 memory_mb: int = 1024, retention: int = 3, update_timeout: float = 300.0,
                 ecr_client: Any = None, invoker: Invoker | None = None, name: str = "lambda", poll: float = 1.0,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                 cloudwatch_client: Any = None, alarms: Sequence[str] = (), wall: Callable[[], float] = time.time,
                 base_source: Callable[[], tuple[RegistryClient, str]] | None = None):
        self.client, self.s3, self.ecr = lambda_client, s3_client, ecr_client
        self.registry = registry  # -> a client of the registry holding `repository` (ECR's, from ecr_registry)
        # -> (client, repository) the base image is copied from when `repository` lacks it (another account's)
        self.base_source = base_source
        self.invoker = invoker or LambdaInvoker(lambda_client)
        self.group, self.function, self.alias, self.name = group, function, alias, name
        self.repository, self.base_tag, self.architecture = repository, base_tag, architecture
        self.memory_mb, self.retention, self.update_timeout = memory_mb, retention, update_timeout
        self.poll, self._sleep, self._clock = poll, sleep, clock
        self.alarms = tuple(alarms)
        self.traffic_of = AliasTraffic(lambda_client, cloudwatch_client, function, alias, clock=wall)

    # -- observe (read calls only) --------------------------------------------------------------

    def live(self) -> Live:
        """The alias's version and what it holds. Raises: NotFoundError (no such function), AwsError."""
        throttled = self._throttled()
        try:
            alias = aws_call("GetAlias", self.client.get_alias, FunctionName=self.function, Name=self.alias,
                             on_missing=lambda: _NoAlias(self.alias))
        except _NoAlias:
            return Live(None, None, None, None, throttled, False)
        version = str(alias["FunctionVersion"])
        found = aws_call("GetFunction", self.client.get_function, FunctionName=self.function, Qualifier=version)
        code, config = found.get("Code") or {}, found.get("Configuration") or {}
        digest = image_digest(code.get("ImageUri")) or image_digest(code.get("ResolvedImageUri"))
        record = VersionRecord.parse(config.get("Description"))
        if record is not None and (record.group != self.group or (record.digest and record.digest != digest)):
            log.warning("%s:%s runs %s, but its description says %r: not treated as a Greenlight version",
                        self.function, version, digest, config.get("Description"))
            record = None
        previous = _PREVIOUS.search(alias.get("Description") or "")
        weights = ((alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}).items()
        return Live(version, record, digest, previous.group(1) if previous else None, throttled, True,
                    None if record is None else self._drift(config, record.model_version),
                    tuple((str(k), float(v)) for k, v in weights))

    def _drift(self, config: dict[str, Any], model_version: int) -> str | None:
        """How a version's configuration differs from what this target would publish (None: it does not)."""
        env = (config.get("Environment") or {}).get("Variables") or {}
        wanted = function_environment(env, self.memory_mb, model_label(self.group, model_version))
        if config.get("MemorySize") != self.memory_mb or wanted != env:
            changed = sorted(k for k in wanted if env.get(k) != wanted[k])
            return (f"its memory is {config.get('MemorySize')} MB and {', '.join(changed) or 'its variables'} "
                    f"differ; the configuration asks for {self.memory_mb} MB")
        return None

    def _throttled(self) -> bool:
        missing = f"Lambda function {self.function} does not exist: the deploy stack creates it (a container-image " \
                  "function); or set lambda.function_name, or lambda.enabled = false"
        concurrency = aws_call("GetFunctionConcurrency", self.client.get_function_concurrency,
                               FunctionName=self.function, on_missing=lambda: NotFoundError(missing))
        return concurrency.get("ReservedConcurrentExecutions") == 0

    def observe(self) -> Observed:
        live = self.live()
        return Observed(self.name, self.kind, None if live.record is None else live.record.model_version,
                        live.alias_exists and not live.throttled and live.drift is None,
                        {"function": self.function, "alias": self.alias, "function_version": live.version,
                         "previous_function_version": live.previous, "image_digest": live.digest,
                         "throttled": live.throttled, "configuration_drift": live.drift,
                         "split": {number: round(100 * weight, 2) for number, weight in live.split}})

    # -- the deploy primitives -------------------------------------------------------------------

    def fetch(self, release: Release, scratch: Path) -> Artifact:
        return Artifact(release.version, release.model_data_url, fetch_model(self.s3, release.model_data_url or "",
                                                                             scratch))

    def stage(self, release: Release, artifact: Artifact) -> Staged:
        live = self.live()
        try:
            client = self.registry()
            if self.base_source is not None:
                source, source_repository = self.base_source()
                copy_image(source, source_repository, client, self.repository, self.base_tag,
                           platform=Platform.for_lambda(self.architecture))
            result = append_model(client, self.repository, self.base_tag, artifact.path or Path(),
                                  model_tag(self.group, release.version),
                                  platform=Platform.for_lambda(self.architecture),
                                  workdir=None if artifact.path is None else artifact.path.parent)
        except GreenlightError as exc:
            raise DeploymentFailed(f"cannot build v{release.version}'s image on {self.repository}:"
                                   f"{self.base_tag}: {exc}") from exc
        digest, image_uri = result.digest, result.image_uri(client)
        label = model_label(self.group, release.version)
        number = self._find(release.version, digest, label)
        if number is None:
            number = self._publish(release, digest, image_uri, label)
        else:
            log.info("%s: version %s already holds model v%s in %s: no update", self.function, number,
                     release.version, digest)
        return Staged(self.name, release.version,
                      {"number": number, "digest": digest, "alias_before": live.version,
                       "previous": live.previous, "alias_existed": live.alias_exists, "throttled": live.throttled},
                      f"function version {number}, image {digest[:19]}")

    def probe(self, staged: Staged, smoke: SmokeTest) -> str:
        number = staged.ref["number"]
        if staged.ref.get("throttled"):  # an invocation needs the throttle off (unstage puts it back)
            aws_call("DeleteFunctionConcurrency", self.client.delete_function_concurrency, FunctionName=self.function)
        what = f"smoke test of {self.function} version {number} (model v{staged.version})"
        note = self._active(number)
        try:
            response = self.invoker.invoke(self.function, number, smoke_event(smoke))
        except GreenlightError as exc:
            raise DeploymentFailed(f"{what} failed: {exc}") from exc
        verdict = smoke_verdict(response, smoke)
        if verdict is not None:
            raise DeploymentFailed(f"{what} failed: {verdict}")
        return "" if note is None else f"({note})"

    def switch(self, staged: Staged) -> str:
        ref = staged.ref
        if ref.get("throttled") and self._throttled():  # the probe was skipped (no smoke-test data)
            aws_call("DeleteFunctionConcurrency", self.client.delete_function_concurrency, FunctionName=self.function)
        self._active(ref["number"])
        before = ref.get("alias_before")
        self._point_alias(ref["number"], before if before not in (None, ref["number"]) else ref.get("previous"),
                          ref.get("alias_existed", True))
        return f"alias {self.alias} moved"

    def confirm(self, staged: Staged, smoke: SmokeTest | None) -> str | None:
        return None  # the alias names a version that passed its probe: nothing more to check

    def unstage(self, staged: Staged) -> None:
        ref = staged.ref
        live = self.live()
        before = ref.get("alias_before")
        split = dict(live.split).get(ref["number"])
        if (live.version == ref["number"] or split) and before not in (None, ref["number"]):
            log.warning("%s: pointing alias %s back at version %s%s", self.function, self.alias, before,
                        "" if not split else f" (it routed {100 * split:g}% to version {ref['number']})")
            self._point_alias(before, ref.get("previous"), True)
        if ref.get("throttled") and not live.throttled:
            self._throttle()

    def _versions(self) -> list[dict[str, Any]]:
        """Every published version's configuration (paginated; $LATEST left out)."""
        versions = []
        with aws_errors("ListVersionsByFunction"):
            for page in self.client.get_paginator("list_versions_by_function").paginate(FunctionName=self.function):
                versions += [v for v in page.get("Versions", []) if v.get("Version") != "$LATEST"]
        return versions

    def _find(self, model_version: int, digest: str, label: str) -> str | None:
        """The newest published version holding this model, image, memory and managed environment."""
        wanted = VersionRecord(self.group, model_version, digest)
        for config in sorted(self._versions(), key=lambda v: int(v["Version"]), reverse=True):
            env = (config.get("Environment") or {}).get("Variables") or {}
            if (VersionRecord.parse(config.get("Description")) == wanted and config.get("MemorySize") == self.memory_mb
                    and function_environment(env, self.memory_mb, label) == env):
                return str(config["Version"])
        return None

    def _publish(self, release: Release, digest: str, image_uri: str, label: str) -> str:
        latest = aws_call("GetFunction", self.client.get_function, FunctionName=self.function)
        config = latest.get("Configuration") or {}
        if config.get("LastUpdateStatus") == "InProgress":  # a reconcile handed over (or died) during an update
            self._wait("an earlier update")
            latest = aws_call("GetFunction", self.client.get_function, FunctionName=self.function)
            config = latest.get("Configuration") or {}
        same_code = (image_digest((latest.get("Code") or {}).get("ImageUri")) == digest
                     and config.get("Architectures", ["x86_64"]) == [self.architecture]
                     and config.get("LastUpdateStatus", "Successful") == "Successful")  # not after a failed update
        if not same_code:
            aws_call("UpdateFunctionCode", self.client.update_function_code, FunctionName=self.function,
                     ImageUri=image_uri, Architectures=[self.architecture], Publish=False)
            self._wait("UpdateFunctionCode")
        env = (config.get("Environment") or {}).get("Variables") or {}
        wanted = function_environment(env, self.memory_mb, label)
        if wanted != env or config.get("MemorySize") != self.memory_mb:
            aws_call("UpdateFunctionConfiguration", self.client.update_function_configuration,
                     FunctionName=self.function, MemorySize=self.memory_mb, Environment={"Variables": wanted})
            self._wait("UpdateFunctionConfiguration")
        description = describe_version(self.group, release.version, digest)
        published = aws_call("PublishVersion", self.client.publish_version, FunctionName=self.function,
                             Description=description)
        number = str(published["Version"])
        if VersionRecord.parse(published.get("Description")) != VersionRecord.parse(description):
            raise DeploymentFailed(f"PublishVersion of {self.function} returned version {number}, described "
                                   f"{published.get('Description')!r}, not {description!r}: the function changed while "
                                   "it was updated")
        log.info("%s: published version %s: %s", self.function, number, description)
        return number

    def _wait(self, operation: str) -> None:
        """Until LastUpdateStatus is Successful, bounded by update_timeout. Raises: DeploymentFailed."""
        deadline = self._clock() + self.update_timeout
        while True:
            config = aws_call("GetFunctionConfiguration", self.client.get_function_configuration,
                              FunctionName=self.function)
            status = config.get("LastUpdateStatus") or "Successful"
            if status == "Successful":
                return
            if status == "Failed":
                raise DeploymentFailed(f"{operation} of {self.function} failed: LastUpdateStatus Failed "
                                       f"({config.get('LastUpdateStatusReasonCode') or 'no reason code'}: "
                                       f"{config.get('LastUpdateStatusReason') or 'no reason given'})")
            if self._clock() >= deadline:
                raise DeploymentFailed(f"{operation} of {self.function} did not finish within "
                                       f"{self.update_timeout:g} s (LastUpdateStatus {status})")
            hand_over_before_sleep(f"{operation} of {self.function} (LastUpdateStatus {status})", self.poll)
            self._sleep(self.poll)

    # -- progressive delivery (issue 22): the engine's TrafficTarget --------------------------------

    def shift(self, staged: Staged, previous: int | None, percent: float) -> str:
        """`percent` of the alias's invocations to the staged version, the rest to the one that served before.

        Raises:
            DeploymentFailed: nothing served before (a first deployment has nothing to split with), or the
                weight cannot be set.
        """
        ref, before = staged.ref, staged.ref.get("alias_before")
        if before in (None, ref["number"]):
            raise DeploymentFailed(f"{self.function}: no version served before v{staged.version} (model v{previous}); "
                                   "a weighted alias needs one to split with")
        self._active(ref["number"])
        kept = ref.get("previous")
        description = f"greenlight: previous version {kept}" if kept else "greenlight"
        return self.traffic_of.shift(ref["number"], before, percent, f"{description}; shifting to {ref['number']}")

    def traffic(self, version: int, since: float) -> VersionTraffic:
        """Model version `version`'s answers through the alias since `since` (epoch seconds).

        Raises:
            TrafficBreach: a named alarm is in ALARM (the engine rolls back with this reason, held like a breach).
            DeploymentFailed: no version the alias routes to holds model `version`.
            ConfigurationError: a named alarm does not exist.
        """
        alarming = self.traffic_of.alarming(self.alarms)
        if alarming:
            raise TrafficBreach(f"alarm {'; '.join(alarming)} in ALARM")
        for number in self.traffic_of.weights():
            found = aws_call("GetFunction", self.client.get_function, FunctionName=self.function, Qualifier=number)
            record = VersionRecord.parse((found.get("Configuration") or {}).get("Description"))
            if record is not None and record.group == self.group and record.model_version == version:
                return self.traffic_of.traffic(number, since)
        raise DeploymentFailed(f"alias {self.alias} of {self.function} routes to no version of model v{version}")

    def _active(self, number: str) -> str | None:
        """wait_active on this function, bounded by update_timeout. Raises: DeploymentFailed."""
        return wait_active(self.client, self.invoker, self.function, number, timeout=self.update_timeout,
                           poll=self.poll, sleep=self._sleep, clock=self._clock)

    def _point_alias(self, number: str, previous: str | None, exists: bool) -> None:
        description = f"greenlight: previous version {previous}" if previous else "greenlight"
        if exists:
            aws_call("UpdateAlias", self.client.update_alias, FunctionName=self.function, Name=self.alias,
                     FunctionVersion=number, Description=description, RoutingConfig={"AdditionalVersionWeights": {}})
        else:
            aws_call("CreateAlias", self.client.create_alias, FunctionName=self.function, Name=self.alias,
                     FunctionVersion=number, Description=description)

    # -- stop and retention -----------------------------------------------------------------------

    def _throttle(self) -> None:
        aws_call("PutFunctionConcurrency", self.client.put_function_concurrency, FunctionName=self.function,
                 ReservedConcurrentExecutions=0)

    def stop(self) -> str:
        live = self.live()
        try:
            self._throttle()
        except GreenlightError as exc:
            raise DeploymentFailed(f"cannot throttle {self.function}: {exc}") from exc
        held = "nothing" if live.record is None else f"v{live.record.model_version}"
        return (f"{held} -> stopped ({self.function} throttled: reserved concurrency 0, alias {self.alias} answers "
                "nothing until a version is deployed)")

    def prune(self, keep: frozenset[int]) -> list[str]:
        """Retention (module docstring); returns what was deleted, in words."""
        try:
            live = self.live()
            versions = {int(v["Version"]): VersionRecord.parse(v.get("Description")) for v in self._versions()}
        except GreenlightError as exc:
            log.warning("%s: not pruning, cannot read its versions: %s", self.function, exc)
            return []
        ours = {str(n): r for n, r in versions.items() if r is not None and r.group == self.group}
        done: list[str] = []
        for name in doomed({n: r.model_version for n, r in ours.items()}, {str(live.version), str(live.previous)},
                           keep, self.retention):
            try:
                aws_call("DeleteFunction", self.client.delete_function, FunctionName=self.function, Qualifier=name)
            except GreenlightError as exc:
                log.warning("%s: cannot delete version %s: %s", self.function, name, exc)
                continue
            done.append(f"function version {name} (model v{ours.pop(name).model_version})")
        return done + self._prune_tags(keep, live, ours)

    def _prune_tags(self, keep: frozenset[int], live: Live, remaining: dict[str, VersionRecord]) -> list[str]:
        if self.ecr is None:
            return []
        try:
            latest = aws_call("GetFunction", self.client.get_function, FunctionName=self.function)
            running = {r.digest for r in remaining.values() if r.digest} | {live.digest} | {
                image_digest((latest.get("Code") or {}).get("ImageUri"))}
            tags = self._tags()
        except GreenlightError as exc:
            log.warning("%s: not pruning model images: %s", self.repository, exc)
            return []
        gone = doomed(model_tags(tags, self.group), held_tags(tags, self.group, {d for d in running if d}), keep,
                      self.retention)
        done: list[str] = []
        for start in range(0, len(gone), 100):  # BatchDeleteImage takes at most 100 image ids
            chunk = gone[start:start + 100]
            try:
                answer = aws_call("BatchDeleteImage", self.ecr.batch_delete_image, repositoryName=self.repository,
                                  imageIds=[{"imageTag": tag} for tag in chunk])
            except GreenlightError as exc:
                log.warning("%s: cannot delete model image tags %s: %s", self.repository, chunk, exc)
                continue
            failed = {f.get("imageId", {}).get("imageTag"): f.get("failureReason") for f in answer.get("failures", [])}
            for tag, reason in failed.items():
                log.warning("%s: cannot delete model image tag %s: %s", self.repository, tag, reason)
            done += [f"model image tag {self.repository}:{tag}" for tag in chunk if tag not in failed]
        return done

    def _tags(self) -> dict[str, str]:
        """Every tag of the repository -> its image digest (DescribeImages, paginated). Raises: AwsError."""
        tags: dict[str, str] = {}
        with aws_errors("DescribeImages"):
            pages = self.ecr.get_paginator("describe_images").paginate(repositoryName=self.repository,
                                                                       filter={"tagStatus": "TAGGED"})
            for page in pages:
                for image in page.get("imageDetails", []):
                    for tag in image.get("imageTags") or []:
                        tags[tag] = image["imageDigest"]
        return tags
