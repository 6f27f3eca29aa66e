"""A stage in another account, read by the drift monitor (issues 25 and 21; docs/decisions/0060): the plan names its
endpoint's and its Lambda's log groups there and the capture reader's ARN (deploy/capture_sources.py), and the
stacks, evaluated as CloudFormation would (tests/support/cfn_eval.py) with IAM's rules (tests/support/iam_eval.py),
let exactly that happen: target-account.yaml's `<key>-capture-reader` trusts MonitorRoleArn alone and may read
those log groups alone, its DeployRole reads the Lambda's too, and the deploy stack's MonitorRole may assume
exactly such readers. The reader's checks are a function, so planted violations show each one can fail."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from deploy.capture_sources import capture_plans, reader_arn
from deploy.config import load_config
from deploy.names import IAM_ROLE, GroupNames
from deploy.stack_parameters import template_parameters
from tests.support.cfn_eval import ACCOUNT, evaluate
from tests.support.iam_eval import allowed, statements_of
from tests.support.templates import TARGET_ACCOUNT, TEMPLATE, load

MONITOR = "arn:aws:iam::111111111111:role/greenlight/churn/churn-drift-monitor"  # the deploy stack's MonitorRole
DEPLOYER = f"arn:aws:iam::{ACCOUNT}:role/churn-production-deploy"  # the target stack's DeployRole, its account
THERE = {"GREENLIGHT_STAGES": "staging,production", "GREENLIGHT_STAGES_STAGING_GATE": "approval",
         "GREENLIGHT_STAGES_PRODUCTION_GATE": "promotion", "GREENLIGHT_STAGES_PRODUCTION_LAMBDA": "true",
         "GREENLIGHT_STAGES_PRODUCTION_BATCH": "false", "GREENLIGHT_STAGES_PRODUCTION_ROLE_ARN": DEPLOYER}


def logs_arn(log_group: str, account: str = ACCOUNT) -> str:
    return f"arn:aws:logs:us-east-1:{account}:log-group:{log_group}:*"


def production(environ: dict[str, str] = THERE, group: str = "churn"):
    return capture_plans(load_config(environ=environ, group=group), "production")[0]


def target_stack(template: dict[str, Any] | None = None, group: str = "churn", **overrides: str):
    key = GroupNames(group).stage("production")
    return evaluate(template or load(TARGET_ACCOUNT),
                    {"StageKey": key, "StageKeyLowerCase": key.lower(), "ArtifactBucket": "bucket", "Group": group,
                     "Stage": "production", "HandlerRoleArn": "arn:aws:iam::111111111111:role/churn-approval",
                     **overrides})


def role_statements(stack, role: str):
    """Every statement of `role`'s inline policies and of the RolePolicy resources attached to it."""
    resource = stack.resources[role]
    found = [s for p in resource.properties.get("Policies", []) for s in statements_of(p["PolicyDocument"], role)]
    for r in stack.resources.values():
        if r.type == "AWS::IAM::RolePolicy" and r.properties["RoleName"] == resource.name:
            found += statements_of(r.properties["PolicyDocument"], r.logical_id)
    return found


# -- the plan ----------------------------------------------------------------------------------------------------

def test_a_stage_in_another_account_reads_its_endpoint_and_lambda_there_through_its_capture_reader():
    plan = production()
    assert plan.role_arn == DEPLOYER and plan.not_read == ()
    assert [(s.target, s.log_group, s.stage) for s in plan.sources] == [
        ("endpoint", "/aws/sagemaker/Endpoints/churn-production", "production"),
        ("lambda", "/greenlight/churn/production/inference", "production")]
    assert plan.reader_arn == f"arn:aws:iam::{ACCOUNT}:role/churn-production-capture-reader"
    # its batch jobs log to the account's shared TransformJobs log group, not granted (0059): named, one line
    [note] = production({**THERE, "GREENLIGHT_STAGES_PRODUCTION_BATCH": "true"}).not_read
    assert note.startswith("stage production's batch is not read") and "\n" not in note
    # the stage in this account has no reader
    assert capture_plans(load_config(environ=THERE, group="churn"), "staging")[0].reader_arn is None


