"""Which log groups the drift monitor reads with [stages] (issue 25 x issue 21; docs/decisions/0057), and that the
stack lets it read exactly those: deploy/capture_sources.py derives each stage's from deploy/names.py, and the
deploy stack's MonitorRole (its loops) and a stage's deploy role in another account (target-account.yaml's
ReadCapture) are evaluated with IAM's rules against those very names."""

from __future__ import annotations

import pytest

from deploy.capture_sources import capture_plans
from deploy.config import load_config
from deploy.names import GroupNames
from deploy.stack_parameters import template_parameters
from greenlight.errors import ParameterError
from greenlight.monitor.aws import LogSource, log_sources, metric_data
from tests.support.iam_eval import allowed, statements_of
from tests.support.templates import TARGET_ACCOUNT, TEMPLATE, load

STAGES = {"GREENLIGHT_STAGES": "staging,production", "GREENLIGHT_STAGES_STAGING_GATE": "approval",
          "GREENLIGHT_STAGES_PRODUCTION_GATE": "promotion", "GREENLIGHT_STAGES_STAGING_LAMBDA": "true",
          "GREENLIGHT_STAGES_STAGING_BATCH": "true", "GREENLIGHT_STAGES_PRODUCTION_LAMBDA": "false",
          "GREENLIGHT_STAGES_PRODUCTION_BATCH": "false"}
ELSEWHERE = {**STAGES, "GREENLIGHT_STAGES_PRODUCTION_ROLE_ARN": "arn:aws:iam::222222222222:role/p-deploy",
             "GREENLIGHT_STAGES_PRODUCTION_LAMBDA": "true"}
LONG = "churn-prediction-models-p-abcdefghijkl"  # 38 characters: the stages' job prefixes are hashed


def logs_arn(log_group: str, account: str = "123456789012") -> str:
    return f"arn:aws:logs:us-east-1:{account}:log-group:{log_group}:*"


def test_without_stages_the_monitor_reads_todays_three_log_groups():
    config = load_config(environ={}, group="churn")
    [plan] = capture_plans(config)
    assert plan.stage is None and plan.role_arn is None and plan.not_read == ()
    assert list(plan.sources) == log_sources("churn", "churn", "/greenlight/churn/inference", "churn")


@pytest.mark.parametrize("group", ["churn", LONG])
def test_each_stage_reads_its_enabled_targets_named_as_the_engine_names_them(group):
    config = load_config(environ=STAGES, group=group)
    staging, production = capture_plans(config)
    key = GroupNames(GroupNames(group).stage("staging"))
    prefix = config.batch.model_copy(update={"job_name_prefix": None}).names_for(key.group).job_name_prefix
    assert staging.sources == (
        LogSource(f"/aws/sagemaker/Endpoints/{key.endpoint}", "endpoint", None, "staging"),
        LogSource(f"/greenlight/{group}/staging/inference", "lambda", None, "staging"),
        LogSource("/aws/sagemaker/TransformJobs", "batch", f"{prefix}-", "staging"))
    assert (prefix != key.group.lower()) == (group == LONG)  # hashed where too long, as the handler's
    # production has lambda and batch off: its endpoint only, never the Lambda log group it would have
    assert [(s.target, s.log_group) for s in production.sources] == \
        [("endpoint", f"/aws/sagemaker/Endpoints/{group}-production")]
    assert [p.stage for p in capture_plans(config, "production")] == ["production"]


def test_a_stage_in_another_account_reads_its_endpoint_and_lambda_through_its_role():
    """Its Lambda is target-account.yaml's there (0056), read since 0060 (tests/unit/test_capture_reader.py)."""
    _, production = capture_plans(load_config(environ=ELSEWHERE, group="churn"))
    assert production.role_arn == "arn:aws:iam::222222222222:role/p-deploy"
    assert [s.target for s in production.sources] == ["endpoint", "lambda"] and production.not_read == ()


def test_the_stack_lets_the_monitor_read_stage_endpoints_of_this_account_only():
    assert template_parameters(load_config(environ=STAGES, group="churn"))["EndpointStages"] == "staging,production"
    assert template_parameters(load_config(environ=ELSEWHERE, group="churn"))["EndpointStages"] == "staging"
    assert template_parameters(load_config(environ={}, group="churn"))["EndpointStages"] == ""


def test_an_unknown_stage_is_one_line_naming_the_stages():
    with pytest.raises(ParameterError, match=r"no stage 'prod' \(stages: staging, production\)"):
        capture_plans(load_config(environ=STAGES, group="churn"), "prod")


