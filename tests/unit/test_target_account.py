"""deploy/target-account.yaml's stage Lambda and batch schedule (issue 21, docs/decisions/0056 and 0059): evaluated
as CloudFormation would (tests/support/cfn_eval.py) for a stage key, its names are the ones the engine derives
through deploy/names.py, and what it creates follows its switches (Lambda, then LambdaBaseImageTag; Batch); the
deploy stack leaves a stage with role_arn out of its own Lambda and batch loops."""

from __future__ import annotations

import pytest

from deploy.config import load_config
from deploy.names import ECR_REPOSITORY, IAM_ROLE, LAMBDA_FUNCTION, GroupNames
from deploy.stack_parameters import template_parameters
from tests.support.templates import TARGET_ACCOUNT, load

LAMBDA_RESOURCES = {"InferenceLogGroup", "InferenceRole", "InferenceFunction", "InferenceFirstVersion",
                    "InferenceAlias", "InferenceUrl", "LambdaErrorsAlarm"}


def target_stack(group: str = "churn", stage: str = "production", **overrides: str):
    from tests.support.cfn_eval import evaluate

    key = GroupNames(group).stage(stage)
    parameters = {"StageKey": key, "StageKeyLowerCase": key.lower(), "ArtifactBucket": "bucket",
                  "HandlerRoleArn": "arn:aws:iam::111111111111:role/churn-approval", "Group": group, "Stage": stage,
                  **overrides}
    return evaluate(load(TARGET_ACCOUNT), parameters, stack_name=f"greenlight-{key}")


def test_without_the_lambda_parameter_the_stack_has_the_roles_only():
    assert set(target_stack().resources) == {"DeployRole", "ExecutionRole"}


def test_with_lambda_and_no_base_image_the_stack_has_the_repository_and_the_handlers_statements_only():
    """Phase one: the repository the handler copies the base image into, and its statements; no function yet (a
    function needs an image in its repository when it is created)."""
    assert set(target_stack(Lambda="true").resources) == {"DeployRole", "ExecutionRole", "Repository",
                                                          "DeployRoleLambdaPolicy", "DeployRoleCapturePolicy"}


@pytest.mark.parametrize("group", ["Churn-Models", "g" * 36])
def test_with_the_base_image_every_name_is_the_engines(group):
    """GIVEN Lambda=true and a base image tag THEN the function, repository, role, log group and alarms carry the
    names greenlight/stage_composition.py derives for the stage's key (GroupNames(<key>)), each within its API's
    rule."""
    stack = target_stack(group, Lambda="true", LambdaBaseImageTag="base-1", LambdaMaxP99Ms="250")
    key = GroupNames(GroupNames(group).stage("production"))
    r = stack.resources
    assert set(r) == {"DeployRole", "ExecutionRole", "Repository", "DeployRoleLambdaPolicy", "LambdaLatencyAlarm",
                      "DeployRoleCapturePolicy", *LAMBDA_RESOURCES}
    assert r["InferenceFunction"].name == key.function and LAMBDA_FUNCTION.accepts(key.function)
    assert r["Repository"].name == key.repository and ECR_REPOSITORY.accepts(key.repository)
    assert r["InferenceRole"].name == key.role("inference") and IAM_ROLE.accepts(r["InferenceRole"].name)
    assert r["InferenceLogGroup"].name == GroupNames(group).log_group("production/inference")
    assert r["LambdaErrorsAlarm"].name == key.alarm("lambda-errors")
    assert r["LambdaLatencyAlarm"].name == key.alarm("lambda-latency")
    assert r["InferenceFunction"].properties["Code"]["ImageUri"].endswith(f"/{key.repository}:base-1")
    assert r["InferenceAlias"].properties["Name"] == "live" and r["InferenceUrl"].properties["AuthType"] == "AWS_IAM"
    [logs] = r["InferenceRole"].properties["Policies"][0]["PolicyDocument"]["Statement"]
    assert logs["Resource"] == stack.arn("InferenceLogGroup") + ":*"  # its log group only (GetAtt Arn ends :*)
    # the handler's statements name exactly this function and this repository
    statements = {s["Sid"]: s for s in r["DeployRoleLambdaPolicy"].properties["PolicyDocument"]["Statement"]}
    function = stack.arn("InferenceFunction")
    assert statements["StageLambdaTarget"]["Resource"] == [function, f"{function}:*"]
    assert statements["PushModelImages"]["Resource"] == stack.arn("Repository")
    assert r["DeployRoleLambdaPolicy"].properties["RoleName"] == r["DeployRole"].name == key.role("deploy")


