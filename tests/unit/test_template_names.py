"""The names the templates build are deploy/names.py's, within every limit, for the longest groups they take.

Both templates are evaluated (tests/support/cfn_eval.py) for 48-character groups, mixed case included, and
for the group of a SageMaker Project with the longest name: each resource's name is the one deploy/names.py
derives for the group (so the engine and the stacks agree), and fits its API's rule (RoleName and
FunctionName at most 64). The deploy stack has the periodic resync: a schedule (ResyncExpression, default
rate(10 minutes)) whose event the approval handler acts on.
"""

from __future__ import annotations

import json

import pytest

from deploy import names as N
from deploy.config import load_config
from deploy.engine.events import why_ignored
from deploy.handler import handle
from deploy.names import GroupNames, project_group
from deploy.stack_parameters import template_parameters
from tests.support.cfn_eval import ACCOUNT, REGION, evaluate
from tests.support.templates import PROJECT, TEMPLATE, load

GROUPS = ["m" * 48, "Churn-Prediction-Models-" + "X" * 24, project_group("P" * 32, "p-abcdefghijkl"),
          "churn-prediction-models-p-abcdefghijkl", "ab"]


def deploy_stack(group: str, **overrides: str):
    parameters = {**template_parameters(load_config(environ={}, group=group)), "HandlerS3Bucket": "bucket-a",
                  "HandlerS3Key": "h.zip", "ArtifactBucket": "bucket-a", "LambdaBaseImageTag": "base-1",
                  "PromotionStages": "production",
                  "EndpointMaxP99Ms": "1000", "LambdaMaxP99Ms": "1000",  # with them, the latency alarms exist too
                  **overrides}
    return evaluate(load(TEMPLATE), parameters, stack_name=GroupNames(group).stacks[1])


def expected_deploy_names(names: GroupNames) -> dict[str, tuple[N.NameRule, str]]:
    return {
        "StateTable": (N.DYNAMODB_TABLE, names.state_table),
        "DeadLetterQueue": (N.SQS_QUEUE, names.queue("approval")),
        "BatchDeadLetterQueue": (N.SQS_QUEUE, names.queue("batch")),
        "ApprovalRule": (N.EVENTS_RULE, names.approval_rule),
        "ApprovalHandlerLogGroup": (N.LOG_GROUP, names.log_group("approval-handler")),
        "InferenceLogGroup": (N.LOG_GROUP, names.log_group("inference")),
        "ApprovalHandlerRole": (N.IAM_ROLE, names.role("approval")),
        "SageMakerExecutionRole": (N.IAM_ROLE, names.role("sagemaker")),
        "SchedulerRole": (N.IAM_ROLE, names.role("scheduler")),
        "InferenceRole": (N.IAM_ROLE, names.role("inference")),
        "ResyncRole": (N.IAM_ROLE, names.role("resync")),
        "PromoterRole": (N.IAM_ROLE, names.role("promoter")),
        "ApprovalHandler": (N.LAMBDA_FUNCTION, names.handler_function),
        "InferenceFunction": (N.LAMBDA_FUNCTION, names.function),
        "ResyncSchedule": (N.SCHEDULE, names.resync_schedule),
        "Repository": (N.ECR_REPOSITORY, names.repository),
        "ApprovalHandlerErrorsAlarm": (N.ALARM, names.alarm("approval-handler-errors")),
        "DeadLetterQueueAlarm": (N.ALARM, names.alarm("approval-dlq-not-empty")),
        "BatchDeadLetterQueueAlarm": (N.ALARM, names.alarm("batch-dlq-not-empty")),
        "MonitorLogGroup": (N.LOG_GROUP, names.log_group("drift-monitor")),
        "MonitorRole": (N.IAM_ROLE, names.role("drift-monitor")),
        "MonitorSchedulerRole": (N.IAM_ROLE, names.role("drift-sched")),
        "MonitorFunction": (N.LAMBDA_FUNCTION, names.monitor_function),
        "MonitorScheduleRule": (N.SCHEDULE, names.monitor_schedule),
        "DriftAlarm": (N.ALARM, names.alarm("drift")),
        "EndpointErrorsAlarm": (N.ALARM, names.alarm("endpoint-5xx")),
        "EndpointLatencyAlarm": (N.ALARM, names.alarm("endpoint-latency")),
        "LambdaErrorsAlarm": (N.ALARM, names.alarm("lambda-errors")),
        "LambdaLatencyAlarm": (N.ALARM, names.alarm("lambda-latency")),
    }


@pytest.mark.parametrize("group", GROUPS)
def test_the_deploy_stack_names_are_names_py_and_fit(group):
    stack, names = deploy_stack(group), GroupNames(group)
    named = {k: r for k, r in stack.resources.items() if r.name and not r.name.endswith("-generated")}
    expected = expected_deploy_names(names)
    assert set(named) == set(expected), set(named) ^ set(expected)
    for logical_id, (rule, name) in expected.items():
        assert stack.resources[logical_id].name == name and rule.accepts(name), (logical_id, name)
    for role in (r for r in stack.resources.values() if r.type == "AWS::IAM::Role"):
        assert len(role.name) <= 64 and role.properties["Path"] == names.role_path
    stack_env = stack.resources["ApprovalHandler"].properties["Environment"]["Variables"]
    assert stack_env["GREENLIGHT_BATCH_JOB_NAME_PREFIX"] == names.job_prefix
    assert stack_env["GREENLIGHT_LAMBDA_ECR_REPOSITORY"] == names.repository
    # the handler, configured by the stack, names the schedule as the stack's policies do (<Group>-batch)
    config = load_config(environ={k: v for k, v in stack_env.items() if k.startswith("GREENLIGHT_")})
    assert config.batch.names_for(group).schedule_name == names.batch_schedule == f"{group}-batch"
    # the rollback alarms the stack creates reach the handler beside the user's (issue 22)
    assert config.endpoint.alarms == (names.alarm("endpoint-5xx"), names.alarm("endpoint-latency"))
    assert config.lambda_.alarms == (names.alarm("lambda-errors"), names.alarm("lambda-latency"))