def test_a_stages_metrics_carry_a_stage_dimension_and_the_implicit_stages_do_not():
    assert metric_data("churn", None, 0) == [{"MetricName": "CapturedRows", "Unit": "Count", "Value": 0.0,
                                              "Dimensions": [{"Name": "Group", "Value": "churn"}]}]
    [rows] = metric_data("churn", None, 5, "staging")
    assert rows["Dimensions"] == [{"Name": "Group", "Value": "churn"}, {"Name": "Stage", "Value": "staging"}]


# -- what the stacks let the monitor read ------------------------------------------------------------------------

def _stack(environ: dict[str, str], group: str = "churn", **overrides: str):
    from tests.support.cfn_eval import evaluate

    parameters = {**template_parameters(load_config(environ=environ, group=group)), "HandlerS3Bucket": "bucket",
                  "HandlerS3Key": "h.zip", "ArtifactBucket": "bucket", "LambdaBaseImageTag": "base-1", **overrides}
    return evaluate(load(TEMPLATE), parameters)


def _role_statements(stack, role: str):
    """Every statement of `role`'s inline policies and of the RolePolicy resources attached to it."""
    found = []
    resource = stack.resources[role]
    for policy in resource.properties.get("Policies", []):
        found += statements_of(policy["PolicyDocument"], role)
    for r in stack.resources.values():
        if r.type == "AWS::IAM::RolePolicy" and r.properties["RoleName"] == resource.name:
            found += statements_of(r.properties["PolicyDocument"], r.logical_id)
    return found


@pytest.mark.parametrize("environ", [{}, STAGES], ids=["no stages", "stages"])
@pytest.mark.parametrize("base_image", ["base-1", ""])
def test_the_monitor_role_may_read_every_log_group_the_monitor_reads_and_no_other_stages(environ, base_image):
    """Also before the base image exists (no stage function yet): a stage Lambda's log group that does not exist is
    'nothing captured yet' to the monitor, not a refusal."""
    stack = _stack(environ, LambdaBaseImageTag=base_image)
    statements = _role_statements(stack, "MonitorRole")
    for plan in capture_plans(load_config(environ=environ, group="churn")):
        for source in plan.sources:
            assert allowed(statements, "logs:FilterLogEvents", logs_arn(source.log_group)).allowed, source
    for other in ("/greenlight/churn/production/inference", "/aws/sagemaker/Endpoints/churn-other",
                  "/greenlight/churn-other/inference", "/aws/sagemaker/Endpoints/churn-staging-x"):
        assert not allowed(statements, "logs:FilterLogEvents", logs_arn(other)).allowed, other


def test_the_monitor_function_reads_the_stages_as_the_approval_handler_does():
    template = load(TEMPLATE)
    monitor = template["Resources"]["MonitorFunction"]["Properties"]["Environment"]["Variables"]
    handler = template["Resources"]["ApprovalHandler"]["Properties"]["Environment"]["Variables"]
    for variable in ("GREENLIGHT_STAGES", "GREENLIGHT_ENDPOINT_ENABLED", "GREENLIGHT_LAMBDA_ENABLED",
                     "GREENLIGHT_BATCH_ENABLED"):
        assert monitor[variable] == handler[variable], variable


def test_a_stage_deploy_role_in_another_account_may_read_its_endpoint_capture_only():
    from tests.support.cfn_eval import evaluate

    _, production = capture_plans(load_config(environ=ELSEWHERE, group="churn"))
    key = GroupNames("churn").stage("production")
    stack = evaluate(load(TARGET_ACCOUNT), {"StageKey": key, "StageKeyLowerCase": key.lower(),
                                            "HandlerRoleArn": "arn:aws:iam::123456789012:role/churn-approval",
                                            "ArtifactBucket": "bucket"})
    statements = _role_statements(stack, "DeployRole")
    source = production.sources[0]  # its endpoint (its Lambda's: tests/unit/test_capture_reader.py)
    assert source.target == "endpoint"
    decision = allowed(statements, "logs:FilterLogEvents", logs_arn(source.log_group))
    assert decision.allowed and decision.by.endswith("ReadCapture")
    for other in ("/aws/sagemaker/Endpoints/churn-staging", "/aws/sagemaker/TransformJobs",
                  "/greenlight/churn/production/inference"):
        assert not allowed(statements, "logs:FilterLogEvents", logs_arn(other)).allowed, other