def test_with_monitor_role_arn_the_stack_adds_the_capture_reader_and_its_lambda_policy_with_lambda_only():
    """decision 0060: read-only, for the deploy stack's drift monitor (tests/unit/test_capture_reader.py)"""
    monitor = "arn:aws:iam::111111111111:role/greenlight/churn/churn-drift-monitor"
    assert set(target_stack(MonitorRoleArn=monitor).resources) == {"DeployRole", "ExecutionRole", "CaptureReaderRole"}
    assert {"CaptureReaderRole", "CaptureReaderLambdaPolicy"} <= set(
        target_stack(Lambda="true", MonitorRoleArn=monitor).resources)


def test_the_deploy_stack_leaves_a_stage_in_another_account_out_of_its_lambda_loop():
    """A stage with role_arn has its Lambda in that account: LambdaStages and StageNames do not name it."""
    environ = {"GREENLIGHT_STAGES": "staging,production", "GREENLIGHT_STAGES_STAGING_GATE": "approval",
               "GREENLIGHT_STAGES_PRODUCTION_GATE": "promotion", "GREENLIGHT_STAGES_STAGING_LAMBDA": "true",
               "GREENLIGHT_STAGES_PRODUCTION_LAMBDA": "true"}
    same = template_parameters(load_config(environ=environ, group="churn"))
    assert same["LambdaStages"] == "staging,production" and "production.role=" in same["StageNames"]
    other = template_parameters(load_config(environ={
        **environ, "GREENLIGHT_STAGES_PRODUCTION_ROLE_ARN": "arn:aws:iam::222222222222:role/churn-production-deploy"},
        group="churn"))
    assert other["LambdaStages"] == "staging" and "production.role=" not in other["StageNames"]


# -- the stage's batch schedule (Batch=true; decision 0059) -----------------------------------------------------

BATCH_RESOURCES = {"BatchDeadLetterQueue", "SchedulerRole", "ExecutionRoleBatchPolicy", "DeployRoleBatchPolicy"}


def batch_stack(group: str = "churn", **overrides: str):
    key = GroupNames(group).stage("production")
    return target_stack(group, Batch="true", BatchJobNamePrefix=GroupNames(key).job_prefix,
                        BatchInput="s3://churn-data-222/batch/input/", BatchOutput="s3://churn-data-222/batch/output/",
                        **overrides)


def test_with_batch_the_stack_has_the_schedules_roles_queue_and_statements_only():
    assert set(batch_stack().resources) == {"DeployRole", "ExecutionRole", *BATCH_RESOURCES}
    assert set(batch_stack(Lambda="true").resources) == {"DeployRole", "ExecutionRole", "Repository",
                                                         "DeployRoleLambdaPolicy", "DeployRoleCapturePolicy",
                                                         *BATCH_RESOURCES}


