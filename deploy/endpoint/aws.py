"""The endpoint target, AWS adapter: a SageMaker Serverless Inference endpoint behind DeployTarget.

A deployment of version N makes (or finds) a SageMaker Model from the versioned model package ARN and
an endpoint config with the configured ServerlessConfig (deterministic names: aws_names), creates or
updates the endpoint, waits (bounded by `update_timeout_seconds`) and runs the smoke test through
sagemaker-runtime InvokeEndpoint, compared exactly with the recorded predictions. If the update fails
or the smoke test disagrees, the endpoint is left on its previous config (SageMaker keeps it when an
update fails), returned to it (UpdateEndpoint back, waited for), or deleted if nothing was deployed
before; DeploymentFailed says why and whether the return worked.

Tags: models and configs carry `greenlight:group` and `greenlight:model-version`; the endpoint carries
`greenlight:group` and, once a deployment passed its smoke test, `greenlight:model-version`,
`greenlight:config` (the verified config) and `greenlight:previous-config` (the one before it, which
prune keeps). An endpoint on a config other than its verified one (a reconcile died between
UpdateEndpoint and the smoke test, or someone updated it by hand) is observed as not active, so the
next reconcile smoke-tests it again or returns it to the verified config.

The SageMaker calls themselves are in aws_resources (through greenlight.aws_errors).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from deploy.endpoint.aws_resources import SERVING, SETTLING, VERSION_TAG, EndpointResources
from deploy.engine.model import Observed, Release, TargetKind
from deploy.engine.smoke import SmokeMismatch, SmokeTest
from greenlight.aws_errors import aws_errors as _aws
from greenlight.errors import AwsError, DeploymentFailed, GreenlightError

if TYPE_CHECKING:
    from mypy_boto3_sagemaker import SageMakerClient
    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient

    from deploy.config import EndpointConfig

__all__ = ["CONFIG_TAG", "PREVIOUS_TAG", "SageMakerEndpointTarget"]

log = logging.getLogger(__name__)

CONFIG_TAG, PREVIOUS_TAG = "greenlight:config", "greenlight:previous-config"


class SageMakerEndpointTarget:
    """DeployTarget for one SageMaker Serverless endpoint of one model package group.

    The endpoint is `config.name`, else the group's name. `sleep` and `clock` (monotonic seconds)
    pace and bound the waits; `poll` is the seconds between DescribeEndpoint calls while waiting.
    """

    kind = TargetKind.ENDPOINT

    def __init__(self, sagemaker: SageMakerClient, runtime: SageMakerRuntimeClient, config: EndpointConfig,
                 group: str, role_arn: str, *, name: str = "endpoint", poll: float = 10.0,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic):
        self.config, self.group, self.role_arn, self.name = config, group, role_arn, name
        self.endpoint = config.name or group
        self._runtime = runtime
        self.aws = EndpointResources(sagemaker, group, self.endpoint, timeout=config.update_timeout_seconds,
                                     poll=poll, sleep=sleep, clock=clock)

    def observe(self) -> Observed:
        endpoint = self.aws.describe()
        if endpoint is None:
            return Observed(self.name, self.kind, None, False, {"endpoint": self.endpoint, "status": "absent"})
        status, current = endpoint["EndpointStatus"], endpoint["EndpointConfigName"]
        verified = self.aws.tags(endpoint["EndpointArn"]).get(CONFIG_TAG)
        version, model = self.aws.version_of(current)
        variants = endpoint.get("ProductionVariants") or [{}]
        detail = {"endpoint": self.endpoint, "status": status, "endpoint_config": current, "model": model,
                  "verified": verified == current, "failure_reason": endpoint.get("FailureReason"),
                  "serverless": variants[0].get("CurrentServerlessConfig")}
        if status != "InService":
            log.warning("endpoint %s is %s, not InService (%s)", self.endpoint, status,
                        endpoint.get("FailureReason") or "no failure reason given")
        elif verified != current:
            log.warning("endpoint %s runs %s, which no deployment smoke-tested (last verified: %s); the next "
                        "deployment tests it again", self.endpoint, current, verified or "none")
        return Observed(self.name, self.kind, version, status in SERVING and verified == current, detail)

    def deploy(self, release: Release, smoke: SmokeTest | None) -> str:
        before = self.aws.describe()
        if before is not None and before["EndpointStatus"] in SETTLING:
            log.info("endpoint %s is %s; waiting for it to settle first", self.endpoint, before["EndpointStatus"])
            before = self.aws.settle("settle before the deployment")
        prior, prior_version = self._prior(before)
        target = self.aws.ensure_config(release, self.aws.ensure_model(release, self.role_arn), self.config)
        if before is None or before["EndpointStatus"] not in SERVING:
            if before is not None:  # Failed or OutOfService: it serves nothing and cannot be updated
                self.aws.delete(f"it is {before['EndpointStatus']} and serves nothing")
            self.aws.create(target)
        elif before["EndpointConfigName"] != target:
            self.aws.update(target)
        else:
            log.info("endpoint %s already runs %s; smoke-testing it", self.endpoint, target)
        after = self.aws.settle(f"deploy v{release.version}")
        if after is None or after["EndpointStatus"] != "InService" or after["EndpointConfigName"] != target:
            raise DeploymentFailed(self._update_failed(release, target, after, prior, prior_version))
        try:
            where = self._smoke(smoke)
        except DeploymentFailed as exc:
            raise DeploymentFailed(f"{exc}; {self._return(prior, prior_version)}") from exc
        self._tag_verified(after, target, release.version, prior)
        moved = "nothing" if prior is None else f"v{prior_version}"
        return f"{moved} -> v{release.version} (smoke test passed {where})"

    def stop(self) -> str:
        before = self.aws.describe()
        if before is None:
            return "nothing to stop: no endpoint"
        version, _ = self.aws.version_of(before["EndpointConfigName"])
        self.aws.delete("nothing is Approved (when_nothing_approved=stop)")
        return f"v{version} -> stopped (endpoint {self.endpoint} deleted; its models and configs are kept)"

    def prune(self, keep: frozenset[int]) -> list[str]:
        """Delete the group's configs and models beyond `retention` newest versions; never the endpoint's
        current, verified or previous config or their models, never a version in `keep`."""
        endpoint = self.aws.describe()
        held: set[str] = set()
        if endpoint is not None:
            tags = self.aws.tags(endpoint["EndpointArn"])
            held = {c for c in (endpoint["EndpointConfigName"], tags.get(CONFIG_TAG), tags.get(PREVIOUS_TAG)) if c}
        configs, models = self.aws.listed("c"), self.aws.listed("m")
        held_versions = {v for name, v in configs.items() if name in held}
        others = sorted({*configs.values(), *models.values()} - held_versions - keep, reverse=True)
        retained = keep | held_versions | set(others[:self.config.retention])
        held |= {m for c in held for m in [self.aws.model_of(c)] if m}
        pruned = []
        for kind, label, found in (("c", "endpoint config", configs), ("m", "model", models)):
            for name, version in sorted(found.items(), key=lambda item: (item[1], item[0])):
                if version not in retained and name not in held and self.aws.delete_owned(kind, name):
                    pruned.append(f"{label} {name} (v{version})")
        return pruned

    # -- helpers ---------------------------------------------------------------------------------

    def _prior(self, before: dict[str, Any] | None) -> tuple[str | None, int | None]:
        """The verified config a failure returns to, and its version (None, None: nothing was verified)."""
        if before is None or before["EndpointStatus"] not in SERVING:
            return None, None
        verified = self.aws.tags(before["EndpointArn"]).get(CONFIG_TAG)
        if not verified:
            return None, None
        try:
            return verified, self.aws.version_of(verified)[0]
        except DeploymentFailed:
            return None, None

    def _update_failed(self, release: Release, target: str, after: dict[str, Any] | None, prior: str | None,
                       prior_version: int | None) -> str:
        if after is None:
            return f"endpoint {self.endpoint} disappeared while deploying v{release.version}; nothing serves"
        status, now = after["EndpointStatus"], after["EndpointConfigName"]
        head = (f"the update of endpoint {self.endpoint} to v{release.version} ({target}) failed: "
                f"{after.get('FailureReason') or 'no failure reason given'} (status {status})")
        if status == "InService" and prior is not None and now == prior:
            return f"{head}; SageMaker kept the previous config: v{prior_version} still serves"
        return f"{head}; {self._return(prior, prior_version)}"

    def _return(self, prior: str | None, prior_version: int | None) -> str:
        """Return the endpoint to the verified config `prior` (delete it if there is none); say how it went."""
        if prior is None:
            try:
                self.aws.delete("the deployment failed and nothing was deployed before")
            except GreenlightError as exc:
                return f"nothing was deployed before, but deleting the endpoint failed: {exc}"
            return "nothing was deployed before, so nothing is (endpoint deleted)"
        try:
            current = self.aws.settle(f"return to v{prior_version}")
            if current is not None and current["EndpointConfigName"] != prior:
                log.warning("returning endpoint %s to %s (v%s)", self.endpoint, prior, prior_version)
                self.aws.update(prior)
                current = self.aws.settle(f"return to v{prior_version}")
        except GreenlightError as exc:
            return f"returning to v{prior_version} ({prior}) failed: {exc}"
        if current is None or current["EndpointStatus"] != "InService" or current["EndpointConfigName"] != prior:
            state = "gone" if current is None else f"{current['EndpointStatus']} on {current['EndpointConfigName']}"
            return (f"returning to v{prior_version} ({prior}) failed: the endpoint is {state} "
                    f"({(current or {}).get('FailureReason') or 'no failure reason given'})")
        return f"returned to the previous config: v{prior_version} still serves"

    def _smoke(self, smoke: SmokeTest | None) -> str:
        if smoke is None:
            return "not run: no smoke-test data and smoke.required = false"
        where = f"at endpoint {self.endpoint}"
        try:
            with _aws("InvokeEndpoint"):
                response = self._runtime.invoke_endpoint(EndpointName=self.endpoint, Body=smoke.body.encode(),
                                                         ContentType=smoke.content_type, Accept=smoke.accept)
                answer = response["Body"].read()
            smoke.check(answer)
        except (AwsError, SmokeMismatch) as exc:
            raise DeploymentFailed(f"smoke test {where}: {exc}") from exc
        return where

    def _tag_verified(self, endpoint: dict[str, Any], target: str, version: int, prior: str | None) -> None:
        tags = {VERSION_TAG: str(version), CONFIG_TAG: target}
        if prior is not None and prior != target:
            tags[PREVIOUS_TAG] = prior
        try:
            self.aws.add_tags(endpoint["EndpointArn"], tags)
        except GreenlightError as exc:  # it serves and passed; the next reconcile smoke-tests it again
            log.warning("endpoint %s passed its smoke test but could not be tagged verified: %s", self.endpoint, exc)