def test_the_handler_gets_the_stacks_rollback_alarms_with_the_users_and_no_empty_name():
    # GIVEN no p99 limit (no latency alarm) and one alarm of the user's on each target
    stack = deploy_stack("churn", EndpointMaxP99Ms="", LambdaMaxP99Ms="", EndpointAlarms="mine-a",
                         LambdaAlarms="mine-b")
    stack_env = stack.resources["ApprovalHandler"].properties["Environment"]["Variables"]
    config = load_config(environ={k: v for k, v in stack_env.items() if k.startswith("GREENLIGHT_")})
    assert config.endpoint.alarms == ("churn-endpoint-5xx", "mine-a")
    assert config.lambda_.alarms == ("churn-lambda-errors", "mine-b")
    assert "EndpointLatencyAlarm" not in stack.resources and "LambdaLatencyAlarm" not in stack.resources
    # and the thresholds are the engine's own rules (one knob, one meaning)
    alarm = deploy_stack("churn", EndpointMax5xxPercent="2.5").resources["EndpointErrorsAlarm"]
    assert alarm.properties["Threshold"] == "2.5"


@pytest.mark.parametrize("group", GROUPS[:3])
def test_the_project_stack_names_are_names_py_and_fit(group):
    stack = evaluate(load(PROJECT), {"Group": group, "GroupLowerCase": group.lower(), "CreatePipeline": "true",
                                     "SageMakerProjectName": "p", "SageMakerProjectId": "p-abcdefghijkl"})
    names = GroupNames(group)
    roles = {r.name for r in stack.resources.values() if r.type == "AWS::IAM::Role"}
    assert roles == {names.role(k) for k in ("pipeline", "model-build", "image-build", "deploy-stack",
                                             "codepipeline", "seed")}
    assert all(N.IAM_ROLE.accepts(r) for r in roles)
    assert stack.resources["ModelBuild"].name == names.codebuild("model-build")
    assert stack.resources["ImageBuild"].name == names.codebuild("image-build")
    assert stack.resources["Pipeline"].name == names.codepipeline
    assert stack.resources["SeedFunction"].name == f"{group}-seed" and len(f"{group}-seed") <= 64
    assert stack.resources["DeployStackBoundary"].name == names.boundary_policy


def test_the_resync_schedule_invokes_the_handler_every_ten_minutes_by_default():
    template = load(TEMPLATE)
    assert template["Parameters"]["ResyncExpression"]["Default"] == "rate(10 minutes)"
    stack = deploy_stack("churn-models")
    schedule = stack.resources["ResyncSchedule"].properties
    assert schedule["ScheduleExpression"] == "rate(10 minutes)" and schedule["State"] == "ENABLED"
    assert schedule["Target"]["Arn"] == stack.arn("ApprovalHandler")
    assert schedule["Target"]["RoleArn"] == stack.arn("ResyncRole")
    assert deploy_stack("churn-models", ResyncExpression="rate(1 hour)").resources["ResyncSchedule"].properties[
        "ScheduleExpression"] == "rate(1 hour)"


def resync_event(stack) -> dict:
    text = stack.resources["ResyncSchedule"].properties["Target"]["Input"]
    for attribute, value in (("execution-id", "d32c5kddcf5bb8c3"), ("scheduled-time", "2026-12-04T10:00:00Z"),
                             ("schedule-arn", "arn:aws:scheduler:us-east-1:123456789012:schedule/default/x")):
        text = text.replace(f"<aws.scheduler.{attribute}>", value)  # EventBridge Scheduler's context attributes
    return json.loads(text)


class _Reconciler:
    group = "churn-models"

    def __init__(self):
        self.triggers, self.causes = [], []

    def reconcile(self, trigger, cause=None, deadline=None):
        self.triggers.append(trigger)
        self.causes.append(cause)

        class Report:
            ok = True

            @staticmethod
            def to_dict():
                return {}
        return Report()


def test_the_handler_acts_on_the_resync_event_of_its_group_only():
    event = resync_event(deploy_stack("churn-models"))
    assert why_ignored(event, group="churn-models", account=ACCOUNT, region=REGION) is None
    reconciler = _Reconciler()
    result = handle(event, reconciler, account=ACCOUNT, region=REGION)
    assert result["status"] == "reconciled" and reconciler.triggers == ["resync d32c5kddcf5bb8c3 of churn-models"]
    assert reconciler.causes[0].trigger.value == "resync" and reconciler.causes[0].event_id == event["id"]
    assert "not the configured" in why_ignored(event, group="other", account=ACCOUNT, region=REGION)
    assert "account" in why_ignored(event, group="churn-models", account="999999999999", region=REGION)
    forged = {**event, "source": "greenlight.other"}
    assert why_ignored(forged, group="churn-models", account=ACCOUNT, region=REGION).startswith("source is")


def test_the_handler_has_ephemeral_storage_beyond_512_mb():
    handler = deploy_stack("churn-models").resources["ApprovalHandler"].properties
    assert 512 < handler["EphemeralStorage"]["Size"] <= 10240
