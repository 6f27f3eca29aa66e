"""deploy.endpoint.aws_guardrails: a TrafficPolicy as UpdateEndpoint's DeploymentConfig, checked against botocore's
own SageMaker model for every Shift, and an update read back from DescribeEndpoint."""

from __future__ import annotations

import pytest

from deploy.endpoint.aws_guardrails import Rollout, RolloutPhase, deployment_config, rollout
from deploy.engine.traffic import Shift, TrafficPolicy
from greenlight.errors import ConfigurationError
from tests.support.aws_shapes import assert_valid

ALARMS = ("greenlight-models-endpoint-5xx", "greenlight-models-endpoint-latency")


def _update(policy: TrafficPolicy, alarms=ALARMS) -> dict:
    return {"EndpointName": "greenlight-models", "EndpointConfigName": "greenlight-models-v2-abc",
            "DeploymentConfig": deployment_config(policy, alarms)}


@pytest.mark.parametrize("shift", list(Shift))
def test_every_shift_is_a_valid_update_endpoint_request(shift):
    policy = TrafficPolicy(shift, canary_percent=20, linear_step_percent=25, step_wait_seconds=120, bake_seconds=300)
    request = _update(policy)
    assert_valid("sagemaker", "UpdateEndpoint", request)
    routing = request["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing["Type"] == shift.name and routing["WaitIntervalInSeconds"] == 120
    assert request["DeploymentConfig"]["AutoRollbackConfiguration"] == {"Alarms": [{"AlarmName": a} for a in ALARMS]}
    assert "RollingUpdatePolicy" not in request["DeploymentConfig"], "rolling updates exclude serverless endpoints"


def test_canary_and_linear_sizes_are_capacity_percentages_and_the_timeout_covers_every_wait():
    canary = deployment_config(TrafficPolicy(Shift.CANARY, canary_percent=20, step_wait_seconds=60, bake_seconds=300),
                               ALARMS)["BlueGreenUpdatePolicy"]
    assert canary["TrafficRoutingConfiguration"]["CanarySize"] == {"Type": "CAPACITY_PERCENT", "Value": 20}
    assert canary["TerminationWaitInSeconds"] == 300
    assert canary["MaximumExecutionTimeoutInSeconds"] == 600 + 2 * 60 + 300  # canary + 100% steps, the bake
    linear = deployment_config(TrafficPolicy(Shift.LINEAR, linear_step_percent=25, step_wait_seconds=300,
                                             bake_seconds=600), ALARMS)["BlueGreenUpdatePolicy"]
    assert linear["TrafficRoutingConfiguration"]["LinearStepSize"] == {"Type": "CAPACITY_PERCENT", "Value": 25}
    assert linear["MaximumExecutionTimeoutInSeconds"] == 600 + 4 * 300 + 600
    quick = deployment_config(TrafficPolicy(step_wait_seconds=0, bake_seconds=0), ())["BlueGreenUpdatePolicy"]
    assert quick["MaximumExecutionTimeoutInSeconds"] == 600  # SageMaker's minimum


def test_the_policys_alarms_and_the_stacks_are_merged_without_duplicates():
    config = deployment_config(TrafficPolicy(Shift.CANARY, alarms=("mine", ALARMS[0])), ALARMS)
    assert [a["AlarmName"] for a in config["AutoRollbackConfiguration"]["Alarms"]] == ["mine", *ALARMS]
    assert "AutoRollbackConfiguration" not in deployment_config(TrafficPolicy(), ())


@pytest.mark.parametrize(("policy", "alarms", "message"), [
    (TrafficPolicy(Shift.CANARY, canary_percent=60), ALARMS, "canary_percent = 60: SageMaker's deployment guardrails "
                                                              "take a whole number from 1 to 50"),
    (TrafficPolicy(Shift.CANARY, canary_percent=12.5), ALARMS, "canary_percent = 12.5"),
    (TrafficPolicy(Shift.LINEAR, linear_step_percent=5), ALARMS, "linear_step_percent = 5: SageMaker's deployment "
                                                                 "guardrails take a whole number from 10 to 50"),
    (TrafficPolicy(Shift.CANARY, step_wait_seconds=4000), ALARMS, "step_wait_seconds = 4000"),
    (TrafficPolicy(Shift.CANARY, bake_seconds=7200), ALARMS, "bake_seconds = 7200"),
    (TrafficPolicy(Shift.LINEAR, linear_step_percent=10, step_wait_seconds=3600), ALARMS,
     "endpoint linear rollout takes 36900 s (10 steps x step_wait_seconds 3600 + bake_seconds 300 + 600 to start); "
     "SageMaker allows at most 28800 s"),
    (TrafficPolicy(Shift.CANARY), (), "endpoint traffic = canary needs at least one alarm (endpoint.alarms)"),
    (TrafficPolicy(Shift.CANARY), tuple(f"a{i}" for i in range(11)), "endpoint alarms: 11 given, SageMaker takes at "
                                                                      "most 10"),
])
def test_what_sagemaker_would_refuse_is_one_configuration_error_line(policy, alarms, message):
    with pytest.raises(ConfigurationError) as refused:
        deployment_config(policy, alarms)
    assert message in str(refused.value) and "\n" not in str(refused.value)


def test_the_shape_check_catches_a_request_the_service_would_refuse():
    # GIVEN a fault planted by hand in a built request (a wait above 3600 s, a type SageMaker lacks)
    request = _update(TrafficPolicy(Shift.CANARY))
    routing = request["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    routing["WaitIntervalInSeconds"] = 4000
    with pytest.raises(AssertionError, match="WaitIntervalInSeconds: above 3600"):
        assert_valid("sagemaker", "UpdateEndpoint", request)
    routing["WaitIntervalInSeconds"], routing["Type"] = 60, "ROLLING"
    with pytest.raises(AssertionError, match="ROLLING"):
        assert_valid("sagemaker", "UpdateEndpoint", request)


@pytest.mark.parametrize(("described", "expected"), [
    ({"EndpointStatus": "Updating", "EndpointConfigName": "old"}, Rollout(RolloutPhase.IN_PROGRESS, "Updating", "old")),
    ({"EndpointStatus": "RollingBack", "EndpointConfigName": "old", "FailureReason": "alarm"},
     Rollout(RolloutPhase.IN_PROGRESS, "RollingBack", "old", "alarm")),
    ({"EndpointStatus": "InService", "EndpointConfigName": "new"}, Rollout(RolloutPhase.DONE, "InService", "new")),
    ({"EndpointStatus": "InService", "EndpointConfigName": "old", "FailureReason": "Alarm x in ALARM"},
     Rollout(RolloutPhase.ROLLED_BACK, "InService", "old", "Alarm x in ALARM")),
    ({"EndpointStatus": "UpdateRollbackFailed", "EndpointConfigName": "new", "FailureReason": "r"},
     Rollout(RolloutPhase.FAILED, "UpdateRollbackFailed", "new", "r")),
    (None, Rollout(RolloutPhase.FAILED, "absent", None, "the endpoint is gone")),
])
def test_an_update_is_read_back_from_describe_endpoint(described, expected):
    assert rollout(described, "new") == expected
