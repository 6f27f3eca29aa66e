"""Progressive delivery on the SageMaker endpoint (issue 22): a guarded blue/green update against moto's HTTP server.

moto has UpdateEndpoint only through tests/support/moto_sagemaker.py, which also takes its DeploymentConfig, keeps
the update Updating for `FAKE.rollout_polls` DescribeEndpoint calls and rolls it back when an alarm it names is in
ALARM in moto's CloudWatch (set here with SetAlarmState, as CloudWatch would on the endpoint's metrics). What the
target sends is compared with deploy.endpoint.aws_guardrails' builder, which tests/unit/test_endpoint_guardrails.py
checks against botocore's shapes.
"""

from __future__ import annotations

import pytest

from deploy.config import EndpointConfig
from deploy.endpoint.aws import ROLLOUT_TAG, SageMakerEndpointTarget
from deploy.endpoint.aws_guardrails import RolloutPhase, deployment_config
from deploy.engine.deadline import Deadline, HandedOver, within
from deploy.engine.protocol import Staged
from deploy.engine.traffic import Shift, TrafficPolicy, VersionTraffic
from greenlight.errors import ConfigurationError, DeploymentFailed
from tests.contract.conftest import aws_client
from tests.contract.test_endpoint_aws import AGREE, GROUP, ROLE, SMOKE, World
from tests.support.aws_shapes import assert_valid
from tests.support.deploy_env import deploy
from tests.support.moto_sagemaker import FAKE

ALARMS = ("churn-endpoint-5xx", "churn-endpoint-latency")
CANARY = TrafficPolicy(Shift.CANARY, canary_percent=20, step_wait_seconds=60, bake_seconds=120, alarms=ALARMS)


@pytest.fixture
def world(moto_endpoint) -> World:
    world = World(moto_endpoint)
    world.cloudwatch = aws_client("cloudwatch", moto_endpoint)
    for name, metric in zip(ALARMS, ("Invocation5XXErrors", "ModelLatency"), strict=True):
        world.cloudwatch.put_metric_alarm(
            AlarmName=name, Namespace="AWS/SageMaker", MetricName=metric, Statistic="Sum", Period=60,
            EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold",
            Dimensions=[{"Name": "EndpointName", "Value": GROUP}, {"Name": "VariantName", "Value": "AllTraffic"}])
    return world


def _target(world: World, policy: TrafficPolicy = CANARY) -> SageMakerEndpointTarget:
    return SageMakerEndpointTarget(world.sm, world.runtime, EndpointConfig(update_timeout_seconds=30), GROUP, ROLE,
                                   poll=10, sleep=world.time.sleep, clock=world.time.clock, traffic=policy)


def _alarm(world: World, name: str) -> None:
    world.cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="5xx on the canary")


def _staged_for(world: World, target, release) -> Staged:
    staged = target.stage(release, target.fetch(release, None))
    world.answer(AGREE)
    target.probe(staged, SMOKE)
    return staged


def test_a_healthy_canary_is_sent_as_sagemakers_deployment_config_and_completes(world):
    target = _target(world)
    v1, v2 = world.release(), world.release()
    world.deployed(target, v1)  # the first deployment creates the endpoint: nothing to shift from
    assert FAKE.deployments == []
    world.answer(AGREE, AGREE)
    message = deploy(target, v2, SMOKE)

    assert "blue/green canary 20% -> 100% (rolled back on churn-endpoint-5xx, churn-endpoint-latency) by " \
           "SageMaker: no alarm tripped" in message
    sent = deployment_config(CANARY)
    assert FAKE.deployments == [sent], "the request moto received is not the builder's DeploymentConfig"
    assert_valid("sagemaker", "UpdateEndpoint", {"EndpointName": GROUP, "EndpointConfigName": "c",
                                                 "DeploymentConfig": FAKE.deployments[0]})
    endpoint = world.endpoint()
    assert endpoint["LastDeploymentConfig"] == sent and endpoint["EndpointStatus"] == "InService"
    assert target.observe().version == 2 and target.observe().detail["last_rollout"] == "CANARY"


def test_an_alarm_during_the_canary_rolls_back_to_the_previous_version_with_sagemakers_reason(world):
    target = _target(world)
    v1, v2 = world.release(), world.release()
    world.deployed(target, v1)
    first = world.endpoint()["EndpointConfigName"]
    _alarm(world, ALARMS[0])
    world.answer(AGREE)  # the probe on the verification endpoint; the live endpoint is never confirmed
    with pytest.raises(DeploymentFailed) as failed:
        deploy(target, v2, SMOKE)

    message = str(failed.value)
    assert f"canary v2: SageMaker rolled the blue/green update of endpoint churn back to {first}: Endpoint update " \
           "rolled back: CloudWatch alarm churn-endpoint-5xx was in ALARM" in message
    assert message.endswith("v1 still serves") or "v1 still serves" in message
    endpoint = world.endpoint()
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", first)
    assert FAKE.updates == 1, "the rolled-back update was sent again"
    observed = target.observe()
    assert (observed.version, observed.active) == (1, True)