@pytest.mark.parametrize("group", ["Churn-Models", "g" * 36])
def test_with_batch_every_name_is_the_engines(group):
    """GIVEN Batch=true with the job prefix the handler's refusal names THEN the schedule, job prefix, Models,
    scheduler role and queue the statements name are the ones the engine derives for the stage's key (the batch
    target's names_for(<key>), GroupResources' Model names), each within its API's rule."""
    from deploy.batch.config import BatchConfig
    from deploy.names import SQS_QUEUE

    stack = batch_stack(group)
    key = GroupNames(GroupNames(group).stage("production"))
    named = BatchConfig().names_for(key.group)
    r = stack.resources
    assert r["SchedulerRole"].name == key.role("scheduler") and IAM_ROLE.accepts(r["SchedulerRole"].name)
    assert r["BatchDeadLetterQueue"].name == key.queue("batch") and SQS_QUEUE.accepts(r["BatchDeadLetterQueue"].name)
    deploy = {s["Sid"]: s for s in r["DeployRoleBatchPolicy"].properties["PolicyDocument"]["Statement"]}
    arn = "arn:aws:sagemaker:us-east-1:123456789012"
    assert deploy["StageBatchSchedule"]["Resource"] == (
        f"arn:aws:scheduler:us-east-1:123456789012:schedule/default/{named.schedule_name}")
    assert deploy["StartStageSmokeJobs"]["Resource"] == f"{arn}:transform-job/{named.job_name_prefix}-smoke-v*"
    assert deploy["StartStageSmokeJobs"]["Condition"]["ArnLike"]["sagemaker:ModelArn"] == (
        f"{arn}:model/{key.arn_name}-v*")
    assert deploy["SchedulesRunAsTheSchedulerRole"]["Resource"] == stack.arn("SchedulerRole")
    assert deploy["StageSmokeJobData"]["Resource"] == (
        f"arn:aws:s3:::churn-data-222/batch/output/{named.job_name_prefix}-smoke-v*")
    [jobs, dead] = r["SchedulerRole"].properties["Policies"][0]["PolicyDocument"]["Statement"]
    assert jobs["Resource"] == f"{arn}:transform-job/{named.job_name_prefix}-*"
    assert dead["Resource"] == stack.arn("BatchDeadLetterQueue")
    data = {s["Sid"]: s for s in r["ExecutionRoleBatchPolicy"].properties["PolicyDocument"]["Statement"]}
    assert data["WriteStageBatchOutput"]["Resource"] == "arn:aws:s3:::churn-data-222/batch/output/*"
    assert data["ListStageBatchInput"]["Resource"] == ["arn:aws:s3:::churn-data-222"] * 2
    assert r["ExecutionRoleBatchPolicy"].properties["RoleName"] == r["ExecutionRole"].name


def test_the_deploy_stack_leaves_a_stage_in_another_account_out_of_its_batch_loop():
    """A stage with role_arn has its schedule in that account: BatchStages and StageNames do not name it."""
    environ = {"GREENLIGHT_STAGES": "staging,production", "GREENLIGHT_STAGES_STAGING_GATE": "approval",
               "GREENLIGHT_STAGES_PRODUCTION_GATE": "promotion", "GREENLIGHT_BATCH_ENABLED": "true"}
    same = template_parameters(load_config(environ=environ, group="churn"))
    assert same["BatchStages"] == "staging,production" and "production.schedule=" in same["StageNames"]
    other = template_parameters(load_config(environ={
        **environ, "GREENLIGHT_STAGES_PRODUCTION_ROLE_ARN": "arn:aws:iam::222222222222:role/churn-production-deploy"},
        group="churn"))
    assert other["BatchStages"] == "staging" and "production." not in other["StageNames"]


def test_a_stages_batch_settings_override_the_groups_for_that_stage_only():
    """[stages.<name>] batch_role_arn, batch_dead_letter_arn, batch_input and batch_output (target-account.yaml's
    outputs and parameters) replace the [batch] fields of that stage; each is checked by [batch]'s own rule."""
    from greenlight.errors import ConfigurationError

    environ = {"GREENLIGHT_STAGES": "staging,production", "GREENLIGHT_STAGES_STAGING_GATE": "approval",
               "GREENLIGHT_STAGES_PRODUCTION_GATE": "promotion",
               "GREENLIGHT_STAGES_PRODUCTION_BATCH_ROLE_ARN": "arn:aws:iam::222222222222:role/p-scheduler",
               "GREENLIGHT_STAGES_PRODUCTION_BATCH_INPUT": "s3://data-222/in/"}
    staging, production = load_config(environ=environ, group="churn").stage_list()
    assert staging.batch_overrides == ()
    assert production.batch_overrides == (("role_arn", "arn:aws:iam::222222222222:role/p-scheduler"),
                                          ("input", "s3://data-222/in/"))
    with pytest.raises(ConfigurationError, match="GREENLIGHT_STAGES_PRODUCTION_BATCH_DEAD_LETTER_ARN.*not an SQS"):
        load_config(environ={**environ, "GREENLIGHT_STAGES_PRODUCTION_BATCH_DEAD_LETTER_ARN": "queue"}, group="churn")