def test_the_readers_arn_keeps_the_role_arns_partition_and_account_and_fits_iams_names():
    assert reader_arn("arn:aws-cn:iam::210987654321:role/x/y-deploy", "churn-production") == \
        "arn:aws-cn:iam::210987654321:role/churn-production-capture-reader"
    long_key = GroupNames("g" * 36).stage("production")  # 47 characters, near StageKey's MaxLength of 48
    name = reader_arn(DEPLOYER, long_key).rsplit("/", 1)[1]
    assert name == f"{long_key}-capture-reader" and IAM_ROLE.accepts(name)  # never hashed: the stack's Sub


@pytest.mark.parametrize("group", ["churn", "g" * 36])
def test_the_target_stack_names_the_reader_as_the_monitor_derives_it(group):
    stack = target_stack(group=group, MonitorRoleArn=MONITOR)
    key = GroupNames(group).stage("production")
    assert stack.resources["CaptureReaderRole"].name == reader_arn(DEPLOYER, key).rsplit("/", 1)[1]


# -- target-account.yaml ------------------------------------------------------------------------------------------

def reader_findings(stack, plan) -> list[str]:
    """What is wrong with the stack's capture reader for `plan`: it must trust MonitorRoleArn alone, allow
    logs:FilterLogEvents on each of the plan's log groups, and nothing else (no other action, log group or stage)."""
    found = []
    role = stack.resources["CaptureReaderRole"]
    trust = role.properties["AssumeRolePolicyDocument"]["Statement"]
    if trust != [{"Effect": "Allow", "Principal": {"AWS": MONITOR}, "Action": "sts:AssumeRole"}]:
        found.append(f"the reader trusts {trust}, not the monitor role alone")
    statements = role_statements(stack, "CaptureReaderRole")
    for s in statements:
        if s.actions != ("logs:FilterLogEvents",) or s.effect != "Allow":
            found.append(f"{s.sid}: {s.actions} is more than logs:FilterLogEvents")
    for source in plan.sources:
        if not allowed(statements, "logs:FilterLogEvents", logs_arn(source.log_group)).allowed:
            found.append(f"may not read {source.log_group}")
    for other in ("/aws/sagemaker/Endpoints/churn-staging", "/aws/sagemaker/TransformJobs",
                  "/greenlight/churn/staging/inference", "/greenlight/churn/inference", "/aws/lambda/churn-production",
                  *(() if any(s.target == "lambda" for s in plan.sources)
                    else ("/greenlight/churn/production/inference",))):
        if allowed(statements, "logs:FilterLogEvents", logs_arn(other)).allowed:
            found.append(f"may read {other}, no source of the stage")
    return found


@pytest.mark.parametrize("lambda_", ["true", "false"])
def test_the_capture_reader_trusts_the_monitor_alone_and_reads_the_stages_log_groups_alone(lambda_):
    plan = production({**THERE, "GREENLIGHT_STAGES_PRODUCTION_LAMBDA": lambda_})
    assert reader_findings(target_stack(Lambda=lambda_, MonitorRoleArn=MONITOR), plan) == []


def _reader_resource(template, logical_id: str, sid: str) -> dict:
    props = template["Resources"][logical_id]["Properties"]
    document = props["Policies"][0]["PolicyDocument"] if "Policies" in props else props["PolicyDocument"]
    return next(s for s in document["Statement"] if s.get("Sid") == sid)


PLANTED = [
    ("CaptureReaderRole", "ReadEndpointCapture",
     {"Resource": {"Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:*"}},
     "may read /aws/sagemaker/Endpoints/churn-staging"),
    ("CaptureReaderRole", "ReadEndpointCapture", {"Action": ["logs:FilterLogEvents", "logs:PutLogEvents"]},
     "more than logs:FilterLogEvents"),
    ("CaptureReaderLambdaPolicy", "ReadLambdaCapture",
     {"Resource": {"Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/greenlight/${Group}/*"}},
     "may read /greenlight/churn/staging/inference"),
    ("CaptureReaderLambdaPolicy", "ReadLambdaCapture", {"Resource": {"Fn::Sub": "arn:${AWS::Partition}:logs:x"}},
     "may not read /greenlight/churn/production/inference"),
]


