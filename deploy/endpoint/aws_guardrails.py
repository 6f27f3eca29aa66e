"""SageMaker deployment guardrails for the endpoint target: a TrafficPolicy as UpdateEndpoint's DeploymentConfig,
and an in-progress blue/green update read back from DescribeEndpoint.

Pure: no boto3. `deployment_config` maps the policy (deploy.engine.traffic) onto the one update policy a
serverless endpoint may use, BlueGreenUpdatePolicy (rolling updates exclude serverless endpoints; AWS docs,
"Exclusions"; docs/aws-behaviour.md):

    traffic          TrafficRoutingConfiguration.Type   ALL_AT_ONCE | CANARY | LINEAR
    canary_percent   CanarySize      {CAPACITY_PERCENT, n}   1-50 (a serverless endpoint has no instance count)
    linear_step_%    LinearStepSize  {CAPACITY_PERCENT, n}   10-50
    step_wait        WaitIntervalInSeconds                   0-3600: each step's baking period
    bake_seconds     TerminationWaitInSeconds                0-3600: the old fleet kept after the last shift
    (all of them)    MaximumExecutionTimeoutInSeconds        600-28800: provisioning allowance + every wait
    alarms           AutoRollbackConfiguration.Alarms        1-10 names; SageMaker rolls back while one is ALARM

SageMaker judges a blue/green update only by CloudWatch alarms, so the policy's own thresholds
(max_5xx_percent, max_p99_ms) reach it as the alarms the deploy stack creates on the endpoint's metrics
(deploy/template.yaml); a progressive policy without alarms would shift traffic with nothing to roll it back and
is refused. Whatever the service would refuse is one ConfigurationError line naming the field, before any call.

`rollout` reads where an update stands from DescribeEndpoint, so a later invocation (the periodic resync) can
report it: in progress (Updating, RollingBack), done on the new config, or rolled back with SageMaker's
FailureReason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from deploy.engine.traffic import Shift, TrafficPolicy
from greenlight.errors import ConfigurationError

__all__ = ["PROVISIONING_SECONDS", "Rollout", "RolloutPhase", "deployment_config", "rollout"]

PROVISIONING_SECONDS = 600  # the timeout's allowance for starting the new (green) serverless fleet
_TYPES = {Shift.ALL_AT_ONCE: "ALL_AT_ONCE", Shift.CANARY: "CANARY", Shift.LINEAR: "LINEAR"}
_MAX_WAIT, _MIN_TIMEOUT, _MAX_TIMEOUT, _MAX_ALARMS = 3600, 600, 28800, 10


def _whole(name: str, value: float, low: float, high: float) -> int:
    if value != int(value) or not low <= value <= high:
        raise ConfigurationError(f"endpoint {name} = {value:g}: SageMaker's deployment guardrails take a whole number "
                                 f"from {low:g} to {high:g}")
    return int(value)


def deployment_config(policy: TrafficPolicy, alarms: Sequence[str] = ()) -> dict[str, Any]:
    """UpdateEndpoint's DeploymentConfig for `policy`; `alarms` are added to the policy's own alarm names.

    Raises:
        ConfigurationError: a value SageMaker does not accept for a serverless endpoint (one line).
    """
    names = list(dict.fromkeys([*policy.alarms, *alarms]))
    wait = _whole("step_wait_seconds", policy.step_wait_seconds, 0, _MAX_WAIT)
    bake = _whole("bake_seconds", policy.bake_seconds, 0, _MAX_WAIT)
    routing: dict[str, Any] = {"Type": _TYPES[policy.traffic], "WaitIntervalInSeconds": wait}
    if policy.traffic is Shift.CANARY:
        routing["CanarySize"] = {"Type": "CAPACITY_PERCENT",
                                 "Value": _whole("canary_percent", policy.canary_percent, 1, 50)}
    elif policy.traffic is Shift.LINEAR:
        routing["LinearStepSize"] = {"Type": "CAPACITY_PERCENT",
                                     "Value": _whole("linear_step_percent", policy.linear_step_percent, 10, 50)}
    steps = len(policy.steps())
    timeout = max(_MIN_TIMEOUT, PROVISIONING_SECONDS + steps * wait + bake)
    if timeout > _MAX_TIMEOUT:
        raise ConfigurationError(f"endpoint {policy.traffic} rollout takes {timeout} s ({steps} steps x "
                                 f"step_wait_seconds {wait} + bake_seconds {bake} + {PROVISIONING_SECONDS} to start); "
                                 f"SageMaker allows at most {_MAX_TIMEOUT} s")
    if policy.progressive and not names:
        raise ConfigurationError(f"endpoint traffic = {policy.traffic} needs at least one alarm (endpoint.alarms): "
                                 "SageMaker rolls a blue/green update back only on CloudWatch alarms")
    if len(names) > _MAX_ALARMS:
        raise ConfigurationError(f"endpoint alarms: {len(names)} given, SageMaker takes at most {_MAX_ALARMS}")
    config: dict[str, Any] = {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": routing,
                                                        "TerminationWaitInSeconds": bake,
                                                        "MaximumExecutionTimeoutInSeconds": timeout}}
    if names:
        config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": name} for name in names]}
    return config


class RolloutPhase(StrEnum):
    IN_PROGRESS = "in-progress"  # Updating or RollingBack: SageMaker is still shifting (or shifting back)
    DONE = "done"  # InService on the new config
    ROLLED_BACK = "rolled-back"  # InService on another config, FailureReason set
    FAILED = "failed"  # Failed, UpdateRollbackFailed, OutOfService, or gone


@dataclass(frozen=True)
class Rollout:
    """Where a blue/green update to `config` stands, from one DescribeEndpoint."""

    phase: RolloutPhase
    status: str
    config: str | None  # the config the endpoint runs now
    reason: str | None = None  # SageMaker's FailureReason


def rollout(endpoint: Mapping[str, Any] | None, config: str) -> Rollout:
    """Read an update to `config` from DescribeEndpoint's answer (None: the endpoint is gone)."""
    if endpoint is None:
        return Rollout(RolloutPhase.FAILED, "absent", None, "the endpoint is gone")
    status, current = endpoint["EndpointStatus"], endpoint.get("EndpointConfigName")
    reason = endpoint.get("FailureReason")
    if status in ("Updating", "RollingBack", "SystemUpdating"):
        phase = RolloutPhase.IN_PROGRESS
    elif status == "InService":
        phase = RolloutPhase.DONE if current == config else RolloutPhase.ROLLED_BACK
    else:
        phase = RolloutPhase.FAILED
    if phase is RolloutPhase.ROLLED_BACK and not reason:
        reason = "SageMaker gave no failure reason"
    return Rollout(phase, status, current, reason if phase is not RolloutPhase.DONE else None)
