"""A CloudFormation template evaluated for given parameters, as the service would: conditions decided,
intrinsic functions resolved, each resource's physical name, Ref and ARN (for the permission tests).

    stack = evaluate(load(TEMPLATE), {"Group": "churn", ...})
    stack.resources["ApprovalHandlerRole"].properties["Policies"]
    stack.arn("StateTable")          arn:aws:dynamodb:us-east-1:123456789012:table/churn-greenlight-state

`Fn::ForEach` loops (the AWS::LanguageExtensions transform) are expanded first, for the same parameters
(tests/support/cfn_foreach.py). Names CloudFormation generates (no name property) come out as `<stack>-<logical id>-generated`, in lower
case for buckets. Ref and GetAtt follow the CloudFormation resource reference (what each type returns).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from tests.support.cfn_foreach import expand

__all__ = ["ACCOUNT", "PARTITION", "REGION", "Stack", "StackResource", "evaluate"]

PARTITION, REGION, ACCOUNT = "aws", "us-east-1", "123456789012"
NO_VALUE = object()

# type -> (name property, ARN format with {name}; {p}, {r}, {a} the partition, region and account)
ARNS = {
    "AWS::IAM::Role": ("RoleName", "arn:{p}:iam::{a}:role{path}{name}"),
    "AWS::IAM::ManagedPolicy": ("ManagedPolicyName", "arn:{p}:iam::{a}:policy{path}{name}"),
    "AWS::Lambda::Function": ("FunctionName", "arn:{p}:lambda:{r}:{a}:function:{name}"),
    "AWS::SQS::Queue": ("QueueName", "arn:{p}:sqs:{r}:{a}:{name}"),
    "AWS::DynamoDB::Table": ("TableName", "arn:{p}:dynamodb:{r}:{a}:table/{name}"),
    "AWS::Events::Rule": ("Name", "arn:{p}:events:{r}:{a}:rule/{name}"),
    "AWS::Logs::LogGroup": ("LogGroupName", "arn:{p}:logs:{r}:{a}:log-group:{name}"),
    "AWS::CloudWatch::Alarm": ("AlarmName", "arn:{p}:cloudwatch:{r}:{a}:alarm:{name}"),
    "AWS::ECR::Repository": ("RepositoryName", "arn:{p}:ecr:{r}:{a}:repository/{name}"),
    "AWS::Scheduler::Schedule": ("Name", "arn:{p}:scheduler:{r}:{a}:schedule/default/{name}"),
    "AWS::S3::Bucket": ("BucketName", "arn:{p}:s3:::{name}"),
    "AWS::SSM::Parameter": ("Name", "arn:{p}:ssm:{r}:{a}:parameter{name}"),
    "AWS::CodeBuild::Project": ("Name", "arn:{p}:codebuild:{r}:{a}:project/{name}"),
    "AWS::CodePipeline::Pipeline": ("Name", "arn:{p}:codepipeline:{r}:{a}:{name}"),
    "AWS::ServiceCatalog::Portfolio": ("", "arn:{p}:catalog:{r}:{a}:portfolio/{name}"),
    "AWS::ServiceCatalog::CloudFormationProduct": ("", "arn:{p}:catalog:{r}:{a}:product/{name}"),
}
# types whose Ref is their ARN rather than their name
REF_IS_ARN = {"AWS::IAM::ManagedPolicy", "AWS::Scheduler::Schedule"}


@dataclass
class StackResource:
    logical_id: str
    type: str
    properties: dict[str, Any]
    name: str = ""
    arn: str = ""
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass
class Stack:
    name: str
    parameters: dict[str, str]
    conditions: dict[str, bool]
    resources: dict[str, StackResource]

    def arn(self, logical_id: str) -> str:
        return self.resources[logical_id].arn


def evaluate(template: dict[str, Any], parameters: dict[str, str], stack_name: str = "greenlight-test") -> Stack:
    """The stack `template` makes with `parameters` (defaults filled in; a missing required one raises)."""
    template = expand(template, parameters)
    values: dict[str, Any] = {}
    for name, spec in template.get("Parameters", {}).items():
        if name in parameters:
            values[name] = str(parameters[name])
        elif "Default" in spec:
            values[name] = str(spec["Default"])
        else:
            raise KeyError(f"parameter {name} has no value and no default")
        if spec.get("Type") == "CommaDelimitedList":
            values[name] = [v for v in values[name].split(",") if v]
    stack = Stack(stack_name, values, {}, {})
    pseudo = {"AWS::Partition": PARTITION, "AWS::Region": REGION, "AWS::AccountId": ACCOUNT,
              "AWS::StackName": stack_name, "AWS::URLSuffix": "amazonaws.com",
              "AWS::StackId": f"arn:{PARTITION}:cloudformation:{REGION}:{ACCOUNT}:stack/{stack_name}/0"}
    resolver = _Resolver(template, stack, pseudo)
    for name in template.get("Conditions", {}):
        resolver.condition(name)
    pending = {n: r for n, r in template.get("Resources", {}).items()
               if "Condition" not in r or resolver.condition(r["Condition"])}
    # resolve in dependency order: a resource whose references are not resolved yet waits
    for _ in range(len(pending) + 1):
        for logical_id, resource in list(pending.items()):
            try:
                props = resolver.resolve(resource.get("Properties", {}))
            except _Unresolved:
                continue
            stack.resources[logical_id] = _named(logical_id, resource["Type"], props, stack_name)
            del pending[logical_id]
    if pending:
        raise ValueError(f"unresolvable resources (a reference cycle or an unknown reference): {sorted(pending)}")
    return stack


class _Unresolved(Exception):
    pass


def _named(logical_id: str, type_: str, props: dict[str, Any], stack_name: str) -> StackResource:
    name_prop, arn_format = ARNS.get(type_, ("", ""))
    name = props.get(name_prop) if name_prop else None
    if not name:
        name = f"{stack_name}-{logical_id}-generated"
        if type_ == "AWS::S3::Bucket":
            name = name.lower()
        if type_ == "AWS::SSM::Parameter":
            name = f"/{name}"
    path = props.get("Path", "/")
    arn = arn_format.format(p=PARTITION, r=REGION, a=ACCOUNT, name=name, path=path) if arn_format else ""
    attributes = {"Arn": arn}
    if type_ == "AWS::Logs::LogGroup":
        attributes["Arn"] = arn + ":*"  # what GetAtt Arn gives for a log group
    if type_ == "AWS::SQS::Queue":
        attributes.update(QueueName=name, QueueUrl=f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}")
    if type_ == "AWS::ECR::Repository":
        attributes["RepositoryUri"] = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{name}"
    if type_ == "AWS::SSM::Parameter":
        attributes["Value"] = str(props.get("Value", ""))
    if type_ == "AWS::Lambda::Version":
        attributes["Version"] = "1"
    if type_ == "AWS::Lambda::Url":
        attributes["FunctionUrl"] = "https://generated.lambda-url.us-east-1.on.aws/"
    if type_.startswith("Custom::") or type_ == "AWS::CloudFormation::CustomResource":
        attributes.update({k: str(v) for k, v in props.items() if isinstance(v, str)})
    resource = StackResource(logical_id, type_, props, name, arn, attributes)
    if type_ == "AWS::Lambda::Alias":
        resource.arn = f"{props['FunctionName']}:{props['Name']}" if str(props["FunctionName"]).startswith("arn:") \
            else f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{props['FunctionName']}:{props['Name']}"
    return resource


class _Resolver:
    def __init__(self, template: dict[str, Any], stack: Stack, pseudo: dict[str, str]):
        self.template, self.stack, self.pseudo = template, stack, pseudo

    def condition(self, name: str) -> bool:
        if name not in self.stack.conditions:
            self.stack.conditions[name] = bool(self.resolve(self.template["Conditions"][name]))
        return self.stack.conditions[name]

    def ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.stack.parameters:
            return self.stack.parameters[name]
        resource = self.stack.resources.get(name)
        if resource is None:
            if name in self.template.get("Resources", {}):
                raise _Unresolved(name)
            raise KeyError(f"Ref to unknown {name}")
        if resource.type in REF_IS_ARN:
            return resource.arn
        if resource.type == "AWS::SQS::Queue":
            return resource.attributes["QueueUrl"]
        if resource.type == "AWS::Lambda::Alias":
            return resource.arn
        return resource.name

    def getatt(self, name: str, attribute: str) -> Any:
        resource = self.stack.resources.get(name)
        if resource is None:
            raise _Unresolved(name)
        if attribute not in resource.attributes:
            raise KeyError(f"GetAtt {name}.{attribute}: not modelled in tests/support/cfn_eval.py")
        return resource.attributes[attribute]

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self.resolve(item) for item in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, value), = node.items()
            if key == "Ref":
                return self.ref(value)
            if key == "Fn::GetAtt":
                target, attribute = value if isinstance(value, list) else value.split(".", 1)
                return self.getatt(target, attribute)
            if key == "Fn::If":
                branch = value[1] if self.condition(value[0]) else value[2]
                return self.resolve(branch)
            if key == "Fn::Sub":
                text, extra = (value[0], value[1]) if isinstance(value, list) else (value, {})
                variables = {k: self.resolve(v) for k, v in extra.items()}
                return re.sub(r"\$\{([^}!]+)\}", lambda m: self._sub(m.group(1), variables), text)
            if key == "Fn::Join":
                return value[0].join(str(v) for v in self.resolve(value[1]))
            if key == "Fn::Select":
                return self.resolve(value[1])[int(self.resolve(value[0]))]
            if key == "Fn::Split":
                return str(self.resolve(value[1])).split(value[0])
            if key == "Fn::Equals":
                a, b = (self.resolve(v) for v in value)
                return str(a) == str(b)
            if key == "Fn::Not":
                return not self.resolve(value[0])
            if key == "Fn::And":
                return all(self.resolve(v) for v in value)
            if key == "Fn::Or":
                return any(self.resolve(v) for v in value)
            if key == "Condition":
                return self.condition(value)
            if key == "Fn::ToJsonString":
                return json.dumps(self.resolve(value))
        return {k: v for k, v in ((k, self.resolve(v)) for k, v in node.items()) if v is not NO_VALUE}

    def _sub(self, name: str, variables: dict[str, Any]) -> str:
        if name in variables:
            return str(variables[name])
        if "." in name and name.split(".", 1)[0] in self.template.get("Resources", {}):
            return str(self.getatt(*name.split(".", 1)))
        return str(self.ref(name))