@pytest.mark.parametrize("logical_id, sid, change, words", PLANTED, ids=[f"{p[1]}-{i}" for i, p in enumerate(PLANTED)])
def test_a_planted_violation_in_the_capture_reader_is_caught(logical_id, sid, change, words):
    template = copy.deepcopy(load(TARGET_ACCOUNT))
    _reader_resource(template, logical_id, sid).update(change)
    found = reader_findings(target_stack(template, Lambda="true", MonitorRoleArn=MONITOR), production())
    assert any(words in f for f in found), found


def test_a_planted_wider_trust_in_the_capture_reader_is_caught():
    template = copy.deepcopy(load(TARGET_ACCOUNT))
    trust = template["Resources"]["CaptureReaderRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
    trust["Principal"] = {"AWS": [{"Ref": "MonitorRoleArn"}, {"Ref": "HandlerRoleArn"}]}
    found = reader_findings(target_stack(template, Lambda="true", MonitorRoleArn=MONITOR), production())
    assert any("not the monitor role alone" in f for f in found), found


def test_without_monitor_role_arn_there_is_no_reader_and_the_deploy_roles_trust_is_the_handlers():
    for stack in (target_stack(), target_stack(Lambda="true"), target_stack(Lambda="true", MonitorRoleArn=MONITOR)):
        trust = stack.resources["DeployRole"].properties["AssumeRolePolicyDocument"]["Statement"]
        assert trust == [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111111111111:role/churn-approval"},
                          "Action": "sts:AssumeRole"}]
    assert "CaptureReaderRole" not in target_stack(Lambda="true").resources
    assert "CaptureReaderLambdaPolicy" not in target_stack(MonitorRoleArn=MONITOR).resources


@pytest.mark.parametrize("lambda_", ["true", "false"])
def test_the_deploy_role_reads_the_stages_lambda_capture_with_lambda_only(lambda_):
    """`greenlight monitor --target aws --stage production` reads through the deploy role, as it deploys."""
    statements = role_statements(target_stack(Lambda=lambda_), "DeployRole")
    for source in production({**THERE, "GREENLIGHT_STAGES_PRODUCTION_LAMBDA": lambda_}).sources:
        assert allowed(statements, "logs:FilterLogEvents", logs_arn(source.log_group)).allowed, source
    decision = allowed(statements, "logs:FilterLogEvents", logs_arn("/greenlight/churn/production/inference"))
    assert (decision.allowed, decision.by.endswith("ReadLambdaCapture")) == ((lambda_ == "true"),) * 2
    assert not allowed(statements, "logs:FilterLogEvents", logs_arn("/greenlight/churn/staging/inference")).allowed


# -- the deploy stack ---------------------------------------------------------------------------------------------

def test_the_monitor_role_may_assume_exactly_the_groups_capture_readers_and_names_itself_in_an_output():
    parameters = {**template_parameters(load_config(environ=THERE, group="churn")), "HandlerS3Bucket": "bucket",
                  "HandlerS3Key": "h.zip", "ArtifactBucket": "bucket"}
    stack = evaluate(load(TEMPLATE), parameters)
    statements = role_statements(stack, "MonitorRole")
    decision = allowed(statements, "sts:AssumeRole", str(production().reader_arn))
    assert decision.allowed and decision.by.endswith("AssumeStageCaptureReaders")
    assert allowed(statements, "sts:AssumeRole", "arn:aws:iam::333333333333:role/churn-staging-capture-reader").allowed
    for other in (DEPLOYER, f"arn:aws:iam::{ACCOUNT}:role/other-production-capture-reader",
                  f"arn:aws:iam::{ACCOUNT}:role/churn-production-sagemaker",
                  f"arn:aws:iam::{ACCOUNT}:role/churn-production-capture-reader-x"):
        assert not allowed(statements, "sts:AssumeRole", other).allowed, other
    assert load(TEMPLATE)["Outputs"]["MonitorRoleArn"]["Value"] == {"Fn::GetAtt": ["MonitorRole", "Arn"]}
