"""The endpoint target, AWS adapter: a SageMaker Serverless Inference endpoint behind DeployTarget.

The primitives of the deploy transaction (deploy.engine.protocol); the decision of how a version is
probed before it takes traffic is the decision record docs/decisions/*-verify-before-switch.md:

    fetch    nothing: SageMaker reads the model from the versioned model package
    stage    (after waiting for the endpoint to settle, bounded) the version's SageMaker Model and an
             endpoint config with the configured ServerlessConfig (deterministic names: aws_names);
             found, or created
    probe    a short-lived verification endpoint, `<endpoint>-verify`, on exactly that config: created
             (or found, by its name, from an earlier reconcile), waited for, sent the smoke rows through
             sagemaker-runtime InvokeEndpoint, compared exactly. No client knows its name, and a
             serverless endpoint has one variant, so live traffic cannot reach the new version before
             this passes
    switch   CreateEndpoint, or UpdateEndpoint to the config (a Failed or OutOfService endpoint is
             deleted and created again), waited for (bounded by `update_timeout_seconds`). With a
             progressive TrafficPolicy (issue 22) the update carries SageMaker's DeploymentConfig
             (aws_guardrails: blue/green canary or linear, rolled back by SageMaker on the named alarms),
             the endpoint is tagged `greenlight:rollout` (config and attempt), and the wait is bounded by
             the rollout's own timeout; under a deadline it hands over (deploy.engine.deadline), and the
             next reconcile's switch finds the rollout by that tag: still Updating (waits again), done,
             or rolled back (TrafficBreach with SageMaker's FailureReason; never sent again).
             As the engine's TrafficTarget, `shift` sends that update at the rollout's first step (later
             steps only check on it) and `traffic` has nothing to count (SageMaker judges by the alarms)
             but raises TrafficBreach once SageMaker rolled back, so the engine rolls its rollout back with
             SageMaker's reason (held until approved again, like a breach of its own rules)
    confirm  the smoke rows again through the live endpoint, then the verification endpoint is deleted
             and the endpoint tagged verified
    unstage  the verification endpoint deleted; if the endpoint runs the staged config unconfirmed, it
             goes back to the verified config it ran before (UpdateEndpoint back, waited for), or is
             deleted when nothing was verified before

Tags: models and configs carry `greenlight:group` and `greenlight:model-version`; the endpoint carries
`greenlight:group` and, once a deployment confirmed it, `greenlight:model-version`, `greenlight:config`
(the verified config) and `greenlight:previous-config` (the one before it, which prune keeps). An
endpoint on a config other than its verified one (a reconcile died between the switch and its
confirmation, or someone updated it by hand) is observed as not active, so the next reconcile returns
it or tests it again.

The SageMaker calls themselves are in aws_resources (through greenlight.aws_errors).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deploy.endpoint.aws_guardrails import Rollout, RolloutPhase, deployment_config, rollout
from deploy.endpoint.aws_resources import SERVING, SETTLING, VERSION_TAG, EndpointResources
from deploy.engine.model import Observed, Release, TargetKind
from deploy.engine.protocol import Artifact, Staged, TrafficBreach
from deploy.engine.retention import doomed
from deploy.engine.smoke import SmokeMismatch, SmokeTest
from deploy.engine.traffic import TrafficPolicy, VersionTraffic
from greenlight.aws_errors import aws_errors as _aws
from deploy.names import SAGEMAKER, GroupNames, fit
from greenlight.errors import AwsError, DeploymentFailed, GreenlightError

if TYPE_CHECKING:
    from mypy_boto3_sagemaker import SageMakerClient
    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient

    from deploy.config import EndpointConfig

__all__ = ["CONFIG_TAG", "PREVIOUS_TAG", "ROLLOUT_TAG", "VERIFY_SUFFIX", "SageMakerEndpointTarget"]

log = logging.getLogger(__name__)

CONFIG_TAG, PREVIOUS_TAG = "greenlight:config", "greenlight:previous-config"
ROLLOUT_TAG = "greenlight:rollout"  # "<config> <attempt>": the guarded update a switch started
VERIFY_SUFFIX = "-verify"  # the verification endpoint: <endpoint>-verify (the deploy stack's policy names it)


class SageMakerEndpointTarget:
    """DeployTarget for one SageMaker Serverless endpoint of one model package group.

    The endpoint is `config.name`, else the group's name. `sleep` and `clock` (monotonic seconds)
    pace and bound the waits; `poll` is the seconds between DescribeEndpoint calls while waiting.
    `traffic` (its `policy`; default all-at-once) is how a switch moves traffic; a progressive one is checked here,
    before any call (ConfigurationError: what SageMaker would refuse).

    The verification endpoint is `<endpoint>-verify`, fitted by deploy.names (cut and hashed past 56
    characters, which the deploy stack's policy does not name: such a group needs the policy widened).
    """

    kind = TargetKind.ENDPOINT

    def __init__(self, sagemaker: SageMakerClient, runtime: SageMakerRuntimeClient, config: EndpointConfig,
                 group: str, role_arn: str, *, name: str = "endpoint", poll: float = 10.0,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                 traffic: TrafficPolicy | None = None):
        self.config, self.group, self.role_arn, self.name = config, group, role_arn, name
        self.policy = traffic or TrafficPolicy()
        self.deployment = deployment_config(self.policy) if self.policy.progressive else None
        self.endpoint = config.name or GroupNames(group).endpoint
        self.verify_endpoint = fit(SAGEMAKER, self.endpoint, VERIFY_SUFFIX)  # cut + hash when it would not fit
        self._runtime = runtime
        self.aws = EndpointResources(sagemaker, group, self.endpoint, timeout=config.update_timeout_seconds,
                                     poll=poll, sleep=sleep, clock=clock)
        self.verifier = EndpointResources(sagemaker, group, self.verify_endpoint,
                                          timeout=config.update_timeout_seconds, poll=poll, sleep=sleep, clock=clock)

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
        guarded = (endpoint.get("LastDeploymentConfig") or {}).get("BlueGreenUpdatePolicy")
        if guarded:
            detail["last_rollout"] = guarded["TrafficRoutingConfiguration"]["Type"]
        if status != "InService":
            log.warning("endpoint %s is %s, not InService (%s)", self.endpoint, status,
                        endpoint.get("FailureReason") or "no failure reason given")
        elif verified != current:
            log.warning("endpoint %s runs %s, which no deployment smoke-tested (last verified: %s); the next "
                        "deployment tests it again", self.endpoint, current, verified or "none")
        return Observed(self.name, self.kind, version, status in SERVING and verified == current, detail)

    # -- the deploy primitives -------------------------------------------------------------------

    def fetch(self, release: Release, scratch: Path) -> Artifact:
        return Artifact(release.version, release.model_data_url)  # SageMaker reads it from the model package

    def stage(self, release: Release, artifact: Artifact) -> Staged:
        before = self.aws.describe()
        if before is not None and before["EndpointStatus"] in SETTLING:
            log.info("endpoint %s is %s; waiting for it to settle first", self.endpoint, before["EndpointStatus"])
            before = self.aws.settle("settle before the deployment")
        prior, prior_version = self._prior(before)
        model = self.aws.ensure_model(release, self.role_arn)
        config = self.aws.ensure_config(release, model, self.config)
        ref = {"config": config, "model": model, "prior": prior, "prior_version": prior_version}
        if self.deployment is not None:
            ref["attempt"] = uuid.uuid4().hex[:12]  # names this deployment's guarded update (ROLLOUT_TAG)
        return Staged(self.name, release.version, ref)

    def probe(self, staged: Staged, smoke: SmokeTest) -> str:
        config, name = staged.ref["config"], self.verify_endpoint
        found = self.verifier.settle(f"look at verification endpoint {name}")
        if found is not None and (found["EndpointConfigName"] != config or found["EndpointStatus"] != "InService"):
            self.verifier.delete(f"it runs {found['EndpointConfigName']} ({found['EndpointStatus']}), not {config}")
            found = None
        if found is None:
            self.verifier.create(config)
            found = self.verifier.settle(f"start verification endpoint {name} for v{staged.version}")
        if found is None or found["EndpointStatus"] != "InService":
            state = "gone" if found is None else found["EndpointStatus"]
            reason = (found or {}).get("FailureReason") or "no failure reason given"
            raise DeploymentFailed(f"v{staged.version} ({config}) did not start on verification endpoint {name}: "
                                   f"{reason} (status {state})")
        self._smoke(name, smoke, "")
        return f"at verification endpoint {name}"

    def switch(self, staged: Staged) -> str:
        config, guarded = staged.ref["config"], self._guarded(staged)
        why = f"switch to v{staged.version}" + (f" ({self._shift_words()})" if guarded else "")
        timeout = self._rollout_timeout() if guarded else None
        before = self.aws.settle(why, timeout)
        rolling = guarded and before is not None and self._rollout_started(before, staged)
        if rolling and before is not None and before["EndpointConfigName"] != config:
            self._rolled_back(staged, before)  # an earlier reconcile's update ended back on the old config
        if before is None or before["EndpointStatus"] not in SERVING:
            if before is not None:  # Failed or OutOfService: it serves nothing and cannot be updated
                self.aws.delete(f"it is {before['EndpointStatus']} and serves nothing")
            self.aws.create(config)
        elif before["EndpointConfigName"] != config:
            if guarded:
                self.aws.add_tags(before["EndpointArn"], {ROLLOUT_TAG: self._rollout_id(staged)})
                rolling = True
            self.aws.update(config, self.deployment if guarded else None)
        else:
            log.info("endpoint %s already runs %s", self.endpoint, config)
        after = self.aws.settle(why, timeout)
        if rolling and after is not None and after["EndpointStatus"] == "InService" and \
                after["EndpointConfigName"] != config:
            self._rolled_back(staged, after)
        if after is None or after["EndpointStatus"] != "InService" or after["EndpointConfigName"] != config:
            if after is None:
                raise DeploymentFailed(f"endpoint {self.endpoint} disappeared while switching to v{staged.version}")
            raise DeploymentFailed(f"the update of endpoint {self.endpoint} to v{staged.version} ({config}) failed: "
                                   f"{after.get('FailureReason') or 'no failure reason given'} (status "
                                   f"{after['EndpointStatus']} on {after['EndpointConfigName']})")
        return f"{self._shift_words()} by SageMaker: no alarm tripped" if rolling else ""

    # -- progressive delivery (issue 22): the engine's TrafficTarget, on SageMaker's own rollout ----

    def shift(self, staged: Staged, previous: int | None, percent: float) -> str:
        """Start SageMaker's guarded blue/green update to the staged version (its first call), or check on it.

        SageMaker runs the steps itself (a serverless endpoint's one variant cannot be weighed by a caller), at the
        same policy's percentages and waits; later calls change nothing. Raises: TrafficBreach when SageMaker
        rolled it back (its FailureReason), DeploymentFailed when no endpoint serves to shift from.
        """
        if not self._guarded(staged):
            raise DeploymentFailed(f"endpoint {self.endpoint}: v{staged.version} was staged without a progressive "
                                   "traffic policy; nothing to shift")
        before = self.aws.describe()
        if before is None or before["EndpointStatus"] not in SERVING:
            raise DeploymentFailed(f"endpoint {self.endpoint}: nothing serves to shift from "
                                   f"({'absent' if before is None else before['EndpointStatus']})")
        if self._rollout_started(before, staged):
            self._check_rollout(staged, before)
            return ""
        self.aws.add_tags(before["EndpointArn"], {ROLLOUT_TAG: self._rollout_id(staged)})
        self.aws.update(staged.ref["config"], self.deployment)
        return f"{self._shift_words()} started by SageMaker (the engine's {percent:g}% step is SageMaker's)"

    def traffic(self, version: int, since: float) -> VersionTraffic:
        """Nothing for the engine to judge (SageMaker judges the endpoint by its alarms): an empty VersionTraffic
        while the guarded update goes on or is done.

        Raises: TrafficBreach when SageMaker rolled it back, with its FailureReason (the engine rolls back too).
        """
        endpoint = self.aws.describe()
        if endpoint is not None:
            started = self.aws.tags(endpoint["EndpointArn"]).get(ROLLOUT_TAG, "")
            config, _, attempt = started.partition(" ")
            if config and attempt:
                self._check_rollout(Staged(self.name, version, {"config": config, "attempt": attempt}), endpoint)
        return VersionTraffic()

    def _check_rollout(self, staged: Staged, endpoint: Mapping[str, Any]) -> None:
        state = rollout(endpoint, staged.ref["config"])
        if state.phase is RolloutPhase.ROLLED_BACK:
            self._rolled_back(staged, endpoint)
        if state.phase is RolloutPhase.FAILED:
            raise DeploymentFailed(f"endpoint {self.endpoint} is {state.status} during the blue/green update to "
                                   f"v{staged.version}: {state.reason or 'no failure reason given'}")

    def rollout(self, staged: Staged) -> Rollout:
        """Where the update to `staged`'s config stands now (read-only; for status and a later reconcile)."""
        return rollout(self.aws.describe(), staged.ref["config"])

    def confirm(self, staged: Staged, smoke: SmokeTest | None) -> str | None:
        if smoke is not None:
            self._smoke(self.endpoint, smoke, " after the switch")
        self._drop_verifier()
        endpoint = self.aws.describe()
        if endpoint is not None:
            self._tag_verified(endpoint, staged.ref["config"], staged.version, staged.ref.get("prior"))
        return None if smoke is None else f"passed again at endpoint {self.endpoint} after the switch"

    def unstage(self, staged: Staged) -> None:
        self._drop_verifier()
        config, prior = staged.ref["config"], staged.ref.get("prior")
        current = self.aws.settle(f"undo v{staged.version}")
        if current is None or current["EndpointConfigName"] != config or config == prior:
            return  # the switch never happened (or SageMaker kept the previous config)
        if self.aws.tags(current["EndpointArn"]).get(CONFIG_TAG) == config and current["EndpointStatus"] == "InService":
            return  # confirmed: the new version is verified and serves
        self._return(prior, staged.ref.get("prior_version"))

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
        held |= {m for c in held for m in [self.aws.model_of(c)] if m}
        items = {**{f"c {n}": v for n, v in self.aws.listed("c").items()},
                 **{f"m {n}": v for n, v in self.aws.listed("m").items()}}
        pruned = []
        for item in doomed(items, {f"{k} {n}" for n in held for k in "cm"}, keep, self.config.retention):
            kind, name = item.split(" ", 1)
            if self.aws.delete_owned(kind, name):
                pruned.append(f"{'endpoint config' if kind == 'c' else 'model'} {name} (v{items[item]})")
        return pruned

    # -- helpers ---------------------------------------------------------------------------------

    def _guarded(self, staged: Staged) -> bool:
        """Whether this switch is a guarded blue/green update (a progressive policy, staged with an attempt)."""
        return self.deployment is not None and "attempt" in staged.ref

    def _shift_words(self) -> str:
        alarms = ", ".join(a["AlarmName"] for a in (self.deployment or {}).get("AutoRollbackConfiguration", {})
                           .get("Alarms", []))
        steps = " -> ".join(f"{p:g}%" for p in self.policy.steps())
        return f"blue/green {self.policy.traffic} {steps} (rolled back on {alarms})"

    def _rollout_timeout(self) -> float:
        """The rollout's own bound (SageMaker's MaximumExecutionTimeoutInSeconds), or the update timeout if longer."""
        policy = (self.deployment or {}).get("BlueGreenUpdatePolicy", {})
        return max(self.aws.timeout, float(policy.get("MaximumExecutionTimeoutInSeconds", 0)))

    @staticmethod
    def _rollout_id(staged: Staged) -> str:
        return f"{staged.ref['config']} {staged.ref['attempt']}"

    def _rollout_started(self, endpoint: Mapping[str, Any], staged: Staged) -> bool:
        """Whether an earlier switch of this very deployment already sent its guarded update (ROLLOUT_TAG)."""
        return self.aws.tags(endpoint["EndpointArn"]).get(ROLLOUT_TAG) == self._rollout_id(staged)

    def _rolled_back(self, staged: Staged, endpoint: Mapping[str, Any]) -> None:
        """Raise the rollback SageMaker did, with its reason (the update is not sent again).

        Raises:
            TrafficBreach: always (a DeploymentFailed; the engine's rollout rolls back with it, deploy.engine.protocol).
        """
        reason = endpoint.get("FailureReason") or "no failure reason given"
        log.warning("endpoint %s: SageMaker rolled v%s back: %s", self.endpoint, staged.version, reason)
        words = (f"SageMaker rolled the blue/green update of endpoint {self.endpoint} back to "
                 f"{endpoint['EndpointConfigName']}: {reason}")
        raise TrafficBreach(f"{self.policy.traffic} v{staged.version}: {words}", words)

    def _prior(self, before: Mapping[str, Any] | None) -> tuple[str | None, int | None]:
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

    def _return(self, prior: str | None, prior_version: int | None) -> None:
        """Return the endpoint to the verified config `prior` (delete it if there is none).

        Raises:
            DeploymentFailed: the endpoint could not be returned (naming where it is).
        """
        if prior is None:
            self.aws.delete("the deployment failed and nothing was verified before")
            return
        current = self.aws.settle(f"return to v{prior_version}")
        if current is not None and current["EndpointConfigName"] != prior:
            log.warning("returning endpoint %s to %s (v%s)", self.endpoint, prior, prior_version)
            self.aws.update(prior)
            current = self.aws.settle(f"return to v{prior_version}")
        if current is None or current["EndpointStatus"] != "InService" or current["EndpointConfigName"] != prior:
            state = "gone" if current is None else f"{current['EndpointStatus']} on {current['EndpointConfigName']}"
            raise DeploymentFailed(f"returning to v{prior_version} ({prior}) failed: the endpoint is {state} "
                                   f"({(current or {}).get('FailureReason') or 'no failure reason given'})")

    def _drop_verifier(self) -> None:
        """Delete the verification endpoint (not waited for: a later probe waits if it must)."""
        if self.verifier.request_delete():
            log.info("deleting verification endpoint %s", self.verify_endpoint)

    def _smoke(self, endpoint: str, smoke: SmokeTest, when: str) -> None:
        try:
            with _aws("InvokeEndpoint"):
                response = self._runtime.invoke_endpoint(EndpointName=endpoint, Body=smoke.body.encode(),
                                                         ContentType=smoke.content_type, Accept=smoke.accept)
                answer = response["Body"].read()
            smoke.check(answer)
        except (AwsError, SmokeMismatch) as exc:
            raise DeploymentFailed(f"smoke test at endpoint {endpoint}{when}: {exc}") from exc

    def _tag_verified(self, endpoint: Mapping[str, Any], target: str, version: int, prior: str | None) -> None:
        tags = {VERSION_TAG: str(version), CONFIG_TAG: target}
        if prior is not None and prior != target:
            tags[PREVIOUS_TAG] = prior
        try:
            self.aws.add_tags(endpoint["EndpointArn"], tags)
        except GreenlightError as exc:  # it serves and passed; the next reconcile smoke-tests it again
            log.warning("endpoint %s passed its smoke test but could not be tagged verified: %s", self.endpoint, exc)