def test_the_rollout_is_observed_across_invocations_and_a_later_rollback_is_reported_not_retried(world):
    target = _target(world)
    v1, v2 = world.release(), world.release()
    world.deployed(target, v1)
    first = world.endpoint()["EndpointConfigName"]
    FAKE.rollout_polls = 5  # DescribeEndpoint calls (this test's own included) before the shift would complete
    staged = _staged_for(world, target, v2)

    # WHEN the first invocation's deadline ends while SageMaker shifts traffic
    with within(Deadline(world.time.now + 1, world.time.now + 2, world.time.clock)), pytest.raises(HandedOver):
        target.switch(staged)
    assert target.rollout(staged).phase is RolloutPhase.IN_PROGRESS and world.endpoint()["EndpointStatus"] == "Updating"
    assert world.tags(world.endpoint()["EndpointArn"])[ROLLOUT_TAG] == f"{staged.ref['config']} {staged.ref['attempt']}"
    # AND an alarm trips before the next invocation
    _alarm(world, ALARMS[1])

    # THEN a later invocation (a new target, the staged version from the intent record) reports the rollback
    later = _target(world)
    resumed = Staged.from_dict(staged.to_dict())
    with pytest.raises(DeploymentFailed, match="CloudWatch alarm churn-endpoint-latency was in ALARM"):
        later.switch(resumed)
    assert FAKE.updates == 1
    with pytest.raises(DeploymentFailed, match=f"rolled the blue/green update of endpoint churn back to {first}"):
        later.switch(resumed)  # and again: the same deployment never sends its update twice
    assert FAKE.updates == 1
    state = later.rollout(resumed)
    assert (state.phase, state.config) == (RolloutPhase.ROLLED_BACK, first)
    assert "churn-endpoint-latency" in (state.reason or "")


def test_a_handed_over_healthy_rollout_completes_in_the_next_invocation(world):
    target = _target(world, TrafficPolicy(Shift.LINEAR, linear_step_percent=50, step_wait_seconds=30, alarms=ALARMS))
    v1, v2 = world.release(), world.release()
    world.deployed(target, v1)
    FAKE.rollout_polls = 3
    staged = _staged_for(world, target, v2)
    with within(Deadline(world.time.now + 1, world.time.now + 2, world.time.clock)), pytest.raises(HandedOver):
        target.switch(staged)
    message = target.switch(Staged.from_dict(staged.to_dict()))
    assert message.startswith("blue/green linear 50% -> 100% (rolled back on churn-endpoint-5xx")
    assert world.endpoint()["EndpointConfigName"] == staged.ref["config"] and FAKE.updates == 1
    assert target.rollout(staged).phase is RolloutPhase.DONE


def test_an_all_at_once_policy_sends_no_deployment_config_and_a_bad_canary_fails_before_any_call(world):
    plain = world.target()
    v1, v2 = world.release(), world.release()
    world.deployed(plain, v1, v2)
    assert FAKE.updates == 1 and FAKE.deployments == [] and "LastDeploymentConfig" not in world.endpoint()
    world.calls.clear()
    with pytest.raises(ConfigurationError, match="canary_percent = 75"):
        _target(world, TrafficPolicy(Shift.CANARY, canary_percent=75, alarms=ALARMS))
    assert world.calls == []


def test_as_the_engines_traffic_target_the_first_shift_starts_sagemakers_rollout_and_traffic_reports_its_rollback(
        world):
    target = _target(world)
    v1, v2 = world.release(), world.release()
    world.deployed(target, v1)
    first = world.endpoint()["EndpointConfigName"]
    FAKE.rollout_polls = 6
    staged = _staged_for(world, target, v2)

    assert target.shift(staged, 1, 20).startswith("blue/green canary 20% -> 100% (rolled back on")
    assert FAKE.updates == 1 and FAKE.deployments == [deployment_config(CANARY)]
    assert target.shift(staged, 1, 20) == "" and target.shift(staged, 1, 100) == "" and FAKE.updates == 1
    assert target.traffic(2, 0.0) == VersionTraffic()  # SageMaker judges; nothing for the engine to count
    _alarm(world, ALARMS[0])
    world.endpoint()  # a DescribeEndpoint in which SageMaker's baking period sees the alarm
    with pytest.raises(DeploymentFailed, match="CloudWatch alarm churn-endpoint-5xx was in ALARM"):
        target.traffic(2, 0.0)
    with pytest.raises(DeploymentFailed, match=f"back to {first}"):
        target.shift(staged, 1, 100)
    target.unstage(staged)  # the engine's undo: SageMaker already put v1 back, nothing to do
    assert FAKE.updates == 1 and world.endpoint()["EndpointConfigName"] == first
    assert (target.observe().version, target.observe().active) == (1, True)


def test_a_shift_without_a_progressive_policy_or_an_endpoint_is_refused(world):
    plain = world.target()
    v1 = world.release()
    staged = plain.stage(v1, plain.fetch(v1, None))
    with pytest.raises(DeploymentFailed, match="without a progressive traffic policy"):
        plain.shift(staged, None, 20)
    guarded = _target(world)
    with pytest.raises(DeploymentFailed, match="nothing serves to shift from"):
        guarded.shift(guarded.stage(v1, guarded.fetch(v1, None)), None, 20)
