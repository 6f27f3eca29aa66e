"""The Lambda alias's weights, its versions' metrics and alarms (deploy.function.aws_traffic) on moto's HTTP server.

moto keeps an alias's RoutingConfig (GetAlias returns it) and CloudWatch's metric data; it lacks percentiles in
GetMetricData, which tests/support/moto_cloudwatch.py adds (nearest rank). The metrics Lambda would publish are
put here for each ExecutedVersion, as Lambda does for the versions behind a weighted alias. Every UpdateAlias and
GetMetricData request the code sends is also checked against botocore's shapes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from deploy.engine.traffic import VersionTraffic
from deploy.function.aws_traffic import AliasTraffic, routing
from greenlight.errors import ConfigurationError, DeploymentFailed
from tests.contract.conftest import aws_client
from tests.support.aws_shapes import assert_valid

FUNCTION, ALIAS = "churn", "live"
ROLE = "arn:aws:iam::123456789012:role/churn-inference"
NOW = 1_796_000_400.0  # a whole minute (epoch seconds); metric data is put relative to it


class World:
    def __init__(self, url: str):
        self.lam, self.cloudwatch = aws_client("lambda", url), aws_client("cloudwatch", url)
        self.requests: list[tuple[str, dict]] = []
        for client, service in ((self.lam, "lambda"), (self.cloudwatch, "cloudwatch")):
            client.meta.events.register(f"provide-client-params.{service}.*", self._record)
        aws_client("iam", url).create_role(RoleName="churn-inference", AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                    "Principal": {"Service": "lambda.amazonaws.com"}}]}))
        self.lam.create_function(FunctionName=FUNCTION, Role=ROLE, PackageType="Image",
                                 Code={"ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/churn:base"})
        self.versions = []
        for model in (1, 2):  # two models: two configurations, so PublishVersion makes two versions
            self.lam.update_function_configuration(FunctionName=FUNCTION, Description=f"model v{model}")
            self.versions.append(self.lam.publish_version(FunctionName=FUNCTION)["Version"])
        assert len(set(self.versions)) == 2
        self.lam.create_alias(FunctionName=FUNCTION, Name=ALIAS, FunctionVersion=self.versions[0])
        self.traffic = AliasTraffic(self.lam, self.cloudwatch, FUNCTION, ALIAS, clock=lambda: NOW)

    def _record(self, params, model, **_):
        self.requests.append((model.name, dict(params)))

    def sent(self, operation: str) -> list[dict]:
        return [p for name, p in self.requests if name == operation]

    def invocations(self, version: str, durations: list[float], errors: int, at: float = NOW - 30) -> None:
        """What Lambda publishes for `len(durations)` invocations of `version` through the alias."""
        dimensions = [{"Name": "FunctionName", "Value": FUNCTION}, {"Name": "Resource", "Value": f"{FUNCTION}:{ALIAS}"},
                      {"Name": "ExecutedVersion", "Value": version}]
        stamp = datetime.fromtimestamp(at, UTC)
        data = [{"MetricName": "Invocations", "Dimensions": dimensions, "Timestamp": stamp, "Value": 1.0}
                for _ in durations]
        data += [{"MetricName": "Errors", "Dimensions": dimensions, "Timestamp": stamp, "Value": float(i < errors)}
                 for i in range(len(durations))]
        data += [{"MetricName": "Duration", "Dimensions": dimensions, "Timestamp": stamp, "Value": d,
                  "Unit": "Milliseconds"} for d in durations]
        for start in range(0, len(data), 500):
            self.cloudwatch.put_metric_data(Namespace="AWS/Lambda", MetricData=data[start:start + 500])


@pytest.fixture
def world(moto_endpoint) -> World:
    return World(moto_endpoint)


def test_a_shift_sets_the_alias_weights_within_lambdas_range_and_is_idempotent(world):
    old, new = world.versions
    message = world.traffic.shift(new, old, 20, "greenlight: canary")
    assert message == f"alias live: version {new} 20%, version {old} 80%"
    alias = world.lam.get_alias(FunctionName=FUNCTION, Name=ALIAS)
    assert alias["FunctionVersion"] == old and alias["RoutingConfig"] == {"AdditionalVersionWeights": {new: 0.2}}
    assert world.traffic.weights() == {old: 80.0, new: 20.0}
    assert world.traffic.shift(new, old, 20, "greenlight: canary") == "", "the same shift again changed the alias"
    world.traffic.shift(new, old, 60, "greenlight: linear")
    assert world.traffic.weights() == {old: 40.0, new: 60.0}
    [first, second] = world.sent("UpdateAlias")
    for request in (first, second):
        assert_valid("lambda", "UpdateAlias", request)


@pytest.mark.parametrize("percent", [0, 100, 120, -5])
def test_a_weight_lambda_cannot_route_is_refused_before_any_call(percent):
    with pytest.raises(DeploymentFailed, match="between 0% and 100%"):
        routing("2", percent)


def test_the_shape_check_catches_a_weight_out_of_lambdas_range():
    # a fault planted by hand: a percent sent where Lambda takes a fraction
    request = {"FunctionName": FUNCTION, "Name": ALIAS, "FunctionVersion": "1",
               "RoutingConfig": {"AdditionalVersionWeights": {"2": 20.0}}}
    with pytest.raises(AssertionError, match="above 1.0"):
        assert_valid("lambda", "UpdateAlias", request)


def test_a_versions_traffic_is_read_from_cloudwatch_by_executed_version(world):
    old, new = world.versions
    world.invocations(new, [20.0] * 95 + [400.0] * 5, errors=7)  # p99 400 ms, 7 function errors
    world.invocations(old, [10.0] * 300, errors=0)
    world.invocations(new, [9999.0] * 3, errors=3, at=NOW - 600)  # before the step began: not counted

    seen = world.traffic.traffic(new, since=NOW - 120)
    assert seen == VersionTraffic(requests=100, errors_5xx=7, p99_ms=400.0)
    assert world.traffic.traffic(old, since=NOW - 120) == VersionTraffic(300, 0, 10.0)
    assert world.traffic.traffic("7", since=NOW - 120) == VersionTraffic(0, 0, None)  # nothing ran it
    [request, *_] = world.sent("GetMetricData")
    assert_valid("cloudwatch", "GetMetricData", request)
    dimensions = request["MetricDataQueries"][0]["MetricStat"]["Metric"]["Dimensions"]
    assert {d["Name"]: d["Value"] for d in dimensions} == {"FunctionName": FUNCTION, "Resource": "churn:live",
                                                           "ExecutedVersion": new}
    assert request["MetricDataQueries"][0]["MetricStat"]["Period"] % 60 == 0


def test_the_named_alarms_in_alarm_are_reported_with_their_reason_and_an_unknown_one_is_a_configuration_error(world):
    for name in ("churn-lambda-errors", "churn-lambda-latency"):
        world.cloudwatch.put_metric_alarm(AlarmName=name, Namespace="AWS/Lambda", MetricName="Errors", Statistic="Sum",
                                          Period=60, EvaluationPeriods=1, Threshold=1,
                                          ComparisonOperator="GreaterThanThreshold")
    assert world.traffic.alarming(["churn-lambda-errors", "churn-lambda-latency"]) == []
    world.cloudwatch.set_alarm_state(AlarmName="churn-lambda-latency", StateValue="ALARM",
                                     StateReason="p99 812 ms > 500 ms")
    assert world.traffic.alarming(["churn-lambda-errors", "churn-lambda-latency"]) == [
        "churn-lambda-latency (p99 812 ms > 500 ms)"]
    with pytest.raises(ConfigurationError, match="no CloudWatch alarm named churn-typo"):
        world.traffic.alarming(["churn-lambda-errors", "churn-typo"])
    assert_valid("cloudwatch", "DescribeAlarms", world.sent("DescribeAlarms")[0])


# -- the Lambda target's TrafficTarget primitives (deploy.function.aws), on a function with real images ----------


@pytest.fixture
def lambda_world(moto_endpoint, lambda_registry, tmp_path):
    from tests.support.lambda_world import LambdaAwsWorld

    w = LambdaAwsWorld(moto_endpoint, lambda_registry.url, tmp_path)
    w.cloudwatch = aws_client("cloudwatch", moto_endpoint)
    try:
        yield w
    finally:
        w.close()


def _staged_v2(lambda_world, models, tmp_path, **settings):
    from tests.contract.test_lambda_aws import release, smoke
    from tests.support.deploy_env import deploy

    target = lambda_world.target(cloudwatch_client=lambda_world.cloudwatch, wall=lambda: NOW, **settings)
    deploy(target, release(lambda_world, models, 1), smoke(models))
    v2 = release(lambda_world, models, 2, "b")
    (tmp_path / "scratch").mkdir()
    staged = target.stage(v2, target.fetch(v2, tmp_path / "scratch"))
    target.probe(staged, smoke(models, "b"))
    return target, staged


def _put(cloudwatch, function: str, version: str, count: int, errors: int, duration: float) -> None:
    dimensions = [{"Name": "FunctionName", "Value": function}, {"Name": "Resource", "Value": f"{function}:live"},
                  {"Name": "ExecutedVersion", "Value": version}]
    stamp = datetime.fromtimestamp(NOW - 30, UTC)
    data = [{"MetricName": m, "Dimensions": dimensions, "Timestamp": stamp, "Value": v}
            for i in range(count) for m, v in (("Invocations", 1.0), ("Errors", float(i < errors)),
                                               ("Duration", duration))]
    for start in range(0, len(data), 500):
        cloudwatch.put_metric_data(Namespace="AWS/Lambda", MetricData=data[start:start + 500])


def test_the_lambda_target_shifts_its_alias_reads_the_new_versions_traffic_and_unstage_ends_the_split(
        lambda_world, models, tmp_path):
    target, staged = _staged_v2(lambda_world, models, tmp_path)
    old, new = staged.ref["alias_before"], staged.ref["number"]
    assert target.shift(staged, 1, 20) == f"alias live: version {new} 20%, version {old} 80%"
    observed = target.observe()
    assert observed.version == 1 and observed.detail["split"] == {new: 20.0}
    _put(lambda_world.cloudwatch, lambda_world.function, new, 40, errors=12, duration=35.0)
    _put(lambda_world.cloudwatch, lambda_world.function, old, 160, errors=0, duration=20.0)
    assert target.traffic(2, NOW - 60) == VersionTraffic(40, 12, 35.0)
    assert target.traffic(1, NOW - 60) == VersionTraffic(160, 0, 20.0)
    target.unstage(staged)
    alias = lambda_world.lam.get_alias(FunctionName=lambda_world.function, Name="live")
    assert alias["FunctionVersion"] == old and not (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights")


def test_a_named_alarm_in_alarm_makes_traffic_fail_with_its_reason_and_switch_ends_the_split(
        lambda_world, models, tmp_path):
    alarms = ("scenario-models-lambda-errors",)
    lambda_world.cloudwatch.put_metric_alarm(
        AlarmName=alarms[0], Namespace="AWS/Lambda", MetricName="Errors", Statistic="Sum", Period=60,
        EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold")
    target, staged = _staged_v2(lambda_world, models, tmp_path, alarms=alarms)
    target.shift(staged, 1, 10)
    assert target.traffic(2, NOW - 60) == VersionTraffic(0, 0, None)
    lambda_world.cloudwatch.set_alarm_state(AlarmName=alarms[0], StateValue="ALARM", StateReason="3 errors > 1")
    with pytest.raises(DeploymentFailed, match=r"alarm scenario-models-lambda-errors \(3 errors > 1\) in ALARM"):
        target.traffic(2, NOW - 60)
    target.switch(staged)  # (had the rollout gone on) the staged version takes 100%
    alias = lambda_world.lam.get_alias(FunctionName=lambda_world.function, Name="live")
    assert alias["FunctionVersion"] == staged.ref["number"]
    assert not (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights")
