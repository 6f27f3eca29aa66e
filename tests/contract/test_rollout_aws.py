"""A rollback AWS decides is the engine's rollback (issue 22): on moto, through the composition root and the reconciler.

GIVEN an AWS world serving v1 with a canary policy whose named alarm exists in moto's CloudWatch, WHEN v2 is approved
the reconciler starts the rollout (SageMaker's guarded blue/green update on the endpoint; the `live` alias's weights on
the Lambda) and, the alarm in ALARM, the next reconcile finds the platform's verdict (SageMaker rolled its update back,
tests/support/moto_sagemaker.py; the named alarm during the Lambda's step): THEN it is a rollback exactly like a local
breach: `rolled_back` and `last_failure` in the saved status hold the reason, v1 serves, and v2 is not deployed again
until it is approved again.
"""

from __future__ import annotations

import pytest

from tests.contract.conftest import aws_client
from tests.support.moto_sagemaker import FAKE

AWS = [("aws", "endpoint"), ("aws", "lambda")]
aws_worlds = pytest.mark.parametrize("deploy_env", AWS, ids=[k for _, k in AWS], indirect=True)


@pytest.fixture
def canary(monkeypatch, deploy_env):
    env, section = deploy_env, deploy_env.kind.upper()
    alarm = f"{env.group}-{env.kind}-5xx"
    cloudwatch = aws_client("cloudwatch", env.moto_url)
    cloudwatch.put_metric_alarm(AlarmName=alarm, Namespace="AWS/SageMaker", MetricName="Invocation5XXErrors",
                                Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1,
                                ComparisonOperator="GreaterThanThreshold")
    # a step far longer than the test: the engine holds between reconciles, only the platform's verdict moves it
    for name, value in (("TRAFFIC", "canary"), ("CANARY_PERCENT", "20"), ("STEP_WAIT_SECONDS", "3600"),
                        ("BAKE_SECONDS", "0"), ("ALARMS", f"{alarm},")):  # the stack's join may leave an empty name
        monkeypatch.setenv(f"GREENLIGHT_{section}_{name}", value)
    FAKE.rollout_polls = 1000  # SageMaker keeps shifting (Updating) until the alarm rolls it back
    v1, v2 = env.register(), env.register(model="b")
    env.approve(v1)
    assert env.reconciler().reconcile().results[0].ok and env.served_version() == v1
    env.approve(v2)
    return env, v1, v2, cloudwatch, alarm


@aws_worlds
def test_a_platform_rollback_is_the_engines_rollback_held_until_approved_again(canary):
    env, v1, v2, cloudwatch, alarm = canary
    [started] = env.reconciler().reconcile().results
    assert started.ok and started.in_progress, started.message
    assert started.rollout["weights"] == {f"v{v2}": 20.0, f"v{v1}": 80.0} and started.rollout["phase"] == "shifting"
    [holding] = env.reconciler().reconcile().results  # nothing tripped: the step goes on
    assert holding.ok and holding.in_progress, holding.message

    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="5xx on the canary")
    reconciler = env.reconciler()
    [rolled] = reconciler.reconcile().results

    assert not rolled.ok and rolled.rolled_back is not None, rolled.message
    assert rolled.rolled_back.startswith(f"canary v{v2}: ") and alarm in rolled.rolled_back
    assert rolled.rollout["phase"] == "rolled-back" and rolled.rollout["reason"] == rolled.rolled_back
    assert env.served_version() == v1
    saved = reconciler.status.load()
    assert saved["rolled_back"][env.kind]["version"] == v2
    assert saved["rolled_back"][env.kind]["reason"] == rolled.rolled_back
    assert rolled.rolled_back in str(saved["last_failure"])
    assert reconciler.status.load_intent(env.kind) is None

    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="quiet again")
    [held] = env.reconciler().reconcile().results
    assert held.ok and f"not retried: v{v2} was rolled back" in held.message and env.served_version() == v1
    env.reject(v2)
    env.approve(v2)  # approved again: the hold ends, the rollout starts again
    assert env.reconciler().reconcile().results[0].in_progress


@pytest.mark.parametrize("deploy_env", [("aws", "endpoint")], ids=["aws-endpoint"], indirect=True)
def test_a_healthy_endpoint_canary_is_sagemakers_update_and_completes_through_the_engines_steps(monkeypatch,
                                                                                                 deploy_env):
    from deploy.endpoint.aws_guardrails import deployment_config
    from deploy.engine.traffic import Shift, TrafficPolicy

    env = deploy_env
    alarm = f"{env.group}-endpoint-5xx"
    aws_client("cloudwatch", env.moto_url).put_metric_alarm(
        AlarmName=alarm, Namespace="AWS/SageMaker", MetricName="Invocation5XXErrors", Statistic="Sum", Period=60,
        EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold")
    # steps of 0 s: every reconcile moves the engine on, SageMaker's update settles within a few DescribeEndpoints
    for name, value in (("TRAFFIC", "canary"), ("CANARY_PERCENT", "20"), ("STEP_WAIT_SECONDS", "0"),
                        ("BAKE_SECONDS", "0"), ("ALARMS", alarm)):
        monkeypatch.setenv(f"GREENLIGHT_ENDPOINT_{name}", value)
    FAKE.rollout_polls = 2
    v1, v2 = env.register(), env.register(model="b")
    env.approve(v1)
    assert env.reconciler().reconcile().results[0].ok and env.served_version() == v1
    env.approve(v2)
    results = []
    for _ in range(6):  # a bound on reconciles, not a timing
        [result] = env.reconciler().reconcile().results
        results.append(result)
        if not result.in_progress:
            break
    assert results[-1].ok and "canary rollout complete" in results[-1].message, [r.message for r in results]
    assert results[0].rollout["phase"] == "shifting" and "blue/green canary 20% -> 100%" in results[0].message
    assert FAKE.deployments == [deployment_config(TrafficPolicy(Shift.CANARY, canary_percent=20, step_wait_seconds=0,
                                                                bake_seconds=0, alarms=(alarm,)))]
    assert FAKE.updates == 1 and env.served_version() == v2
    observed = env.target.observe()
    assert (observed.version, observed.active) == (v2, True)
